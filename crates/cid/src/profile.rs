//! Import profiles: the parameters that decide which CID a byte stream gets.

use std::fmt;
use std::str::FromStr;

use bytes::Bytes;

use crate::block::DagLink;
use crate::cid::{Cid, DAG_PB, RAW, Version};
use crate::pb;

/// Largest chunk an importer accepts: kubo's `size-N` limit (2 MiB minus room for a dag-pb leaf's framing).
pub const MAX_CHUNK_SIZE: usize = 2 * 1024 * 1024 - 256;

/// How a byte stream becomes a UnixFS DAG: fixed-size chunks, a balanced tree, SHA2-256.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Profile {
    name: ProfileName,
    version: Version,
    raw_leaves: bool,
    chunk_size: usize,
    max_links: usize,
}

/// The named profiles, and `Custom` for tests and experiments.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ProfileName {
    /// `ipfs add --cid-version=1`: CIDv1, raw leaves, 256 KiB chunks, 174 links.
    KuboV1,
    /// Plain `ipfs add` (`unixfs-v0-2015`): CIDv0, dag-pb leaves, 256 KiB chunks, 174 links.
    KuboV0,
    /// IPIP-499 `unixfs-v1-2025`: CIDv1, raw leaves, 1 MiB chunks, 1024 links.
    UnixfsV1_2025,
    /// Parameters chosen by the caller.
    Custom,
}

/// Why profile parameters were refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProfileError {
    /// The name is not one of the named profiles.
    #[error("unknown profile {0:?} (expected kubo-v1, kubo-v0 or unixfs-v1-2025)")]
    Unknown(String),
    /// Chunk size out of range.
    #[error("chunk size {0} is outside 1..={MAX_CHUNK_SIZE}")]
    ChunkSize(usize),
    /// Fewer than two links per node never converges to one root.
    #[error("max links {0} must be at least 2")]
    MaxLinks(usize),
    /// A CIDv0 can only name dag-pb blocks.
    #[error("CIDv0 cannot use raw leaves")]
    RawLeavesV0,
}

impl Profile {
    /// `ipfs add --cid-version=1`, the gateway's default.
    pub const KUBO_V1: Profile = Profile {
        name: ProfileName::KuboV1,
        version: Version::V1,
        raw_leaves: true,
        chunk_size: 262_144,
        max_links: 174,
    };
    /// Plain `ipfs add` (CIDv0).
    pub const KUBO_V0: Profile = Profile {
        name: ProfileName::KuboV0,
        version: Version::V0,
        raw_leaves: false,
        chunk_size: 262_144,
        max_links: 174,
    };
    /// IPIP-499 `unixfs-v1-2025`.
    pub const UNIXFS_V1_2025: Profile = Profile {
        name: ProfileName::UnixfsV1_2025,
        version: Version::V1,
        raw_leaves: true,
        chunk_size: 1_048_576,
        max_links: 1024,
    };
    /// Every named profile.
    pub const ALL: [Profile; 3] = [Self::KUBO_V1, Self::KUBO_V0, Self::UNIXFS_V1_2025];

    /// A profile with parameters of the caller's choosing.
    pub fn custom(
        version: Version,
        raw_leaves: bool,
        chunk_size: usize,
        max_links: usize,
    ) -> Result<Self, ProfileError> {
        if chunk_size == 0 || chunk_size > MAX_CHUNK_SIZE {
            return Err(ProfileError::ChunkSize(chunk_size));
        }
        if max_links < 2 {
            return Err(ProfileError::MaxLinks(max_links));
        }
        if version == Version::V0 && raw_leaves {
            return Err(ProfileError::RawLeavesV0);
        }
        Ok(Profile { name: ProfileName::Custom, version, raw_leaves, chunk_size, max_links })
    }

    /// Which profile this is.
    pub fn name(&self) -> ProfileName {
        self.name
    }

    /// CID version of the DAG's nodes.
    pub fn version(&self) -> Version {
        self.version
    }

    /// Whether leaves are raw blocks (otherwise dag-pb UnixFS leaves).
    pub fn raw_leaves(&self) -> bool {
        self.raw_leaves
    }

    /// File bytes per leaf.
    pub fn chunk_size(&self) -> usize {
        self.chunk_size
    }

    /// Most links an interior node holds.
    pub fn max_links(&self) -> usize {
        self.max_links
    }

    /// Whether `cid` has the version and codec this profile gives leaves.
    pub fn is_leaf_cid(&self, cid: &Cid) -> bool {
        let codec = if self.raw_leaves { RAW } else { DAG_PB };
        cid.version() == self.version && cid.codec() == codec
    }

    /// The leaf block for one chunk of file bytes, and its link.
    pub fn leaf(&self, chunk: Bytes) -> (Bytes, DagLink) {
        let file_size = chunk.len() as u64;
        let block = if self.raw_leaves { chunk } else { Bytes::from(pb::encode_leaf(&chunk)) };
        let codec = if self.raw_leaves { RAW } else { DAG_PB };
        let cid = Cid::for_block(self.version, codec, &block);
        let link = DagLink { cid, file_size, dag_size: block.len() as u64 };
        (block, link)
    }

    /// The interior node over `links`, and its link.
    pub fn node(&self, links: &[DagLink]) -> (Bytes, DagLink) {
        let block = pb::encode_file_node(links);
        let cid = Cid::for_block(self.version, DAG_PB, &block);
        let file_size = links.iter().map(|l| l.file_size).sum();
        let dag_size = block.len() as u64 + links.iter().map(|l| l.dag_size).sum::<u64>();
        (Bytes::from(block), DagLink { cid, file_size, dag_size })
    }
}

impl Default for Profile {
    fn default() -> Self {
        Self::KUBO_V1
    }
}

impl fmt::Display for Profile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name {
            ProfileName::KuboV1 => f.write_str("kubo-v1"),
            ProfileName::KuboV0 => f.write_str("kubo-v0"),
            ProfileName::UnixfsV1_2025 => f.write_str("unixfs-v1-2025"),
            ProfileName::Custom => write!(
                f,
                "custom(cid-v{}, {} leaves, {} B chunks, {} links)",
                if self.version == Version::V0 { 0 } else { 1 },
                if self.raw_leaves { "raw" } else { "dag-pb" },
                self.chunk_size,
                self.max_links
            ),
        }
    }
}

impl FromStr for Profile {
    type Err = ProfileError;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        match name {
            "kubo-v1" => Ok(Self::KUBO_V1),
            "kubo-v0" | "unixfs-v0-2015" => Ok(Self::KUBO_V0),
            "unixfs-v1-2025" => Ok(Self::UNIXFS_V1_2025),
            other => Err(ProfileError::Unknown(other.to_owned())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn named_profiles_round_trip_through_their_names() {
        for profile in Profile::ALL {
            assert_eq!(profile.to_string().parse::<Profile>(), Ok(profile));
        }
        assert_eq!("unixfs-v0-2015".parse::<Profile>(), Ok(Profile::KUBO_V0));
        assert!(matches!("kubo-v2".parse::<Profile>(), Err(ProfileError::Unknown(_))));
    }

    #[test]
    fn impossible_custom_profiles_are_refused() {
        assert_eq!(Profile::custom(Version::V1, true, 0, 174), Err(ProfileError::ChunkSize(0)));
        assert_eq!(Profile::custom(Version::V1, true, 16, 1), Err(ProfileError::MaxLinks(1)));
        assert_eq!(Profile::custom(Version::V0, true, 16, 4), Err(ProfileError::RawLeavesV0));
        assert!(Profile::custom(Version::V1, false, 16, 4).is_ok());
    }
}
