//! Idle detection for relayed connections: a connection on which no byte moved either way for
//! its idle timeout (the vserver's `clttimeout` or the servicegroup's `svrtimeout`, the shorter)
//! is closed.
//!
//! Both relays report what they move to one [`Activity`], which also keeps the byte counts, so
//! a connection closed for idleness is still accounted.

use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::task::{Context, Poll};
use std::time::Duration;

use pin_project_lite::pin_project;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::Instant;

/// What a relay moved, and when it last moved anything.
#[derive(Debug)]
pub struct Activity {
    epoch: Instant,
    /// Milliseconds since `epoch` of the last byte moved.
    last_ms: AtomicU64,
    pub to_member: AtomicU64,
    pub to_client: AtomicU64,
}

/// Nothing moved yet; the idle clock starts now.
impl Default for Activity {
    fn default() -> Activity {
        Activity {
            epoch: Instant::now(),
            last_ms: AtomicU64::new(0),
            to_member: AtomicU64::new(0),
            to_client: AtomicU64::new(0),
        }
    }
}

impl Activity {
    pub fn moved_to_member(&self, bytes: usize) {
        self.to_member.fetch_add(bytes as u64, Relaxed);
        self.touch();
    }

    pub fn moved_to_client(&self, bytes: usize) {
        self.to_client.fetch_add(bytes as u64, Relaxed);
        self.touch();
    }

    fn touch(&self) {
        self.last_ms
            .store(self.epoch.elapsed().as_millis() as u64, Relaxed);
    }

    /// Resolves once nothing moved for `timeout`.
    pub async fn idle_for(&self, timeout: Duration) {
        loop {
            let last = self.epoch + Duration::from_millis(self.last_ms.load(Relaxed));
            if last.elapsed() >= timeout {
                return;
            }
            tokio::time::sleep_until(last + timeout).await;
        }
    }
}

pin_project! {
    /// A client stream that reports to an [`Activity`]: bytes read go to the member, bytes
    /// written go to the client.
    #[derive(Debug)]
    pub struct Tracked<'a, IO> {
        #[pin]
        io: IO,
        activity: &'a Activity,
    }
}

impl<'a, IO> Tracked<'a, IO> {
    pub fn new(io: IO, activity: &'a Activity) -> Self {
        Tracked { io, activity }
    }
}

impl<IO: AsyncRead> AsyncRead for Tracked<'_, IO> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.project();
        let before = buf.filled().len();
        let polled = this.io.poll_read(cx, buf);
        let read = buf.filled().len() - before;
        if read > 0 {
            this.activity.moved_to_member(read);
        }
        polled
    }
}

impl<IO: AsyncWrite> AsyncWrite for Tracked<'_, IO> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.project();
        let polled = this.io.poll_write(cx, buf);
        if let Poll::Ready(Ok(written)) = &polled {
            this.activity.moved_to_client(*written);
        }
        polled
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.project().io.poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.project().io.poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn idle_for_waits_out_the_timeout_from_the_last_byte() {
        let activity = Activity::default();
        let start = Instant::now();
        tokio::time::sleep(Duration::from_secs(3)).await;
        activity.moved_to_member(10);
        activity.idle_for(Duration::from_secs(5)).await;
        assert_eq!(start.elapsed(), Duration::from_secs(8));
        assert_eq!(activity.to_member.load(Relaxed), 10);
    }
}
