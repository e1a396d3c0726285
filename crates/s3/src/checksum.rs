//! Client checksums: which to compute for a PUT, and the comparison once the body (and its trailer) has ended.

use http::HeaderMap;
use s3ipfs_cid::{Algorithm, ChecksumSet, Checksums};
use s3ipfs_core::{ObjectMeta, ServiceError};
use s3s::dto::{PutObjectInput, UploadPartInput};
use s3s::{S3Result, TrailingHeaders, s3_error};

/// The checksum algorithms S3 defines that this gateway computes, with their header names.
pub(crate) const HEADERS: [(Algorithm, &str); 5] = [
    (Algorithm::Crc32, "x-amz-checksum-crc32"),
    (Algorithm::Crc32c, "x-amz-checksum-crc32c"),
    (Algorithm::Crc64Nvme, "x-amz-checksum-crc64nvme"),
    (Algorithm::Sha1, "x-amz-checksum-sha1"),
    (Algorithm::Sha256, "x-amz-checksum-sha256"),
];

/// What the client claims about a body: values sent as headers, and those that will come in the trailer.
#[derive(Debug, Default)]
pub struct Expected {
    values: Vec<(Algorithm, String)>,
    trailer: Option<TrailingHeaders>,
    trailer_algorithms: Vec<Algorithm>,
}

impl Expected {
    /// Reads the claims of a PutObject request; unsupported algorithms (SHA-512, XXHASH) are refused.
    pub fn from_put(input: &PutObjectInput, headers: &HeaderMap, trailer: Option<TrailingHeaders>) -> S3Result<Self> {
        refuse_unsupported(unsupported_checksum!(input))?;
        Self::new(checksum_fields!(input), &input.content_md5, headers, trailer)
    }

    /// Reads the claims of an UploadPart request; unsupported algorithms are refused.
    pub fn from_part(input: &UploadPartInput, headers: &HeaderMap, trailer: Option<TrailingHeaders>) -> S3Result<Self> {
        refuse_unsupported(unsupported_checksum!(input))?;
        Self::new(checksum_fields!(input), &input.content_md5, headers, trailer)
    }

    fn new(
        claims: [(Algorithm, &Option<String>); 5],
        content_md5: &Option<String>,
        headers: &HeaderMap,
        trailer: Option<TrailingHeaders>,
    ) -> S3Result<Self> {
        refuse_empty_digests(headers)?;
        if let Some(md5) = content_md5
            && !Checksums::is_well_formed(Algorithm::Md5, md5)
        {
            return Err(invalid_digest());
        }
        let values = claims
            .into_iter()
            .chain([(Algorithm::Md5, content_md5)])
            .filter_map(|(a, v)| v.as_ref().map(|v| (a, v.clone())))
            .collect();
        let declared =
            headers.get("x-amz-trailer").and_then(|v| v.to_str().ok()).unwrap_or_default().to_ascii_lowercase();
        let trailer_algorithms = HEADERS
            .iter()
            .filter(|(_, name)| declared.split(',').any(|d| d.trim() == *name))
            .map(|(a, _)| *a)
            .collect();
        Ok(Expected { values, trailer, trailer_algorithms })
    }

    /// The algorithm of the one checksum the client sends (as a header value or in the trailer), or else of
    /// `x-amz-sdk-checksum-algorithm`. Refuses, as S3 does, several checksums, a malformed value, and an SDK
    /// algorithm that contradicts the value sent.
    pub fn claimed(&self, sdk: Option<&str>) -> S3Result<Option<Algorithm>> {
        for (algorithm, value) in &self.values {
            if *algorithm != Algorithm::Md5 && !Checksums::is_well_formed(*algorithm, value) {
                return Err(invalid_header(header_name(*algorithm)));
            }
        }
        let sends = |a: &Algorithm| self.values.iter().any(|(v, _)| v == a) || self.trailer_algorithms.contains(a);
        let sent: Vec<Algorithm> = HEADERS.iter().map(|(a, _)| *a).filter(sends).collect();
        if sent.len() > 1 {
            return Err(several_checksums());
        }
        let sdk = sdk.map(parse_algorithm).transpose()?;
        match (sent.first().copied(), sdk) {
            (Some(sent), Some(sdk)) if sent != sdk => Err(invalid_header("x-amz-sdk-checksum-algorithm")),
            (sent, sdk) => Ok(sent.or(sdk)),
        }
    }

    /// The algorithms to compute: every one claimed, plus the one the client asked to be stored.
    pub fn algorithms(&self, requested: Option<&str>) -> S3Result<ChecksumSet> {
        let mut set: ChecksumSet =
            self.values.iter().map(|(a, _)| *a).chain(self.trailer_algorithms.iter().copied()).collect();
        if let Some(name) = requested {
            set = set.with(parse_algorithm(name)?);
        }
        Ok(set)
    }

    /// Compares every claim with what was computed; called once the body (and so the trailer) has ended.
    pub fn verify(self, computed: &Checksums) -> Result<(), ServiceError> {
        let trailer_values: Vec<(Algorithm, String)> = match &self.trailer {
            Some(trailer) => trailer
                .take()
                .map(|map| {
                    HEADERS
                        .iter()
                        .filter_map(|(a, name)| {
                            map.get(*name).and_then(|v| v.to_str().ok()).map(|v| (*a, v.to_owned()))
                        })
                        .collect()
                })
                .unwrap_or_default(),
            None => Vec::new(),
        };
        // A checksum the client announced in `x-amz-trailer` and then did not send would go unchecked.
        if let Some(missing) = self.trailer_algorithms.iter().find(|a| !trailer_values.iter().any(|(t, _)| t == *a)) {
            return Err(ServiceError::InvalidRequest(format!(
                "The {} trailer announced in x-amz-trailer was not sent.",
                header_name(*missing)
            )));
        }
        for (algorithm, claimed) in self.values.iter().chain(trailer_values.iter()) {
            if computed.base64(*algorithm).as_deref() != Some(claimed.trim()) {
                return Err(ServiceError::BadDigest(*algorithm));
            }
        }
        Ok(())
    }
}

/// S3's answer to a Content-MD5 that is not the base64 of 16 bytes.
fn invalid_digest() -> s3s::S3Error {
    s3_error!(InvalidDigest, "The Content-MD5 you specified was invalid.")
}

/// Refuses digest headers sent empty, which s3s reads as absent: S3 answers them as malformed values.
fn refuse_empty_digests(headers: &HeaderMap) -> S3Result<()> {
    let empty = |name: &str| headers.get_all(name).iter().any(|v| v.as_bytes().trim_ascii().is_empty());
    if empty("content-md5") {
        return Err(invalid_digest());
    }
    match HEADERS.iter().find(|(_, name)| empty(name)) {
        Some((_, name)) => Err(invalid_header(name)),
        None => Ok(()),
    }
}

/// The five `checksum_*` fields of an S3 input or `<Part>` (every one uses these names), with their algorithms, in
/// the order of [`HEADERS`].
macro_rules! checksum_fields {
    ($i:expr) => {
        [
            (s3ipfs_cid::Algorithm::Crc32, &$i.checksum_crc32),
            (s3ipfs_cid::Algorithm::Crc32c, &$i.checksum_crc32c),
            (s3ipfs_cid::Algorithm::Crc64Nvme, &$i.checksum_crc64nvme),
            (s3ipfs_cid::Algorithm::Sha1, &$i.checksum_sha1),
            (s3ipfs_cid::Algorithm::Sha256, &$i.checksum_sha256),
        ]
    };
}
pub(crate) use checksum_fields;

/// Whether an S3 input or `<Part>` sends a checksum this gateway does not compute (SHA-512, XXHASH).
macro_rules! unsupported_checksum {
    ($i:expr) => {
        $i.checksum_sha512.is_some()
            || $i.checksum_xxhash64.is_some()
            || $i.checksum_xxhash3.is_some()
            || $i.checksum_xxhash128.is_some()
    };
}
pub(crate) use unsupported_checksum;

/// S3's answer to a checksum algorithm it knows but this gateway does not compute.
pub fn refuse_unsupported(unsupported: bool) -> S3Result<()> {
    if unsupported { Err(s3_error!(InvalidRequest, "This checksum algorithm is not supported")) } else { Ok(()) }
}

/// The checksums among `fields` that were sent, as `(algorithm, value)`.
pub fn sent(fields: [(Algorithm, &Option<String>); 5]) -> Vec<(Algorithm, &str)> {
    fields.into_iter().filter_map(|(a, v)| v.as_deref().map(|v| (a, v))).collect()
}

/// A checksum algorithm S3 names (`CRC32`, …), or the InvalidRequest S3 answers for another.
pub fn parse_algorithm(name: &str) -> S3Result<Algorithm> {
    name.parse().ok().filter(|a| *a != Algorithm::Md5).ok_or_else(|| {
        s3_error!(
            InvalidRequest,
            "Checksum algorithm provided is unsupported. Please try again with any of the valid types: [CRC32, \
             CRC32C, CRC64NVME, SHA1, SHA256]"
        )
    })
}

/// The header that carries an `algorithm` checksum.
pub fn header_name(algorithm: Algorithm) -> &'static str {
    HEADERS.iter().find(|(a, _)| *a == algorithm).map_or("content-md5", |(_, name)| name)
}

/// S3's answer to a request that sends more than one `x-amz-checksum-*`.
pub fn several_checksums() -> s3s::S3Error {
    s3_error!(InvalidRequest, "Expecting a single x-amz-checksum- header. Multiple checksum Types are not allowed.")
}

/// An `x-amz-checksum-type` value, or S3's answer to another.
pub fn parse_type(value: &s3s::dto::ChecksumType) -> S3Result<s3ipfs_cid::ChecksumType> {
    s3ipfs_cid::ChecksumType::parse(value.as_str()).ok_or_else(|| invalid_header("x-amz-checksum-type"))
}

/// S3's answer to a malformed header value.
pub fn invalid_header(name: &str) -> s3s::S3Error {
    s3s::S3Error::with_message(s3s::S3ErrorCode::InvalidRequest, format!("Value for {name} header is invalid."))
}

/// The `x-amz-checksum-*` values of stored checksums, in the order of S3's output fields (MD5 excluded).
pub fn stored(checksums: &Checksums) -> [Option<String>; 5] {
    HEADERS.map(|(algorithm, _)| checksums.base64(algorithm))
}

/// The `x-amz-checksum-*` values of an object (`-N` marks a composite one), in the order of S3's output fields.
pub fn of_object(meta: &ObjectMeta) -> [Option<String>; 5] {
    HEADERS.map(|(algorithm, _)| meta.checksum_value(algorithm))
}

/// An object's `x-amz-checksum-type`, when it has a checksum.
pub fn type_of(meta: &ObjectMeta) -> Option<s3s::dto::ChecksumType> {
    meta.checksum_type().map(|t| s3s::dto::ChecksumType::from_static(t.s3_name()))
}

/// The algorithms of an object's checksums (MD5 excluded), as ListObjects shows them.
pub fn algorithms_of(meta: &ObjectMeta) -> Vec<s3s::dto::ChecksumAlgorithm> {
    HEADERS.iter().filter(|(a, _)| meta.checksums.bytes(*a).is_some()).map(|(a, _)| algorithm_dto(*a)).collect()
}

/// The S3 name of an algorithm as the DTO type.
pub fn algorithm_dto(algorithm: Algorithm) -> s3s::dto::ChecksumAlgorithm {
    s3s::dto::ChecksumAlgorithm::from_static(algorithm.s3_name())
}

/// An S3 output struct (`Type { field: value, … }`) whose five `checksum_*` fields come from `values`, an
/// `[Option<String>; 5]` in the order of [`stored`] and [`of_object`]; the other fields default.
macro_rules! with_checksums {
    ($output:ident { $($field:ident: $value:expr),* $(,)? }, $values:expr) => {{
        let [crc32, crc32c, crc64nvme, sha1, sha256] = $values;
        $output {
            $($field: $value,)*
            checksum_crc32: crc32,
            checksum_crc32c: crc32c,
            checksum_crc64nvme: crc64nvme,
            checksum_sha1: sha1,
            checksum_sha256: sha256,
            ..Default::default()
        }
    }};
}
pub(crate) use with_checksums;
