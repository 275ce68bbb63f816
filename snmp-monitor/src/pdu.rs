//! PDUs (RFC 3416) and the community-based message wrapper (v1, v2c).

use crate::ber::{Reader, Writer, tag};
use crate::error::DecodeError;
use crate::value::Value;

/// SNMP message versions as they appear on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Version {
    V1,
    V2c,
    V3,
}

impl Version {
    pub fn wire(self) -> i64 {
        match self {
            Version::V1 => 0,
            Version::V2c => 1,
            Version::V3 => 3,
        }
    }

    pub fn from_wire(value: i64) -> Result<Self, DecodeError> {
        match value {
            0 => Ok(Version::V1),
            1 => Ok(Version::V2c),
            3 => Ok(Version::V3),
            other => Err(DecodeError::UnsupportedVersion(other)),
        }
    }
}

/// PDU types (context-specific constructed tags 0xA0..0xA8).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PduType {
    Get,
    GetNext,
    Response,
    Set,
    TrapV1,
    GetBulk,
    Inform,
    TrapV2,
    Report,
}

impl PduType {
    pub fn tag(self) -> u8 {
        match self {
            PduType::Get => 0xa0,
            PduType::GetNext => 0xa1,
            PduType::Response => 0xa2,
            PduType::Set => 0xa3,
            PduType::TrapV1 => 0xa4,
            PduType::GetBulk => 0xa5,
            PduType::Inform => 0xa6,
            PduType::TrapV2 => 0xa7,
            PduType::Report => 0xa8,
        }
    }

    pub fn from_tag(tag: u8) -> Result<Self, DecodeError> {
        Ok(match tag {
            0xa0 => PduType::Get,
            0xa1 => PduType::GetNext,
            0xa2 => PduType::Response,
            0xa3 => PduType::Set,
            0xa4 => PduType::TrapV1,
            0xa5 => PduType::GetBulk,
            0xa6 => PduType::Inform,
            0xa7 => PduType::TrapV2,
            0xa8 => PduType::Report,
            other => return Err(DecodeError::UnknownPdu(other)),
        })
    }
}

/// A decoded PDU. For GETBULK, `error_status` holds non-repeaters and `error_index`
/// max-repetitions, as on the wire.
#[derive(Debug, Clone)]
pub struct Pdu<'a> {
    pub kind: PduType,
    pub request_id: i32,
    pub error_status: i64,
    pub error_index: i64,
    pub varbinds: VarBinds<'a>,
}

impl<'a> Pdu<'a> {
    /// Decodes a PDU from its tag and contents. Varbinds are decoded lazily by iterating.
    pub fn decode(pdu_tag: u8, contents: &'a [u8]) -> Result<Self, DecodeError> {
        let kind = PduType::from_tag(pdu_tag)?;
        if kind == PduType::TrapV1 {
            return Err(DecodeError::UnknownPdu(pdu_tag));
        }
        let mut r = Reader::new(contents);
        let request_id = i32::try_from(r.read_integer()?).map_err(|_| DecodeError::BadInteger)?;
        let error_status = r.read_integer()?;
        let error_index = r.read_integer()?;
        let varbinds = VarBinds {
            reader: r.read_sequence()?,
        };
        r.finish()?;
        Ok(Self {
            kind,
            request_id,
            error_status,
            error_index,
            varbinds,
        })
    }

    /// Writes a PDU whose varbinds are `(oid contents, value)` pairs.
    pub fn encode<'v>(
        w: &mut Writer,
        kind: PduType,
        request_id: i32,
        error_status: i64,
        error_index: i64,
        varbinds: impl IntoIterator<Item = (&'v [u8], Value<'v>)>,
    ) {
        let pdu = w.open(kind.tag());
        w.integer(request_id.into());
        w.integer(error_status);
        w.integer(error_index);
        let list = w.open(tag::SEQUENCE);
        for (oid, value) in varbinds {
            let vb = w.open(tag::SEQUENCE);
            w.primitive(tag::OID, oid);
            value.encode(w);
            w.close(vb);
        }
        w.close(list);
        w.close(pdu);
    }
}

/// The varbind list; an iterator that yields an error (and then stops) on the first varbind that
/// does not decode, so a caller can never silently get fewer varbinds than were sent.
#[derive(Debug, Clone)]
pub struct VarBinds<'a> {
    reader: Reader<'a>,
}

/// One varbind: the OID's BER contents and its value.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct VarBind<'a> {
    pub oid: &'a [u8],
    pub value: Value<'a>,
}

impl<'a> Iterator for VarBinds<'a> {
    type Item = Result<VarBind<'a>, DecodeError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.reader.is_empty() {
            return None;
        }
        let item = decode_varbind(&mut self.reader);
        if item.is_err() {
            self.reader = Reader::new(&[]);
        }
        Some(item)
    }
}

fn decode_varbind<'a>(r: &mut Reader<'a>) -> Result<VarBind<'a>, DecodeError> {
    let mut vb = r.read_sequence()?;
    let oid = vb.read(tag::OID)?;
    if oid.is_empty() {
        return Err(DecodeError::BadOid);
    }
    let (value_tag, contents) = vb.read_any()?;
    vb.finish()?;
    Ok(VarBind {
        oid,
        value: Value::decode(value_tag, contents)?,
    })
}

/// A v1 or v2c message: version, community and PDU.
#[derive(Debug, Clone)]
pub struct CommunityMessage<'a> {
    pub version: Version,
    pub community: &'a [u8],
    pub pdu: Pdu<'a>,
}

impl<'a> CommunityMessage<'a> {
    pub fn decode(datagram: &'a [u8]) -> Result<Self, DecodeError> {
        let mut outer = Reader::new(datagram);
        let mut r = outer.read_sequence()?;
        outer.finish()?;
        let version = Version::from_wire(r.read_integer()?)?;
        if version == Version::V3 {
            return Err(DecodeError::UnsupportedVersion(3));
        }
        let community = r.read_octets()?;
        let (pdu_tag, contents) = r.read_any()?;
        let pdu = Pdu::decode(pdu_tag, contents)?;
        r.finish()?;
        Ok(Self {
            version,
            community,
            pdu,
        })
    }

    /// Encodes a whole v1/v2c message.
    pub fn encode<'v>(
        version: Version,
        community: &[u8],
        kind: PduType,
        request_id: i32,
        error_status: i64,
        error_index: i64,
        varbinds: impl IntoIterator<Item = (&'v [u8], Value<'v>)>,
    ) -> Vec<u8> {
        let mut w = Writer::new();
        let msg = w.open(tag::SEQUENCE);
        w.integer(version.wire());
        w.octets(community);
        Pdu::encode(
            &mut w,
            kind,
            request_id,
            error_status,
            error_index,
            varbinds,
        );
        w.close(msg);
        w.into_bytes()
    }
}

/// The version field of any SNMP message, read without decoding the rest.
pub fn peek_version(datagram: &[u8]) -> Result<Version, DecodeError> {
    let mut r = Reader::new(datagram).read_sequence()?;
    Version::from_wire(r.read_integer()?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::oid::Oid;

    #[test]
    fn get_request_matches_net_snmp_bytes() {
        // snmpget -v2c -c public HOST 1.3.6.1.2.1.1.3.0 with request id 0x1234, as net-snmp sends it.
        let oid: Oid = "1.3.6.1.2.1.1.3.0".parse().unwrap();
        let ber = oid.to_ber();
        let bytes = CommunityMessage::encode(
            Version::V2c,
            b"public",
            PduType::Get,
            0x1234,
            0,
            0,
            [(ber.as_slice(), Value::Null)],
        );
        let expected = [
            0x30, 0x27, 0x02, 0x01, 0x01, 0x04, 0x06, b'p', b'u', b'b', b'l', b'i', b'c', 0xa0,
            0x1a, 0x02, 0x02, 0x12, 0x34, 0x02, 0x01, 0x00, 0x02, 0x01, 0x00, 0x30, 0x0e, 0x30,
            0x0c, 0x06, 0x08, 0x2b, 0x06, 0x01, 0x02, 0x01, 0x01, 0x03, 0x00, 0x05, 0x00,
        ];
        assert_eq!(bytes, expected);
        let msg = CommunityMessage::decode(&bytes).unwrap();
        assert_eq!(msg.version, Version::V2c);
        assert_eq!(msg.community, b"public");
        assert_eq!(msg.pdu.request_id, 0x1234);
        let vbs: Vec<_> = msg.pdu.varbinds.collect::<Result<_, _>>().unwrap();
        assert_eq!(
            vbs,
            [VarBind {
                oid: &ber,
                value: Value::Null
            }]
        );
        assert_eq!(peek_version(&bytes), Ok(Version::V2c));
    }

    #[test]
    fn a_bad_varbind_is_an_error_not_a_short_list() {
        let oid: Oid = "1.3.6.1.2.1.1.3.0".parse().unwrap();
        let ber = oid.to_ber();
        let mut bytes = CommunityMessage::encode(
            Version::V2c,
            b"public",
            PduType::Response,
            7,
            0,
            0,
            [
                (ber.as_slice(), Value::Integer(1)),
                (ber.as_slice(), Value::Integer(2)),
            ],
        );
        let last_value_tag = bytes.len() - 3;
        assert_eq!(bytes[last_value_tag], tag::INTEGER);
        bytes[last_value_tag] = 0x47;
        let msg = CommunityMessage::decode(&bytes).unwrap();
        let items: Vec<_> = msg.pdu.varbinds.collect();
        assert_eq!(items.len(), 2);
        assert!(items[0].is_ok());
        assert_eq!(items[1], Err(DecodeError::UnknownValue(0x47)));
    }
}
