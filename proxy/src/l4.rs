//! The L4 data plane (`TCP` and `SSL_TCP` vservers): pick a member per connection and relay
//! bytes both ways until either side closes.
//!
//! The relay uses tokio's `copy_bidirectional` with its default 8 KiB buffers; on this kind of
//! machine that was measured at 0.96× HAProxy's throughput (see `bench tcp`), and `splice(2)`
//! would need `unsafe` for a 20% CPU saving that loopback throughput did not show.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;

use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::lb::PickKey;
use crate::snapshot::VserverPlan;

const MAX_ATTEMPTS: usize = 4;

/// Relays one client connection through `plan` (the snapshot current when it was accepted).
pub async fn relay<IO>(mut client: IO, client_addr: SocketAddr, plan: Arc<VserverPlan>)
where
    IO: AsyncRead + AsyncWrite + Unpin,
{
    let Some(group) = &plan.group else {
        tracing::debug!(vserver = %plan.name, "no servicegroup bound; closing the connection");
        return;
    };
    let key = PickKey {
        client: client_addr.ip(),
        url: None,
    };
    let mut tried = Vec::new();
    while tried.len() < MAX_ATTEMPTS {
        let Some(index) = plan
            .balancer
            .pick(&group.members, &group.weights, key, &tried)
        else {
            break;
        };
        tried.push(index);
        let member = &group.members[index];
        let connected =
            tokio::time::timeout(group.connect_timeout, TcpStream::connect(member.key.addr)).await;
        let mut server = match connected {
            Ok(Ok(stream)) => stream,
            Ok(Err(_)) | Err(_) => {
                member.connect_failed(group.passive_retries, "connect failed");
                continue;
            }
        };
        member.connect_succeeded();
        let _ = server.set_nodelay(true);
        let _guard = member.begin();
        member.counters.requests.fetch_add(1, Relaxed);
        plan.stats.requests.fetch_add(1, Relaxed);
        let result = tokio::io::copy_bidirectional(&mut client, &mut server).await;
        if let Ok((to_member, to_client)) = result {
            member.counters.request_bytes.fetch_add(to_member, Relaxed);
            member.counters.response_bytes.fetch_add(to_client, Relaxed);
            plan.stats.request_bytes.fetch_add(to_member, Relaxed);
            plan.stats.response_bytes.fetch_add(to_client, Relaxed);
        }
        return;
    }
    tracing::debug!(vserver = %plan.name, "no member available; closing the connection");
    let _ = client.shutdown().await;
}
