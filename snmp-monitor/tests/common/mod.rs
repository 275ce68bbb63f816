//! Test harness: a real net-snmp `snmpd` on a loopback address and free port, with a
//! pass_persist helper so tests can set the UCD CPU values, plus small helpers.

#![allow(dead_code)]

use std::fs;
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use snmp_monitor::pdu::{CommunityMessage, PduType, Version};
use snmp_monitor::sample::Sample;
use snmp_monitor::value::Value;
use snmp_monitor::{Oid, PollResult};
use tokio::sync::mpsc;

pub const OID_CPU_USER: &str = ".1.3.6.1.4.1.2021.11.9.0";
pub const OID_CPU_SYSTEM: &str = ".1.3.6.1.4.1.2021.11.10.0";
pub const OID_CPU_IDLE: &str = ".1.3.6.1.4.1.2021.11.11.0";

/// pass_persist protocol (PING/get/getnext/set) over a values file of "OID TYPE VALUE" lines,
/// re-read on every request. POSIX sh + awk, so the tests need nothing beyond net-snmp.
const PASS_PERSIST: &str = r#"#!/bin/sh
values="$1"
while IFS= read -r cmd; do
  case "$cmd" in
    PING) echo PONG ;;
    get|getnext)
      IFS= read -r oid
      awk -v want="$oid" -v mode="$cmd" '
        function cmp(a, b,   x, y, n, m, i) {
          n = split(a, x, "."); m = split(b, y, ".")
          for (i = 2; i <= n && i <= m; i++) {
            if (x[i] + 0 < y[i] + 0) return -1
            if (x[i] + 0 > y[i] + 0) return 1
          }
          return (n < m) ? -1 : (n > m) ? 1 : 0
        }
        NF >= 3 {
          if (mode == "get" && cmp($1, want) == 0) { hit = $0; exit }
          if (mode == "getnext" && cmp($1, want) > 0 && (best == "" || cmp($1, bestoid) < 0)) { best = $0; bestoid = $1 }
        }
        END {
          if (mode == "getnext") hit = best
          if (hit == "") { print "NONE"; exit }
          split(hit, f, " "); print f[1]; print f[2]; print f[3]
        }' "$values"
      ;;
    set) IFS= read -r _; IFS= read -r _; echo not-writable ;;
    "") exit 0 ;;
  esac
done
"#;

/// A v3 user created in snmpd.conf: `createUser NAME AUTH "authpass" PRIV "privpass"`.
#[derive(Debug, Clone)]
pub struct AgentUser {
    pub name: &'static str,
    pub auth: &'static str,
    pub privacy: &'static str,
}

/// A running `snmpd`, killed and cleaned up on drop.
#[derive(Debug)]
pub struct Snmpd {
    pub addr: SocketAddr,
    dir: PathBuf,
    child: Child,
}

static NEXT_DIR: AtomicU32 = AtomicU32::new(0);

pub const AUTH_PASS: &str = "authpass123";
pub const PRIV_PASS: &str = "privpass123";

impl Snmpd {
    /// Starts snmpd on `ip` (a free port) with community `public`, the given v3 users
    /// (authPriv, passphrases [`AUTH_PASS`] / [`PRIV_PASS`]), and CPU user/system/idle served
    /// from a file the test can change with [`Snmpd::set_cpu`].
    pub fn start(ip: &str, users: &[AgentUser]) -> Snmpd {
        require_tool("snmpd");
        let ip: IpAddr = ip.parse().expect("test IP");
        let dir = std::env::temp_dir().join(format!(
            "ballast-snmpd-{}-{}",
            std::process::id(),
            NEXT_DIR.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(dir.join("state")).expect("temp dir");
        let script = dir.join("persist.sh");
        fs::write(&script, PASS_PERSIST).expect("write pass_persist script");
        set_executable(&script);
        let values = dir.join("values.txt");
        let port = free_udp_port(ip);
        let addr = SocketAddr::new(ip, port);
        let mut conf = format!(
            "agentAddress udp:{ip}:{port}\n\
             view all included .1\n\
             rocommunity public 127.0.0.0/8 -V all\n\
             dontLogTCPWrappersConnects yes\n"
        );
        for user in users {
            conf += &format!(
                "createUser {} {} \"{AUTH_PASS}\" {} \"{PRIV_PASS}\"\nrouser {} authpriv -V all\n",
                user.name, user.auth, user.privacy, user.name
            );
        }
        for oid in [OID_CPU_USER, OID_CPU_SYSTEM, OID_CPU_IDLE] {
            let base = oid.trim_end_matches(".0");
            conf += &format!(
                "pass_persist -p 1 {base} {} {}\n",
                script.display(),
                values.display()
            );
        }
        let conf_path = dir.join("snmpd.conf");
        fs::write(&conf_path, conf).expect("write snmpd.conf");
        let snmpd = Snmpd {
            addr,
            dir: dir.clone(),
            child: spawn_snmpd(&dir, &conf_path),
        };
        snmpd.set_cpu(10, 5);
        snmpd.wait_ready();
        snmpd
    }

    /// Sets ssCpuUser and ssCpuSystem (idle = 100 - both); the next GET sees them.
    pub fn set_cpu(&self, user: u32, system: u32) {
        let idle = 100 - user - system;
        let text = format!(
            "{OID_CPU_USER} integer {user}\n{OID_CPU_SYSTEM} integer {system}\n{OID_CPU_IDLE} integer {idle}\n"
        );
        let tmp = self.dir.join("values.tmp");
        fs::write(&tmp, text).expect("write values");
        fs::rename(&tmp, self.dir.join("values.txt")).expect("replace values");
    }

    fn wait_ready(&self) {
        let probe = UdpSocket::bind(SocketAddr::new(self.addr.ip(), 0)).expect("probe socket");
        probe
            .set_read_timeout(Some(Duration::from_millis(100)))
            .expect("timeout");
        let oid: Oid = OID_CPU_IDLE.parse().expect("oid");
        let ber = oid.to_ber();
        let request = CommunityMessage::encode(
            Version::V2c,
            b"public",
            PduType::Get,
            1,
            0,
            0,
            [(ber.as_slice(), Value::Null)],
        );
        let mut buf = [0u8; 2048];
        for _ in 0..100 {
            let _ = probe.send_to(&request, self.addr);
            if let Ok((len, _)) = probe.recv_from(&mut buf) {
                let reply = CommunityMessage::decode(&buf[..len]).expect("snmpd reply decodes");
                let first = reply
                    .pdu
                    .varbinds
                    .clone()
                    .next()
                    .expect("one varbind")
                    .expect("valid");
                if matches!(first.value, Value::Integer(_)) {
                    return;
                }
            }
        }
        panic!(
            "snmpd on {} did not answer within 10 s; see {}",
            self.addr,
            self.dir.display()
        );
    }
}

impl Drop for Snmpd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = fs::remove_dir_all(&self.dir);
    }
}

fn spawn_snmpd(dir: &Path, conf: &Path) -> Child {
    Command::new("snmpd")
        .args(["-f", "-Lf"])
        .arg(dir.join("snmpd.log"))
        .args(["-C", "-I", "-smux", "-c"])
        .arg(conf)
        .arg("-p")
        .arg(dir.join("snmpd.pid"))
        .env("SNMP_PERSISTENT_DIR", dir.join("state"))
        .env("MIBS", "")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start snmpd")
}

fn set_executable(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(path, fs::Permissions::from_mode(0o755)).expect("chmod");
}

/// Fails with a clear message when a net-snmp tool is missing.
pub fn require_tool(tool: &str) {
    let found = std::env::var_os("PATH")
        .map(|paths| std::env::split_paths(&paths).any(|dir| dir.join(tool).is_file()))
        .unwrap_or(false)
        || Path::new("/usr/sbin").join(tool).is_file();
    assert!(
        found,
        "`{tool}` is not installed: these tests need net-snmp (apt-get install -y snmpd snmp); \
         scripts/test.sh installs it"
    );
}

/// A UDP port that was free a moment ago on `ip`.
pub fn free_udp_port(ip: IpAddr) -> u16 {
    UdpSocket::bind(SocketAddr::new(ip, 0))
        .expect("bind probe")
        .local_addr()
        .expect("addr")
        .port()
}

/// Waits up to `within` for a sample of `member` that satisfies `want`.
pub async fn wait_for<K: PartialEq + std::fmt::Debug>(
    rx: &mut mpsc::Receiver<Sample<K>>,
    member: &K,
    within: Duration,
    want: impl Fn(&Sample<K>) -> bool,
) -> Sample<K> {
    let deadline = tokio::time::Instant::now() + within;
    let mut last = None;
    loop {
        let sample = match tokio::time::timeout_at(deadline, rx.recv()).await {
            Ok(Some(sample)) => sample,
            Ok(None) => panic!("sample channel closed"),
            Err(_) => {
                panic!("no matching sample for {member:?} within {within:?}; last: {last:#?}")
            }
        };
        if &sample.member == member {
            if want(&sample) {
                return sample;
            }
            last = Some(sample);
        }
    }
}

pub fn is_ok<K>(sample: &Sample<K>) -> bool {
    sample.result == PollResult::Ok
}
