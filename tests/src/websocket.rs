//! Real WebSocket peers from the Python `websockets` library (in `.venv`, installed by
//! `scripts/test.sh`): [`WsServer`], an echo server that answers `NAME:message`, and
//! [`WsClient`], one client connection (`ws://`, or `wss://` trusting a test CA) driven line by
//! line. Both are child processes, killed when their handle drops.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};

/// An echo server: every text message `m` is answered `NAME:m`.
const SERVER: &str = r#"
import asyncio, sys
import websockets
from websockets.asyncio.server import serve

host, port, name = sys.argv[1], int(sys.argv[2]), sys.argv[3]

async def echo(ws):
    try:
        async for message in ws:
            await ws.send(f"{name}:{message}")
    except websockets.ConnectionClosed:
        pass  # Ballast closing a drained member's tunnel ends it without a close frame.

async def main():
    async with serve(echo, host, port, ping_interval=None):
        print("listening", flush=True)
        await asyncio.Future()

asyncio.run(main())
"#;

/// One client connection: prints `open` once connected; each line on stdin is sent as a
/// message and its answer printed as `reply ANSWER`; prints `closed` as soon as the connection
/// closes (whoever closed it), `error ...` if it never opened.
const CLIENT: &str = r#"
import asyncio, ssl, sys
import websockets
from websockets.asyncio.client import connect

async def main(url, cafile=None, server_hostname=None):
    tls = {}
    if cafile:
        tls = {"ssl": ssl.create_default_context(cafile=cafile), "server_hostname": server_hostname}
    try:
        ws = await connect(url, open_timeout=5, ping_interval=None, **tls)
    except Exception as e:
        print("error", type(e).__name__, str(e).replace("\n", " "), flush=True)
        return
    print("open", flush=True)
    loop = asyncio.get_running_loop()
    async def watch():
        await ws.wait_closed()
        print("closed", flush=True)
        loop.stop()
    asyncio.ensure_future(watch())
    while True:
        line = await loop.run_in_executor(None, sys.stdin.readline)
        if not line:
            await ws.close()
            return
        try:
            await ws.send(line.strip())
            reply = await asyncio.wait_for(ws.recv(), 5)
            print("reply", reply, flush=True)
        except websockets.ConnectionClosed:
            await asyncio.sleep(1)

try:
    asyncio.run(main(*sys.argv[1:]))
except RuntimeError:
    pass
"#;

fn python() -> PathBuf {
    let venv = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../.venv/bin/python");
    assert!(
        venv.exists(),
        "{} is missing; run scripts/test.sh (it creates the virtualenv with `websockets`)",
        venv.display()
    );
    venv
}

fn spawn(script: &str, args: &[String]) -> (Child, ChildStdin, Lines<BufReader<ChildStdout>>) {
    let mut child = Command::new(python())
        .arg("-c")
        .arg(script)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .expect("start python");
    let stdin = child.stdin.take().expect("stdin is piped");
    let stdout = child.stdout.take().expect("stdout is piped");
    (child, stdin, BufReader::new(stdout).lines())
}

/// The next line the child prints, within `timeout`; `None` at its end or after the timeout.
async fn next_line(lines: &mut Lines<BufReader<ChildStdout>>, timeout: Duration) -> Option<String> {
    tokio::time::timeout(timeout, lines.next_line())
        .await
        .ok()
        .and_then(Result::ok)
        .flatten()
}

/// A `websockets` echo server on `addr`.
#[derive(Debug)]
pub struct WsServer {
    _child: Child,
    addr: SocketAddr,
}

impl WsServer {
    /// Starts it and waits until it listens.
    pub async fn start(addr: SocketAddr, name: &str) -> WsServer {
        let args = [addr.ip().to_string(), addr.port().to_string(), name.into()];
        let (child, _stdin, mut lines) = spawn(SERVER, &args);
        let ready = next_line(&mut lines, Duration::from_secs(10)).await;
        assert_eq!(
            ready.as_deref(),
            Some("listening"),
            "the WebSocket server on {addr} did not start"
        );
        WsServer {
            _child: child,
            addr,
        }
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
}

/// One `websockets` client connection.
#[derive(Debug)]
pub struct WsClient {
    child: Child,
    stdin: ChildStdin,
    lines: Lines<BufReader<ChildStdout>>,
}

/// What became of a message sent on a [`WsClient`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WsOutcome {
    Reply(String),
    Closed,
    /// Nothing within the time given.
    Silent,
}

impl WsClient {
    /// Connects to `url` (`ws://ip:port/path`); panics with the library's error if the
    /// handshake fails.
    pub async fn connect(url: &str) -> WsClient {
        WsClient::open(&[url.to_owned()]).await
    }

    /// Connects to a `wss://` `url`, trusting the CA in `ca_file` and checking the
    /// certificate for `server_name`.
    pub async fn connect_tls(url: &str, ca_file: &Path, server_name: &str) -> WsClient {
        let args = [
            url.to_owned(),
            ca_file.display().to_string(),
            server_name.to_owned(),
        ];
        WsClient::open(&args).await
    }

    async fn open(args: &[String]) -> WsClient {
        let url = &args[0];
        let (child, stdin, mut lines) = spawn(CLIENT, args);
        let opened = next_line(&mut lines, Duration::from_secs(10)).await;
        assert_eq!(
            opened.as_deref(),
            Some("open"),
            "the WebSocket handshake through {url} failed"
        );
        WsClient {
            child,
            stdin,
            lines,
        }
    }

    /// Sends `message` and waits (up to 5 s) for its answer or the connection's close.
    pub async fn send(&mut self, message: &str) -> WsOutcome {
        if self
            .stdin
            .write_all(format!("{message}\n").as_bytes())
            .await
            .is_err()
        {
            return WsOutcome::Closed;
        }
        let _ = self.stdin.flush().await;
        self.outcome(Duration::from_secs(5)).await
    }

    /// Waits up to `timeout` for the connection to close without sending anything.
    pub async fn closed_within(&mut self, timeout: Duration) -> bool {
        self.outcome(timeout).await == WsOutcome::Closed
    }

    async fn outcome(&mut self, timeout: Duration) -> WsOutcome {
        match tokio::time::timeout(timeout, self.lines.next_line()).await {
            Err(_) => WsOutcome::Silent,
            Ok(Ok(Some(line))) => match line.strip_prefix("reply ") {
                Some(reply) => WsOutcome::Reply(reply.to_owned()),
                None if line == "closed" => WsOutcome::Closed,
                None => panic!("unexpected line from the WebSocket client: {line}"),
            },
            Ok(_) => WsOutcome::Closed,
        }
    }

    /// Closes the connection cleanly (the client sends a close frame) and waits for it.
    pub async fn close(mut self) {
        drop(self.stdin);
        let _ = tokio::time::timeout(Duration::from_secs(5), self.child.wait()).await;
    }
}
