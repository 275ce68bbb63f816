//! The poller task: feeds the core with datagrams, timer wake-ups and commands, and sends what
//! it queues.

use std::future::poll_fn;
use std::hash::Hash;
use std::io;
use std::net::SocketAddr;
use std::task::Poll;
use std::time::Duration;

use socket2::{Domain, Protocol, Socket, Type};
use tokio::io::ReadBuf;
use tokio::net::UdpSocket;
use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::sample::Sample;

use super::core::{Core, SocketCounts};
use super::{Command, PollerConfig};

/// Most datagrams read in one go before timers and sends get their turn.
const READ_BATCH: usize = 512;

pub(super) struct Sockets {
    all: Vec<UdpSocket>,
    counts: SocketCounts,
}

impl Sockets {
    pub fn bind(config: &PollerConfig) -> io::Result<Self> {
        let per_family = config.sockets.max(1);
        let mut all = Vec::new();
        let mut counts = SocketCounts { v4: 0, v6: 0 };
        if let Some(ip) = config.bind_v4.filter(std::net::IpAddr::is_ipv4) {
            for _ in 0..per_family {
                all.push(bind_one(SocketAddr::new(ip, 0), config.recv_buffer)?);
                counts.v4 += 1;
            }
        }
        if let Some(ip) = config.bind_v6.filter(std::net::IpAddr::is_ipv6) {
            for _ in 0..per_family {
                match bind_one(SocketAddr::new(ip, 0), config.recv_buffer) {
                    Ok(socket) => {
                        all.push(socket);
                        counts.v6 += 1;
                    }
                    // A host without IPv6 still polls its IPv4 members.
                    Err(error) => {
                        tracing::debug!(%error, "no IPv6 socket for the SNMP poller");
                        break;
                    }
                }
            }
        }
        Ok(Self { all, counts })
    }

    pub fn counts(&self) -> SocketCounts {
        self.counts
    }

    pub fn local_addrs(&self) -> Vec<SocketAddr> {
        self.all
            .iter()
            .filter_map(|s| s.local_addr().ok())
            .collect()
    }
}

fn bind_one(addr: SocketAddr, recv_buffer: usize) -> io::Result<UdpSocket> {
    let socket = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    if addr.is_ipv6() {
        socket.set_only_v6(true)?;
    }
    // Best effort: the kernel caps the size at net.core.rmem_max.
    let _ = socket.set_recv_buffer_size(recv_buffer);
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    UdpSocket::from_std(socket.into())
}

pub(super) async fn run<K: Clone + Eq + Hash>(
    mut core: Core<K>,
    sockets: Sockets,
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
        flush(&mut core, &sockets.all, &mut outbox, now).await;
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

async fn flush<K: Clone + Eq + Hash>(
    core: &mut Core<K>,
    sockets: &[UdpSocket],
    outbox: &mut Vec<usize>,
    now: Instant,
) {
    core.take_outbox(outbox);
    for &slot in outbox.iter() {
        let Some((socket, addr, bytes)) = core.outgoing(slot) else {
            continue;
        };
        let Some(socket) = socket.and_then(|i| sockets.get(i)) else {
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
