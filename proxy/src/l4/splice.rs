//! Zero-copy relay between two TCP sockets with `splice(2)` through a kernel pipe: bytes never
//! enter user space. Used for plain `TCP` vservers when `[ballast] l4relay = "splice"`.
//!
//! Each direction moves data socket → pipe → socket, waiting on tokio's readiness (the sockets
//! stay non-blocking, and `SPLICE_F_NONBLOCK` keeps the pipe side from blocking). End of stream
//! in one direction half-closes the other socket's write side, as `copy_bidirectional` does.

use std::io;
use std::net::Shutdown;
use std::os::fd::{AsFd, OwnedFd};

use nix::fcntl::{FcntlArg, OFlag, SpliceFFlags, fcntl, splice};
use tokio::io::Interest;
use tokio::net::TcpStream;

/// Bytes moved per `splice` call (and the pipe's capacity).
const PIPE_SIZE: usize = 1 << 20;

/// Relays until both directions reached end of stream; returns (client→server, server→client).
pub async fn relay(client: &TcpStream, server: &TcpStream) -> io::Result<(u64, u64)> {
    let (up, down) = tokio::join!(one_way(client, server), one_way(server, client));
    Ok((up?, down?))
}

async fn one_way(from: &TcpStream, to: &TcpStream) -> io::Result<u64> {
    let (pipe_read, pipe_write) = pipe()?;
    let flags = SpliceFFlags::SPLICE_F_MOVE | SpliceFFlags::SPLICE_F_NONBLOCK;
    let mut total = 0u64;
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
            return Ok(total);
        }
        let mut left = filled;
        while left > 0 {
            let moved = to
                .async_io(Interest::WRITABLE, || {
                    splice(pipe_read.as_fd(), None, to.as_fd(), None, left, flags)
                        .map_err(io::Error::from)
                })
                .await?;
            if moved == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::WriteZero,
                    "peer stopped accepting data",
                ));
            }
            left -= moved;
        }
        total += filled as u64;
    }
}

fn pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    let (read, write) = nix::unistd::pipe2(OFlag::O_NONBLOCK | OFlag::O_CLOEXEC)?;
    // A bigger pipe means fewer wake-ups per MiB; the default (64 KiB) still works if refused.
    let _ = fcntl(&write, FcntlArg::F_SETPIPE_SZ(PIPE_SIZE as i32));
    Ok((read, write))
}
