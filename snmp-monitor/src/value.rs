//! Varbind values (RFC 2578 SMI types and the v2 exceptions), borrowed from the datagram.

use crate::ber::{Writer, decode_i64, decode_u64, tag};
use crate::error::DecodeError;

/// One varbind value. String-like values borrow the datagram they were decoded from.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Value<'a> {
    Integer(i64),
    OctetString(&'a [u8]),
    Null,
    /// An OBJECT IDENTIFIER value, as its BER contents.
    ObjectId(&'a [u8]),
    IpAddress([u8; 4]),
    Counter32(u32),
    /// Gauge32 and Unsigned32 share one tag.
    Gauge32(u32),
    TimeTicks(u32),
    Opaque(&'a [u8]),
    Counter64(u64),
    NoSuchObject,
    NoSuchInstance,
    EndOfMibView,
}

impl<'a> Value<'a> {
    /// Decodes a value from its tag and contents.
    pub fn decode(tag: u8, contents: &'a [u8]) -> Result<Self, DecodeError> {
        let u32_of = |bytes| {
            decode_u64(bytes).and_then(|v| u32::try_from(v).map_err(|_| DecodeError::BadInteger))
        };
        Ok(match tag {
            tag::INTEGER => Value::Integer(decode_i64(contents)?),
            tag::OCTET_STRING => Value::OctetString(contents),
            tag::NULL if contents.is_empty() => Value::Null,
            tag::OID => Value::ObjectId(contents),
            tag::IP_ADDRESS => {
                Value::IpAddress(contents.try_into().map_err(|_| DecodeError::BadLength)?)
            }
            tag::COUNTER32 => Value::Counter32(u32_of(contents)?),
            tag::GAUGE32 => Value::Gauge32(u32_of(contents)?),
            tag::TIMETICKS => Value::TimeTicks(u32_of(contents)?),
            tag::OPAQUE => Value::Opaque(contents),
            tag::COUNTER64 => Value::Counter64(decode_u64(contents)?),
            tag::NO_SUCH_OBJECT if contents.is_empty() => Value::NoSuchObject,
            tag::NO_SUCH_INSTANCE if contents.is_empty() => Value::NoSuchInstance,
            tag::END_OF_MIB_VIEW if contents.is_empty() => Value::EndOfMibView,
            tag::NULL | tag::NO_SUCH_OBJECT | tag::NO_SUCH_INSTANCE | tag::END_OF_MIB_VIEW => {
                return Err(DecodeError::BadLength);
            }
            other => return Err(DecodeError::UnknownValue(other)),
        })
    }

    /// Writes the value as one BER element.
    pub fn encode(&self, w: &mut Writer) {
        match *self {
            Value::Integer(v) => w.integer(v),
            Value::OctetString(bytes) => w.octets(bytes),
            Value::Null => w.null(),
            Value::ObjectId(contents) => w.primitive(tag::OID, contents),
            Value::IpAddress(octets) => w.primitive(tag::IP_ADDRESS, &octets),
            Value::Counter32(v) => w.unsigned(tag::COUNTER32, v.into()),
            Value::Gauge32(v) => w.unsigned(tag::GAUGE32, v.into()),
            Value::TimeTicks(v) => w.unsigned(tag::TIMETICKS, v.into()),
            Value::Opaque(bytes) => w.primitive(tag::OPAQUE, bytes),
            Value::Counter64(v) => w.unsigned(tag::COUNTER64, v),
            Value::NoSuchObject => w.primitive(tag::NO_SUCH_OBJECT, &[]),
            Value::NoSuchInstance => w.primitive(tag::NO_SUCH_INSTANCE, &[]),
            Value::EndOfMibView => w.primitive(tag::END_OF_MIB_VIEW, &[]),
        }
    }

    /// True for the v2 exceptions that mean "no value here".
    pub fn is_exception(&self) -> bool {
        matches!(
            self,
            Value::NoSuchObject | Value::NoSuchInstance | Value::EndOfMibView
        )
    }
}
