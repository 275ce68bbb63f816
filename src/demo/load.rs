//! The demo's own load: an open-loop HTTP/1.1 generator that sends `GET /` to the vserver at
//! the rate its [`Schedule`] gives for each moment, whether or not earlier requests have
//! answered (as real users do), over a pool of keep-alive connections.
//!
//! It is honest about failures: every answer other than `200` with its whole body, and every
//! transport error after a request was sent, is an error. Only a request that provably never
//! left (a pooled connection found closed, or hyper handing the request back unsent) is sent
//! again on another connection.
//!
//! Like a browser, it never reuses a connection idle for longer than [`KEEP_ALIVE`]: that is
//! shorter than Ballast's own keep-alive timeout, so a request is never sent on a connection
//! the proxy is closing at that same moment (a race HTTP/1.1 cannot settle, and that would
//! count as a failed request here).

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::client::conn::http1::{self, SendRequest};
use hyper_util::rt::TokioIo;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// How often the generator checks whether requests are due.
const TICK: Duration = Duration::from_millis(5);
/// Requests waiting for an answer beyond this are not sent (counted as `not_sent`): the demo
/// must not grow without bound when the fleet cannot keep up.
const MAX_IN_FLIGHT: u64 = 2000;
/// How often a request is tried again while it has provably never been sent.
const SEND_ATTEMPTS: u32 = 3;
/// At the end, answers still awaited after this long count as errors.
const FINISH_TIMEOUT: Duration = Duration::from_secs(10);
/// A pooled connection idle for longer is closed rather than used: half of Ballast's default
/// idle limit (`clientheadertimeout`, 10 s).
const KEEP_ALIVE: Duration = Duration::from_secs(5);

/// Requests per second over time.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Schedule {
    /// Low for the first 15% of `duration`, up to high by 50%, high until 70%, down to low by
    /// 80%, low to the end.
    Ramp {
        duration: Duration,
        low: f64,
        high: f64,
    },
    /// No load of our own.
    None,
}

impl Schedule {
    /// The demo's ramp: 30 → 240 → 30 requests/s (see configs/demo.toml for why).
    pub fn ramp(duration: Duration) -> Schedule {
        Schedule::Ramp {
            duration,
            low: 30.0,
            high: 240.0,
        }
    }

    /// The rate at `t` since the load started.
    pub fn rate(&self, t: Duration) -> f64 {
        let Schedule::Ramp {
            duration,
            low,
            high,
        } = *self
        else {
            return 0.0;
        };
        let x = t.as_secs_f64() / duration.as_secs_f64().max(0.001);
        let between = |from: f64, to: f64, a: f64, b: f64| from + (to - from) * (x - a) / (b - a);
        match x {
            x if x < 0.15 => low,
            x if x < 0.50 => between(low, high, 0.15, 0.50),
            x if x < 0.70 => high,
            x if x < 0.80 => between(high, low, 0.70, 0.80),
            x if x <= 1.0 => low,
            _ => 0.0,
        }
    }

    /// How long the load runs; `None`: until stopped.
    pub fn duration(&self) -> Option<Duration> {
        match self {
            Schedule::Ramp { duration, .. } => Some(*duration),
            Schedule::None => None,
        }
    }
}

/// One second of load, as the status shows it.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Second {
    /// Requests sent in that second.
    pub sent: u64,
    /// Answers (`200`, whole body) received in that second.
    pub ok: u64,
    /// Failures in that second.
    pub errors: u64,
    /// 99th percentile latency of the answers received in that second.
    pub p99: Option<Duration>,
}

/// Everything the generator did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Totals {
    pub sent: u64,
    pub ok: u64,
    /// Non-200 answers, transport errors after sending, and answers never received.
    pub errors: u64,
    /// Due but not sent: too many requests were already waiting.
    pub not_sent: u64,
    /// The first few errors, as they read.
    pub first_errors: Vec<String>,
}

/// A running generator.
#[derive(Debug)]
pub struct Load {
    shared: Arc<Shared>,
    stop: CancellationToken,
    requests: TaskTracker,
    ticker: tokio::task::JoinHandle<()>,
}

#[derive(Debug, Default)]
struct Shared {
    counts: Mutex<Counts>,
    /// Idle connections, the most recently used last.
    pool: Mutex<Vec<Idle>>,
}

#[derive(Debug)]
struct Idle {
    sender: SendRequest<Empty<Bytes>>,
    since: Instant,
}

#[derive(Debug, Default)]
struct Counts {
    totals: Totals,
    in_flight: u64,
    window: Second,
    latencies: Vec<Duration>,
}

impl Load {
    /// Starts sending to `target` on `schedule`.
    pub fn start(target: SocketAddr, schedule: Schedule) -> Load {
        let shared = Arc::new(Shared::default());
        let stop = CancellationToken::new();
        let requests = TaskTracker::new();
        let ticker = tokio::spawn(tick(
            target,
            schedule,
            shared.clone(),
            stop.clone(),
            requests.clone(),
        ));
        Load {
            shared,
            stop,
            requests,
            ticker,
        }
    }

    /// The second since the last call (call it once a second).
    pub fn take_second(&self) -> Second {
        let mut counts = self.shared.lock_counts();
        let mut second = std::mem::take(&mut counts.window);
        let mut latencies = std::mem::take(&mut counts.latencies);
        latencies.sort_unstable();
        if !latencies.is_empty() {
            let index = (latencies.len() * 99).div_ceil(100).saturating_sub(1);
            second.p99 = Some(latencies[index]);
        }
        second
    }

    /// Everything so far.
    pub fn totals(&self) -> Totals {
        self.shared.lock_counts().totals.clone()
    }

    /// Stops sending, waits for the answers still due (up to 10 s; the rest are errors) and
    /// returns the totals.
    pub async fn finish(self) -> Totals {
        self.stop.cancel();
        let _ = self.ticker.await;
        self.requests.close();
        if tokio::time::timeout(FINISH_TIMEOUT, self.requests.wait())
            .await
            .is_err()
        {
            let mut counts = self.shared.lock_counts();
            let unanswered = counts.in_flight;
            counts.totals.errors += unanswered;
            counts
                .totals
                .first_errors
                .push(format!("{unanswered} requests unanswered after 10s"));
        }
        self.shared.pool_lock().clear();
        self.shared.lock_counts().totals.clone()
    }
}

async fn tick(
    target: SocketAddr,
    schedule: Schedule,
    shared: Arc<Shared>,
    stop: CancellationToken,
    requests: TaskTracker,
) {
    let start = Instant::now();
    let mut due = 0.0_f64;
    let mut last = start;
    let mut interval = tokio::time::interval(TICK);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = interval.tick() => {}
            () = stop.cancelled() => return,
        }
        let now = Instant::now();
        if schedule.duration().is_some_and(|d| now - start > d) {
            return;
        }
        due += schedule.rate(now - start) * (now - last).as_secs_f64();
        last = now;
        while due >= 1.0 {
            due -= 1.0;
            if !shared.begin() {
                continue;
            }
            let shared = shared.clone();
            requests.spawn(async move {
                let result = request(target, &shared).await;
                shared.end(result);
            });
        }
    }
}

/// One `GET /`: its latency, or what went wrong.
async fn request(target: SocketAddr, shared: &Shared) -> Result<Duration, String> {
    let started = Instant::now();
    let mut attempts = 0;
    loop {
        attempts += 1;
        let pooled = shared.take_idle();
        let mut sender = match pooled {
            Some(sender) => sender,
            None => match connect(target).await {
                Ok(sender) => sender,
                // Never sent: no connection.
                Err(error) if attempts < SEND_ATTEMPTS => {
                    tracing::debug!(%error, "demo load: connect failed; trying again");
                    continue;
                }
                Err(error) => return Err(format!("connect to {target}: {error}")),
            },
        };
        if sender.ready().await.is_err() {
            // A pooled connection the proxy closed while idle: the request never left.
            continue;
        }
        let request = http::Request::get("/")
            .header(http::header::HOST, target.to_string())
            .body(Empty::new())
            .map_err(|e| e.to_string())?;
        let response = match sender.try_send_request(request).await {
            Ok(response) => response,
            Err(mut error) => {
                // hyper hands the request back when it never left.
                if error.take_message().is_some() && attempts < SEND_ATTEMPTS {
                    continue;
                }
                return Err(format!("request: {}", error.into_error()));
            }
        };
        let status = response.status();
        let body = response.into_body().collect().await;
        if let Err(error) = body {
            return Err(format!("response body: {error}"));
        }
        if status != http::StatusCode::OK {
            return Err(format!("answer {status}"));
        }
        if !sender.is_closed() {
            shared.pool_lock().push(Idle {
                sender,
                since: Instant::now(),
            });
        }
        return Ok(started.elapsed());
    }
}

async fn connect(target: SocketAddr) -> std::io::Result<SendRequest<Empty<Bytes>>> {
    let stream = tokio::net::TcpStream::connect(target).await?;
    stream.set_nodelay(true)?;
    let (sender, connection) = http1::handshake(TokioIo::new(stream))
        .await
        .map_err(std::io::Error::other)?;
    tokio::spawn(connection);
    Ok(sender)
}

impl Shared {
    /// Counts a request about to be sent; false when too many already wait.
    fn begin(&self) -> bool {
        let mut counts = self.lock_counts();
        if counts.in_flight >= MAX_IN_FLIGHT {
            counts.totals.not_sent += 1;
            return false;
        }
        counts.in_flight += 1;
        counts.totals.sent += 1;
        counts.window.sent += 1;
        true
    }

    fn end(&self, result: Result<Duration, String>) {
        let mut counts = self.lock_counts();
        counts.in_flight -= 1;
        match result {
            Ok(latency) => {
                counts.totals.ok += 1;
                counts.window.ok += 1;
                counts.latencies.push(latency);
            }
            Err(error) => {
                counts.totals.errors += 1;
                counts.window.errors += 1;
                if counts.totals.first_errors.len() < 5 {
                    tracing::warn!(%error, "demo load: request failed");
                    counts.totals.first_errors.push(error);
                }
            }
        }
    }

    /// The most recently used idle connection, if one was used within [`KEEP_ALIVE`]; older
    /// ones are closed.
    fn take_idle(&self) -> Option<SendRequest<Empty<Bytes>>> {
        let mut pool = self.pool_lock();
        let fresh = pool.partition_point(|idle| idle.since.elapsed() >= KEEP_ALIVE);
        pool.drain(..fresh);
        pool.pop().map(|idle| idle.sender)
    }

    fn lock_counts(&self) -> std::sync::MutexGuard<'_, Counts> {
        // Counters only; a panic elsewhere cannot leave them unusable.
        self.counts
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn pool_lock(&self) -> std::sync::MutexGuard<'_, Vec<Idle>> {
        self.pool
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A client connection over an in-memory pipe (nothing is ever sent on it here).
    async fn sender() -> SendRequest<Empty<Bytes>> {
        let (client, _server) = tokio::io::duplex(64);
        let (sender, connection) = http1::handshake(TokioIo::new(client)).await.unwrap();
        tokio::spawn(connection);
        sender
    }

    async fn pool_with_one_idle_since(idle: Duration) -> Shared {
        let shared = Shared::default();
        let sender = sender().await;
        shared.pool_lock().push(Idle {
            sender,
            since: Instant::now(),
        });
        tokio::time::advance(idle).await;
        shared
    }

    #[tokio::test(start_paused = true)]
    async fn a_connection_idle_shorter_than_the_keep_alive_is_reused() {
        let shared = pool_with_one_idle_since(KEEP_ALIVE - Duration::from_millis(1)).await;
        assert!(shared.take_idle().is_some());
    }

    #[tokio::test(start_paused = true)]
    async fn a_connection_idle_for_the_keep_alive_is_closed_not_reused() {
        let shared = pool_with_one_idle_since(KEEP_ALIVE).await;
        assert!(shared.take_idle().is_none());
        assert!(
            shared.pool_lock().is_empty(),
            "the stale connection was kept"
        );

        // Behind a fresher one, a stale connection is dropped as the fresh one is taken.
        let shared = pool_with_one_idle_since(KEEP_ALIVE).await;
        let fresh = sender().await;
        shared.pool_lock().push(Idle {
            sender: fresh,
            since: Instant::now(),
        });
        assert!(shared.take_idle().is_some());
        assert!(
            shared.pool_lock().is_empty(),
            "the stale connection was kept"
        );
    }

    #[test]
    fn the_ramp_goes_low_high_low() {
        let ramp = Schedule::ramp(Duration::from_secs(100));
        let at = |s: u64| ramp.rate(Duration::from_secs(s));
        assert_eq!(at(0), 30.0);
        assert_eq!(at(14), 30.0);
        assert!(at(30) > 30.0 && at(30) < 240.0);
        assert_eq!(at(50), 240.0);
        assert_eq!(at(69), 240.0);
        assert!(at(75) < 240.0 && at(75) > 30.0);
        assert_eq!(at(85), 30.0);
        assert_eq!(at(100), 30.0);
        assert_eq!(at(101), 0.0);
        assert_eq!(Schedule::None.rate(Duration::from_secs(5)), 0.0);
    }
}
