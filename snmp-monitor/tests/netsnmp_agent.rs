//! The poller against Debian's real net-snmp `snmpd`: v2c and v3 authPriv (SHA/AES-128,
//! SHA-256/AES-256, SHA/AES-256 with both key extensions), value changes, BUSY, and the error
//! classes of a wrong community, wrong passphrases and an unknown user.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{AUTH_PASS, AgentUser, PRIV_PASS, Snmpd, is_ok, wait_for};
use snmp_monitor::table::linux;
use snmp_monitor::{
    AuthFailure, AuthProtocol, LoadMonitor, LoadMonitorSpec, MetricBinding, MetricTable,
    PollResult, Poller, PollerConfig, PrivProtocol, ResultClass, Security, UsmUser,
};
use tokio::sync::mpsc;

fn monitor(security: Security) -> Arc<LoadMonitor> {
    let mut spec = LoadMonitorSpec::new("load-test", security, MetricTable::linux());
    spec.interval = Duration::from_millis(500);
    spec.resptimeout = Duration::from_millis(400);
    spec.retries = 1;
    spec.bindings = vec![
        MetricBinding::new(linux::CPU, Some(50.0), 1.0),
        MetricBinding::new(linux::MEMORY, Some(100.0), 1.0),
    ];
    LoadMonitor::new(spec).expect("valid spec")
}

fn v2c(community: &str) -> Security {
    Security::V2c {
        community: community.into(),
    }
}

fn v3(name: &str, auth: AuthProtocol, privacy: PrivProtocol) -> Security {
    Security::V3(UsmUser::auth_priv(
        name, auth, AUTH_PASS, privacy, PRIV_PASS,
    ))
}

const WAIT: Duration = Duration::from_secs(10);

#[tokio::test]
async fn v2c_poll_reads_ucd_values_sees_changes_and_marks_busy() {
    let snmpd = Snmpd::start("127.0.0.21", &[]);
    let (tx, mut rx) = mpsc::channel(64);
    let poller = Poller::spawn(PollerConfig::default(), tx).unwrap();
    poller.watch("web-1", snmpd.addr, monitor(v2c("public")));

    let first = wait_for(&mut rx, &"web-1", WAIT, is_ok).await;
    assert_eq!(first.value(linux::CPU_USER), Some(10.0));
    assert_eq!(first.value(linux::CPU_SYSTEM), Some(5.0));
    assert_eq!(first.value(linux::CPU), Some(15.0));
    let memory = first.value(linux::MEMORY).expect("memory %");
    assert!(memory > 0.0 && memory < 100.0, "memory {memory}");
    assert!(
        first.value(linux::LOAD).is_some(),
        "laLoad parsed from its string"
    );
    assert!(first.value(linux::MEM_TOTAL_KB).unwrap() > 0.0);
    assert!(!first.busy);
    let load = first.load.expect("load");
    assert!((load - (15.0 / 50.0 + memory / 100.0)).abs() < 1e-9);
    assert!(first.latency.is_some());

    snmpd.set_cpu(70, 10);
    let busy = wait_for(&mut rx, &"web-1", WAIT, |s| {
        s.value(linux::CPU) == Some(80.0)
    })
    .await;
    assert!(busy.busy, "cpu 80 over threshold 50 is BUSY");
    snmpd.set_cpu(20, 5);
    let calm = wait_for(&mut rx, &"web-1", WAIT, |s| {
        s.value(linux::CPU) == Some(25.0)
    })
    .await;
    assert!(!calm.busy, "back under the threshold");
    assert!(poller.stats().polls(ResultClass::Ok) >= 3);
}

#[tokio::test]
async fn v3_auth_priv_polls_with_sha_and_sha256_and_aes128_and_aes256() {
    let users = [
        AgentUser {
            name: "u_sha_aes",
            auth: "SHA",
            privacy: "AES",
        },
        AgentUser {
            name: "u_sha256_aes256",
            auth: "SHA-256",
            privacy: "AES-256",
        },
        AgentUser {
            name: "u_sha_aes256",
            auth: "SHA",
            privacy: "AES-256",
        },
        AgentUser {
            name: "u_sha_aes256c",
            auth: "SHA",
            privacy: "AES-256-C",
        },
        AgentUser {
            name: "u_sha512_aes192",
            auth: "SHA-512",
            privacy: "AES-192",
        },
    ];
    let snmpd = Snmpd::start("127.0.0.22", &users);
    let (tx, mut rx) = mpsc::channel(64);
    let poller = Poller::spawn(PollerConfig::default(), tx).unwrap();
    let members = [
        ("u_sha_aes", AuthProtocol::Sha1, PrivProtocol::Aes128),
        (
            "u_sha256_aes256",
            AuthProtocol::Sha256,
            PrivProtocol::Aes256,
        ),
        ("u_sha_aes256", AuthProtocol::Sha1, PrivProtocol::Aes256),
        (
            "u_sha_aes256c",
            AuthProtocol::Sha1,
            PrivProtocol::Aes256Reeder,
        ),
        (
            "u_sha512_aes192",
            AuthProtocol::Sha512,
            PrivProtocol::Aes192,
        ),
    ];
    for (name, auth, privacy) in members {
        poller.watch(name, snmpd.addr, monitor(v3(name, auth, privacy)));
    }
    for (name, ..) in members {
        let sample = wait_for(&mut rx, &name, WAIT, |s| {
            s.result != PollResult::Timeout || s.consecutive_failures > 2
        })
        .await;
        assert_eq!(sample.result, PollResult::Ok, "{name}: {sample:#?}");
        assert_eq!(sample.value(linux::CPU_USER), Some(10.0), "{name}");
    }
    snmpd.set_cpu(60, 30);
    for (name, ..) in members {
        let sample = wait_for(&mut rx, &name, WAIT, |s| {
            !is_ok(s) || s.value(linux::CPU) == Some(90.0)
        })
        .await;
        assert_eq!(sample.result, PollResult::Ok, "{name}");
        assert!(sample.busy, "{name}");
    }
}

#[tokio::test]
async fn wrong_credentials_give_their_error_classes() {
    let users = [AgentUser {
        name: "v3user",
        auth: "SHA",
        privacy: "AES",
    }];
    let snmpd = Snmpd::start("127.0.0.23", &users);
    let (tx, mut rx) = mpsc::channel(64);
    let poller = Poller::spawn(PollerConfig::default(), tx).unwrap();
    let wrong = |user: &str, auth_pass: &str, priv_pass: &str| {
        monitor(Security::V3(UsmUser::auth_priv(
            user,
            AuthProtocol::Sha1,
            auth_pass,
            PrivProtocol::Aes128,
            priv_pass,
        )))
    };
    poller.watch("community", snmpd.addr, monitor(v2c("not-public")));
    poller.watch(
        "auth-pass",
        snmpd.addr,
        wrong("v3user", "wrongpass123", PRIV_PASS),
    );
    poller.watch(
        "unknown-user",
        snmpd.addr,
        wrong("nobody", AUTH_PASS, PRIV_PASS),
    );
    poller.watch(
        "priv-pass",
        snmpd.addr,
        wrong("v3user", AUTH_PASS, "wrongpriv123"),
    );
    poller.watch("right", snmpd.addr, wrong("v3user", AUTH_PASS, PRIV_PASS));
    // AES-256 with a SHA-1 key needs stretching; the Reeder way is not what net-snmp's
    // `AES-256` does, so the agent cannot decrypt and stays silent.
    let users_aes256 = [AgentUser {
        name: "u256",
        auth: "SHA",
        privacy: "AES-256",
    }];
    let snmpd_aes256 = Snmpd::start("127.0.0.24", &users_aes256);
    poller.watch(
        "key-extension",
        snmpd_aes256.addr,
        monitor(v3("u256", AuthProtocol::Sha1, PrivProtocol::Aes256Reeder)),
    );

    // The agent answers these (a slow machine may still time one poll out: skip those).
    let answered = |s: &snmp_monitor::Sample<&str>| s.result != PollResult::Timeout;
    let silent = |_: &_| true;
    for member in ["community", "priv-pass", "key-extension"] {
        let first = wait_for(&mut rx, &member, WAIT, silent).await;
        assert_eq!(first.result, PollResult::Timeout, "{member}");
    }
    let auth_pass = wait_for(&mut rx, &"auth-pass", WAIT, answered).await;
    assert_eq!(
        auth_pass.result,
        PollResult::AuthError(AuthFailure::WrongDigest)
    );
    let unknown = wait_for(&mut rx, &"unknown-user", WAIT, answered).await;
    assert_eq!(
        unknown.result,
        PollResult::AuthError(AuthFailure::UnknownUserName)
    );
    assert_eq!(
        wait_for(&mut rx, &"right", WAIT, answered).await.result,
        PollResult::Ok
    );
    // A silent agent never answers, so every poll of those members is a timeout.
    for member in ["community", "priv-pass", "key-extension"] {
        let again = wait_for(&mut rx, &member, WAIT, silent).await;
        assert_eq!(again.result, PollResult::Timeout, "{member}");
        assert!(again.consecutive_failures >= 2, "{member}");
    }

    let stats = poller.stats().snapshot();
    let count = |class| stats.polls.iter().find(|(c, _)| *c == class).unwrap().1;
    assert!(count(ResultClass::Timeout) >= 3, "{stats:#?}");
    assert!(count(ResultClass::AuthError) >= 2, "{stats:#?}");
    assert!(count(ResultClass::Ok) >= 1, "{stats:#?}");
    assert!(
        stats.retransmits >= 2,
        "each silent poll retried once: {stats:#?}"
    );
}
