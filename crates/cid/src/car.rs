//! CAR v1 files: a header naming the roots, then `varint(len) CID block` sections.
//!
//! The writer emits the header as canonical DAG-CBOR `{"roots": [CID…], "version": 1}`. The reader accepts any
//! well-formed CARv1, verifies every block against its CID and never trusts a length it has not bounded.

use std::io::{self, BufRead, BufReader, Read, Write};

use bytes::Bytes;

use crate::cid::{Cid, CidError};
use crate::dag::{self, BlockSource, DagError};
use crate::varint;

/// Largest header the reader accepts.
pub const MAX_HEADER_LEN: u64 = 1024 * 1024;
/// Largest section (CID plus block) the reader accepts: blocks are at most 2 MiB in IPFS, leave room.
pub const MAX_SECTION_LEN: u64 = 4 * 1024 * 1024;

const CBOR_TAG_CID: u64 = 42;

/// Why a CAR could not be read.
#[derive(Debug, thiserror::Error)]
pub enum CarError {
    /// The underlying reader failed.
    #[error("I/O error reading CAR: {0}")]
    Io(#[source] io::Error),
    /// The data ended inside the header or a section.
    #[error("CAR is truncated")]
    Truncated,
    /// The header is not a CARv1 header.
    #[error("invalid CAR header: {0}")]
    BadHeader(&'static str),
    /// The header declares another version.
    #[error("CAR version {0} is not supported (only CARv1)")]
    UnsupportedVersion(u64),
    /// A length prefix is malformed or out of bounds.
    #[error("invalid CAR section: {0}")]
    BadSection(&'static str),
    /// A section's CID is malformed.
    #[error("invalid CID in CAR: {0}")]
    Cid(#[from] CidError),
    /// A block's hash function is not one this reader can check.
    #[error("block {0} uses a hash function this reader cannot verify")]
    UnsupportedHash(Cid),
    /// A block does not hash to its CID.
    #[error("block {0} does not match its CID")]
    HashMismatch(Cid),
}

impl From<io::Error> for CarError {
    fn from(err: io::Error) -> Self {
        if err.kind() == io::ErrorKind::UnexpectedEof { CarError::Truncated } else { CarError::Io(err) }
    }
}

/// Writes CAR v1 sections to `out`.
#[derive(Debug)]
pub struct CarWriter<W: Write> {
    out: W,
    scratch: Vec<u8>,
}

impl<W: Write> CarWriter<W> {
    /// Writes the header naming `roots`.
    pub fn new(mut out: W, roots: &[Cid]) -> io::Result<Self> {
        let header = encode_header(roots);
        let mut prefix = Vec::with_capacity(varint::MAX_LEN);
        varint::encode(header.len() as u64, &mut prefix);
        out.write_all(&prefix)?;
        out.write_all(&header)?;
        Ok(CarWriter { out, scratch: Vec::with_capacity(64) })
    }

    /// Appends one block.
    pub fn write_block(&mut self, cid: &Cid, data: &[u8]) -> io::Result<()> {
        self.scratch.clear();
        varint::encode((cid.encoded_len() + data.len()) as u64, &mut self.scratch);
        cid.write_bytes(&mut self.scratch);
        self.out.write_all(&self.scratch)?;
        self.out.write_all(data)
    }

    /// Flushes and returns the output.
    pub fn finish(mut self) -> io::Result<W> {
        self.out.flush()?;
        Ok(self.out)
    }
}

/// Writes the DAG under `root` as a CAR: header `[root]`, then each distinct block once in depth-first order.
pub fn write_dag<W: Write>(root: &Cid, source: &mut impl BlockSource, out: W) -> Result<W, DagError> {
    let mut writer = CarWriter::new(out, &[*root])?;
    dag::walk_dfs(root, source, |cid, block| Ok(writer.write_block(cid, block)?))?;
    Ok(writer.finish()?)
}

fn cbor_head(major: u8, value: u64, out: &mut Vec<u8>) {
    let major = major << 5;
    match value {
        0..=23 => out.push(major | value as u8),
        24..=0xff => out.extend_from_slice(&[major | 24, value as u8]),
        0x100..=0xffff => {
            out.push(major | 25);
            out.extend_from_slice(&(value as u16).to_be_bytes());
        }
        0x1_0000..=0xffff_ffff => {
            out.push(major | 26);
            out.extend_from_slice(&(value as u32).to_be_bytes());
        }
        _ => {
            out.push(major | 27);
            out.extend_from_slice(&value.to_be_bytes());
        }
    }
}

fn encode_header(roots: &[Cid]) -> Vec<u8> {
    let mut out = Vec::with_capacity(16 + roots.len() * 44);
    cbor_head(5, 2, &mut out); // map of 2; DAG-CBOR orders keys by length: "roots" before "version"
    cbor_head(3, 5, &mut out);
    out.extend_from_slice(b"roots");
    cbor_head(4, roots.len() as u64, &mut out);
    for root in roots {
        let bytes = root.to_bytes();
        cbor_head(6, CBOR_TAG_CID, &mut out);
        cbor_head(2, bytes.len() as u64 + 1, &mut out);
        out.push(0x00); // the identity multibase prefix DAG-CBOR puts before a binary CID
        out.extend_from_slice(&bytes);
    }
    cbor_head(3, 7, &mut out);
    out.extend_from_slice(b"version");
    cbor_head(0, 1, &mut out);
    out
}

/// A cursor over the header's CBOR, bounded by the slice it reads.
struct Cbor<'a> {
    rest: &'a [u8],
}

impl<'a> Cbor<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], CarError> {
        if self.rest.len() < n {
            return Err(CarError::BadHeader("header CBOR ends early"));
        }
        let (head, rest) = self.rest.split_at(n);
        self.rest = rest;
        Ok(head)
    }

    /// Reads an item head: major type and argument. Indefinite lengths are not DAG-CBOR and are refused.
    fn head(&mut self) -> Result<(u8, u64), CarError> {
        let first = self.take(1)?[0];
        let (major, info) = (first >> 5, first & 0x1f);
        let width = match info {
            0..=23 => return Ok((major, u64::from(info))),
            24 => 1,
            25 => 2,
            26 => 4,
            27 => 8,
            _ => return Err(CarError::BadHeader("indefinite or reserved CBOR length")),
        };
        let bytes = self.take(width)?;
        Ok((major, bytes.iter().fold(0u64, |acc, b| (acc << 8) | u64::from(*b))))
    }

    fn len_of(&mut self, expected_major: u8, what: &'static str) -> Result<usize, CarError> {
        let (major, value) = self.head()?;
        if major != expected_major {
            return Err(CarError::BadHeader(what));
        }
        usize::try_from(value).map_err(|_| CarError::BadHeader(what))
    }
}

pub(crate) fn decode_header(bytes: &[u8]) -> Result<Vec<Cid>, CarError> {
    let mut cbor = Cbor { rest: bytes };
    let entries = cbor.len_of(5, "header is not a CBOR map")?;
    let mut version = None;
    let mut roots = None;
    for _ in 0..entries {
        let key_len = cbor.len_of(3, "header key is not a string")?;
        match cbor.take(key_len)? {
            b"version" => match cbor.head()? {
                (0, v) => version = Some(v),
                _ => return Err(CarError::BadHeader("version is not an integer")),
            },
            b"roots" => {
                let count = cbor.len_of(4, "roots is not an array")?;
                let mut list = Vec::with_capacity(count.min(64));
                for _ in 0..count {
                    if cbor.head()? != (6, CBOR_TAG_CID) {
                        return Err(CarError::BadHeader("a root is not a CID (tag 42)"));
                    }
                    let len = cbor.len_of(2, "a root CID is not a byte string")?;
                    match cbor.take(len)?.split_first() {
                        Some((0x00, cid)) => list.push(Cid::from_bytes(cid)?),
                        _ => return Err(CarError::BadHeader("a root CID lacks the 0x00 multibase prefix")),
                    }
                }
                roots = Some(list);
            }
            _ => return Err(CarError::BadHeader("unexpected key in header")),
        }
    }
    if !cbor.rest.is_empty() {
        return Err(CarError::BadHeader("bytes after the header map"));
    }
    match version {
        Some(1) => roots.ok_or(CarError::BadHeader("header has no roots")),
        Some(other) => Err(CarError::UnsupportedVersion(other)),
        None => Err(CarError::BadHeader("header has no version")),
    }
}

/// Reads a CAR v1 stream block by block, verifying each block against its CID.
#[derive(Debug)]
pub struct CarReader<R: Read> {
    input: BufReader<R>,
    roots: Vec<Cid>,
}

impl<R: Read> CarReader<R> {
    /// Reads and checks the header.
    pub fn new(input: R) -> Result<Self, CarError> {
        let mut input = BufReader::new(input);
        let len = read_varint(&mut input)?.ok_or(CarError::Truncated)?;
        if len == 0 || len > MAX_HEADER_LEN {
            return Err(CarError::BadHeader("header length is zero or too large"));
        }
        let mut header = vec![0u8; len as usize];
        input.read_exact(&mut header)?;
        let roots = decode_header(&header)?;
        Ok(CarReader { input, roots })
    }

    /// The roots the header names.
    pub fn roots(&self) -> &[Cid] {
        &self.roots
    }

    /// The next verified block, or `None` at a clean end of the stream.
    pub fn next_block(&mut self) -> Result<Option<(Cid, Bytes)>, CarError> {
        let Some(len) = read_varint(&mut self.input)? else {
            return Ok(None);
        };
        if len == 0 || len > MAX_SECTION_LEN {
            return Err(CarError::BadSection("section length is zero or too large"));
        }
        let mut section = vec![0u8; len as usize];
        self.input.read_exact(&mut section)?;
        let (cid, used) = Cid::read_bytes(&section)?;
        let data = Bytes::from(section).slice(used..);
        if !cid.is_verifiable() {
            return Err(CarError::UnsupportedHash(cid));
        }
        if !cid.verifies(&data) {
            return Err(CarError::HashMismatch(cid));
        }
        Ok(Some((cid, data)))
    }
}

impl<R: Read> Iterator for CarReader<R> {
    type Item = Result<(Cid, Bytes), CarError>;

    fn next(&mut self) -> Option<Self::Item> {
        self.next_block().transpose()
    }
}

/// Reads a varint; `None` when the stream ends cleanly before its first byte.
fn read_varint(input: &mut impl BufRead) -> Result<Option<u64>, CarError> {
    let mut buf = [0u8; varint::MAX_LEN];
    let mut len = 0;
    while len < varint::MAX_LEN {
        let mut byte = [0u8; 1];
        match input.read(&mut byte) {
            Ok(0) if len == 0 => return Ok(None),
            Ok(0) => return Err(CarError::Truncated),
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e.into()),
        }
        buf[len] = byte[0];
        len += 1;
        if byte[0] & 0x80 == 0 {
            return varint::decode(&buf[..len])
                .map(|(v, _)| Some(v))
                .map_err(|_| CarError::BadSection("malformed length varint"));
        }
    }
    Err(CarError::BadSection("length varint longer than ten bytes"))
}
