//! Unsigned LEB128 varints, as used by multiformats, protobuf and CAR framing.

/// The longest varint a `u64` needs.
pub const MAX_LEN: usize = 10;

/// Appends `value` as an unsigned varint.
pub fn encode(mut value: u64, out: &mut Vec<u8>) {
    while value >= 0x80 {
        out.push((value as u8) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

/// The number of bytes `encode(value)` writes.
pub fn encoded_len(value: u64) -> usize {
    let bits = 64 - (value | 1).leading_zeros() as usize;
    bits.div_ceil(7)
}

/// Why a varint could not be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VarintError {
    /// The input ended inside the varint.
    Truncated,
    /// More than ten bytes, or a value above `u64::MAX`, or a non-minimal encoding.
    Invalid,
}

/// Reads one varint from the start of `input`; returns the value and the bytes it used.
pub fn decode(input: &[u8]) -> Result<(u64, usize), VarintError> {
    let mut value: u64 = 0;
    for (i, &byte) in input.iter().enumerate().take(MAX_LEN) {
        let low = u64::from(byte & 0x7f);
        if i == MAX_LEN - 1 && byte > 1 {
            return Err(VarintError::Invalid);
        }
        value |= low << (7 * i);
        if byte & 0x80 == 0 {
            // Multiformats require minimal encodings: a trailing zero byte is not allowed.
            if byte == 0 && i > 0 {
                return Err(VarintError::Invalid);
            }
            return Ok((value, i + 1));
        }
    }
    if input.len() >= MAX_LEN { Err(VarintError::Invalid) } else { Err(VarintError::Truncated) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_round_trip_with_the_predicted_length() {
        for value in [0, 1, 127, 128, 300, 16_383, 16_384, u64::from(u32::MAX), u64::MAX] {
            let mut buf = Vec::new();
            encode(value, &mut buf);
            assert_eq!(buf.len(), encoded_len(value), "length of {value}");
            assert_eq!(decode(&buf), Ok((value, buf.len())));
        }
    }

    #[test]
    fn known_encodings_match_the_multiformats_spec() {
        let mut buf = Vec::new();
        encode(300, &mut buf);
        assert_eq!(buf, [0xac, 0x02]);
    }

    #[test]
    fn truncated_overlong_and_non_minimal_varints_are_rejected() {
        assert_eq!(decode(&[]), Err(VarintError::Truncated));
        assert_eq!(decode(&[0x80]), Err(VarintError::Truncated));
        assert_eq!(decode(&[0x80, 0x00]), Err(VarintError::Invalid));
        assert_eq!(decode(&[0xff; 11]), Err(VarintError::Invalid));
        assert_eq!(decode(&[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02]), Err(VarintError::Invalid));
    }
}
