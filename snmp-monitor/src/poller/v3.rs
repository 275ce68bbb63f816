//! The SNMPv3 side of the poller: engine discovery, requests with the user's keys, and replies
//! that are authenticated before anything in them is believed.

use std::hash::Hash;
use std::net::SocketAddr;

use tokio::time::Instant;

use crate::error::KeyLengthError;
use crate::pdu::PduType;
use crate::sample::PollResult;
use crate::spec::Access;
use crate::stats::DropReason;
use crate::usm::message::{EngineParams, FLAG_AUTH, FLAG_PRIV, Request, Unprotect, V3Message};
use crate::usm::{AuthFailure, LocalKeys, MasterKeys};

use super::core::{Core, Engine, Poll};

/// The request for the poll in flight: an empty discovery GET without an engine, else the
/// monitor's GET under the user's localized keys.
pub(super) fn encode(
    master: &MasterKeys,
    oids: &[Vec<u8>],
    engine: Option<&Engine>,
    poll: &Poll,
    salt: u64,
    now: Instant,
) -> Result<Vec<u8>, KeyLengthError> {
    let request = match engine {
        Some(engine) if !poll.discovering => Request {
            msg_id: poll.request_id,
            request_id: poll.request_id,
            kind: PduType::Get,
            engine: EngineParams {
                engine_id: &engine.id,
                boots: engine.boots,
                time: engine.time_now(now),
            },
            user: &master.user,
            keys: Some(&engine.keys),
            salt,
            oids,
        },
        _ => Request {
            msg_id: poll.request_id,
            request_id: poll.request_id,
            kind: PduType::Get,
            engine: EngineParams::default(),
            user: b"",
            keys: None,
            salt,
            oids: &[],
        },
    };
    request.encode()
}

impl<K: Clone + Eq + Hash> Core<K> {
    pub(super) fn on_v3(&mut self, now: Instant, socket: usize, from: SocketAddr, bytes: &[u8]) {
        let Ok(msg) = V3Message::decode(bytes) else {
            return self.stats.dropped(DropReason::Malformed);
        };
        let slot = match self.slot_for(msg.msg_id, socket, from) {
            Ok(slot) => slot,
            Err(reason) => return self.stats.dropped(reason),
        };
        let Some(agent) = self.agents[slot].as_mut() else {
            return;
        };
        let Access::Usm(master) = &agent.monitor.access else {
            return self.stats.dropped(DropReason::Unexpected);
        };
        let Some(poll) = agent.poll.as_mut() else {
            return;
        };

        if poll.discovering {
            // The discovery Report is unauthenticated by nature; it is the only message whose
            // engine ID, boots and time are taken on trust.
            let mut scratch = std::mem::take(&mut self.scratch);
            let report = msg.plaintext(&LocalKeys::default(), &mut scratch);
            let valid = matches!(&report, Ok(s) if s.pdu.kind == PduType::Report)
                && !msg.usm.engine_id.is_empty();
            self.scratch = scratch;
            if !valid {
                return self.stats.dropped(DropReason::Unexpected);
            }
            agent.engine = Some(Engine {
                id: msg.usm.engine_id.to_vec(),
                boots: msg.usm.boots,
                time: msg.usm.time,
                at: now,
                keys: master.localize(msg.usm.engine_id),
            });
            poll.discovering = false;
            return self.resend_new(slot, now);
        }

        let Some(engine) = agent.engine.as_mut() else {
            return;
        };
        let authenticated = msg.flags & FLAG_AUTH != 0;
        if authenticated {
            let ours =
                msg.usm.engine_id == engine.id.as_slice() && msg.usm.user == master.user.as_slice();
            if !ours || msg.authenticate(bytes, &engine.keys).is_err() {
                return self.stats.dropped(DropReason::BadAuth);
            }
            // RFC 3414 §3.2.7 b: only an authentic message moves our idea of the engine's clock.
            if msg.usm.boots > engine.boots
                || (msg.usm.boots == engine.boots && msg.usm.time > engine.time_now(now))
            {
                engine.boots = msg.usm.boots;
                engine.time = msg.usm.time;
                engine.at = now;
            }
        }
        let mut scratch = std::mem::take(&mut self.scratch);
        let scoped = match msg.plaintext(&engine.keys, &mut scratch) {
            Ok(scoped) => scoped,
            Err(Unprotect::Decode(_)) => {
                self.scratch = scratch;
                return self.stats.dropped(DropReason::Malformed);
            }
            Err(_) => {
                self.scratch = scratch;
                return self.stats.dropped(DropReason::BadAuth);
            }
        };
        match scoped.pdu.kind {
            PduType::Report => {
                let kind = scoped
                    .pdu
                    .varbinds
                    .clone()
                    .next()
                    .and_then(Result::ok)
                    .map_or(AuthFailure::Other, |vb| AuthFailure::from_oid(vb.oid));
                self.scratch = scratch;
                self.on_report(slot, now, kind, authenticated);
            }
            PduType::Response => {
                let protected_as_asked = (!master.has_auth() || authenticated)
                    && (!master.has_privacy() || msg.flags & FLAG_PRIV != 0);
                if !protected_as_asked || scoped.pdu.request_id != poll.request_id {
                    self.scratch = scratch;
                    return self.stats.dropped(DropReason::BadAuth);
                }
                self.on_response(slot, now, &scoped.pdu);
                self.scratch = scratch;
            }
            _ => {
                self.scratch = scratch;
                self.stats.dropped(DropReason::Unexpected);
            }
        }
    }

    /// A Report to a GET: retry once after a clock or engine change, else an auth error.
    fn on_report(&mut self, slot: usize, now: Instant, kind: AuthFailure, authenticated: bool) {
        let Some(agent) = self.agents[slot].as_mut() else {
            return;
        };
        let Some(poll) = agent.poll.as_mut() else {
            return;
        };
        let retry = !poll.resynced
            && match kind {
                AuthFailure::NotInTimeWindow => authenticated,
                AuthFailure::UnknownEngineId => true,
                _ => false,
            };
        if retry {
            poll.resynced = true;
            if kind == AuthFailure::UnknownEngineId {
                agent.engine = None;
                poll.discovering = true;
            }
            self.resend_new(slot, now);
        } else {
            self.finish(slot, now, PollResult::AuthError(kind), Vec::new());
        }
    }
}
