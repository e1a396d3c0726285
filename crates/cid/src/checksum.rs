//! The S3 checksums (MD5 for the ETag, CRC32, CRC32C, CRC64NVME, SHA-1, SHA-256), computed in one pass.
//!
//! S3 sends and returns each `x-amz-checksum-*` value as base64 of the big-endian digest; the ETag of a single-part
//! object is the hex MD5 in double quotes.

use std::fmt;
use std::str::FromStr;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use crc_fast::{CrcAlgorithm, Digest as CrcDigest};
use md5::Md5;
use sha1::Sha1;
use sha2::{Digest as _, Sha256};

/// A checksum the importer can compute.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Algorithm {
    /// MD5: the ETag of a single-part upload, and `Content-MD5`.
    Md5,
    /// CRC-32 (ISO-HDLC), `x-amz-checksum-crc32`.
    Crc32,
    /// CRC-32C (Castagnoli), `x-amz-checksum-crc32c`.
    Crc32c,
    /// CRC-64/NVME, `x-amz-checksum-crc64nvme`.
    Crc64Nvme,
    /// SHA-1, `x-amz-checksum-sha1`.
    Sha1,
    /// SHA-256 of the whole object, `x-amz-checksum-sha256`.
    Sha256,
}

impl Algorithm {
    /// Every algorithm, in a fixed order.
    pub const ALL: [Algorithm; 6] =
        [Algorithm::Md5, Algorithm::Crc32, Algorithm::Crc32c, Algorithm::Crc64Nvme, Algorithm::Sha1, Algorithm::Sha256];

    /// The name S3 uses in `x-amz-checksum-algorithm` (`CRC32`, …); `MD5` for MD5.
    pub fn s3_name(self) -> &'static str {
        match self {
            Algorithm::Md5 => "MD5",
            Algorithm::Crc32 => "CRC32",
            Algorithm::Crc32c => "CRC32C",
            Algorithm::Crc64Nvme => "CRC64NVME",
            Algorithm::Sha1 => "SHA1",
            Algorithm::Sha256 => "SHA256",
        }
    }

    fn bit(self) -> u8 {
        1 << (self as u8)
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.s3_name())
    }
}

/// The name is not a checksum algorithm.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown checksum algorithm {0:?}")]
pub struct UnknownAlgorithm(pub String);

impl FromStr for Algorithm {
    type Err = UnknownAlgorithm;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        Algorithm::ALL
            .into_iter()
            .find(|a| a.s3_name().eq_ignore_ascii_case(name))
            .ok_or_else(|| UnknownAlgorithm(name.to_owned()))
    }
}

/// A set of algorithms to compute.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct ChecksumSet(u8);

impl ChecksumSet {
    /// No checksum at all (the CID only).
    pub const NONE: ChecksumSet = ChecksumSet(0);
    /// MD5 only: what every S3 PUT needs for its ETag.
    pub const MD5: ChecksumSet = ChecksumSet(1);

    /// This set plus `algorithm`.
    pub fn with(self, algorithm: Algorithm) -> Self {
        ChecksumSet(self.0 | algorithm.bit())
    }

    /// Whether the set holds `algorithm`.
    pub fn contains(self, algorithm: Algorithm) -> bool {
        self.0 & algorithm.bit() != 0
    }
}

impl FromIterator<Algorithm> for ChecksumSet {
    fn from_iter<I: IntoIterator<Item = Algorithm>>(iter: I) -> Self {
        iter.into_iter().fold(ChecksumSet::NONE, ChecksumSet::with)
    }
}

/// Computes the algorithms of a [`ChecksumSet`] over a stream of bytes.
#[derive(Clone)]
pub struct ChecksumHasher {
    md5: Option<Md5>,
    crc32: Option<CrcDigest>,
    crc32c: Option<CrcDigest>,
    crc64nvme: Option<CrcDigest>,
    sha1: Option<Sha1>,
    sha256: Option<Sha256>,
}

impl fmt::Debug for ChecksumHasher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ChecksumHasher").field("set", &self.set()).finish()
    }
}

impl ChecksumHasher {
    /// A hasher for the algorithms in `set`.
    pub fn new(set: ChecksumSet) -> Self {
        let crc = |alg, crc_alg| set.contains(alg).then(|| CrcDigest::new(crc_alg));
        ChecksumHasher {
            md5: set.contains(Algorithm::Md5).then(Md5::new),
            crc32: crc(Algorithm::Crc32, CrcAlgorithm::Crc32IsoHdlc),
            crc32c: crc(Algorithm::Crc32c, CrcAlgorithm::Crc32Iscsi),
            crc64nvme: crc(Algorithm::Crc64Nvme, CrcAlgorithm::Crc64Nvme),
            sha1: set.contains(Algorithm::Sha1).then(Sha1::new),
            sha256: set.contains(Algorithm::Sha256).then(Sha256::new),
        }
    }

    /// The algorithms being computed.
    pub fn set(&self) -> ChecksumSet {
        let present = [
            (Algorithm::Md5, self.md5.is_some()),
            (Algorithm::Crc32, self.crc32.is_some()),
            (Algorithm::Crc32c, self.crc32c.is_some()),
            (Algorithm::Crc64Nvme, self.crc64nvme.is_some()),
            (Algorithm::Sha1, self.sha1.is_some()),
            (Algorithm::Sha256, self.sha256.is_some()),
        ];
        present.into_iter().filter(|(_, on)| *on).map(|(alg, _)| alg).collect()
    }

    /// Feeds the next bytes.
    pub fn update(&mut self, data: &[u8]) {
        if let Some(h) = &mut self.md5 {
            h.update(data);
        }
        for crc in [&mut self.crc32, &mut self.crc32c, &mut self.crc64nvme].into_iter().flatten() {
            crc.update(data);
        }
        if let Some(h) = &mut self.sha1 {
            h.update(data);
        }
        if let Some(h) = &mut self.sha256 {
            h.update(data);
        }
    }

    /// The digests of everything fed.
    pub fn finish(self) -> Checksums {
        Checksums {
            md5: self.md5.map(|h| h.finalize().into()),
            crc32: self.crc32.map(|c| c.finalize() as u32),
            crc32c: self.crc32c.map(|c| c.finalize() as u32),
            crc64nvme: self.crc64nvme.map(|c| c.finalize()),
            sha1: self.sha1.map(|h| h.finalize().into()),
            sha256: self.sha256.map(|h| h.finalize().into()),
        }
    }
}

/// Finished digests; an algorithm that was not requested is `None`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Checksums {
    /// MD5 digest.
    pub md5: Option<[u8; 16]>,
    /// CRC-32 value.
    pub crc32: Option<u32>,
    /// CRC-32C value.
    pub crc32c: Option<u32>,
    /// CRC-64/NVME value.
    pub crc64nvme: Option<u64>,
    /// SHA-1 digest.
    pub sha1: Option<[u8; 20]>,
    /// SHA-256 digest.
    pub sha256: Option<[u8; 32]>,
}

impl Checksums {
    /// The big-endian digest bytes of `algorithm`, if computed.
    pub fn bytes(&self, algorithm: Algorithm) -> Option<Vec<u8>> {
        match algorithm {
            Algorithm::Md5 => self.md5.map(|d| d.to_vec()),
            Algorithm::Crc32 => self.crc32.map(|v| v.to_be_bytes().to_vec()),
            Algorithm::Crc32c => self.crc32c.map(|v| v.to_be_bytes().to_vec()),
            Algorithm::Crc64Nvme => self.crc64nvme.map(|v| v.to_be_bytes().to_vec()),
            Algorithm::Sha1 => self.sha1.map(|d| d.to_vec()),
            Algorithm::Sha256 => self.sha256.map(|d| d.to_vec()),
        }
    }

    /// The value as S3 sends it in `x-amz-checksum-*` (and `Content-MD5`): base64 of the big-endian digest.
    pub fn base64(&self, algorithm: Algorithm) -> Option<String> {
        self.bytes(algorithm).map(|b| BASE64.encode(b))
    }

    /// The S3 ETag of a single-part object: the hex MD5 in double quotes.
    pub fn etag(&self) -> Option<String> {
        self.md5.map(|d| format!("\"{}\"", data_encoding::HEXLOWER.encode(&d)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all() -> ChecksumSet {
        Algorithm::ALL.into_iter().collect()
    }

    fn digest(data: &[u8]) -> Checksums {
        let mut hasher = ChecksumHasher::new(all());
        hasher.update(data);
        hasher.finish()
    }

    #[test]
    fn crc_check_values_match_the_crc_catalogue() {
        let sums = digest(b"123456789");
        assert_eq!(sums.crc32, Some(0xCBF4_3926));
        assert_eq!(sums.crc32c, Some(0xE306_9283));
        assert_eq!(sums.crc64nvme, Some(0xAE8B_1486_0A79_9888));
    }

    #[test]
    fn s3_encodings_are_base64_of_big_endian_digests() {
        let sums = digest(b"hello world");
        assert_eq!(sums.etag().as_deref(), Some("\"5eb63bbbe01eeed093cb22bb8f5acdc3\""));
        assert_eq!(sums.base64(Algorithm::Md5).as_deref(), Some("XrY7u+Ae7tCTyyK7j1rNww=="));
        assert_eq!(sums.base64(Algorithm::Crc32).as_deref(), Some("DUoRhQ=="));
        assert_eq!(sums.base64(Algorithm::Crc32c).as_deref(), Some("yZRlqg=="));
        assert_eq!(sums.base64(Algorithm::Sha1).as_deref(), Some("Kq5sNclPz7QV2+lfQIuc6R7oRu0="));
        assert_eq!(sums.base64(Algorithm::Sha256).as_deref(), Some("uU0nuZNNPgilLlLX2n2r+sSE7+N6U4DukIj3rOLvzek="));
    }

    #[test]
    fn the_result_does_not_depend_on_how_the_input_was_split() {
        let data: Vec<u8> = (0..10_000u32).map(|i| (i % 251) as u8).collect();
        let mut hasher = ChecksumHasher::new(all());
        for piece in data.chunks(7) {
            hasher.update(piece);
        }
        assert_eq!(hasher.finish(), digest(&data));
    }

    #[test]
    fn only_requested_algorithms_are_computed() {
        let mut hasher = ChecksumHasher::new(ChecksumSet::MD5.with(Algorithm::Crc32c));
        assert_eq!(hasher.set(), ChecksumSet::MD5.with(Algorithm::Crc32c));
        hasher.update(b"x");
        let sums = hasher.finish();
        assert!(sums.md5.is_some() && sums.crc32c.is_some());
        assert_eq!((sums.crc32, sums.crc64nvme, sums.sha1, sums.sha256), (None, None, None, None));
    }

    #[test]
    fn algorithm_names_parse_case_insensitively() {
        assert_eq!("crc64nvme".parse::<Algorithm>(), Ok(Algorithm::Crc64Nvme));
        assert_eq!("SHA256".parse::<Algorithm>(), Ok(Algorithm::Sha256));
        assert!("crc16".parse::<Algorithm>().is_err());
    }
}
