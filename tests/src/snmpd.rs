//! A real net-snmp `snmpd` on a loopback address and a free UDP port, with one SNMPv2c
//! community and one SNMPv3 authPriv user, for LOAD monitors that must authenticate. It serves
//! the host's own UCD-SNMP-MIB figures (load average, memory); it is killed and its directory
//! removed on drop.

use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::path::Path;
use std::process::{Child, Command, Stdio};

use crate::files::TempDir;

/// How the agent authenticates its clients.
#[derive(Debug, Clone)]
pub struct SnmpdUsers {
    /// The v1/v2c read-only community.
    pub community: String,
    /// The v3 user, with SHA authentication and AES privacy.
    pub user: String,
    pub auth_password: String,
    pub priv_password: String,
}

/// A running `snmpd`.
#[derive(Debug)]
pub struct Snmpd {
    pub addr: SocketAddr,
    child: Child,
    _dir: TempDir,
}

impl Snmpd {
    /// Starts snmpd on `ip` and a free UDP port. Panics with a clear message when net-snmp is
    /// not installed.
    pub fn start(ip: IpAddr, users: &SnmpdUsers) -> Snmpd {
        assert!(
            Path::new("/usr/sbin/snmpd").is_file(),
            "`snmpd` is not installed: this test needs net-snmp (apt-get install -y snmpd)"
        );
        let dir = TempDir::new("snmpd");
        std::fs::create_dir_all(dir.path().join("state")).expect("snmpd state directory");
        let port = UdpSocket::bind(SocketAddr::new(ip, 0))
            .and_then(|socket| socket.local_addr())
            .expect("a free UDP port")
            .port();
        let conf = format!(
            "agentAddress udp:{ip}:{port}\n\
             view all included .1\n\
             rocommunity {community} 127.0.0.0/8 -V all\n\
             createUser {user} SHA \"{auth}\" AES \"{privacy}\"\n\
             rouser {user} authpriv -V all\n",
            community = users.community,
            user = users.user,
            auth = users.auth_password,
            privacy = users.priv_password,
        );
        let conf_path = dir.write("snmpd.conf", conf);
        let child = Command::new("/usr/sbin/snmpd")
            .args(["-f", "-Lf"])
            .arg(dir.path().join("snmpd.log"))
            .args(["-C", "-I", "-smux", "-c"])
            .arg(&conf_path)
            .arg("-p")
            .arg(dir.path().join("snmpd.pid"))
            .env("SNMP_PERSISTENT_DIR", dir.path().join("state"))
            .env("MIBS", "")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start snmpd");
        Snmpd {
            addr: SocketAddr::new(ip, port),
            child,
            _dir: dir,
        }
    }
}

impl Drop for Snmpd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
