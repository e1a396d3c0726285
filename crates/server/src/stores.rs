//! Opening the configured stores, and the lock that makes one server the owner of an embedded data directory.
//!
//! With the embedded metadata store, `serve` takes the data directory's lock and keeps it while it runs: one process
//! owns it, and it clears what a crash left behind at start. With PostgreSQL, any number of replicas share the
//! database (and the content directory): nothing is locked, and each replica frees only what is provably abandoned.
//! Admin commands (`user create`, `gc`, `migrate`) take no lock and are safe beside running servers: garbage
//! collection is ordered against writers through the metadata store.

use std::fs::File;
use std::io::{Read as _, Seek as _, Write as _};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use s3ipfs_content::LocalStore;
use s3ipfs_core::{ContentError, MetaStore};
use s3ipfs_meta::{PgMeta, PgOpenError, SqliteMeta, SqliteOpenError};

use crate::config::Config;

/// Why the stores could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The data directory could not be created or locked.
    #[error("data directory {path}: {source}")]
    DataDir {
        /// The directory.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// Another server holds the data directory.
    #[error(
        "data directory {path} is in use by another s3ipfs server{holder}; stop it first, or give this one its own \
         --data-dir"
    )]
    Locked {
        /// The directory.
        path: String,
        /// The holder's pid, as ` (pid N)`, when it wrote one.
        holder: String,
    },
    /// The metadata database failed to open.
    #[error(transparent)]
    Meta(#[from] SqliteOpenError),
    /// PostgreSQL cannot be used.
    #[error(transparent)]
    Postgres(#[from] PgOpenError),
    /// The content store failed to open.
    #[error("opening the content store: {0}")]
    Content(#[from] ContentError),
}

/// The exclusive lock on a data directory, held for as long as this value lives.
#[derive(Debug)]
pub struct DataDirLock {
    _file: File,
}

fn data_dir_error(dir: &Path) -> impl FnOnce(std::io::Error) -> StoreError + '_ {
    move |source| StoreError::DataDir { path: dir.display().to_string(), source }
}

/// Takes the data directory's lock (`DATA/lock`, with this process's pid in it), or says who holds it.
pub fn lock_data_dir(dir: &Path) -> Result<DataDirLock, StoreError> {
    std::fs::create_dir_all(dir).map_err(data_dir_error(dir))?;
    let path = dir.join("lock");
    let mut file =
        File::options().read(true).write(true).create(true).truncate(false).open(&path).map_err(data_dir_error(dir))?;
    match file.try_lock() {
        Ok(()) => {}
        Err(std::fs::TryLockError::WouldBlock) => {
            let mut pid = String::new();
            let _ = file.read_to_string(&mut pid);
            let pid = pid.trim();
            let holder = if pid.is_empty() { String::new() } else { format!(" (pid {pid})") };
            return Err(StoreError::Locked { path: dir.display().to_string(), holder });
        }
        Err(std::fs::TryLockError::Error(source)) => return Err(data_dir_error(dir)(source)),
    }
    file.set_len(0).map_err(data_dir_error(dir))?;
    file.rewind().map_err(data_dir_error(dir))?;
    write!(file, "{}", std::process::id()).map_err(data_dir_error(dir))?;
    Ok(DataDirLock { _file: file })
}

/// The configured metadata store: PostgreSQL (migrated first when `migrate`), or `DATA/meta.sqlite`.
pub async fn open_meta(config: &Config, migrate: bool) -> Result<Arc<dyn MetaStore>, StoreError> {
    if let Some(settings) = config.meta.postgres() {
        return Ok(Arc::new(PgMeta::connect(&settings, migrate).await?));
    }
    let data_dir = &config.server.data_dir;
    std::fs::create_dir_all(data_dir).map_err(data_dir_error(data_dir))?;
    let meta_path: PathBuf = data_dir.join("meta.sqlite");
    let meta = tokio::task::spawn_blocking(move || SqliteMeta::open(&meta_path))
        .await
        .map_err(|e| StoreError::DataDir { path: "meta.sqlite".into(), source: std::io::Error::other(e) })??;
    Ok(Arc::new(meta))
}

/// The local content store (`DATA/content/`).
pub async fn open_content(config: &Config) -> Result<LocalStore, StoreError> {
    Ok(LocalStore::open(config.server.data_dir.join("content")).await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_lock_on_a_data_dir_is_refused_and_names_the_holder() {
        let dir = tempfile::tempdir().expect("temp dir");
        let held = lock_data_dir(dir.path()).expect("first lock");
        let second = lock_data_dir(dir.path()).expect_err("second lock");
        let message = second.to_string();
        assert!(message.contains("in use by another s3ipfs server"), "{message}");
        assert!(message.contains(&format!("pid {}", std::process::id())), "{message}");
        drop(held);
        lock_data_dir(dir.path()).expect("free again once the holder is gone");
    }
}
