//! An L4 connection's line: begun when the connection is accepted, written when it closes
//! (or when no member could take it).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::SystemTime;

use tokio::time::Instant;

use super::AccessLog;
use super::record::{Kind, Record, TcpFields, Termination, Trace};

/// A connection whose line is not written yet; does nothing when no access log is configured.
#[derive(Debug)]
pub struct ConnectionLog(Option<Begun>);

#[derive(Debug)]
struct Begun {
    log: AccessLog,
    time: SystemTime,
    arrived: Instant,
    client: SocketAddr,
    vserver: Arc<str>,
}

impl ConnectionLog {
    pub fn begin(log: Option<AccessLog>, vserver: &Arc<str>, client: SocketAddr) -> ConnectionLog {
        ConnectionLog(log.map(|log| Begun {
            log,
            time: SystemTime::now(),
            arrived: Instant::now(),
            client,
            vserver: vserver.clone(),
        }))
    }

    /// Writes the line: `bytes_received` from the client, `bytes_sent` to it.
    pub fn finish(
        self,
        trace: Trace,
        bytes_received: u64,
        bytes_sent: u64,
        termination: Termination,
    ) {
        let Some(begun) = self.0 else { return };
        begun.log.log(Record {
            time: begun.time,
            client: begun.client,
            vserver: begun.vserver,
            target: None,
            queue: trace.queue(begun.arrived),
            connect: trace.connect,
            servicegroup: trace.servicegroup,
            member: trace.member,
            total: begun.arrived.elapsed(),
            termination,
            kind: Kind::Tcp(TcpFields {
                bytes_received,
                bytes_sent,
            }),
        });
    }
}
