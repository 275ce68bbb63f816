//! Zero-copy relay between two TCP sockets with `splice(2)` through a kernel pipe: bytes never
//! enter user space. Used for plain `TCP` vservers when `[ballast] l4relay = "splice"`.
//!
//! Each direction moves data socket → pipe → socket, waiting on tokio's readiness (the sockets
//! stay non-blocking, and `SPLICE_F_NONBLOCK` keeps the pipe side from blocking). End of stream
//! in one direction half-closes the other socket's write side, as `copy_bidirectional` does.
//! The two pipes (four descriptors) are made before relaying starts, so a process out of
//! descriptors can relay by copying instead.

use std::io;
use std::net::Shutdown;
use std::os::fd::{AsFd, OwnedFd};

use nix::fcntl::{FcntlArg, OFlag, SpliceFFlags, fcntl, splice};
use tokio::io::Interest;
use tokio::net::TcpStream;

use super::idle::Activity;

/// Bytes moved per `splice` call (and the pipe's capacity).
const PIPE_SIZE: usize = 1 << 20;

/// One pipe per direction.
#[derive(Debug)]
pub struct Pipes {
    up: (OwnedFd, OwnedFd),
    down: (OwnedFd, OwnedFd),
}

impl Pipes {
    pub fn new() -> io::Result<Pipes> {
        Ok(Pipes {
            up: pipe()?,
            down: pipe()?,
        })
    }
}

/// Relays until both directions reached end of stream, or either failed (a reset: the other
/// direction would wait forever for a peer that is gone), reporting to `activity`.
pub async fn relay(
    client: &TcpStream,
    server: &TcpStream,
    pipes: Pipes,
    activity: &Activity,
) -> io::Result<()> {
    let up = one_way(client, server, pipes.up, |n| activity.moved_to_member(n));
    let down = one_way(server, client, pipes.down, |n| activity.moved_to_client(n));
    tokio::try_join!(up, down).map(|_| ())
}

async fn one_way(
    from: &TcpStream,
    to: &TcpStream,
    (pipe_read, pipe_write): (OwnedFd, OwnedFd),
    moved: impl Fn(usize),
) -> io::Result<()> {
    let flags = SpliceFFlags::SPLICE_F_MOVE | SpliceFFlags::SPLICE_F_NONBLOCK;
    loop {
        let filled = from
            .async_io(Interest::READABLE, || {
                splice(
                    from.as_fd(),
                    None,
                    pipe_write.as_fd(),
                    None,
                    PIPE_SIZE,
                    flags,
                )
                .map_err(io::Error::from)
            })
            .await?;
        if filled == 0 {
            let _ = socket2::SockRef::from(to).shutdown(Shutdown::Write);
            return Ok(());
        }
        let mut left = filled;
        while left > 0 {
            let sent = to
                .async_io(Interest::WRITABLE, || {
                    splice(pipe_read.as_fd(), None, to.as_fd(), None, left, flags)
                        .map_err(io::Error::from)
                })
                .await?;
            if sent == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::WriteZero,
                    "peer stopped accepting data",
                ));
            }
            left -= sent;
            moved(sent);
        }
    }
}

fn pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    let (read, write) = nix::unistd::pipe2(OFlag::O_NONBLOCK | OFlag::O_CLOEXEC)?;
    // A bigger pipe means fewer wake-ups per MiB; the default (64 KiB) still works if refused.
    let _ = fcntl(&write, FcntlArg::F_SETPIPE_SZ(PIPE_SIZE as i32));
    Ok((read, write))
}
