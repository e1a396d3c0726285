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

/// How an object's checksum covers a multipart upload (S3's `x-amz-checksum-type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ChecksumType {
    /// The checksum of the whole content, whatever the parts (CRCs combined from the parts' CRCs).
    FullObject,
    /// The checksum of the parts' checksums, written with a `-N` suffix.
    Composite,
}

impl ChecksumType {
    /// The name S3 uses: `FULL_OBJECT` or `COMPOSITE`.
    pub fn s3_name(self) -> &'static str {
        match self {
            ChecksumType::FullObject => "FULL_OBJECT",
            ChecksumType::Composite => "COMPOSITE",
        }
    }

    /// Parses S3's name (exact, as S3 compares it).
    pub fn parse(name: &str) -> Option<Self> {
        [ChecksumType::FullObject, ChecksumType::Composite].into_iter().find(|t| t.s3_name() == name)
    }

    /// The type S3 uses when a multipart upload names only its algorithm.
    pub fn default_for(algorithm: Algorithm) -> Self {
        match algorithm {
            Algorithm::Crc64Nvme => ChecksumType::FullObject,
            _ => ChecksumType::Composite,
        }
    }

    /// Whether S3 allows this type with `algorithm` (full-object needs a CRC; CRC64NVME is full-object only).
    pub fn allows(self, algorithm: Algorithm) -> bool {
        match self {
            ChecksumType::FullObject => crc_algorithm(algorithm).is_some(),
            ChecksumType::Composite => !matches!(algorithm, Algorithm::Crc64Nvme | Algorithm::Md5),
        }
    }
}

impl fmt::Display for ChecksumType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.s3_name())
    }
}

fn crc_algorithm(algorithm: Algorithm) -> Option<CrcAlgorithm> {
    match algorithm {
        Algorithm::Crc32 => Some(CrcAlgorithm::Crc32IsoHdlc),
        Algorithm::Crc32c => Some(CrcAlgorithm::Crc32Iscsi),
        Algorithm::Crc64Nvme => Some(CrcAlgorithm::Crc64Nvme),
        Algorithm::Md5 | Algorithm::Sha1 | Algorithm::Sha256 => None,
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

    /// S3's COMPOSITE checksum of a multipart object: `algorithm` over the parts' raw checksums, concatenated in
    /// order. `None` when a part lacks that checksum.
    pub fn composite<'a>(algorithm: Algorithm, parts: impl IntoIterator<Item = &'a Checksums>) -> Option<Checksums> {
        let mut hasher = ChecksumHasher::new(ChecksumSet::NONE.with(algorithm));
        for part in parts {
            hasher.update(&part.bytes(algorithm)?);
        }
        Some(hasher.finish())
    }

    /// S3's FULL_OBJECT checksum of a multipart object: the parts' CRCs (each with its part's length) combined
    /// into the CRC of the whole content. `None` for a non-CRC algorithm, no part, or a part lacking the CRC.
    pub fn combined<'a>(
        algorithm: Algorithm,
        parts: impl IntoIterator<Item = (&'a Checksums, u64)>,
    ) -> Option<Checksums> {
        let crc = crc_algorithm(algorithm)?;
        let mut parts = parts.into_iter();
        let value = |sums: &Checksums| match algorithm {
            Algorithm::Crc32 => sums.crc32.map(u64::from),
            Algorithm::Crc32c => sums.crc32c.map(u64::from),
            _ => sums.crc64nvme,
        };
        let mut whole = value(parts.next()?.0)?;
        for (sums, len) in parts {
            whole = crc_fast::checksum_combine(crc, whole, value(sums)?, len);
        }
        Some(match algorithm {
            Algorithm::Crc32 => Checksums { crc32: Some(whole as u32), ..Checksums::default() },
            Algorithm::Crc32c => Checksums { crc32c: Some(whole as u32), ..Checksums::default() },
            _ => Checksums { crc64nvme: Some(whole), ..Checksums::default() },
        })
    }

    /// Whether `value` has the form of an `algorithm` checksum: base64 of a digest of the right length.
    pub fn is_well_formed(algorithm: Algorithm, value: &str) -> bool {
        let len = match algorithm {
            Algorithm::Crc32 | Algorithm::Crc32c => 4,
            Algorithm::Crc64Nvme => 8,
            Algorithm::Md5 => 16,
            Algorithm::Sha1 => 20,
            Algorithm::Sha256 => 32,
        };
        BASE64.decode(value.trim()).is_ok_and(|d| d.len() == len)
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
    fn full_object_crcs_combine_from_parts() {
        let data: Vec<u8> = (0..100_000u32).map(|i| (i * 7 % 253) as u8).collect();
        let whole = digest(&data);
        let pieces = [&data[..1], &data[1..40_000], &data[40_000..40_000], &data[40_000..]];
        let parts: Vec<(Checksums, u64)> = pieces.iter().map(|p| (digest(p), p.len() as u64)).collect();
        for algorithm in [Algorithm::Crc32, Algorithm::Crc32c, Algorithm::Crc64Nvme] {
            let combined = Checksums::combined(algorithm, parts.iter().map(|(c, l)| (c, *l))).expect("a CRC");
            assert_eq!(combined.base64(algorithm), whole.base64(algorithm), "{algorithm}");
        }
        assert_eq!(Checksums::combined(Algorithm::Sha256, parts.iter().map(|(c, l)| (c, *l))), None);
        assert_eq!(Checksums::combined(Algorithm::Crc32, std::iter::empty()), None);
    }

    #[test]
    fn composite_checksums_hash_the_raw_part_checksums() {
        // One part whose checksum is known, and the composite S3 reports for it (published S3 test values).
        let cases = [
            (Algorithm::Crc32, "y/Q5Jg==", "7kxlUA=="),
            (Algorithm::Crc32c, "4waSgw==", "pzJFoA=="),
            (Algorithm::Sha1, "98O8HYCOBHMq32eZZczDTKeuNEE=", "zGcEPHvP9e6lVmvZsfPHT9mlz10="),
            (
                Algorithm::Sha256,
                "FeKw08M4keuw8e9gnsQZQgwg4yDOlMZfvIwzEkSOsiU=",
                "KSsNAHVmgy25S/rmic1w0at3KBH9RLn0nYVQ7p6mpJQ=",
            ),
        ];
        for (algorithm, part, composite) in cases {
            let raw = BASE64.decode(part).expect("base64");
            let mut hasher = ChecksumHasher::new(ChecksumSet::NONE.with(algorithm));
            hasher.update(&raw);
            let expected = hasher.finish();
            let part_sums = Checksums::composite(algorithm, [&Checksums::default()]);
            assert_eq!(part_sums, None, "a part without the checksum gives no composite");
            let parts = [part_from(algorithm, &raw)];
            let got = Checksums::composite(algorithm, parts.iter()).expect("composite");
            assert_eq!(got, expected);
            assert_eq!(got.base64(algorithm).as_deref(), Some(composite), "{algorithm}");
        }
    }

    fn part_from(algorithm: Algorithm, raw: &[u8]) -> Checksums {
        let mut sums = Checksums::default();
        match algorithm {
            Algorithm::Crc32 => sums.crc32 = Some(u32::from_be_bytes(raw.try_into().expect("4 bytes"))),
            Algorithm::Crc32c => sums.crc32c = Some(u32::from_be_bytes(raw.try_into().expect("4 bytes"))),
            Algorithm::Sha1 => sums.sha1 = Some(raw.try_into().expect("20 bytes")),
            Algorithm::Sha256 => sums.sha256 = Some(raw.try_into().expect("32 bytes")),
            _ => unreachable!("not used"),
        }
        sums
    }

    #[test]
    fn checksum_types_follow_s3_rules() {
        assert_eq!(ChecksumType::default_for(Algorithm::Crc64Nvme), ChecksumType::FullObject);
        assert_eq!(ChecksumType::default_for(Algorithm::Crc32), ChecksumType::Composite);
        assert!(!ChecksumType::Composite.allows(Algorithm::Crc64Nvme));
        assert!(!ChecksumType::FullObject.allows(Algorithm::Sha256));
        assert!(ChecksumType::FullObject.allows(Algorithm::Crc32c) && ChecksumType::Composite.allows(Algorithm::Sha1));
        assert_eq!(ChecksumType::parse("FULL_OBJECT"), Some(ChecksumType::FullObject));
        assert_eq!(ChecksumType::parse("composite"), None);
        assert!(Checksums::is_well_formed(Algorithm::Crc32, "y/Q5Jg=="));
        assert!(!Checksums::is_well_formed(Algorithm::Crc32, "y/Q5Jh==x"));
        assert!(!Checksums::is_well_formed(Algorithm::Sha1, "y/Q5Jg=="));
    }

    #[test]
    fn algorithm_names_parse_case_insensitively() {
        assert_eq!("crc64nvme".parse::<Algorithm>(), Ok(Algorithm::Crc64Nvme));
        assert_eq!("SHA256".parse::<Algorithm>(), Ok(Algorithm::Sha256));
        assert!("crc16".parse::<Algorithm>().is_err());
    }
}
