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

use s3ipfs_cid::Profile;
use s3ipfs_content::{Flavor, LocalStore, RemoteSettings, RemoteSetupError, RemoteStore};
use s3ipfs_core::{ContentError, ContentStore, Gateway, MetaStore};
use s3ipfs_meta::{PgMeta, PgOpenError, SqliteMeta, SqliteOpenError};

use crate::config::{Config, ContentBackend};

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
    /// The remote content backend cannot be set up.
    #[error(transparent)]
    Remote(#[from] RemoteSetupError),
    /// A setting is invalid.
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    /// The cache cannot be set up (a malformed Redis URL; an unreachable Redis is not an error).
    #[error("cache: {0}")]
    Cache(String),
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

/// The configured content stores.
#[derive(Clone)]
pub struct ContentStores {
    /// Where object bytes live.
    pub content: Arc<dyn ContentStore>,
    /// The local store: the content itself with the local backend, the staging of multipart parts with a remote one.
    pub local: Arc<LocalStore>,
    /// The remote backend, when one is configured.
    pub remote: Option<RemoteStore>,
}

impl ContentStores {
    /// The use cases over `meta` and these stores, parts staged locally when content is remote.
    pub fn gateway(&self, meta: Arc<dyn MetaStore>, profile: Profile) -> Gateway {
        let gateway = Gateway::new(meta, Arc::clone(&self.content), profile);
        match self.remote {
            Some(_) => gateway.with_staging(Arc::clone(&self.local) as _),
            None => gateway,
        }
    }

    /// Removes what a crash left in the local store's and the spool's temp files (the data directory's owner only).
    pub async fn clear_interrupted_uploads(&self) -> Result<(), ContentError> {
        self.local.clear_interrupted_uploads().await?;
        if let Some(remote) = &self.remote {
            remote.clear_spool_idle_for(std::time::Duration::ZERO).await?;
        }
        Ok(())
    }
}

/// The content stores the configuration selects: `DATA/content/` locally, or a remote backend with parts staged
/// in `content.staging_dir` and writes spooled in `content.spool_dir`.
pub async fn open_content(config: &Config) -> Result<ContentStores, StoreError> {
    let data_dir = &config.server.data_dir;
    let c = &config.content;
    let Some((remote, endpoint)) = c.remote() else {
        let local = Arc::new(LocalStore::open(data_dir.join("content")).await?);
        return Ok(ContentStores { content: Arc::clone(&local) as _, local, remote: None });
    };
    let staging = c.staging_dir.clone().unwrap_or_else(|| data_dir.join("staging"));
    let local = Arc::new(LocalStore::open(staging).await?);
    let settings = RemoteSettings {
        flavor: if c.backend == ContentBackend::Filebase { Flavor::Filebase } else { Flavor::S3 },
        endpoint: endpoint.to_owned(),
        region: remote.region.clone(),
        bucket: remote.bucket.clone(),
        access_key: remote.access_key.clone(),
        secret_key: remote.secret_key.as_ref().map(|k| k.expose().to_owned()).unwrap_or_default(),
        path_style: remote.path_style,
        spool_dir: c.spool_dir.clone().unwrap_or_else(|| data_dir.join("spool")),
        part_size: c.part_size_mib * 1024 * 1024,
        concurrency: c.upload_concurrency,
        call_timeout: std::time::Duration::from_secs(c.timeout_secs),
        connect_timeout: std::time::Duration::from_secs(c.connect_timeout_secs),
        max_in_flight: c.max_in_flight,
        requests_per_second: c.requests_per_second,
        retries: c.retries,
        open_for: std::time::Duration::from_secs(c.breaker_open_secs),
    };
    let remote = RemoteStore::open(settings).await?;
    if remote.flavor() == Flavor::S3 {
        // The bucket of a generic S3 server is created if missing; an unreachable backend is not a reason to stop.
        let creating = remote.clone();
        tokio::spawn(async move {
            if let Err(err) = creating.ensure_bucket().await {
                tracing::warn!(error = %err, "checking the content backend's bucket failed");
            }
        });
    }
    Ok(ContentStores { content: Arc::new(remote.clone()), local, remote: Some(remote) })
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
