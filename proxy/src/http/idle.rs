//! The idle timeout of HTTP/2 client connections (the vserver's `clttimeout`).
//!
//! hyper's HTTP/2 server has no idle timeout of its own (its keep-alive pings only find dead
//! peers; a live client that opens no stream stays forever). [`OpenStreams`] counts the streams
//! of one connection, a stream lasting until its response body has been sent, and remembers when
//! the last one ended; [`serve_until_idle`] sends GOAWAY once none was open for the timeout.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::task::{Context, Poll};
use std::time::Duration;

use http_body::{Body, Frame, SizeHint};
use pin_project_lite::pin_project;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// After GOAWAY, how long an idle connection gets to close before it is dropped (a client that
/// never reads would otherwise keep it).
const GOAWAY_GRACE: Duration = Duration::from_secs(1);

/// The streams open on one connection, and when the last one ended.
#[derive(Debug)]
pub struct OpenStreams {
    epoch: Instant,
    open: AtomicUsize,
    /// Milliseconds since `epoch` when a stream last ended.
    last_ms: AtomicU64,
}

impl OpenStreams {
    pub fn new() -> Arc<OpenStreams> {
        Arc::new(OpenStreams {
            epoch: Instant::now(),
            open: AtomicUsize::new(0),
            last_ms: AtomicU64::new(0),
        })
    }

    /// Counts a stream until the returned guard drops.
    pub fn opened(self: &Arc<Self>) -> StreamGuard {
        self.open.fetch_add(1, Relaxed);
        StreamGuard(self.clone())
    }

    /// Resolves once no stream was open for `timeout`.
    async fn idle_for(&self, timeout: Duration) {
        loop {
            let last = self.epoch + Duration::from_millis(self.last_ms.load(Relaxed));
            let open = self.open.load(Relaxed);
            if open == 0 && last.elapsed() >= timeout {
                return;
            }
            // With a stream open, look again a timeout later (it ends, or it is still open).
            let next = if open == 0 {
                last + timeout
            } else {
                Instant::now() + timeout
            };
            tokio::time::sleep_until(next).await;
        }
    }
}

/// One open stream.
#[derive(Debug)]
pub struct StreamGuard(Arc<OpenStreams>);

impl Drop for StreamGuard {
    fn drop(&mut self) {
        let streams = &self.0;
        let now = streams.epoch.elapsed().as_millis() as u64;
        streams.last_ms.fetch_max(now, Relaxed);
        streams.open.fetch_sub(1, Relaxed);
    }
}

pin_project! {
    /// A response body that holds `guard` (its stream's [`StreamGuard`], ...) until it has been
    /// sent or dropped.
    #[derive(Debug)]
    pub struct Held<B, G> {
        #[pin]
        body: B,
        _guard: G,
    }
}

impl<B, G> Held<B, G> {
    pub fn new(body: B, guard: G) -> Self {
        Held {
            body,
            _guard: guard,
        }
    }
}

impl<B: Body, G> Body for Held<B, G> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<B::Data>, B::Error>>> {
        self.project().body.poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

/// Drives an HTTP/2 `connection` until it ends; on `shutdown`, or once no stream was open for
/// `idle_timeout`, asks it to finish gracefully (GOAWAY). An idle connection then gets
/// [`GOAWAY_GRACE`] to close; one shut down with streams open finishes them.
pub async fn serve_until_idle<C>(
    connection: C,
    shutdown: CancellationToken,
    streams: &OpenStreams,
    idle_timeout: Duration,
    graceful: impl FnOnce(Pin<&mut C>),
) -> hyper::Result<()>
where
    C: Future<Output = hyper::Result<()>>,
{
    tokio::pin!(connection);
    tokio::select! {
        result = connection.as_mut() => result,
        () = shutdown.cancelled() => {
            graceful(connection.as_mut());
            connection.await
        }
        () = streams.idle_for(idle_timeout) => {
            tracing::debug!(?idle_timeout, "closing an idle HTTP/2 connection");
            graceful(connection.as_mut());
            tokio::time::timeout(GOAWAY_GRACE, connection).await.unwrap_or(Ok(()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_connection_is_idle_a_timeout_after_its_last_stream_ended() {
        let streams = OpenStreams::new();
        let start = Instant::now();
        let stream = streams.opened();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs(7)).await;
            drop(stream);
        });
        streams.idle_for(Duration::from_secs(5)).await;
        assert_eq!(start.elapsed(), Duration::from_secs(12));
    }
}
