//! `lbmonitor type LOAD`: what an operator configures ([`LoadMonitorSpec`]) and the checked,
//! ready-to-poll form ([`LoadMonitor`]) with pre-encoded OIDs, request template and v3 keys.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use crate::ber::{Writer, tag};
use crate::error::SpecError;
use crate::load::{self, MetricBinding, Verdict};
use crate::pdu::{PduType, Version};
use crate::table::MetricTable;
use crate::usm::{MasterKeys, UsmUser};

/// Most OIDs one monitor may poll (they all go in one GET).
pub const MAX_OIDS: usize = 64;

/// How the monitor talks to agents: `snmpversion` plus community or v3 user. `Debug` never
/// shows the community (nor, through [`UsmUser`], the v3 passphrases).
#[derive(Clone, PartialEq, Eq)]
pub enum Security {
    V1 { community: String },
    V2c { community: String },
    V3(UsmUser),
}

impl std::fmt::Debug for Security {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Security::V1 { .. } => f.write_str("V1 { community: <redacted> }"),
            Security::V2c { .. } => f.write_str("V2c { community: <redacted> }"),
            Security::V3(user) => f.debug_tuple("V3").field(user).finish(),
        }
    }
}

/// A `LOAD` monitor as configured. Build one with [`LoadMonitorSpec::new`], adjust the public
/// fields, then check it with [`LoadMonitor::new`].
#[derive(Debug, Clone, PartialEq)]
pub struct LoadMonitorSpec {
    /// `monitorname`, copied into every sample.
    pub name: String,
    pub security: Security,
    /// `metrictable`.
    pub table: MetricTable,
    /// `lbmonitor_metric_binding`s: thresholds and weights. Metrics of the table without a
    /// binding are still polled and published.
    pub bindings: Vec<MetricBinding>,
    /// Time between the starts of two polls of one member (default 5 s).
    pub interval: Duration,
    /// How long one request waits for its reply (default 2 s; must be below `interval`).
    pub resptimeout: Duration,
    /// Retransmissions of a request that got no reply, as net-snmp's `-r` (default 1). A
    /// silent agent costs `(1 + retries) × resptimeout` per poll; other agents are not delayed.
    pub retries: u32,
    /// UDP port of the agents (default 161).
    pub destport: u16,
}

impl LoadMonitorSpec {
    /// A spec with NetScaler's timing defaults and no bindings.
    pub fn new(name: &str, security: Security, table: MetricTable) -> Self {
        Self {
            name: name.to_owned(),
            security,
            table,
            bindings: Vec::new(),
            interval: Duration::from_secs(5),
            resptimeout: Duration::from_secs(2),
            retries: 1,
            destport: 161,
        }
    }
}

/// A checked monitor, shared (`Arc`) by every member it polls.
#[derive(Debug)]
pub struct LoadMonitor {
    spec: LoadMonitorSpec,
    name: Arc<str>,
    /// BER contents of each polled OID, in table order.
    pub(crate) oids: Vec<Vec<u8>>,
    pub(crate) access: Access,
}

/// Per-version pieces prepared once.
#[derive(Debug)]
pub(crate) enum Access {
    Community {
        version: Version,
        community: Vec<u8>,
        template: Template,
    },
    Usm(MasterKeys),
}

/// A whole v1/v2c GET whose 4-byte request id sits at `request_id_at`.
#[derive(Debug)]
pub(crate) struct Template {
    pub bytes: Vec<u8>,
    pub request_id_at: usize,
}

impl LoadMonitor {
    /// Checks the spec (every binding names a metric of the table, thresholds positive,
    /// `resptimeout < interval`, v3 passphrases of at least 8 characters) and derives keys.
    pub fn new(spec: LoadMonitorSpec) -> Result<Arc<Self>, SpecError> {
        if spec.table.metrics.is_empty() {
            return Err(SpecError::EmptyTable(spec.table.name.clone()));
        }
        if spec.table.metrics.len() > MAX_OIDS {
            return Err(SpecError::TooManyOids(spec.table.metrics.len()));
        }
        for binding in &spec.bindings {
            if !spec.table.metric_names().any(|n| *n == binding.metric) {
                return Err(SpecError::UnknownMetric {
                    metric: binding.metric.to_string(),
                    table: spec.table.name.clone(),
                });
            }
            if binding
                .threshold
                .is_some_and(|t| !(t.is_finite() && t > 0.0))
            {
                return Err(SpecError::BadThreshold(binding.metric.to_string()));
            }
            if !(binding.weight.is_finite() && binding.weight >= 0.0) {
                return Err(SpecError::BadWeight(binding.metric.to_string()));
            }
        }
        if spec.interval.is_zero() || spec.resptimeout.is_zero() {
            return Err(SpecError::ZeroDuration);
        }
        if spec.resptimeout >= spec.interval {
            return Err(SpecError::TimeoutNotBelowInterval {
                resptimeout_ms: spec.resptimeout.as_millis(),
                interval_ms: spec.interval.as_millis(),
            });
        }
        let oids: Vec<Vec<u8>> = spec.table.metrics.iter().map(|m| m.oid.to_ber()).collect();
        let access = match &spec.security {
            Security::V1 { community } | Security::V2c { community } => {
                if community.is_empty() {
                    return Err(SpecError::EmptyCommunity);
                }
                let version = if matches!(spec.security, Security::V1 { .. }) {
                    Version::V1
                } else {
                    Version::V2c
                };
                let template = Template::get(version, community.as_bytes(), &oids);
                Access::Community {
                    version,
                    community: community.as_bytes().to_vec(),
                    template,
                }
            }
            Security::V3(user) => Access::Usm(user.master_keys()?),
        };
        let name = spec.name.as_str().into();
        Ok(Arc::new(Self {
            spec,
            name,
            oids,
            access,
        }))
    }

    pub fn spec(&self) -> &LoadMonitorSpec {
        &self.spec
    }

    pub fn name(&self) -> &Arc<str> {
        &self.name
    }

    /// The agent address for a member's IP: `ip:destport`.
    pub fn target(&self, ip: IpAddr) -> SocketAddr {
        SocketAddr::new(ip, self.spec.destport)
    }

    /// Load and BUSY state for a sample's values.
    pub fn evaluate(&self, values: &[(Arc<str>, f64)]) -> Verdict {
        load::evaluate(&self.spec.bindings, values)
    }
}

impl Template {
    fn get(version: Version, community: &[u8], oids: &[Vec<u8>]) -> Self {
        let mut w = Writer::new();
        let msg = w.open(tag::SEQUENCE);
        w.integer(version.wire());
        w.octets(community);
        let pdu = w.open(PduType::Get.tag());
        let mark = w.track(w.position() + 2);
        w.primitive(tag::INTEGER, &[0x7f, 0xff, 0xff, 0xff]);
        w.integer(0);
        w.integer(0);
        let list = w.open(tag::SEQUENCE);
        for oid in oids {
            let vb = w.open(tag::SEQUENCE);
            w.primitive(tag::OID, oid);
            w.null();
            w.close(vb);
        }
        w.close(list);
        w.close(pdu);
        w.close(msg);
        let request_id_at = w.tracked(mark).expect("mark was just taken");
        Self {
            bytes: w.into_bytes(),
            request_id_at,
        }
    }

    /// Writes the template with `request_id` (which must encode in exactly 4 bytes) into `out`.
    pub fn fill(&self, request_id: i32, out: &mut Vec<u8>) {
        out.clear();
        out.extend_from_slice(&self.bytes);
        out[self.request_id_at..self.request_id_at + 4].copy_from_slice(&request_id.to_be_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pdu::CommunityMessage;
    use crate::table::linux;

    fn spec() -> LoadMonitorSpec {
        LoadMonitorSpec::new(
            "load-mon",
            Security::V2c {
                community: "public".into(),
            },
            MetricTable::linux(),
        )
    }

    #[test]
    fn debug_never_shows_the_community() {
        let mut spec = spec();
        spec.security = Security::V1 {
            community: "s3cret-community".into(),
        };
        assert!(!format!("{spec:?}").contains("s3cret-community"));
        spec.security = Security::V2c {
            community: "s3cret-community".into(),
        };
        let shown = format!("{spec:?}");
        assert!(shown.contains("V2c { community: <redacted> }"), "{shown}");
        assert!(!shown.contains("s3cret-community"));
    }

    #[test]
    fn template_carries_the_request_id_and_every_oid() {
        let monitor = LoadMonitor::new(spec()).unwrap();
        let Access::Community { template, .. } = &monitor.access else {
            panic!("v2c")
        };
        let mut out = Vec::new();
        template.fill(0x0123_4567, &mut out);
        let msg = CommunityMessage::decode(&out).unwrap();
        assert_eq!(msg.pdu.request_id, 0x0123_4567);
        assert_eq!(msg.pdu.varbinds.count(), 6);
    }

    #[test]
    fn refuses_specs_that_cannot_work() {
        let mut bad = spec();
        bad.bindings
            .push(MetricBinding::new("nope", Some(1.0), 1.0));
        assert!(matches!(
            LoadMonitor::new(bad),
            Err(SpecError::UnknownMetric { .. })
        ));
        let mut bad = spec();
        bad.bindings
            .push(MetricBinding::new(linux::CPU, Some(0.0), 1.0));
        assert!(matches!(
            LoadMonitor::new(bad),
            Err(SpecError::BadThreshold(_))
        ));
        let mut bad = spec();
        bad.resptimeout = bad.interval;
        assert!(matches!(
            LoadMonitor::new(bad),
            Err(SpecError::TimeoutNotBelowInterval { .. })
        ));
        let mut bad = spec();
        bad.security = Security::V3(UsmUser::auth_priv(
            "u",
            crate::AuthProtocol::Sha1,
            "short",
            crate::PrivProtocol::Aes128,
            "longenough",
        ));
        assert!(matches!(
            LoadMonitor::new(bad),
            Err(SpecError::ShortPassphrase { .. })
        ));
    }
}
