//! `s3ipfs cid` run as a real process.

use std::io::Write as _;
use std::process::{Command, Stdio};

use s3ipfs_cid::{MemoryBlocks, car, dag};

fn s3ipfs() -> Command {
    Command::new(env!("CARGO_BIN_EXE_s3ipfs"))
}

fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i % 251) as u8).collect()
}

fn run_with_stdin(args: &[&str], input: &[u8]) -> std::process::Output {
    let mut child = s3ipfs().args(args).stdin(Stdio::piped()).stdout(Stdio::piped()).spawn().expect("spawn s3ipfs");
    child.stdin.take().expect("stdin").write_all(input).expect("feed stdin");
    child.wait_with_output().expect("wait")
}

fn file_from_car(path: &std::path::Path) -> (s3ipfs_cid::Cid, Vec<u8>) {
    let mut reader = car::CarReader::new(std::fs::File::open(path).expect("CAR exists")).expect("CAR header");
    let root = reader.roots()[0];
    let mut blocks = MemoryBlocks::new();
    while let Some((cid, block)) = reader.next_block().expect("valid block") {
        blocks.insert(cid, block);
    }
    let mut out = Vec::new();
    dag::read_file(&root, &mut blocks, &mut out).expect("file from CAR");
    (root, out)
}

#[test]
fn it_prints_the_cid_ipfs_add_gives_for_a_file_and_for_stdin() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("hello.txt");
    std::fs::write(&path, b"hello world").expect("write");
    let out = s3ipfs().arg("cid").arg(&path).output().expect("run");
    assert!(out.status.success());
    assert_eq!(String::from_utf8_lossy(&out.stdout), "bafkreifzjut3te2nhyekklss27nh3k72ysco7y32koao5eei66wof36n5e\n");

    let out = run_with_stdin(&["cid", "--profile", "kubo-v0", "-"], b"hello world");
    assert!(out.status.success());
    assert_eq!(String::from_utf8_lossy(&out.stdout), "Qmf412jQZiuVUtdgnB36FXFX7xg5V6KEbSJ4dpQuhkLyfD\n");
}

#[test]
fn the_car_it_writes_reads_back_to_the_identical_bytes() {
    let dir = tempfile::tempdir().expect("temp dir");
    // 174 chunks + 1 byte: a two-level tree with a one-link interior node.
    let data = pattern(174 * 262_144 + 1);
    let input = dir.path().join("input.bin");
    std::fs::write(&input, &data).expect("write");
    let from_file = dir.path().join("file.car");
    let out = s3ipfs().arg("cid").arg("--car").arg(&from_file).arg(&input).output().expect("run");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let printed = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    assert_eq!(printed, "bafybeib4y7ghw2rq7bracc4xwtxrbzo7cfvagdpte2tmrkgwl6dyard3cm");
    let (root, bytes) = file_from_car(&from_file);
    assert_eq!(root.to_string(), printed);
    assert!(bytes == data, "CAR of a file reads back to the file");

    for profile in ["kubo-v0", "unixfs-v1-2025"] {
        let from_stdin = dir.path().join(format!("{profile}.car"));
        let car_arg = from_stdin.to_str().expect("utf-8 path");
        let out = run_with_stdin(&["cid", "--profile", profile, "--car", car_arg, "-"], &data);
        assert!(out.status.success(), "{profile}");
        let (root, bytes) = file_from_car(&from_stdin);
        assert_eq!(root.to_string(), String::from_utf8_lossy(&out.stdout).trim());
        assert!(bytes == data, "CAR of stdin under {profile} reads back to the input");
    }
}

#[test]
fn bad_arguments_fail_with_a_message() {
    let out = s3ipfs().args(["cid", "/nonexistent/file"]).output().expect("run");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/file"));

    let out = s3ipfs().args(["cid", "--profile", "kubo-v9", "-"]).output().expect("run");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown profile"));
}
