//! `[accesslog]` through `ballast run`: one line per HTTP request and per TCP connection with
//! the member, status, bytes, timings and why it ended (a `502`/`504` names the member that
//! failed); SIGUSR1 reopens the file after logrotate renamed it; and a log nobody reads (a
//! named pipe) drops lines and counts them in `/metrics` while every request still succeeds
//! at once.

use std::path::{Path, PathBuf};
use std::time::Duration;

use ballast_tests::nitro::Nitro;
use ballast_tests::prom::{sample, scrape};
use ballast_tests::{
    BALLAST_SECTION, Backend, Binary, EchoBackend, H1, Net, get, is_event, members_toml, wait_until,
};
use http::StatusCode;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// The `ballast` binary cargo built for this test run.
const BALLAST: Binary = Binary::new(env!("CARGO_BIN_EXE_ballast"));

const WAIT: Duration = Duration::from_secs(10);

/// A config with one `HTTP` vserver `web` over the members `web_members` and the `[accesslog]`
/// body `accesslog`; `extra` is appended.
fn config(web: std::net::SocketAddr, web_members: &str, accesslog: &str, extra: &str) -> String {
    format!(
        r#"{BALLAST_SECTION}[accesslog]
{accesslog}

[[servicegroup]]
servicegroupname = "pool"
servicetype = "HTTP"
svrtimeout = "500ms"
{web_members}

[[lbvserver]]
name = "web"
servicetype = "HTTP"
ipv46 = "{}"
port = {}
lbmethod = "ROUNDROBIN"
servicegroupname = "pool"

{extra}
"#,
        web.ip(),
        web.port()
    )
}

/// The file's lines, once it has at least `count` of them (panics after [`WAIT`]).
async fn wait_for_lines(path: &Path, count: usize) -> Vec<String> {
    let read = || {
        std::fs::read_to_string(path)
            .unwrap_or_default()
            .lines()
            .map(str::to_owned)
            .collect::<Vec<_>>()
    };
    let found = wait_until(WAIT, || read().len() >= count).await;
    let lines = read();
    assert!(
        found,
        "{} has {} lines, expected {count}:\n{}",
        path.display(),
        lines.len(),
        lines.join("\n")
    );
    lines
}

/// A member that accepts connections, reads the request and closes without answering.
async fn hang_up_member(addr: std::net::SocketAddr) -> tokio::task::JoinHandle<()> {
    let listener = TcpListener::bind(addr)
        .await
        .expect("bind the hang-up member");
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let mut buffer = [0u8; 4096];
            let _ = stream.read(&mut buffer).await;
        }
    })
}

fn millis(line: &Value, field: &str) -> f64 {
    line[field]
        .as_f64()
        .unwrap_or_else(|| panic!("{field} is not a number in {line}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_request_and_connection_is_one_json_line_naming_member_status_bytes_timings_and_why()
{
    let net = Net::new();
    let a = Backend::start(net.free_addr(1), "a").await;
    let hang_up = net.free_addr(2);
    let _hang_up = hang_up_member(hang_up).await;
    let echo = EchoBackend::start(net.free_addr(3)).await;
    let (web, broken, tcp) = (net.free_addr(250), net.free_addr(251), net.free_addr(252));
    let extra = format!(
        r#"[[servicegroup]]
servicegroupname = "hangup"
servicetype = "HTTP"
{}

[[servicegroup]]
servicegroupname = "echo"
servicetype = "TCP"
{}

[[lbvserver]]
name = "broken"
servicetype = "HTTP"
ipv46 = "{}"
port = {}
lbmethod = "ROUNDROBIN"
servicegroupname = "hangup"

[[lbvserver]]
name = "tcp"
servicetype = "TCP"
ipv46 = "{}"
port = {}
lbmethod = "ROUNDROBIN"
servicegroupname = "echo"
"#,
        members_toml(&[hang_up]),
        members_toml(&[echo.addr()]),
        broken.ip(),
        broken.port(),
        tcp.ip(),
        tcp.port(),
    );
    let accesslog = "path = \"access.log\"\nformat = \"json\"";
    let ballast = BALLAST
        .start(&config(web, &members_toml(&[a.addr()]), accesslog, &extra))
        .await;
    let path = ballast.dir().join("access.log");

    let ok = get(web, "/hello?x=1").await.unwrap();
    assert_eq!((ok.status, ok.text()), (StatusCode::OK, "a".to_owned()));
    let mut lines = vec![wait_for_lines(&path, 1).await.remove(0)];
    let timeout = get(web, "/slow?ms=3000").await.unwrap();
    assert_eq!(timeout.status, StatusCode::GATEWAY_TIMEOUT);
    lines.push(wait_for_lines(&path, 2).await.remove(1));
    let hung_up = get(broken, "/").await.unwrap();
    assert_eq!(hung_up.status, StatusCode::BAD_GATEWAY);
    lines.push(wait_for_lines(&path, 3).await.remove(2));
    let mut stream = TcpStream::connect(tcp).await.unwrap();
    stream.write_all(b"ping").await.unwrap();
    let mut echoed = [0u8; 4];
    stream.read_exact(&mut echoed).await.unwrap();
    assert_eq!(&echoed, b"ping");
    drop(stream);
    lines.push(wait_for_lines(&path, 4).await.remove(3));

    let lines: Vec<Value> = lines
        .iter()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}")))
        .collect();
    let [ok, timeout, hung_up, tcp_line] = &lines[..] else {
        unreachable!("four lines")
    };

    let a_addr = a.addr().to_string();
    assert_eq!(ok["type"], "http");
    assert_eq!(ok["vserver"], "web");
    assert_eq!(ok["servicegroup"], "pool");
    assert_eq!(ok["member"], a_addr.as_str());
    assert_eq!(ok["method"], "GET");
    assert_eq!(ok["uri"], "/hello?x=1");
    assert_eq!(ok["version"], "HTTP/1.1");
    assert_eq!(ok["status"], 200);
    assert_eq!(ok["bytes_sent"], 1, "the body `a`");
    assert_eq!(ok["termination"], "ok");
    let client: std::net::SocketAddr = ok["client"].as_str().unwrap().parse().unwrap();
    assert!(client.ip().is_loopback(), "{ok}");
    assert!(ok["time"].as_str().unwrap().ends_with('Z'), "{ok}");
    let (queue, connect, first_byte, total) = (
        millis(ok, "queue_ms"),
        millis(ok, "connect_ms"),
        millis(ok, "first_byte_ms"),
        millis(ok, "total_ms"),
    );
    assert!(
        queue + connect + first_byte <= total + 0.002,
        "the parts fit in the total: {ok}"
    );

    // The 504: the member that did not answer in svrtimeout, and how long Ballast waited.
    assert_eq!(timeout["status"], 504);
    assert_eq!(timeout["member"], a_addr.as_str());
    assert_eq!(timeout["termination"], "member/timeout");
    assert_eq!(
        timeout["first_byte_ms"],
        Value::Null,
        "no response head came"
    );
    assert!(millis(timeout, "total_ms") >= 500.0, "{timeout}");

    // The 502: the member that hung up.
    assert_eq!(hung_up["vserver"], "broken");
    assert_eq!(hung_up["status"], 502);
    assert_eq!(hung_up["servicegroup"], "hangup");
    assert_eq!(hung_up["member"], hang_up.to_string().as_str());
    assert_eq!(hung_up["termination"], "member/no_response");

    assert_eq!(tcp_line["type"], "tcp");
    assert_eq!(tcp_line["vserver"], "tcp");
    assert_eq!(tcp_line["member"], echo.addr().to_string().as_str());
    assert_eq!(tcp_line["bytes_received"], 4);
    assert_eq!(tcp_line["bytes_sent"], 4);
    assert_eq!(tcp_line["termination"], "ok");
    assert!(millis(tcp_line, "connect_ms") <= millis(tcp_line, "total_ms"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_admin_api_turns_the_log_on_changes_its_format_refuses_bad_values_and_turns_it_off() {
    let net = Net::new();
    let a = Backend::start(net.free_addr(1), "a").await;
    let (web, admin) = (net.free_addr(250), net.free_addr(251));
    let password = "Pw-accesslog-api";
    let text = format!(
        r#"{BALLAST_SECTION}[admin]
listen = "{admin}"
passwordfile = "admin.pass"

[[servicegroup]]
servicegroupname = "pool"
servicetype = "HTTP"
{}

[[lbvserver]]
name = "web"
servicetype = "HTTP"
ipv46 = "{}"
port = {}
lbmethod = "ROUNDROBIN"
servicegroupname = "pool"
"#,
        members_toml(&[a.addr()]),
        web.ip(),
        web.port()
    );
    let ballast = BALLAST
        .start_with_files(&text, &[("admin.pass", format!("{password}\n").as_bytes())])
        .await;
    let nitro = Nitro::new(admin, "nsroot", password);
    let path = ballast.dir().join("access.log");

    let shown = nitro.get("config/accesslog").await;
    assert_eq!(shown.status, StatusCode::OK, "{:?}", shown.body);
    assert_eq!(
        shown.body["accesslog"]["enabled"], false,
        "{:?}",
        shown.body
    );
    assert_eq!(get(web, "/off").await.unwrap().status, StatusCode::OK);

    let on = nitro
        .put(
            "config/accesslog",
            json!({"accesslog": {"path": "access.log", "format": "json"}}),
        )
        .await;
    assert_eq!(on.status, StatusCode::OK, "{:?}", on.body);
    assert_eq!(get(web, "/on").await.unwrap().status, StatusCode::OK);
    let lines = wait_for_lines(&path, 1).await;
    let line: Value = serde_json::from_str(&lines[0]).expect("a JSON line");
    assert_eq!(line["uri"], "/on", "{line}");
    let shown = nitro.get("config/accesslog").await;
    assert_eq!(shown.body["accesslog"]["enabled"], true);
    assert_eq!(shown.body["accesslog"]["format"], "json");

    let bad = nitro
        .put("config/accesslog", json!({"accesslog": {"format": "xml"}}))
        .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST, "{:?}", bad.body);
    assert!(
        bad.message().contains("accesslog.format"),
        "{}",
        bad.message()
    );
    assert_eq!(
        nitro.get("config/accesslog").await.body["accesslog"]["format"],
        "json",
        "a refused change keeps the running log"
    );

    let text = nitro
        .put("config/accesslog", json!({"accesslog": {"format": null}}))
        .await;
    assert_eq!(text.status, StatusCode::OK, "{:?}", text.body);
    assert_eq!(get(web, "/text").await.unwrap().status, StatusCode::OK);
    let lines = wait_for_lines(&path, 2).await;
    assert!(lines[1].contains("\"GET /text HTTP/1.1\""), "{}", lines[1]);

    let off = nitro.delete("config/accesslog").await;
    assert_eq!(off.status, StatusCode::OK, "{:?}", off.body);
    assert_eq!(get(web, "/gone").await.unwrap().status, StatusCode::OK);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let lines = std::fs::read_to_string(&path).unwrap();
    assert_eq!(
        lines.lines().count(),
        2,
        "nothing is logged once it is off:\n{lines}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigusr1_reopens_the_file_after_logrotate_renamed_it() {
    let net = Net::new();
    let a = Backend::start(net.free_addr(1), "a").await;
    let web = net.free_addr(250);
    let accesslog = "path = \"access.log\"\nformat = \"text\"";
    let ballast = BALLAST
        .start(&config(web, &members_toml(&[a.addr()]), accesslog, ""))
        .await;
    let path = ballast.dir().join("access.log");
    let rotated: PathBuf = ballast.dir().join("access.log.1");

    let mut client = H1::connect(web).await.unwrap();
    for _ in 0..3 {
        assert_eq!(client.get("/before").await.unwrap().status, StatusCode::OK);
    }
    wait_for_lines(&path, 3).await;
    std::fs::rename(&path, &rotated).unwrap();
    let mark = ballast.log_mark();
    ballast.signal("USR1");
    ballast
        .wait_for_log_since(mark, |line| is_event(line, "access log reopened"), WAIT)
        .await
        .expect("`access log reopened` after SIGUSR1");
    assert!(path.exists(), "the reopen creates the file at once");
    for _ in 0..2 {
        assert_eq!(client.get("/after").await.unwrap().status, StatusCode::OK);
    }

    let new_lines = wait_for_lines(&path, 2).await;
    assert_eq!(new_lines.len(), 2, "{new_lines:?}");
    let old_lines = wait_for_lines(&rotated, 3).await;
    assert_eq!(old_lines.len(), 3, "nothing more goes to the renamed file");
    assert!(
        old_lines
            .iter()
            .all(|line| line.contains("\"GET /before HTTP/1.1\""))
    );
    let member = format!(" web pool/{} ", a.addr());
    for line in &new_lines {
        assert!(
            line.contains(&member) && line.ends_with(" 200 1 ok \"GET /after HTTP/1.1\""),
            "{line}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_log_nobody_reads_drops_lines_counts_them_and_never_slows_a_request() {
    let net = Net::new();
    let a = Backend::start(net.free_addr(1), "a").await;
    let (web, metrics) = (net.free_addr(250), net.free_addr(251));
    let dir = ballast_tests::TempDir::new("accesslog-fifo");
    let fifo = dir.path().join("access.pipe");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .expect("run mkfifo");
    assert!(made.success(), "mkfifo {}", fifo.display());
    let accesslog = format!("path = \"{}\"\nbufferlines = 8", fifo.display());
    let extra = format!("[metrics]\nlisten = \"{metrics}\"\n");
    let ballast = BALLAST
        .start(&config(web, &members_toml(&[a.addr()]), &accesslog, &extra))
        .await;

    // Nobody reads the pipe: the log's thread is stuck opening it, and its buffer fills.
    const REQUESTS: usize = 200;
    let mut client = H1::connect(web).await.unwrap();
    let started = tokio::time::Instant::now();
    let mut slowest = Duration::ZERO;
    for _ in 0..REQUESTS {
        let sent = tokio::time::Instant::now();
        assert_eq!(client.get("/").await.unwrap().status, StatusCode::OK);
        slowest = slowest.max(sent.elapsed());
    }
    let all = started.elapsed();
    assert!(
        slowest < Duration::from_secs(1) && all < Duration::from_secs(20),
        "{REQUESTS} requests took {all:?}, the slowest {slowest:?}"
    );

    let (_, text) = scrape(metrics, None).await;
    let dropped = sample(
        &text,
        "ballast_accesslog_dropped_lines_total{reason=\"buffer_full\"}",
    )
    .expect("the dropped-lines counter");
    assert_eq!(sample(&text, "ballast_accesslog_lines_total"), Some(0.0));
    // At most 8 wait in the buffer, and the thread holds the few it took before it blocked.
    let kept = REQUESTS - dropped as usize;
    assert!((9..=40).contains(&kept), "dropped {dropped} of {REQUESTS}");

    // A reader comes: exactly the lines that were not dropped arrive, and are counted.
    let reader = fifo.clone();
    let read = tokio::task::spawn_blocking(move || {
        use std::io::BufRead;
        let pipe = std::fs::File::open(&reader).expect("open the pipe for reading");
        let mut lines = Vec::new();
        for line in std::io::BufReader::new(pipe).lines() {
            lines.push(line.expect("a line"));
            if lines.len() == kept {
                break;
            }
        }
        lines
    });
    let lines = tokio::time::timeout(WAIT, read)
        .await
        .expect("the kept lines arrive")
        .unwrap();
    assert_eq!(lines.len(), kept);
    assert!(
        lines
            .iter()
            .all(|line| line.ends_with(" 200 1 ok \"GET / HTTP/1.1\""))
    );
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let (_, text) = scrape(metrics, None).await;
        let written = sample(&text, "ballast_accesslog_lines_total");
        if written == Some(kept as f64) {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "ballast_accesslog_lines_total is {written:?}, expected {kept}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    drop(ballast);
}
