//! The protocol core driven by hand with explicit `now`: retries, timeouts, schedules, v3
//! discovery, and 100,000 mutated replies carrying live request ids.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use super::core::Core;
use super::rng::Rng as OsRng;
use crate::pdu::{CommunityMessage, PduType, Version};
use crate::sample::PollResult;
use crate::spec::{LoadMonitor, LoadMonitorSpec, Security};
use crate::stats::{DropReason, PollStats};
use crate::table::MetricTable;
use crate::usm::message::{EngineParams, Request};
use crate::usm::{AuthProtocol, PrivProtocol, UsmUser};
use crate::value::Value;

const AGENT: &str = "127.0.0.9:161";

fn monitor(security: Security, retries: u32) -> Arc<LoadMonitor> {
    let mut spec = LoadMonitorSpec::new("core", security, MetricTable::linux());
    spec.interval = Duration::from_secs(1);
    spec.resptimeout = Duration::from_millis(200);
    spec.retries = retries;
    LoadMonitor::new(spec).unwrap()
}

fn v2c() -> Security {
    Security::V2c {
        community: "public".into(),
    }
}

fn v3_user() -> UsmUser {
    UsmUser::auth_priv(
        "core",
        AuthProtocol::Sha256,
        "authpass123",
        PrivProtocol::Aes128,
        "privpass123",
    )
}

fn core() -> Core<u32> {
    Core::new(
        Arc::new(PollStats::default()),
        16 << 10,
        OsRng::from_os().unwrap(),
    )
}

fn addr() -> SocketAddr {
    AGENT.parse().unwrap()
}

/// Takes the queued requests and, as the driver does, sends each on socket 0.
fn send_queued(core: &mut Core<u32>, out: &mut Vec<usize>) {
    core.take_outbox(out);
    for &slot in out.iter() {
        core.set_socket(slot, 0);
    }
}

/// Runs timers until a request is queued; returns the time and its request id.
fn next_request(core: &mut Core<u32>, mut now: Instant) -> (Instant, i32) {
    for _ in 0..2000 {
        core.on_timers(now);
        let mut out = Vec::new();
        send_queued(core, &mut out);
        if let Some(&slot) = out.first() {
            let poll = core.agents[slot].as_ref().unwrap().poll.as_ref().unwrap();
            return (now, poll.request_id);
        }
        now += Duration::from_millis(1);
    }
    panic!("no request");
}

fn reply(request_id: i32, values: [i64; 6]) -> Vec<u8> {
    let table = MetricTable::linux();
    let oids: Vec<Vec<u8>> = table.metrics.iter().map(|m| m.oid.to_ber()).collect();
    CommunityMessage::encode(
        Version::V2c,
        b"public",
        PduType::Response,
        request_id,
        0,
        0,
        oids.iter()
            .zip(values)
            .map(|(oid, v)| (oid.as_slice(), Value::Integer(v))),
    )
}

#[test]
fn a_silent_agent_is_retried_then_times_out_and_the_schedule_keeps_its_phase() {
    let mut core = core();
    let t0 = Instant::now();
    core.watch(t0, 1, addr(), monitor(v2c(), 2));
    let (sent, _) = next_request(&mut core, t0);
    let mut out = Vec::new();
    for retry in 1..=2 {
        core.on_timers(sent + Duration::from_millis(200 * retry));
        send_queued(&mut core, &mut out);
        assert_eq!(out.len(), 1, "retransmission {retry}");
    }
    assert_eq!(core.drain_samples().count(), 0);
    core.on_timers(sent + Duration::from_millis(600));
    let samples: Vec<_> = core.drain_samples().collect();
    assert_eq!(samples.len(), 1);
    assert_eq!(samples[0].result, PollResult::Timeout);
    assert_eq!(samples[0].consecutive_failures, 1);
    // The next poll starts one interval after the previous one was due, not after it ended.
    core.on_timers(sent + Duration::from_millis(999));
    send_queued(&mut core, &mut out);
    assert!(out.is_empty());
    core.on_timers(sent + Duration::from_millis(1000));
    send_queued(&mut core, &mut out);
    assert_eq!(out.len(), 1);
}

#[test]
fn a_reply_ends_the_poll_and_a_late_duplicate_is_unknown() {
    let mut core = core();
    let t0 = Instant::now();
    core.watch(t0, 1, addr(), monitor(v2c(), 1));
    let (sent, id) = next_request(&mut core, t0);
    let bytes = reply(id, [10, 5, 85, 1000, 250, 1]);
    core.on_datagram(sent + Duration::from_millis(3), 0, addr(), &bytes);
    let sample = core.drain_samples().next().unwrap();
    assert_eq!(sample.result, PollResult::Ok);
    assert_eq!(sample.latency, Some(Duration::from_millis(3)));
    assert_eq!(sample.value("cpu"), Some(15.0));
    assert_eq!(sample.value("memory"), Some(75.0));
    core.on_datagram(sent + Duration::from_millis(4), 0, addr(), &bytes);
    assert_eq!(core.stats.drops(DropReason::UnknownRequest), 1);
    assert_eq!(core.drain_samples().count(), 0);
}

/// Plays the agent for a v3 poll: the discovery Report, then a Response under the user's keys.
#[test]
fn v3_discovers_the_engine_then_reads_an_authenticated_encrypted_reply() {
    let mut core = core();
    let t0 = Instant::now();
    core.watch(t0, 1, addr(), monitor(Security::V3(v3_user()), 1));
    let (sent, id) = next_request(&mut core, t0);
    let engine = EngineParams {
        engine_id: b"\x80\x00\x1f\x88\x04core",
        boots: 3,
        time: 500,
    };
    let report = Request {
        msg_id: id,
        request_id: id,
        kind: PduType::Report,
        engine,
        user: b"",
        keys: None,
        salt: 0,
        oids: &[b"\x2b\x06\x01\x06\x03\x0f\x01\x01\x04\x00".to_vec()],
    }
    .encode()
    .unwrap();
    core.on_datagram(sent, 0, addr(), &report);
    let (sent, id) = next_request(&mut core, sent);
    let keys = v3_user().master_keys().unwrap().localize(engine.engine_id);
    let table = MetricTable::linux();
    let oids: Vec<Vec<u8>> = table.metrics.iter().map(|m| m.oid.to_ber()).collect();
    // A Response whose varbinds are all Null still decodes; it just carries no numbers.
    let response = Request {
        msg_id: id,
        request_id: id,
        kind: PduType::Response,
        engine,
        user: b"core",
        keys: Some(&keys),
        salt: 9,
        oids: &oids,
    }
    .encode()
    .unwrap();
    let mut forged = response.clone();
    let last = forged.len() - 1;
    forged[last] ^= 0xff;
    core.on_datagram(sent, 0, addr(), &forged);
    assert_eq!(
        core.stats.drops(DropReason::BadAuth),
        1,
        "a forged reply changes nothing"
    );
    core.on_datagram(sent, 0, addr(), &response);
    let sample = core.drain_samples().next().unwrap();
    assert_eq!(sample.result, PollResult::Ok);
    assert!(sample.values.is_empty());
}

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

#[test]
fn one_hundred_thousand_mutated_replies_with_live_request_ids_never_panic() {
    let mut core = core();
    let mut now = Instant::now();
    for member in 0..8 {
        core.watch(now, member, addr(), monitor(v2c(), 1));
    }
    let mut rng = Rng(0x0123_4567_89ab_cdef);
    for _ in 0..100_000 {
        now += Duration::from_millis(20);
        core.on_timers(now);
        let mut out = Vec::new();
        send_queued(&mut core, &mut out);
        let live: Vec<i32> = core.requests.keys().copied().collect();
        let id = live
            .get(rng.next() as usize % live.len().max(1))
            .copied()
            .unwrap_or(0x0100_0000);
        let mut bytes = reply(id, [rng.next() as i64, 1, 2, 3, 4, 5]);
        for _ in 0..=(rng.next() % 3) {
            if bytes.is_empty() {
                break;
            }
            let at = rng.next() as usize % bytes.len();
            match rng.next() % 4 {
                0 => bytes[at] ^= 1 << (rng.next() % 8),
                1 => bytes.truncate(at),
                2 => bytes.insert(at, rng.next() as u8),
                _ => bytes[at] = [0x00, 0x80, 0x84, 0xff][rng.next() as usize % 4],
            }
        }
        core.on_datagram(now, 0, addr(), &bytes);
        core.drain_samples().for_each(drop);
    }
    let polls: u64 = crate::sample::ResultClass::ALL
        .iter()
        .map(|&c| core.stats.polls(c))
        .sum();
    assert!(
        polls > 1000,
        "mutated replies reached the core: {polls} polls ended"
    );
}
