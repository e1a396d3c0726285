//! Content identifiers: the binary and string forms of CIDv0 and CIDv1.

use std::fmt;
use std::str::FromStr;

use sha2::{Digest as _, Sha256};

use crate::varint;

/// Multicodec of a raw block (the leaf of a raw-leaves DAG).
pub const RAW: u64 = 0x55;
/// Multicodec of a dag-pb (UnixFS) node.
pub const DAG_PB: u64 = 0x70;
/// Multihash code of SHA2-256.
pub const SHA2_256: u64 = 0x12;
/// Multihash code of the identity "hash" (the digest is the data).
pub const IDENTITY: u64 = 0x00;

/// Largest digest a [`Cid`] can hold (SHA2-512, BLAKE2b-512, …); identity CIDs are limited to it too.
pub const MAX_DIGEST_LEN: usize = 64;

/// The CID version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Version {
    /// CIDv0: a bare SHA2-256 multihash of a dag-pb block, written in base58btc (`Qm…`).
    V0,
    /// CIDv1: version, codec and multihash, written in multibase (base32 `b…` here).
    V1,
}

/// A content identifier. Small and `Copy`: the digest is stored inline.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Cid {
    version: Version,
    codec: u64,
    hash_code: u64,
    digest_len: u8,
    digest: [u8; MAX_DIGEST_LEN],
}

/// Why bytes or text are not a CID.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CidError {
    /// The input is empty.
    #[error("empty CID")]
    Empty,
    /// The input ended inside the CID.
    #[error("truncated CID")]
    Truncated,
    /// A varint is malformed.
    #[error("malformed varint in CID")]
    Varint,
    /// The version is neither 0 nor 1.
    #[error("unsupported CID version {0}")]
    Version(u64),
    /// The multibase prefix is not one we read (`b`, `B`, `z`, `f`, `F`, or a bare `Qm…`).
    #[error("unsupported multibase prefix {0:?}")]
    Multibase(char),
    /// The text is not valid in its base.
    #[error("invalid {base} text in CID")]
    Encoding {
        /// The base that failed to decode.
        base: &'static str,
    },
    /// A CIDv0 must be a 34-byte SHA2-256 multihash.
    #[error("a CIDv0 must be a SHA2-256 multihash of 34 bytes")]
    InvalidV0,
    /// The digest is longer than [`MAX_DIGEST_LEN`].
    #[error("digest of {0} bytes is too long")]
    DigestTooLong(u64),
    /// The digest length does not match the hash function.
    #[error("digest length {len} does not fit multihash 0x{code:x}")]
    DigestLength {
        /// The multihash code.
        code: u64,
        /// The declared length.
        len: usize,
    },
    /// Bytes remain after the CID.
    #[error("{0} unexpected bytes after the CID")]
    TrailingBytes(usize),
}

impl From<varint::VarintError> for CidError {
    fn from(err: varint::VarintError) -> Self {
        match err {
            varint::VarintError::Truncated => CidError::Truncated,
            varint::VarintError::Invalid => CidError::Varint,
        }
    }
}

impl Cid {
    fn with_digest(version: Version, codec: u64, hash_code: u64, digest: &[u8]) -> Result<Self, CidError> {
        if digest.len() > MAX_DIGEST_LEN {
            return Err(CidError::DigestTooLong(digest.len() as u64));
        }
        if hash_code == SHA2_256 && digest.len() != 32 {
            return Err(CidError::DigestLength { code: hash_code, len: digest.len() });
        }
        let mut buf = [0u8; MAX_DIGEST_LEN];
        buf[..digest.len()].copy_from_slice(digest);
        Ok(Cid { version, codec, hash_code, digest_len: digest.len() as u8, digest: buf })
    }

    /// A CIDv0 (dag-pb, SHA2-256) from a digest.
    pub fn v0(digest: [u8; 32]) -> Self {
        Self::sha256_digest(Version::V0, DAG_PB, digest)
    }

    /// A CIDv1 with the given codec and a SHA2-256 digest.
    pub fn v1(codec: u64, digest: [u8; 32]) -> Self {
        Self::sha256_digest(Version::V1, codec, digest)
    }

    fn sha256_digest(version: Version, codec: u64, digest: [u8; 32]) -> Self {
        let mut buf = [0u8; MAX_DIGEST_LEN];
        buf[..32].copy_from_slice(&digest);
        Cid { version, codec, hash_code: SHA2_256, digest_len: 32, digest: buf }
    }

    /// Hashes `block` with SHA2-256 and names it with the given version and codec.
    /// A CIDv0 is always dag-pb, whatever `codec` says.
    pub fn for_block(version: Version, codec: u64, block: &[u8]) -> Self {
        let digest: [u8; 32] = Sha256::digest(block).into();
        match version {
            Version::V0 => Self::v0(digest),
            Version::V1 => Self::v1(codec, digest),
        }
    }

    /// The CID version.
    pub fn version(&self) -> Version {
        self.version
    }

    /// The multicodec of the block (`RAW`, `DAG_PB`, …).
    pub fn codec(&self) -> u64 {
        self.codec
    }

    /// The multihash function code.
    pub fn hash_code(&self) -> u64 {
        self.hash_code
    }

    /// The digest bytes.
    pub fn digest(&self) -> &[u8] {
        &self.digest[..usize::from(self.digest_len)]
    }

    /// Whether `block` hashes to this CID. CIDs whose hash function we do not implement never verify.
    pub fn verifies(&self, block: &[u8]) -> bool {
        match self.hash_code {
            SHA2_256 => Sha256::digest(block).as_slice() == self.digest(),
            IDENTITY => block == self.digest(),
            _ => false,
        }
    }

    /// Whether this crate can check blocks against this CID (SHA2-256 or identity).
    pub fn is_verifiable(&self) -> bool {
        matches!(self.hash_code, SHA2_256 | IDENTITY)
    }

    /// The binary form (what dag-pb links and CAR sections hold).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.encoded_len());
        self.write_bytes(&mut out);
        out
    }

    /// Appends the binary form to `out`.
    pub fn write_bytes(&self, out: &mut Vec<u8>) {
        if self.version == Version::V1 {
            varint::encode(1, out);
            varint::encode(self.codec, out);
        }
        varint::encode(self.hash_code, out);
        varint::encode(u64::from(self.digest_len), out);
        out.extend_from_slice(self.digest());
    }

    /// The length of the binary form.
    pub fn encoded_len(&self) -> usize {
        let prefix = match self.version {
            Version::V0 => 0,
            Version::V1 => 1 + varint::encoded_len(self.codec),
        };
        prefix
            + varint::encoded_len(self.hash_code)
            + varint::encoded_len(u64::from(self.digest_len))
            + self.digest().len()
    }

    /// Reads a binary CID from the start of `input`; returns it and the number of bytes it used.
    pub fn read_bytes(input: &[u8]) -> Result<(Self, usize), CidError> {
        if input.is_empty() {
            return Err(CidError::Empty);
        }
        if input.len() >= 2 && input[0] == 0x12 && input[1] == 0x20 {
            let digest = input.get(2..34).ok_or(CidError::Truncated)?;
            let cid = Self::with_digest(Version::V0, DAG_PB, SHA2_256, digest)?;
            return Ok((cid, 34));
        }
        let (version, mut pos) = varint::decode(input)?;
        if version != 1 {
            return Err(CidError::Version(version));
        }
        let (codec, n) = varint::decode(&input[pos..])?;
        pos += n;
        let (hash_code, n) = varint::decode(&input[pos..])?;
        pos += n;
        let (len, n) = varint::decode(&input[pos..])?;
        pos += n;
        if len > MAX_DIGEST_LEN as u64 {
            return Err(CidError::DigestTooLong(len));
        }
        let end = pos + len as usize;
        let digest = input.get(pos..end).ok_or(CidError::Truncated)?;
        Ok((Self::with_digest(Version::V1, codec, hash_code, digest)?, end))
    }

    /// Parses a binary CID that fills `input` exactly.
    pub fn from_bytes(input: &[u8]) -> Result<Self, CidError> {
        let (cid, used) = Self::read_bytes(input)?;
        match input.len() - used {
            0 => Ok(cid),
            extra => Err(CidError::TrailingBytes(extra)),
        }
    }
}

impl fmt::Display for Cid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let bytes = self.to_bytes();
        match self.version {
            Version::V0 => f.write_str(&bs58::encode(bytes).into_string()),
            Version::V1 => {
                f.write_str("b")?;
                f.write_str(&data_encoding::BASE32_NOPAD.encode(&bytes).to_ascii_lowercase())
            }
        }
    }
}

impl fmt::Debug for Cid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Cid({self})")
    }
}

impl FromStr for Cid {
    type Err = CidError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        if text.len() == 46 && text.starts_with("Qm") {
            let bytes = bs58::decode(text).into_vec().map_err(|_| CidError::Encoding { base: "base58btc" })?;
            let cid = Self::from_bytes(&bytes)?;
            return if cid.version == Version::V0 { Ok(cid) } else { Err(CidError::InvalidV0) };
        }
        let mut chars = text.chars();
        let prefix = chars.next().ok_or(CidError::Empty)?;
        let body = chars.as_str();
        let bytes = match prefix {
            'b' | 'B' => data_encoding::BASE32_NOPAD
                .decode(body.to_ascii_uppercase().as_bytes())
                .map_err(|_| CidError::Encoding { base: "base32" })?,
            'z' => bs58::decode(body).into_vec().map_err(|_| CidError::Encoding { base: "base58btc" })?,
            'f' | 'F' => data_encoding::HEXLOWER_PERMISSIVE
                .decode(body.as_bytes())
                .map_err(|_| CidError::Encoding { base: "base16" })?,
            other => return Err(CidError::Multibase(other)),
        };
        let cid = Self::from_bytes(&bytes)?;
        if cid.version == Version::V0 {
            // A multibase string always carries a CIDv1; a bare multihash inside one is not a CID.
            return Err(CidError::Version(0));
        }
        Ok(cid)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HELLO_V1: &str = "bafkreifzjut3te2nhyekklss27nh3k72ysco7y32koao5eei66wof36n5e";
    const HELLO_V0: &str = "Qmf412jQZiuVUtdgnB36FXFX7xg5V6KEbSJ4dpQuhkLyfD";

    #[test]
    fn a_raw_block_gets_the_cid_kubo_prints() {
        let cid = Cid::for_block(Version::V1, RAW, b"hello world");
        assert_eq!(cid.to_string(), HELLO_V1);
    }

    #[test]
    fn strings_round_trip_through_parse_and_display() {
        for text in [HELLO_V1, HELLO_V0, "bafybeigllfqgfpqydppr6cmv56g7ax4wyhruzswvcefv6j5kj77nzttfki"] {
            let cid: Cid = text.parse().expect("valid CID");
            assert_eq!(cid.to_string(), text);
            assert_eq!(Cid::from_bytes(&cid.to_bytes()), Ok(cid));
            assert_eq!(cid.to_bytes().len(), cid.encoded_len());
        }
    }

    #[test]
    fn uppercase_base32_and_base58_multibase_are_accepted() {
        let cid: Cid = HELLO_V1.parse().expect("valid");
        let upper: Cid = HELLO_V1.to_ascii_uppercase().parse().expect("valid uppercase");
        assert_eq!(upper, cid);
        let z = format!("z{}", bs58::encode(cid.to_bytes()).into_string());
        assert_eq!(z.parse::<Cid>(), Ok(cid));
    }

    #[test]
    fn the_identity_cid_of_nothing_verifies_the_empty_block() {
        let cid: Cid = "bafkqaaa".parse().expect("identity CID");
        assert_eq!(cid.hash_code(), IDENTITY);
        assert!(cid.verifies(b""));
        assert!(!cid.verifies(b"x"));
    }

    #[test]
    fn verification_detects_a_changed_block() {
        let cid: Cid = HELLO_V1.parse().expect("valid");
        assert!(cid.verifies(b"hello world"));
        assert!(!cid.verifies(b"hello World"));
    }

    #[test]
    fn garbage_is_rejected_with_a_reason() {
        assert_eq!("".parse::<Cid>(), Err(CidError::Empty));
        assert_eq!("xyz".parse::<Cid>(), Err(CidError::Multibase('x')));
        assert!(matches!("b!!!".parse::<Cid>(), Err(CidError::Encoding { .. })));
        assert!(matches!(Cid::from_bytes(&[0x01, 0x55, 0x12, 0x20, 1, 2]), Err(CidError::Truncated)));
        assert!(matches!(Cid::from_bytes(&[0x02, 0x55]), Err(CidError::Version(2))));
        assert!(matches!(
            Cid::from_bytes(&[0x01, 0x55, 0x12, 0x05, 1, 2, 3, 4, 5]),
            Err(CidError::DigestLength { .. })
        ));
        let mut bytes = Cid::v1(RAW, [7; 32]).to_bytes();
        bytes.push(0);
        assert_eq!(Cid::from_bytes(&bytes), Err(CidError::TrailingBytes(1)));
    }
}
