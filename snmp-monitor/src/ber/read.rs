//! Decoding: a cursor over borrowed bytes.

use crate::error::DecodeError;

use super::tag;

/// A cursor over the contents of one constructed element (or a whole datagram).
#[derive(Debug, Clone)]
pub struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    pub fn new(buf: &'a [u8]) -> Self {
        Self { buf, pos: 0 }
    }

    pub fn is_empty(&self) -> bool {
        self.pos >= self.buf.len()
    }

    /// Fails unless every byte was consumed.
    pub fn finish(&self) -> Result<(), DecodeError> {
        if self.is_empty() {
            Ok(())
        } else {
            Err(DecodeError::TrailingBytes)
        }
    }

    /// The tag of the next element, without consuming it.
    pub fn peek_tag(&self) -> Option<u8> {
        self.buf.get(self.pos).copied()
    }

    /// Reads one element: its tag and its contents.
    pub fn read_any(&mut self) -> Result<(u8, &'a [u8]), DecodeError> {
        let rest = self.buf.get(self.pos..).ok_or(DecodeError::Truncated)?;
        let (&tag, rest) = rest.split_first().ok_or(DecodeError::Truncated)?;
        if tag & 0x1f == 0x1f {
            return Err(DecodeError::UnsupportedTag);
        }
        let (&first, rest) = rest.split_first().ok_or(DecodeError::Truncated)?;
        let (len, header) = if first < 0x80 {
            (usize::from(first), 2)
        } else {
            let count = usize::from(first & 0x7f);
            if count == 0 || count > 4 {
                return Err(DecodeError::BadLength);
            }
            let bytes = rest.get(..count).ok_or(DecodeError::Truncated)?;
            let len = bytes
                .iter()
                .fold(0usize, |acc, &b| (acc << 8) | usize::from(b));
            (len, 2 + count)
        };
        let start = self.pos + header;
        let end = start.checked_add(len).ok_or(DecodeError::BadLength)?;
        let contents = self.buf.get(start..end).ok_or(DecodeError::BadLength)?;
        self.pos = end;
        Ok((tag, contents))
    }

    /// Reads one element that must carry `expected`.
    pub fn read(&mut self, expected: u8) -> Result<&'a [u8], DecodeError> {
        let (found, contents) = self.read_any()?;
        if found == expected {
            Ok(contents)
        } else {
            Err(DecodeError::UnexpectedTag { expected, found })
        }
    }

    /// Reads a constructed element with tag `expected` and returns a reader over its contents.
    pub fn read_constructed(&mut self, expected: u8) -> Result<Reader<'a>, DecodeError> {
        self.read(expected).map(Reader::new)
    }

    pub fn read_sequence(&mut self) -> Result<Reader<'a>, DecodeError> {
        self.read_constructed(tag::SEQUENCE)
    }

    pub fn read_integer(&mut self) -> Result<i64, DecodeError> {
        decode_i64(self.read(tag::INTEGER)?)
    }

    pub fn read_octets(&mut self) -> Result<&'a [u8], DecodeError> {
        self.read(tag::OCTET_STRING)
    }

    pub fn read_null(&mut self) -> Result<(), DecodeError> {
        match self.read(tag::NULL)? {
            [] => Ok(()),
            _ => Err(DecodeError::BadLength),
        }
    }
}

/// A two's-complement INTEGER of at most 8 bytes.
pub fn decode_i64(bytes: &[u8]) -> Result<i64, DecodeError> {
    if bytes.is_empty() || bytes.len() > 8 {
        return Err(DecodeError::BadInteger);
    }
    let negative = bytes.first().is_some_and(|b| b & 0x80 != 0);
    let init: i64 = if negative { -1 } else { 0 };
    Ok(bytes.iter().fold(init, |acc, &b| (acc << 8) | i64::from(b)))
}

/// An unsigned value (Counter32, Gauge32, TimeTicks, Counter64): up to 8 value bytes, plus one
/// leading zero byte when the top bit is set. Negative encodings are refused.
pub fn decode_u64(bytes: &[u8]) -> Result<u64, DecodeError> {
    let bytes = match bytes {
        [0, rest @ ..] if !rest.is_empty() => rest,
        [first, ..] if first & 0x80 != 0 => return Err(DecodeError::BadInteger),
        [] => return Err(DecodeError::BadInteger),
        all => all,
    };
    if bytes.len() > 8 {
        return Err(DecodeError::BadInteger);
    }
    Ok(bytes.iter().fold(0u64, |acc, &b| (acc << 8) | u64::from(b)))
}

/// Where `part` starts inside `whole`, if it is a sub-slice of it (used to find the v3
/// authentication parameters inside a received message).
pub fn offset_in(whole: &[u8], part: &[u8]) -> Option<usize> {
    let start = (part.as_ptr() as usize).checked_sub(whole.as_ptr() as usize)?;
    (start + part.len() <= whole.len()).then_some(start)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_short_and_long_lengths() {
        let mut r = Reader::new(&[0x04, 0x02, b'h', b'i', 0x04, 0x81, 0x01, b'x']);
        assert_eq!(r.read_octets().unwrap(), b"hi");
        assert_eq!(r.read_octets().unwrap(), b"x");
        r.finish().unwrap();
    }

    #[test]
    fn refuses_lengths_past_the_end_and_indefinite() {
        assert_eq!(
            Reader::new(&[0x04, 0x05, 1]).read_any(),
            Err(DecodeError::BadLength)
        );
        assert_eq!(
            Reader::new(&[0x30, 0x80, 0, 0]).read_any(),
            Err(DecodeError::BadLength)
        );
        assert_eq!(
            Reader::new(&[0x04, 0x84, 0xff, 0xff, 0xff, 0xff]).read_any(),
            Err(DecodeError::BadLength)
        );
        assert_eq!(Reader::new(&[0x04]).read_any(), Err(DecodeError::Truncated));
        assert_eq!(
            Reader::new(&[0x1f, 0x01, 0x00]).read_any(),
            Err(DecodeError::UnsupportedTag)
        );
    }

    #[test]
    fn integers_are_twos_complement() {
        assert_eq!(decode_i64(&[0x7f]), Ok(127));
        assert_eq!(decode_i64(&[0x80]), Ok(-128));
        assert_eq!(decode_i64(&[0x00, 0x80]), Ok(128));
        assert_eq!(
            decode_i64(&[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]),
            Ok(-1)
        );
        assert_eq!(decode_i64(&[]), Err(DecodeError::BadInteger));
        assert_eq!(decode_i64(&[1; 9]), Err(DecodeError::BadInteger));
        assert_eq!(
            decode_u64(&[0x00, 0xff, 0xff, 0xff, 0xff]),
            Ok(u64::from(u32::MAX))
        );
        assert_eq!(
            decode_u64(&[0x00, 0xff, 0, 0, 0, 0, 0, 0, 0]),
            Ok(0xff << 56)
        );
        assert_eq!(decode_u64(&[0x80]), Err(DecodeError::BadInteger));
    }
}
