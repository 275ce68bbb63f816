//! `SSL` and `SSL_TCP` servicegroups: TLS from Ballast to the members (`cafile`, `serverauth`,
//! `snihost`, `clientcertkey`), validated with the paths of the keys.
//!
//! `cafile` is read here, the way certificate files are read ([`super::read`]: regular files
//! only, size-capped), so a change reads it on the writer's blocking pool, never on the data
//! plane. Without `cafile` the system's trust store is used; it is read once per process.

use std::path::Path;
use std::sync::{Arc, OnceLock};

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, ServerName};

use super::file::{FileConfig, ServiceGroupFile};
use super::model::{BackendType, MemberTls};
use super::problems::Problems;
use super::read;
use super::validate::state;

/// A servicegroup's `servicetype`: what it speaks to members, and whether over TLS.
pub(super) fn group_type(text: &str) -> Option<(BackendType, bool)> {
    match text {
        "HTTP" => Some((BackendType::Http, false)),
        "SSL" => Some((BackendType::Http, true)),
        "TCP" => Some((BackendType::Tcp, false)),
        "SSL_TCP" => Some((BackendType::Tcp, true)),
        _ => None,
    }
}

/// The TLS settings of a group (`None` for a plain one); `tls` says whether its servicetype is
/// `SSL` or `SSL_TCP`. Outer `None`: a problem was reported.
pub(super) fn member_tls(
    file: &ServiceGroupFile,
    tls: bool,
    base_dir: &Path,
    path: &str,
    p: &mut Problems,
) -> Option<Option<MemberTls>> {
    if !tls {
        let set = [
            ("cafile", file.cafile.is_some()),
            ("serverauth", file.serverauth.is_some()),
            ("snihost", file.snihost.is_some()),
            ("clientcertkey", file.clientcertkey.is_some()),
        ];
        let mut refused = false;
        for (key, _) in set.iter().filter(|(_, set)| *set) {
            p.add(
                format!("{path}.{key}"),
                format!(
                    "only SSL and SSL_TCP servicegroups speak TLS to their members, this one is {}",
                    file.servicetype
                ),
            );
            refused = true;
        }
        return (!refused).then_some(None);
    }
    let server_auth = state(&file.serverauth, &format!("{path}.serverauth"), p);
    let sni_host = match &file.snihost {
        None => Some(None),
        Some(host) => match ServerName::try_from(host.as_str()) {
            Ok(_) => Some(Some(host.clone())),
            Err(_) => {
                p.add(
                    format!("{path}.snihost"),
                    format!("`{host}` is not a DNS name or an IP address"),
                );
                None
            }
        },
    };
    let ca_file = file.cafile.as_ref().map(|ca| base_dir.join(ca));
    let roots = match (server_auth, &ca_file) {
        (None, _) => None,
        (Some(false), Some(_)) => {
            p.add(
                format!("{path}.cafile"),
                "has no use with serverauth = \"DISABLED\": the member's certificate is not verified",
            );
            None
        }
        (Some(false), None) => Some(Arc::new(Vec::new())),
        (Some(true), Some(ca_file)) => p.check(format!("{path}.cafile"), ca_bundle(ca_file)),
        (Some(true), None) => p.check(format!("{path}.cafile"), system_roots()),
    };
    Some(Some(MemberTls {
        ca_file,
        roots: roots?,
        server_auth: server_auth?,
        sni_host: sni_host?,
        client_cert_key: file.clientcertkey.clone(),
    }))
}

/// The usable CA certificates of the PEM bundle `path` (at least one).
fn ca_bundle(path: &Path) -> Result<Arc<Vec<CertificateDer<'static>>>, String> {
    let pem = read::regular_file(path)?;
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|error| format!("cannot read {}: {error}", path.display()))?;
    let usable = usable(certs);
    if usable.is_empty() {
        return Err(format!(
            "{} holds no usable PEM CA certificate",
            path.display()
        ));
    }
    Ok(Arc::new(usable))
}

/// The system's trust store (`rustls-native-certs`: `SSL_CERT_FILE` / `SSL_CERT_DIR` when set,
/// else where this system keeps its CA certificates), read once per process.
fn system_roots() -> Result<Arc<Vec<CertificateDer<'static>>>, String> {
    static ROOTS: OnceLock<Result<Arc<Vec<CertificateDer<'static>>>, String>> = OnceLock::new();
    ROOTS
        .get_or_init(|| {
            let found = rustls_native_certs::load_native_certs();
            let usable = usable(found.certs);
            if usable.is_empty() {
                let errors: Vec<String> = found.errors.iter().map(ToString::to_string).collect();
                return Err(format!(
                    "no cafile is given and the system's trust store has no usable CA certificate{}; \
                     name a PEM bundle in cafile",
                    if errors.is_empty() {
                        String::new()
                    } else {
                        format!(" ({})", errors.join("; "))
                    }
                ));
            }
            Ok(Arc::new(usable))
        })
        .clone()
}

/// The certificates webpki can use as trust anchors (a bundle may hold some it cannot; they
/// are skipped, as other TLS clients do).
fn usable(certs: Vec<CertificateDer<'static>>) -> Vec<CertificateDer<'static>> {
    certs
        .into_iter()
        .filter(|cert| webpki::anchor_from_trusted_cert(cert).is_ok())
        .collect()
}

/// `clientcertkey` must name an `[[sslcertkey]]`.
pub(super) fn references(
    file: &FileConfig,
    broken: &std::collections::HashSet<String>,
    p: &mut Problems,
) {
    for (index, group) in file.servicegroup.iter().enumerate() {
        let Some(name) = &group.clientcertkey else {
            continue;
        };
        if !file.sslcertkey.iter().any(|c| &c.certkey == name) && !broken.contains(name) {
            p.add(
                format!("servicegroup[{index}].clientcertkey"),
                format!("no sslcertkey named `{name}`"),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::config::validate::from_toml;

    fn problems(text: &str) -> Vec<String> {
        match from_toml(text, std::path::Path::new(".")) {
            Ok(_) => Vec::new(),
            Err(error) => error
                .problems
                .iter()
                .map(|p| format!("{}: {}", p.path, p.message))
                .collect(),
        }
    }

    #[test]
    fn tls_keys_on_a_plain_group_are_refused_by_path() {
        let found = problems(
            r#"
[[servicegroup]]
servicegroupname = "app"
servicetype = "HTTP"
snihost = "app.example"
"#,
        );
        assert_eq!(
            found,
            [
                "servicegroup[0].snihost: only SSL and SSL_TCP servicegroups speak TLS to their members, this one is HTTP"
            ]
        );
    }

    #[test]
    fn bad_values_are_refused_by_path() {
        let found = problems(
            r#"
[[servicegroup]]
servicegroupname = "app"
servicetype = "SSL"
serverauth = "MAYBE"
snihost = "not a name"
clientcertkey = "nope"
"#,
        );
        assert_eq!(
            found,
            [
                "servicegroup[0].serverauth: expected ENABLED or DISABLED, got `MAYBE`",
                "servicegroup[0].snihost: `not a name` is not a DNS name or an IP address",
                "servicegroup[0].clientcertkey: no sslcertkey named `nope`",
            ]
        );
        let found = problems(
            r#"
[[servicegroup]]
servicegroupname = "app"
servicetype = "SSL_TCP"
cafile = "/dev/null"
"#,
        );
        assert_eq!(
            found,
            ["servicegroup[0].cafile: /dev/null is not a regular file (a character device)"]
        );
        let found = problems(
            r#"
[[servicegroup]]
servicegroupname = "app"
servicetype = "SSL"
serverauth = "DISABLED"
cafile = "ca.pem"
"#,
        );
        assert_eq!(
            found,
            [
                "servicegroup[0].cafile: has no use with serverauth = \"DISABLED\": the member's certificate is not verified"
            ]
        );
    }

    #[test]
    fn vserver_and_group_families_must_match() {
        let found = problems(
            r#"
[[servicegroup]]
servicegroupname = "tls"
servicetype = "SSL_TCP"
serverauth = "DISABLED"

[[servicegroup]]
servicegroupname = "web"
servicetype = "SSL"
serverauth = "DISABLED"

[[lbvserver]]
name = "a"
servicetype = "HTTP"
ipv46 = "127.0.0.1"
port = 8080
servicegroupname = "tls"

[[lbvserver]]
name = "b"
servicetype = "TCP"
ipv46 = "127.0.0.1"
port = 8081
servicegroupname = "tls"

[[lbvserver]]
name = "c"
servicetype = "HTTP"
ipv46 = "127.0.0.1"
port = 8082
servicegroupname = "web"
"#,
        );
        assert_eq!(
            found,
            [
                "lbvserver[0].servicegroupname: a HTTP vserver needs an HTTP or SSL servicegroup, `tls` is SSL_TCP"
            ]
        );
    }
}
