//! The local cloud's config file (TOML) → a validated [`LocalCloudConfig`], every problem
//! reported in one pass with its path (`host[1].zone: no zone named "z2"`).
//!
//! The file is either the local cloud's keys at the top level (`ballast localcloud --config`)
//! or a `[localcloud]` table inside a bigger file (the same keys, one level down).
//! Names follow CloudStack's (`serviceoffering`, `cpunumber`, `cpuspeed` in MHz, `memory` in MB).
//!
//! This file holds the validated model; [`file`] the file format and its validation.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

mod file;

pub use file::{FileConfig, FileHost, FileOffering, FileTemplate, FileUser, FileZone};

/// The local cloud, validated. Ids are the configured ones or stable UUIDs derived from names.
#[derive(Debug, Clone)]
pub struct LocalCloudConfig {
    /// Where `/client/api` (and the fault-injection endpoint) listen.
    pub listen: SocketAddr,
    /// VM addresses come from here (inside 127.0.0.0/8).
    pub address_range: AddressRange,
    /// `Starting` → `Running` takes this long (then the VM's workload must answer).
    pub boot_delay: Duration,
    /// A started VM whose workload does not accept connections within this long fails to start.
    pub start_timeout: Duration,
    /// A graceful stop waits this long for the VM process before killing it.
    pub stop_timeout: Duration,
    /// A VM destroyed without `expunge` stays `Destroyed` this long (CloudStack's `expunge.delay`).
    pub expunge_delay: Duration,
    /// A crashed VM whose offering has HA is restarted after this long.
    pub ha_delay: Duration,
    /// Whether non-admin users may `expunge` (CloudStack's `allow.user.expunge.recover.vm`).
    pub allow_user_expunge: bool,
    /// How many VMs one account may have (CloudStack's `max.account.user.vms`, default 20);
    /// `None`: no limit. Every VM counts until it is destroyed.
    pub max_account_user_vms: Option<u32>,
    /// The VM program and its leading arguments; `None`: this executable with `vm`.
    pub vm_command: Option<Vec<String>>,
    /// Each VM's stderr goes to `<dir>/<vm id>.log`; `None`: discarded.
    pub vm_log_dir: Option<PathBuf>,
    pub users: Vec<ApiUser>,
    pub zones: Vec<ZoneSpec>,
    pub hosts: Vec<HostSpec>,
    pub offerings: Vec<OfferingSpec>,
    pub templates: Vec<TemplateSpec>,
}

/// An API user with its key pair. `role` admin sees `listHosts` and every account with `listall`.
#[derive(Clone)]
pub struct ApiUser {
    pub id: String,
    pub username: String,
    pub account: String,
    pub accountid: String,
    pub apikey: String,
    pub secretkey: String,
    pub admin: bool,
}

impl std::fmt::Debug for ApiUser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiUser")
            .field("username", &self.username)
            .field("account", &self.account)
            .field("apikey", &self.apikey)
            .field("admin", &self.admin)
            .finish_non_exhaustive()
    }
}

/// A zone, with its one guest network.
#[derive(Debug, Clone)]
pub struct ZoneSpec {
    pub id: String,
    pub name: String,
    pub network_id: String,
    pub network_name: String,
}

/// A hypervisor host: its capacity in vCPUs × MHz and MB.
#[derive(Debug, Clone)]
pub struct HostSpec {
    pub id: String,
    pub name: String,
    /// Index into [`LocalCloudConfig::zones`].
    pub zone: usize,
    pub cpunumber: u32,
    pub cpuspeed: u32,
    pub memory: u32,
}

/// A service offering: what a VM gets.
#[derive(Debug, Clone)]
pub struct OfferingSpec {
    pub id: String,
    pub name: String,
    pub displaytext: String,
    pub cpunumber: u32,
    pub cpuspeed: u32,
    pub memory: u32,
    /// Restart the VM (on another host) when it dies, like CloudStack's HA manager.
    pub offerha: bool,
}

/// A template: which workload its VMs run.
#[derive(Debug, Clone)]
pub struct TemplateSpec {
    pub id: String,
    pub name: String,
    pub displaytext: String,
    /// The workload's HTTP port on the VM's address.
    pub port: u16,
    /// CPU time one request costs on a 1000 MHz vCPU (scaled by the offering's `cpuspeed`).
    pub request_cpu: Duration,
    /// Size of each response body.
    pub response_bytes: u32,
    /// Zones it is in (indexes into [`LocalCloudConfig::zones`]).
    pub zones: Vec<usize>,
    /// Extra arguments for the VM program.
    pub vm_args: Vec<String>,
}

/// An IPv4 range `a.b.c.d/len` inside 127.0.0.0/8.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AddressRange {
    pub network: Ipv4Addr,
    pub prefix: u8,
}

impl AddressRange {
    pub fn parse(text: &str) -> Option<Self> {
        let (address, prefix) = text.split_once('/')?;
        let address: Ipv4Addr = address.parse().ok()?;
        let prefix: u8 = prefix.parse().ok()?;
        if !(8..=30).contains(&prefix) {
            return None;
        }
        let mask = u32::MAX << (32 - u32::from(prefix));
        Some(Self {
            network: Ipv4Addr::from(u32::from(address) & mask),
            prefix,
        })
    }

    /// First and last usable address (network and broadcast addresses left out).
    pub fn usable(&self) -> (u32, u32) {
        let base = u32::from(self.network);
        let size = 1_u32 << (32 - u32::from(self.prefix));
        (base + 1, base + size - 2)
    }

    pub fn netmask(&self) -> Ipv4Addr {
        Ipv4Addr::from(u32::MAX << (32 - u32::from(self.prefix)))
    }
}

impl std::fmt::Display for AddressRange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.network, self.prefix)
    }
}

/// The config could not be read or has problems (all of them, one per line).
#[derive(Debug, thiserror::Error)]
#[error("{}", problems.join("\n"))]
pub struct ConfigError {
    pub problems: Vec<String>,
}

impl LocalCloudConfig {
    /// Reads and validates `path`.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|error| ConfigError {
            problems: vec![format!("{}: {error}", path.display())],
        })?;
        Self::from_toml_str(&text)
    }

    /// Parses and validates TOML text.
    pub fn from_toml_str(text: &str) -> Result<Self, ConfigError> {
        let one = |problem: String| ConfigError {
            problems: vec![problem],
        };
        let table: toml::Table = toml::from_str(text).map_err(|error| one(error.to_string()))?;
        let file: FileConfig = match table.get("localcloud") {
            Some(toml::Value::Table(inner)) => {
                FileConfig::deserialize(toml::Value::Table(inner.clone()))
                    .map_err(|error| one(format!("localcloud: {error}")))?
            }
            _ => toml::from_str(text).map_err(|error| one(error.to_string()))?,
        };
        file.validate()
    }
}

/// `"500ms"`, `"2s"`, `"1m"`, `"1h"`, `"0"`.
pub fn parse_duration(text: &str) -> Option<Duration> {
    let text = text.trim();
    if text == "0" {
        return Some(Duration::ZERO);
    }
    let split = text.find(|c: char| !c.is_ascii_digit() && c != '.')?;
    let (number, unit) = text.split_at(split);
    let number: f64 = number.parse().ok()?;
    let seconds = match unit {
        "ms" => number / 1000.0,
        "s" => number,
        "m" => number * 60.0,
        "h" => number * 3600.0,
        _ => return None,
    };
    Duration::try_from_secs_f64(seconds).ok()
}

#[cfg(test)]
mod tests;
