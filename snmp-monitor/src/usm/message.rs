//! The SNMPv3 message (RFC 3412) with USM security parameters (RFC 3414 §2.4).

use crate::ber::{Reader, Writer, offset_in, tag};
use crate::error::{DecodeError, KeyLengthError};
use crate::pdu::{Pdu, PduType};
use crate::value::Value;

use super::LocalKeys;
use super::crypto::{Direction, aes_cfb, hmac, verify_hmac};

/// msgFlags bits.
pub const FLAG_AUTH: u8 = 0x01;
pub const FLAG_PRIV: u8 = 0x02;
pub const FLAG_REPORTABLE: u8 = 0x04;

/// The USM security model number.
const USM: i64 = 3;
/// Largest message we say we accept (the largest UDP payload over IPv4).
pub const MAX_MESSAGE_SIZE: i64 = 65507;

/// A decoded, not yet authenticated v3 message.
#[derive(Debug, Clone)]
pub struct V3Message<'a> {
    pub msg_id: i32,
    pub flags: u8,
    pub usm: UsmParams<'a>,
    /// A plaintext scopedPDU (the SEQUENCE element) or the encrypted octets.
    pub data: ScopedData<'a>,
}

#[derive(Debug, Clone, Copy)]
pub struct UsmParams<'a> {
    pub engine_id: &'a [u8],
    pub boots: u32,
    pub time: u32,
    pub user: &'a [u8],
    pub auth_params: &'a [u8],
    pub priv_params: &'a [u8],
}

#[derive(Debug, Clone, Copy)]
pub enum ScopedData<'a> {
    Plain(&'a [u8]),
    Encrypted(&'a [u8]),
}

/// What can go wrong after decoding: the message does not authenticate or decrypt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unprotect {
    /// The HMAC did not match (or the message lacked one we need).
    BadDigest,
    /// The privacy parameters were malformed or the plaintext is not a scopedPDU.
    BadDecryption,
    Decode(DecodeError),
}

impl<'a> V3Message<'a> {
    pub fn decode(datagram: &'a [u8]) -> Result<Self, DecodeError> {
        let mut outer = Reader::new(datagram);
        let mut r = outer.read_sequence()?;
        outer.finish()?;
        if r.read_integer()? != 3 {
            return Err(DecodeError::BadV3Header);
        }
        let mut header = r.read_sequence()?;
        let msg_id = i32::try_from(header.read_integer()?).map_err(|_| DecodeError::BadV3Header)?;
        if msg_id < 0 {
            return Err(DecodeError::BadV3Header);
        }
        let max_size = header.read_integer()?;
        let flags = match header.read_octets()? {
            [flags] => *flags,
            _ => return Err(DecodeError::BadV3Header),
        };
        let model = header.read_integer()?;
        header.finish()?;
        if model != USM || max_size < 484 || flags & FLAG_PRIV != 0 && flags & FLAG_AUTH == 0 {
            return Err(DecodeError::BadV3Header);
        }
        let mut outer_params = Reader::new(r.read_octets()?);
        let mut p = outer_params.read_sequence()?;
        outer_params.finish()?;
        let engine_id = p.read_octets()?;
        let boots = u32::try_from(p.read_integer()?).map_err(|_| DecodeError::BadV3Header)?;
        let time = u32::try_from(p.read_integer()?).map_err(|_| DecodeError::BadV3Header)?;
        let user = p.read_octets()?;
        let auth_params = p.read_octets()?;
        let priv_params = p.read_octets()?;
        p.finish()?;
        if engine_id.len() > 32
            || user.len() > 32
            || boots > i32::MAX as u32
            || time > i32::MAX as u32
        {
            return Err(DecodeError::BadV3Header);
        }
        let data = if flags & FLAG_PRIV != 0 {
            ScopedData::Encrypted(r.read_octets()?)
        } else {
            ScopedData::Plain(r.read(tag::SEQUENCE)?)
        };
        r.finish()?;
        let usm = UsmParams {
            engine_id,
            boots,
            time,
            user,
            auth_params,
            priv_params,
        };
        Ok(Self {
            msg_id,
            flags,
            usm,
            data,
        })
    }

    /// Checks the HMAC of `datagram` (the bytes this message was decoded from).
    pub fn authenticate(&self, datagram: &[u8], keys: &LocalKeys) -> Result<(), Unprotect> {
        let Some((protocol, key)) = &keys.auth else {
            return Ok(());
        };
        if self.flags & FLAG_AUTH == 0 || self.usm.auth_params.len() != protocol.mac_len() {
            return Err(Unprotect::BadDigest);
        }
        let at = offset_in(datagram, self.usm.auth_params).ok_or(Unprotect::BadDigest)?;
        let mut copy = datagram.to_vec();
        copy[at..at + protocol.mac_len()].fill(0);
        if verify_hmac(*protocol, key, &copy, self.usm.auth_params) {
            Ok(())
        } else {
            Err(Unprotect::BadDigest)
        }
    }

    /// The scopedPDU's bytes: borrowed when plain, decrypted into `scratch` when encrypted.
    pub fn plaintext<'s>(
        &self,
        keys: &LocalKeys,
        scratch: &'s mut Vec<u8>,
    ) -> Result<ScopedPdu<'s>, Unprotect>
    where
        'a: 's,
    {
        match self.data {
            ScopedData::Plain(contents) => ScopedPdu::decode(contents).map_err(Unprotect::Decode),
            ScopedData::Encrypted(cipher) => {
                let Some((protocol, key)) = &keys.privacy else {
                    return Err(Unprotect::BadDecryption);
                };
                let salt: [u8; 8] = self
                    .usm
                    .priv_params
                    .try_into()
                    .map_err(|_| Unprotect::BadDecryption)?;
                scratch.clear();
                scratch.extend_from_slice(cipher);
                let iv = aes_iv(self.usm.boots, self.usm.time, salt);
                aes_cfb(*protocol, key, iv, scratch, Direction::Decrypt)
                    .map_err(|_| Unprotect::BadDecryption)?;
                let mut r = Reader::new(scratch);
                let contents = r
                    .read(tag::SEQUENCE)
                    .map_err(|_| Unprotect::BadDecryption)?;
                ScopedPdu::decode(contents).map_err(|_| Unprotect::BadDecryption)
            }
        }
    }
}

/// contextEngineID, contextName and the PDU.
#[derive(Debug, Clone)]
pub struct ScopedPdu<'a> {
    pub context_engine_id: &'a [u8],
    pub context_name: &'a [u8],
    pub pdu: Pdu<'a>,
}

impl<'a> ScopedPdu<'a> {
    /// From the contents of the scopedPDU SEQUENCE.
    pub fn decode(contents: &'a [u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(contents);
        let context_engine_id = r.read_octets()?;
        let context_name = r.read_octets()?;
        let (pdu_tag, pdu_contents) = r.read_any()?;
        r.finish()?;
        Ok(Self {
            context_engine_id,
            context_name,
            pdu: Pdu::decode(pdu_tag, pdu_contents)?,
        })
    }
}

/// The authoritative engine a request is addressed to.
#[derive(Debug, Clone, Copy, Default)]
pub struct EngineParams<'a> {
    pub engine_id: &'a [u8],
    pub boots: u32,
    pub time: u32,
}

/// Everything one outgoing v3 request needs.
#[derive(Debug)]
pub struct Request<'a> {
    pub msg_id: i32,
    pub request_id: i32,
    pub kind: PduType,
    pub engine: EngineParams<'a>,
    /// Empty for engine discovery.
    pub user: &'a [u8],
    /// `None` (or empty keys) sends noAuthNoPriv.
    pub keys: Option<&'a LocalKeys>,
    /// Fresh per encrypted message (RFC 3826 §3.1.2.1).
    pub salt: u64,
    pub oids: &'a [Vec<u8>],
}

impl Request<'_> {
    /// The datagram, authenticated and encrypted as the keys ask. Fails only on a privacy key
    /// that does not fit its cipher.
    pub fn encode(&self) -> Result<Vec<u8>, KeyLengthError> {
        let auth = self.keys.and_then(|k| k.auth.as_ref());
        let privacy = self
            .keys
            .and_then(|k| k.privacy.as_ref())
            .filter(|_| auth.is_some());
        let mut flags = FLAG_REPORTABLE;
        if auth.is_some() {
            flags |= FLAG_AUTH;
        }
        if privacy.is_some() {
            flags |= FLAG_PRIV;
        }

        let mut sp = Writer::new();
        let scoped = sp.open(tag::SEQUENCE);
        sp.octets(self.engine.engine_id);
        sp.octets(b"");
        let varbinds = self.oids.iter().map(|oid| (oid.as_slice(), Value::Null));
        Pdu::encode(&mut sp, self.kind, self.request_id, 0, 0, varbinds);
        sp.close(scoped);
        let mut scoped_pdu = sp.into_bytes();
        let salt = self.salt.to_be_bytes();
        if let Some((protocol, key)) = privacy {
            let iv = aes_iv(self.engine.boots, self.engine.time, salt);
            aes_cfb(*protocol, key, iv, &mut scoped_pdu, Direction::Encrypt)?;
        }

        let mut w = Writer::new();
        let msg = w.open(tag::SEQUENCE);
        w.integer(3);
        let header = w.open(tag::SEQUENCE);
        w.integer(self.msg_id.into());
        w.integer(MAX_MESSAGE_SIZE);
        w.octets(&[flags]);
        w.integer(USM);
        w.close(header);
        let params_octets = w.open(tag::OCTET_STRING);
        let params = w.open(tag::SEQUENCE);
        w.octets(self.engine.engine_id);
        w.integer(self.engine.boots.into());
        w.integer(self.engine.time.into());
        w.octets(self.user);
        let auth_mark = w.track(w.position() + 2);
        let zeros = [0u8; 48];
        w.octets(auth.map_or(&[][..], |(p, _)| &zeros[..p.mac_len()]));
        w.octets(if privacy.is_some() { &salt[..] } else { &[] });
        w.close(params);
        w.close(params_octets);
        if privacy.is_some() {
            w.octets(&scoped_pdu);
        } else {
            w.primitive_raw(&scoped_pdu);
        }
        w.close(msg);
        let at = w.tracked(auth_mark);
        let mut bytes = w.into_bytes();
        if let (Some((protocol, key)), Some(at)) = (auth, at) {
            let mac = hmac(*protocol, key, &bytes);
            let n = protocol.mac_len();
            bytes[at..at + n].copy_from_slice(&mac[..n]);
        }
        Ok(bytes)
    }
}

/// IV = engineBoots || engineTime || salt (RFC 3826 §3.1.2.1).
fn aes_iv(boots: u32, time: u32, salt: [u8; 8]) -> [u8; 16] {
    let mut iv = [0u8; 16];
    iv[..4].copy_from_slice(&boots.to_be_bytes());
    iv[4..8].copy_from_slice(&time.to_be_bytes());
    iv[8..].copy_from_slice(&salt);
    iv
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::usm::{AuthProtocol, PrivProtocol, UsmUser};

    #[test]
    fn auth_priv_request_round_trips_through_decode_authenticate_decrypt() {
        for (auth, privacy) in [
            (AuthProtocol::Sha1, PrivProtocol::Aes128),
            (AuthProtocol::Sha256, PrivProtocol::Aes256),
            (AuthProtocol::Sha1, PrivProtocol::Aes256Reeder),
        ] {
            let user = UsmUser::auth_priv("u", auth, "authpass123", privacy, "privpass123");
            let keys = user
                .master_keys()
                .unwrap()
                .localize(b"\x80\x00\x1f\x88engine");
            let oids = vec![vec![0x2b, 6, 1, 2, 1, 1, 3, 0]];
            let request = Request {
                msg_id: 77,
                request_id: 78,
                kind: PduType::Get,
                engine: EngineParams {
                    engine_id: b"\x80\x00\x1f\x88engine",
                    boots: 3,
                    time: 1000,
                },
                user: b"u",
                keys: Some(&keys),
                salt: 0x0102_0304_0506_0708,
                oids: &oids,
            };
            let bytes = request.encode().unwrap();
            let msg = V3Message::decode(&bytes).unwrap();
            assert_eq!(msg.msg_id, 77);
            assert_eq!(msg.flags, FLAG_AUTH | FLAG_PRIV | FLAG_REPORTABLE);
            assert_eq!(msg.usm.auth_params.len(), auth.mac_len());
            msg.authenticate(&bytes, &keys).unwrap();
            let mut scratch = Vec::new();
            let scoped = msg.plaintext(&keys, &mut scratch).unwrap();
            assert_eq!(scoped.pdu.request_id, 78);
            assert_eq!(scoped.pdu.varbinds.count(), 1);

            let mut tampered = bytes.clone();
            let last = tampered.len() - 1;
            tampered[last] ^= 1;
            let msg = V3Message::decode(&tampered).unwrap();
            assert_eq!(
                msg.authenticate(&tampered, &keys),
                Err(Unprotect::BadDigest)
            );
        }
    }

    #[test]
    fn a_privacy_key_of_the_wrong_length_fails_to_encode_rather_than_send_in_clear() {
        let mut keys = UsmUser::auth_priv(
            "u",
            AuthProtocol::Sha1,
            "authpass123",
            PrivProtocol::Aes256,
            "privpass123",
        )
        .master_keys()
        .unwrap()
        .localize(b"engine");
        if let Some((_, key)) = keys.privacy.as_mut() {
            key.truncate(16);
        }
        let oids = vec![vec![0x2b, 6, 1, 2, 1, 1, 3, 0]];
        let request = Request {
            msg_id: 1,
            request_id: 2,
            kind: PduType::Get,
            engine: EngineParams {
                engine_id: b"engine",
                boots: 1,
                time: 1,
            },
            user: b"u",
            keys: Some(&keys),
            salt: 3,
            oids: &oids,
        };
        let error = request.encode().unwrap_err();
        assert_eq!(
            error.to_string(),
            "AES-256 privacy key must be 32 bytes, not 16"
        );
    }

    #[test]
    fn discovery_request_is_plain_and_reportable() {
        let request = Request {
            msg_id: 1,
            request_id: 2,
            kind: PduType::Get,
            engine: EngineParams::default(),
            user: b"",
            keys: None,
            salt: 0,
            oids: &[],
        };
        let bytes = request.encode().unwrap();
        let msg = V3Message::decode(&bytes).unwrap();
        assert_eq!(msg.flags, FLAG_REPORTABLE);
        let mut scratch = Vec::new();
        let scoped = msg.plaintext(&LocalKeys::default(), &mut scratch).unwrap();
        assert_eq!(scoped.pdu.kind, PduType::Get);
    }
}
