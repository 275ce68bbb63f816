//! Real HAProxy and nginx, for the PROXY protocol tests: [`Haproxy`], an L4 balancer in front
//! of Ballast (`mode tcp`, `send-proxy`/`send-proxy-v2` towards it), and [`Nginx`], an HTTP
//! server behind Ballast that takes PROXY headers (`listen ... proxy_protocol`) and logs the
//! client address they carry. Both run in the foreground as child processes, with their
//! config, pid and log files in a [`TempDir`], and are killed when their handle drops.
//! `scripts/test.sh` installs both (Debian `haproxy`, `nginx`).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use tokio::net::TcpStream;
use tokio::process::{Child, Command};

use crate::files::TempDir;

/// Finds a program in `/usr/sbin` or `/usr/bin`, or panics saying how to install it.
fn program(name: &str, package: &str) -> PathBuf {
    ["/usr/sbin", "/usr/bin", "/usr/local/sbin"]
        .iter()
        .map(|dir| Path::new(dir).join(name))
        .find(|path| path.is_file())
        .unwrap_or_else(|| {
            panic!("`{name}` is not installed: run scripts/test.sh (apt-get install -y {package})")
        })
}

/// Waits until `addr` accepts a TCP connection, or panics with `log`'s contents.
async fn wait_listening(addr: SocketAddr, what: &str, log: &Path) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while tokio::time::Instant::now() < deadline {
        if TcpStream::connect(addr).await.is_ok() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let log = std::fs::read_to_string(log).unwrap_or_default();
    panic!("{what} did not listen on {addr} within 10 s; its log:\n{log}");
}

/// A running HAProxy in `mode tcp`: one frontend, one server.
#[derive(Debug)]
pub struct Haproxy {
    pub listen: SocketAddr,
    child: Child,
    _dir: TempDir,
}

impl Haproxy {
    /// Listens on `listen` and relays every connection to `server`, from the address `source`,
    /// starting it with a PROXY header of `send_proxy` (`send-proxy` or `send-proxy-v2`).
    pub async fn start(
        listen: SocketAddr,
        server: SocketAddr,
        source: std::net::IpAddr,
        send_proxy: &str,
    ) -> Haproxy {
        let binary = program("haproxy", "haproxy");
        let dir = TempDir::new("haproxy");
        let config = format!(
            "global\n    pidfile {pid}\n\n\
             defaults\n    mode tcp\n    timeout connect 5s\n    timeout client 30s\n    timeout server 30s\n\n\
             frontend front\n    bind {listen}\n    default_backend ballast\n\n\
             backend ballast\n    server ballast {server} {send_proxy} source {source}\n",
            pid = dir.path().join("haproxy.pid").display(),
        );
        let config_path = dir.write("haproxy.cfg", config);
        let log = dir.path().join("haproxy.log");
        let log_file = std::fs::File::create(&log).expect("haproxy log file");
        let child = Command::new(binary)
            .arg("-db")
            .arg("-f")
            .arg(&config_path)
            .stdin(Stdio::null())
            .stdout(log_file.try_clone().expect("log file handle"))
            .stderr(log_file)
            .kill_on_drop(true)
            .spawn()
            .expect("start haproxy");
        wait_listening(listen, "haproxy", &log).await;
        Haproxy {
            listen,
            child,
            _dir: dir,
        }
    }
}

impl Drop for Haproxy {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
    }
}

/// A running nginx whose HTTP server on `listen` takes PROXY headers (v1 and v2) and answers
/// `from nginx: ADDRESS` with the client address the header carried; with `plain`, a second
/// server there takes connections without a header and answers `from nginx: plain`.
#[derive(Debug)]
pub struct Nginx {
    pub listen: SocketAddr,
    pub plain: Option<SocketAddr>,
    access_log: PathBuf,
    child: Child,
    _dir: TempDir,
}

impl Nginx {
    pub async fn start(listen: SocketAddr, plain: Option<SocketAddr>) -> Nginx {
        let binary = program("nginx", "nginx");
        let dir = TempDir::new("nginx");
        let path = dir.path().display().to_string();
        let access_log = dir.path().join("access.log");
        let plain_server = plain.map_or(String::new(), |plain| {
            format!(
                "    server {{\n        listen {plain};\n        location / {{ return 200 \"from nginx: plain\\n\"; }}\n    }}\n"
            )
        });
        let config = format!(
            "daemon off;\nmaster_process off;\npid {path}/nginx.pid;\nerror_log {path}/error.log;\n\
             events {{ worker_connections 64; }}\n\
             http {{\n\
             \x20   log_format proxied '$proxy_protocol_addr $proxy_protocol_port $remote_addr $connection \"$request\"';\n\
             \x20   access_log {log} proxied;\n\
             \x20   client_body_temp_path {path}/body;\n\
             \x20   proxy_temp_path {path}/proxy;\n\
             \x20   fastcgi_temp_path {path}/fastcgi;\n\
             \x20   uwsgi_temp_path {path}/uwsgi;\n\
             \x20   scgi_temp_path {path}/scgi;\n\
             \x20   server {{\n\
             \x20       listen {listen} proxy_protocol;\n\
             \x20       location / {{ return 200 \"from nginx: $proxy_protocol_addr\\n\"; }}\n\
             \x20   }}\n\
             {plain_server}\
             }}\n",
            log = access_log.display(),
        );
        let config_path = dir.write("nginx.conf", config);
        let error_log = dir.path().join("error.log");
        let child = Command::new(binary)
            .arg("-p")
            .arg(dir.path())
            .arg("-c")
            .arg(&config_path)
            .arg("-e")
            .arg(&error_log)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("start nginx");
        wait_listening(listen, "nginx", &error_log).await;
        if let Some(plain) = plain {
            wait_listening(plain, "nginx", &error_log).await;
        }
        Nginx {
            listen,
            plain,
            access_log,
            child,
            _dir: dir,
        }
    }

    /// The access log's lines so far: `PROXY_ADDR PROXY_PORT REMOTE_ADDR CONNECTION "REQUEST"`
    /// (`-` for the PROXY fields on the plain server; `CONNECTION` is nginx's serial number of
    /// the connection the request came on).
    pub fn access_lines(&self) -> Vec<String> {
        std::fs::read_to_string(&self.access_log)
            .unwrap_or_default()
            .lines()
            .map(str::to_owned)
            .collect()
    }

    /// Waits (up to 5 s) until the access log has `count` lines, and returns them.
    pub async fn wait_access_lines(&self, count: usize) -> Vec<String> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        loop {
            let lines = self.access_lines();
            if lines.len() >= count || tokio::time::Instant::now() >= deadline {
                return lines;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
    }
}
