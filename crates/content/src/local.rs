//! The local CID store: each object's bytes once, as a plain file named by its CID, so GET and Range are file
//! reads; its interior DAG nodes beside it, so blocks and CARs can be served later.
//!
//! Layout under the root: `objects/<shard>/<cid>` (file bytes), `objects/<shard>/<cid>.nodes` (interior nodes as a
//! CAR), `tmp/` (uploads in progress). `<shard>` is the CID's last two characters, so no directory grows huge.
//! A write goes to `tmp/`, is fsynced and renamed into place, and the directory is fsynced: no torn objects.

use std::ops::Range;
use std::path::{Path, PathBuf};

use async_trait::async_trait;
use bytes::Bytes;
use s3ipfs_cid::car::CarWriter;
use s3ipfs_cid::{Block, Cid};
use s3ipfs_core::{ByteStream, ContentError, ContentStore, ContentWriter};
use tokio::fs::{self, File};
use tokio::io::{AsyncReadExt, AsyncSeekExt, AsyncWriteExt};

/// Read size when streaming content out.
const READ_CHUNK: usize = 256 * 1024;

/// Content stored as files under one directory.
#[derive(Debug, Clone)]
pub struct LocalStore {
    root: PathBuf,
}

impl LocalStore {
    /// Opens (creating) the store under `root`. Touches nothing another process may be using.
    pub async fn open(root: impl Into<PathBuf>) -> Result<Self, ContentError> {
        let root = root.into();
        fs::create_dir_all(root.join("tmp")).await?;
        fs::create_dir_all(root.join("objects")).await?;
        Ok(LocalStore { root })
    }

    /// Removes the uploads a crash left in `tmp/`. Only the process that owns the store (the server holding the
    /// data directory's lock) may call it: it would break another process's uploads in progress.
    pub async fn clear_interrupted_uploads(&self) -> Result<(), ContentError> {
        let tmp = self.root.join("tmp");
        fs::remove_dir_all(&tmp).await?;
        fs::create_dir_all(&tmp).await?;
        Ok(())
    }

    /// Removes uploads in `tmp/` that nothing has written to for `idle` (their writer crashed). Safe beside other
    /// processes sharing the store: a live upload writes at least once per stall timeout.
    pub async fn clear_uploads_idle_for(&self, idle: std::time::Duration) -> Result<usize, ContentError> {
        let mut removed = 0;
        let mut entries = fs::read_dir(self.root.join("tmp")).await?;
        while let Some(entry) = entries.next_entry().await? {
            let modified = entry.metadata().await.and_then(|m| m.modified());
            let stale = modified.is_ok_and(|at| at.elapsed().is_ok_and(|age| age >= idle));
            if stale && fs::remove_file(entry.path()).await.is_ok() {
                removed += 1;
            }
        }
        Ok(removed)
    }

    fn object_path(&self, cid: &Cid) -> PathBuf {
        let name = cid.to_string();
        let shard = &name[name.len().saturating_sub(2)..];
        self.root.join("objects").join(shard).join(name)
    }
}

fn nodes_path(object: &Path) -> PathBuf {
    let mut name = object.as_os_str().to_owned();
    name.push(".nodes");
    PathBuf::from(name)
}

impl LocalWriter {
    /// Moves the finished upload (and its interior nodes as a CAR) into place under `target`, unless the same
    /// content is already there (identical bytes by construction: same CID).
    async fn place(&self, target: &Path, dir: &Path, car: Option<&[u8]>) -> Result<(), ContentError> {
        if fs::try_exists(target).await? {
            fs::remove_file(&self.path).await?;
            return Ok(());
        }
        if let Some(car) = car {
            let tmp_nodes = nodes_path(&self.path);
            let mut out = File::create(&tmp_nodes).await?;
            out.write_all(car).await?;
            out.sync_all().await?;
            fs::rename(&tmp_nodes, nodes_path(target)).await?;
        }
        fs::rename(&self.path, target).await?;
        sync_dir(dir).await
    }
}

/// An upload into `tmp/`.
struct LocalWriter {
    store: LocalStore,
    path: PathBuf,
    file: Option<File>,
    /// The upload was moved into place (or found stored): nothing of it is left in `tmp/`.
    placed: bool,
}

async fn sync_dir(dir: &Path) -> Result<(), ContentError> {
    File::open(dir).await?.sync_all().await?;
    Ok(())
}

#[async_trait]
impl ContentWriter for LocalWriter {
    async fn write(&mut self, bytes: Bytes) -> Result<(), ContentError> {
        match &mut self.file {
            Some(file) => Ok(file.write_all(&bytes).await?),
            None => Err(ContentError::Io(std::io::Error::other("writer already finished"))),
        }
    }

    async fn finish(mut self: Box<Self>, root: Cid, nodes: Vec<Block>) -> Result<(), ContentError> {
        let Some(mut file) = self.file.take() else {
            return Err(ContentError::Io(std::io::Error::other("writer already finished")));
        };
        file.flush().await?;
        file.sync_all().await?;
        drop(file);
        let target = self.store.object_path(&root);
        let dir = target.parent().map(Path::to_path_buf).unwrap_or_else(|| self.store.root.clone());
        let car = if nodes.is_empty() {
            None
        } else {
            let mut car = CarWriter::new(Vec::new(), &[root])?;
            for node in &nodes {
                car.write_block(&node.cid, &node.data)?;
            }
            Some(car.finish()?)
        };
        // Garbage collection removes a shard directory it empties; if that happens between creating the directory
        // and renaming into it, the rename finds no directory and is tried again.
        let mut attempts = 0;
        loop {
            fs::create_dir_all(&dir).await?;
            match self.place(&target, &dir, car.as_deref()).await {
                Err(ContentError::Io(e)) if e.kind() == std::io::ErrorKind::NotFound && attempts < 3 => attempts += 1,
                Ok(()) => {
                    self.placed = true;
                    return Ok(());
                }
                failed => return failed,
            }
        }
    }

    async fn abort(mut self: Box<Self>) {
        self.file.take();
        let _ = fs::remove_file(&self.path).await;
        self.placed = true;
    }
}

impl Drop for LocalWriter {
    fn drop(&mut self) {
        // Dropped before it was placed (the client went away, even in the middle of `finish`): nothing it wrote to
        // `tmp/` may linger.
        if !self.placed {
            self.file.take();
            let _ = std::fs::remove_file(&self.path);
            let _ = std::fs::remove_file(nodes_path(&self.path));
        }
    }
}

#[async_trait]
impl ContentStore for LocalStore {
    async fn writer(&self) -> Result<Box<dyn ContentWriter>, ContentError> {
        let name = format!("{:032x}", rand::random::<u128>());
        let path = self.root.join("tmp").join(name);
        let file = File::create(&path).await?;
        Ok(Box::new(LocalWriter { store: self.clone(), path, file: Some(file), placed: false }))
    }

    async fn read(&self, cid: &Cid, range: Range<u64>) -> Result<ByteStream, ContentError> {
        let path = self.object_path(cid);
        let mut file = match File::open(&path).await {
            Ok(file) => file,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(ContentError::NotFound(*cid)),
            Err(e) => return Err(e.into()),
        };
        let size = file.metadata().await?.len();
        if range.start > range.end || range.end > size {
            return Err(ContentError::Range { start: range.start, end: range.end, size });
        }
        file.seek(std::io::SeekFrom::Start(range.start)).await?;
        let left = range.end - range.start;
        let stream = futures::stream::try_unfold((file, left), |(mut file, left)| async move {
            if left == 0 {
                return Ok(None);
            }
            let want = usize::try_from(left).unwrap_or(usize::MAX).min(READ_CHUNK);
            let mut buf = vec![0u8; want];
            file.read_exact(&mut buf).await?;
            Ok(Some((Bytes::from(buf), (file, left - want as u64))))
        });
        Ok(Box::pin(stream))
    }

    async fn size(&self, cid: &Cid) -> Result<Option<u64>, ContentError> {
        match fs::metadata(self.object_path(cid)).await {
            Ok(meta) => Ok(Some(meta.len())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    async fn delete(&self, cid: &Cid) -> Result<(), ContentError> {
        let path = self.object_path(cid);
        for file in [nodes_path(&path), path.clone()] {
            match fs::remove_file(&file).await {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(e.into()),
            }
        }
        // An emptied shard directory goes too, so a store whose content is all deleted is back to its first size
        // (a writer that meanwhile created it again recreates it, see `finish`; a non-empty one stays).
        if let Some(shard) = path.parent() {
            let _ = fs::remove_dir(shard).await;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use s3ipfs_core::conformance::content as suite;

    async fn files_under(dir: &Path) -> Vec<PathBuf> {
        let mut found = Vec::new();
        let mut stack = vec![dir.to_path_buf()];
        while let Some(d) = stack.pop() {
            let mut entries = fs::read_dir(&d).await.expect("read dir");
            while let Some(entry) = entries.next_entry().await.expect("entry") {
                let path = entry.path();
                if entry.file_type().await.expect("type").is_dir() { stack.push(path) } else { found.push(path) }
            }
        }
        found
    }

    #[tokio::test]
    async fn the_local_store_passes_the_content_conformance_suite() {
        let dir = tempfile::tempdir().expect("temp dir");
        suite::run_all(&LocalStore::open(dir.path()).await.expect("open")).await;
        assert!(files_under(&dir.path().join("tmp")).await.is_empty(), "no temp file is left behind");
    }

    #[tokio::test]
    async fn concurrent_writers_of_the_same_bytes_all_finish_and_leave_one_copy() {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = LocalStore::open(dir.path()).await.expect("open");
        let data = vec![3u8; 700_000];
        let writes = (0..8).map(|_| suite::store_bytes(&store, &data));
        let cids = futures::future::join_all(writes).await;
        assert!(cids.windows(2).all(|w| w[0] == w[1]));
        assert!(suite::read_all(&store, &cids[0], 0..700_000).await.expect("read") == data);
        assert_eq!(files_under(&dir.path().join("objects")).await.len(), 2, "one data file and its nodes");
        assert!(files_under(&dir.path().join("tmp")).await.is_empty());
    }

    #[tokio::test]
    async fn a_writer_dropped_in_the_middle_of_finishing_leaves_nothing_in_tmp() {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = LocalStore::open(dir.path()).await.expect("open");
        let data = vec![6u8; 700_000];
        let mut importer = s3ipfs_cid::Importer::new(s3ipfs_cid::Profile::KUBO_V1);
        let mut nodes = Vec::new();
        importer
            .write_all(&data, |b| {
                if b.kind == s3ipfs_cid::BlockKind::Node {
                    nodes.push(b);
                }
                Ok::<_, ()>(())
            })
            .expect("import");
        let (last, summary) = importer.finish();
        nodes.extend(last.into_iter().filter(|b| b.kind == s3ipfs_cid::BlockKind::Node));
        let mut writer = store.writer().await.expect("writer");
        writer.write(Bytes::from(data)).await.expect("write");
        // Cancelled at its first await inside `finish` (the client went away while the file was being synced).
        let mut finishing = writer.finish(summary.root, nodes);
        assert!(futures::poll!(finishing.as_mut()).is_pending());
        drop(finishing);
        let left = files_under(&dir.path().join("tmp")).await;
        assert!(left.is_empty(), "the cancelled upload left nothing: {left:?}");
    }

    #[tokio::test]
    async fn deleting_the_last_content_of_a_shard_removes_its_directory() {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = LocalStore::open(dir.path()).await.expect("open");
        let cid = suite::store_bytes(&store, &[5u8; 300_000]).await;
        store.delete(&cid).await.expect("delete");
        let left: Vec<_> = std::fs::read_dir(dir.path().join("objects")).expect("objects").collect();
        assert!(left.is_empty(), "no empty shard directory is left: {left:?}");
        let again = suite::store_bytes(&store, &[5u8; 300_000]).await;
        assert!(suite::read_all(&store, &again, 0..300_000).await.expect("read") == vec![5u8; 300_000]);
    }

    #[tokio::test]
    async fn identical_uploads_leave_one_file_and_a_nodes_car() {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = LocalStore::open(dir.path()).await.expect("open");
        let data = vec![9u8; 1_000_000];
        let cid = suite::store_bytes(&store, &data).await;
        suite::store_bytes(&store, &data).await;
        let files = files_under(&dir.path().join("objects")).await;
        assert_eq!(files.len(), 2, "one data file and one nodes file: {files:?}");
        let nodes = std::fs::read(nodes_path(&store.object_path(&cid))).expect("nodes file");
        let mut reader = s3ipfs_cid::car::CarReader::new(&nodes[..]).expect("nodes are a CAR");
        assert_eq!(reader.roots(), &[cid]);
        let (first, _) = reader.next_block().expect("valid").expect("one node at least");
        assert_eq!(first, cid, "the root node is stored");
    }

    #[tokio::test]
    async fn uploads_a_crash_left_in_tmp_are_cleared_only_on_request() {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = LocalStore::open(dir.path()).await.expect("open");
        let mut writer = store.writer().await.expect("writer");
        writer.write(Bytes::from_static(b"partial")).await.expect("write");
        std::mem::forget(writer); // a crash: no abort, no drop
        assert_eq!(files_under(&dir.path().join("tmp")).await.len(), 1);
        let reopened = LocalStore::open(dir.path()).await.expect("reopen");
        assert_eq!(files_under(&dir.path().join("tmp")).await.len(), 1, "opening touches no upload in progress");
        reopened.clear_interrupted_uploads().await.expect("clear");
        assert!(files_under(&dir.path().join("tmp")).await.is_empty());
    }

    #[tokio::test]
    async fn only_uploads_idle_for_the_bound_are_cleared_beside_other_writers() {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = LocalStore::open(dir.path()).await.expect("open");
        let mut crashed = store.writer().await.expect("writer");
        crashed.write(Bytes::from_static(b"partial")).await.expect("write");
        std::mem::forget(crashed);
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        let mut live = store.writer().await.expect("writer");
        live.write(Bytes::from_static(b"in progress")).await.expect("write");
        let removed = store.clear_uploads_idle_for(std::time::Duration::from_millis(200)).await.expect("clear");
        assert_eq!(removed, 1, "only the idle upload");
        assert_eq!(files_under(&dir.path().join("tmp")).await.len(), 1, "the live upload stays");
        live.abort().await;
    }
}
