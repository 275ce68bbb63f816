//! Memory per idle connection: open N keep-alive connections, one request each, leave them idle
//! and read the server's VmRSS before, during and after. VmRSS is user-space memory only
//! (kernel socket buffers are not in it), and allocators rarely hand memory back, so "after
//! close" shows what stays at the high-water mark.

use std::net::SocketAddr;

use anyhow::{Context, Result, bail};
use tokio::task::JoinSet;
use tokio::time::Duration;

use crate::loadgen::Conn;
use crate::procstat;

/// Connections opened at once.
const BATCH: usize = 64;
/// Time for the server to finish its bookkeeping before RSS is read.
const SETTLE: Duration = Duration::from_secs(1);

#[derive(Debug, Clone, Copy)]
pub struct IdleMemory {
    pub before: u64,
    pub with_idle: u64,
    pub after_close: u64,
}

impl IdleMemory {
    pub fn bytes_per_conn(&self, conns: usize) -> f64 {
        (self.with_idle as f64 - self.before as f64) / conns.max(1) as f64
    }
}

/// Fails early when `conns` would not fit in this process's file-descriptor limit.
pub fn check_fd_limit(conns: usize) -> Result<()> {
    if let Some(limit) = procstat::open_files_limit()
        && conns as u64 + 200 > limit
    {
        bail!(
            "--idle-conns {conns} needs more file descriptors than the limit of {limit} (raise it with `ulimit -n`)"
        );
    }
    Ok(())
}

/// Raises this process's soft limit on open files (children inherit it) to at least `want`,
/// lifting the hard limit too when allowed (root). Returns the soft limit now in force.
pub fn raise_fd_limit(want: u64) -> u64 {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    let Ok((soft, hard)) = getrlimit(Resource::RLIMIT_NOFILE) else {
        return procstat::open_files_limit().unwrap_or(0);
    };
    if soft >= want {
        return soft;
    }
    if setrlimit(Resource::RLIMIT_NOFILE, want, want.max(hard)).is_err() && hard > soft {
        let _ = setrlimit(Resource::RLIMIT_NOFILE, hard.min(want), hard);
    }
    getrlimit(Resource::RLIMIT_NOFILE).map_or(soft, |(soft, _)| soft)
}

pub async fn idle_connections(addr: SocketAddr, conns: usize, pid: u32) -> Result<IdleMemory> {
    check_fd_limit(conns)?;
    tokio::time::sleep(SETTLE).await;
    let before = procstat::vm_rss(pid)?;
    let mut open = Vec::with_capacity(conns);
    while open.len() < conns {
        let mut batch = JoinSet::new();
        for _ in 0..BATCH.min(conns - open.len()) {
            batch.spawn(async move {
                let mut conn = Conn::new(addr);
                let status = conn.request().await?;
                if !(200..400).contains(&status) {
                    bail!("status {status}");
                }
                anyhow::Ok(conn)
            });
        }
        while let Some(conn) = batch.join_next().await {
            open.push(conn?.with_context(|| format!("idle connection {}", open.len() + 1))?);
        }
    }
    tokio::time::sleep(SETTLE).await;
    let with_idle = procstat::vm_rss(pid)?;
    drop(open);
    tokio::time::sleep(SETTLE).await;
    let after_close = procstat::vm_rss(pid)?;
    Ok(IdleMemory {
        before,
        with_idle,
        after_close,
    })
}
