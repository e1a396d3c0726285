//! `s3ipfs-meta`: `MetaStore` adapters: the embedded store ([`SqliteMeta`]) and PostgreSQL ([`PgMeta`]), held to
//! the same conformance suite.

mod codec;
mod postgres;
mod sqlite;
mod sqlite_content;
mod sqlite_multipart;
mod sqlite_rows;
#[cfg(any(test, feature = "testing"))]
pub mod testing;

pub use postgres::{PgMeta, PgOpenError, PgSettings};
pub use sqlite::{SqliteMeta, SqliteOpenError};
/// A parsed PostgreSQL connection string (URL or key=value form).
pub use tokio_postgres::Config as PgConfig;
