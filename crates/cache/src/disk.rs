//! The local disk layer: whole objects too large for memory, kept by CID in a directory of this process's own, least
//! recently used first out when the byte budget is spent.
//!
//! Each process writes a subdirectory of the configured root and holds a lock on it while it runs; at start it
//! removes the subdirectories nobody holds (left by processes that stopped). Files are written under a temporary
//! name and renamed once complete, so a file under a CID is always whole. A file evicted while a reader has it open
//! stays readable for that reader (it is only unlinked).

use std::fs::File;
use std::ops::Range;
use std::path::{Path, PathBuf};

use bytes::Bytes;
use futures::StreamExt as _;
use s3ipfs_cid::Cid;
use s3ipfs_core::{ByteStream, ContentError};
use tokio::io::{AsyncReadExt as _, AsyncSeekExt as _, AsyncWriteExt as _};

const READ_CHUNK: usize = 256 * 1024;

/// The disk layer of one process.
pub(crate) struct DiskCache {
    dir: PathBuf,
    index: moka::sync::Cache<Cid, u64>,
    _lock: File,
}

/// `PID-HEX8`: the name of a process's cache directory.
fn is_cache_dir_name(name: &std::ffi::OsStr) -> bool {
    name.to_str().and_then(|n| n.split_once('-')).is_some_and(|(pid, hex)| {
        !pid.is_empty()
            && pid.bytes().all(|b| b.is_ascii_digit())
            && hex.len() == 8
            && hex.bytes().all(|b| b.is_ascii_hexdigit())
    })
}

impl DiskCache {
    /// Takes a fresh subdirectory of `root` for this process, clears the ones no process holds, and keeps at most
    /// `budget` bytes.
    pub(crate) fn open(root: &Path, budget: u64) -> std::io::Result<Self> {
        std::fs::create_dir_all(root)?;
        // Made under a temporary name with its lock already held, then renamed: no other process starting at the
        // same moment can see it unlocked.
        let name = format!("{}-{:08x}", std::process::id(), rand::random::<u32>());
        let building = root.join(format!(".new-{name}"));
        std::fs::create_dir_all(&building)?;
        let lock = File::create(building.join("lock"))?;
        lock.try_lock().map_err(|e| std::io::Error::other(e.to_string()))?;
        let dir = root.join(&name);
        std::fs::rename(&building, &dir)?;
        for entry in std::fs::read_dir(root)? {
            let entry = entry?;
            let path = entry.path();
            // Only directories this cache made (`PID-HEX`, with a lock file) and nobody holds are removed.
            if path == dir || !entry.file_type()?.is_dir() || !is_cache_dir_name(&entry.file_name()) {
                continue;
            }
            let free = File::open(path.join("lock")).is_ok_and(|f| f.try_lock().is_ok());
            if free {
                let _ = std::fs::remove_dir_all(&path);
            }
        }
        let files = dir.clone();
        let index = moka::sync::Cache::builder()
            .max_capacity(budget.div_ceil(1024).max(1))
            .weigher(|_: &Cid, size: &u64| u32::try_from(size.div_ceil(1024)).unwrap_or(u32::MAX).max(1))
            .eviction_listener(move |cid: std::sync::Arc<Cid>, _, cause| {
                if cause != moka::notification::RemovalCause::Replaced {
                    let _ = std::fs::remove_file(files.join(cid.to_string()));
                }
            })
            .build();
        Ok(DiskCache { dir, index, _lock: lock })
    }

    fn path(&self, cid: &Cid) -> PathBuf {
        self.dir.join(cid.to_string())
    }

    /// Whether `cid` is kept (and marks it recently used).
    pub(crate) fn contains(&self, cid: &Cid) -> bool {
        self.index.get(cid).is_some()
    }

    /// Bytes `range` of the kept file of `cid`; `None` if it is gone (evicted in between).
    pub(crate) async fn read(&self, cid: &Cid, range: Range<u64>) -> Result<Option<ByteStream>, ContentError> {
        let mut file = match tokio::fs::File::open(self.path(cid)).await {
            Ok(file) => file,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        let size = file.metadata().await?.len();
        if range.start > range.end || range.end > size {
            return Err(ContentError::Range { start: range.start, end: range.end, size });
        }
        file.seek(std::io::SeekFrom::Start(range.start)).await?;
        let stream = futures::stream::try_unfold((file, range.end - range.start), |(mut file, left)| async move {
            if left == 0 {
                return Ok(None);
            }
            let want = usize::try_from(left).unwrap_or(usize::MAX).min(READ_CHUNK);
            let mut buf = vec![0u8; want];
            file.read_exact(&mut buf).await?;
            Ok(Some((Bytes::from(buf), (file, left - want as u64))))
        });
        Ok(Some(Box::pin(stream)))
    }

    /// Writes `size` bytes of `cid` from `source` and keeps them; a short or failed source keeps nothing.
    pub(crate) async fn fill(&self, cid: &Cid, size: u64, mut source: ByteStream) -> Result<(), ContentError> {
        let temp = self.dir.join(format!("tmp-{:016x}", rand::random::<u64>()));
        let written = async {
            let mut file = tokio::fs::File::create(&temp).await?;
            let mut total = 0u64;
            while let Some(chunk) = source.next().await {
                let chunk = chunk?;
                total += chunk.len() as u64;
                file.write_all(&chunk).await?;
            }
            if total != size {
                return Err(ContentError::Io(std::io::Error::other(format!(
                    "the content store returned {total} bytes of {cid}, not {size}"
                ))));
            }
            file.flush().await?;
            tokio::fs::rename(&temp, self.path(cid)).await?;
            Ok(())
        }
        .await;
        match written {
            Ok(()) => {
                self.index.insert(*cid, size);
                Ok(())
            }
            Err(err) => {
                let _ = tokio::fs::remove_file(&temp).await;
                Err(err)
            }
        }
    }

    /// Forgets `cid` and removes its file.
    pub(crate) fn remove(&self, cid: &Cid) {
        self.index.invalidate(cid);
        let _ = std::fs::remove_file(self.path(cid));
    }
}
