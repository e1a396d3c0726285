//! `s3ipfs-meta`: `MetaStore` adapters. Today the embedded store ([`SqliteMeta`]); PostgreSQL joins it behind the
//! same conformance suite.

mod sqlite;
mod sqlite_content;
mod sqlite_multipart;
mod sqlite_rows;

pub use sqlite::{SqliteMeta, SqliteOpenError};
