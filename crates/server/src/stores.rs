//! Opening the embedded stores under the data directory.

use std::path::Path;
use std::sync::Arc;

use s3ipfs_content::LocalStore;
use s3ipfs_core::{ContentError, MetaStore};
use s3ipfs_meta::{SqliteMeta, SqliteOpenError};

/// Why the stores could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The data directory could not be created.
    #[error("creating data directory {path}: {source}")]
    DataDir {
        /// The directory.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// The metadata database failed to open.
    #[error(transparent)]
    Meta(#[from] SqliteOpenError),
    /// The content store failed to open.
    #[error("opening the content store: {0}")]
    Content(#[from] ContentError),
}

/// The metadata store (`DATA/meta.sqlite`) and the content store (`DATA/content/`).
pub async fn open(data_dir: &Path) -> Result<(Arc<dyn MetaStore>, LocalStore), StoreError> {
    std::fs::create_dir_all(data_dir)
        .map_err(|source| StoreError::DataDir { path: data_dir.display().to_string(), source })?;
    let meta_path = data_dir.join("meta.sqlite");
    let meta = tokio::task::spawn_blocking(move || SqliteMeta::open(&meta_path))
        .await
        .map_err(|e| StoreError::DataDir { path: "meta.sqlite".into(), source: std::io::Error::other(e) })??;
    let content = LocalStore::open(data_dir.join("content")).await?;
    Ok((Arc::new(meta), content))
}
