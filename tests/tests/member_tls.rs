//! TLS from Ballast to its members (`SSL` and `SSL_TCP` servicegroups), against a real
//! OpenSSL peer (Python's `ssl` module): the member's certificate is verified against `cafile`
//! with the `snihost` name (or the member's IP address when there is none), a member that fails
//! verification gets no request (the client gets a generic 502, the log says why, the member's
//! handshake failures are counted), `clientcertkey` answers a member that requires a client
//! certificate, and an `SSL_TCP` group relays bytes over TLS. `serverauth = "DISABLED"` takes
//! any certificate; a member that does not speak TLS, or never answers the hello within
//! `connecttimeout`, is told apart in the log. An `SSL` vserver in front of an `SSL` group
//! decrypts, and encrypts again towards the member.

use std::net::SocketAddr;
use std::time::Duration;

use ballast_tests::certs::{TestCa, connect_tls};
use ballast_tests::client::connect_tcp;
use ballast_tests::nitro::Nitro;
use ballast_tests::prom::{sample, scrape};
use ballast_tests::tls_backend::{TlsBackend, TlsMode};
use ballast_tests::{BALLAST_SECTION, Backend, Ballast, Binary, H2, Net, field, get, is_event};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The `ballast` binary cargo built for this test run.
const BALLAST: Binary = Binary::new(env!("CARGO_BIN_EXE_ballast"));

const PASSWORD: &str = "member-tls-secret";

/// One servicegroup `name` of `servicetype` with one member and `tls` lines, and a vserver of
/// `vserver_type` on `vserver` in front of it.
fn pair(
    name: &str,
    servicetype: &str,
    tls: &str,
    member: SocketAddr,
    vserver_type: &str,
    vserver: SocketAddr,
) -> String {
    format!(
        r#"
[[servicegroup]]
servicegroupname = "{name}"
servicetype = "{servicetype}"
{tls}
members = [{{ ip = "{}", port = {} }}]

[[lbvserver]]
name = "{name}"
servicetype = "{vserver_type}"
ipv46 = "{}"
port = {}
servicegroupname = "{name}"
"#,
        member.ip(),
        member.port(),
        vserver.ip(),
        vserver.port()
    )
}

/// Starts Ballast with the admin API and metrics on, `sections` and the files `files`
/// (`admin.pass` is added).
async fn start(net: &Net, sections: &str, files: &[(&str, &[u8])]) -> (Ballast, Nitro, SocketAddr) {
    let admin = net.free_addr(250);
    let metrics = net.free_addr(251);
    let config = format!(
        "{BALLAST_SECTION}[admin]\nlisten = \"{admin}\"\npasswordfile = \"admin.pass\"\n\n\
         [metrics]\nlisten = \"{metrics}\"\n{sections}"
    );
    let password = format!("{PASSWORD}\n");
    let mut all = vec![("admin.pass", password.as_bytes())];
    all.extend_from_slice(files);
    let ballast = BALLAST.start_with_files(&config, &all).await;
    (ballast, Nitro::new(admin, "nsroot", PASSWORD), metrics)
}

/// The JSON body the TLS backend answered with (what it saw of the handshake).
async fn seen(vserver: SocketAddr, ballast: &Ballast) -> Value {
    let reply = get(vserver, "/seen").await.expect("a response");
    assert_eq!(
        reply.status.as_u16(),
        200,
        "{}\n{}",
        reply.text(),
        ballast.log_text()
    );
    serde_json::from_slice(&reply.body).expect("the backend answers JSON")
}

/// The member entry of `group` in `stat/servicegroup`.
async fn member_stat(nitro: &Nitro, group: &str) -> Value {
    let stat = nitro
        .get(&format!("stat/servicegroup/{group}?statbindings=yes"))
        .await;
    stat.body["servicegroup"][0]["servicegroupmember"][0].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ssl_group_verifies_its_members_and_sends_the_sni_name() {
    let net = Net::new();
    let ca = TestCa::new();
    let (named, by_ip) = (net.free_addr(1), net.free_addr(2));
    let named_backend = TlsBackend::start(
        named,
        TlsMode::Http,
        &ca.issue(&["app.test", "api.test"]),
        None,
    )
    .await;
    let ip_backend = TlsBackend::start(
        by_ip,
        TlsMode::Http,
        &ca.issue(&[&by_ip.ip().to_string()]),
        None,
    )
    .await;
    let (web, plain_ip) = (net.free_addr(100), net.free_addr(101));
    let sections = pair(
        "web",
        "SSL",
        "cafile = \"ca.pem\"\nsnihost = \"app.test\"",
        named_backend.addr(),
        "HTTP",
        web,
    ) + &pair(
        "byip",
        "SSL",
        "cafile = \"ca.pem\"",
        ip_backend.addr(),
        "HTTP",
        plain_ip,
    );
    let ca_pem = ca.pem();
    let (ballast, nitro, _) = start(&net, &sections, &[("ca.pem", ca_pem.as_bytes())]).await;

    // snihost: sent as SNI and verified; ALPN http/1.1; no client certificate; one kept-alive
    // TLS connection carries the requests one after another.
    for _ in 0..3 {
        let seen = seen(web, &ballast).await;
        assert_eq!(
            seen,
            json!({"sni": "app.test", "client": null, "alpn": "http/1.1", "path": "/seen", "conn": 1})
        );
    }
    // No snihost: no SNI, and the certificate names the member's IP address.
    let by_ip = seen(plain_ip, &ballast).await;
    assert_eq!(by_ip["sni"], Value::Null, "{by_ip}");
    assert_eq!(by_ip["alpn"], "http/1.1");

    // NITRO shows the keys as written.
    let group = nitro.get("config/servicegroup/web").await;
    let group = &group.body["servicegroup"][0];
    assert_eq!(
        (&group["servicetype"], &group["cafile"], &group["snihost"]),
        (&json!("SSL"), &json!("ca.pem"), &json!("app.test")),
        "{group}"
    );
    let stat = member_stat(&nitro, "web").await;
    assert_eq!(stat["tlshandshakefailures"], 0, "{stat}");
    assert_eq!(stat["totalrequests"], 3, "{stat}");

    // A TLS setting changed through NITRO: the next request goes over a new connection made with
    // it, never over the pooled one.
    let changed = nitro
        .put(
            "config/servicegroup",
            json!({"servicegroup": {"servicegroupname": "web", "snihost": "api.test"}}),
        )
        .await;
    assert_eq!(changed.status.as_u16(), 200, "{:?}", changed.body);
    let seen = seen(web, &ballast).await;
    assert_eq!(
        (&seen["sni"], &seen["conn"]),
        (&json!("api.test"), &json!(2)),
        "{seen}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_that_fails_verification_gets_no_request_and_is_blamed() {
    let net = Net::new();
    let (trusted, stranger) = (TestCa::new(), TestCa::named("Someone else's CA"));
    let (strange, misnamed) = (net.free_addr(1), net.free_addr(2));
    let strange_backend =
        TlsBackend::start(strange, TlsMode::Http, &stranger.issue(&["app.test"]), None).await;
    let misnamed_backend = TlsBackend::start(
        misnamed,
        TlsMode::Http,
        &trusted.issue(&["other.test"]),
        None,
    )
    .await;
    let (unknown_issuer, wrong_name) = (net.free_addr(100), net.free_addr(101));
    let tls = "cafile = \"ca.pem\"\nsnihost = \"app.test\"";
    let sections = pair(
        "strange",
        "SSL",
        tls,
        strange_backend.addr(),
        "HTTP",
        unknown_issuer,
    ) + &pair(
        "misnamed",
        "SSL",
        tls,
        misnamed_backend.addr(),
        "HTTP",
        wrong_name,
    );
    let ca_pem = trusted.pem();
    let (ballast, nitro, metrics) = start(&net, &sections, &[("ca.pem", ca_pem.as_bytes())]).await;

    for (vserver, group, member, why) in [
        (unknown_issuer, "strange", strange, "unknown issuer"),
        (wrong_name, "misnamed", misnamed, "name mismatch"),
    ] {
        let reply = get(vserver, "/").await.expect("a response");
        assert_eq!(reply.status.as_u16(), 502, "{}", reply.text());
        assert_eq!(
            reply.text(),
            "502 Bad Gateway: the server could not be reached securely\n",
            "the client learns nothing about the member"
        );
        let logged = ballast
            .wait_for_log(
                |line| {
                    is_event(
                        line,
                        "TLS handshake with the member failed; trying another member",
                    ) && field(line, "servicegroup") == Some(group)
                },
                Duration::from_secs(5),
            )
            .await
            .unwrap_or_else(|| panic!("no handshake failure logged\n{}", ballast.log_text()));
        let reason = field(&logged, "reason").unwrap_or_default();
        assert!(
            reason.starts_with("certificate verify failed") && reason.contains(why),
            "{group}: {reason}"
        );
        let stat = member_stat(&nitro, group).await;
        assert_eq!(stat["tlshandshakefailures"], 1, "{stat}");
        assert_eq!(stat["connectfailures"], 1, "{stat}");
        assert_eq!(stat["totalrequests"], 0, "{stat}");
        let last = stat["lastfailurereason"].as_str().unwrap_or_default();
        assert!(last.contains(why), "{last}");
        let (_, text) = scrape(metrics, None).await;
        let series = format!(
            "ballast_member_tls_handshake_failures_total{{servicegroup=\"{group}\",member=\"{member}\"}}"
        );
        assert_eq!(sample(&text, &series), Some(1.0), "{series} in\n{text}");
        let kind = format!(
            "ballast_vserver_errors_total{{vserver=\"{group}\",side=\"member\",kind=\"tls_handshake\"}}"
        );
        assert_eq!(sample(&text, &kind), Some(1.0), "{kind} in\n{text}");
    }

    // The fix through NITRO: the right name verifies, and the next request gets through.
    let fixed = nitro
        .put(
            "config/servicegroup",
            json!({"servicegroup": {"servicegroupname": "misnamed", "snihost": "other.test"}}),
        )
        .await;
    assert_eq!(fixed.status.as_u16(), 200, "{:?}", fixed.body);
    let seen = seen(wrong_name, &ballast).await;
    assert_eq!(seen["sni"], "other.test", "{seen}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clientcertkey_answers_a_member_that_requires_a_client_certificate() {
    let net = Net::new();
    let (server_ca, client_ca) = (TestCa::new(), TestCa::new());
    let member = net.free_addr(1);
    let backend = TlsBackend::start(
        member,
        TlsMode::Http,
        &server_ca.issue(&["app.test"]),
        Some(&client_ca),
    )
    .await;
    let client = client_ca.issue(&["ballast.client.test"]);
    let (mutual, anonymous) = (net.free_addr(100), net.free_addr(101));
    let tls = "cafile = \"ca.pem\"\nsnihost = \"app.test\"";
    let sections = format!(
        "[[sslcertkey]]\ncertkey = \"ballast-client\"\ncert = \"client.pem\"\nkey = \"client.key\"\n{}{}",
        pair(
            "mutual",
            "SSL",
            &format!("{tls}\nclientcertkey = \"ballast-client\""),
            backend.addr(),
            "HTTP",
            mutual,
        ),
        pair("anonymous", "SSL", tls, backend.addr(), "HTTP", anonymous),
    );
    let ca_pem = server_ca.pem();
    let (ballast, nitro, _) = start(
        &net,
        &sections,
        &[
            ("ca.pem", ca_pem.as_bytes()),
            ("client.pem", client.cert_pem.as_bytes()),
            ("client.key", client.key_pem.as_bytes()),
        ],
    )
    .await;

    let seen = seen(mutual, &ballast).await;
    assert_eq!(seen["client"], "ballast.client.test", "{seen}");
    assert_eq!(seen["sni"], "app.test", "{seen}");

    // Without clientcertkey the member refuses Ballast (TLS 1.3 tells after the handshake, at
    // the first read): a 502, never its content, and the log says why.
    let reply = get(anonymous, "/").await.expect("a response");
    assert_eq!(reply.status.as_u16(), 502, "{}", reply.text());
    let refused = |line: &Value| {
        field(line, "servicegroup") == Some("anonymous")
            && field(line, "reason").is_some_and(|why| why.contains("client certificate"))
    };
    assert!(
        ballast
            .wait_for_log(refused, Duration::from_secs(5))
            .await
            .is_some(),
        "no log line says the member wanted a client certificate\n{}",
        ballast.log_text()
    );

    // The certificate is in use: it cannot be deleted from under the group.
    let deleted = nitro.delete("config/sslcertkey/ballast-client").await;
    assert_ne!(deleted.status.as_u16(), 200, "{:?}", deleted.body);
    assert!(
        deleted.message().contains("servicegroup `mutual`"),
        "{:?}",
        deleted.body
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ssl_tcp_group_relays_bytes_over_tls() {
    let net = Net::new();
    let ca = TestCa::new();
    let member = net.free_addr(1);
    let backend = TlsBackend::start(member, TlsMode::Echo, &ca.issue(&["echo.test"]), None).await;
    let vserver = net.free_addr(100);
    let sections = pair(
        "echo",
        "SSL_TCP",
        "cafile = \"ca.pem\"\nsnihost = \"echo.test\"",
        backend.addr(),
        "TCP",
        vserver,
    );
    let ca_pem = ca.pem();
    let (ballast, nitro, _) = start(&net, &sections, &[("ca.pem", ca_pem.as_bytes())]).await;

    let mut stream = connect_tcp(vserver, None).await.expect("connect");
    let message: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
    let (mut reader, mut writer) = stream.split();
    let (written, echoed) = tokio::join!(
        async {
            writer.write_all(&message).await?;
            writer.shutdown().await
        },
        async {
            let mut echoed = Vec::new();
            tokio::time::timeout(Duration::from_secs(10), reader.read_to_end(&mut echoed))
                .await
                .map(|read| read.map(|_| echoed))
        }
    );
    written.expect("send");
    let echoed = echoed
        .expect("the echo ends in time")
        .expect("read the echo");
    assert!(
        echoed == message,
        "{} bytes back of {}\n{}",
        echoed.len(),
        message.len(),
        ballast.log_text()
    );
    let stat = member_stat(&nitro, "echo").await;
    assert_eq!(
        (&stat["totalrequests"], &stat["tlshandshakefailures"]),
        (&json!(1), &json!(0)),
        "{stat}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serverauth_disabled_takes_any_certificate_and_other_failures_say_why() {
    let net = Net::new();
    let stranger = TestCa::named("Self-signed somewhere");
    let self_signed = TlsBackend::start(
        net.free_addr(1),
        TlsMode::Http,
        &stranger.issue(&["app.test"]),
        None,
    )
    .await;
    let plain = Backend::start(net.free_addr(2), "plain").await;
    // Accepts TCP connections (the kernel's backlog) and never answers a TLS hello.
    let silent = std::net::TcpListener::bind(net.free_addr(3)).expect("bind");
    let silent_addr = silent.local_addr().expect("address");
    let (unverified, not_tls, mute) = (net.free_addr(100), net.free_addr(101), net.free_addr(102));
    let trusted = TestCa::new();
    let sections = pair(
        "unverified",
        "SSL",
        "serverauth = \"DISABLED\"\nsnihost = \"app.test\"",
        self_signed.addr(),
        "HTTP",
        unverified,
    ) + &pair(
        "nottls",
        "SSL",
        "cafile = \"ca.pem\"",
        plain.addr(),
        "HTTP",
        not_tls,
    ) + &pair(
        "mute",
        "SSL",
        "cafile = \"ca.pem\"\nconnecttimeout = \"300ms\"",
        silent_addr,
        "HTTP",
        mute,
    );
    let ca_pem = trusted.pem();
    let (ballast, _nitro, _) = start(&net, &sections, &[("ca.pem", ca_pem.as_bytes())]).await;

    // serverauth = "DISABLED": a certificate from no known CA is taken (still TLS, still SNI).
    let seen = seen(unverified, &ballast).await;
    assert_eq!(seen["sni"], "app.test", "{seen}");

    for (vserver, group, why) in [
        (not_tls, "nottls", "does not speak TLS"),
        (mute, "mute", "did not finish within connecttimeout"),
    ] {
        let reply = get(vserver, "/").await.expect("a response");
        assert_eq!(reply.status.as_u16(), 502, "{group}: {}", reply.text());
        let logged = ballast
            .wait_for_log(
                |line| {
                    is_event(
                        line,
                        "TLS handshake with the member failed; trying another member",
                    ) && field(line, "servicegroup") == Some(group)
                },
                Duration::from_secs(5),
            )
            .await
            .unwrap_or_else(|| panic!("no handshake failure logged\n{}", ballast.log_text()));
        let reason = field(&logged, "reason").unwrap_or_default();
        assert!(reason.contains(why), "{group}: {reason}");
    }
    drop(silent);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ssl_vserver_in_front_of_an_ssl_group_encrypts_both_ways() {
    let net = Net::new();
    let ca = TestCa::new();
    let member = TlsBackend::start(
        net.free_addr(1),
        TlsMode::Http,
        &ca.issue(&["app.internal"]),
        None,
    )
    .await;
    let front = ca.issue(&["www.test"]);
    let vserver = net.free_addr(100);
    let sections = format!(
        "[[sslcertkey]]\ncertkey = \"www\"\ncert = \"www.pem\"\nkey = \"www.key\"\n{}",
        pair(
            "web",
            "SSL",
            "cafile = \"ca.pem\"\nsnihost = \"app.internal\"",
            member.addr(),
            "SSL",
            vserver,
        )
        .replacen(
            "servicetype = \"SSL\"\nipv46",
            "servicetype = \"SSL\"\nsslcertkey = [\"www\"]\nipv46",
            1,
        ),
    );
    let ca_pem = ca.pem();
    let (ballast, _nitro, _) = start(
        &net,
        &sections,
        &[
            ("ca.pem", ca_pem.as_bytes()),
            ("www.pem", front.cert_pem.as_bytes()),
            ("www.key", front.key_pem.as_bytes()),
        ],
    )
    .await;

    // The client speaks HTTP/2 over TLS to the vserver; Ballast speaks HTTP/1.1 over TLS to the
    // member, with the member's own name.
    let tls = connect_tls(vserver, "www.test", ca.client_config(&["h2"]))
        .await
        .expect("TLS to the vserver");
    let mut h2 = H2::over(tls, "https", "www.test")
        .await
        .expect("HTTP/2 handshake");
    let reply = h2.get("/both-ways").await.expect("a response");
    assert_eq!(
        reply.status.as_u16(),
        200,
        "{}\n{}",
        reply.text(),
        ballast.log_text()
    );
    let seen: Value = serde_json::from_slice(&reply.body).expect("JSON");
    assert_eq!(
        (&seen["sni"], &seen["alpn"], &seen["path"]),
        (
            &json!("app.internal"),
            &json!("http/1.1"),
            &json!("/both-ways")
        ),
        "{seen}"
    );
}
