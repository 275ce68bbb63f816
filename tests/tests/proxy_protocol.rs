//! The PROXY protocol through `ballast run`, with real peers: HAProxy in front of Ballast
//! (`send-proxy-v2` and `send-proxy`) hands on the original client's address, which Ballast
//! forwards (`X-Forwarded-For`) and logs, for HTTP, SSL and TCP vservers; nginx behind Ballast
//! (`listen ... proxy_protocol`) logs the client address that an `HTTP` and a `TCP`
//! servicegroup send, one connection per client; a header from an untrusted source, and a
//! trusted source without a valid one, are refused and counted in `/metrics`; the admin API
//! shows and sets the keys.

use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::time::Duration;

use ballast_tests::certs::{TestCa, connect_tls_from};
use ballast_tests::client::connect_tcp;
use ballast_tests::l4peers::{Haproxy, Nginx};
use ballast_tests::nitro::Nitro;
use ballast_tests::prom::{assert_openmetrics_parses, assert_promtool_accepts, sample, scrape};
use ballast_tests::raw::read_until_closed;
use ballast_tests::{
    BALLAST_SECTION, Backend, Binary, EchoBackend, H1, Net, members_toml, wait_until,
};
use http::StatusCode;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The `ballast` binary cargo built for this test run.
const BALLAST: Binary = Binary::new(env!("CARGO_BIN_EXE_ballast"));

const WAIT: Duration = Duration::from_secs(10);

/// An `[[lbvserver]]` named `name` of `servicetype` on `addr` over `group`; `extra` adds keys.
fn vserver(name: &str, servicetype: &str, addr: SocketAddr, group: &str, extra: &str) -> String {
    format!(
        "[[lbvserver]]\nname = \"{name}\"\nservicetype = \"{servicetype}\"\nipv46 = \"{}\"\nport = {}\nlbmethod = \"ROUNDROBIN\"\nservicegroupname = \"{group}\"\n{extra}\n\n",
        addr.ip(),
        addr.port()
    )
}

/// A `[[servicegroup]]` named `name` of `servicetype` over `members`; `extra` adds keys.
fn group(name: &str, servicetype: &str, members: &[SocketAddr], extra: &str) -> String {
    format!(
        "[[servicegroup]]\nservicegroupname = \"{name}\"\nservicetype = \"{servicetype}\"\n{}\n{extra}\n\n",
        members_toml(members)
    )
}

/// The JSON access log's lines, once it has at least `count` of them.
async fn access_log(path: &Path, count: usize) -> Vec<Value> {
    let read = || {
        std::fs::read_to_string(path)
            .unwrap_or_default()
            .lines()
            .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}")))
            .collect::<Vec<Value>>()
    };
    let found = wait_until(WAIT, || read().len() >= count).await;
    let lines = read();
    assert!(found, "expected {count} access log lines: {lines:?}");
    lines
}

fn client_ip(line: &Value) -> IpAddr {
    let client: SocketAddr = line["client"].as_str().unwrap().parse().unwrap();
    client.ip()
}

#[tokio::test]
async fn haproxy_in_front_hands_on_the_original_client_for_http_ssl_and_tcp_vservers() {
    let net = Net::new();
    let backend = Backend::start(net.free_addr(1), "a").await;
    let echo = EchoBackend::start(net.free_addr(2)).await;
    let (web, secure, tcp) = (net.free_addr(10), net.free_addr(11), net.free_addr(12));
    let haproxy_source = net.ip(3);
    let ca = TestCa::new();
    let cert = ca.issue(&["localhost"]);
    let accept =
        format!("proxyprotocol = \"ENABLED\"\nproxyprotocoltrusted = [\"{haproxy_source}\"]");
    let config = format!(
        "{BALLAST_SECTION}[accesslog]\npath = \"access.log\"\nformat = \"json\"\n\n\
         [[sslcertkey]]\ncertkey = \"site\"\ncert = \"site.pem\"\nkey = \"site.key\"\n\n{}{}{}{}{}",
        group("pool", "HTTP", &[backend.addr()], ""),
        group("echo", "TCP", &[echo.addr()], ""),
        vserver("web", "HTTP", web, "pool", &accept),
        vserver(
            "secure",
            "SSL",
            secure,
            "pool",
            &format!("{accept}\nsslcertkey = [\"site\"]")
        ),
        vserver("tcp", "TCP", tcp, "echo", &accept),
    );
    let ballast = BALLAST
        .start_with_files(
            &config,
            &[
                ("site.pem", cert.cert_pem.as_bytes()),
                ("site.key", cert.key_pem.as_bytes()),
            ],
        )
        .await;
    let log = ballast.dir().join("access.log");

    // HTTP, behind HAProxy sending v2 and v1 headers: the member sees the client, not HAProxy.
    let v2 = Haproxy::start(net.free_addr(20), web, haproxy_source, "send-proxy-v2").await;
    let v1 = Haproxy::start(net.free_addr(21), web, haproxy_source, "send-proxy").await;
    for (haproxy, host) in [(&v2, 55), (&v1, 56)] {
        let mut client = H1::connect_from(net.ip(host), haproxy.listen)
            .await
            .unwrap();
        let reply = client.get("/").await.unwrap();
        assert_eq!(reply.status, StatusCode::OK);
        assert_eq!(backend.last_forwarded_for(), Some(net.ip(host).to_string()));
        // A second request on the same connection keeps the address.
        client.get("/again").await.unwrap();
        assert_eq!(backend.last_forwarded_for(), Some(net.ip(host).to_string()));
    }

    // SSL: the header comes before the TLS handshake.
    let tls_front =
        Haproxy::start(net.free_addr(22), secure, haproxy_source, "send-proxy-v2").await;
    let tls = connect_tls_from(
        tls_front.listen,
        net.ip(57),
        "localhost",
        ca.client_config(&["http/1.1"]),
    )
    .await
    .unwrap();
    let mut client = H1::over(tls, "localhost").await.unwrap();
    assert_eq!(client.get("/tls").await.unwrap().status, StatusCode::OK);
    assert_eq!(backend.last_forwarded_for(), Some(net.ip(57).to_string()));
    drop(client);

    // TCP: the relayed bytes are the client's own, the header is not among them.
    let tcp_front = Haproxy::start(net.free_addr(23), tcp, haproxy_source, "send-proxy").await;
    let mut stream = connect_tcp(tcp_front.listen, Some(net.ip(58)))
        .await
        .unwrap();
    stream.write_all(b"ping").await.unwrap();
    let mut echoed = [0u8; 4];
    stream.read_exact(&mut echoed).await.unwrap();
    assert_eq!(&echoed, b"ping");
    drop(stream);

    // The access log names the original clients: 2 + 2 HTTP requests, 1 SSL, 1 TCP connection
    // (and the TCP connection of the readiness probe that `Haproxy::start` made from
    // 127.0.0.1, which HAProxy relayed too).
    let lines = access_log(&log, 7).await;
    let mut clients: Vec<(String, IpAddr)> = lines
        .iter()
        .map(|line| {
            (
                line["vserver"].as_str().unwrap().to_owned(),
                client_ip(line),
            )
        })
        .filter(|(_, client)| *client != IpAddr::from([127, 0, 0, 1]))
        .collect();
    clients.sort();
    let expected = |vserver: &str, host: u8| (vserver.to_owned(), net.ip(host));
    assert_eq!(
        clients,
        [
            expected("secure", 57),
            expected("tcp", 58),
            expected("web", 55),
            expected("web", 55),
            expected("web", 56),
            expected("web", 56),
        ]
    );
}

#[tokio::test]
async fn nginx_behind_logs_the_client_address_that_http_and_tcp_servicegroups_send() {
    let net = Net::new();
    let nginx = Nginx::start(net.free_addr(1), None).await;
    let (web, tcp) = (net.free_addr(10), net.free_addr(11));
    let config = format!(
        "{BALLAST_SECTION}{}{}{}{}",
        group(
            "http-pp",
            "HTTP",
            &[nginx.listen],
            "proxyprotocol = \"ENABLED\"\nproxyprotocoltxversion = \"V2\""
        ),
        group(
            "tcp-pp",
            "TCP",
            &[nginx.listen],
            "proxyprotocol = \"ENABLED\""
        ),
        vserver("web", "HTTP", web, "http-pp", ""),
        vserver("tcp", "TCP", tcp, "tcp-pp", ""),
    );
    let _ballast = BALLAST.start(&config).await;

    // HTTP (v2): each client's connection carries its own address, also after another
    // client's request ended (a pooled connection would carry the first one's).
    for host in [55, 56, 55] {
        let mut client = H1::connect_from(net.ip(host), web).await.unwrap();
        for _ in 0..2 {
            let reply = client.get("/").await.unwrap();
            assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
            assert_eq!(reply.text(), format!("from nginx: {}\n", net.ip(host)));
        }
    }

    // TCP (v1, the default): the header, then the client's bytes as they are.
    let mut stream = connect_tcp(tcp, Some(net.ip(57))).await.unwrap();
    stream
        .write_all(b"GET /tcp HTTP/1.1\r\nHost: nginx\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let reply = read_until_closed(&mut stream, WAIT).await;
    assert!(
        reply
            .text()
            .ends_with(&format!("from nginx: {}\n", net.ip(57))),
        "{}",
        reply.text()
    );

    let lines = nginx.wait_access_lines(7).await;
    let sources: Vec<&str> = lines
        .iter()
        .map(|line| line.split(' ').next().unwrap_or(""))
        .collect();
    let ip = |host: u8| net.ip(host).to_string();
    assert_eq!(
        sources,
        [ip(55), ip(55), ip(56), ip(56), ip(55), ip(55), ip(57)],
        "{lines:?}"
    );
    assert!(lines[6].ends_with("\"GET /tcp HTTP/1.1\""), "{lines:?}");
}

/// Writes `bytes` from `source` to `addr`, and reads until the connection closes.
async fn exchange_from(
    source: IpAddr,
    addr: SocketAddr,
    bytes: &[u8],
) -> ballast_tests::raw::RawReply {
    let mut stream = connect_tcp(addr, Some(source)).await.unwrap();
    stream.write_all(bytes).await.unwrap();
    read_until_closed(&mut stream, WAIT).await
}

#[tokio::test]
async fn headers_from_untrusted_sources_and_trusted_sources_without_one_are_refused_and_counted() {
    let net = Net::new();
    let backend = Backend::start(net.free_addr(1), "a").await;
    let echo = EchoBackend::start(net.free_addr(2)).await;
    let (web, tcp, metrics) = (net.free_addr(10), net.free_addr(11), net.free_addr(12));
    let trusted = net.ip(3);
    let accept = format!("proxyprotocol = \"ENABLED\"\nproxyprotocoltrusted = [\"{trusted}/32\"]");
    let config = format!(
        "{BALLAST_SECTION}[metrics]\nlisten = \"{metrics}\"\n\n[httpprofile]\nclientheadertimeout = \"300ms\"\n\n{}{}{}{}",
        group("pool", "HTTP", &[backend.addr()], ""),
        group("echo", "TCP", &[echo.addr()], ""),
        vserver("web", "HTTP", web, "pool", &accept),
        vserver("tcp", "TCP", tcp, "echo", &accept),
    );
    let _ballast = BALLAST.start(&config).await;
    let get = b"GET / HTTP/1.1\r\nHost: web\r\nConnection: close\r\n\r\n";
    let forged = [&b"PROXY TCP4 192.0.2.1 127.0.0.1 1234 80\r\n"[..], get].concat();
    let untrusted = net.ip(55);

    // An untrusted client that forges a header: 400, and the member never hears of it.
    let refused = exchange_from(untrusted, web, &forged).await;
    assert_eq!(refused.status(), Some(400), "{}", refused.text());
    assert!(
        refused.text().contains("does not trust"),
        "{}",
        refused.text()
    );
    assert!(refused.closed);
    assert_eq!(backend.requests(), 0);
    // The same client without a header is served as usual.
    let served = exchange_from(untrusted, web, get).await;
    assert_eq!(served.status(), Some(200), "{}", served.text());
    assert_eq!(backend.last_forwarded_for(), Some(untrusted.to_string()));

    // The trusted balancer must send a valid header.
    let missing = exchange_from(trusted, web, get).await;
    assert_eq!(missing.status(), Some(400), "{}", missing.text());
    let malformed =
        exchange_from(trusted, web, b"PROXY TCP4 192.0.2.1 127.0.0.1 1 99999\r\n").await;
    assert_eq!(malformed.status(), Some(400), "{}", malformed.text());
    let proxied = [&b"PROXY TCP4 192.0.2.1 127.0.0.1 1234 80\r\n"[..], get].concat();
    let ok = exchange_from(trusted, web, &proxied).await;
    assert_eq!(ok.status(), Some(200), "{}", ok.text());
    assert_eq!(backend.last_forwarded_for(), Some("192.0.2.1".to_owned()));
    // Half a header, then nothing: refused once clientheadertimeout is over.
    let started = tokio::time::Instant::now();
    let stalled = exchange_from(trusted, web, b"PROXY TCP4 192.0.2.1 ").await;
    assert_eq!(stalled.status(), Some(400), "{}", stalled.text());
    assert!(
        stalled
            .text()
            .contains("no complete PROXY protocol header in time")
    );
    assert!(
        started.elapsed() >= Duration::from_millis(300),
        "{:?}",
        started.elapsed()
    );
    // A v2 LOCAL header (the balancer's own health check) keeps the connection's own address.
    let local = [&b"\r\n\r\n\0\r\nQUIT\n\x20\x00\x00\x00"[..], get].concat();
    let checked = exchange_from(trusted, web, &local).await;
    assert_eq!(checked.status(), Some(200), "{}", checked.text());
    assert_eq!(backend.last_forwarded_for(), Some(trusted.to_string()));

    // TCP: an untrusted client's header (v2) closes the connection before any byte is relayed;
    // its ordinary bytes are relayed as they are.
    let v2_signature = b"\r\n\r\n\0\r\nQUIT\n\x21\x11\x00\x0c";
    let closed = exchange_from(untrusted, tcp, v2_signature).await;
    assert!(closed.closed && closed.data.is_empty(), "{closed:?}");
    let mut stream = connect_tcp(tcp, Some(untrusted)).await.unwrap();
    stream.write_all(b"PRINT").await.unwrap();
    let mut echoed = [0u8; 5];
    stream.read_exact(&mut echoed).await.unwrap();
    assert_eq!(&echoed, b"PRINT");
    drop(stream);

    let (_, text) = scrape(metrics, None).await;
    assert_promtool_accepts(&text);
    let (_, openmetrics) = scrape(metrics, Some("application/openmetrics-text")).await;
    assert_openmetrics_parses(&openmetrics);
    let refused = |vserver: &str, reason: &str| {
        sample(
            &text,
            &format!(
                "ballast_proxy_protocol_refused_total{{vserver=\"{vserver}\",reason=\"{reason}\"}}"
            ),
        )
    };
    assert_eq!(refused("web", "untrusted"), Some(1.0), "{text}");
    assert_eq!(refused("web", "missing"), Some(1.0), "{text}");
    assert_eq!(refused("web", "malformed"), Some(1.0), "{text}");
    assert_eq!(refused("web", "timeout"), Some(1.0), "{text}");
    assert_eq!(refused("tcp", "untrusted"), Some(1.0), "{text}");
}

#[tokio::test]
async fn the_admin_api_shows_and_sets_the_keys_and_refuses_an_empty_trust_list_by_path() {
    let net = Net::new();
    let backend = Backend::start(net.free_addr(1), "a").await;
    let (web, admin) = (net.free_addr(10), net.free_addr(11));
    let password = "Pw-proxy-protocol";
    let config = format!(
        "{BALLAST_SECTION}[admin]\nlisten = \"{admin}\"\npasswordfile = \"admin.pass\"\n\n{}{}",
        group("pool", "HTTP", &[backend.addr()], ""),
        vserver("web", "HTTP", web, "pool", ""),
    );
    let ballast = BALLAST
        .start_with_files(
            &config,
            &[("admin.pass", format!("{password}\n").as_bytes())],
        )
        .await;
    let nitro = Nitro::new(admin, "nsroot", password);
    let forged = b"PROXY TCP4 192.0.2.1 127.0.0.1 1234 80\r\nGET / HTTP/1.1\r\nHost: web\r\nConnection: close\r\n\r\n";

    // Off: a PROXY line is just a malformed request.
    let before = exchange_from(net.ip(55), web, forged).await;
    assert_eq!(before.status(), Some(400), "{}", before.text());
    assert!(
        !before.text().contains("does not trust"),
        "{}",
        before.text()
    );

    let empty = nitro
        .put(
            "config/lbvserver",
            json!({"lbvserver": {"name": "web", "proxyprotocol": "ENABLED"}}),
        )
        .await;
    assert_eq!(empty.status, StatusCode::BAD_REQUEST, "{:?}", empty.body);
    assert!(
        empty.message().contains("proxyprotocoltrusted"),
        "{:?}",
        empty.body
    );

    let trusted = net.ip(3).to_string();
    let on = nitro
        .put(
            "config/lbvserver",
            json!({"lbvserver": {"name": "web", "proxyprotocol": "ENABLED", "proxyprotocoltrusted": [trusted]}}),
        )
        .await;
    assert_eq!(on.status, StatusCode::OK, "{:?}", on.body);
    let shown = nitro.get("config/lbvserver/web").await;
    assert_eq!(
        shown.body["lbvserver"][0]["proxyprotocol"], "ENABLED",
        "{:?}",
        shown.body
    );
    assert_eq!(
        shown.body["lbvserver"][0]["proxyprotocoltrusted"],
        json!([trusted])
    );

    let sent = nitro
        .put(
            "config/servicegroup",
            json!({"servicegroup": {"servicegroupname": "pool", "proxyprotocol": "ENABLED", "proxyprotocoltxversion": "V2"}}),
        )
        .await;
    assert_eq!(sent.status, StatusCode::OK, "{:?}", sent.body);
    let group = nitro.get("config/servicegroup/pool").await;
    assert_eq!(
        group.body["servicegroup"][0]["proxyprotocoltxversion"], "V2",
        "{:?}",
        group.body
    );

    // On: the same forged line from an untrusted source is refused as such.
    let after = exchange_from(net.ip(55), web, forged).await;
    assert_eq!(after.status(), Some(400), "{}", after.text());
    assert!(after.text().contains("does not trust"), "{}", after.text());

    // Saved, the keys are in the file as written, and that file starts Ballast the same way.
    let saved = nitro
        .post("config/nsconfig?action=save", json!({"nsconfig": {}}))
        .await;
    assert_eq!(saved.status, StatusCode::OK, "{:?}", saved.body);
    let text = std::fs::read_to_string(ballast.config_path()).unwrap();
    let file: toml::Table = text.parse().unwrap();
    let saved_vserver = &file["lbvserver"][0];
    assert_eq!(
        saved_vserver["proxyprotocol"].as_str(),
        Some("ENABLED"),
        "{text}"
    );
    assert_eq!(
        saved_vserver["proxyprotocoltrusted"].as_array().unwrap()[0].as_str(),
        Some(trusted.as_str()),
        "{text}"
    );
    let saved_group = &file["servicegroup"][0];
    assert_eq!(
        saved_group["proxyprotocoltxversion"].as_str(),
        Some("V2"),
        "{text}"
    );
    let (code, _, stderr) = BALLAST.check_file(ballast.config_path());
    assert_eq!(code, 0, "{stderr}");
}

#[tokio::test]
async fn maxclientpersource_counts_the_address_in_the_header_not_the_balancer() {
    let net = Net::new();
    let backend = Backend::start(net.free_addr(1), "a").await;
    let web = net.free_addr(10);
    let balancer = net.ip(3);
    let extra = format!(
        "proxyprotocol = \"ENABLED\"\nproxyprotocoltrusted = [\"{balancer}\"]\nmaxclientpersource = 1"
    );
    let config = format!(
        "{BALLAST_SECTION}{}{}",
        group("pool", "HTTP", &[backend.addr()], ""),
        vserver("web", "HTTP", web, "pool", &extra),
    );
    let _ballast = BALLAST.start(&config).await;
    let request = |source: &str, connection: &str| {
        format!(
            "PROXY TCP4 {source} 127.0.0.1 40000 80\r\nGET / HTTP/1.1\r\nHost: web\r\nConnection: {connection}\r\n\r\n"
        )
    };

    // One client behind the balancer holds its connection open (keep-alive).
    let mut first = connect_tcp(web, Some(balancer)).await.unwrap();
    first
        .write_all(request("192.0.2.1", "keep-alive").as_bytes())
        .await
        .unwrap();
    let mut head = [0u8; 12];
    first.read_exact(&mut head).await.unwrap();
    assert_eq!(&head, b"HTTP/1.1 200");

    // Another client behind the same balancer is admitted; the first one's second connection
    // is not.
    let other = exchange_from(balancer, web, request("192.0.2.2", "close").as_bytes()).await;
    assert_eq!(other.status(), Some(200), "{}", other.text());
    let again = exchange_from(balancer, web, request("192.0.2.1", "close").as_bytes()).await;
    assert_eq!(again.status(), Some(503), "{}", again.text());
    drop(first);
}

#[tokio::test]
async fn a_csvserver_takes_the_header_and_switches_with_the_original_client() {
    let net = Net::new();
    let backend = Backend::start(net.free_addr(1), "a").await;
    let front = net.free_addr(10);
    let balancer = net.ip(3);
    let config = format!(
        "{BALLAST_SECTION}{}{}[[csvserver]]\nname = \"front\"\nservicetype = \"HTTP\"\nipv46 = \"{}\"\nport = {}\n\
         defaultlbvserver = \"hidden\"\nproxyprotocol = \"ENABLED\"\nproxyprotocoltrusted = [\"{balancer}\"]\n",
        group("pool", "HTTP", &[backend.addr()], ""),
        vserver("hidden", "HTTP", "0.0.0.0:0".parse().unwrap(), "pool", ""),
        front.ip(),
        front.port(),
    );
    let _ballast = BALLAST.start(&config).await;
    let get = b"GET / HTTP/1.1\r\nHost: web\r\nConnection: close\r\n\r\n";

    let proxied = [&b"PROXY TCP4 192.0.2.9 127.0.0.1 1234 80\r\n"[..], get].concat();
    let ok = exchange_from(balancer, front, &proxied).await;
    assert_eq!(ok.status(), Some(200), "{}", ok.text());
    assert_eq!(backend.last_forwarded_for(), Some("192.0.2.9".to_owned()));

    let forged = exchange_from(net.ip(55), front, &proxied).await;
    assert_eq!(forged.status(), Some(400), "{}", forged.text());
    assert_eq!(backend.requests(), 1);
}

#[tokio::test]
async fn an_http_group_that_sends_headers_keeps_a_member_connection_per_client_a_plain_one_shares()
{
    let net = Net::new();
    let nginx = Nginx::start(net.free_addr(1), Some(net.free_addr(2))).await;
    let plain = nginx.plain.unwrap();
    let (proxied, pooled) = (net.free_addr(10), net.free_addr(11));
    let config = format!(
        "{BALLAST_SECTION}{}{}{}{}",
        group(
            "pp",
            "HTTP",
            &[nginx.listen],
            "proxyprotocol = \"ENABLED\"\nproxyprotocoltxversion = \"V2\""
        ),
        group("plain", "HTTP", &[plain], ""),
        vserver("proxied", "HTTP", proxied, "pp", ""),
        vserver("pooled", "HTTP", pooled, "plain", ""),
    );
    let _ballast = BALLAST.start(&config).await;

    // Two clients take turns, each on its own keep-alive connection.
    const ROUNDS: usize = 100;
    let mut took = Vec::new();
    for vserver in [proxied, pooled] {
        let mut a = H1::connect_from(net.ip(55), vserver).await.unwrap();
        let mut b = H1::connect_from(net.ip(56), vserver).await.unwrap();
        let started = tokio::time::Instant::now();
        for _ in 0..ROUNDS {
            for (client, host) in [(&mut a, 55), (&mut b, 56)] {
                let reply = client.get("/").await.unwrap();
                let expected = if vserver == proxied {
                    format!("from nginx: {}\n", net.ip(host))
                } else {
                    "from nginx: plain\n".to_owned()
                };
                assert_eq!(reply.text(), expected);
            }
        }
        took.push(started.elapsed() / (2 * ROUNDS) as u32);
    }
    println!(
        "{} requests from two clients taking turns: {:?} per request with PROXY headers (a member \
         connection kept per client), {:?} through the shared pool",
        2 * ROUNDS,
        took[0],
        took[1]
    );

    // nginx's connection serial numbers: with headers, one connection per client, carrying
    // only that client's address; without, the two clients' requests share one connection.
    let lines = nginx.wait_access_lines(4 * ROUNDS).await;
    let fields = |line: &String| -> (String, String) {
        let fields: Vec<&str> = line.split(' ').collect();
        (fields[0].to_owned(), fields[3].to_owned())
    };
    let mut by_connection = std::collections::BTreeMap::<String, Vec<String>>::new();
    for (address, connection) in lines.iter().filter(|l| !l.starts_with('-')).map(fields) {
        by_connection.entry(connection).or_default().push(address);
    }
    assert_eq!(by_connection.len(), 2, "{lines:?}");
    for addresses in by_connection.values() {
        assert_eq!(addresses.len(), ROUNDS, "{lines:?}");
        assert!(
            addresses.iter().all(|a| *a == addresses[0]),
            "{addresses:?}"
        );
    }
    let mut pooled_connections: Vec<String> = lines
        .iter()
        .filter(|l| l.starts_with('-'))
        .map(|l| fields(l).1)
        .collect();
    pooled_connections.dedup();
    assert_eq!(pooled_connections.len(), 1, "{lines:?}");
}

#[tokio::test]
async fn sourceiphash_balances_on_the_address_in_the_header() {
    let net = Net::new();
    let a = Backend::start(net.free_addr(1), "a").await;
    let b = Backend::start(net.free_addr(2), "b").await;
    let web = net.free_addr(10);
    let balancer = net.ip(3);
    let config = format!(
        "{BALLAST_SECTION}{}{}",
        group("pool", "HTTP", &[a.addr(), b.addr()], ""),
        vserver(
            "web",
            "HTTP",
            web,
            "pool",
            &format!("proxyprotocol = \"ENABLED\"\nproxyprotocoltrusted = [\"{balancer}\"]")
        )
        .replace("ROUNDROBIN", "SOURCEIPHASH"),
    );
    let _ballast = BALLAST.start(&config).await;
    let through = |client: u8| {
        format!(
            "PROXY TCP4 192.0.2.{client} 127.0.0.1 40000 80\r\nGET / HTTP/1.1\r\nHost: web\r\nConnection: close\r\n\r\n"
        )
    };

    // Every connection comes from the balancer; the clients behind it still spread, and each
    // one keeps its member.
    let mut first_pick = Vec::new();
    for client in 1..=20u8 {
        let reply = exchange_from(balancer, web, through(client).as_bytes()).await;
        assert_eq!(reply.status(), Some(200), "{}", reply.text());
        first_pick.push(reply.text().ends_with('a'));
    }
    assert!(first_pick.iter().any(|&on_a| on_a), "{first_pick:?}");
    assert!(first_pick.iter().any(|&on_a| !on_a), "{first_pick:?}");
    for client in 1..=20u8 {
        let reply = exchange_from(balancer, web, through(client).as_bytes()).await;
        let on_a = reply.text().ends_with('a');
        assert_eq!(on_a, first_pick[usize::from(client) - 1], "client {client}");
    }
}

#[tokio::test]
async fn monitors_of_a_group_that_sends_headers_send_one_too_so_its_members_come_up() {
    let net = Net::new();
    let nginx = Nginx::start(net.free_addr(1), None).await;
    let web = net.free_addr(10);
    let monitors = "[[lbmonitor]]\nmonitorname = \"health\"\ntype = \"HTTP\"\nhttprequest = \"GET /healthz\"\n\
                    respcode = [\"200\"]\ninterval = \"200ms\"\nresptimeout = \"150ms\"\n\n\
                    [[lbmonitor]]\nmonitorname = \"tcp\"\ntype = \"TCP\"\ninterval = \"200ms\"\nresptimeout = \"150ms\"\n\n";
    let config = format!(
        "{BALLAST_SECTION}{monitors}{}{}{}{}",
        group(
            "pp",
            "HTTP",
            &[nginx.listen],
            "proxyprotocol = \"ENABLED\"\nmonitor = [\"health\"]"
        ),
        group(
            "pp-tcp",
            "TCP",
            &[nginx.listen],
            "proxyprotocol = \"ENABLED\"\nproxyprotocoltxversion = \"V2\"\nmonitor = [\"tcp\", \"health\"]"
        ),
        group("plain", "HTTP", &[nginx.listen], "monitor = [\"health\"]"),
        vserver("web", "HTTP", web, "pp", ""),
    );
    let ballast = BALLAST.start(&config).await;
    let state = |group: &'static str, to: &'static str| {
        move |line: &Value| {
            ballast_tests::is_event(line, "member state changed")
                && ballast_tests::field(line, "servicegroup") == Some(group)
                && ballast_tests::field(line, "to") == Some(to)
        }
    };

    // With the header, nginx answers the probes: UP. Without it, nginx drops them: DOWN.
    for group in ["pp", "pp-tcp"] {
        let up = ballast.wait_for_log(state(group, "UP"), WAIT).await;
        assert!(up.is_some(), "{group}: {}", ballast.log_text());
    }
    let down = ballast.wait_for_log(state("plain", "DOWN"), WAIT).await;
    assert!(down.is_some(), "{}", ballast.log_text());

    let mut client = H1::connect_from(net.ip(55), web).await.unwrap();
    let reply = client.get("/").await.unwrap();
    assert_eq!(reply.text(), format!("from nginx: {}\n", net.ip(55)));
    // The probes named their own connection's address.
    let probes: Vec<String> = nginx
        .access_lines()
        .into_iter()
        .filter(|line| line.ends_with("\"GET /healthz HTTP/1.1\""))
        .collect();
    assert!(!probes.is_empty());
    assert!(
        probes.iter().all(|line| !line.starts_with('-')),
        "{probes:?}"
    );
}
