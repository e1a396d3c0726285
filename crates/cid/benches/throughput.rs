//! `make bench` for the CID engine: MB/s of CID only, MD5 only and CID+MD5 over 256 MiB, next to `sha256sum` and
//! `md5sum` of the same bytes measured in the same run, and the peak RSS of importing a 1 GiB stream.
//!
//! Fails (exit 1) when CID+MD5 is below 85 % of the serial limit 1/(1/sha256sum + 1/md5sum) or the peak RSS is
//! 32 MiB or more. `S3IPFS_BENCH_MIB` changes the in-memory size (default 256).

use std::io::Write as _;
use std::process::{Command, ExitCode};
use std::time::{Duration, Instant};

use s3ipfs_cid::{Algorithm, ChecksumHasher, ChecksumSet, Importer, Profile};

const MIB: usize = 1024 * 1024;
const RUNS: usize = 3;
const FEED: usize = MIB;
const STREAM_BYTES: u64 = 1024 * MIB as u64;
const RSS_LIMIT_KIB: u64 = 32 * 1024;

/// Deterministic incompressible bytes (xorshift64*), so no hash meets a trivially repetitive input.
fn fill(buf: &mut [u8], state: &mut u64) {
    for word in buf.chunks_mut(8) {
        *state ^= *state >> 12;
        *state ^= *state << 25;
        *state ^= *state >> 27;
        let v = state.wrapping_mul(0x2545_F491_4F6C_DD1D).to_le_bytes();
        word.copy_from_slice(&v[..word.len()]);
    }
}

fn best_of(mut run: impl FnMut()) -> Duration {
    (0..RUNS)
        .map(|_| {
            let start = Instant::now();
            run();
            start.elapsed()
        })
        .min()
        .unwrap_or_default()
}

fn mb_per_s(bytes: usize, time: Duration) -> f64 {
    bytes as f64 / 1e6 / time.as_secs_f64()
}

fn import(profile: Profile, set: ChecksumSet, data: &[u8]) {
    let mut importer = Importer::new(profile).with_checksums(set);
    for piece in data.chunks(FEED) {
        let _ = importer.write_all(piece, |_block| Ok::<_, ()>(()));
    }
    std::hint::black_box(importer.finish());
}

fn tool_time(tool: &str, path: &std::path::Path) -> Option<Duration> {
    let mut times = Vec::new();
    for _ in 0..RUNS {
        let start = Instant::now();
        let status = Command::new(tool).arg(path).stdout(std::process::Stdio::null()).status().ok()?;
        if !status.success() {
            return None;
        }
        times.push(start.elapsed());
    }
    times.into_iter().min()
}

/// Child mode: import a generated 1 GiB stream in 64 KiB writes and print the peak RSS (VmHWM, KiB).
fn stream_child() -> ExitCode {
    let mut importer = Importer::new(Profile::KUBO_V1);
    let mut buf = vec![0u8; 64 * 1024];
    let mut state = 42u64;
    let mut left = STREAM_BYTES;
    while left > 0 {
        fill(&mut buf, &mut state);
        let _ = importer.write_all(&buf, |_block| Ok::<_, ()>(()));
        left -= buf.len() as u64;
    }
    let (_, summary) = importer.finish();
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let hwm = status.lines().find_map(|l| l.strip_prefix("VmHWM:")).map(|v| v.trim().trim_end_matches(" kB"));
    println!("{} {}", hwm.unwrap_or("0"), summary.root);
    ExitCode::SUCCESS
}

fn main() -> ExitCode {
    if std::env::args().any(|a| a == "--stream-child") {
        return stream_child();
    }
    let mib: usize = std::env::var("S3IPFS_BENCH_MIB").ok().and_then(|v| v.parse().ok()).unwrap_or(256);
    let size = mib * MIB;
    let mut data = vec![0u8; size];
    fill(&mut data, &mut 7);
    let mut file = tempfile::NamedTempFile::new().expect("temp file for the reference tools");
    file.write_all(&data).expect("write reference data");
    file.flush().expect("flush");

    println!("CID engine throughput over {mib} MiB (best of {RUNS}, one core)");
    let sha = tool_time("sha256sum", file.path()).map(|t| mb_per_s(size, t));
    let md5 = tool_time("md5sum", file.path()).map(|t| mb_per_s(size, t));
    let cid_only = mb_per_s(size, best_of(|| import(Profile::KUBO_V1, ChecksumSet::NONE, &data)));
    let md5_only = mb_per_s(
        size,
        best_of(|| {
            let mut h = ChecksumHasher::new(ChecksumSet::MD5);
            data.chunks(FEED).for_each(|c| h.update(c));
            std::hint::black_box(h.finish());
        }),
    );
    let cid_md5 = mb_per_s(size, best_of(|| import(Profile::KUBO_V1, ChecksumSet::MD5, &data)));
    // What a PUT without a client checksum computes: S3's default CRC64NVME besides the ETag's MD5.
    let put_default = ChecksumSet::MD5.with(Algorithm::Crc64Nvme);
    let cid_md5_crc64 = mb_per_s(size, best_of(|| import(Profile::KUBO_V1, put_default, &data)));
    let all: ChecksumSet = Algorithm::ALL.into_iter().collect();
    let cid_all = mb_per_s(size, best_of(|| import(Profile::KUBO_V1, all, &data)));

    let show = |v: Option<f64>| v.map_or("unavailable".to_owned(), |v| format!("{v:8.1} MB/s"));
    println!("  sha256sum (coreutils)        {}", show(sha));
    println!("  md5sum (coreutils)           {}", show(md5));
    println!("  CID only (kubo-v1)           {cid_only:8.1} MB/s");
    println!("  MD5 only                     {md5_only:8.1} MB/s");
    println!("  CID + MD5                    {cid_md5:8.1} MB/s");
    println!("  CID + MD5 + CRC64NVME        {cid_md5_crc64:8.1} MB/s");
    println!("  CID + MD5 + CRCs + SHA1/256  {cid_all:8.1} MB/s");

    let mut ok = true;
    match (sha, md5) {
        (Some(sha), Some(md5)) => {
            let limit = 1.0 / (1.0 / sha + 1.0 / md5);
            let ratio = cid_md5 / limit;
            println!(
                "  serial limit 1/(1/sha256sum + 1/md5sum) = {limit:.1} MB/s; CID+MD5 reaches {:.0} %",
                ratio * 100.0
            );
            println!("  ratios: CID/sha256sum {:.2}, MD5/md5sum {:.2}", cid_only / sha, md5_only / md5);
            if ratio < 0.85 {
                println!("  FAIL: CID+MD5 is below 85 % of the serial limit");
                ok = false;
            }
        }
        _ => {
            println!("  FAIL: sha256sum and md5sum are needed as the reference");
            ok = false;
        }
    }

    let child = std::env::current_exe().ok().and_then(|exe| Command::new(exe).arg("--stream-child").output().ok());
    let line = child.map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned()).unwrap_or_default();
    let peak_kib: u64 = line.split_whitespace().next().and_then(|v| v.parse().ok()).unwrap_or(0);
    println!("  peak RSS importing a 1 GiB stream: {:.1} MiB (limit 32 MiB)", peak_kib as f64 / 1024.0);
    if peak_kib == 0 || peak_kib >= RSS_LIMIT_KIB {
        println!("  FAIL: peak RSS not measured or over the limit");
        ok = false;
    }
    if ok { ExitCode::SUCCESS } else { ExitCode::FAILURE }
}
