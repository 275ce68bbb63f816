//! A servicegroup's `maxclient` with its surge queue, and `backupvserver` with spillover, end
//! to end through `ballast run`: real backends, real clients, the admin API and `/metrics`.

use std::net::SocketAddr;
use std::time::Duration;

use ballast_tests::nitro::Nitro;
use ballast_tests::prom::{sample, scrape};
use ballast_tests::{
    BALLAST_SECTION, Backend, Ballast, Binary, H1, Net, get, member_state_changed, members_toml,
    wait_until,
};
use http::StatusCode;
use serde_json::{Value, json};
use tokio::task::JoinSet;
use tokio::time::Instant;

const BALLAST: Binary = Binary::new(env!("CARGO_BIN_EXE_ballast"));
const PASSWORD: &str = "surge-test-password";

/// Ballast with the admin API and `/metrics`; `body` is the rest of the config.
struct Rig {
    ballast: Ballast,
    nitro: Nitro,
    metrics: SocketAddr,
}

impl Rig {
    async fn start(net: &Net, body: &str) -> Rig {
        let admin = net.free_addr(1);
        let metrics = net.free_addr(1);
        let text = format!(
            r#"{BALLAST_SECTION}[admin]
listen = "{admin}"
passwordfile = "admin.pass"

[metrics]
listen = "{metrics}"

{body}"#
        );
        let password = format!("{PASSWORD}\n");
        let ballast = BALLAST
            .start_with_files(&text, &[("admin.pass", password.as_bytes())])
            .await;
        Rig {
            ballast,
            nitro: Nitro::new(admin, "nsroot", PASSWORD),
            metrics,
        }
    }

    async fn group_stat(&self, group: &str) -> Value {
        let reply = self
            .nitro
            .get(&format!("stat/servicegroup/{group}?statbindings=yes"))
            .await;
        assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.body);
        reply.body["servicegroup"][0].clone()
    }

    async fn vserver_stat(&self, vserver: &str) -> Value {
        let reply = self.nitro.get(&format!("stat/lbvserver/{vserver}")).await;
        assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.body);
        reply.body["lbvserver"][0].clone()
    }

    async fn metric(&self, series: &str) -> Option<f64> {
        let (_, text) = scrape(self.metrics, None).await;
        sample(&text, series)
    }
}

/// Waits for a log line, at `mark` or later, that says `member` went `state`.
async fn wait_for_state(ballast: &Ballast, mark: usize, member: SocketAddr, state: &str) {
    ballast
        .wait_for_log_since(
            mark,
            member_state_changed(member, state),
            Duration::from_secs(5),
        )
        .await
        .unwrap_or_else(|| panic!("{member} never went {state}\n{}", ballast.log_text()));
}

/// `[[servicegroup]] pool` with `members` and the surge keys in `surge`, behind vserver `web`.
fn surge_config(web: SocketAddr, members: &[SocketAddr], surge: &str) -> String {
    format!(
        r#"[[servicegroup]]
servicegroupname = "pool"
servicetype = "HTTP"
{surge}
{members}

[[lbvserver]]
name = "web"
servicetype = "HTTP"
ipv46 = "{ip}"
port = {port}
servicegroupname = "pool"
"#,
        members = members_toml(members),
        ip = web.ip(),
        port = web.port(),
    )
}

/// Sends `n` GETs of `path` at once, each on its own connection; the replies (status, body) in
/// the order they finished, with how long each took.
fn burst(web: SocketAddr, path: &str, n: usize) -> JoinSet<(StatusCode, String, Duration)> {
    let mut set = JoinSet::new();
    for _ in 0..n {
        let path = path.to_owned();
        set.spawn(async move {
            let started = Instant::now();
            let reply = get(web, &path).await.expect("a response");
            (reply.status, reply.text(), started.elapsed())
        });
    }
    set
}

#[tokio::test]
async fn maxclient_holds_requests_in_the_surge_queue_and_serves_them_all() {
    let net = Net::new();
    let backend = Backend::start(net.free_addr(2), "b1").await;
    let web = net.free_addr(1);
    let surge = "maxclient = 2\nmaxsurgequeue = 100\nsurgequeuetimeout = \"20s\"";
    let rig = Rig::start(&net, &surge_config(web, &[backend.addr()], surge)).await;

    let started = Instant::now();
    let mut requests = burst(web, "/slow?ms=300", 10);
    // While they run, stat shows the queue: at most 2 at the member, the rest waiting.
    let mut deepest = 0;
    let mut vserver_deepest = 0;
    while started.elapsed() < Duration::from_secs(3) && backend.requests() < 10 {
        let stat = rig.group_stat("pool").await;
        deepest = deepest.max(stat["surgecount"].as_u64().expect("surgecount"));
        assert_eq!(stat["maxclient"], 2, "{stat}");
        let vserver = rig.vserver_stat("web").await;
        vserver_deepest = vserver_deepest.max(vserver["vsvrsurgecount"].as_u64().unwrap());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mut ok = 0;
    while let Some(done) = requests.join_next().await {
        let (status, body, _) = done.unwrap();
        assert_eq!(status, StatusCode::OK, "{body}");
        ok += 1;
    }
    let elapsed = started.elapsed();
    assert_eq!(ok, 10);
    assert_eq!(
        backend.max_in_flight(),
        2,
        "maxclient = 2: never more than 2 requests at the member at once"
    );
    // Ten 300 ms requests, two at a time: five rounds.
    assert!(elapsed >= Duration::from_millis(1450), "{elapsed:?}");
    eprintln!(
        "maxclient = 2: 10 requests of 300 ms served in {elapsed:?}; deepest surgecount seen {deepest}"
    );
    assert!(
        deepest > 0,
        "stat showed surgecount > 0 while requests waited"
    );
    assert!(
        vserver_deepest > 0,
        "stat lbvserver showed vsvrsurgecount > 0"
    );
    let stat = rig.group_stat("pool").await;
    assert_eq!(stat["surgecount"], 0, "{stat}");
    assert_eq!(stat["surgerejectedfull"], 0, "{stat}");
    assert_eq!(stat["surgerejectedtimeout"], 0, "{stat}");
    assert_eq!(
        rig.metric("ballast_surge_queue_depth{servicegroup=\"pool\"}")
            .await,
        Some(0.0)
    );

    // A reload that raises maxclient takes effect: three at once now.
    let raised = rig
        .nitro
        .put(
            "config/servicegroup",
            json!({"servicegroup": {"servicegroupname": "pool", "maxclient": 3}}),
        )
        .await;
    assert_eq!(raised.status, StatusCode::OK, "{:?}", raised.body);
    let mut requests = burst(web, "/slow?ms=600", 3);
    assert!(
        wait_until(Duration::from_secs(3), || backend.in_flight() == 3).await,
        "maxclient = 3 lets three requests reach the member at once"
    );
    while let Some(done) = requests.join_next().await {
        assert_eq!(done.unwrap().0, StatusCode::OK);
    }
    let shown = rig.nitro.get("config/servicegroup/pool").await;
    assert_eq!(
        shown.body["servicegroup"][0]["maxclient"], 3,
        "{:?}",
        shown.body
    );
    assert_eq!(shown.body["servicegroup"][0]["maxsurgequeue"], 100);
    assert_eq!(shown.body["servicegroup"][0]["surgequeuetimeout"], "20s");

    // Saved, the file says what runs, and still passes `ballast check`.
    let saved = rig
        .nitro
        .post("config/nsconfig?action=save", json!({"nsconfig": {}}))
        .await;
    assert_eq!(saved.status, StatusCode::OK, "{:?}", saved.body);
    let text = std::fs::read_to_string(rig.ballast.config_path()).unwrap();
    assert!(text.contains("maxclient = 3\n"), "{text}");
    assert!(text.contains("surgequeuetimeout = \"20s\""), "{text}");
    let (code, stdout, stderr) = BALLAST.check_file(rig.ballast.config_path());
    assert_eq!(code, 0, "{stdout}{stderr}");
}

#[tokio::test]
async fn a_full_or_timed_out_surge_queue_answers_503_without_blaming_the_member() {
    let net = Net::new();
    let backend = Backend::start(net.free_addr(2), "b1").await;
    let web = net.free_addr(1);
    let surge = "maxclient = 1\nmaxsurgequeue = 1\nsurgequeuetimeout = \"20s\"";
    let rig = Rig::start(&net, &surge_config(web, &[backend.addr()], surge)).await;

    // One at the member, one waiting: the third finds the queue full and is refused at once.
    let mut holding = burst(web, "/slow?ms=1500", 1);
    assert!(wait_until(Duration::from_secs(3), || backend.in_flight() == 1).await);
    let mut waiting = burst(web, "/slow?ms=10", 1);
    let mut queued = false;
    for _ in 0..100 {
        if rig.group_stat("pool").await["surgecount"] == 1 {
            queued = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(queued, "the second request waits in the surge queue");
    let started = Instant::now();
    let refused = get(web, "/slow?ms=10").await.unwrap();
    assert_eq!(refused.status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(
        refused.text().contains("too many requests are waiting"),
        "{}",
        refused.text()
    );
    eprintln!("a full surge queue refused in {:?}", started.elapsed());
    assert!(
        started.elapsed() < Duration::from_millis(500),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(
        holding.join_next().await.unwrap().unwrap().0,
        StatusCode::OK
    );
    assert_eq!(
        waiting.join_next().await.unwrap().unwrap().0,
        StatusCode::OK
    );

    // A short surgequeuetimeout, set through the API: the waiting request gives up.
    let shorter = rig
        .nitro
        .put(
            "config/servicegroup",
            json!({"servicegroup": {"servicegroupname": "pool", "maxsurgequeue": 5, "surgequeuetimeout": "300ms"}}),
        )
        .await;
    assert_eq!(shorter.status, StatusCode::OK, "{:?}", shorter.body);
    let mut holding = burst(web, "/slow?ms=1500", 1);
    assert!(wait_until(Duration::from_secs(3), || backend.in_flight() == 1).await);
    let (status, body, took) = burst(web, "/slow?ms=10", 1)
        .join_next()
        .await
        .unwrap()
        .unwrap();
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert!(body.contains("stayed busy"), "{body}");
    eprintln!("surgequeuetimeout = 300ms: refused after {took:?}");
    assert!(
        took >= Duration::from_millis(290) && took < Duration::from_millis(1400),
        "{took:?}"
    );
    assert_eq!(
        holding.join_next().await.unwrap().unwrap().0,
        StatusCode::OK
    );

    // Ballast refused them; the member did nothing wrong.
    let stat = rig.group_stat("pool").await;
    assert_eq!(stat["surgerejectedfull"], 1, "{stat}");
    assert_eq!(stat["surgerejectedtimeout"], 1, "{stat}");
    let member = &stat["servicegroupmember"][0];
    assert_eq!(member["state"], "UP", "{member}");
    assert_eq!(member["connectfailures"], 0, "{member}");
    let label = backend.addr().to_string();
    let (_, text) = scrape(rig.metrics, None).await;
    let member_errors =
        format!("ballast_member_errors_total{{servicegroup=\"pool\",member=\"{label}\"}}");
    assert_eq!(sample(&text, &member_errors), Some(0.0), "{text}");
    for (reason, kind) in [
        ("full", "surge_queue_full"),
        ("timeout", "surge_queue_timeout"),
    ] {
        let rejected = format!(
            "ballast_surge_queue_rejected_total{{servicegroup=\"pool\",reason=\"{reason}\"}}"
        );
        assert_eq!(sample(&text, &rejected), Some(1.0), "{rejected}");
        let errors = format!(
            "ballast_vserver_errors_total{{vserver=\"web\",side=\"ballast\",kind=\"{kind}\"}}"
        );
        assert_eq!(sample(&text, &errors), Some(1.0), "{errors}");
    }
    for kind in ["connect", "no_response", "timeout", "unavailable"] {
        let errors = format!(
            "ballast_vserver_errors_total{{vserver=\"web\",side=\"member\",kind=\"{kind}\"}}"
        );
        assert_eq!(sample(&text, &errors), Some(0.0), "{errors}");
    }
}

/// `web` (members `primary`, monitored) backed up by `standby` (member `backup`).
fn backup_config(
    web: SocketAddr,
    standby: SocketAddr,
    primary: SocketAddr,
    backup: SocketAddr,
    web_extra: &str,
) -> String {
    format!(
        r#"[[lbmonitor]]
monitorname = "tcp"
type = "TCP"
interval = "200ms"
resptimeout = "150ms"
retries = 2

[[servicegroup]]
servicegroupname = "primary"
servicetype = "HTTP"
monitor = ["tcp"]
{primary_members}

[[servicegroup]]
servicegroupname = "standby"
servicetype = "HTTP"
{backup_members}

[[lbvserver]]
name = "web"
servicetype = "HTTP"
ipv46 = "{web_ip}"
port = {web_port}
servicegroupname = "primary"
backupvserver = "standby"
{web_extra}

[[lbvserver]]
name = "standby"
servicetype = "HTTP"
ipv46 = "{standby_ip}"
port = {standby_port}
servicegroupname = "standby"
"#,
        primary_members = members_toml(&[primary]),
        backup_members = members_toml(&[backup]),
        web_ip = web.ip(),
        web_port = web.port(),
        standby_ip = standby.ip(),
        standby_port = standby.port(),
    )
}

#[tokio::test]
async fn the_backup_vserver_serves_while_the_primary_has_no_member_up() {
    let net = Net::new();
    let mut primary = Backend::start(net.free_addr(2), "primary").await;
    let backup = Backend::start(net.free_addr(3), "backup").await;
    let (web, standby) = (net.free_addr(1), net.free_addr(1));
    let config = backup_config(web, standby, primary.addr(), backup.addr(), "");
    let rig = Rig::start(&net, &config).await;
    wait_for_state(&rig.ballast, 0, primary.addr(), "UP").await;

    assert_eq!(get(web, "/").await.unwrap().text(), "primary");
    let mark = rig.ballast.log_mark();
    primary.stop().await;
    wait_for_state(&rig.ballast, mark, primary.addr(), "DOWN").await;
    for _ in 0..3 {
        let reply = get(web, "/").await.unwrap();
        assert_eq!(reply.status, StatusCode::OK);
        assert_eq!(reply.text(), "backup");
    }
    let stat = rig.vserver_stat("web").await;
    assert_eq!(stat["backuphits"], 3, "{stat}");
    assert_eq!(stat["totspillovers"], 0, "{stat}");
    assert_eq!(
        rig.metric("ballast_vserver_backup_requests_total{vserver=\"web\",reason=\"down\"}")
            .await,
        Some(3.0)
    );

    let mark = rig.ballast.log_mark();
    primary.restart().await;
    wait_for_state(&rig.ballast, mark, primary.addr(), "UP").await;
    assert_eq!(get(web, "/").await.unwrap().text(), "primary");
    assert_eq!(rig.vserver_stat("web").await["backuphits"], 3);

    // The admin API shows and changes backupvserver; it refuses a vserver as its own backup
    // and keeps a backup in use from being deleted.
    let shown = rig.nitro.get("config/lbvserver/web").await;
    assert_eq!(shown.body["lbvserver"][0]["backupvserver"], "standby");
    let own = rig
        .nitro
        .put(
            "config/lbvserver",
            json!({"lbvserver": {"name": "web", "backupvserver": "web"}}),
        )
        .await;
    assert_eq!(own.status, StatusCode::BAD_REQUEST, "{:?}", own.body);
    assert!(own.message().contains("backupvserver"), "{}", own.message());
    let cycle = rig
        .nitro
        .put(
            "config/lbvserver",
            json!({"lbvserver": {"name": "standby", "backupvserver": "web"}}),
        )
        .await;
    assert_eq!(cycle.status, StatusCode::BAD_REQUEST, "{:?}", cycle.body);
    assert!(cycle.message().contains("cycle"), "{}", cycle.message());
    let delete = rig.nitro.delete("config/lbvserver/standby").await;
    assert_eq!(delete.status, StatusCode::CONFLICT, "{:?}", delete.body);
    let unset = rig
        .nitro
        .put(
            "config/lbvserver",
            json!({"lbvserver": {"name": "web", "backupvserver": null}}),
        )
        .await;
    assert_eq!(unset.status, StatusCode::OK, "{:?}", unset.body);
    let mark = rig.ballast.log_mark();
    primary.stop().await;
    wait_for_state(&rig.ballast, mark, primary.addr(), "DOWN").await;
    assert_eq!(
        get(web, "/").await.unwrap().status,
        StatusCode::SERVICE_UNAVAILABLE,
        "without a backup, no member UP is a 503"
    );
}

#[tokio::test]
async fn spillover_sends_connections_past_sothreshold_to_the_backup() {
    let net = Net::new();
    let primary = Backend::start(net.free_addr(2), "primary").await;
    let backup = Backend::start(net.free_addr(3), "backup").await;
    let (web, standby) = (net.free_addr(1), net.free_addr(1));
    let extra = "somethod = \"CONNECTION\"\nsothreshold = 1";
    let config = backup_config(web, standby, primary.addr(), backup.addr(), extra);
    let rig = Rig::start(&net, &config).await;
    wait_for_state(&rig.ballast, 0, primary.addr(), "UP").await;

    let mut first = H1::connect(web).await.unwrap();
    assert_eq!(first.get("/").await.unwrap().text(), "primary");
    // A second client connection is past the threshold of 1: it spills over.
    let mut second = H1::connect(web).await.unwrap();
    assert_eq!(second.get("/").await.unwrap().text(), "backup");
    let stat = rig.vserver_stat("web").await;
    assert_eq!(stat["totspillovers"], 1, "{stat}");
    assert_eq!(stat["backuphits"], 0, "{stat}");
    drop(second);
    let mut back = false;
    for _ in 0..50 {
        if rig.vserver_stat("web").await["curclntconnections"] == 1 {
            back = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(back, "the second connection closed");
    assert_eq!(first.get("/").await.unwrap().text(), "primary");
    let shown = rig.nitro.get("config/lbvserver/web").await;
    assert_eq!(shown.body["lbvserver"][0]["somethod"], "CONNECTION");
    assert_eq!(shown.body["lbvserver"][0]["sothreshold"], 1);
}

#[test]
fn check_names_backup_cycles_bad_types_and_spillover_without_a_backup() {
    let net = Net::new();
    let (a, b, t) = (net.free_addr(1), net.free_addr(1), net.free_addr(1));
    let text = format!(
        r#"{BALLAST_SECTION}[[servicegroup]]
servicegroupname = "pool"
servicetype = "HTTP"
maxclient = -1
surgequeuetimeout = "0s"

[[lbvserver]]
name = "a"
servicetype = "HTTP"
ipv46 = "{a_ip}"
port = {a_port}
backupvserver = "b"

[[lbvserver]]
name = "b"
servicetype = "HTTP"
ipv46 = "{b_ip}"
port = {b_port}
backupvserver = "a"
somethod = "CONNECTION"

[[lbvserver]]
name = "t"
servicetype = "TCP"
ipv46 = "{t_ip}"
port = {t_port}
backupvserver = "a"
"#,
        a_ip = a.ip(),
        a_port = a.port(),
        b_ip = b.ip(),
        b_port = b.port(),
        t_ip = t.ip(),
        t_port = t.port(),
    );
    let (code, stdout, stderr) = BALLAST.check(&text);
    let out = format!("{stdout}{stderr}");
    assert_eq!(code, 1, "{out}");
    for expected in [
        "servicegroup[0].maxclient: expected 0..=10000000, got -1",
        "servicegroup[0].surgequeuetimeout: must be longer than zero",
        "lbvserver[0].backupvserver: backup vservers form a cycle: a -> b -> a",
        "lbvserver[1].backupvserver: backup vservers form a cycle: b -> a -> b",
        "lbvserver[1].sothreshold: somethod = \"CONNECTION\" needs a sothreshold",
        "lbvserver[2].backupvserver: a TCP vserver needs a TCP or SSL_TCP backupvserver, `a` is HTTP",
    ] {
        assert!(out.contains(expected), "{expected}\n{out}");
    }
}

#[tokio::test]
async fn a_tcp_connection_waits_for_a_member_under_maxclient() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let net = Net::new();
    let echo = ballast_tests::EchoBackend::start(net.free_addr(2)).await;
    let tcp = net.free_addr(1);
    let body = format!(
        r#"[[servicegroup]]
servicegroupname = "echo"
servicetype = "TCP"
maxclient = 1
surgequeuetimeout = "20s"
{members}

[[lbvserver]]
name = "tcp"
servicetype = "TCP"
ipv46 = "{ip}"
port = {port}
servicegroupname = "echo"
"#,
        members = members_toml(&[echo.addr()]),
        ip = tcp.ip(),
        port = tcp.port(),
    );
    let rig = Rig::start(&net, &body).await;
    async fn echoed(stream: &mut tokio::net::TcpStream, text: &[u8]) -> Vec<u8> {
        stream.write_all(text).await.unwrap();
        let mut back = vec![0; text.len()];
        stream.read_exact(&mut back).await.unwrap();
        back
    }

    let mut first = tokio::net::TcpStream::connect(tcp).await.unwrap();
    assert_eq!(echoed(&mut first, b"one").await, b"one");
    // The member holds its one connection: the second client waits in the surge queue.
    let mut second = tokio::net::TcpStream::connect(tcp).await.unwrap();
    second.write_all(b"two").await.unwrap();
    let mut queued = false;
    for _ in 0..100 {
        if rig.group_stat("echo").await["surgecount"] == 1 {
            queued = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(queued, "the second connection waits in the surge queue");
    assert_eq!(
        echo.connections(),
        1,
        "the member has only the first connection"
    );
    let mut back = [0; 3];
    let early = tokio::time::timeout(Duration::from_millis(200), second.read_exact(&mut back));
    assert!(
        early.await.is_err(),
        "nothing relayed while the member is at maxclient"
    );

    drop(first);
    tokio::time::timeout(Duration::from_secs(5), second.read_exact(&mut back))
        .await
        .expect("relayed once the first connection closed")
        .unwrap();
    assert_eq!(&back, b"two");
    assert_eq!(rig.group_stat("echo").await["surgecount"], 0);
}

#[tokio::test]
async fn a_tcp_vserver_falls_back_to_its_backup_and_returns() {
    use ballast_tests::EchoBackend;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let net = Net::new();
    let primary = EchoBackend::start(net.free_addr(2)).await;
    let primary_addr = primary.addr();
    let backup = EchoBackend::start(net.free_addr(3)).await;
    let (tcp, standby) = (net.free_addr(1), net.free_addr(1));
    let body = format!(
        r#"[[lbmonitor]]
monitorname = "tcp"
type = "TCP"
interval = "200ms"
resptimeout = "150ms"
retries = 2

[[servicegroup]]
servicegroupname = "primary"
servicetype = "TCP"
monitor = ["tcp"]
{primary_members}

[[servicegroup]]
servicegroupname = "standby"
servicetype = "TCP"
{backup_members}

[[lbvserver]]
name = "tcp"
servicetype = "TCP"
ipv46 = "{ip}"
port = {port}
servicegroupname = "primary"
backupvserver = "standby"

[[lbvserver]]
name = "standby"
servicetype = "TCP"
ipv46 = "{standby_ip}"
port = {standby_port}
servicegroupname = "standby"
"#,
        primary_members = members_toml(&[primary_addr]),
        backup_members = members_toml(&[backup.addr()]),
        ip = tcp.ip(),
        port = tcp.port(),
        standby_ip = standby.ip(),
        standby_port = standby.port(),
    );
    let rig = Rig::start(&net, &body).await;
    wait_for_state(&rig.ballast, 0, primary_addr, "UP").await;
    async fn echo_once(addr: SocketAddr) {
        let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        stream.write_all(b"ping").await.unwrap();
        let mut back = [0; 4];
        tokio::time::timeout(Duration::from_secs(5), stream.read_exact(&mut back))
            .await
            .expect("echoed")
            .unwrap();
        assert_eq!(&back, b"ping");
    }

    echo_once(tcp).await;
    assert_eq!(backup.connections(), 0, "the primary's member relayed it");

    let mark = rig.ballast.log_mark();
    drop(primary);
    wait_for_state(&rig.ballast, mark, primary_addr, "DOWN").await;
    echo_once(tcp).await;
    assert_eq!(backup.connections(), 1, "the backup's member relayed it");
    assert_eq!(rig.vserver_stat("tcp").await["backuphits"], 1);

    let mark = rig.ballast.log_mark();
    let primary = EchoBackend::start(primary_addr).await;
    wait_for_state(&rig.ballast, mark, primary_addr, "UP").await;
    echo_once(tcp).await;
    assert_eq!(backup.connections(), 1, "back on the primary");
    drop(primary);
}

#[tokio::test]
async fn disableprimaryondown_keeps_traffic_on_the_backup_until_the_vserver_is_enabled() {
    let net = Net::new();
    let mut primary = Backend::start(net.free_addr(2), "primary").await;
    let backup = Backend::start(net.free_addr(3), "backup").await;
    let (web, standby) = (net.free_addr(1), net.free_addr(1));
    let extra = "disableprimaryondown = \"ENABLED\"";
    let config = backup_config(web, standby, primary.addr(), backup.addr(), extra);
    let rig = Rig::start(&net, &config).await;
    wait_for_state(&rig.ballast, 0, primary.addr(), "UP").await;
    assert_eq!(get(web, "/").await.unwrap().text(), "primary");
    assert_eq!(rig.vserver_stat("web").await["disabledondown"], false);

    let mark = rig.ballast.log_mark();
    primary.stop().await;
    wait_for_state(&rig.ballast, mark, primary.addr(), "DOWN").await;
    assert_eq!(get(web, "/").await.unwrap().text(), "backup");
    assert_eq!(rig.vserver_stat("web").await["disabledondown"], true);

    // Its member is UP again, but the vserver stays out of service.
    let mark = rig.ballast.log_mark();
    primary.restart().await;
    wait_for_state(&rig.ballast, mark, primary.addr(), "UP").await;
    for _ in 0..3 {
        assert_eq!(get(web, "/").await.unwrap().text(), "backup");
    }
    assert_eq!(
        rig.metric("ballast_vserver_disabled_on_down{vserver=\"web\"}")
            .await,
        Some(1.0)
    );

    let enabled = rig
        .nitro
        .post(
            "config/lbvserver?action=enable",
            json!({"lbvserver": {"name": "web"}}),
        )
        .await;
    assert_eq!(enabled.status, StatusCode::OK, "{:?}", enabled.body);
    assert_eq!(get(web, "/").await.unwrap().text(), "primary");
    assert_eq!(rig.vserver_stat("web").await["disabledondown"], false);
    assert_eq!(
        rig.metric("ballast_vserver_disabled_on_down{vserver=\"web\"}")
            .await,
        Some(0.0)
    );
}

#[tokio::test]
async fn waiting_requests_survive_a_reload_and_a_raised_maxclient_lets_them_in() {
    let net = Net::new();
    let backend = Backend::start(net.free_addr(2), "b1").await;
    let web = net.free_addr(1);
    let surge = "maxclient = 1\nsurgequeuetimeout = \"20s\"";
    let rig = Rig::start(&net, &surge_config(web, &[backend.addr()], surge)).await;

    let mut requests = burst(web, "/slow?ms=1500", 3);
    let mut waiting = false;
    for _ in 0..200 {
        if rig.group_stat("pool").await["surgecount"] == 2 {
            waiting = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(waiting, "one request at the member, two in the surge queue");
    assert!(wait_until(Duration::from_secs(1), || backend.in_flight() == 1).await);

    // The config changes while they wait: the queue is the same, its limit the new one.
    let raised = rig
        .nitro
        .put(
            "config/servicegroup",
            json!({"servicegroup": {"servicegroupname": "pool", "maxclient": 2}}),
        )
        .await;
    assert_eq!(raised.status, StatusCode::OK, "{:?}", raised.body);
    assert!(
        wait_until(Duration::from_millis(1000), || backend.in_flight() == 2).await,
        "the raised maxclient let a waiting request in before the first one finished"
    );
    while let Some(done) = requests.join_next().await {
        let (status, body, _) = done.unwrap();
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    assert_eq!(backend.max_in_flight(), 2);
    assert_eq!(rig.group_stat("pool").await["surgecount"], 0);
}

#[tokio::test]
async fn http2_streams_of_one_connection_queue_like_separate_requests() {
    let net = Net::new();
    let backend = Backend::start(net.free_addr(2), "b1").await;
    let web = net.free_addr(1);
    let surge = "maxclient = 2\nsurgequeuetimeout = \"20s\"";
    let _rig = Rig::start(&net, &surge_config(web, &[backend.addr()], surge)).await;

    let h2 = ballast_tests::H2::connect(web).await.unwrap();
    let mut streams = JoinSet::new();
    for _ in 0..6 {
        let mut h2 = h2.clone();
        streams.spawn(async move { h2.get("/slow?ms=200").await.expect("a response") });
    }
    while let Some(reply) = streams.join_next().await {
        let reply = reply.unwrap();
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    }
    assert_eq!(backend.requests(), 6);
    assert_eq!(
        backend.max_in_flight(),
        2,
        "six streams on one connection, at most two at the member"
    );
}

#[tokio::test]
async fn a_non_addressable_backup_vserver_serves_the_primarys_clients() {
    let net = Net::new();
    let mut primary = Backend::start(net.free_addr(2), "primary").await;
    let backup = Backend::start(net.free_addr(3), "backup").await;
    let web = net.free_addr(1);
    // NetScaler's usual backup: no address of its own (ipv46 0.0.0.0, port 0).
    let unspecified: SocketAddr = "0.0.0.0:0".parse().unwrap();
    let config = backup_config(web, unspecified, primary.addr(), backup.addr(), "");
    let rig = Rig::start(&net, &config).await;
    wait_for_state(&rig.ballast, 0, primary.addr(), "UP").await;
    assert_eq!(get(web, "/").await.unwrap().text(), "primary");

    let mark = rig.ballast.log_mark();
    primary.stop().await;
    wait_for_state(&rig.ballast, mark, primary.addr(), "DOWN").await;
    assert_eq!(get(web, "/").await.unwrap().text(), "backup");
    assert_eq!(rig.vserver_stat("web").await["backuphits"], 1);
    assert_eq!(rig.vserver_stat("standby").await["totalrequests"], 0);
}
