//! The HTTP/1.1 load generator: N keep-alive connections on this (single-threaded) runtime, each
//! sending a pre-built `GET` and reading the whole response, with no HTTP library in the way.
//!
//! * Closed loop (default): each connection sends its next request as soon as the previous
//!   response is in. This finds the maximum rate; latency is send → last byte.
//! * Open loop (`rate`): requests are due at fixed intended times `t0 + k/rate`, handed out
//!   round-robin to the connections. A connection still busy sends late, and latency is counted
//!   from the *intended* time, so a stall shows up in the percentiles instead of silently
//!   slowing the generator down (coordinated omission). Service time (actual send → response)
//!   and the generator's own send lag are reported beside it.
//!
//! Requests are counted when they complete inside the measured window (closed loop) or when
//! they were due inside it (open loop). CPU is sampled at the window's edges.

use std::cell::RefCell;
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::{Context, Result, bail};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{Notify, mpsc};
use tokio::time::{Duration, Instant, timeout_at};

use crate::h1::{self, Framing};
use crate::histogram::Histogram;
use crate::procstat::{self, CpuWindow};

pub const REQUEST: &[u8] = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n";

/// After the window, in-flight requests get this long before they count as unfinished.
const GRACE: Duration = Duration::from_secs(2);
const MAX_BUFFER: usize = 16 << 20;

/// One keep-alive client connection; reconnects on the next request after an error or a
/// `Connection: close`.
#[derive(Debug)]
pub struct Conn {
    addr: SocketAddr,
    stream: Option<TcpStream>,
    buf: Vec<u8>,
    filled: usize,
}

impl Conn {
    pub fn new(addr: SocketAddr) -> Self {
        Self {
            addr,
            stream: None,
            buf: vec![0; 4096],
            filled: 0,
        }
    }

    /// Sends one request and reads the whole response; returns its status.
    pub async fn request(&mut self) -> Result<u16> {
        let result = self.exchange().await;
        if result.is_err() {
            self.stream = None;
        }
        result
    }

    async fn exchange(&mut self) -> Result<u16> {
        if self.stream.is_none() {
            let stream = TcpStream::connect(self.addr)
                .await
                .with_context(|| format!("connecting to {}", self.addr))?;
            stream.set_nodelay(true)?;
            self.stream = Some(stream);
            self.filled = 0;
        }
        let stream = self.stream.as_mut().context("not connected")?;
        stream.write_all(REQUEST).await?;
        let head = loop {
            if let Some(head) = h1::parse_head(&self.buf[..self.filled])? {
                break head;
            }
            self.fill().await?;
        };
        self.consume(head.len);
        match head.framing {
            Framing::Length(mut remaining) => loop {
                let take = remaining.min(self.filled as u64);
                self.consume(take as usize);
                remaining -= take;
                if remaining == 0 {
                    break;
                }
                self.fill().await?;
            },
            Framing::Chunked => {
                let len = loop {
                    if let Some(len) = h1::chunked_len(&self.buf[..self.filled])? {
                        break len;
                    }
                    self.fill().await?;
                };
                self.consume(len);
            }
            Framing::UntilClose => {
                while self.fill().await.is_ok() {
                    self.filled = 0;
                }
                self.stream = None;
            }
        }
        if head.close {
            self.stream = None;
        }
        Ok(head.status)
    }

    /// Reads more bytes into the buffer (growing it when full); EOF is an error.
    async fn fill(&mut self) -> Result<()> {
        if self.filled == self.buf.len() {
            if self.buf.len() >= MAX_BUFFER {
                bail!("response larger than {MAX_BUFFER} bytes");
            }
            self.buf.resize(self.buf.len() * 2, 0);
        }
        let stream = self.stream.as_mut().context("not connected")?;
        let n = stream.read(&mut self.buf[self.filled..]).await?;
        if n == 0 {
            bail!("connection closed by the server");
        }
        self.filled += n;
        Ok(())
    }

    fn consume(&mut self, n: usize) {
        self.buf.copy_within(n..self.filled, 0);
        self.filled -= n;
    }
}

#[derive(Debug, Clone)]
pub struct LoadSpec {
    pub addr: SocketAddr,
    pub connections: usize,
    pub warmup: Duration,
    pub duration: Duration,
    /// Open loop at this many requests per second; `None` is closed loop.
    pub rate: Option<f64>,
    /// Open loop: how often the pacer wakes to send what is due.
    pub tick: Duration,
    /// Processes whose CPU is sampled over the window (proxy, backend).
    pub sample_pids: Vec<u32>,
}

#[derive(Debug, Default)]
pub struct LoadResult {
    /// Successful (2xx/3xx) responses counted in the window.
    pub requests: u64,
    /// Failed requests and other statuses counted in the window.
    pub errors: u64,
    /// Requests (due) in the window with no response `GRACE` after it.
    pub unfinished: u64,
    /// Closed loop: send → response. Open loop: intended send → response.
    pub latency: Histogram,
    /// Open loop only: actual send → response.
    pub service: Option<Histogram>,
    /// Open loop only: actual send − intended send (the generator's own lateness).
    pub send_lag: Option<Histogram>,
    pub window: Duration,
    pub cpu: CpuWindow,
    pub first_error: Option<String>,
}

impl LoadResult {
    pub fn rps(&self) -> f64 {
        self.requests as f64 / self.window.as_secs_f64()
    }
}

#[derive(Debug, Default)]
struct Shared {
    requests: u64,
    errors: u64,
    unfinished: u64,
    latency: Histogram,
    service: Histogram,
    send_lag: Histogram,
    first_error: Option<String>,
}

impl Shared {
    fn error(&mut self, counted: bool, message: impl FnOnce() -> String) {
        if counted {
            self.errors += 1;
        }
        if self.first_error.is_none() {
            self.first_error = Some(message());
        }
    }
}

/// When the window starts and ends.
#[derive(Debug, Clone, Copy)]
struct Timeline {
    t0: Instant,
    start: Instant,
    end: Instant,
    hard_stop: Instant,
}

impl Timeline {
    fn in_window(&self, t: Instant) -> bool {
        t >= self.start && t < self.end
    }
}

fn ok_status(status: u16) -> bool {
    (200..400).contains(&status)
}

pub async fn run(spec: &LoadSpec) -> Result<LoadResult> {
    if spec.connections == 0 {
        bail!("need at least one connection");
    }
    tokio::task::LocalSet::new()
        .run_until(run_local(spec))
        .await
}

async fn run_local(spec: &LoadSpec) -> Result<LoadResult> {
    let t0 = Instant::now();
    let start = t0 + spec.warmup;
    let end = start + spec.duration;
    let time = Timeline {
        t0,
        start,
        end,
        hard_stop: end + GRACE,
    };
    let shared = Rc::new(RefCell::new(Shared::default()));

    let pids = spec.sample_pids.clone();
    let sampler = tokio::task::spawn_local(async move {
        tokio::time::sleep_until(time.start).await;
        let first = procstat::snapshot(&pids)?;
        tokio::time::sleep_until(time.end).await;
        let last = procstat::snapshot(&pids)?;
        anyhow::Ok(CpuWindow::between(&first, &last))
    });

    let mut tasks = Vec::with_capacity(spec.connections + 1);
    match spec.rate {
        None => {
            for _ in 0..spec.connections {
                let conn = Conn::new(spec.addr);
                tasks.push(tokio::task::spawn_local(closed_loop(
                    conn,
                    time,
                    shared.clone(),
                )));
            }
        }
        Some(rate) => {
            if !(rate > 0.0 && rate.is_finite()) {
                bail!("--rate must be a positive number");
            }
            let mut senders = Vec::with_capacity(spec.connections);
            for _ in 0..spec.connections {
                let (tx, rx) = mpsc::unbounded_channel();
                senders.push(tx);
                let conn = Conn::new(spec.addr);
                tasks.push(tokio::task::spawn_local(open_loop(
                    conn,
                    rx,
                    time,
                    shared.clone(),
                )));
            }
            tasks.push(tokio::task::spawn_local(dispatch(
                senders, rate, spec.tick, time,
            )));
        }
    }
    let cpu = sampler.await.context("CPU sampler")??;
    for task in tasks {
        task.await.context("load task")?;
    }

    let shared = Rc::try_unwrap(shared)
        .map_err(|_| anyhow::anyhow!("load tasks still hold the results"))?
        .into_inner();
    let open = spec.rate.is_some();
    Ok(LoadResult {
        requests: shared.requests,
        errors: shared.errors,
        unfinished: shared.unfinished,
        latency: shared.latency,
        service: open.then_some(shared.service),
        send_lag: open.then_some(shared.send_lag),
        window: spec.duration,
        cpu,
        first_error: shared.first_error,
    })
}

async fn closed_loop(mut conn: Conn, time: Timeline, shared: Rc<RefCell<Shared>>) {
    while Instant::now() < time.end {
        let sent = Instant::now();
        let result = timeout_at(time.hard_stop, conn.request()).await;
        let done = Instant::now();
        let counted = time.in_window(done);
        let failed = {
            let mut s = shared.borrow_mut();
            match result {
                Err(_) => {
                    s.unfinished += 1;
                    return;
                }
                Ok(Ok(status)) if ok_status(status) => {
                    if counted {
                        s.requests += 1;
                        s.latency.record_duration(done - sent);
                    }
                    false
                }
                Ok(Ok(status)) => {
                    s.error(counted, || format!("status {status}"));
                    false
                }
                Ok(Err(error)) => {
                    s.error(counted, || format!("{error:#}"));
                    true
                }
            }
        };
        if failed {
            // Don't spin on a refused connect.
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

async fn open_loop(
    mut conn: Conn,
    mut due: mpsc::UnboundedReceiver<Instant>,
    time: Timeline,
    shared: Rc<RefCell<Shared>>,
) {
    while let Some(intended) = due.recv().await {
        let sent = Instant::now();
        let result = timeout_at(time.hard_stop, conn.request()).await;
        let done = Instant::now();
        let counted = time.in_window(intended);
        let mut s = shared.borrow_mut();
        match result {
            Err(_) => {
                // This one and everything still queued behind it never completed.
                s.unfinished += u64::from(counted);
                while let Ok(intended) = due.try_recv() {
                    s.unfinished += u64::from(time.in_window(intended));
                }
                return;
            }
            Ok(Ok(status)) if ok_status(status) => {
                if counted {
                    s.requests += 1;
                    s.latency.record_duration(done - intended);
                    s.service.record_duration(done - sent);
                    s.send_lag
                        .record_duration(sent.saturating_duration_since(intended));
                }
            }
            Ok(Ok(status)) => s.error(counted, || format!("status {status}")),
            Ok(Err(error)) => s.error(counted, || format!("{error:#}")),
        }
    }
}

/// Stops the pacer thread when the dispatcher ends, however it ends.
#[derive(Debug)]
struct StopOnDrop(Arc<AtomicBool>);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

/// Hands out intended send times `t0 + k/rate` round-robin, waking every `tick`.
///
/// tokio's timer has 1 ms resolution, which would batch a 35k req/s schedule into 35-request
/// bursts and add up to 1 ms of send lag. A dedicated pacer thread parks with a sub-millisecond
/// timeout (a futex wait, hrtimer-precise to the kernel's ~50 µs timer slack) and pokes the
/// dispatcher, which sends everything due by then. It is not a runtime worker, so parking it
/// blocks nothing.
async fn dispatch(
    senders: Vec<mpsc::UnboundedSender<Instant>>,
    rate: f64,
    tick: Duration,
    time: Timeline,
) {
    let notify = Arc::new(Notify::new());
    let stop = StopOnDrop(Arc::new(AtomicBool::new(false)));
    let (pacer_notify, pacer_stop) = (notify.clone(), stop.0.clone());
    let tick = tick.max(Duration::from_micros(10));
    let spawned = std::thread::Builder::new()
        .name("pacer".into())
        .spawn(move || {
            while !pacer_stop.load(Ordering::Relaxed) {
                std::thread::park_timeout(tick);
                pacer_notify.notify_one();
            }
        });
    if spawned.is_err() {
        eprintln!("bench: cannot start the pacer thread; pacing at tokio's 1 ms resolution");
    }
    let due_at = |k: u64| time.t0 + Duration::from_secs_f64(k as f64 / rate);
    let mut k = 0u64;
    loop {
        if spawned.is_ok() {
            notify.notified().await;
        } else {
            tokio::time::sleep(tick).await;
        }
        let now = Instant::now();
        loop {
            let intended = due_at(k);
            if intended > now || intended >= time.end {
                break;
            }
            let _ = senders[(k % senders.len() as u64) as usize].send(intended);
            k += 1;
        }
        if due_at(k) >= time.end {
            break;
        }
    }
    drop(stop);
}
