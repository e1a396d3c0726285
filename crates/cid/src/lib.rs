//! `s3ipfs-cid`: turns a byte stream into exactly the CID and blocks `ipfs add` produces, and computes the S3
//! checksums in the same pass.
//!
//! - [`Importer`]: streaming, bounded-memory UnixFS importer for the [`Profile`]s `kubo-v1` (default), `kubo-v0`
//!   and `unixfs-v1-2025`, with MD5 (the ETag) and optional CRC32/CRC32C/CRC64NVME/SHA-1/SHA-256.
//! - [`Assembler`]: the same root from the leaves of chunk-aligned pieces (multipart uploads).
//! - [`car`]: CAR v1 writer and verifying reader; [`dag`]: walking a DAG and reading a file back.
//!
//! Pure and synchronous: no async runtime, no I/O beyond the `Read`/`Write` a caller hands in.

pub mod assemble;
pub mod block;
pub mod car;
pub mod checksum;
pub mod cid;
pub mod dag;
pub mod importer;
pub mod pb;
pub mod profile;
mod tree;
pub mod unpack;
pub mod varint;

pub use assemble::{AssembleError, Assembler};
pub use block::{Block, BlockKind, DagLink};
pub use checksum::{Algorithm, ChecksumHasher, ChecksumSet, ChecksumType, Checksums};
pub use cid::{Cid, CidError, Version};
pub use dag::{BlockSource, DagError, MemoryBlocks};
pub use importer::{ImportSummary, Importer, Pushed, cid_of, import_reader};
pub use profile::{Profile, ProfileError, ProfileName};
pub use unpack::{CarUnpacker, UnpackError, Unpacked};
