//! The vservers' listening sockets, changed in two steps so that a config that cannot listen
//! changes nothing: [`Listeners::prepare`] makes every new socket before the new snapshot is
//! published (a failure rejects the change while the old listeners go on serving), and
//! [`Listeners::commit`] stops the old accept loops and starts the new ones after it.
//!
//! The writer keeps its own handle (a `dup`) of every listening socket. A vserver that moves
//! onto an address a stopping vserver listens on (a new name, a new `servicetype`, two vservers
//! swapping ports) takes that socket over instead of binding it again: the address never stops
//! listening, connections waiting in its backlog are served, and there is no second bind that
//! could fail after the change was published.

use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;

use arc_swap::ArcSwap;
use socket2::{SockRef, Socket};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::ApplyError;
use crate::config::{Config, ServiceType};
use crate::listener::{self, RunningVserver};
use crate::snapshot::Snapshot;

/// The listening vservers.
#[derive(Debug, Default)]
pub struct Listeners {
    running: HashMap<Arc<str>, Listening>,
}

#[derive(Debug)]
struct Listening {
    vserver: RunningVserver,
    /// The writer's own handle of the socket, which a successor can take over.
    socket: Socket,
}

/// A vserver (lbvserver or csvserver) that should listen.
#[derive(Debug)]
pub struct Wanted {
    pub name: String,
    pub addr: SocketAddr,
    pub service_type: ServiceType,
}

/// The vservers of `config` that listen: the enabled lbvservers that are addressable (not
/// `port = 0`) and the enabled csvservers.
pub fn wanted(config: &Config) -> Vec<Wanted> {
    let lb = config
        .vservers
        .iter()
        .filter(|v| v.enabled && v.is_addressable())
        .map(|v| (&v.name, v.addr, v.service_type));
    let cs = config
        .cs_vservers
        .iter()
        .filter(|cs| cs.enabled)
        .map(|cs| (&cs.name, cs.addr, cs.service_type));
    lb.chain(cs)
        .map(|(name, addr, service_type)| Wanted {
            name: name.clone(),
            addr,
            service_type,
        })
        .collect()
}

/// What a change does to the listeners, with every new socket already listening.
#[derive(Debug)]
pub struct ListenerPlan {
    stopping: Vec<Arc<str>>,
    starting: Vec<Starting>,
}

#[derive(Debug)]
struct Starting {
    name: Arc<str>,
    service_type: ServiceType,
    listener: TcpListener,
    socket: Socket,
}

impl Listeners {
    /// Makes the sockets of the vservers in `wanted` that do not listen as they should yet.
    /// Nothing running changes; an error names the vserver and its address.
    pub fn prepare(&self, wanted: &[Wanted]) -> Result<ListenerPlan, ApplyError> {
        let keeps = |running: &RunningVserver| {
            wanted.iter().any(|v| {
                *v.name == *running.name
                    && v.addr == running.addr
                    && v.service_type == running.service_type
            })
        };
        let stopping: Vec<Arc<str>> = self
            .running
            .values()
            .filter(|l| !keeps(&l.vserver))
            .map(|l| l.vserver.name.clone())
            .collect();
        let released: HashMap<SocketAddr, &Socket> = stopping
            .iter()
            .map(|name| &self.running[name])
            .map(|l| (l.vserver.addr, &l.socket))
            .collect();
        let mut starting = Vec::new();
        for vserver in wanted {
            if self
                .running
                .get(vserver.name.as_str())
                .is_some_and(|l| keeps(&l.vserver))
            {
                continue;
            }
            let listener = match released.get(&vserver.addr) {
                Some(socket) => take_over(socket),
                None => listener::bind(vserver.addr),
            };
            let (listener, socket) =
                listener
                    .and_then(with_handle)
                    .map_err(|source| ApplyError::Bind {
                        vserver: vserver.name.clone(),
                        addr: vserver.addr,
                        source,
                    })?;
            starting.push(Starting {
                name: vserver.name.as_str().into(),
                service_type: vserver.service_type,
                listener,
                socket,
            });
        }
        Ok(ListenerPlan { stopping, starting })
    }

    /// Stops the accept loops that `plan` replaces and starts the new ones (once the snapshot
    /// that names them is published).
    pub fn commit(
        &mut self,
        plan: ListenerPlan,
        snapshot: &Arc<ArcSwap<Snapshot>>,
        tracker: &TaskTracker,
        shutdown: &CancellationToken,
    ) -> Result<(), ApplyError> {
        for name in plan.stopping {
            if let Some(stopped) = self.running.remove(&name) {
                stopped.vserver.stop();
                tracing::info!(vserver = %name, address = %stopped.vserver.addr, "vserver stopped listening");
            }
        }
        let mut failed = None;
        for starting in plan.starting {
            let Starting {
                name,
                service_type,
                listener,
                socket,
            } = starting;
            let spawned = listener::spawn(
                listener,
                name.clone(),
                service_type,
                snapshot.clone(),
                tracker.clone(),
                shutdown.clone(),
            );
            match spawned {
                Ok(vserver) => {
                    tracing::info!(vserver = %name, address = %vserver.addr, servicetype = service_type.as_str(), "vserver listening");
                    self.running.insert(name, Listening { vserver, socket });
                }
                Err(source) => {
                    tracing::error!(vserver = %name, error = %source, "cannot start accept loop");
                    failed.get_or_insert(ApplyError::AcceptLoop {
                        vserver: name.to_string(),
                        source,
                    });
                }
            }
        }
        failed.map_or(Ok(()), Err)
    }

    /// Stops every accept loop and closes every socket (shutdown: new connections are refused
    /// at once instead of waiting in a backlog nobody accepts from).
    pub fn close_all(&mut self) {
        for (_, closing) in self.running.drain() {
            closing.vserver.stop();
        }
    }
}

/// A new listener on the socket a stopping vserver listens on.
fn take_over(socket: &Socket) -> io::Result<TcpListener> {
    let shared: std::net::TcpListener = socket.try_clone()?.into();
    shared.set_nonblocking(true)?;
    TcpListener::from_std(shared)
}

/// The listener with the writer's own handle of its socket.
fn with_handle(listener: TcpListener) -> io::Result<(TcpListener, Socket)> {
    let socket = SockRef::from(&listener).try_clone()?;
    Ok((listener, socket))
}
