//! Use cases: what the S3 API (and later the admin API) call. Each method checks tenancy, then drives the ports.

mod buckets;
mod error;
mod listing;
mod objects;

use std::sync::Arc;

use s3ipfs_cid::Profile;

use crate::content::ContentStore;
use crate::meta::MetaStore;

pub use error::ServiceError;
pub use listing::{ListParams, Listing, VersionListing, VersionsParams};
pub use objects::{DeleteOutcome, PutCondition, PutObject};

/// The gateway's use cases over one metadata store and one content store.
#[derive(Clone)]
pub struct Gateway {
    meta: Arc<dyn MetaStore>,
    content: Arc<dyn ContentStore>,
    profile: Profile,
}

impl std::fmt::Debug for Gateway {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gateway").field("profile", &self.profile).finish_non_exhaustive()
    }
}

impl Gateway {
    /// Wires the use cases to their ports; `profile` decides the CIDs of new objects.
    pub fn new(meta: Arc<dyn MetaStore>, content: Arc<dyn ContentStore>, profile: Profile) -> Self {
        Gateway { meta, content, profile }
    }

    /// The metadata store (for auth lookups).
    pub fn meta(&self) -> &Arc<dyn MetaStore> {
        &self.meta
    }

    /// The content store.
    pub fn content(&self) -> &Arc<dyn ContentStore> {
        &self.content
    }

    /// The import profile of new objects.
    pub fn profile(&self) -> Profile {
        self.profile
    }
}
