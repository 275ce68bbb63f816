//! The admin API against hostile input, through real HTTP on loopback: a request without
//! credentials is refused before its body is read, a body over the limit gets `413` before the
//! client has sent it, deep JSON gets a clear `400`, and a thousand parallel password guesses
//! from one address get no more tries than `maxloginattempts`.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::time::Duration;

use ballast_tests::nitro::{Credentials, Nitro};
use ballast_tests::raw::read_until_closed;
use ballast_tests::{BALLAST_SECTION, Backend, Ballast, Binary, Net, get, members_toml};
use http::{Method, StatusCode};
use serde_json::{Value, json};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

/// The `ballast` binary cargo built for this test run.
const BALLAST: Binary = Binary::new(env!("CARGO_BIN_EXE_ballast"));

const PASSWORD: &str = "Pw-4b1d7c2e-hardening";
/// 10 MB: what a client claims to send.
const TEN_MB: usize = 10 * 1024 * 1024;

struct Admin {
    ballast: Ballast,
    nitro: Nitro,
    vserver: SocketAddr,
    _backend: Backend,
}

/// Ballast with the admin API (`admin_extra` added to `[admin]`) and one HTTP vserver.
async fn start(net: &Net, admin_extra: &str) -> Admin {
    let backend = Backend::start(net.free_addr(1), "a").await;
    let admin = net.free_addr(250);
    let vserver = net.free_addr(251);
    let config = format!(
        r#"{BALLAST_SECTION}[admin]
listen = "{admin}"
passwordfile = "admin.pass"
{admin_extra}

[[servicegroup]]
servicegroupname = "pool"
servicetype = "HTTP"
{}

[[lbvserver]]
name = "web"
servicetype = "HTTP"
ipv46 = "{}"
port = {}
servicegroupname = "pool"
"#,
        members_toml(&[backend.addr()]),
        vserver.ip(),
        vserver.port()
    );
    let ballast = BALLAST
        .start_with_files(
            &config,
            &[("admin.pass", format!("{PASSWORD}\n").as_bytes())],
        )
        .await;
    Admin {
        ballast,
        nitro: Nitro::new(admin, "nsroot", PASSWORD),
        vserver,
        _backend: backend,
    }
}

/// Sends the head of a `POST` that announces `TEN_MB` and then only `sent` bytes of it, and
/// reads what comes back while the rest is still unsent.
async fn post_announcing_ten_mb(admin: SocketAddr, headers: &str, sent: usize) -> (u16, Value) {
    let mut stream = TcpStream::connect(admin).await.expect("connect");
    let head = format!(
        "POST /nitro/v1/config/lbvserver HTTP/1.1\r\nhost: {admin}\r\n\
         content-type: application/json\r\ncontent-length: {TEN_MB}\r\n{headers}\r\n"
    );
    stream.write_all(head.as_bytes()).await.expect("send head");
    stream
        .write_all(&vec![b' '; sent])
        .await
        .expect("send part of the body");
    let reply = read_until_closed(&mut stream, Duration::from_secs(5)).await;
    let status = reply.status().unwrap_or_else(|| {
        panic!(
            "no answer while {} of {TEN_MB} bytes were unsent: {:?}",
            TEN_MB - sent,
            reply.text()
        )
    });
    let text = reply.text();
    let body = text.split_once("\r\n\r\n").map_or("", |(_, body)| body);
    (status, serde_json::from_str(body).unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_without_credentials_is_refused_before_its_body_is_read() {
    let net = Net::new();
    let admin = start(&net, "").await;
    let (status, body) = post_announcing_ten_mb(admin.nitro.addr, "", 16 * 1024).await;
    assert_eq!(status, 401, "{body}");
    assert_eq!(body["errorcode"], 444, "{body}");
    // Wrong credentials are refused the same way, before the body.
    let wrong = "x-nitro-user: nsroot\r\nx-nitro-pass: not-it\r\n";
    let (status, body) = post_announcing_ten_mb(admin.nitro.addr, wrong, 16 * 1024).await;
    assert_eq!(status, 401, "{body}");
    assert_eq!(body["errorcode"], 354, "{body}");
    assert_eq!(
        get(admin.vserver, "/").await.unwrap().status,
        StatusCode::OK
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ten_megabyte_body_gets_413_before_it_is_sent_whole() {
    let net = Net::new();
    let admin = start(&net, "").await;
    let credentials = format!("x-nitro-user: nsroot\r\nx-nitro-pass: {PASSWORD}\r\n");
    let (status, body) = post_announcing_ten_mb(admin.nitro.addr, &credentials, 64 * 1024).await;
    assert_eq!(status, 413, "{body}");
    assert_eq!(body["errorcode"], 1502, "{body}");
    assert_eq!(
        body["message"], "request body is larger than 1048576 bytes",
        "{body}"
    );

    // Without a length (chunked), the body is read up to the limit and no further: the answer
    // comes while the client is still sending.
    let mut stream = TcpStream::connect(admin.nitro.addr).await.unwrap();
    let head = format!(
        "POST /nitro/v1/config/lbvserver HTTP/1.1\r\nhost: x\r\ntransfer-encoding: chunked\r\n\
         {credentials}\r\n"
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let (mut reader, mut writer) = stream.into_split();
    let sent = Arc::new(AtomicUsize::new(0));
    let counted = sent.clone();
    let sender = tokio::spawn(async move {
        let chunk = format!("4000\r\n{}\r\n", " ".repeat(0x4000));
        while counted.load(Relaxed) < TEN_MB {
            if writer.write_all(chunk.as_bytes()).await.is_err() {
                return;
            }
            counted.fetch_add(0x4000, Relaxed);
        }
    });
    let mut data = Vec::new();
    let mut buffer = [0u8; 4096];
    let sent_when_answered = loop {
        use tokio::io::AsyncReadExt;
        let n = tokio::time::timeout(Duration::from_secs(10), reader.read(&mut buffer))
            .await
            .expect("an answer within 10 s")
            .unwrap_or(0);
        let before = sent.load(Relaxed);
        data.extend_from_slice(&buffer[..n]);
        if n == 0 || data.windows(4).any(|w| w == b"\r\n\r\n") {
            break before;
        }
    };
    sender.abort();
    assert_eq!(
        ballast_tests::raw::status_code(&data),
        Some(413),
        "{}",
        String::from_utf8_lossy(&data)
    );
    assert!(
        sent_when_answered < TEN_MB,
        "the answer came only after all {TEN_MB} bytes were sent"
    );
    assert_eq!(
        get(admin.vserver, "/").await.unwrap().status,
        StatusCode::OK
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deeply_nested_json_gets_a_clear_400() {
    let net = Net::new();
    let admin = start(&net, "").await;
    let deep = format!(
        "{{\"lbvserver\": {}{}}}",
        "[".repeat(100_000),
        "]".repeat(100_000)
    );
    let reply = admin
        .nitro
        .call(Method::POST, "config/lbvserver", Some(deep.into_bytes()))
        .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{:?}", reply.body);
    assert_eq!(reply.errorcode(), 1501, "{:?}", reply.body);
    assert_eq!(
        reply.message(),
        "JSON nested deeper than 32 levels; a NITRO body needs only a few"
    );
    // A body within the limit is still taken.
    let ok = admin
        .nitro
        .put(
            "config/lbvserver",
            json!({"lbvserver": {"name": "web", "lbmethod": "LEASTCONNECTION"}}),
        )
        .await;
    assert_eq!(ok.status, StatusCode::OK, "{:?}", ok.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_parallel_guesses_get_maxloginattempts_tries_then_a_lockout() {
    let net = Net::new();
    let admin = start(&net, "maxloginattempts = 5\nfailedlogintimeout = \"15s\"").await;
    let anonymous = admin.nitro.with(Credentials::None);
    let guesses: Vec<_> = (0..1000)
        .map(|n| {
            let anonymous = anonymous.clone();
            tokio::spawn(async move {
                let guess =
                    json!({"login": {"username": "nsroot", "password": format!("guess-{n}")}});
                let reply = anonymous.post("config/login", guess).await;
                (reply.status, reply.errorcode())
            })
        })
        .collect();
    let mut refused = 0;
    let mut locked_out = 0;
    for guess in guesses {
        match guess.await.expect("the guess ran") {
            (StatusCode::UNAUTHORIZED, 354) => refused += 1,
            (StatusCode::TOO_MANY_REQUESTS, 1506) => locked_out += 1,
            other => panic!("unexpected answer to a wrong password: {other:?}"),
        }
    }
    assert_eq!(
        (refused, locked_out),
        (5, 995),
        "only maxloginattempts guesses are checked"
    );

    // Now even the right password is refused, as a login and as headers ...
    let right = json!({"login": {"username": "nsroot", "password": PASSWORD}});
    let login = anonymous.post("config/login", right.clone()).await;
    assert_eq!(
        (login.status, login.errorcode()),
        (StatusCode::TOO_MANY_REQUESTS, 1506),
        "{:?}",
        login.body
    );
    assert!(
        login
            .message()
            .starts_with("too many failed logins from 127.0.0.1; locked out for "),
        "{:?}",
        login.message()
    );
    let headers = admin.nitro.get("config/lbvserver").await;
    assert_eq!(headers.status, StatusCode::TOO_MANY_REQUESTS);

    // ... until the lockout is over.
    let seconds: f64 = login
        .message()
        .rsplit("for ")
        .next()
        .and_then(|rest| rest.split(' ').next())
        .and_then(|n| n.parse().ok())
        .expect("the lockout says how long it lasts");
    assert!(seconds <= 15.0, "{}", login.message());
    tokio::time::sleep(Duration::from_secs_f64(seconds)).await;
    let login = anonymous.post("config/login", right).await;
    assert_eq!(login.status, StatusCode::CREATED, "{:?}", login.body);

    // The log says so without a line per guess.
    let logs = admin.ballast.logs();
    let count = |message: &str| {
        logs.iter()
            .filter(|line| ballast_tests::is_event(line, message))
            .count()
    };
    assert_eq!(
        count("admin login locked out"),
        1,
        "{}",
        admin.ballast.log_text()
    );
    assert!(
        (1..=3).contains(&count("admin login failed")),
        "failures are logged at most once a second:\n{}",
        admin.ballast.log_text()
    );
    assert!(!admin.ballast.log_text().contains(PASSWORD));
}
