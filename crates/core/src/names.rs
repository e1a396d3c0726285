//! Validated names: bucket names, object keys, version ids and user ids.

use std::fmt;

/// Why a name was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    /// Not a valid bucket name under S3's rules.
    #[error("invalid bucket name: {0}")]
    Bucket(&'static str),
    /// An empty object key.
    #[error("object keys must not be empty")]
    EmptyKey,
    /// An object key over 1024 bytes.
    #[error("your key is too long")]
    KeyTooLong,
    /// Not a version id this gateway issued.
    #[error("invalid version id")]
    VersionId,
}

/// A bucket name that follows S3's general-purpose naming rules.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct BucketName(String);

impl BucketName {
    /// Checks S3's rules: 3–63 characters of `a-z 0-9 . -`, starting and ending with a letter or digit, no `..`,
    /// not an IPv4 address, none of the reserved prefixes and suffixes.
    pub fn parse(name: &str) -> Result<Self, NameError> {
        let err = |why| Err(NameError::Bucket(why));
        if !(3..=63).contains(&name.len()) {
            return err("must be 3 to 63 characters long");
        }
        if !name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-') {
            return err("only lowercase letters, digits, dots and hyphens are allowed");
        }
        let edge_ok = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
        if !edge_ok(name.as_bytes()[0]) || !edge_ok(name.as_bytes()[name.len() - 1]) {
            return err("must start and end with a letter or digit");
        }
        if name.contains("..") {
            return err("must not contain two adjacent periods");
        }
        if name.parse::<std::net::Ipv4Addr>().is_ok() {
            return err("must not be formatted as an IP address");
        }
        if ["xn--", "sthree-", "amzn-s3-demo-"].iter().any(|p| name.starts_with(p)) {
            return err("uses a reserved prefix");
        }
        if ["-s3alias", "--ol-s3", ".mrap", "--x-s3", "--table-s3"].iter().any(|s| name.ends_with(s)) {
            return err("uses a reserved suffix");
        }
        Ok(BucketName(name.to_owned()))
    }

    /// The name as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// An object key: 1 to 1024 bytes of UTF-8.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ObjectKey(String);

/// S3's limit on key length, in bytes.
pub const MAX_KEY_LEN: usize = 1024;

impl ObjectKey {
    /// Checks the length limits S3 applies.
    pub fn parse(key: &str) -> Result<Self, NameError> {
        if key.is_empty() {
            return Err(NameError::EmptyKey);
        }
        if key.len() > MAX_KEY_LEN {
            return Err(NameError::KeyTooLong);
        }
        Ok(ObjectKey(key.to_owned()))
    }

    /// The key as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A version id: `null` for the null version, otherwise 32 characters this gateway generated.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct VersionId(String);

impl VersionId {
    /// The id S3 gives versions written while versioning is off or suspended.
    pub const NULL_STR: &'static str = "null";

    /// The null version id.
    pub fn null() -> Self {
        VersionId(Self::NULL_STR.to_owned())
    }

    /// A fresh, unique id: 32 characters of URL-safe base32 from 160 random bits.
    pub fn generate() -> Self {
        const ALPHABET: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";
        let bytes: [u8; 32] = rand::random();
        VersionId(bytes.iter().map(|b| char::from(ALPHABET[usize::from(b & 31)])).collect())
    }

    /// Accepts `null` and ids of the generated shape; anything else cannot name a version here.
    pub fn parse(id: &str) -> Result<Self, NameError> {
        let generated = id.len() == 32 && id.bytes().all(|b| b.is_ascii_digit() || b.is_ascii_uppercase());
        if id == Self::NULL_STR || generated { Ok(VersionId(id.to_owned())) } else { Err(NameError::VersionId) }
    }

    /// Whether this is the null version id.
    pub fn is_null(&self) -> bool {
        self.0 == Self::NULL_STR
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A user's id, assigned by the metadata store.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct UserId(pub i64);

macro_rules! display_as_str {
    ($($t:ty),*) => {$(
        impl fmt::Display for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    )*};
}
display_as_str!(BucketName, ObjectKey, VersionId);

impl fmt::Display for UserId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ordinary_bucket_names_are_accepted() {
        for name in ["abc", "my-bucket", "logs.2026", "a1b2c3", &"a".repeat(63)] {
            assert!(BucketName::parse(name).is_ok(), "{name}");
        }
    }

    #[test]
    fn a_bucket_name_breaking_any_s3_rule_is_rejected() {
        for name in [
            "ab",
            &"a".repeat(64),
            "MyBucket",
            "my_bucket",
            "-bucket",
            "bucket-",
            "my..bucket",
            "192.168.5.4",
            "xn--bucket",
            "bucket-s3alias",
            "bucket--ol-s3",
        ] {
            assert!(matches!(BucketName::parse(name), Err(NameError::Bucket(_))), "{name}");
        }
    }

    #[test]
    fn keys_must_be_between_one_and_1024_bytes() {
        assert!(ObjectKey::parse("").is_err());
        assert!(ObjectKey::parse(&"k".repeat(1024)).is_ok());
        assert!(ObjectKey::parse(&"é".repeat(513)).is_err());
    }

    #[test]
    fn generated_version_ids_are_unique_and_parse_back() {
        let a = VersionId::generate();
        let b = VersionId::generate();
        assert_ne!(a, b);
        assert_eq!(VersionId::parse(a.as_str()), Ok(a.clone()));
        assert!(VersionId::parse("null").expect("null parses").is_null());
        assert_eq!(VersionId::parse("nope"), Err(NameError::VersionId));
    }
}
