//! Scraping `/metrics` and checking it with real Prometheus tooling: `promtool check metrics`
//! (text format 0.0.4) and Python `prometheus_client`'s strict OpenMetrics parser, both
//! installed by `scripts/test.sh` (`.tools/promtool`, `.venv`).

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use bytes::Bytes;
use http::{Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

/// The `Accept` header Prometheus sends when it prefers OpenMetrics.
pub const OPENMETRICS_ACCEPT: &str =
    "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5";

/// GET /metrics with an optional `Accept`; returns (content type, body).
pub async fn scrape(addr: SocketAddr, accept: Option<&str>) -> (String, String) {
    let stream = TcpStream::connect(addr)
        .await
        .expect("the metrics listener accepts");
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .expect("HTTP/1.1 with the metrics listener");
    tokio::spawn(connection);
    let mut request = Request::get("/metrics").header("host", addr.to_string());
    if let Some(accept) = accept {
        request = request.header("accept", accept);
    }
    let request = request
        .body(Full::new(Bytes::new()))
        .expect("a valid request");
    let response = sender
        .send_request(request)
        .await
        .expect("/metrics answers");
    assert_eq!(response.status(), StatusCode::OK);
    let content_type = response.headers()["content-type"]
        .to_str()
        .unwrap_or("")
        .to_owned();
    let body = response
        .into_body()
        .collect()
        .await
        .expect("a whole body")
        .to_bytes();
    (content_type, String::from_utf8_lossy(&body).into_owned())
}

/// Runs `promtool check metrics` on a text-format exposition; panics with its report on failure.
pub fn assert_promtool_accepts(text: &str) {
    let (ok, report) = run_with_stdin(&promtool(), &["check", "metrics"], text);
    assert!(ok, "promtool check metrics failed:\n{report}\n---\n{text}");
}

/// Parses an OpenMetrics exposition with `prometheus_client`'s strict parser; returns the number
/// of metric families, or panics with the parser's complaint.
pub fn assert_openmetrics_parses(text: &str) -> usize {
    let script = "import sys\nfrom prometheus_client.openmetrics.parser import text_string_to_metric_families as parse\nprint(len(list(parse(sys.stdin.read()))))";
    let (ok, report) = run_with_stdin(&python(), &["-c", script], text);
    assert!(
        ok,
        "the OpenMetrics parser rejected the exposition:\n{report}\n---\n{text}"
    );
    report.trim().parse().expect("a family count")
}

/// The value of the series `name{labels}` (written exactly as exposed) in a text exposition.
pub fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines().find_map(|line| {
        line.strip_prefix(series)?
            .strip_prefix(' ')?
            .trim()
            .parse()
            .ok()
    })
}

fn promtool() -> PathBuf {
    let local = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../.tools/promtool");
    if local.exists() {
        return local;
    }
    if Command::new("promtool")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
    {
        return PathBuf::from("promtool");
    }
    panic!("promtool is not installed; run scripts/test.sh (it extracts it into .tools/)");
}

fn python() -> PathBuf {
    let venv = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../.venv/bin/python");
    assert!(
        venv.exists(),
        "{} is missing; run scripts/test.sh (it creates the virtualenv)",
        venv.display()
    );
    venv
}

fn run_with_stdin(program: &PathBuf, args: &[&str], input: &str) -> (bool, String) {
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", program.display()));
    child
        .stdin
        .take()
        .expect("stdin is piped")
        .write_all(input.as_bytes())
        .expect("write stdin");
    let output = child.wait_with_output().expect("wait for the checker");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.success(), text)
}
