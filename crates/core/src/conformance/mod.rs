//! Conformance suites every adapter runs: `pub async fn` test bodies asserting the port contracts, so memory,
//! SQLite, PostgreSQL, the local store and Filebase are held to exactly the same observable behaviour.

pub mod content;
pub mod meta;
pub mod meta_shared;
