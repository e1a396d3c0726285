//! `s3ipfs-content`: `ContentStore` adapters: the local CID store ([`LocalStore`]) and remote S3-compatible
//! backends, Filebase among them ([`RemoteStore`]).

mod local;
mod remote;

pub use local::LocalStore;
pub use remote::{Flavor, RemoteCounts, RemoteSettings, RemoteSetupError, RemoteStats, RemoteStore};
