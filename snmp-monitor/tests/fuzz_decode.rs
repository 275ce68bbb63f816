//! Fuzz-style: 100,000 random and mutated datagrams into every decoder and into the agent;
//! none may panic. Seeds are real messages (v2c request and response, v3 discovery, v3
//! authPriv request), mutated by bit flips, special bytes, inserts, deletes, truncation,
//! splices and length bombs.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::time::Duration;

use snmp_monitor::Oid;
use snmp_monitor::agent::{self, AgentValues};
use snmp_monitor::pdu::{CommunityMessage, PduType, Version, peek_version};
use snmp_monitor::usm::message::{EngineParams, Request, V3Message};
use snmp_monitor::usm::{AuthProtocol, LocalKeys, PrivProtocol, UsmUser};
use snmp_monitor::value::Value;

const ITERATIONS: usize = 100_000;

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

fn keys() -> LocalKeys {
    UsmUser::auth_priv(
        "fuzz",
        AuthProtocol::Sha1,
        "authpass123",
        PrivProtocol::Aes128,
        "privpass123",
    )
    .master_keys()
    .unwrap()
    .localize(b"\x80\x00\x1f\x88\x80fuzzengine")
}

fn seeds(keys: &LocalKeys) -> Vec<Vec<u8>> {
    let oids: Vec<Vec<u8>> = [
        "1.3.6.1.4.1.2021.11.11.0",
        "1.3.6.1.4.1.2021.4.5.0",
        "1.3.6.1.4.1.2021.10.1.3.1",
    ]
    .iter()
    .map(|text| text.parse::<Oid>().unwrap().to_ber())
    .collect();
    let get = CommunityMessage::encode(
        Version::V2c,
        b"public",
        PduType::Get,
        0x1234_5678,
        0,
        0,
        oids.iter().map(|o| (o.as_slice(), Value::Null)),
    );
    let values = || AgentValues {
        load: Some(1.5),
        mem_total_kb: 1 << 20,
        mem_avail_kb: 1 << 19,
        ..AgentValues::default()
    };
    let response = agent::respond(&get, b"public", &values, Duration::from_secs(5)).unwrap();
    let counters = CommunityMessage::encode(
        Version::V1,
        b"public",
        PduType::Response,
        7,
        0,
        0,
        [
            (oids[0].as_slice(), Value::Counter64(u64::MAX)),
            (oids[1].as_slice(), Value::IpAddress([127, 0, 0, 1])),
            (oids[2].as_slice(), Value::NoSuchInstance),
        ],
    );
    let engine = EngineParams {
        engine_id: b"\x80\x00\x1f\x88\x80fuzzengine",
        boots: 5,
        time: 1234,
    };
    let discovery = Request {
        msg_id: 1,
        request_id: 1,
        kind: PduType::Get,
        engine: EngineParams::default(),
        user: b"",
        keys: None,
        salt: 0,
        oids: &[],
    }
    .encode()
    .unwrap();
    let auth_priv = Request {
        msg_id: 99,
        request_id: 99,
        kind: PduType::Response,
        engine,
        user: b"fuzz",
        keys: Some(keys),
        salt: 42,
        oids: &oids,
    }
    .encode()
    .unwrap();
    vec![get, response, counters, discovery, auth_priv]
}

fn mutate(rng: &mut Rng, seeds: &[Vec<u8>]) -> Vec<u8> {
    if rng.below(10) == 0 {
        let len = rng.below(300);
        return (0..len).map(|_| rng.next() as u8).collect();
    }
    let mut data = seeds[rng.below(seeds.len())].clone();
    for _ in 0..=rng.below(4) {
        let at = rng.below(data.len() + 1);
        match rng.below(8) {
            0 if at < data.len() => data[at] ^= 1 << rng.below(8),
            1 if at < data.len() => {
                data[at] = [0x00, 0x7f, 0x80, 0x81, 0x82, 0x84, 0xff, 0x30][rng.below(8)]
            }
            2 => data.insert(at, rng.next() as u8),
            3 if at < data.len() => {
                data.remove(at);
            }
            4 => data.truncate(at),
            5 => {
                let other = &seeds[rng.below(seeds.len())];
                let from = rng.below(other.len());
                data.splice(at..at, other[from..].iter().copied().take(rng.below(40)));
            }
            6 if at < data.len() => {
                data.splice(at..=at, [0x84, 0xff, 0xff, 0xff, 0xf0]);
            }
            _ if at < data.len() => data[at] = rng.next() as u8,
            _ => {}
        }
    }
    data
}

/// Runs every decoder on one input, going as deep as the input allows.
fn exercise(input: &[u8], keys: &LocalKeys) {
    let _ = peek_version(input);
    if let Ok(msg) = CommunityMessage::decode(input) {
        for vb in msg.pdu.varbinds.clone().flatten() {
            let _ = Oid::from_ber(vb.oid);
            let _ = vb.value.is_exception();
        }
    }
    if let Ok(msg) = V3Message::decode(input) {
        let _ = msg.authenticate(input, keys);
        for k in [keys, &LocalKeys::default()] {
            let mut scratch = Vec::new();
            if let Ok(scoped) = msg.plaintext(k, &mut scratch) {
                let _ = scoped.pdu.varbinds.clone().count();
            }
        }
    }
    let values = AgentValues::default;
    let _ = agent::respond(input, b"public", &values, Duration::from_secs(1));
}

#[test]
fn one_hundred_thousand_random_and_mutated_datagrams_never_panic() {
    let keys = keys();
    let seeds = seeds(&keys);
    for seed in &seeds {
        exercise(seed, &keys); // the seeds themselves decode
    }
    let mut rng = Rng(0x5eed_1234_abcd_ef01);
    let mut panics = Vec::new();
    for i in 0..ITERATIONS {
        let input = mutate(&mut rng, &seeds);
        if catch_unwind(AssertUnwindSafe(|| exercise(&input, &keys))).is_err() {
            panics.push((i, input));
        }
    }
    assert!(
        panics.is_empty(),
        "{} inputs panicked, first: {:02x?}",
        panics.len(),
        panics.first()
    );
}

#[test]
fn deeply_nested_and_huge_lengths_are_refused_without_recursion() {
    let mut nested = vec![0x05, 0x00];
    for _ in 0..6000 {
        let len = (nested.len() as u32).to_be_bytes();
        nested.splice(0..0, [0x30, 0x84, len[0], len[1], len[2], len[3]]);
    }
    assert!(CommunityMessage::decode(&nested).is_err());
    assert!(V3Message::decode(&nested).is_err());
    let bomb = [0x30, 0x84, 0xff, 0xff, 0xff, 0xff, 0x02, 0x01, 0x01];
    assert!(CommunityMessage::decode(&bomb).is_err());
    assert!(agent::respond(&bomb, b"public", &AgentValues::default, Duration::ZERO).is_none());
}
