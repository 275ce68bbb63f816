//! The L4 data plane (`TCP` and `SSL_TCP` vservers): pick a member per connection and relay
//! bytes both ways until both sides are done.
//!
//! Two relays, chosen by `[ballast] l4relay`: `splice` (the default; [`splice`]: kernel pipe, no
//! copy through user space; plain `TCP` only) and `copy` (tokio's `copy_bidirectional`, 8 KiB
//! buffers in user space; what `SSL_TCP` always uses). `bench tcp` measured 4 GiB transfers on
//! loopback: splice 9.2 Gbit/s at 0.28 relay CPU-seconds per GiB, copy 6.5 Gbit/s at 1.28.

pub mod splice;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;

use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::config::L4Relay;
use crate::lb::PickKey;
use crate::member::ActiveGuard;
use crate::snapshot::VserverPlan;

const MAX_ATTEMPTS: usize = 4;

/// Relays a plain TCP client connection with the vserver's configured relay.
pub async fn relay_tcp(
    client: TcpStream,
    client_addr: SocketAddr,
    plan: Arc<VserverPlan>,
    relay: L4Relay,
) {
    match relay {
        L4Relay::Copy => relay_copy(client, client_addr, plan).await,
        L4Relay::Splice => {
            let Some((server, guard)) = connect(&plan, client_addr).await else {
                return;
            };
            let result = splice::relay(&client, &server).await;
            account(&plan, &guard, result.ok());
        }
    }
}

/// Relays any client stream (plain or TLS) by copying through user-space buffers.
pub async fn relay_copy<IO>(mut client: IO, client_addr: SocketAddr, plan: Arc<VserverPlan>)
where
    IO: AsyncRead + AsyncWrite + Unpin,
{
    let Some((mut server, guard)) = connect(&plan, client_addr).await else {
        let _ = client.shutdown().await;
        return;
    };
    let result = tokio::io::copy_bidirectional(&mut client, &mut server).await;
    account(&plan, &guard, result.ok());
}

/// Picks a member and connects, retrying connect failures on other members.
async fn connect(plan: &VserverPlan, client_addr: SocketAddr) -> Option<(TcpStream, ActiveGuard)> {
    let Some(group) = &plan.group else {
        tracing::debug!(vserver = %plan.name, "no servicegroup bound; closing the connection");
        return None;
    };
    let key = PickKey {
        client: client_addr.ip(),
        url: None,
    };
    let mut tried = Vec::new();
    while tried.len() < MAX_ATTEMPTS {
        let index = plan
            .balancer
            .pick(&group.members, &group.weights, key, &tried)?;
        tried.push(index);
        let member = &group.members[index];
        match tokio::time::timeout(group.connect_timeout, TcpStream::connect(member.key.addr)).await
        {
            Ok(Ok(server)) => {
                member.connect_succeeded();
                let _ = server.set_nodelay(true);
                member.counters.requests.fetch_add(1, Relaxed);
                plan.stats.requests.fetch_add(1, Relaxed);
                return Some((server, member.begin()));
            }
            Ok(Err(_)) | Err(_) => member.connect_failed(group.passive_retries, "connect failed"),
        }
    }
    tracing::debug!(vserver = %plan.name, "no member available; closing the connection");
    None
}

fn account(plan: &VserverPlan, guard: &ActiveGuard, moved: Option<(u64, u64)>) {
    if let Some((to_member, to_client)) = moved {
        let member = guard.member();
        member.counters.request_bytes.fetch_add(to_member, Relaxed);
        member.counters.response_bytes.fetch_add(to_client, Relaxed);
        plan.stats.request_bytes.fetch_add(to_member, Relaxed);
        plan.stats.response_bytes.fetch_add(to_client, Relaxed);
    }
}
