//! The config writer tells the truth: a change that cannot listen is an error for whoever asked
//! and changes nothing; vservers that trade addresses keep serving; an empty file is refused;
//! a SIGHUP says how many unsaved admin API changes it discards (or, with `reloadpolicy =
//! "KEEP"`, refuses to); `/metrics` counts file reloads and API edits apart; and a certificate
//! path that names a device or a FIFO is refused without hanging the writer.

use std::net::SocketAddr;
use std::time::Duration;

use ballast_tests::nitro::Nitro;
use ballast_tests::prom::{sample, scrape};
use ballast_tests::{
    BALLAST_SECTION, Backend, Ballast, Binary, Net, Reload, TempDir, TestCa, get, is_event,
    members_toml,
};
use http::StatusCode;
use serde_json::json;

/// The `ballast` binary cargo built for this test run.
const BALLAST: Binary = Binary::new(env!("CARGO_BIN_EXE_ballast"));

const PASSWORD: &str = "Pw-writer-test-3b1d";

/// `[admin]` on `admin` with the password in `admin.pass`, and `extra` admin keys.
fn admin_section(admin: SocketAddr, extra: &str) -> String {
    format!("[admin]\nlisten = \"{admin}\"\npasswordfile = \"admin.pass\"\n{extra}\n")
}

/// One HTTP vserver `name` on `addr` over servicegroup `<name>-pool` with `members`.
fn vserver(name: &str, addr: SocketAddr, members: &[SocketAddr]) -> String {
    format!(
        r#"[[servicegroup]]
servicegroupname = "{name}-pool"
servicetype = "HTTP"
{}

[[lbvserver]]
name = "{name}"
servicetype = "HTTP"
ipv46 = "{}"
port = {}
servicegroupname = "{name}-pool"

"#,
        members_toml(members),
        addr.ip(),
        addr.port()
    )
}

async fn start_with_admin(config: &str) -> Ballast {
    BALLAST
        .start_with_files(
            config,
            &[("admin.pass", format!("{PASSWORD}\n").as_bytes())],
        )
        .await
}

/// The name of the backend that answered `GET /` on `addr`.
async fn answered_by(addr: SocketAddr) -> String {
    let reply = get(addr, "/")
        .await
        .unwrap_or_else(|error| panic!("GET http://{addr}/ failed: {error:#}"));
    assert_eq!(reply.status, StatusCode::OK, "GET http://{addr}/");
    reply.backend().unwrap_or_default().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_vserver_moved_onto_a_taken_port_is_an_error_and_changes_nothing() {
    let net = Net::new();
    let a = Backend::start(net.free_addr(1), "a").await;
    let (admin, web) = (net.free_addr(250), net.free_addr(100));
    let config = format!(
        "{BALLAST_SECTION}{}{}",
        admin_section(admin, ""),
        vserver("web", web, &[a.addr()])
    );
    let ballast = start_with_admin(&config).await;
    let nitro = Nitro::new(admin, "nsroot", PASSWORD);

    // Another socket holds the address the vserver is asked to move to.
    let taken = net.free_addr(101);
    let _holder = std::net::TcpListener::bind(taken).expect("bind the taken address");
    let moved = json!({"lbvserver": {"name": "web", "ipv46": taken.ip().to_string(), "port": taken.port()}});
    let reply = nitro.put("config/lbvserver", moved).await;
    assert_eq!(
        reply.status,
        StatusCode::INTERNAL_SERVER_ERROR,
        "{:?}",
        reply.body
    );
    assert_ne!(reply.errorcode(), 0);
    assert!(
        reply.message().contains("cannot listen") && reply.message().contains(&taken.to_string()),
        "the error does not say which address could not be listened on: {}",
        reply.message()
    );

    // Nothing changed: the running config has the old address, and it still serves.
    let running = nitro.get("config/lbvserver/web").await;
    assert_eq!(
        running.body["lbvserver"][0]["port"],
        web.port(),
        "{:?}",
        running.body
    );
    assert_eq!(answered_by(web).await, "a");

    // A free address works, and the old one stops listening.
    let free = net.free_addr(102);
    let moved =
        json!({"lbvserver": {"name": "web", "ipv46": free.ip().to_string(), "port": free.port()}});
    let reply = nitro.put("config/lbvserver", moved).await;
    assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.body);
    assert_eq!(answered_by(free).await, "a");
    assert!(
        get(web, "/").await.is_err(),
        "the old address still answers after the move"
    );
    drop(ballast);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vservers_that_swap_addresses_on_sighup_both_serve_at_once() {
    let net = Net::new();
    let a = Backend::start(net.free_addr(1), "a").await;
    let b = Backend::start(net.free_addr(2), "b").await;
    let (x, y) = (net.free_addr(100), net.free_addr(101));
    let config = |first: SocketAddr, second: SocketAddr| {
        format!(
            "{BALLAST_SECTION}{}{}",
            vserver("one", first, &[a.addr()]),
            vserver("two", second, &[b.addr()])
        )
    };
    let ballast = BALLAST.start(&config(x, y)).await;
    assert_eq!(
        (answered_by(x).await, answered_by(y).await),
        ("a".into(), "b".into())
    );

    // Each address is listened on by the other vserver now: no rebind can fail, and neither
    // address stops listening for a moment.
    assert_eq!(ballast.reload(&config(y, x)).await, Reload::Reloaded);
    assert_eq!(
        (answered_by(x).await, answered_by(y).await),
        ("b".into(), "a".into())
    );
    let failures: Vec<_> = ballast.find_all(|line| {
        is_event(line, "cannot listen") || is_event(line, "cannot start accept loop")
    });
    assert!(failures.is_empty(), "{failures:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_empty_file_on_sighup_is_refused_and_every_listener_keeps_serving() {
    let net = Net::new();
    let a = Backend::start(net.free_addr(1), "a").await;
    let web = net.free_addr(100);
    let ballast = BALLAST
        .start(&format!(
            "{BALLAST_SECTION}{}",
            vserver("web", web, &[a.addr()])
        ))
        .await;
    for empty in ["", "# only a comment\n", "[ballast]\nworkers = 2\n"] {
        match ballast.reload(empty).await {
            Reload::Rejected(problems) => assert!(
                problems.contains("defines no lbvserver"),
                "the rejection does not say why: {problems}"
            ),
            Reload::Reloaded => panic!("a file without a vserver was applied: {empty:?}"),
        }
        assert_eq!(answered_by(web).await, "a", "after reloading {empty:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_warns_how_many_unsaved_api_changes_it_discards() {
    let net = Net::new();
    let a = Backend::start(net.free_addr(1), "a").await;
    let b = Backend::start(net.free_addr(2), "b").await;
    let (admin, web) = (net.free_addr(250), net.free_addr(100));
    let config = format!(
        "{BALLAST_SECTION}{}{}",
        admin_section(admin, ""),
        vserver("web", web, &[a.addr()])
    );
    let ballast = start_with_admin(&config).await;
    let nitro = Nitro::new(admin, "nsroot", PASSWORD);
    let binding = "config/servicegroup_servicegroupmember_binding";
    let member = |addr: SocketAddr, weight: u32| json!({"servicegroup_servicegroupmember_binding": {"servicegroupname": "web-pool", "ip": addr.ip().to_string(), "port": addr.port(), "weight": weight}});
    let added = nitro.put(binding, member(b.addr(), 1)).await;
    assert_eq!(added.status, StatusCode::CREATED, "{:?}", added.body);
    let updated = nitro.put(binding, member(b.addr(), 2)).await;
    assert_eq!(updated.status, StatusCode::OK, "{:?}", updated.body);
    // A rejected request is no change.
    let rejected = nitro.put(binding, member(b.addr(), 500)).await;
    assert_eq!(
        rejected.status,
        StatusCode::BAD_REQUEST,
        "{:?}",
        rejected.body
    );

    let mark = ballast.log_mark();
    assert_eq!(ballast.reload(&config).await, Reload::Reloaded);
    let warning = ballast
        .wait_for_log_since(
            mark,
            |line| {
                is_event(
                    line,
                    "the reload discarded admin API changes that were not saved",
                )
            },
            Duration::from_secs(5),
        )
        .await
        .unwrap_or_else(|| {
            panic!(
                "no warning about discarded changes:\n{}",
                ballast.log_text()
            )
        });
    assert_eq!(warning["level"], "WARN");
    assert_eq!(warning["changes"], 2, "{warning}");
    let members = nitro
        .get("config/servicegroup_servicegroupmember_binding/web-pool")
        .await;
    let count = members.body["servicegroup_servicegroupmember_binding"]
        .as_array()
        .map(Vec::len);
    assert_eq!(count, Some(1), "the file's one member: {:?}", members.body);

    // Nothing unsaved: a second reload warns of nothing.
    let mark = ballast.log_mark();
    assert_eq!(ballast.reload(&config).await, Reload::Reloaded);
    let again = ballast.find_all(|line| {
        is_event(
            line,
            "the reload discarded admin API changes that were not saved",
        )
    });
    assert!(again.iter().all(|(at, _)| *at < mark), "{again:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_reloadpolicy_keep_sighup_refuses_to_lose_unsaved_changes() {
    let net = Net::new();
    let a = Backend::start(net.free_addr(1), "a").await;
    let b = Backend::start(net.free_addr(2), "b").await;
    let (admin, web) = (net.free_addr(250), net.free_addr(100));
    let config = format!(
        "{BALLAST_SECTION}{}{}",
        admin_section(admin, "reloadpolicy = \"KEEP\""),
        vserver("web", web, &[a.addr()])
    );
    let ballast = start_with_admin(&config).await;
    let nitro = Nitro::new(admin, "nsroot", PASSWORD);
    let added = json!({"servicegroup_servicegroupmember_binding": {"servicegroupname": "web-pool", "ip": b.addr().ip().to_string(), "port": b.addr().port()}});
    let reply = nitro
        .put("config/servicegroup_servicegroupmember_binding", added)
        .await;
    assert!(reply.status.is_success(), "{:?}", reply.body);

    match ballast.reload(&config).await {
        Reload::Rejected(problems) => assert!(
            problems.contains("1 change(s) not saved") && problems.contains("nsconfig save"),
            "{problems}"
        ),
        Reload::Reloaded => panic!("the reload discarded an unsaved change under KEEP"),
    }
    let members = nitro
        .get("config/servicegroup_servicegroupmember_binding/web-pool")
        .await;
    let count = members.body["servicegroup_servicegroupmember_binding"]
        .as_array()
        .map(Vec::len);
    assert_eq!(
        count,
        Some(2),
        "the API's member is gone: {:?}",
        members.body
    );

    // Saved, the change is in the file, and the reload goes through and keeps it.
    let saved = nitro
        .post("config/nsconfig?action=save", json!({"nsconfig": {}}))
        .await;
    assert_eq!(saved.status, StatusCode::OK, "{:?}", saved.body);
    let file = std::fs::read_to_string(ballast.config_path()).expect("the saved file");
    assert_eq!(ballast.reload(&file).await, Reload::Reloaded);
    let members = nitro
        .get("config/servicegroup_servicegroupmember_binding/web-pool")
        .await;
    let count = members.body["servicegroup_servicegroupmember_binding"]
        .as_array()
        .map(Vec::len);
    assert_eq!(count, Some(2), "{:?}", members.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_api_edits_and_file_reloads_apart() {
    let net = Net::new();
    let a = Backend::start(net.free_addr(1), "a").await;
    let (admin, metrics, web) = (net.free_addr(250), net.free_addr(251), net.free_addr(100));
    let config = format!(
        "{BALLAST_SECTION}{}[metrics]\nlisten = \"{metrics}\"\n\n{}",
        admin_section(admin, ""),
        vserver("web", web, &[a.addr()])
    );
    let ballast = start_with_admin(&config).await;
    let nitro = Nitro::new(admin, "nsroot", PASSWORD);
    let bad = json!({"lbvserver": {"name": "web", "lbmethod": "FASTEST"}});
    let reply = nitro.put("config/lbvserver", bad).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{:?}", reply.body);

    let series = |source: &str, result: &str| {
        format!("ballast_config_reloads_total{{source=\"{source}\",result=\"{result}\"}}")
    };
    let (_, text) = scrape(metrics, None).await;
    assert_eq!(
        sample(&text, &series("api", "failure")),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        sample(&text, &series("file", "failure")),
        Some(0.0),
        "{text}"
    );
    assert_eq!(
        sample(&text, &series("file", "success")),
        Some(1.0),
        "the start: {text}"
    );

    assert!(matches!(
        ballast.reload("[[lbvserver]]\n").await,
        Reload::Rejected(_)
    ));
    let good = nitro
        .put(
            "config/lbvserver",
            json!({"lbvserver": {"name": "web", "lbmethod": "LEASTCONNECTION"}}),
        )
        .await;
    assert_eq!(good.status, StatusCode::OK, "{:?}", good.body);
    let (_, text) = scrape(metrics, None).await;
    assert_eq!(
        sample(&text, &series("file", "failure")),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        sample(&text, &series("api", "failure")),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        sample(&text, &series("api", "success")),
        Some(1.0),
        "{text}"
    );
}

/// `mkfifo path`, with the real tool.
fn mkfifo(dir: &TempDir, name: &str) -> std::path::PathBuf {
    let path = dir.path().join(name);
    let status = std::process::Command::new("mkfifo")
        .arg(&path)
        .status()
        .expect("run mkfifo");
    assert!(status.success(), "mkfifo {}", path.display());
    path
}

/// A TLS vserver on `addr` with certificate `cert` and key `key` (paths as the config names them).
fn tls_vserver(addr: SocketAddr, cert: &str, key: &str, members: &[SocketAddr]) -> String {
    format!(
        r#"[[sslcertkey]]
certkey = "site"
cert = "{cert}"
key = "{key}"

[[servicegroup]]
servicegroupname = "tls-pool"
servicetype = "HTTP"
{}

[[lbvserver]]
name = "tls"
servicetype = "SSL"
ipv46 = "{}"
port = {}
servicegroupname = "tls-pool"
sslcertkey = ["site"]

"#,
        members_toml(members),
        addr.ip(),
        addr.port()
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_certificate_that_is_a_device_or_a_fifo_is_refused_and_the_writer_goes_on() {
    let net = Net::new();
    let a = Backend::start(net.free_addr(1), "a").await;
    let b = Backend::start(net.free_addr(2), "b").await;
    let (admin, web, tls) = (net.free_addr(250), net.free_addr(100), net.free_addr(101));
    let site = TestCa::new().issue(&["site.test"]);
    let scratch = TempDir::new("writer-fifo");
    let fifo = mkfifo(&scratch, "cert.pem");
    let fifo = fifo.display().to_string();

    // `ballast check` refuses both at once, naming the key and the kind of file.
    for (cert, kind) in [
        ("/dev/zero", "character device"),
        (fifo.as_str(), "named pipe"),
    ] {
        let config = format!(
            "{BALLAST_SECTION}{}",
            tls_vserver(tls, cert, "/dev/null", &[a.addr()])
        );
        let checked = tokio::task::spawn_blocking(move || BALLAST.check(&config));
        let (code, stdout, stderr) = tokio::time::timeout(Duration::from_secs(10), checked)
            .await
            .expect("ballast check hangs on the certificate")
            .expect("ballast check ran");
        assert_eq!(code, 1, "stdout:\n{stdout}\nstderr:\n{stderr}");
        assert!(
            stderr.contains(&format!(
                "sslcertkey[0].cert: {cert} is not a regular file (a {kind})"
            )),
            "{stderr}"
        );
    }

    let good = format!(
        "{BALLAST_SECTION}{}{}{}",
        admin_section(admin, ""),
        vserver("web", web, &[a.addr()]),
        tls_vserver(tls, "site.pem", "site.key", &[a.addr()])
    );
    let ballast = BALLAST
        .start_with_files(
            &good,
            &[
                ("admin.pass", format!("{PASSWORD}\n").as_bytes()),
                ("site.pem", site.cert_pem.as_bytes()),
                ("site.key", site.key_pem.as_bytes()),
            ],
        )
        .await;
    let nitro = Nitro::new(admin, "nsroot", PASSWORD);

    // SIGHUP: each is rejected in time (the harness waits 10 s), nothing changes.
    for (cert, kind) in [
        ("/dev/zero", "character device"),
        (fifo.as_str(), "named pipe"),
    ] {
        let bad = good.replace("cert = \"site.pem\"", &format!("cert = \"{cert}\""));
        match ballast.reload(&bad).await {
            Reload::Rejected(problems) => {
                assert!(problems.contains(&format!("(a {kind})")), "{problems}")
            }
            Reload::Reloaded => panic!("a certificate at {cert} was accepted"),
        }
    }
    // Through the API too, and the writer answers the next edit.
    let bad_cert = json!({"sslcertkey": {"certkey": "zero", "cert": "/dev/zero", "key": fifo}});
    let reply = tokio::time::timeout(
        Duration::from_secs(10),
        nitro.post("config/sslcertkey", bad_cert),
    )
    .await
    .expect("the API hangs on a FIFO key");
    assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{:?}", reply.body);
    assert!(
        reply.message().contains("not a regular file"),
        "{}",
        reply.message()
    );

    let added = json!({"servicegroup_servicegroupmember_binding": {"servicegroupname": "web-pool", "ip": b.addr().ip().to_string(), "port": b.addr().port()}});
    let reply = tokio::time::timeout(
        Duration::from_secs(10),
        nitro.put("config/servicegroup_servicegroupmember_binding", added),
    )
    .await
    .expect("the writer no longer answers");
    assert!(reply.status.is_success(), "{:?}", reply.body);
    assert_eq!(ballast.reload(&good).await, Reload::Reloaded);
    assert_eq!(answered_by(web).await, "a");
}

/// Connects to the TLS vserver, GETs `/` (reading the reply also takes in the server's session
/// ticket) and says how the handshake went: `Full` or `Resumed`.
async fn tls_handshake_kind(
    addr: SocketAddr,
    client: std::sync::Arc<rustls::ClientConfig>,
) -> String {
    let stream = ballast_tests::certs::connect_tls(addr, "site.test", client)
        .await
        .expect("TLS handshake");
    let kind = format!("{:?}", stream.get_ref().1.handshake_kind());
    let mut h1 = ballast_tests::H1::over(stream, "site.test")
        .await
        .expect("HTTP/1.1 over TLS");
    let reply = h1.get("/").await.expect("GET / over TLS");
    assert_eq!(reply.status, StatusCode::OK);
    kind
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_edit_that_leaves_the_certificates_alone_keeps_tls_sessions_resumable() {
    let net = Net::new();
    let a = Backend::start(net.free_addr(1), "a").await;
    let b = Backend::start(net.free_addr(2), "b").await;
    let (admin, tls) = (net.free_addr(250), net.free_addr(101));
    let ca = TestCa::new();
    let site = ca.issue(&["site.test"]);
    let config = format!(
        "{BALLAST_SECTION}{}{}",
        admin_section(admin, ""),
        tls_vserver(tls, "site.pem", "site.key", &[a.addr()])
    );
    let ballast = BALLAST
        .start_with_files(
            &config,
            &[
                ("admin.pass", format!("{PASSWORD}\n").as_bytes()),
                ("site.pem", site.cert_pem.as_bytes()),
                ("site.key", site.key_pem.as_bytes()),
            ],
        )
        .await;
    let nitro = Nitro::new(admin, "nsroot", PASSWORD);
    let client = ca.client_config(&["http/1.1"]);
    assert_eq!(tls_handshake_kind(tls, client.clone()).await, "Some(Full)");
    assert_eq!(
        tls_handshake_kind(tls, client.clone()).await,
        "Some(Resumed)"
    );

    // A member added: the vserver keeps its rustls config, so its ticket keys, and the
    // certificate files are not read again (removing them changes nothing).
    std::fs::remove_file(ballast.dir().join("site.key")).expect("remove the key file");
    let added = json!({"servicegroup_servicegroupmember_binding": {"servicegroupname": "tls-pool", "ip": b.addr().ip().to_string(), "port": b.addr().port()}});
    let reply = nitro
        .put("config/servicegroup_servicegroupmember_binding", added)
        .await;
    assert!(reply.status.is_success(), "{:?}", reply.body);
    assert_eq!(
        tls_handshake_kind(tls, client.clone()).await,
        "Some(Resumed)",
        "the edit threw the TLS session cache away"
    );
}
