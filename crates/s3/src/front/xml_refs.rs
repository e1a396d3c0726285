//! Characters XML 1.0 cannot carry (U+0000–U+001F but tab and newline, and U+FFFE/U+FFFF), which S3 object keys
//! may hold. AWS writes them as character references (`&#x1;`) in its XML; s3s refuses to serialize them and would
//! escape a reference's `&`. So the operations put a marker sequence in the text instead ([`escape`]), flag the
//! response, and the front rewrites each marker into the reference on the way out ([`CharRefBody`]). Carriage
//! returns are written as `&#xd;` too: a parser would turn a raw one into a newline.

use std::borrow::Cow;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::{Bytes, BytesMut};
use http_body::{Body, Frame, SizeHint};

/// The response header that asks the front to rewrite markers; never sent to the client.
pub(crate) const FLAG: &str = "x-s3ipfs-char-refs";

/// The marker, a noncharacter that XML allows: `MARK hex… ;` stands for `&#xhex;`, `MARK MARK` for `MARK` itself.
const MARK: char = '\u{FDD0}';
const MARK_UTF8: [u8; 3] = [0xEF, 0xB7, 0x90];

/// Characters XML 1.0 does not allow at all (not even as a reference).
fn illegal(c: char) -> bool {
    matches!(c, '\u{0}'..='\u{8}' | '\u{B}' | '\u{C}' | '\u{E}'..='\u{1F}' | '\u{FFFE}' | '\u{FFFF}')
}

/// Characters written as references: the illegal ones, and a carriage return (a parser reads a raw one as `\n`).
fn needs_reference(c: char) -> bool {
    illegal(c) || c == '\r'
}

/// Whether well-formed XML could have carried `text` (what a parsed request body can honestly contain).
pub(crate) fn well_formed(text: &str) -> bool {
    !text.chars().any(illegal)
}

/// `text` when XML 1.0 can carry it as it is, `None` otherwise.
///
/// Where S3 has no `encoding-type` (CreateMultipartUpload, CompleteMultipartUpload, ListParts), AWS writes such a
/// key as a character reference that its own SDKs cannot parse: botocore turns the response into a 500 and retries
/// the write that already took effect. These responses leave the key out instead (docs/DECISIONS.md, D15).
pub(crate) fn representable(text: &str) -> Option<String> {
    (!text.chars().any(needs_reference)).then(|| text.to_owned())
}

/// `text` with every character XML cannot carry as a marker sequence; borrowed when there is none.
pub(crate) fn escape(text: &str) -> Cow<'_, str> {
    if !text.chars().any(|c| needs_reference(c) || c == MARK) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        if c == MARK {
            out.push(MARK);
            out.push(MARK);
        } else if needs_reference(c) {
            out.push(MARK);
            out.push_str(&format!("{:x};", u32::from(c)));
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// Rewrites marker sequences in `input` into character references; returns how many bytes at the end belong to a
/// sequence that continues in the next chunk (they are not written).
fn rewrite(input: &[u8], out: &mut BytesMut) -> usize {
    let mut i = 0;
    while i < input.len() {
        let Some(at) = input[i..].windows(3).position(|w| w == MARK_UTF8) else {
            // No marker starts here; keep a possible marker prefix at the very end for the next chunk.
            let tail = (1..=2).rev().find(|&n| input.len() >= i + n && input[input.len() - n..] == MARK_UTF8[..n]);
            let keep = tail.unwrap_or(0);
            out.extend_from_slice(&input[i..input.len() - keep]);
            return keep;
        };
        out.extend_from_slice(&input[i..i + at]);
        let start = i + at;
        let rest = &input[start + 3..];
        if rest.len() < 3 && MARK_UTF8.starts_with(rest) {
            return input.len() - start;
        }
        if rest.starts_with(&MARK_UTF8) {
            out.extend_from_slice(&MARK_UTF8);
            i = start + 6;
            continue;
        }
        match rest.iter().position(|&b| b == b';') {
            Some(end) if end <= 8 && rest[..end].iter().all(u8::is_ascii_hexdigit) => {
                out.extend_from_slice(b"&#x");
                out.extend_from_slice(&rest[..end]);
                out.extend_from_slice(b";");
                i = start + 3 + end + 1;
            }
            None if rest.len() <= 8 && rest.iter().all(u8::is_ascii_hexdigit) => return input.len() - start,
            // Not a sequence `escape` writes: pass it through.
            _ => {
                out.extend_from_slice(&MARK_UTF8);
                i = start + 3;
            }
        }
    }
    0
}

/// A response body whose marker sequences are rewritten into character references.
pub(crate) struct CharRefBody<B> {
    inner: B,
    carry: BytesMut,
}

impl<B> CharRefBody<B> {
    /// Wraps a flagged response body.
    pub(crate) fn new(inner: B) -> Self {
        CharRefBody { inner, carry: BytesMut::new() }
    }
}

impl<B> Body for CharRefBody<B>
where
    B: Body<Data = Bytes> + Unpin,
{
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, B::Error>>> {
        let this = &mut *self;
        loop {
            match Pin::new(&mut this.inner).poll_frame(cx) {
                Poll::Ready(Some(Ok(frame))) => match frame.into_data() {
                    Ok(data) => {
                        this.carry.extend_from_slice(&data);
                        let mut out = BytesMut::with_capacity(this.carry.len() + 16);
                        let keep = rewrite(&this.carry, &mut out);
                        let kept = this.carry.split_off(this.carry.len() - keep);
                        this.carry = kept;
                        if !out.is_empty() {
                            return Poll::Ready(Some(Ok(Frame::data(out.freeze()))));
                        }
                    }
                    Err(frame) => return Poll::Ready(Some(Ok(frame))),
                },
                Poll::Ready(None) if !this.carry.is_empty() => {
                    let rest = std::mem::take(&mut this.carry).freeze();
                    return Poll::Ready(Some(Ok(Frame::data(rest))));
                }
                other => return other,
            }
        }
    }

    fn size_hint(&self) -> SizeHint {
        // References are longer than markers: the length is unknown.
        SizeHint::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt as _;

    async fn rewritten(chunks: Vec<Vec<u8>>) -> String {
        let stream = futures::stream::iter(
            chunks.into_iter().map(|c| Ok::<_, std::convert::Infallible>(Frame::data(Bytes::from(c)))),
        );
        let body = CharRefBody::new(http_body_util::StreamBody::new(stream));
        let bytes = body.collect().await.expect("infallible").to_bytes();
        String::from_utf8(bytes.to_vec()).expect("utf-8")
    }

    #[tokio::test]
    async fn markers_become_references_whatever_the_chunk_boundaries() {
        let key = "a\u{1}b\rc\u{FDD0}d\u{0}\u{FFFF}e\té";
        let xml = format!("<Key>{}</Key>", escape(key));
        let expected = "<Key>a&#x1;b&#xd;c\u{FDD0}d&#x0;&#xffff;e\té</Key>";
        for split in 0..=xml.len() {
            let bytes = xml.as_bytes();
            let got = rewritten(vec![bytes[..split].to_vec(), bytes[split..].to_vec()]).await;
            assert_eq!(got, expected, "split at {split}");
        }
        let single_bytes = xml.bytes().map(|b| vec![b]).collect();
        assert_eq!(rewritten(single_bytes).await, expected);
    }

    #[test]
    fn keys_xml_cannot_carry_are_not_representable() {
        assert_eq!(representable("a/b é\u{FDD0}").as_deref(), Some("a/b é\u{FDD0}"));
        assert_eq!(representable("a\u{1}b"), None);
        assert_eq!(representable("a\rb"), None);
    }

    #[test]
    fn text_without_such_characters_is_borrowed() {
        assert!(matches!(escape("plain/key é\t\n"), Cow::Borrowed(_)));
        assert!(matches!(escape("x\u{1}"), Cow::Owned(_)));
    }
}
