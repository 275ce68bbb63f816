//! Secrets end to end: the SNMP community and v3 passphrases, the CloudStack secret key and the
//! admin password never come back from a GET (list or single) and never reach the log; a save
//! writes each as it was given (inline value or file reference), and a restart from the saved
//! file still authenticates to a real net-snmp `snmpd`. `ballast check` names a secret file or
//! variable that gives nothing.

use std::net::SocketAddr;
use std::time::Duration;

use ballast_tests::nitro::Nitro;
use ballast_tests::prom::{sample, scrape};
use ballast_tests::snmpd::{Snmpd, SnmpdUsers};
use ballast_tests::{BALLAST_SECTION, Backend, Ballast, Binary, Net, members_toml};
use http::StatusCode;
use serde_json::json;

/// The `ballast` binary cargo built for this test run.
const BALLAST: Binary = Binary::new(env!("CARGO_BIN_EXE_ballast"));

const PASSWORD: &str = "Admin-Pw-51c0e7-never-shown";
const COMMUNITY: &str = "Community-8e2a41-never-shown";
const AUTH: &str = "Auth-Pass-3f9d07-never-shown";
const PRIV: &str = "Priv-Pass-a61b58-never-shown";
const CLOUD_SECRET: &str = "Cloud-Secret-07d4c2-never-shown";
const SECRETS: [&str; 5] = [PASSWORD, COMMUNITY, AUTH, PRIV, CLOUD_SECRET];

/// Two LOAD monitors on the same member: `v2` with the community inline, `v3` with the auth
/// passphrase inline and the privacy passphrase from a file beside the config.
fn config(
    admin: SocketAddr,
    metrics: SocketAddr,
    vserver: SocketAddr,
    member: SocketAddr,
    snmp_port: u16,
) -> String {
    format!(
        r#"{BALLAST_SECTION}[admin]
listen = "{admin}"
passwordfile = "admin.pass"

[metrics]
listen = "{metrics}"

[[lbmonitor]]
monitorname = "v2"
type = "LOAD"
snmpcommunity = "{COMMUNITY}"
destport = {snmp_port}
interval = "200ms"
resptimeout = "150ms"
metrics = [{{ metric = "load" }}]

[[lbmonitor]]
monitorname = "v3"
type = "LOAD"
snmpversion = "V3"
snmpv3user = "ballast"
snmpauthprotocol = "SHA"
snmpauthpassword = "{AUTH}"
snmpprivprotocol = "AES"
snmpprivpasswordfile = "snmp-priv.secret"
destport = {snmp_port}
interval = "200ms"
resptimeout = "150ms"
metrics = [{{ metric = "load" }}]

[[servicegroup]]
servicegroupname = "by-community"
servicetype = "HTTP"
monitor = ["v2"]
{members}

[[servicegroup]]
servicegroupname = "by-user"
servicetype = "HTTP"
monitor = ["v3"]
{members}

[[lbvserver]]
name = "web"
servicetype = "HTTP"
ipv46 = "{}"
port = {}
servicegroupname = "by-community"
"#,
        vserver.ip(),
        vserver.port(),
        members = members_toml(&[member]),
    )
}

/// The files the config names, beside it.
fn files() -> Vec<(&'static str, Vec<u8>)> {
    vec![
        ("admin.pass", format!("{PASSWORD}\n").into_bytes()),
        ("snmp-priv.secret", format!("{PRIV}\n").into_bytes()),
    ]
}

async fn start(text: &str) -> Ballast {
    let files = files();
    let named: Vec<(&str, &[u8])> = files.iter().map(|(n, c)| (*n, c.as_slice())).collect();
    BALLAST.start_with_files(text, &named).await
}

/// Waits until both monitors have read the member's load average from snmpd, with no auth
/// error.
async fn both_monitors_authenticate(metrics: SocketAddr, member: SocketAddr) {
    let load = |group: &str| {
        format!(
            "ballast_member_metric{{servicegroup=\"{group}\",member=\"{member}\",metric=\"load\"}}"
        )
    };
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let (_, text) = scrape(metrics, None).await;
        if sample(&text, &load("by-community")).is_some()
            && sample(&text, &load("by-user")).is_some()
        {
            assert_eq!(
                sample(&text, "ballast_snmp_polls_total{result=\"auth_error\"}"),
                Some(0.0),
                "{text}"
            );
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "a monitor never read the load from snmpd:\n{text}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Every GET that could show a secret, list and single, as text.
async fn everything_shown(nitro: &Nitro) -> String {
    let mut shown = String::new();
    for path in [
        "config/lbmonitor",
        "config/lbmonitor/v2",
        "config/lbmonitor/v3",
        "config/lbmonitor/added",
        "config/autoscaleprofile",
        "config/autoscaleprofile/cloud",
        "config/servicegroup",
        "config/servicegroup_lbmonitor_binding",
        "config/lbmetrictable",
        "stat/servicegroup",
    ] {
        let reply = nitro.get(path).await;
        assert_eq!(reply.status, StatusCode::OK, "GET {path}: {:?}", reply.body);
        shown += &reply.body.to_string();
    }
    shown
}

fn assert_no_secret_in(text: &str, what: &str) {
    for secret in SECRETS {
        assert!(!text.contains(secret), "{what} shows {secret}:\n{text}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_never_come_back_and_a_saved_config_still_authenticates() {
    let net = Net::new();
    let backend = Backend::start(net.free_addr(1), "a").await;
    let snmpd = Snmpd::start(
        net.ip(1),
        &SnmpdUsers {
            community: COMMUNITY.to_owned(),
            user: "ballast".to_owned(),
            auth_password: AUTH.to_owned(),
            priv_password: PRIV.to_owned(),
        },
    );
    let admin = net.free_addr(250);
    let metrics = net.free_addr(251);
    let vserver = net.free_addr(252);
    let text = config(admin, metrics, vserver, backend.addr(), snmpd.addr.port());
    let mut ballast = start(&text).await;
    both_monitors_authenticate(metrics, backend.addr()).await;

    // Secrets added through the API are kept back the same way.
    let nitro = Nitro::new(admin, "nsroot", PASSWORD);
    let added = nitro
        .post(
            "config/lbmonitor",
            json!({"lbmonitor": {"monitorname": "added", "type": "LOAD", "snmpversion": "V3",
                   "snmpv3user": "ballast", "snmpauthprotocol": "SHA", "snmpauthpassword": AUTH,
                   "snmpprivprotocol": "AES", "snmpprivpassword": PRIV}}),
        )
        .await;
    assert_eq!(added.status, StatusCode::CREATED, "{:?}", added.body);
    let profile = json!({"autoscaleprofile": {"name": "cloud", "url": "http://127.0.0.1:8096/client/api",
        "apikey": "key", "sharedsecret": CLOUD_SECRET, "zoneid": "z", "templateid": "t",
        "serviceofferingid": "o", "memberport": 8000}});
    let added = nitro.post("config/autoscaleprofile", profile).await;
    assert_eq!(added.status, StatusCode::CREATED, "{:?}", added.body);

    let shown = everything_shown(&nitro).await;
    assert_no_secret_in(&shown, "a GET");
    // What is not secret is shown: the user, the protocols, the file reference.
    let v3 = nitro.get("config/lbmonitor/v3").await;
    let v3 = &v3.body["lbmonitor"][0];
    assert_eq!(v3["snmpv3user"], "ballast", "{v3}");
    assert_eq!(v3["snmpauthprotocol"], "SHA", "{v3}");
    assert_eq!(v3["snmpprivpasswordfile"], "snmp-priv.secret", "{v3}");
    assert!(v3.get("snmpauthpassword").is_none(), "{v3}");

    // A save writes each secret as it was given.
    let saved = nitro
        .post("config/nsconfig?action=save", json!({"nsconfig": {}}))
        .await;
    assert_eq!(saved.status, StatusCode::OK, "{:?}", saved.body);
    let saved = std::fs::read_to_string(ballast.config_path()).expect("the saved config");
    for written in [
        format!("snmpcommunity = \"{COMMUNITY}\""),
        format!("snmpauthpassword = \"{AUTH}\""),
        "snmpprivpasswordfile = \"snmp-priv.secret\"".to_owned(),
        format!("snmpprivpassword = \"{PRIV}\""),
        format!("sharedsecret = \"{CLOUD_SECRET}\""),
    ] {
        assert!(
            saved.contains(&written),
            "the save lost {written}:\n{saved}"
        );
    }
    assert_no_secret_in(&ballast.log_text(), "the log");
    assert!(ballast.terminate().await.success());

    // Restarted from the saved file, both monitors still authenticate.
    let restarted = start(&saved).await;
    both_monitors_authenticate(metrics, backend.addr()).await;
    assert_no_secret_in(&everything_shown(&nitro).await, "a GET after the restart");
    assert_no_secret_in(&restarted.log_text(), "the log after the restart");
}

#[test]
fn check_names_the_secret_file_or_variable_that_gives_nothing() {
    let config = |admin: &str, monitor: &str| {
        format!(
            "{BALLAST_SECTION}[admin]\nlisten = \"127.0.0.1:9080\"\n{admin}\n\n\
             [[lbmonitor]]\nmonitorname = \"load\"\ntype = \"LOAD\"\n{monitor}\n\n\
             [[servicegroup]]\nservicegroupname = \"pool\"\nservicetype = \"HTTP\"\n\n\
             [[lbvserver]]\nname = \"web\"\nservicetype = \"HTTP\"\nipv46 = \"127.0.0.1\"\n\
             port = 8080\nservicegroupname = \"pool\"\n"
        )
    };
    let v3 = |priv_form: &str| {
        format!(
            "snmpversion = \"V3\"\nsnmpv3user = \"u\"\nsnmpauthprotocol = \"SHA\"\n\
             snmpauthpassword = \"{AUTH}\"\nsnmpprivprotocol = \"AES\"\n{priv_form}"
        )
    };
    // PATH is set wherever tests run, so it stands for a variable that is there.
    let present = "passwordenv = \"PATH\"";
    let cases = [
        (
            config("passwordfile = \"absent.pass\"", ""),
            "admin.passwordfile: cannot read ",
        ),
        (
            config("passwordenv = \"BALLAST_TEST_NEVER_SET_51C0\"", ""),
            "admin.passwordenv: environment variable BALLAST_TEST_NEVER_SET_51C0 is not set",
        ),
        (
            config(
                present,
                "snmpcommunityenv = \"BALLAST_TEST_NEVER_SET_51C0\"",
            ),
            ".snmpcommunityenv: environment variable BALLAST_TEST_NEVER_SET_51C0 is not set",
        ),
        (
            config(present, &v3("snmpprivpasswordfile = \"absent.secret\"")),
            ".snmpprivpasswordfile: cannot read ",
        ),
        (
            config(
                present,
                &v3("snmpprivpasswordenv = \"BALLAST_TEST_NEVER_SET_51C0\""),
            ),
            ".snmpprivpasswordenv: environment variable BALLAST_TEST_NEVER_SET_51C0 is not set",
        ),
    ];
    for (text, says) in cases {
        let (code, stdout, stderr) = BALLAST.check(&text);
        assert_eq!(code, 1, "{text}\nstdout:\n{stdout}");
        assert!(
            stderr.contains(says),
            "{text}\nstderr does not say {says:?}:\n{stderr}"
        );
        assert_no_secret_in(&stderr, "check");
    }
    let (code, stdout, stderr) = BALLAST.check(&config(
        present,
        &v3(&format!("snmpprivpassword = \"{PRIV}\"")),
    ));
    assert_eq!(code, 0, "stdout:\n{stdout}\nstderr:\n{stderr}");
}
