//! Encodings both SQL stores share: times as Unix milliseconds, varint-framed leaf and size lists, key-range
//! bounds for prefixes, and the upload checksum columns. Decoding errors name what is corrupt.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use s3ipfs_cid::{ChecksumType, Cid, DagLink, varint};
use s3ipfs_core::UploadChecksum;

/// A stored value that does not decode: names the column.
pub(crate) type Corrupt = &'static str;

/// `time` as Unix milliseconds (0 before the epoch).
pub(crate) fn millis(time: SystemTime) -> i64 {
    time.duration_since(UNIX_EPOCH).map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// The time `ms` Unix milliseconds name.
pub(crate) fn from_millis(ms: i64) -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(u64::try_from(ms).unwrap_or(0))
}

/// The smallest string above every string that starts with `prefix` (`None` when there is none): keys with the
/// prefix are exactly those in `prefix..end`, a range the `(bucket, key)` indexes answer, whatever bytes keys hold.
pub(crate) fn prefix_end(prefix: &str) -> Option<String> {
    let mut chars: Vec<char> = prefix.chars().collect();
    while let Some(last) = chars.pop() {
        let next = match u32::from(last) + 1 {
            0xD800 => 0xE000,
            n => n,
        };
        if let Some(next) = char::from_u32(next) {
            chars.push(next);
            return Some(chars.into_iter().collect());
        }
    }
    None
}

/// `varint(len) cid varint(file_size) varint(dag_size)` for each leaf.
pub(crate) fn encode_leaves(leaves: &[DagLink]) -> Vec<u8> {
    let mut out = Vec::with_capacity(leaves.len() * 48);
    for leaf in leaves {
        varint::encode(leaf.cid.encoded_len() as u64, &mut out);
        leaf.cid.write_bytes(&mut out);
        varint::encode(leaf.file_size, &mut out);
        varint::encode(leaf.dag_size, &mut out);
    }
    out
}

pub(crate) fn decode_leaves(mut bytes: &[u8]) -> Result<Vec<DagLink>, Corrupt> {
    let next = |bytes: &mut &[u8]| -> Result<u64, Corrupt> {
        let (value, used) = varint::decode(bytes).map_err(|_| "leaves")?;
        *bytes = &bytes[used..];
        Ok(value)
    };
    let mut leaves = Vec::new();
    while !bytes.is_empty() {
        let len = usize::try_from(next(&mut bytes)?).map_err(|_| "leaves")?;
        let cid_bytes = bytes.get(..len).ok_or("leaves")?;
        let cid = Cid::from_bytes(cid_bytes).map_err(|_| "leaves")?;
        bytes = &bytes[len..];
        let file_size = next(&mut bytes)?;
        let dag_size = next(&mut bytes)?;
        leaves.push(DagLink { cid, file_size, dag_size });
    }
    Ok(leaves)
}

/// The upload checksum from its two columns (both NULL when the upload named none).
pub(crate) fn upload_checksum(
    algorithm: Option<String>,
    kind: Option<String>,
) -> Result<Option<UploadChecksum>, Corrupt> {
    match (algorithm, kind) {
        (Some(algorithm), Some(kind)) => Ok(Some(UploadChecksum {
            algorithm: algorithm.parse().map_err(|_| "checksum_algorithm")?,
            kind: ChecksumType::parse(&kind).ok_or("checksum_type")?,
        })),
        (None, None) => Ok(None),
        _ => Err("checksum_type"),
    }
}

/// Part sizes as concatenated varints; `None` (NULL) for none.
pub(crate) fn encode_sizes(sizes: &[u64]) -> Option<Vec<u8>> {
    if sizes.is_empty() {
        return None;
    }
    let mut out = Vec::with_capacity(sizes.len() * 4);
    sizes.iter().for_each(|size| varint::encode(*size, &mut out));
    Some(out)
}

pub(crate) fn decode_sizes(bytes: Option<Vec<u8>>) -> Result<Vec<u64>, Corrupt> {
    let mut rest = bytes.as_deref().unwrap_or_default();
    let mut sizes = Vec::new();
    while !rest.is_empty() {
        let (size, used) = varint::decode(rest).map_err(|_| "part_sizes")?;
        sizes.push(size);
        rest = &rest[used..];
    }
    Ok(sizes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leaf_lists_round_trip_and_garbage_is_an_error() {
        let leaves = vec![
            DagLink { cid: Cid::v1(s3ipfs_cid::cid::RAW, [1; 32]), file_size: 262_144, dag_size: 262_144 },
            DagLink { cid: Cid::v0([2; 32]), file_size: 5, dag_size: 19 },
        ];
        assert_eq!(decode_leaves(&encode_leaves(&leaves)).expect("decodes"), leaves);
        assert!(decode_leaves(&[0x05, 0x01]).is_err());
    }
}
