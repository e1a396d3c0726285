//! `s3ipfs cid`: the CID of a file or of standard input, and optionally its CAR.

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, BufWriter, Read, Write};
use std::os::unix::fs::FileExt as _;
use std::path::{Path, PathBuf};

use bytes::Bytes;
use s3ipfs_cid::{Block, BlockKind, BlockSource, Cid, DagError, Importer, MemoryBlocks, Profile, car, import_reader};

use crate::cli::CidArgs;

/// Why `s3ipfs cid` failed.
#[derive(Debug, thiserror::Error)]
pub enum CidCommandError {
    /// Reading the input or writing the CAR failed.
    #[error("{path}: {source}")]
    Io {
        /// The file involved.
        path: PathBuf,
        /// What went wrong.
        source: io::Error,
    },
    /// The DAG could not be written as a CAR.
    #[error("writing CAR {path}: {source}")]
    Car {
        /// The CAR path.
        path: PathBuf,
        /// What went wrong (boxed: a DAG error carries CIDs inline).
        source: Box<DagError>,
    },
}

fn io_error(path: &Path) -> impl FnOnce(io::Error) -> CidCommandError + '_ {
    move |source| CidCommandError::Io { path: path.to_owned(), source }
}

/// Runs the command: prints the root CID on standard output.
pub fn run(args: &CidArgs) -> Result<(), CidCommandError> {
    let stdin = args.input.as_os_str() == "-";
    let root = match (&args.car, stdin) {
        (None, true) => import_only(args.profile, io::stdin().lock(), &args.input)?,
        (None, false) => {
            import_only(args.profile, File::open(&args.input).map_err(io_error(&args.input))?, &args.input)?
        }
        (Some(out), true) => {
            // The CAR lists the root first, so the bytes must be read twice: keep standard input in a temp file.
            let spool = tempfile::tempfile().map_err(io_error(Path::new("temporary file")))?;
            write_car(args.profile, Tee { input: io::stdin().lock(), copy: &spool }, &spool, &args.input, out)?
        }
        (Some(out), false) => {
            let file = File::open(&args.input).map_err(io_error(&args.input))?;
            write_car(args.profile, &file, &file, &args.input, out)?
        }
    };
    println!("{root}");
    Ok(())
}

fn import_only(profile: Profile, input: impl Read, path: &Path) -> Result<Cid, CidCommandError> {
    let summary = import_reader(Importer::new(profile), input, |_| Ok(())).map_err(io_error(path))?;
    Ok(summary.root)
}

/// Imports `input`, then writes the CAR reading leaves back from `file` (which holds the same bytes).
fn write_car(profile: Profile, input: impl Read, file: &File, path: &Path, out: &Path) -> Result<Cid, CidCommandError> {
    let mut dag = FileDag { file, profile, nodes: MemoryBlocks::new(), leaves: HashMap::new() };
    let summary = import_reader(Importer::new(profile), input, |block| {
        dag.record(block);
        Ok(())
    })
    .map_err(io_error(path))?;
    let car_file = File::create(out).map_err(io_error(out))?;
    let result = car::write_dag(&summary.root, &mut dag, BufWriter::new(car_file))
        .and_then(|w| w.into_inner().map_err(|e| DagError::Io(e.into_error())))
        .and_then(|f| f.sync_all().map_err(DagError::Io));
    if let Err(source) = result {
        let _ = std::fs::remove_file(out);
        return Err(CidCommandError::Car { path: out.to_owned(), source: Box::new(source) });
    }
    Ok(summary.root)
}

/// A DAG whose interior nodes are held in memory and whose leaves are re-read from the file: memory stays small.
struct FileDag<'a> {
    file: &'a File,
    profile: Profile,
    nodes: MemoryBlocks,
    leaves: HashMap<Cid, (u64, u64)>,
}

impl FileDag<'_> {
    fn record(&mut self, block: Block) {
        match block.kind {
            BlockKind::Leaf { offset, len } => {
                self.leaves.insert(block.cid, (offset, len));
            }
            BlockKind::Node => self.nodes.insert(block.cid, block.data),
        }
    }
}

impl BlockSource for FileDag<'_> {
    fn block(&mut self, cid: &Cid) -> io::Result<Bytes> {
        let Some(&(offset, len)) = self.leaves.get(cid) else {
            return self.nodes.block(cid);
        };
        let len = usize::try_from(len).map_err(|_| io::Error::other("leaf too large"))?;
        let mut chunk = vec![0u8; len];
        self.file.read_exact_at(&mut chunk, offset)?;
        Ok(self.profile.leaf(Bytes::from(chunk)).0)
    }
}

/// Copies everything read from `input` into `copy`.
struct Tee<'a, R> {
    input: R,
    copy: &'a File,
}

impl<R: Read> Read for Tee<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.input.read(buf)?;
        let mut copy = self.copy;
        copy.write_all(&buf[..n])?;
        Ok(n)
    }
}
