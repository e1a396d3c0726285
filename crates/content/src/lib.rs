//! `s3ipfs-content`: `ContentStore` adapters. Today the local CID store ([`LocalStore`]); Filebase joins it.

mod local;

pub use local::LocalStore;
