//! HAProxy and nginx as targets: finding (or installing) them, and the configs `bench` writes for
//! them. Each config has the same shape as Ballast's: one worker/thread, keep-alive connections to
//! the backend, no access log, one listener on a free 127.0.0.1 port. Over HTTP each passes the
//! client's `Host` and adds `X-Forwarded-For` and `X-Forwarded-Proto`, as Ballast always does,
//! so that every proxy writes the same request to the backend.
//!
//! * HAProxy: `nbthread 1`, `http-reuse always`, `option forwardfor`, `mode tcp` for L4;
//!   started with `-db` (stays in the foreground as one process, so its pid is the one measured).
//! * nginx: `daemon off`, `master_process off` (one process), `upstream { keepalive }` with
//!   `proxy_http_version 1.1` and an empty `Connection` header; L4 needs the `stream` module,
//!   which Debian's nginx-light lacks, so it is probed with `nginx -t` first.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::targets::Layer;
use crate::tls::CertFiles;

/// A peer proxy: its name on the command line and in reports, and its Debian package.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Peer {
    Haproxy,
    Nginx,
}

impl Peer {
    pub fn name(self) -> &'static str {
        match self {
            Peer::Haproxy => "haproxy",
            Peer::Nginx => "nginx",
        }
    }

    fn package(self) -> &'static str {
        match self {
            Peer::Haproxy => "haproxy",
            Peer::Nginx => "nginx-light",
        }
    }
}

/// Looks for `tool` on PATH, then in /usr/sbin and /usr/local/sbin (often not on a user's PATH).
pub fn find(tool: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/usr/local/sbin"].map(PathBuf::from))
        .map(|dir| dir.join(tool))
        .find(|p| p.is_file())
}

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(2).map(|euid| euid == "0"))
        })
        .unwrap_or(false)
}

/// The peer's binary; with `install`, as root, missing peers are installed with apt-get first.
/// `Err` is the reason it is skipped, for the report.
pub fn locate(peer: Peer, install: bool) -> Result<PathBuf, String> {
    locate_tool(peer.name(), peer.package(), install)
}

/// `tool` on the path; with `install`, as root, `apt-get install package` first if it is not.
/// `Err` is the reason whatever needs it is skipped.
pub fn locate_tool(tool: &str, package: &str, install: bool) -> Result<PathBuf, String> {
    if let Some(path) = find(tool) {
        return Ok(path);
    }
    if install && is_root() && find("apt-get").is_some() {
        eprintln!("bench: {tool} not found; apt-get install {package}");
        let status = Command::new("apt-get")
            .args(["install", "-y", "-qq", "--no-install-recommends", package])
            .env("DEBIAN_FRONTEND", "noninteractive")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .status();
        if status.is_ok_and(|s| s.success())
            && let Some(path) = find(tool)
        {
            return Ok(path);
        }
        return Err(format!(
            "{tool} not found, and `apt-get install {package}` did not provide it"
        ));
    }
    Err(format!("{tool} not found (Debian package {package})"))
}

/// The first line the peer prints about its version, for the report.
pub fn version(binary: &Path) -> String {
    let Ok(out) = Command::new(binary).arg("-v").stdin(Stdio::null()).output() else {
        return "unknown".to_string();
    };
    // nginx prints its version on stderr, HAProxy on stdout.
    let text = [out.stdout, out.stderr].concat();
    String::from_utf8_lossy(&text)
        .lines()
        .next()
        .unwrap_or("unknown")
        .trim()
        .to_string()
}

/// How many files a peer may open for `conns` client connections: two sockets per connection
/// at most (client and server side) plus some, capped at the hard limit it inherits (a
/// peer without CAP_SYS_RESOURCE cannot go above it, and HAProxy refuses to start if its
/// computed need is higher than what it can get, unless told `ulimit-n`).
pub fn fd_budget(conns: usize) -> u64 {
    let want = conns as u64 * 2 + 64;
    nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE)
        .map_or(want, |(_, hard)| want.min(hard))
}

/// The HAProxy config: one frontend and one backend with one server, one thread, at most
/// `maxconn` client connections and `nofile` open files. HAProxy keeps idle server connections
/// only while its descriptors in use stay under 25% of what `maxconn` allows
/// (`tune.pool-high-fd-ratio`); with `maxconn` fitted to the load, every client connection
/// and its server connection together pass that, and it would open a server connection per
/// request. 95% keeps them, as Ballast and nginx do.
pub fn haproxy_config(
    layer: Layer,
    listen: SocketAddr,
    backend: SocketAddr,
    certs: Option<&CertFiles>,
    maxconn: usize,
    nofile: u64,
) -> String {
    // (`http-request` rules go in the frontend: HAProxy refuses them in an unnamed `defaults`.)
    let (mode, http_only, http_rules) = match layer {
        Layer::Http | Layer::Tls | Layer::H2c => (
            "http",
            "    option http-keep-alive\n    http-reuse always\n    option forwardfor\n",
            format!(
                "    http-request set-header X-Forwarded-Proto {}\n",
                forwarded_proto(layer)
            ),
        ),
        Layer::Tcp(_) => ("tcp", "", String::new()),
    };
    let bind = match (layer, certs) {
        (Layer::Tls, Some(certs)) => format!(
            "{listen} ssl crt {} alpn h2,http/1.1",
            certs.combined.display()
        ),
        (Layer::H2c, _) => format!("{listen} proto h2"),
        _ => listen.to_string(),
    };
    format!(
        "# Written by `bench`: one {mode} frontend, one server, one thread, no logs.
global
    nbthread 1
    maxconn {maxconn}
    ulimit-n {nofile}
    tune.pool-low-fd-ratio 90
    tune.pool-high-fd-ratio 95
defaults
    mode {mode}
    timeout connect 5s
    timeout client 60s
    timeout server 60s
{http_only}frontend bench
    bind {bind}
{http_rules}    default_backend bench-backend
backend bench-backend
    server s1 {backend}
"
    )
}

/// What `X-Forwarded-Proto` says for a client of `layer`.
fn forwarded_proto(layer: Layer) -> &'static str {
    if layer == Layer::Tls { "https" } else { "http" }
}

/// The nginx config: one `http` server (or `stream` server for L4), one worker process.
/// `workdir` holds its pid file, error log and temp paths.
pub fn nginx_config(
    layer: Layer,
    listen: SocketAddr,
    backend: SocketAddr,
    certs: Option<&CertFiles>,
    workdir: &Path,
    conns: usize,
    nofile: u64,
) -> String {
    let dir = workdir.display();
    let listen_line = match (layer, certs) {
        (Layer::Tls, Some(certs)) => format!(
            "listen {listen} ssl http2;\n        ssl_protocols TLSv1.2 TLSv1.3;\n        ssl_certificate {};\n        ssl_certificate_key {};",
            certs.cert.display(),
            certs.key.display()
        ),
        (Layer::H2c, _) => format!("listen {listen} http2;"),
        _ => format!("listen {listen};"),
    };
    let body = match layer {
        Layer::Http | Layer::Tls | Layer::H2c => format!(
            "http {{
    access_log off;
    client_body_temp_path {dir}/nginx-body;
    proxy_temp_path {dir}/nginx-proxy;
    fastcgi_temp_path {dir}/nginx-fastcgi;
    uwsgi_temp_path {dir}/nginx-uwsgi;
    scgi_temp_path {dir}/nginx-scgi;
    keepalive_requests 1000000;
    keepalive_timeout 120s;
    upstream bench_backend {{ server {backend}; keepalive 1024; keepalive_requests 1000000; }}
    server {{
        {listen_line}
        location / {{
            proxy_pass http://bench_backend;
            proxy_http_version 1.1;
            proxy_set_header Connection \"\";
            proxy_set_header Host $http_host;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_set_header X-Forwarded-Proto $scheme;
        }}
    }}
}}
"
        ),
        Layer::Tcp(_) => format!(
            "stream {{
    server {{
        listen {listen};
        proxy_pass {backend};
    }}
}}
"
        ),
    };
    format!(
        "# Written by `bench`: one worker process, keep-alive to the backend, no access log.
daemon off;
master_process off;
worker_processes 1;
worker_rlimit_nofile {nofile};
pid {dir}/nginx.pid;
error_log {dir}/nginx-error.log error;
events {{ worker_connections {conns}; }}
{body}",
    )
}

/// Whether this nginx accepts `config` (`nginx -t`); `Err` holds why not. Used to find out
/// whether it has the `stream` module before an L4 run.
pub fn nginx_accepts(nginx: &Path, config: &Path, workdir: &Path) -> Result<(), String> {
    let out = Command::new(nginx)
        .arg("-t")
        .arg("-q")
        .arg("-p")
        .arg(workdir)
        .arg("-c")
        .arg(config)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("running {}: {e}", nginx.display()))?;
    if out.status.success() {
        return Ok(());
    }
    let text = String::from_utf8_lossy(&out.stderr);
    if text.contains("unknown directive \"stream\"") {
        return Err("no stream module".to_string());
    }
    Err(format!(
        "config test failed: {}",
        text.lines().next().unwrap_or("no output").trim()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addrs() -> (SocketAddr, SocketAddr) {
        (
            "127.0.0.1:8080".parse().unwrap(),
            "127.0.0.1:9001".parse().unwrap(),
        )
    }

    #[test]
    fn haproxy_http_reuses_backend_connections() {
        let (listen, backend) = addrs();
        let text = haproxy_config(Layer::Http, listen, backend, None, 20000, 40064);
        assert!(text.contains("nbthread 1"));
        assert!(text.contains("maxconn 20000"));
        assert!(text.contains("ulimit-n 40064"));
        assert!(text.contains("tune.pool-high-fd-ratio 95"));
        assert!(text.contains("mode http"));
        assert!(text.contains("http-reuse always"));
        assert!(text.contains("option forwardfor"));
        assert!(text.contains("set-header X-Forwarded-Proto http\n"));
        assert!(text.contains("bind 127.0.0.1:8080"));
        assert!(text.contains("server s1 127.0.0.1:9001"));
        assert!(!text.contains("log "));
    }

    #[test]
    fn haproxy_tcp_is_mode_tcp() {
        let (listen, backend) = addrs();
        let text = haproxy_config(
            Layer::Tcp(crate::targets::Relay::Splice),
            listen,
            backend,
            None,
            100,
            264,
        );
        assert!(text.contains("mode tcp"));
        assert!(!text.contains("http-reuse"));
    }

    #[test]
    fn fd_budget_is_capped_by_the_hard_limit() {
        let (_, hard) =
            nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE).unwrap();
        assert_eq!(fd_budget(10), 84.min(hard));
        assert!(fd_budget(usize::MAX / 4) <= hard);
    }

    #[test]
    fn nginx_http_keeps_upstream_alive() {
        let (listen, backend) = addrs();
        let text = nginx_config(
            Layer::Http,
            listen,
            backend,
            None,
            Path::new("/tmp/x"),
            1000,
            2064,
        );
        assert!(text.contains("worker_processes 1;"));
        assert!(text.contains("worker_connections 1000;"));
        assert!(text.contains("worker_rlimit_nofile 2064;"));
        assert!(text.contains("master_process off;"));
        assert!(text.contains("access_log off;"));
        assert!(text.contains("keepalive 1024;"));
        assert!(text.contains("proxy_http_version 1.1;"));
        assert!(text.contains("proxy_set_header Connection \"\";"));
        assert!(text.contains("proxy_set_header Host $http_host;"));
        assert!(text.contains("proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;"));
        assert!(text.contains("proxy_set_header X-Forwarded-Proto $scheme;"));
        assert!(text.contains("listen 127.0.0.1:8080;"));
        assert!(text.contains("server 127.0.0.1:9001;"));
        assert!(!text.contains("stream {"));
    }

    fn certs() -> CertFiles {
        CertFiles {
            cert: "/w/bench-cert.pem".into(),
            key: "/w/bench-key.pem".into(),
            combined: "/w/bench-combined.pem".into(),
            ca: rustls::pki_types::CertificateDer::from(vec![]),
        }
    }

    #[test]
    fn tls_and_h2c_listeners() {
        let (listen, backend) = addrs();
        let certs = certs();
        let haproxy = haproxy_config(Layer::Tls, listen, backend, Some(&certs), 10, 84);
        assert!(
            haproxy.contains("bind 127.0.0.1:8080 ssl crt /w/bench-combined.pem alpn h2,http/1.1")
        );
        assert!(haproxy.contains("mode http"));
        assert!(haproxy.contains("set-header X-Forwarded-Proto https\n"));
        let haproxy = haproxy_config(Layer::H2c, listen, backend, None, 10, 84);
        assert!(haproxy.contains("bind 127.0.0.1:8080 proto h2"));

        let dir = Path::new("/w");
        let nginx = nginx_config(Layer::Tls, listen, backend, Some(&certs), dir, 10, 84);
        assert!(nginx.contains("listen 127.0.0.1:8080 ssl http2;"));
        assert!(nginx.contains("ssl_protocols TLSv1.2 TLSv1.3;"));
        assert!(nginx.contains("ssl_certificate /w/bench-cert.pem;"));
        assert!(nginx.contains("ssl_certificate_key /w/bench-key.pem;"));
        let nginx = nginx_config(Layer::H2c, listen, backend, None, dir, 10, 84);
        assert!(nginx.contains("listen 127.0.0.1:8080 http2;"));
    }

    /// The real HAProxy and nginx (installed by `scripts/test.sh`) accept the HTTP configs: a
    /// config one of them refused would only show up in `bench` as that peer skipped.
    #[test]
    fn the_installed_peers_accept_the_http_configs() {
        let (listen, backend) = addrs();
        let dir = std::env::temp_dir().join(format!("bench-peers-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let haproxy = find("haproxy").expect("haproxy is installed (scripts/test.sh)");
        let nginx = find("nginx").expect("nginx is installed (scripts/test.sh)");
        for layer in [Layer::Http, Layer::H2c] {
            let file = dir.join("haproxy.cfg");
            std::fs::write(
                &file,
                haproxy_config(layer, listen, backend, None, 100, 264),
            )
            .unwrap();
            let out = Command::new(&haproxy)
                .arg("-c")
                .arg("-f")
                .arg(&file)
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "haproxy refuses the {layer:?} config: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            let file = dir.join("nginx.conf");
            std::fs::write(
                &file,
                nginx_config(layer, listen, backend, None, &dir, 100, 264),
            )
            .unwrap();
            let accepted = nginx_accepts(&nginx, &file, &dir);
            assert_eq!(accepted, Ok(()), "nginx refuses the {layer:?} config");
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn nginx_tcp_uses_stream() {
        let (listen, backend) = addrs();
        let text = nginx_config(
            Layer::Tcp(crate::targets::Relay::Copy),
            listen,
            backend,
            None,
            Path::new("/tmp/x"),
            1000,
            2064,
        );
        assert!(text.contains("stream {"));
        assert!(text.contains("proxy_pass 127.0.0.1:9001;"));
    }
}
