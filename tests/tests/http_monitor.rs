//! `HTTP` and `HTTP-ECV` monitors through `ballast run`, probing members that are Python's
//! `http.server` (plain, and behind `ssl` with a certificate no client trusts):
//!
//! - `HTTP-ECV`: a member whose body does not contain `recv` goes DOWN, and the log line and
//!   `stat`'s `lastfailurereason` say `response body did not contain "..."`; a member whose
//!   body does stays UP and gets the requests; `customheaders` reach the member (`Host` too).
//! - `secure = "YES"`: a member's HTTPS health port with a self-signed certificate is probed
//!   over TLS, unverified, with the `customheaders` Host.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ballast_tests::nitro::Nitro;
use ballast_tests::{
    BALLAST_SECTION, Binary, Net, TestCa, field, get, member_state_changed, members_toml,
    wait_until,
};
use http::StatusCode;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// The `ballast` binary cargo built for this test run.
const BALLAST: Binary = Binary::new(env!("CARGO_BIN_EXE_ballast"));

const PASSWORD: &str = "Pw-http-monitor-1";
const WAIT: Duration = Duration::from_secs(10);

/// Answers every GET `200` with the body given; prints each request's path and headers as a
/// JSON line. With a certificate and key it speaks only TLS.
const MEMBER: &str = r#"
import json, ssl, sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

host, port, body = sys.argv[1], int(sys.argv[2]), sys.argv[3].encode()

class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self):
        print(json.dumps({"path": self.path, "headers": {k.lower(): v for k, v in self.headers.items()}}), flush=True)
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass

server = ThreadingHTTPServer((host, port), Handler)
if len(sys.argv) > 5:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(sys.argv[4], sys.argv[5])
    server.socket = context.wrap_socket(server.socket, server_side=True)
print("listening", flush=True)
server.serve_forever()
"#;

/// A Python `http.server` member and the requests it has seen.
struct Member {
    addr: SocketAddr,
    seen: Arc<Mutex<Vec<Value>>>,
    _child: Child,
}

impl Member {
    /// Plain HTTP, answering `body`.
    async fn start(addr: SocketAddr, body: &str) -> Member {
        Member::spawn(addr, body, &[]).await
    }

    /// HTTPS only, with `cert_pem`/`key_pem` written under `dir`.
    async fn start_tls(
        addr: SocketAddr,
        body: &str,
        dir: &Path,
        cert_pem: &str,
        key_pem: &str,
    ) -> Member {
        let (cert, key) = (dir.join("member.pem"), dir.join("member.key"));
        std::fs::write(&cert, cert_pem).expect("write the member's certificate");
        std::fs::write(&key, key_pem).expect("write the member's key");
        Member::spawn(addr, body, &[cert, key]).await
    }

    async fn spawn(addr: SocketAddr, body: &str, tls: &[PathBuf]) -> Member {
        let python = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".venv/bin/python");
        assert!(
            python.exists(),
            "{} is missing; run scripts/test.sh",
            python.display()
        );
        let mut child = Command::new(python)
            .arg("-c")
            .arg(MEMBER)
            .arg(addr.ip().to_string())
            .arg(addr.port().to_string())
            .arg(body)
            .args(tls)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .expect("start the Python member");
        let mut lines = BufReader::new(child.stdout.take().expect("piped")).lines();
        let ready = tokio::time::timeout(WAIT, lines.next_line()).await;
        assert!(
            matches!(&ready, Ok(Ok(Some(line))) if line == "listening"),
            "the member on {addr} did not start: {ready:?}"
        );
        let seen = Arc::new(Mutex::new(Vec::new()));
        let record = seen.clone();
        tokio::spawn(async move {
            while let Ok(Some(line)) = lines.next_line().await {
                if let Ok(request) = serde_json::from_str(&line) {
                    record.lock().expect("lock").push(request);
                }
            }
        });
        Member {
            addr,
            seen,
            _child: child,
        }
    }

    fn requests(&self) -> Vec<Value> {
        self.seen.lock().expect("lock").clone()
    }
}

/// One `HTTP` vserver over servicegroup `pool` (`members`, bound to monitor `check`), with an
/// admin API; `monitor` is the body of `[[lbmonitor]]` after its name.
fn config(web: SocketAddr, admin: SocketAddr, members: &[SocketAddr], monitor: &str) -> String {
    format!(
        r#"{BALLAST_SECTION}[admin]
listen = "{admin}"
passwordfile = "admin.pass"

[[lbmonitor]]
monitorname = "check"
interval = "500ms"
resptimeout = "300ms"
retries = 2
{monitor}

[[servicegroup]]
servicegroupname = "pool"
servicetype = "HTTP"
monitor = ["check"]
{}

[[lbvserver]]
name = "web"
servicetype = "HTTP"
ipv46 = "{}"
port = {}
lbmethod = "ROUNDROBIN"
servicegroupname = "pool"
"#,
        members_toml(members),
        web.ip(),
        web.port()
    )
}

/// Each member's `stat` entry, by `ip:port`.
async fn member_stats(nitro: &Nitro) -> Vec<(String, Value)> {
    let stat = nitro.get("stat/servicegroup/pool?statbindings=yes").await;
    assert_eq!(stat.status, StatusCode::OK, "{:?}", stat.body);
    stat.body["servicegroup"][0]["servicegroupmember"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .map(|m| {
            (
                format!("{}:{}", m["ip"].as_str().unwrap_or(""), m["port"]),
                m,
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_http_ecv_body_mismatch_marks_a_member_down_and_says_why() {
    let net = Net::new();
    let good = Member::start(net.free_addr(1), "status: ok, 3 workers").await;
    let bad = Member::start(net.free_addr(2), "status: degraded").await;
    let (web, admin) = (net.free_addr(100), net.free_addr(101));
    let monitor = r#"type = "HTTP-ECV"
send = "GET /status"
recv = "status: ok"
customheaders = "Host: app.example\r\nX-Probe: ballast\r\n""#;
    let ballast = BALLAST
        .start_with_files(
            &config(web, admin, &[good.addr, bad.addr], monitor),
            &[("admin.pass", format!("{PASSWORD}\n").as_bytes())],
        )
        .await;
    let nitro = Nitro::new(admin, "nsroot", PASSWORD);

    let down = ballast
        .wait_for_log(member_state_changed(bad.addr, "DOWN"), WAIT)
        .await
        .expect("the member whose body lacks `recv` never went DOWN");
    let expected = "monitor check: response body did not contain \"status: ok\"";
    assert_eq!(field(&down, "reason"), Some(expected), "{down}");
    ballast
        .wait_for_log(member_state_changed(good.addr, "UP"), WAIT)
        .await
        .expect("the member whose body has `recv` never came UP");

    let stats = member_stats(&nitro).await;
    let of = |addr: SocketAddr| {
        stats
            .iter()
            .find(|(key, _)| *key == addr.to_string())
            .map(|(_, m)| m.clone())
            .unwrap_or_else(|| panic!("{addr} not in stat: {stats:?}"))
    };
    assert_eq!(of(bad.addr)["state"], "DOWN");
    assert_eq!(of(bad.addr)["lastfailurereason"], json!(expected));
    assert_eq!(of(good.addr)["state"], "UP");
    assert_eq!(of(good.addr)["lastfailurereason"], Value::Null);

    // Every request goes to the member that passes.
    for _ in 0..4 {
        let reply = get(web, "/").await.expect("a request through the vserver");
        assert_eq!(reply.status, StatusCode::OK);
        assert_eq!(reply.text(), "status: ok, 3 workers");
    }

    // The probes carried `send`'s path and the custom headers, `Host` included.
    let probe = good
        .requests()
        .into_iter()
        .find(|r| r["path"] == "/status")
        .expect("the member saw no probe");
    assert_eq!(probe["headers"]["host"], "app.example", "{probe}");
    assert_eq!(probe["headers"]["x-probe"], "ballast", "{probe}");
    assert_eq!(probe["headers"]["user-agent"], "ballast-monitor", "{probe}");

    // Through the admin API: the monitor now expects what only the other member says.
    let shown = nitro.get("config/lbmonitor/check").await;
    assert_eq!(
        shown.body["lbmonitor"][0]["type"], "HTTP-ECV",
        "{:?}",
        shown.body
    );
    assert_eq!(
        shown.body["lbmonitor"][0]["recv"], "status: ok",
        "{:?}",
        shown.body
    );
    let mark = ballast.log_mark();
    let changed = nitro
        .put(
            "config/lbmonitor",
            json!({"lbmonitor": {"monitorname": "check", "recv": "degraded"}}),
        )
        .await;
    assert_eq!(changed.status, StatusCode::OK, "{:?}", changed.body);
    let down = ballast
        .wait_for_log_since(mark, member_state_changed(good.addr, "DOWN"), WAIT)
        .await
        .expect("the new recv did not take the other member DOWN");
    assert_eq!(
        field(&down, "reason"),
        Some("monitor check: response body did not contain \"degraded\""),
        "{down}"
    );
    ballast
        .wait_for_log_since(mark, member_state_changed(bad.addr, "UP"), WAIT)
        .await
        .expect("the member that now matches never came UP");
    let refused = nitro
        .put(
            "config/lbmonitor",
            json!({"lbmonitor": {"monitorname": "check", "secure": "ON"}}),
        )
        .await;
    assert_eq!(
        refused.status,
        StatusCode::BAD_REQUEST,
        "{:?}",
        refused.body
    );
    assert!(
        refused
            .message()
            .contains("lbmonitor `check`.secure: expected YES or NO, got `ON`"),
        "{:?}",
        refused.body
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_secure_monitor_probes_a_self_signed_https_port() {
    let net = Net::new();
    let dir = ballast_tests::TempDir::new("http-monitor-tls");
    let cert = TestCa::new().issue(&["member.internal"]);
    let member = Member::start(net.free_addr(1), "member").await;
    let health = Member::start_tls(
        net.free_addr(1),
        "healthy",
        dir.path(),
        &cert.cert_pem,
        &cert.key_pem,
    )
    .await;
    let (web, admin) = (net.free_addr(100), net.free_addr(101));
    let monitor = format!(
        r#"type = "HTTP-ECV"
send = "GET /healthz"
recv = "healthy"
secure = "YES"
destport = {}
customheaders = "Host: member.internal""#,
        health.addr.port()
    );
    let ballast = BALLAST
        .start_with_files(
            &config(web, admin, &[member.addr], &monitor),
            &[("admin.pass", format!("{PASSWORD}\n").as_bytes())],
        )
        .await;
    ballast
        .wait_for_log(member_state_changed(member.addr, "UP"), WAIT)
        .await
        .expect("the member never came UP through its HTTPS health port");
    assert!(
        wait_until(WAIT, || !health.requests().is_empty()).await,
        "the HTTPS port saw no probe"
    );
    let probe = health.requests().remove(0);
    assert_eq!(probe["path"], "/healthz");
    assert_eq!(probe["headers"]["host"], "member.internal", "{probe}");
    let reply = get(web, "/").await.expect("a request through the vserver");
    assert_eq!(
        (reply.status, reply.text()),
        (StatusCode::OK, "member".into())
    );
}
