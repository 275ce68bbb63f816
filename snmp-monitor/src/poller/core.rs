//! The poller's protocol core: members, timers, the request-id table, and what to do with each
//! datagram. No I/O: the driver hands it `now`, received datagrams and timer wake-ups, and takes
//! back datagrams to send and finished [`Sample`]s (quinn-proto style), so it is tested with a
//! paused clock and no sockets.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::hash::Hash;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use crate::error::KeyLengthError;
use crate::pdu::{CommunityMessage, Pdu, PduType, Version, peek_version};
use crate::sample::{PollResult, Sample};
use crate::spec::{Access, LoadMonitor};
use crate::stats::{DropReason, PollStats};
use crate::usm::LocalKeys;

use super::rng::Rng;
use super::values::{CounterState, read_values};

/// Request ids (and v3 msgIDs) are drawn from this range so they always encode in 4 bytes.
const REQUEST_ID_MIN: i32 = 0x0100_0000;

pub(crate) struct Core<K> {
    pub(super) agents: Vec<Option<Agent<K>>>,
    free: Vec<usize>,
    members: HashMap<K, usize>,
    /// Request id (v3: msgID) of every poll in flight → agent slot.
    pub(super) requests: HashMap<i32, usize>,
    timers: BinaryHeap<Reverse<Timer>>,
    next_timer: u64,
    pub(super) rng: Rng,
    pub(super) stats: Arc<PollStats>,
    samples: Vec<Sample<K>>,
    pub(super) outbox: Vec<usize>,
    pub(super) scratch: Vec<u8>,
    max_datagram: usize,
}

#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Timer {
    at: Instant,
    id: u64,
    slot: usize,
}

pub(crate) struct Agent<K> {
    pub member: K,
    pub addr: SocketAddr,
    /// The driver's socket for this agent, chosen before its first request is sent.
    pub socket: Option<usize>,
    pub monitor: Arc<LoadMonitor>,
    /// The one timer of this agent that is still valid (others in the heap are skipped).
    timer: u64,
    /// When the current (or next) poll is due.
    due: Instant,
    pub poll: Option<Poll>,
    pub engine: Option<Engine>,
    counters: Vec<CounterState>,
    failures: u32,
    /// The request of the poll in flight, kept for retransmission.
    pub datagram: Vec<u8>,
}

pub(crate) struct Poll {
    pub request_id: i32,
    attempt: u32,
    pub sent_at: Instant,
    /// v3: waiting for the engine-discovery Report.
    pub discovering: bool,
    /// v3: already re-sent once after a notInTimeWindow or unknownEngineID Report.
    pub resynced: bool,
}

/// What a v3 agent told us about its engine (only authenticated messages update it after
/// discovery).
pub(crate) struct Engine {
    pub id: Vec<u8>,
    pub boots: u32,
    pub time: u32,
    pub at: Instant,
    pub keys: LocalKeys,
}

impl Engine {
    /// The agent's engine time now, by our clock.
    pub fn time_now(&self, now: Instant) -> u32 {
        let elapsed = now.saturating_duration_since(self.at).as_secs();
        self.time
            .saturating_add(u32::try_from(elapsed).unwrap_or(u32::MAX))
            .min(i32::MAX as u32)
    }
}

impl<K: Clone + Eq + Hash> Core<K> {
    pub fn new(stats: Arc<PollStats>, max_datagram: usize, rng: Rng) -> Self {
        Self {
            agents: Vec::new(),
            free: Vec::new(),
            members: HashMap::new(),
            requests: HashMap::new(),
            timers: BinaryHeap::new(),
            next_timer: 0,
            rng,
            stats,
            samples: Vec::new(),
            outbox: Vec::new(),
            scratch: Vec::new(),
            max_datagram,
        }
    }

    /// Starts polling `member` at `addr` (replacing what it had). The first poll comes at a
    /// random point within one interval, so many members spread their polls evenly.
    pub fn watch(&mut self, now: Instant, member: K, addr: SocketAddr, monitor: Arc<LoadMonitor>) {
        self.unwatch(&member);
        let slot = self.free.pop().unwrap_or_else(|| {
            self.agents.push(None);
            self.agents.len() - 1
        });
        let interval = monitor.spec().interval;
        let jitter = Duration::from_nanos(self.rng.below(interval.as_nanos().max(1) as u64));
        let counters = vec![None; monitor.spec().table.metrics.len()];
        self.agents[slot] = Some(Agent {
            member: member.clone(),
            addr,
            socket: None,
            monitor,
            timer: 0,
            due: now + jitter,
            poll: None,
            engine: None,
            counters,
            failures: 0,
            datagram: Vec::new(),
        });
        self.members.insert(member, slot);
        self.set_timer(slot, now + jitter);
        self.stats.set_agents(self.members.len());
    }

    /// Stops polling `member`; a reply still in flight will be dropped as unknown.
    pub fn unwatch(&mut self, member: &K) {
        let Some(slot) = self.members.remove(member) else {
            return;
        };
        if let Some(agent) = self.agents[slot].take()
            && let Some(poll) = agent.poll
        {
            self.requests.remove(&poll.request_id);
        }
        self.free.push(slot);
        self.stats.set_agents(self.members.len());
    }

    /// The earliest timer (possibly one that turns out stale).
    pub fn next_deadline(&self) -> Option<Instant> {
        self.timers.peek().map(|Reverse(t)| t.at)
    }

    /// Runs every timer due at `now`: poll starts and reply timeouts.
    pub fn on_timers(&mut self, now: Instant) {
        while let Some(Reverse(timer)) = self.timers.peek() {
            if timer.at > now {
                break;
            }
            let Some(Reverse(timer)) = self.timers.pop() else {
                break;
            };
            let Some(agent) = self.agents.get(timer.slot).and_then(Option::as_ref) else {
                continue;
            };
            if agent.timer != timer.id {
                continue;
            }
            if agent.poll.is_some() {
                self.on_reply_timeout(timer.slot, now);
            } else {
                self.start_poll(timer.slot, now);
            }
        }
    }

    /// Datagrams to send: take the slots, then read each with [`Core::outgoing`].
    pub fn take_outbox(&mut self, into: &mut Vec<usize>) {
        into.clear();
        std::mem::swap(into, &mut self.outbox);
    }

    /// Socket index, destination and bytes of the request in flight for `slot`.
    pub fn outgoing(&self, slot: usize) -> Option<(Option<usize>, SocketAddr, &[u8])> {
        let agent = self.agents.get(slot)?.as_ref()?;
        agent.poll.as_ref()?;
        Some((agent.socket, agent.addr, &agent.datagram))
    }

    /// The driver sends (and expects replies to) `slot`'s requests on `socket` from now on.
    pub fn set_socket(&mut self, slot: usize, socket: usize) {
        if let Some(agent) = self.agents.get_mut(slot).and_then(Option::as_mut) {
            agent.socket = Some(socket);
        }
    }

    /// The request of `slot` could not be sent: the poll ends with [`PollResult::SendError`].
    pub fn send_failed(&mut self, slot: usize, now: Instant) {
        if self
            .agents
            .get(slot)
            .and_then(Option::as_ref)
            .is_some_and(|a| a.poll.is_some())
        {
            self.finish(slot, now, PollResult::SendError, Vec::new());
        }
    }

    pub fn drain_samples(&mut self) -> std::vec::Drain<'_, Sample<K>> {
        self.samples.drain(..)
    }

    /// Handles one received datagram. Anything that is not a valid reply to a poll in flight,
    /// from the agent it was sent to, is counted and dropped.
    pub fn on_datagram(&mut self, now: Instant, socket: usize, from: SocketAddr, bytes: &[u8]) {
        if bytes.len() > self.max_datagram {
            return self.stats.dropped(DropReason::Oversized);
        }
        match peek_version(bytes) {
            Ok(Version::V3) => self.on_v3(now, socket, from, bytes),
            Ok(_) => self.on_community(now, socket, from, bytes),
            Err(_) => self.stats.dropped(DropReason::Malformed),
        }
    }

    /// The slot waiting for `request_id`, if the datagram came from its agent on its socket.
    pub(super) fn slot_for(
        &self,
        request_id: i32,
        socket: usize,
        from: SocketAddr,
    ) -> Result<usize, DropReason> {
        let &slot = self
            .requests
            .get(&request_id)
            .ok_or(DropReason::UnknownRequest)?;
        let agent = self
            .agents
            .get(slot)
            .and_then(Option::as_ref)
            .ok_or(DropReason::UnknownRequest)?;
        if agent.addr != from || agent.socket != Some(socket) {
            return Err(DropReason::WrongSource);
        }
        Ok(slot)
    }

    fn on_community(&mut self, now: Instant, socket: usize, from: SocketAddr, bytes: &[u8]) {
        let Ok(msg) = CommunityMessage::decode(bytes) else {
            return self.stats.dropped(DropReason::Malformed);
        };
        if msg.pdu.kind != PduType::Response {
            return self.stats.dropped(DropReason::Unexpected);
        }
        let slot = match self.slot_for(msg.pdu.request_id, socket, from) {
            Ok(slot) => slot,
            Err(reason) => return self.stats.dropped(reason),
        };
        let Some(agent) = self.agents[slot].as_ref() else {
            return;
        };
        match &agent.monitor.access {
            Access::Community {
                version, community, ..
            } if *version == msg.version => {
                if community.as_slice() != msg.community {
                    return self.stats.dropped(DropReason::BadCommunity);
                }
            }
            _ => return self.stats.dropped(DropReason::Unexpected),
        }
        self.on_response(slot, now, &msg.pdu);
    }

    /// A Response to the poll in flight: values, or the error it carries.
    pub(super) fn on_response(&mut self, slot: usize, now: Instant, pdu: &Pdu<'_>) {
        let Some(agent) = self.agents[slot].as_mut() else {
            return;
        };
        if pdu.error_status != 0 {
            return self.finish(
                slot,
                now,
                PollResult::AgentError(pdu.error_status),
                Vec::new(),
            );
        }
        match read_values(&agent.monitor, pdu, &mut agent.counters, now) {
            Ok(values) => self.finish(slot, now, PollResult::Ok, values),
            Err(_) => self.finish(slot, now, PollResult::DecodeError, Vec::new()),
        }
    }

    fn start_poll(&mut self, slot: usize, now: Instant) {
        let request_id = self.new_request_id();
        let Some(agent) = self.agents[slot].as_mut() else {
            return;
        };
        let discovering = matches!(agent.monitor.access, Access::Usm(_)) && agent.engine.is_none();
        agent.poll = Some(Poll {
            request_id,
            attempt: 0,
            sent_at: now,
            discovering,
            resynced: false,
        });
        self.requests.insert(request_id, slot);
        self.encode_and_send(slot, now);
    }

    /// Sends a fresh request for the poll in flight under a new id (v3: after discovery or a
    /// time-window resync), with a full set of retries.
    pub(super) fn resend_new(&mut self, slot: usize, now: Instant) {
        let request_id = self.new_request_id();
        let Some(poll) = self.agents[slot].as_mut().and_then(|a| a.poll.as_mut()) else {
            return;
        };
        let old = std::mem::replace(&mut poll.request_id, request_id);
        poll.attempt = 0;
        self.requests.remove(&old);
        self.requests.insert(request_id, slot);
        self.encode_and_send(slot, now);
    }

    fn on_reply_timeout(&mut self, slot: usize, now: Instant) {
        let Some(agent) = self.agents[slot].as_mut() else {
            return;
        };
        let Some(poll) = agent.poll.as_mut() else {
            return;
        };
        if poll.attempt < agent.monitor.spec().retries {
            poll.attempt += 1;
            self.send(slot, now, true);
        } else {
            self.finish(slot, now, PollResult::Timeout, Vec::new());
        }
    }

    /// Queues the datagram of `slot` and arms its reply timeout.
    fn send(&mut self, slot: usize, now: Instant, retransmit: bool) {
        let Some(agent) = self.agents[slot].as_mut() else {
            return;
        };
        let Some(poll) = agent.poll.as_mut() else {
            return;
        };
        poll.sent_at = now;
        let timeout = agent.monitor.spec().resptimeout;
        self.stats.sent(retransmit);
        self.outbox.push(slot);
        self.set_timer(slot, now + timeout);
    }

    /// Encodes the request of the poll in flight and queues it; a request that cannot be
    /// encoded ends the poll with [`PollResult::SendError`].
    fn encode_and_send(&mut self, slot: usize, now: Instant) {
        match self.encode_request(slot, now) {
            Ok(()) => self.send(slot, now, false),
            Err(error) => {
                tracing::warn!(%error, "SNMPv3 request not encoded");
                self.finish(slot, now, PollResult::SendError, Vec::new());
            }
        }
    }

    fn encode_request(&mut self, slot: usize, now: Instant) -> Result<(), KeyLengthError> {
        let salt = self.rng.next_u64();
        let Some(agent) = self.agents[slot].as_mut() else {
            return Ok(());
        };
        let Some(poll) = agent.poll.as_ref() else {
            return Ok(());
        };
        match &agent.monitor.access {
            Access::Community { template, .. } => {
                template.fill(poll.request_id, &mut agent.datagram)
            }
            Access::Usm(master) => {
                agent.datagram = super::v3::encode(
                    master,
                    &agent.monitor.oids,
                    agent.engine.as_ref(),
                    poll,
                    salt,
                    now,
                )?;
            }
        }
        Ok(())
    }

    /// Ends the poll in flight: publishes the sample and schedules the next poll.
    pub(super) fn finish(
        &mut self,
        slot: usize,
        now: Instant,
        result: PollResult,
        values: Vec<(Arc<str>, f64)>,
    ) {
        let Some(agent) = self.agents[slot].as_mut() else {
            return;
        };
        let Some(poll) = agent.poll.take() else {
            return;
        };
        self.requests.remove(&poll.request_id);
        let latency = match result {
            PollResult::Timeout | PollResult::SendError => None,
            _ => Some(now.saturating_duration_since(poll.sent_at)),
        };
        if result == PollResult::Ok {
            agent.failures = 0;
        } else {
            agent.failures = agent.failures.saturating_add(1);
            if matches!(result, PollResult::Timeout | PollResult::AuthError(_)) {
                agent.engine = None; // rediscover next time: the agent may have restarted
            }
        }
        let verdict = agent.monitor.evaluate(&values);
        self.stats.poll_finished(result.class(), latency);
        self.samples.push(Sample {
            member: agent.member.clone(),
            addr: agent.addr,
            monitor: agent.monitor.name().clone(),
            at: now,
            latency,
            result,
            values,
            load: verdict.load,
            busy: verdict.busy,
            consecutive_failures: agent.failures,
        });
        let interval = agent.monitor.spec().interval;
        agent.due += interval;
        if agent.due <= now {
            let behind = now.duration_since(agent.due).as_nanos() / interval.as_nanos().max(1) + 1;
            let behind = u32::try_from(behind).unwrap_or(u32::MAX);
            agent.due += interval * behind;
            self.stats.missed_intervals(behind.into());
        }
        let due = agent.due;
        self.set_timer(slot, due);
    }

    fn set_timer(&mut self, slot: usize, at: Instant) {
        self.next_timer += 1;
        let id = self.next_timer;
        if let Some(agent) = self.agents[slot].as_mut() {
            agent.timer = id;
            self.timers.push(Reverse(Timer { at, id, slot }));
        }
    }

    fn new_request_id(&mut self) -> i32 {
        let span = (i32::MAX - REQUEST_ID_MIN) as u64;
        loop {
            let id = REQUEST_ID_MIN + self.rng.below(span) as i32;
            if !self.requests.contains_key(&id) {
                return id;
            }
        }
    }
}
