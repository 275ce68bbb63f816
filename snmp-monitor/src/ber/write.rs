//! Encoding: a forward writer that reserves room for each length and closes it up afterwards.

use super::tag;

/// Builds one BER message. Constructed elements are opened with [`Writer::open`] and closed with
/// [`Writer::close`]; positions taken with [`Writer::position`] before a close are kept correct
/// through [`Writer::track`].
#[derive(Debug, Default)]
pub struct Writer {
    buf: Vec<u8>,
    tracked: Vec<usize>,
}

/// An element opened by [`Writer::open`]; pass it to [`Writer::close`].
#[derive(Debug)]
#[must_use = "an opened element must be closed"]
pub struct Open(usize);

/// Bytes reserved for a length that is not known yet: room for `0x82 hi lo`.
const RESERVED: usize = 3;

impl Writer {
    pub fn new() -> Self {
        Self::default()
    }

    /// Starts a constructed element.
    pub fn open(&mut self, tag: u8) -> Open {
        let at = self.buf.len();
        self.buf.push(tag);
        self.buf.extend_from_slice(&[0; RESERVED]);
        Open(at)
    }

    /// Ends a constructed element: writes its minimal length and moves its contents up.
    pub fn close(&mut self, open: Open) {
        let len_at = open.0 + 1;
        let contents = self.buf.len() - (len_at + RESERVED);
        let mut header = [0u8; 5];
        let header = length_bytes(contents, &mut header);
        let delta = header.len() as isize - RESERVED as isize;
        self.buf
            .splice(len_at..len_at + RESERVED, header.iter().copied());
        for position in &mut self.tracked {
            if *position > len_at {
                *position = position.saturating_add_signed(delta);
            }
        }
    }

    /// Current length, which is where the next element starts.
    pub fn position(&self) -> usize {
        self.buf.len()
    }

    /// Keeps `position` up to date through later closes; read it back with [`Writer::tracked`].
    pub fn track(&mut self, position: usize) -> usize {
        self.tracked.push(position);
        self.tracked.len() - 1
    }

    pub fn tracked(&self, id: usize) -> Option<usize> {
        self.tracked.get(id).copied()
    }

    /// A primitive element.
    pub fn primitive(&mut self, tag: u8, contents: &[u8]) {
        self.buf.push(tag);
        let mut header = [0u8; 5];
        let len = length_bytes(contents.len(), &mut header);
        self.buf.extend_from_slice(len);
        self.buf.extend_from_slice(contents);
    }

    pub fn integer(&mut self, value: i64) {
        self.signed(tag::INTEGER, value);
    }

    /// A two's-complement integer with any tag, in the fewest bytes.
    pub fn signed(&mut self, tag: u8, value: i64) {
        let bytes = value.to_be_bytes();
        let mut skip = 0;
        while skip < 7 {
            let (this, next) = (bytes[skip], bytes[skip + 1]);
            let redundant = (this == 0 && next & 0x80 == 0) || (this == 0xff && next & 0x80 != 0);
            if !redundant {
                break;
            }
            skip += 1;
        }
        self.primitive(tag, &bytes[skip..]);
    }

    /// An unsigned integer (Counter32, Gauge32, TimeTicks, Counter64), with a leading zero byte
    /// when the top bit is set.
    pub fn unsigned(&mut self, tag: u8, value: u64) {
        let bytes = value.to_be_bytes();
        let skip = bytes.iter().take_while(|&&b| b == 0).count().min(7);
        let mut out = [0u8; 9];
        let body = &bytes[skip..];
        let n = if body[0] & 0x80 != 0 {
            out[1..=body.len()].copy_from_slice(body);
            body.len() + 1
        } else {
            out[..body.len()].copy_from_slice(body);
            body.len()
        };
        self.primitive(tag, &out[..n]);
    }

    /// Already-encoded elements, copied as they are.
    pub fn primitive_raw(&mut self, encoded: &[u8]) {
        self.buf.extend_from_slice(encoded);
    }

    pub fn octets(&mut self, contents: &[u8]) {
        self.primitive(tag::OCTET_STRING, contents);
    }

    pub fn null(&mut self) {
        self.primitive(tag::NULL, &[]);
    }

    pub fn into_bytes(self) -> Vec<u8> {
        self.buf
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.buf
    }
}

/// Minimal definite length: short form below 128, else `0x80 | n` and n big-endian bytes.
fn length_bytes(len: usize, out: &mut [u8; 5]) -> &[u8] {
    if len < 0x80 {
        out[0] = len as u8;
        return &out[..1];
    }
    let bytes = (len as u32).to_be_bytes();
    let skip = bytes.iter().take_while(|&&b| b == 0).count();
    let n = 4 - skip;
    out[0] = 0x80 | n as u8;
    out[1..=n].copy_from_slice(&bytes[skip..]);
    &out[..=n]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ber::{Reader, decode_i64, decode_u64};

    #[test]
    fn integers_round_trip_in_fewest_bytes() {
        for value in [
            0,
            1,
            127,
            128,
            255,
            256,
            -1,
            -128,
            -129,
            i64::MAX,
            i64::MIN,
            0x7fff_ffff,
        ] {
            let mut w = Writer::new();
            w.integer(value);
            let bytes = w.into_bytes();
            let contents = Reader::new(&bytes).read(tag::INTEGER).unwrap();
            assert_eq!(decode_i64(contents), Ok(value));
        }
        let mut w = Writer::new();
        w.integer(128);
        assert_eq!(w.as_bytes(), &[0x02, 0x02, 0x00, 0x80]);
    }

    #[test]
    fn unsigned_values_round_trip() {
        for value in [0, 1, 0x80, 0xffff_ffff, u64::MAX] {
            let mut w = Writer::new();
            w.unsigned(tag::COUNTER64, value);
            let bytes = w.into_bytes();
            let contents = Reader::new(&bytes).read(tag::COUNTER64).unwrap();
            assert_eq!(decode_u64(contents), Ok(value));
        }
    }

    #[test]
    fn closes_with_minimal_lengths_and_tracks_positions() {
        let mut w = Writer::new();
        let outer = w.open(tag::SEQUENCE);
        let inner = w.open(tag::SEQUENCE);
        let mark = w.track(w.position());
        w.octets(&[7; 200]);
        w.close(inner);
        w.close(outer);
        let bytes = w.as_bytes();
        assert_eq!(&bytes[..7], &[0x30, 0x81, 206, 0x30, 0x81, 203, 0x04]);
        let at = w.tracked(mark).unwrap();
        assert_eq!(bytes[at], tag::OCTET_STRING);
        let mut r = Reader::new(bytes);
        let mut seq = r.read_sequence().unwrap();
        let mut inner = seq.read_sequence().unwrap();
        assert_eq!(inner.read_octets().unwrap(), &[7; 200]);
    }
}
