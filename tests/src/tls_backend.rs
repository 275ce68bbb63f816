//! A real TLS member: Python's `ssl` module (OpenSSL) serving HTTP/1.1 or echoing bytes, so
//! Ballast's TLS client meets a peer that is not rustls. It runs from `.venv/bin/python`
//! (created by `scripts/test.sh`) as a child process, killed when its handle drops.
//!
//! In HTTP mode every response body is one JSON object saying what the server saw: the SNI
//! name the client sent (`null` for none), the common name of the client's certificate
//! (`null` for none), the ALPN protocol, the request path and `conn`, the number of the TLS
//! connection it came on (1, 2, ... in the order they were accepted). With a client CA it requires a
//! client certificate issued by that CA (mutual TLS).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

use crate::certs::{TestCa, TestCert};
use crate::files::TempDir;

const SERVER: &str = r#"
import json, socket, ssl, sys, threading

host, port, mode, cert, key, client_ca = sys.argv[1:7]
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(cert, key)
if client_ca:
    ctx.verify_mode = ssl.CERT_REQUIRED
    ctx.load_verify_locations(client_ca)
if mode == "http":
    ctx.set_alpn_protocols(["http/1.1"])
sni = {}
accepted = iter(range(1, 1 << 30))
def on_sni(sock, name, _ctx):
    sni[id(sock)] = name
ctx.sni_callback = on_sni

def client_cn(conn):
    cert = conn.getpeercert()
    if not cert:
        return None
    for rdn in cert.get("subject", ()):
        for k, v in rdn:
            if k == "commonName":
                return v
    return None

def serve_http(conn, seen):
    data = b""
    while True:
        while b"\r\n\r\n" not in data:
            chunk = conn.recv(65536)
            if not chunk:
                return
            data += chunk
        head, data = data.split(b"\r\n\r\n", 1)
        lines = head.decode("latin-1").split("\r\n")
        path = lines[0].split(" ")[1]
        length = 0
        for line in lines[1:]:
            k, _, v = line.partition(":")
            if k.strip().lower() == "content-length":
                length = int(v.strip())
        while len(data) < length:
            chunk = conn.recv(65536)
            if not chunk:
                return
            data += chunk
        data = data[length:]
        body = json.dumps(dict(seen, path=path)).encode()
        conn.sendall(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: "
                     + str(len(body)).encode() + b"\r\n\r\n" + body)

def serve_echo(conn):
    while True:
        chunk = conn.recv(65536)
        if not chunk:
            return
        conn.sendall(chunk)

def handle(raw, conn_no):
    try:
        conn = ctx.wrap_socket(raw, server_side=True)
    except (ssl.SSLError, OSError):
        raw.close()
        return
    try:
        seen = {"sni": sni.pop(id(conn), None), "client": client_cn(conn),
                "alpn": conn.selected_alpn_protocol(), "conn": conn_no}
        if mode == "http":
            serve_http(conn, seen)
        else:
            serve_echo(conn)
    except (ssl.SSLError, OSError):
        pass
    finally:
        conn.close()

listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
listener.bind((host, int(port)))
listener.listen(128)
print("listening", flush=True)
while True:
    raw, _ = listener.accept()
    threading.Thread(target=handle, args=(raw, next(accepted)), daemon=True).start()
"#;

/// What a TLS member does after the handshake.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsMode {
    /// HTTP/1.1 keep-alive; each body is JSON: `sni`, `client`, `alpn`, `path`, `conn`.
    Http,
    /// Echoes every byte back.
    Echo,
}

/// A Python `ssl` server on `addr`, serving `cert`.
#[derive(Debug)]
pub struct TlsBackend {
    _child: Child,
    _dir: TempDir,
    addr: SocketAddr,
}

impl TlsBackend {
    /// Starts it and waits until it listens; with `client_ca` it requires a client
    /// certificate issued by that CA.
    pub async fn start(
        addr: SocketAddr,
        mode: TlsMode,
        cert: &TestCert,
        client_ca: Option<&TestCa>,
    ) -> TlsBackend {
        let dir = TempDir::new("tls-backend");
        let cert_path = dir.write("cert.pem", &cert.cert_pem);
        let key_path = dir.write("key.pem", &cert.key_pem);
        let ca_path = client_ca.map(|ca| dir.write("client-ca.pem", ca.pem()));
        let mode = match mode {
            TlsMode::Http => "http",
            TlsMode::Echo => "echo",
        };
        let mut child = Command::new(python())
            .arg("-c")
            .arg(SERVER)
            .arg(addr.ip().to_string())
            .arg(addr.port().to_string())
            .arg(mode)
            .arg(&cert_path)
            .arg(&key_path)
            .arg(
                ca_path
                    .as_deref()
                    .map_or(String::new(), |p| p.display().to_string()),
            )
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .expect("start python");
        let stdout = child.stdout.take().expect("stdout is piped");
        let mut lines = BufReader::new(stdout).lines();
        let ready = tokio::time::timeout(Duration::from_secs(10), lines.next_line()).await;
        assert!(
            matches!(&ready, Ok(Ok(Some(line))) if line == "listening"),
            "the TLS backend on {addr} did not start: {ready:?}"
        );
        TlsBackend {
            _child: child,
            _dir: dir,
            addr,
        }
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
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
