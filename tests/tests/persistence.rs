//! Persistence (`persistencetype`) through `ballast run` with real members: `COOKIEINSERT`
//! pins a client to one member with a signed cookie that cannot be forged or altered,
//! `SOURCEIP` keeps a client address on one member for `timeout` after its last use (HTTP and
//! TCP), a DOWN member's clients move, a member disabled with a `delay` keeps its persistent
//! clients for that long and then none, and the admin API lists and clears the entries.

use std::collections::BTreeSet;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use ballast_tests::nitro::Nitro;
use ballast_tests::prom::{
    OPENMETRICS_ACCEPT, assert_openmetrics_parses, assert_promtool_accepts, sample, scrape,
};
use ballast_tests::{
    BALLAST_SECTION, Backend, Ballast, Binary, EchoBackend, H1, Net, member_state_changed,
    members_toml,
};
use bytes::Bytes;
use http::Request;
use http_body_util::Full;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The `ballast` binary cargo built for this test run.
const BALLAST: Binary = Binary::new(env!("CARGO_BIN_EXE_ballast"));

const PASSWORD: &str = "Pw-persist-0c1d-do-not-log";

const COOKIE_KEY: &str = "persist-test-key-0123456789";

/// One Ballast: the admin API, `/metrics`, and vserver `web` (`servicetype`, ROUNDROBIN) over
/// servicegroup `pool` with `members`; `persistence` is more `[[lbvserver]]` keys.
struct Setup {
    ballast: Ballast,
    nitro: Nitro,
    vserver: SocketAddr,
    metrics: SocketAddr,
}

impl Setup {
    /// Waits for each member's monitor to mark it UP.
    async fn wait_until_up(&self, members: &[SocketAddr]) {
        for addr in members {
            assert!(
                self.ballast
                    .wait_for_log(member_state_changed(*addr, "UP"), Duration::from_secs(5))
                    .await
                    .is_some(),
                "{addr} never came UP"
            );
        }
    }
}

async fn start(net: &Net, servicetype: &str, members: &[SocketAddr], persistence: &str) -> Setup {
    let admin = net.free_addr(250);
    let metrics = net.free_addr(249);
    let vserver = net.free_addr(251);
    let (group_type, monitor) = if servicetype == "TCP" {
        ("TCP", "")
    } else {
        ("HTTP", "monitor = [\"health\"]")
    };
    let config = format!(
        r#"{BALLAST_SECTION}[admin]
listen = "{admin}"
passwordfile = "admin.pass"

[metrics]
listen = "{metrics}"

[[lbmonitor]]
monitorname = "health"
type = "HTTP"
httprequest = "GET /healthz"
interval = "200ms"
resptimeout = "100ms"
retries = 2

[[servicegroup]]
servicegroupname = "pool"
servicetype = "{group_type}"
{monitor}
{members}

[[lbvserver]]
name = "web"
servicetype = "{servicetype}"
ipv46 = "{ip}"
port = {port}
lbmethod = "ROUNDROBIN"
servicegroupname = "pool"
{persistence}
"#,
        members = members_toml(members),
        ip = vserver.ip(),
        port = vserver.port(),
    );
    let ballast = BALLAST
        .start_with_files(
            &config,
            &[("admin.pass", format!("{PASSWORD}\n").as_bytes())],
        )
        .await;
    Setup {
        ballast,
        nitro: Nitro::new(admin, "nsroot", PASSWORD),
        vserver,
        metrics,
    }
}

/// Three HTTP members `a`, `b`, `c` on their own addresses.
async fn three_members(net: &Net) -> Vec<Backend> {
    let mut members = Vec::new();
    for (host, name) in [(1, "a"), (2, "b"), (3, "c")] {
        members.push(Backend::start(net.free_addr(host), name).await);
    }
    members
}

/// What one request on a new connection got: the member that answered and any `Set-Cookie`.
struct Answer {
    backend: String,
    set_cookie: Option<String>,
}

/// GET `/` on a new connection (from `source` when given), with `cookie` as the `Cookie`
/// header when given.
async fn request(vserver: SocketAddr, source: Option<IpAddr>, cookie: Option<&str>) -> Answer {
    let mut client = match source {
        Some(source) => H1::connect_from(source, vserver).await,
        None => H1::connect(vserver).await,
    }
    .expect("connect to the vserver");
    let mut builder = Request::get("/").header("host", vserver.to_string());
    if let Some(cookie) = cookie {
        builder = builder.header("cookie", cookie);
    }
    let reply = client
        .send(builder.body(Full::new(Bytes::new())).unwrap())
        .await
        .expect("a response");
    assert_eq!(reply.status, 200, "{}", reply.text());
    Answer {
        backend: reply.backend().expect("x-backend").to_owned(),
        set_cookie: reply
            .headers
            .get("set-cookie")
            .map(|v| v.to_str().unwrap().to_owned()),
    }
}

/// `NSC_web=<value>` from a `Set-Cookie` header, checked for its attributes.
fn cookie_pair(set_cookie: &str, max_age: Option<u64>) -> String {
    let mut parts = set_cookie.split("; ");
    let pair = parts.next().unwrap().to_owned();
    let attributes: Vec<&str> = parts.collect();
    assert!(pair.starts_with("NSC_web="), "{set_cookie}");
    assert!(attributes.contains(&"Path=/"), "{set_cookie}");
    assert!(attributes.contains(&"HttpOnly"), "{set_cookie}");
    match max_age {
        Some(age) => assert!(
            attributes.contains(&format!("Max-Age={age}").as_str()),
            "{set_cookie}"
        ),
        None => assert!(
            !attributes.iter().any(|a| a.starts_with("Max-Age")),
            "a session cookie has no Max-Age: {set_cookie}"
        ),
    }
    pair
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cookie_keeps_a_client_on_one_member_for_100_requests() {
    let net = Net::new();
    let members = three_members(&net).await;
    let addrs: Vec<SocketAddr> = members.iter().map(Backend::addr).collect();
    let setup = start(
        &net,
        "HTTP",
        &addrs,
        &format!("persistencetype = \"COOKIEINSERT\"\ntimeout = 2\ncookiekey = \"{COOKIE_KEY}\""),
    )
    .await;

    // Without a cookie, round robin spreads requests over all three, each with a new cookie.
    let mut seen = BTreeSet::new();
    for _ in 0..6 {
        let answer = request(setup.vserver, None, None).await;
        assert!(answer.set_cookie.is_some(), "no cookie for a new client");
        seen.insert(answer.backend);
    }
    assert_eq!(
        seen.len(),
        3,
        "round robin did not use every member: {seen:?}"
    );

    let first = request(setup.vserver, None, None).await;
    let set_cookie = first.set_cookie.expect("a Set-Cookie for a new client");
    let pair = cookie_pair(&set_cookie, Some(120));
    // The value is opaque: no address or port of any member shows in it.
    let value = pair.trim_start_matches("NSC_web=");
    assert_eq!(value.len(), 64, "{value}");
    for addr in &addrs {
        assert!(!set_cookie.contains(&addr.ip().to_string()), "{set_cookie}");
        assert!(!value.contains(&format!("{:04x}", addr.port())), "{value}");
    }

    for i in 0..100 {
        let answer = request(setup.vserver, None, Some(&pair)).await;
        assert_eq!(
            answer.backend, first.backend,
            "request {i} with the cookie went to another member"
        );
        assert_eq!(answer.set_cookie, None, "a valid cookie was replaced");
    }
    let (_, text) = scrape(setup.metrics, None).await;
    let hits = sample(&text, "ballast_persistence_hits_total{vserver=\"web\"}");
    assert_eq!(hits, Some(100.0), "{text}");
    // COOKIEINSERT keeps no entries: no sessions gauge for it. Both formats stay valid.
    assert!(!text.contains("ballast_persistence_sessions{"), "{text}");
    assert_promtool_accepts(&text);
    let (_, open) = scrape(setup.metrics, Some(OPENMETRICS_ACCEPT)).await;
    assert_openmetrics_parses(&open);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forged_or_altered_cookie_is_ignored_and_replaced() {
    let net = Net::new();
    let members = three_members(&net).await;
    let addrs: Vec<SocketAddr> = members.iter().map(Backend::addr).collect();
    let setup = start(
        &net,
        "HTTP",
        &addrs,
        &format!(
            "persistencetype = \"COOKIEINSERT\"\ntimeout = \"0s\"\ncookiekey = \"{COOKIE_KEY}\""
        ),
    )
    .await;

    // A valid cookie for each member (timeout 0: session cookies, no Max-Age).
    let mut cookies = std::collections::BTreeMap::new();
    for _ in 0..3 {
        let answer = request(setup.vserver, None, None).await;
        let pair = cookie_pair(&answer.set_cookie.unwrap(), None);
        cookies.insert(
            answer.backend,
            pair.trim_start_matches("NSC_web=").to_owned(),
        );
    }
    assert_eq!(cookies.len(), 3, "{cookies:?}");
    let wanted = "c";
    let (a, c) = (&cookies["a"], &cookies["c"]);

    // Forgeries aiming at member c: c's member id with a's expiry and MAC; c's cookie with one
    // digit changed; a cookie of the right length made up; c's cookie for another vserver's
    // name (the MAC covers the vserver).
    let spliced = format!("{}{}", &c[..16], &a[16..]);
    let mut altered = c.clone().into_bytes();
    altered[40] = if altered[40] == b'0' { b'1' } else { b'0' };
    let altered = String::from_utf8(altered).unwrap();
    let made_up = "0".repeat(64);
    for forged in [
        spliced,
        altered,
        made_up,
        format!("{c}00"),
        "garbage".to_owned(),
    ] {
        let mut landed = BTreeSet::new();
        for _ in 0..6 {
            let answer = request(setup.vserver, None, Some(&format!("NSC_web={forged}"))).await;
            let new = answer
                .set_cookie
                .unwrap_or_else(|| panic!("no new cookie after the forged `{forged}`"));
            let new = cookie_pair(&new, None);
            assert_ne!(new, format!("NSC_web={forged}"));
            // The new cookie is valid: it pins its client to the member that answered.
            let again = request(setup.vserver, None, Some(&new)).await;
            assert_eq!(again.backend, answer.backend);
            assert_eq!(again.set_cookie, None);
            landed.insert(answer.backend);
        }
        assert!(
            landed.len() > 1,
            "the forged cookie `{forged}` pinned its client to {landed:?} (wanted: {wanted})"
        );
    }
    // A cookie of another name is not Ballast's, and the right one wins among others.
    let mixed = format!("other=1; NSC_web={c}; more=2");
    let answer = request(setup.vserver, None, Some(&mixed)).await;
    assert_eq!((answer.backend.as_str(), answer.set_cookie), (wanted, None));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_cookie_is_ignored() {
    let net = Net::new();
    let members = three_members(&net).await;
    let addrs: Vec<SocketAddr> = members.iter().map(Backend::addr).collect();
    let setup = start(
        &net,
        "HTTP",
        &addrs,
        "persistencetype = \"COOKIEINSERT\"\ntimeout = \"1s\"",
    )
    .await;
    let first = request(setup.vserver, None, None).await;
    let pair = cookie_pair(&first.set_cookie.unwrap(), Some(1));
    let pinned = request(setup.vserver, None, Some(&pair)).await;
    assert_eq!(pinned.backend, first.backend);
    // The cookie carries its end (whole seconds): after it, it counts for nothing, and round
    // robin sends the client to the next member with a cookie for that one. (Fresh cookies the
    // responses bring are left unused here, as a client that went away would.)
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    let moved = loop {
        let answer = request(setup.vserver, None, Some(&pair)).await;
        if answer.backend != first.backend {
            break answer;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "an ended cookie is still honoured after 5 s"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let renewed = cookie_pair(
        &moved.set_cookie.expect("a cookie for the new member"),
        Some(1),
    );
    let again = request(setup.vserver, None, Some(&renewed)).await;
    assert_eq!(again.backend, moved.backend);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sourceip_sticks_within_its_timeout_and_the_entries_can_be_listed_and_cleared() {
    let net = Net::new();
    let members = three_members(&net).await;
    let addrs: Vec<SocketAddr> = members.iter().map(Backend::addr).collect();
    let setup = start(
        &net,
        "HTTP",
        &addrs,
        "persistencetype = \"SOURCEIP\"\ntimeout = \"2s\"",
    )
    .await;
    let client = net.ip(100);

    let first = request(setup.vserver, Some(client), None).await;
    assert_eq!(first.set_cookie, None, "SOURCEIP sets no cookie");
    for i in 0..20 {
        let answer = request(setup.vserver, Some(client), None).await;
        assert_eq!(answer.backend, first.backend, "request {i} moved");
    }
    // Another client gets the next member in the round robin, and its own entry.
    let other = request(setup.vserver, Some(net.ip(101)), None).await;
    assert_ne!(other.backend, first.backend);

    let listed = setup
        .nitro
        .get("config/persistentsessions?args=vserver:web")
        .await;
    assert_eq!(listed.status, 200, "{:?}", listed.body);
    let sessions = listed.body["persistentsessions"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(sessions.len(), 2, "{sessions:?}");
    let mine = sessions
        .iter()
        .find(|s| s["srcip"] == client.to_string())
        .expect("the client's entry");
    let member = members.iter().find(|m| m.name() == first.backend).unwrap();
    assert_eq!(mine["vserver"], "web");
    assert_eq!(mine["type"], "SOURCEIP");
    assert_eq!(mine["destip"], member.addr().ip().to_string());
    assert_eq!(mine["destport"], member.addr().port());
    assert_eq!(mine["servicegroupname"], "pool");
    assert!(mine["timeout"].as_u64().unwrap() <= 2, "{mine}");
    let (_, text) = scrape(setup.metrics, None).await;
    assert_eq!(
        sample(&text, "ballast_persistence_sessions{vserver=\"web\"}"),
        Some(2.0),
        "{text}"
    );
    assert_promtool_accepts(&text);
    let missing = setup
        .nitro
        .get("config/persistentsessions?args=vserver:nope")
        .await;
    assert_eq!(missing.status, 404, "{:?}", missing.body);

    // Idle past its timeout, the entry is gone, and round robin picks the next member (no
    // other pick happened since the other client's).
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let listed = setup.nitro.get("config/persistentsessions").await;
        if listed.body["persistentsessions"] == json!([]) {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the entries did not expire: {:?}",
            listed.body
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let after = request(setup.vserver, Some(client), None).await;
    assert_ne!(
        after.backend, first.backend,
        "after its timeout the client still went to its old member"
    );
    let again = request(setup.vserver, Some(client), None).await;
    assert_eq!(again.backend, after.backend, "the new entry does not hold");

    // Clearing drops the entries at once: the next request is balanced again.
    let cleared = setup
        .nitro
        .post(
            "config/persistentsessions?action=clear",
            json!({"persistentsessions": {"vserver": "web"}}),
        )
        .await;
    assert_eq!(cleared.status, 200, "{:?}", cleared.body);
    let listed = setup.nitro.get("config/persistentsessions").await;
    assert_eq!(
        listed.body["persistentsessions"],
        json!([]),
        "{:?}",
        listed.body
    );
    let moved = request(setup.vserver, Some(client), None).await;
    assert_ne!(moved.backend, after.backend, "the cleared entry still held");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sourceip_holds_tcp_connections_and_masks_the_source() {
    let net = Net::new();
    let echoes = [
        EchoBackend::start(net.free_addr(1)).await,
        EchoBackend::start(net.free_addr(2)).await,
        EchoBackend::start(net.free_addr(3)).await,
    ];
    let addrs: Vec<SocketAddr> = echoes.iter().map(EchoBackend::addr).collect();
    // /24 mask: every source of the test's 127.A.B.0/24 is one client.
    let setup = start(
        &net,
        "TCP",
        &addrs,
        "persistencetype = \"SOURCEIP\"\ntimeout = 1\npersistmask = \"255.255.255.0\"",
    )
    .await;
    for (i, host) in (100..112).enumerate() {
        let mut stream = ballast_tests::client::connect_tcp(setup.vserver, Some(net.ip(host)))
            .await
            .expect("connect");
        stream.write_all(b"ping").await.unwrap();
        let mut echoed = [0u8; 4];
        stream.read_exact(&mut echoed).await.expect("echo");
        assert_eq!(&echoed, b"ping");
        drop(stream);
        let counts: Vec<u64> = echoes.iter().map(EchoBackend::connections).collect();
        assert_eq!(
            counts.iter().filter(|c| **c > 0).count(),
            1,
            "connection {i} (from .{host}) reached another member: {counts:?}"
        );
    }
    let listed = setup.nitro.get("config/persistentsessions").await;
    let sessions = listed.body["persistentsessions"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(sessions.len(), 1, "{sessions:?}");
    let masked = match net.ip(100) {
        IpAddr::V4(v4) => {
            let [a, b, c, _] = v4.octets();
            format!("{a}.{b}.{c}.0")
        }
        IpAddr::V6(_) => unreachable!(),
    };
    assert_eq!(sessions[0]["srcip"], masked);
    drop(setup.ballast);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_clients_of_a_down_member_move_and_stay_moved() {
    let net = Net::new();
    let mut members = three_members(&net).await;
    let addrs: Vec<SocketAddr> = members.iter().map(Backend::addr).collect();
    let setup = start(
        &net,
        "HTTP",
        &addrs,
        &format!("persistencetype = \"COOKIEINSERT\"\ncookiekey = \"{COOKIE_KEY}\""),
    )
    .await;
    setup.wait_until_up(&addrs).await;
    let first = request(setup.vserver, None, None).await;
    let pair = cookie_pair(&first.set_cookie.unwrap(), Some(120));
    let victim = members
        .iter_mut()
        .find(|m| m.name() == first.backend)
        .unwrap();
    let victim_addr = victim.addr();
    let mark = setup.ballast.log_mark();
    victim.kill().await;
    assert!(
        setup
            .ballast
            .wait_for_log_since(
                mark,
                member_state_changed(victim_addr, "DOWN"),
                Duration::from_secs(5)
            )
            .await
            .is_some(),
        "the killed member was not marked DOWN"
    );

    let moved = request(setup.vserver, None, Some(&pair)).await;
    assert_ne!(moved.backend, first.backend);
    let new_pair = cookie_pair(
        &moved.set_cookie.expect("a new cookie for the new member"),
        Some(120),
    );
    assert_ne!(new_pair, pair);
    for _ in 0..10 {
        let answer = request(setup.vserver, None, Some(&new_pair)).await;
        assert_eq!(
            (answer.backend.as_str(), answer.set_cookie),
            (moved.backend.as_str(), None)
        );
    }

    // Back UP, the old member does not take the moved client back; the old cookie is good
    // again (it was never invalid, only its member was DOWN).
    let victim = members
        .iter_mut()
        .find(|m| m.addr() == victim_addr)
        .unwrap();
    let mark = setup.ballast.log_mark();
    victim.restart().await;
    assert!(
        setup
            .ballast
            .wait_for_log_since(
                mark,
                member_state_changed(victim_addr, "UP"),
                Duration::from_secs(5)
            )
            .await
            .is_some(),
        "the restarted member did not come back UP"
    );
    let stayed = request(setup.vserver, None, Some(&new_pair)).await;
    assert_eq!(stayed.backend, moved.backend);
    let old = request(setup.vserver, None, Some(&pair)).await;
    assert_eq!((old.backend, old.set_cookie), (first.backend, None));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_disabled_with_a_delay_keeps_its_persistent_clients_until_the_delay_ends() {
    let net = Net::new();
    let members = three_members(&net).await;
    let addrs: Vec<SocketAddr> = members.iter().map(Backend::addr).collect();
    let setup = start(
        &net,
        "HTTP",
        &addrs,
        &format!("persistencetype = \"COOKIEINSERT\"\ncookiekey = \"{COOKIE_KEY}\""),
    )
    .await;
    setup.wait_until_up(&addrs).await;
    let first = request(setup.vserver, None, None).await;
    let pair = cookie_pair(&first.set_cookie.unwrap(), Some(120));
    let victim = members.iter().find(|m| m.name() == first.backend).unwrap();

    let delay = Duration::from_secs(3);
    let mark = setup.ballast.log_mark();
    let disabled_at = tokio::time::Instant::now();
    let reply = setup
        .nitro
        .post(
            "config/servicegroup?action=disable",
            json!({"servicegroup": {
                "servicegroupname": "pool",
                "ip": victim.addr().ip().to_string(),
                "port": victim.addr().port(),
                "graceful": "YES",
                "delay": delay.as_secs(),
            }}),
        )
        .await;
    assert_eq!(reply.status, 200, "{:?}", reply.body);
    assert!(
        setup
            .ballast
            .wait_for_log_since(
                mark,
                member_state_changed(victim.addr(), "GOING OUT OF SERVICE"),
                Duration::from_secs(1)
            )
            .await
            .is_some(),
        "the member did not go GOING OUT OF SERVICE"
    );

    // Within the delay: the persistent client still reaches it, new clients never do.
    for _ in 0..10 {
        let sticky = request(setup.vserver, None, Some(&pair)).await;
        let fresh = request(setup.vserver, None, None).await;
        if disabled_at.elapsed() < delay - Duration::from_millis(500) {
            assert_eq!(
                (sticky.backend.as_str(), sticky.set_cookie),
                (victim.name(), None)
            );
        }
        assert_ne!(
            fresh.backend,
            victim.name(),
            "a new client reached a draining member"
        );
    }
    assert!(
        disabled_at.elapsed() < delay,
        "the requests took the whole delay; the test proves nothing"
    );

    // After the delay: none, not even the persistent client, which gets a new member and cookie.
    let mut moved = None;
    while moved.is_none() && disabled_at.elapsed() < delay + Duration::from_secs(5) {
        let answer = request(setup.vserver, None, Some(&pair)).await;
        if answer.backend != victim.name() {
            moved = Some((answer, disabled_at.elapsed()));
        } else {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    let (moved, at) =
        moved.expect("the persistent client still reached the member after its delay");
    assert!(
        setup
            .ballast
            .wait_for_log_since(
                mark,
                member_state_changed(victim.addr(), "OUT OF SERVICE"),
                Duration::from_secs(2)
            )
            .await
            .is_some(),
        "no `member state changed` to OUT OF SERVICE when the delay ended"
    );
    assert!(
        at >= delay,
        "moved after {at:?}, before the {delay:?} delay ended"
    );
    assert!(
        moved.set_cookie.is_some(),
        "no new cookie for the new member"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_admin_api_shows_and_sets_persistence_but_never_the_cookie_key() {
    let net = Net::new();
    let members = three_members(&net).await;
    let addrs: Vec<SocketAddr> = members.iter().map(Backend::addr).collect();
    let setup = start(
        &net,
        "HTTP",
        &addrs,
        &format!(
            "persistencetype = \"COOKIEINSERT\"\ncookiename = \"SRV\"\ncookiekey = \"{COOKIE_KEY}\""
        ),
    )
    .await;
    let shown = setup.nitro.get("config/lbvserver/web").await;
    let vserver = &shown.body["lbvserver"][0];
    assert_eq!(vserver["persistencetype"], "COOKIEINSERT", "{vserver}");
    assert_eq!(vserver["cookiename"], "SRV", "{vserver}");
    assert!(vserver.get("cookiekey").is_none(), "{vserver}");
    assert!(!shown.body.to_string().contains(COOKIE_KEY));
    let answer = request(setup.vserver, None, None).await;
    assert!(answer.set_cookie.unwrap().starts_with("SRV="));

    // A bad value is refused by its path, and changes nothing.
    let refused = setup
        .nitro
        .put(
            "config/lbvserver",
            json!({"lbvserver": {"name": "web", "persistmask": "255.0.255.0"}}),
        )
        .await;
    assert_eq!(refused.status, 400, "{:?}", refused.body);
    assert!(
        refused.message().contains("lbvserver `web`.persistmask"),
        "{:?}",
        refused.body
    );

    // Switching to SOURCEIP with a timeout in minutes, live: no more cookies, entries instead.
    let changed = setup
        .nitro
        .put(
            "config/lbvserver",
            json!({"lbvserver": {"name": "web", "persistencetype": "SOURCEIP", "timeout": 5}}),
        )
        .await;
    assert_eq!(changed.status, 200, "{:?}", changed.body);
    let client = net.ip(120);
    let first = request(setup.vserver, Some(client), None).await;
    assert_eq!(first.set_cookie, None);
    let listed = setup
        .nitro
        .get("config/persistentsessions?args=vserver:web")
        .await;
    let sessions = listed.body["persistentsessions"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(sessions.len(), 1, "{sessions:?}");
    let left = sessions[0]["timeout"].as_u64().unwrap();
    assert!((295..=300).contains(&left), "{left}");
    // The cookie key is kept (not shown) through the edit.
    let shown = setup.nitro.get("config/lbvserver/web").await;
    assert!(shown.body["lbvserver"][0].get("cookiekey").is_none());
    assert_eq!(shown.body["lbvserver"][0]["timeout"], 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_active_client_gets_its_cookie_renewed_and_keeps_its_member() {
    let net = Net::new();
    let members = three_members(&net).await;
    let addrs: Vec<SocketAddr> = members.iter().map(Backend::addr).collect();
    let setup = start(
        &net,
        "HTTP",
        &addrs,
        &format!(
            "persistencetype = \"COOKIEINSERT\"\ntimeout = \"2s\"\ncookiekey = \"{COOKIE_KEY}\""
        ),
    )
    .await;
    let first = request(setup.vserver, None, None).await;
    let mut pair = cookie_pair(&first.set_cookie.unwrap(), Some(2));
    let started = tokio::time::Instant::now();
    let mut renewals = 0;
    // Twice the cookie's lifetime, one request every 200 ms: each carries the latest cookie.
    while started.elapsed() < Duration::from_secs(4) {
        let answer = request(setup.vserver, None, Some(&pair)).await;
        assert_eq!(
            answer.backend,
            first.backend,
            "an active client lost its member after {:?}",
            started.elapsed()
        );
        if let Some(renewed) = answer.set_cookie {
            let renewed = cookie_pair(&renewed, Some(2));
            assert_ne!(renewed, pair);
            pair = renewed;
            renewals += 1;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(
        renewals >= 2,
        "the cookie was renewed {renewals} times in 4 s"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disabling_without_a_delay_or_unbinding_moves_persistent_clients_at_once() {
    let net = Net::new();
    let members = three_members(&net).await;
    let addrs: Vec<SocketAddr> = members.iter().map(Backend::addr).collect();
    let setup = start(
        &net,
        "HTTP",
        &addrs,
        &format!("persistencetype = \"COOKIEINSERT\"\ncookiekey = \"{COOKIE_KEY}\""),
    )
    .await;
    setup.wait_until_up(&addrs).await;
    let member_of = |name: &str| members.iter().find(|m| m.name() == name).unwrap().addr();

    // Disabled without a delay: its persistent client moves with the very next request.
    let first = request(setup.vserver, None, None).await;
    let pair = cookie_pair(&first.set_cookie.unwrap(), Some(120));
    let disabled = member_of(&first.backend);
    let reply = setup
        .nitro
        .post(
            "config/servicegroup?action=disable",
            json!({"servicegroup": {
                "servicegroupname": "pool",
                "ip": disabled.ip().to_string(),
                "port": disabled.port(),
            }}),
        )
        .await;
    assert_eq!(reply.status, 200, "{:?}", reply.body);
    let moved = request(setup.vserver, None, Some(&pair)).await;
    assert_ne!(moved.backend, first.backend);
    let pair = cookie_pair(
        &moved.set_cookie.expect("a cookie for the new member"),
        Some(120),
    );

    // Unbound: likewise.
    let unbound = member_of(&moved.backend);
    let reply = setup
        .nitro
        .delete(&format!(
            "config/servicegroup_servicegroupmember_binding/pool?args=ip:{},port:{}",
            unbound.ip(),
            unbound.port()
        ))
        .await;
    assert_eq!(reply.status, 200, "{:?}", reply.body);
    let last = request(setup.vserver, None, Some(&pair)).await;
    assert!(
        last.backend != first.backend && last.backend != moved.backend,
        "went to {} (disabled: {}, unbound: {})",
        last.backend,
        first.backend,
        moved.backend
    );
    assert!(
        last.set_cookie.is_some(),
        "no cookie for the remaining member"
    );
}
