//! The dag-pb and UnixFS protobuf messages, encoded byte for byte as kubo writes them and decoded defensively.
//!
//! Encoding rules (see ../shared/research/ipfs-notes.md §2.3): a PBNode writes its Links (field 2) before its Data
//! (field 1); every PBLink carries Hash, an empty Name and Tsize; UnixFS `blocksizes` are repeated, non-packed varints;
//! `filesize` is always written for files and `Data` only when non-empty.

use crate::block::DagLink;
use crate::cid::{Cid, CidError};
use crate::varint;

/// UnixFS `Type` of raw data (used by old importers for leaves).
pub const UNIXFS_RAW: u64 = 0;
/// UnixFS `Type` of a file node.
pub const UNIXFS_FILE: u64 = 2;

const WIRE_VARINT: u64 = 0;
const WIRE_I64: u64 = 1;
const WIRE_LEN: u64 = 2;
const WIRE_I32: u64 = 5;

fn put_key(field: u64, wire: u64, out: &mut Vec<u8>) {
    varint::encode((field << 3) | wire, out);
}

fn put_varint_field(field: u64, value: u64, out: &mut Vec<u8>) {
    put_key(field, WIRE_VARINT, out);
    varint::encode(value, out);
}

fn put_bytes_field(field: u64, bytes: &[u8], out: &mut Vec<u8>) {
    put_key(field, WIRE_LEN, out);
    varint::encode(bytes.len() as u64, out);
    out.extend_from_slice(bytes);
}

/// The UnixFS `Data` message of a file node.
fn unixfs_file(inline: &[u8], filesize: u64, blocksizes: impl Iterator<Item = u64>) -> Vec<u8> {
    let mut out = Vec::with_capacity(inline.len() + 16);
    put_varint_field(1, UNIXFS_FILE, &mut out);
    if !inline.is_empty() {
        put_bytes_field(2, inline, &mut out);
    }
    put_varint_field(3, filesize, &mut out);
    for size in blocksizes {
        put_varint_field(4, size, &mut out);
    }
    out
}

/// A dag-pb leaf holding `chunk` inline (the leaf format of CIDv0 imports).
pub fn encode_leaf(chunk: &[u8]) -> Vec<u8> {
    let data = unixfs_file(chunk, chunk.len() as u64, std::iter::empty());
    let mut out = Vec::with_capacity(data.len() + 8);
    put_bytes_field(1, &data, &mut out);
    out
}

/// An interior file node linking `links` in file order.
pub fn encode_file_node(links: &[DagLink]) -> Vec<u8> {
    let filesize = links.iter().map(|l| l.file_size).sum();
    let data = unixfs_file(&[], filesize, links.iter().map(|l| l.file_size));
    let mut out = Vec::with_capacity(links.len() * 48 + data.len() + 8);
    let mut link_buf = Vec::with_capacity(48);
    for link in links {
        link_buf.clear();
        put_bytes_field(1, &link.cid.to_bytes(), &mut link_buf);
        put_bytes_field(2, &[], &mut link_buf);
        put_varint_field(3, link.dag_size, &mut link_buf);
        put_bytes_field(2, &link_buf, &mut out);
    }
    put_bytes_field(1, &data, &mut out);
    out
}

/// Why a block is not a well-formed dag-pb / UnixFS message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PbError {
    /// The message ends inside a field.
    #[error("truncated protobuf message")]
    Truncated,
    /// A varint is malformed.
    #[error("malformed protobuf varint")]
    Varint,
    /// A field has a wire type or number the message does not allow.
    #[error("unexpected protobuf field {field} with wire type {wire}")]
    UnexpectedField {
        /// Field number.
        field: u64,
        /// Wire type.
        wire: u64,
    },
    /// A required field is absent.
    #[error("missing required field {0}")]
    Missing(&'static str),
    /// A link's hash is not a CID.
    #[error("invalid link CID: {0}")]
    Cid(#[from] CidError),
}

impl From<varint::VarintError> for PbError {
    fn from(err: varint::VarintError) -> Self {
        match err {
            varint::VarintError::Truncated => PbError::Truncated,
            varint::VarintError::Invalid => PbError::Varint,
        }
    }
}

/// One field of a protobuf message.
enum Field<'a> {
    Varint(u64),
    Bytes(&'a [u8]),
    Fixed,
}

/// Iterates over the fields of a protobuf message.
struct Fields<'a> {
    rest: &'a [u8],
}

impl<'a> Fields<'a> {
    fn next_field(&mut self) -> Result<Option<(u64, u64, Field<'a>)>, PbError> {
        if self.rest.is_empty() {
            return Ok(None);
        }
        let (key, n) = varint::decode(self.rest)?;
        self.rest = &self.rest[n..];
        let (field, wire) = (key >> 3, key & 7);
        let value = match wire {
            WIRE_VARINT => {
                let (v, n) = varint::decode(self.rest)?;
                self.rest = &self.rest[n..];
                Field::Varint(v)
            }
            WIRE_LEN => {
                let (len, n) = varint::decode(self.rest)?;
                let body = &self.rest[n..];
                let len = usize::try_from(len).map_err(|_| PbError::Truncated)?;
                let bytes = body.get(..len).ok_or(PbError::Truncated)?;
                self.rest = &body[len..];
                Field::Bytes(bytes)
            }
            WIRE_I64 | WIRE_I32 => {
                let width = if wire == WIRE_I64 { 8 } else { 4 };
                self.rest = self.rest.get(width..).ok_or(PbError::Truncated)?;
                Field::Fixed
            }
            _ => return Err(PbError::UnexpectedField { field, wire }),
        };
        Ok(Some((field, wire, value)))
    }
}

/// A decoded dag-pb node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PbNode<'a> {
    /// Links in the order they were stored.
    pub links: Vec<PbLink>,
    /// The `Data` field, if present.
    pub data: Option<&'a [u8]>,
}

/// A decoded dag-pb link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PbLink {
    /// The child's CID.
    pub cid: Cid,
    /// The `Tsize` field, if present.
    pub tsize: Option<u64>,
}

/// Decodes a dag-pb node. Only fields 1 (Data) and 2 (Links) are allowed, as the dag-pb spec requires.
pub fn decode_node(block: &[u8]) -> Result<PbNode<'_>, PbError> {
    let mut fields = Fields { rest: block };
    let mut node = PbNode { links: Vec::new(), data: None };
    while let Some((field, wire, value)) = fields.next_field()? {
        match (field, value) {
            (1, Field::Bytes(data)) => node.data = Some(data),
            (2, Field::Bytes(link)) => node.links.push(decode_link(link)?),
            _ => return Err(PbError::UnexpectedField { field, wire }),
        }
    }
    Ok(node)
}

fn decode_link(bytes: &[u8]) -> Result<PbLink, PbError> {
    let mut fields = Fields { rest: bytes };
    let mut cid = None;
    let mut tsize = None;
    while let Some((field, wire, value)) = fields.next_field()? {
        match (field, value) {
            (1, Field::Bytes(hash)) => cid = Some(Cid::from_bytes(hash)?),
            (2, Field::Bytes(_name)) => {}
            (3, Field::Varint(size)) => tsize = Some(size),
            _ => return Err(PbError::UnexpectedField { field, wire }),
        }
    }
    Ok(PbLink { cid: cid.ok_or(PbError::Missing("PBLink.Hash"))?, tsize })
}

/// A decoded UnixFS `Data` message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnixFsData<'a> {
    /// The UnixFS type (`UNIXFS_FILE`, `UNIXFS_RAW`, directories, …).
    pub kind: u64,
    /// Bytes stored inline in the node.
    pub data: &'a [u8],
    /// The `filesize` field, if present.
    pub filesize: Option<u64>,
    /// File bytes below each link, in link order.
    pub blocksizes: Vec<u64>,
}

/// Decodes a UnixFS `Data` message; fields added after v1 (mode, mtime, …) are skipped.
pub fn decode_unixfs(bytes: &[u8]) -> Result<UnixFsData<'_>, PbError> {
    let mut fields = Fields { rest: bytes };
    let mut kind = None;
    let mut out = UnixFsData { kind: 0, data: &[], filesize: None, blocksizes: Vec::new() };
    while let Some((field, _wire, value)) = fields.next_field()? {
        match (field, value) {
            (1, Field::Varint(k)) => kind = Some(k),
            (2, Field::Bytes(data)) => out.data = data,
            (3, Field::Varint(size)) => out.filesize = Some(size),
            (4, Field::Varint(size)) => out.blocksizes.push(size),
            (4, Field::Bytes(packed)) => {
                let mut rest = packed;
                while !rest.is_empty() {
                    let (size, n) = varint::decode(rest)?;
                    out.blocksizes.push(size);
                    rest = &rest[n..];
                }
            }
            _ => {}
        }
    }
    out.kind = kind.ok_or(PbError::Missing("Data.Type"))?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cid::{RAW, Version};

    #[test]
    fn the_empty_v0_leaf_is_the_six_bytes_kubo_writes() {
        assert_eq!(encode_leaf(b""), [0x0a, 0x04, 0x08, 0x02, 0x18, 0x00]);
    }

    #[test]
    fn a_hello_world_leaf_has_inline_data_and_filesize() {
        let mut expected = vec![0x0a, 0x11, 0x08, 0x02, 0x12, 0x0b];
        expected.extend_from_slice(b"hello world");
        expected.extend_from_slice(&[0x18, 0x0b]);
        assert_eq!(encode_leaf(b"hello world"), expected);
    }

    #[test]
    fn an_interior_node_decodes_back_to_its_links_and_sizes() {
        let a = DagLink { cid: Cid::v1(RAW, [1; 32]), file_size: 262_144, dag_size: 262_144 };
        let b = DagLink { cid: Cid::v1(RAW, [2; 32]), file_size: 1, dag_size: 1 };
        let node = encode_file_node(&[a, b]);
        // Link 1 starts with field 2 (0x12), length 0x2c; the Data field comes last.
        assert_eq!(&node[..2], &[0x12, 0x2c]);
        let decoded = decode_node(&node).expect("valid node");
        assert_eq!(
            decoded.links.iter().map(|l| (l.cid, l.tsize)).collect::<Vec<_>>(),
            vec![(a.cid, Some(262_144)), (b.cid, Some(1))]
        );
        let data = decode_unixfs(decoded.data.expect("data")).expect("unixfs");
        assert_eq!(data.kind, UNIXFS_FILE);
        assert_eq!(data.filesize, Some(262_145));
        assert_eq!(data.blocksizes, vec![262_144, 1]);
        assert_eq!(Cid::for_block(Version::V1, crate::cid::DAG_PB, &node).version(), Version::V1);
    }

    #[test]
    fn malformed_nodes_are_errors_not_panics() {
        assert_eq!(decode_node(&[0x12, 0x05, 0x0a]), Err(PbError::Truncated));
        assert!(matches!(decode_node(&[0x1a, 0x00]), Err(PbError::UnexpectedField { field: 3, .. })));
        assert!(matches!(decode_node(&[0x12, 0x02, 0x18, 0x01]), Err(PbError::Missing(_))));
        assert!(matches!(decode_unixfs(&[0x18, 0x01]), Err(PbError::Missing(_))));
        assert!(matches!(decode_node(&[0x0f]), Err(PbError::UnexpectedField { wire: 7, .. })));
    }
}
