//! The SNMP agent each local-cloud VM (`ballast vm`) runs, so LOAD monitors and net-snmp's tools
//! can read the VM's load.
//!
//! It answers SNMPv2c GET, GETNEXT and GETBULK for sysDescr, sysUpTime, the UCD-SNMP-MIB CPU
//! percentages (ssCpuUser/System/Idle), memTotalReal/memAvailReal and laLoad.1, with values
//! from a caller-supplied source ([`ProcessSampler`] computes them from the process's own CPU
//! time and resident memory). Requests with another community, another version or that do not
//! decode are dropped silently, as net-snmp's snmpd does.
//!
//! - [`mib`]: the served OIDs and GET/GETNEXT lookups.
//! - [`process`]: the VM process's own CPU and memory use from `/proc/self`.

pub mod mib;
pub mod process;

use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use tokio::net::UdpSocket;
use tokio::time::Instant;

use crate::pdu::{CommunityMessage, PduType, Version};

pub use process::{ProcessSampler, VmShare};

/// What the agent reports; read from the source on every request.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AgentValues {
    /// ssCpuUser: user CPU over the last interval, % of the VM's vCPUs.
    pub cpu_user: u32,
    /// ssCpuSystem, %.
    pub cpu_system: u32,
    /// ssCpuIdle, %: `100 - user - system`.
    pub cpu_idle: u32,
    /// memTotalReal, kB: the VM's memory size.
    pub mem_total_kb: u64,
    /// memAvailReal, kB: size minus the process's resident memory.
    pub mem_avail_kb: u64,
    /// laLoad.1 (served as a string such as `"0.42"`); `None` leaves it out.
    pub load: Option<f64>,
}

impl Default for AgentValues {
    fn default() -> Self {
        Self {
            cpu_user: 0,
            cpu_system: 0,
            cpu_idle: 100,
            mem_total_kb: 0,
            mem_avail_kb: 0,
            load: None,
        }
    }
}

/// Requests answered and dropped, for the VM's own metrics.
#[derive(Debug, Default)]
pub struct AgentStats {
    pub answered: AtomicU64,
    /// Wrong community, unsupported version or PDU, or not SNMP at all.
    pub dropped: AtomicU64,
}

/// Answers requests on `socket` until an I/O error. Bind the socket yourself (tests bind
/// `127.0.0.1:0`), e.g. `UdpSocket::bind("0.0.0.0:161")`.
pub async fn serve<F>(
    socket: UdpSocket,
    community: &str,
    source: F,
    stats: Arc<AgentStats>,
) -> io::Result<()>
where
    F: Fn() -> AgentValues,
{
    let started = Instant::now();
    let community = community.as_bytes().to_vec();
    let mut buf = vec![0u8; 65536];
    loop {
        let (len, from) = socket.recv_from(&mut buf).await?;
        let uptime = started.elapsed();
        match respond(&buf[..len], &community, &source, uptime) {
            Some(reply) => {
                stats.answered.fetch_add(1, Relaxed);
                // A lost reply is the client's retry to make.
                let _ = socket.send_to(&reply, from).await;
            }
            None => {
                stats.dropped.fetch_add(1, Relaxed);
            }
        }
    }
}

/// Most varbinds one GETBULK answer carries.
const MAX_BULK: usize = 64;

/// The reply to one request, or `None` to stay silent.
pub fn respond(
    request: &[u8],
    community: &[u8],
    source: &dyn Fn() -> AgentValues,
    uptime: std::time::Duration,
) -> Option<Vec<u8>> {
    let msg = CommunityMessage::decode(request).ok()?;
    if msg.version != Version::V2c || msg.community != community {
        return None;
    }
    let values = source();
    let table = mib::Mib::new(&values, uptime);
    let requested: Vec<_> = msg.pdu.varbinds.clone().collect::<Result<_, _>>().ok()?;
    let mut answers: Vec<(Vec<u8>, mib::Owned)> = Vec::with_capacity(requested.len());
    match msg.pdu.kind {
        PduType::Get => {
            for vb in &requested {
                answers.push((vb.oid.to_vec(), table.get(vb.oid)));
            }
        }
        PduType::GetNext => {
            for vb in &requested {
                answers.push(table.next(vb.oid));
            }
        }
        PduType::GetBulk => {
            let non_repeaters = usize::try_from(msg.pdu.error_status.max(0))
                .unwrap_or(0)
                .min(requested.len());
            let max_repetitions = usize::try_from(msg.pdu.error_index.max(0)).unwrap_or(0);
            for vb in &requested[..non_repeaters] {
                answers.push(table.next(vb.oid));
            }
            let mut cursors: Vec<Vec<u8>> = requested[non_repeaters..]
                .iter()
                .map(|vb| vb.oid.to_vec())
                .collect();
            'rows: for _ in 0..max_repetitions {
                if cursors.is_empty() {
                    break;
                }
                for cursor in &mut cursors {
                    if answers.len() >= MAX_BULK {
                        break 'rows;
                    }
                    let (oid, value) = table.next(cursor);
                    *cursor = oid.clone();
                    answers.push((oid, value));
                }
            }
        }
        _ => return None,
    }
    let varbinds = answers
        .iter()
        .map(|(oid, value)| (oid.as_slice(), value.as_value()));
    Some(CommunityMessage::encode(
        Version::V2c,
        community,
        PduType::Response,
        msg.pdu.request_id,
        0,
        0,
        varbinds,
    ))
}
