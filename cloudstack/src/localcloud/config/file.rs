//! The config file as written (serde, unknown keys rejected), and its validation into
//! [`LocalCloudConfig`]: every problem collected, with its path.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{
    AddressRange, ApiUser, ConfigError, HostSpec, LocalCloudConfig, OfferingSpec, TemplateSpec,
    ZoneSpec, parse_duration,
};
use crate::localcloud::ids;

/// The file as written; see `configs/localcloud.toml` and `docs/cloudstack.md`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    pub listen: Option<String>,
    pub address_range: Option<String>,
    pub boot_delay: Option<String>,
    pub start_timeout: Option<String>,
    pub stop_timeout: Option<String>,
    pub expunge_delay: Option<String>,
    pub ha_delay: Option<String>,
    pub allow_user_expunge: Option<bool>,
    pub max_account_user_vms: Option<i64>,
    pub vm_command: Option<Vec<String>>,
    pub vm_log_dir: Option<PathBuf>,
    #[serde(default)]
    pub apiuser: Vec<FileUser>,
    #[serde(default)]
    pub zone: Vec<FileZone>,
    #[serde(default)]
    pub host: Vec<FileHost>,
    #[serde(default)]
    pub serviceoffering: Vec<FileOffering>,
    #[serde(default)]
    pub template: Vec<FileTemplate>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileUser {
    pub username: String,
    pub account: Option<String>,
    pub apikey: String,
    pub secretkey: String,
    /// `admin` (default) or `user`.
    pub role: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileZone {
    pub name: String,
    pub id: Option<String>,
    /// Name of the zone's guest network (default `<zone>-guest`).
    pub network: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileHost {
    pub name: String,
    pub id: Option<String>,
    pub zone: String,
    pub cpunumber: u32,
    pub cpuspeed: u32,
    pub memory: u32,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileOffering {
    pub name: String,
    pub id: Option<String>,
    pub displaytext: Option<String>,
    pub cpunumber: u32,
    pub cpuspeed: u32,
    pub memory: u32,
    #[serde(default)]
    pub offerha: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileTemplate {
    pub name: String,
    pub id: Option<String>,
    pub displaytext: Option<String>,
    pub port: u16,
    pub request_cpu: Option<String>,
    pub response_bytes: Option<u32>,
    /// Zone names (default: every zone).
    pub zones: Option<Vec<String>>,
    #[serde(default)]
    pub vm_args: Vec<String>,
}

impl FileConfig {
    pub fn validate(self) -> Result<LocalCloudConfig, ConfigError> {
        let mut problems = Vec::new();
        let mut duration = |key: &str, value: &Option<String>, default: Duration| match value {
            None => default,
            Some(text) => parse_duration(text).unwrap_or_else(|| {
                problems.push(format!(
                    "{key}: expected a duration like \"500ms\", \"2s\" or \"1m\", got {text:?}"
                ));
                default
            }),
        };
        let boot_delay = duration("boot_delay", &self.boot_delay, Duration::from_secs(2));
        let start_timeout = duration(
            "start_timeout",
            &self.start_timeout,
            Duration::from_secs(10),
        );
        let stop_timeout = duration("stop_timeout", &self.stop_timeout, Duration::from_secs(5));
        let expunge_delay = duration(
            "expunge_delay",
            &self.expunge_delay,
            Duration::from_secs(60),
        );
        let ha_delay = duration("ha_delay", &self.ha_delay, Duration::from_secs(1));

        let listen_text = self.listen.as_deref().unwrap_or("127.0.0.1:8080");
        let listen = listen_text.parse().unwrap_or_else(|_| {
            problems.push(format!(
                "listen: expected ADDRESS:PORT, got {listen_text:?}"
            ));
            SocketAddr::from(([127, 0, 0, 1], 8080))
        });
        let range_text = self.address_range.as_deref().unwrap_or("127.77.0.0/16");
        let address_range = match AddressRange::parse(range_text) {
            Some(range) if range.network.octets()[0] == 127 => range,
            _ => {
                problems.push(format!(
                    "address_range: expected a range inside 127.0.0.0/8 with a prefix of 8 to 30, got {range_text:?}"
                ));
                AddressRange {
                    network: Ipv4Addr::new(127, 77, 0, 0),
                    prefix: 16,
                }
            }
        };
        let max_account_user_vms = match self.max_account_user_vms.unwrap_or(20) {
            -1 => None,
            limit => u32::try_from(limit).map(Some).unwrap_or_else(|_| {
                problems.push(format!(
                    "max_account_user_vms: expected -1 (no limit) or a count from 0 to {}, got {limit}",
                    u32::MAX
                ));
                None
            }),
        };
        if matches!(&self.vm_command, Some(command) if command.is_empty()) {
            problems.push("vm_command: must name a program".to_string());
        }

        let users = validate_users(&self.apiuser, &mut problems);
        let zones = validate_zones(&self.zone, &mut problems);
        let hosts = validate_hosts(&self.host, &zones, &mut problems);
        let offerings = validate_offerings(&self.serviceoffering, &mut problems);
        let templates = validate_templates(&self.template, &zones, &mut problems);

        if !problems.is_empty() {
            return Err(ConfigError { problems });
        }
        Ok(LocalCloudConfig {
            listen,
            address_range,
            boot_delay,
            start_timeout,
            stop_timeout,
            expunge_delay,
            ha_delay,
            allow_user_expunge: self.allow_user_expunge.unwrap_or(false),
            max_account_user_vms,
            vm_command: self.vm_command,
            vm_log_dir: self.vm_log_dir,
            users,
            zones,
            hosts,
            offerings,
            templates,
        })
    }
}

fn validate_users(users: &[FileUser], problems: &mut Vec<String>) -> Vec<ApiUser> {
    if users.is_empty() {
        problems
            .push("apiuser: at least one [[apiuser]] with apikey and secretkey is needed".into());
    }
    let mut out: Vec<ApiUser> = Vec::new();
    for (i, user) in users.iter().enumerate() {
        let at = format!("apiuser[{i}]");
        if user.username.is_empty() || user.apikey.is_empty() || user.secretkey.is_empty() {
            problems.push(format!(
                "{at}: username, apikey and secretkey must not be empty"
            ));
        }
        if out.iter().any(|u| u.apikey == user.apikey) {
            problems.push(format!("{at}.apikey: used by another user"));
        }
        let admin = match user.role.as_deref().unwrap_or("admin") {
            "admin" => true,
            "user" => false,
            other => {
                problems.push(format!(
                    "{at}.role: expected \"admin\" or \"user\", got {other:?}"
                ));
                false
            }
        };
        let account = user
            .account
            .clone()
            .unwrap_or_else(|| user.username.clone());
        out.push(ApiUser {
            id: ids::stable("user", &user.username),
            accountid: ids::stable("account", &account),
            username: user.username.clone(),
            account,
            apikey: user.apikey.clone(),
            secretkey: user.secretkey.clone(),
            admin,
        });
    }
    out
}

fn validate_zones(zones: &[FileZone], problems: &mut Vec<String>) -> Vec<ZoneSpec> {
    if zones.is_empty() {
        problems.push("zone: at least one [[zone]] is needed".into());
    }
    let mut out: Vec<ZoneSpec> = Vec::new();
    for (i, zone) in zones.iter().enumerate() {
        if out.iter().any(|z| z.name == zone.name) {
            problems.push(format!("zone[{i}].name: {:?} is used twice", zone.name));
        }
        let network_name = zone
            .network
            .clone()
            .unwrap_or_else(|| format!("{}-guest", zone.name));
        out.push(ZoneSpec {
            id: zone
                .id
                .clone()
                .unwrap_or_else(|| ids::stable("zone", &zone.name)),
            name: zone.name.clone(),
            network_id: ids::stable("network", &network_name),
            network_name,
        });
    }
    out
}

fn validate_hosts(
    hosts: &[FileHost],
    zones: &[ZoneSpec],
    problems: &mut Vec<String>,
) -> Vec<HostSpec> {
    if hosts.is_empty() {
        problems.push("host: at least one [[host]] is needed".into());
    }
    let mut out: Vec<HostSpec> = Vec::new();
    for (i, host) in hosts.iter().enumerate() {
        let at = format!("host[{i}]");
        let zone = zones
            .iter()
            .position(|z| z.name == host.zone)
            .unwrap_or_else(|| {
                problems.push(format!("{at}.zone: no zone named {:?}", host.zone));
                0
            });
        if out.iter().any(|h| h.name == host.name) {
            problems.push(format!("{at}.name: {:?} is used twice", host.name));
        }
        if host.cpunumber == 0 || host.cpuspeed == 0 || host.memory == 0 {
            problems.push(format!(
                "{at}: cpunumber, cpuspeed and memory must be at least 1"
            ));
        }
        out.push(HostSpec {
            id: host
                .id
                .clone()
                .unwrap_or_else(|| ids::stable("host", &host.name)),
            name: host.name.clone(),
            zone,
            cpunumber: host.cpunumber,
            cpuspeed: host.cpuspeed,
            memory: host.memory,
        });
    }
    out
}

fn validate_offerings(offerings: &[FileOffering], problems: &mut Vec<String>) -> Vec<OfferingSpec> {
    if offerings.is_empty() {
        problems.push("serviceoffering: at least one [[serviceoffering]] is needed".into());
    }
    let mut out: Vec<OfferingSpec> = Vec::new();
    for (i, offering) in offerings.iter().enumerate() {
        let at = format!("serviceoffering[{i}]");
        if out.iter().any(|o| o.name == offering.name) {
            problems.push(format!("{at}.name: {:?} is used twice", offering.name));
        }
        if offering.cpunumber == 0 || offering.cpuspeed == 0 || offering.memory == 0 {
            problems.push(format!(
                "{at}: cpunumber, cpuspeed and memory must be at least 1"
            ));
        }
        out.push(OfferingSpec {
            id: offering
                .id
                .clone()
                .unwrap_or_else(|| ids::stable("serviceoffering", &offering.name)),
            name: offering.name.clone(),
            displaytext: offering.displaytext.clone().unwrap_or_else(|| {
                format!(
                    "{} x {} MHz, {} MB",
                    offering.cpunumber, offering.cpuspeed, offering.memory
                )
            }),
            cpunumber: offering.cpunumber,
            cpuspeed: offering.cpuspeed,
            memory: offering.memory,
            offerha: offering.offerha,
        });
    }
    out
}

fn validate_templates(
    templates: &[FileTemplate],
    zones: &[ZoneSpec],
    problems: &mut Vec<String>,
) -> Vec<TemplateSpec> {
    if templates.is_empty() {
        problems.push("template: at least one [[template]] is needed".into());
    }
    let mut out: Vec<TemplateSpec> = Vec::new();
    for (i, template) in templates.iter().enumerate() {
        let at = format!("template[{i}]");
        if out.iter().any(|t| t.name == template.name) {
            problems.push(format!("{at}.name: {:?} is used twice", template.name));
        }
        if template.port == 0 {
            problems.push(format!("{at}.port: expected 1..=65535"));
        }
        let request_cpu = match &template.request_cpu {
            None => Duration::ZERO,
            Some(text) => parse_duration(text).unwrap_or_else(|| {
                problems.push(format!(
                    "{at}.request_cpu: expected a duration like \"2ms\", got {text:?}"
                ));
                Duration::ZERO
            }),
        };
        let response_bytes = template.response_bytes.unwrap_or(64);
        if response_bytes > 16 * 1024 * 1024 {
            problems.push(format!("{at}.response_bytes: at most 16777216"));
        }
        let zone_indexes = match &template.zones {
            None => (0..zones.len()).collect(),
            Some(names) => names
                .iter()
                .filter_map(|name| {
                    let found = zones.iter().position(|z| &z.name == name);
                    if found.is_none() {
                        problems.push(format!("{at}.zones: no zone named {name:?}"));
                    }
                    found
                })
                .collect(),
        };
        out.push(TemplateSpec {
            id: template
                .id
                .clone()
                .unwrap_or_else(|| ids::stable("template", &template.name)),
            name: template.name.clone(),
            displaytext: template
                .displaytext
                .clone()
                .unwrap_or_else(|| template.name.clone()),
            port: template.port,
            request_cpu,
            response_bytes,
            zones: zone_indexes,
            vm_args: template.vm_args.clone(),
        });
    }
    out
}
