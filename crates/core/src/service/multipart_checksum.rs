//! S3's checksum rules for multipart uploads: which checksum each part must carry, what CompleteMultipartUpload
//! must name, and the completed object's checksum (COMPOSITE: a checksum of the part checksums with `-N`;
//! FULL_OBJECT: the parts' CRCs combined into the whole content's CRC; CRC64NVME when the upload named none).

use s3ipfs_cid::{Algorithm, ChecksumSet, ChecksumType, Checksums};

use crate::model::{MultipartUpload, UploadChecksum, UploadPart};

use super::ServiceError;

/// A part as CompleteMultipartUpload names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompletedPart {
    /// Part number.
    pub number: u32,
    /// The ETag the client got for it.
    pub etag: String,
    /// The part checksum the client quotes (`ChecksumCRC32` …), as algorithm and base64 value.
    pub checksum: Option<(Algorithm, String)>,
}

/// What a CompleteMultipartUpload request claims about the whole object, besides its parts.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CompleteClaims {
    /// `x-amz-checksum-type`: must be the upload's.
    pub checksum_type: Option<ChecksumType>,
    /// `x-amz-checksum-*`: the object's checksum (`-N` optional for a composite one).
    pub checksum: Option<(Algorithm, String)>,
    /// `x-amz-mp-object-size`: the object's size.
    pub size: Option<u64>,
}

fn lower(algorithm: Option<Algorithm>) -> String {
    algorithm.map_or_else(|| "null".to_owned(), |a| a.s3_name().to_ascii_lowercase())
}

fn type_mismatch(expected: Algorithm, actual: Option<Algorithm>) -> ServiceError {
    ServiceError::InvalidRequest(format!(
        "Checksum Type mismatch occurred, expected checksum Type: {}, actual checksum Type: {}",
        lower(Some(expected)),
        lower(actual)
    ))
}

/// The checksums to compute for a part of an upload created with `upload`: those `requested`, MD5 (the part's
/// ETag) and the upload's algorithm (CRC64NVME when it named none). `claimed` is the algorithm of the checksum the
/// client sent; a COMPOSITE upload needs one, and it must be the upload's.
pub(super) fn part_checksums(
    upload: Option<UploadChecksum>,
    requested: ChecksumSet,
    claimed: Option<Algorithm>,
) -> Result<ChecksumSet, ServiceError> {
    let set = requested.with(Algorithm::Md5);
    match (upload, claimed) {
        (None, _) => Ok(set.with(Algorithm::Crc64Nvme)),
        (Some(u), Some(a)) if a != u.algorithm => Err(type_mismatch(u.algorithm, Some(a))),
        (Some(u), None) if u.kind == ChecksumType::Composite => Err(type_mismatch(u.algorithm, None)),
        (Some(u), _) => Ok(set.with(u.algorithm)),
    }
}

/// Checks the checksum Complete quotes for `part` against the stored one (a part without that checksum does not
/// match). A COMPOSITE upload must quote one for every part.
pub(super) fn check_part(
    upload: &MultipartUpload,
    quoted: &CompletedPart,
    part: &UploadPart,
) -> Result<(), ServiceError> {
    match (&quoted.checksum, upload.checksum) {
        (Some((algorithm, value)), _) => {
            if part.checksums.base64(*algorithm).as_deref() == Some(value.trim()) {
                Ok(())
            } else {
                Err(ServiceError::InvalidPart { number: quoted.number })
            }
        }
        (None, Some(u)) if u.kind == ChecksumType::Composite => Err(ServiceError::InvalidRequest(format!(
            "The upload was created using a {} checksum. The complete request must include the checksum for each \
             part. It was missing for part {} in the request.",
            lower(Some(u.algorithm)),
            quoted.number
        ))),
        (None, _) => Ok(()),
    }
}

/// The completed object's checksum and whether it is a composite one; checked against what Complete claims. Checks only metadata, so a refusal happens before any byte is joined.
pub(super) fn object_checksum(
    upload: &MultipartUpload,
    parts: &[&UploadPart],
    claims: &CompleteClaims,
) -> Result<(Checksums, bool), ServiceError> {
    if let Some(kind) = claims.checksum_type
        && upload.checksum.map(|u| u.kind) != Some(kind)
    {
        return Err(ServiceError::InvalidRequest(format!(
            "The upload was created using the {} checksum mode. The complete request must use the same checksum \
             mode.",
            upload.checksum.map_or("null", |u| u.kind.s3_name())
        )));
    }
    let size: u64 = parts.iter().map(|p| p.size).sum();
    if let Some(claimed) = claims.size
        && claimed != size
    {
        return Err(ServiceError::InvalidRequest(format!(
            "The provided 'x-amz-mp-object-size' header value {claimed} does not match what was computed: {size}"
        )));
    }
    let count = u32::try_from(parts.len()).unwrap_or(u32::MAX);
    let with_sizes = || parts.iter().map(|p| (&p.checksums, p.size));
    let (algorithm, computed, composite_parts) = match upload.checksum {
        Some(UploadChecksum { algorithm, kind: ChecksumType::Composite }) => {
            (algorithm, Checksums::composite(algorithm, parts.iter().map(|p| &p.checksums)), Some(count))
        }
        Some(UploadChecksum { algorithm, kind: ChecksumType::FullObject }) => {
            (algorithm, Checksums::combined(algorithm, with_sizes()), None)
        }
        None => (Algorithm::Crc64Nvme, Checksums::combined(Algorithm::Crc64Nvme, with_sizes()), None),
    };
    // Parts stored before the upload's checksum was kept lack it: the object then carries none.
    let Some(computed) = computed else { return Ok((Checksums::default(), false)) };
    if let Some((claimed_algorithm, claimed)) = &claims.checksum {
        match upload.checksum {
            Some(u) if *claimed_algorithm != u.algorithm => {
                return Err(type_mismatch(u.algorithm, Some(*claimed_algorithm)));
            }
            // Without an upload checksum S3 checks only a CRC64NVME claim and ignores the others.
            None if *claimed_algorithm != Algorithm::Crc64Nvme => {}
            _ => {
                let (value, claimed_parts) = match claimed.trim().split_once('-') {
                    Some((value, n)) => (value, n.parse::<u32>().ok()),
                    None => (claimed.trim(), composite_parts),
                };
                let matches = computed.base64(algorithm).as_deref() == Some(value) && claimed_parts == composite_parts;
                if !matches {
                    return Err(ServiceError::BadDigest(algorithm));
                }
            }
        }
    }
    Ok((computed, composite_parts.is_some()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn upload(checksum: Option<UploadChecksum>) -> MultipartUpload {
        MultipartUpload {
            id: "u".into(),
            bucket: crate::BucketName::parse("b-1").expect("name"),
            key: crate::ObjectKey::parse("k").expect("key"),
            initiated: std::time::SystemTime::UNIX_EPOCH,
            headers: Default::default(),
            user_meta: Default::default(),
            checksum,
        }
    }

    fn part(number: u32, data: &[u8]) -> UploadPart {
        let mut hasher = s3ipfs_cid::ChecksumHasher::new(Algorithm::ALL.into_iter().collect());
        hasher.update(data);
        UploadPart {
            number,
            size: data.len() as u64,
            cid: s3ipfs_cid::cid_of(s3ipfs_cid::Profile::KUBO_V1, data),
            checksums: hasher.finish(),
            leaves: Vec::new(),
            modified_at: std::time::SystemTime::UNIX_EPOCH,
        }
    }

    const CRC32_COMPOSITE: Option<UploadChecksum> =
        Some(UploadChecksum { algorithm: Algorithm::Crc32, kind: ChecksumType::Composite });
    const CRC32C_FULL: Option<UploadChecksum> =
        Some(UploadChecksum { algorithm: Algorithm::Crc32c, kind: ChecksumType::FullObject });

    #[test]
    fn parts_carry_the_upload_algorithm_or_crc64nvme() {
        let set = part_checksums(None, ChecksumSet::NONE, None).expect("accepted");
        assert!(set.contains(Algorithm::Crc64Nvme) && set.contains(Algorithm::Md5));
        let set = part_checksums(CRC32C_FULL, ChecksumSet::NONE, None).expect("full-object computes a missing one");
        assert!(set.contains(Algorithm::Crc32c));
        let refused = part_checksums(CRC32_COMPOSITE, ChecksumSet::NONE, None).expect_err("composite needs one");
        assert!(refused.to_string().ends_with("expected checksum Type: crc32, actual checksum Type: null"));
        let refused = part_checksums(CRC32_COMPOSITE, ChecksumSet::NONE, Some(Algorithm::Sha1)).expect_err("other");
        assert!(refused.to_string().ends_with("actual checksum Type: sha1"));
    }

    #[test]
    fn composite_objects_need_every_part_checksum_and_match_claims() {
        let up = upload(CRC32_COMPOSITE);
        let (a, b) = (part(1, b"first part"), part(2, b"second"));
        let quote = |p: &UploadPart, value: Option<String>| CompletedPart {
            number: p.number,
            etag: p.etag(),
            checksum: value.map(|v| (Algorithm::Crc32, v)),
        };
        assert!(check_part(&up, &quote(&a, a.checksums.base64(Algorithm::Crc32)), &a).is_ok());
        let missing = check_part(&up, &quote(&a, None), &a).expect_err("missing");
        assert!(missing.to_string().contains("It was missing for part 1 in the request."));
        let wrong = check_part(&up, &quote(&a, b.checksums.base64(Algorithm::Crc32)), &a).expect_err("wrong");
        assert!(matches!(wrong, ServiceError::InvalidPart { number: 1 }));

        let (sums, composite) = object_checksum(&up, &[&a, &b], &CompleteClaims::default()).expect("no claims");
        let expected = Checksums::composite(Algorithm::Crc32, [&a.checksums, &b.checksums]).expect("composite");
        assert_eq!((sums, composite), (expected, true));
        let value = expected.base64(Algorithm::Crc32).expect("crc32");
        for good in [value.clone(), format!("{value}-2")] {
            let claims = CompleteClaims { checksum: Some((Algorithm::Crc32, good)), ..Default::default() };
            assert!(object_checksum(&up, &[&a, &b], &claims).is_ok());
        }
        for bad in [format!("{value}-3"), "AAAAAA==".to_owned()] {
            let claims = CompleteClaims { checksum: Some((Algorithm::Crc32, bad)), ..Default::default() };
            assert!(matches!(object_checksum(&up, &[&a, &b], &claims), Err(ServiceError::BadDigest(_))));
        }
        let claims = CompleteClaims { checksum_type: Some(ChecksumType::FullObject), ..Default::default() };
        assert!(matches!(object_checksum(&up, &[&a, &b], &claims), Err(ServiceError::InvalidRequest(_))));
    }

    #[test]
    fn full_object_and_default_checksums_cover_the_whole_content() {
        let (a, b) = (part(1, b"first part"), part(2, b"second"));
        let whole = part(0, b"first partsecond").checksums;
        let (sums, composite) =
            object_checksum(&upload(CRC32C_FULL), &[&a, &b], &CompleteClaims::default()).expect("ok");
        assert_eq!((sums.base64(Algorithm::Crc32c), composite), (whole.base64(Algorithm::Crc32c), false));
        let (sums, _) = object_checksum(&upload(None), &[&a, &b], &CompleteClaims::default()).expect("ok");
        assert_eq!(sums.base64(Algorithm::Crc64Nvme), whole.base64(Algorithm::Crc64Nvme));

        let claim = |a: Algorithm, v: &str| CompleteClaims { checksum: Some((a, v.to_owned())), ..Default::default() };
        let ignored = claim(Algorithm::Sha256, "AAAA");
        assert!(object_checksum(&upload(None), &[&a, &b], &ignored).is_ok(), "S3 ignores it without an algorithm");
        let bad = claim(Algorithm::Crc64Nvme, "AAAAAAAAAAA=");
        assert!(matches!(object_checksum(&upload(None), &[&a, &b], &bad), Err(ServiceError::BadDigest(_))));
        let size = CompleteClaims { size: Some(3), ..Default::default() };
        assert!(matches!(object_checksum(&upload(None), &[&a, &b], &size), Err(ServiceError::InvalidRequest(_))));
        let quote = |value: Option<String>| CompletedPart {
            number: 1,
            etag: a.etag(),
            checksum: value.map(|v| (Algorithm::Crc32, v)),
        };
        let wrong = quote(b.checksums.base64(Algorithm::Crc32));
        assert!(matches!(check_part(&upload(None), &wrong, &a), Err(ServiceError::InvalidPart { number: 1 })));
        assert!(check_part(&upload(None), &quote(a.checksums.base64(Algorithm::Crc32)), &a).is_ok());
        assert!(check_part(&upload(None), &quote(None), &a).is_ok());
    }
}
