//! The poller task: feeds the core with datagrams, timer wake-ups and commands, and sends what
//! it queues.

use std::future::poll_fn;
use std::hash::Hash;
use std::io;
use std::net::SocketAddr;
use std::task::Poll;
use std::time::Duration;

use tokio::io::ReadBuf;
use tokio::net::UdpSocket;
use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::sample::Sample;

use super::Command;
use super::core::Core;
use super::sockets::Sockets;

/// Most datagrams read in one go before timers and sends get their turn.
const READ_BATCH: usize = 512;

pub(super) async fn run<K: Clone + Eq + Hash>(
    mut core: Core<K>,
    mut sockets: Sockets,
    mut commands: mpsc::UnboundedReceiver<Command<K>>,
    samples: mpsc::Sender<Sample<K>>,
) {
    let stats = core.stats.clone();
    let mut buf = vec![0u8; 65536];
    let mut outbox = Vec::new();
    let far = || Instant::now() + Duration::from_secs(3600);
    let sleep = tokio::time::sleep_until(far());
    tokio::pin!(sleep);
    loop {
        let deadline = core.next_deadline().unwrap_or_else(far);
        if sleep.deadline() != deadline {
            sleep.as_mut().reset(deadline);
        }
        tokio::select! {
            command = commands.recv() => match command {
                None => break,
                Some(Command::Watch { member, addr, monitor }) => {
                    core.watch(Instant::now(), member, addr, monitor);
                }
                Some(Command::Unwatch { member }) => core.unwatch(&member),
            },
            received = recv_any(&sockets.all, &mut buf) => {
                let now = Instant::now();
                if let Ok((socket, from, len)) = received {
                    core.on_datagram(now, socket, from, &buf[..len]);
                }
                drain_ready(&mut core, &sockets.all, &mut buf, now);
            }
            () = &mut sleep => {}
        }
        let now = Instant::now();
        core.on_timers(now);
        flush(&mut core, &mut sockets, &mut outbox, now).await;
        for sample in core.drain_samples() {
            if samples.try_send(sample).is_err() {
                stats.sample_dropped();
            }
        }
    }
}

/// The first datagram ready on any socket: `(socket index, source, length)`.
async fn recv_any(sockets: &[UdpSocket], buf: &mut [u8]) -> io::Result<(usize, SocketAddr, usize)> {
    poll_fn(|cx| {
        for (i, socket) in sockets.iter().enumerate() {
            let mut read = ReadBuf::new(buf);
            match socket.poll_recv_from(cx, &mut read) {
                Poll::Ready(Ok(from)) => return Poll::Ready(Ok((i, from, read.filled().len()))),
                Poll::Ready(Err(error)) => return Poll::Ready(Err(error)),
                Poll::Pending => {}
            }
        }
        Poll::Pending
    })
    .await
}

/// Reads what is already queued on every socket, without waiting.
fn drain_ready<K: Clone + Eq + Hash>(
    core: &mut Core<K>,
    sockets: &[UdpSocket],
    buf: &mut [u8],
    now: Instant,
) {
    let mut read = 0;
    let mut progress = true;
    while progress && read < READ_BATCH {
        progress = false;
        for (i, socket) in sockets.iter().enumerate() {
            if let Ok((len, from)) = socket.try_recv_from(buf) {
                core.on_datagram(now, i, from, &buf[..len]);
                read += 1;
                progress = true;
            }
        }
    }
}

/// Sends what the core queued. An agent's first request picks its socket (binding the
/// sockets of its source address if need be); an agent no socket reaches fails this poll and
/// tries again on the next.
async fn flush<K: Clone + Eq + Hash>(
    core: &mut Core<K>,
    sockets: &mut Sockets,
    outbox: &mut Vec<usize>,
    now: Instant,
) {
    core.take_outbox(outbox);
    for &slot in outbox.iter() {
        if let Some((None, addr, _)) = core.outgoing(slot) {
            match sockets.for_agent(addr) {
                Ok(socket) => core.set_socket(slot, socket),
                Err(error) => {
                    tracing::debug!(%addr, %error, "no SNMP socket reaches the agent");
                    core.send_failed(slot, now);
                    continue;
                }
            }
        }
        let Some((socket, addr, bytes)) = core.outgoing(slot) else {
            continue;
        };
        let Some(socket) = socket.and_then(|i| sockets.all.get(i)) else {
            core.send_failed(slot, now);
            continue;
        };
        let sent = match socket.try_send_to(bytes, addr) {
            Err(error) if error.kind() == io::ErrorKind::WouldBlock => {
                socket.send_to(bytes, addr).await
            }
            other => other,
        };
        if let Err(error) = sent {
            tracing::debug!(%addr, %error, "SNMP request not sent");
            core.send_failed(slot, now);
        }
    }
}
