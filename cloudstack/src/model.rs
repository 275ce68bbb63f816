//! Typed CloudStack objects, with the fields an autoscaler uses. Unknown fields are ignored and
//! numbers/booleans may arrive as strings (see [`crate::lenient`]).

use std::fmt;
use std::net::Ipv4Addr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;

use crate::lenient;

/// `listZones` item.
#[derive(Debug, Clone, Deserialize)]
pub struct Zone {
    #[serde(deserialize_with = "lenient::string")]
    pub id: String,
    #[serde(default, deserialize_with = "lenient::string")]
    pub name: String,
    #[serde(default, deserialize_with = "lenient::string")]
    pub networktype: String,
    #[serde(default, deserialize_with = "lenient::string")]
    pub allocationstate: String,
}

/// `listServiceOfferings` item. `cpuspeed` is MHz, `memory` MB.
#[derive(Debug, Clone, Deserialize)]
pub struct ServiceOffering {
    #[serde(deserialize_with = "lenient::string")]
    pub id: String,
    #[serde(default, deserialize_with = "lenient::string")]
    pub name: String,
    #[serde(default, deserialize_with = "lenient::opt_i64")]
    pub cpunumber: Option<i64>,
    #[serde(default, deserialize_with = "lenient::opt_i64")]
    pub cpuspeed: Option<i64>,
    #[serde(default, deserialize_with = "lenient::opt_i64")]
    pub memory: Option<i64>,
    #[serde(default, deserialize_with = "lenient::bool")]
    pub offerha: bool,
    #[serde(default, deserialize_with = "lenient::bool")]
    pub iscustomized: bool,
}

/// `listTemplates` item (one per zone the template is in).
#[derive(Debug, Clone, Deserialize)]
pub struct Template {
    #[serde(deserialize_with = "lenient::string")]
    pub id: String,
    #[serde(default, deserialize_with = "lenient::string")]
    pub name: String,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub zoneid: Option<String>,
    #[serde(default, deserialize_with = "lenient::bool")]
    pub isready: bool,
}

/// `listNetworks` item.
#[derive(Debug, Clone, Deserialize)]
pub struct Network {
    #[serde(deserialize_with = "lenient::string")]
    pub id: String,
    #[serde(default, deserialize_with = "lenient::string")]
    pub name: String,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub zoneid: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub cidr: Option<String>,
    #[serde(default, deserialize_with = "lenient::bool")]
    pub isdefault: bool,
}

/// `listInstanceGroups` item: the named groups VMs are put in with `deployVirtualMachine group=`.
#[derive(Debug, Clone, Deserialize)]
pub struct InstanceGroup {
    #[serde(deserialize_with = "lenient::string")]
    pub id: String,
    #[serde(default, deserialize_with = "lenient::string")]
    pub name: String,
}

/// `listVirtualMachines` item, and the `virtualmachine` of a VM job result.
#[derive(Debug, Clone, Deserialize)]
pub struct VirtualMachine {
    #[serde(deserialize_with = "lenient::string")]
    pub id: String,
    #[serde(default, deserialize_with = "lenient::string")]
    pub name: String,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub displayname: Option<String>,
    #[serde(default)]
    pub state: VmState,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub group: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub groupid: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub zoneid: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub templateid: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub serviceofferingid: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub hostid: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub created: Option<String>,
    #[serde(default, deserialize_with = "lenient::bool")]
    pub haenable: bool,
    #[serde(default, deserialize_with = "lenient::list")]
    pub nic: Vec<Nic>,
    #[serde(default, deserialize_with = "lenient::list")]
    pub tags: Vec<Tag>,
    /// A job pending on this VM, if the server reports one.
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub jobid: Option<String>,
}

impl VirtualMachine {
    /// The VM's address: the `ipaddress` of the default nic (or of the first nic with one).
    pub fn ip_address(&self) -> Option<Ipv4Addr> {
        let default = self.nic.iter().find(|nic| nic.isdefault);
        default
            .into_iter()
            .chain(&self.nic)
            .find_map(|nic| nic.ipaddress.as_deref()?.parse().ok())
    }

    /// The value of tag `key`, if set.
    pub fn tag(&self, key: &str) -> Option<&str> {
        self.tags
            .iter()
            .find(|tag| tag.key == key)
            .map(|tag| tag.value.as_str())
    }
}

/// A VM network interface.
#[derive(Debug, Clone, Deserialize)]
pub struct Nic {
    #[serde(default, deserialize_with = "lenient::string")]
    pub id: String,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub networkid: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub ipaddress: Option<String>,
    #[serde(default, deserialize_with = "lenient::bool")]
    pub isdefault: bool,
}

/// A resource tag.
#[derive(Debug, Clone, Deserialize)]
pub struct Tag {
    #[serde(default, deserialize_with = "lenient::string")]
    pub key: String,
    #[serde(default, deserialize_with = "lenient::string")]
    pub value: String,
}

/// CloudStack's `VirtualMachine.State`. States this client does not know are kept as text.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub enum VmState {
    Starting,
    Running,
    Stopping,
    Stopped,
    Destroyed,
    Expunging,
    Migrating,
    Error,
    Shutdown,
    #[default]
    Unknown,
    Other(String),
}

impl VmState {
    pub fn as_str(&self) -> &str {
        match self {
            Self::Starting => "Starting",
            Self::Running => "Running",
            Self::Stopping => "Stopping",
            Self::Stopped => "Stopped",
            Self::Destroyed => "Destroyed",
            Self::Expunging => "Expunging",
            Self::Migrating => "Migrating",
            Self::Error => "Error",
            Self::Shutdown => "Shutdown",
            Self::Unknown => "Unknown",
            Self::Other(text) => text,
        }
    }

    /// Parses a state name, case-insensitively.
    pub fn parse(text: &str) -> Self {
        [
            Self::Starting,
            Self::Running,
            Self::Stopping,
            Self::Stopped,
            Self::Destroyed,
            Self::Expunging,
            Self::Migrating,
            Self::Error,
            Self::Shutdown,
            Self::Unknown,
        ]
        .into_iter()
        .find(|state| state.as_str().eq_ignore_ascii_case(text))
        .unwrap_or_else(|| Self::Other(text.to_string()))
    }

    /// A transitional state (`Starting`, `Stopping`, `Expunging`, `Migrating`).
    pub fn is_transitional(&self) -> bool {
        matches!(
            self,
            Self::Starting | Self::Stopping | Self::Expunging | Self::Migrating
        )
    }
}

impl fmt::Display for VmState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for VmState {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for VmState {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(Self::parse(&lenient::string(d)?))
    }
}

/// What an async command returns at once: the job, and for async-create commands
/// (`deployVirtualMachine`) the id of the new resource.
#[derive(Debug, Clone, Deserialize)]
pub struct JobRef {
    #[serde(deserialize_with = "lenient::string")]
    pub jobid: String,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub id: Option<String>,
}

/// `queryAsyncJobResult` / `listAsyncJobs` item.
#[derive(Debug, Clone, Deserialize)]
pub struct AsyncJob {
    #[serde(deserialize_with = "lenient::string")]
    pub jobid: String,
    #[serde(default, deserialize_with = "lenient::i64_or_zero")]
    pub jobstatus: i64,
    #[serde(default, deserialize_with = "lenient::i64_or_zero")]
    pub jobresultcode: i64,
    #[serde(default)]
    pub jobresult: Option<Value>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub cmd: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub jobinstancetype: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub jobinstanceid: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub created: Option<String>,
}

impl AsyncJob {
    /// `jobstatus` as a [`JobStatus`].
    pub fn status(&self) -> JobStatus {
        match self.jobstatus {
            0 => JobStatus::Pending,
            1 => JobStatus::Succeeded,
            _ => JobStatus::Failed,
        }
    }
}

/// An async job's `jobstatus`: 0 pending, 1 succeeded, 2 failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobStatus {
    Pending,
    Succeeded,
    Failed,
}

/// `listCapabilities`' `capability` object (a single object, not a list).
#[derive(Debug, Clone, Deserialize)]
pub struct Capabilities {
    #[serde(default, deserialize_with = "lenient::string")]
    pub cloudstackversion: String,
    #[serde(default, deserialize_with = "lenient::bool")]
    pub securitygroupsenabled: bool,
    #[serde(default, deserialize_with = "lenient::opt_i64")]
    pub apilimitmax: Option<i64>,
    #[serde(default, deserialize_with = "lenient::opt_i64")]
    pub apilimitinterval: Option<i64>,
}

/// One page of a list command: the items, and `count` (all matches, not just this page).
#[derive(Debug, Clone)]
pub struct Page<T> {
    pub count: u64,
    pub items: Vec<T>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_vm_from_a_real_looking_answer() {
        let vm: VirtualMachine = serde_json::from_str(
            r#"{"id":"8a1f","name":"web-1","state":"Running","group":"web","haenable":"false",
                "cpunumber":"1","nic":[{"id":"n0","ipaddress":"10.1.1.9","isdefault":false},
                {"id":"n1","ipaddress":"127.77.0.5","isdefault":true,"networkid":"net"}],
                "tags":[{"key":"role","value":"web","resourcetype":"UserVm"}],
                "somethingnew":{"x":1}}"#,
        )
        .expect("valid");
        assert_eq!(vm.state, VmState::Running);
        assert_eq!(vm.ip_address(), Some(Ipv4Addr::new(127, 77, 0, 5)));
        assert_eq!(vm.tag("role"), Some("web"));
        assert_eq!(vm.group.as_deref(), Some("web"));
    }

    #[test]
    fn a_vm_without_address_yet() {
        let vm: VirtualMachine =
            serde_json::from_str(r#"{"id":"1","state":"Starting","nic":{}}"#).expect("valid");
        assert_eq!(vm.ip_address(), None);
        assert!(vm.state.is_transitional());
    }

    #[test]
    fn states_parse_case_insensitively_and_keep_unknown_text() {
        assert_eq!(VmState::parse("running"), VmState::Running);
        assert_eq!(
            VmState::parse("Hibernating"),
            VmState::Other("Hibernating".into())
        );
        assert_eq!(VmState::parse("Hibernating").to_string(), "Hibernating");
    }

    #[test]
    fn job_status_from_strings() {
        let job: AsyncJob =
            serde_json::from_str(r#"{"jobid":"j","jobstatus":"2","jobresultcode":"530"}"#)
                .expect("valid");
        assert_eq!(job.status(), JobStatus::Failed);
        assert_eq!(job.jobresultcode, 530);
    }
}
