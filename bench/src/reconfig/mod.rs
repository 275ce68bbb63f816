//! `reconfig`: how long a change to a large servicegroup takes through the admin API, how soon
//! the data plane acts on it, and whether any request failed meanwhile.
//!
//! Ballast runs one HTTP vserver (`ROUNDROBIN`, one worker thread) in front of one servicegroup
//! of 10,000 members (1,000 in quick mode), each a real listener: `bench backend --listeners N`
//! answers on 127.1.0.1, 127.1.0.2, ... (one port), split over as many processes as the
//! open-files limit needs. Two members are served inside the bench itself, so it sees the
//! instant each of their requests arrives: `Q`, the group's last member, and `P`, an address
//! that is not in the group yet.
//!
//! While an open-loop load runs through the vserver, the bench logs in like an operator
//! (`X-NITRO-USER`/`X-NITRO-PASS`) and makes four changes, a few times over:
//!
//! 1. bind `P` with weight 100 (`PUT servicegroup_servicegroupmember_binding`): the API round
//!    trip, and the time from the call until `P` gets its first request;
//! 2. change `Q`'s weight from 1 to 100: the round trip, and the time until `Q` gets a request;
//! 3. disable `Q` gracefully (`POST servicegroup?action=disable`), and
//! 4. unbind `P` (`DELETE`): the round trip, and how many requests the member still got after
//!    the API had answered (watched for half a second; it should be none).
//!
//! Weight 100 against 1 gives the changed member about 1% of the requests (9% in quick mode),
//! so when it gets none for the half second after a stop, that is the change and not luck, and
//! after a start its first request comes within a few requests' time. `Q`'s weight is put back
//! (and `Q` enabled) after each repetition, so every repetition starts from the same group.
//! Every request of the load window counts: one that failed (a non-2xx status, a transport
//! error, no answer) is a failure of the run. The same load runs for a few seconds before the
//! changes, so the latency with no change can be set beside the latency during them, and each
//! change that starts a member is followed by a pause, so that one change's delay to requests
//! is not piled onto the next one's.

use std::net::SocketAddr;
use std::path::Path;

use anyhow::{Context, Result, bail};
use clap::Args;
use tokio::time::{Duration, Instant};

use crate::backend::{WatchedBackend, consecutive_addrs};
use crate::loadgen::{self, LoadSpec};
use crate::markdown::{Row, Table};
use crate::nitro::AdminClient;
use crate::targets::{Pinning, Server, Workdir, free_addr};
use crate::{memory, procstat};

mod changes;
mod outcome;

use changes::Members;
use outcome::{Outcome, max_ms, p99_ms};

/// The servicegroup and the vserver.
const GROUP: &str = "reconfig";
/// The weight a changed member gets, against 1 for every other member.
const HEAVY: u32 = 100;
/// How long a stopped member is watched for requests after the API answered.
const WATCH: Duration = Duration::from_millis(500);
/// The pause after a change that starts a member, so that each change's effect on latency is
/// its own and not piled onto the next one's.
const SETTLE: Duration = Duration::from_millis(300);
/// How long a started member may take to get its first request before the run fails.
const SERVED_WITHIN: Duration = Duration::from_secs(10);
/// Load before the window of the changes (Ballast is warm by then).
const CHANGES_WARMUP: Duration = Duration::from_millis(200);
/// Descriptors Ballast and the bench keep besides members and client connections.
const SPARE_FDS: u64 = 512;

pub const TITLE: &str = "Reconfiguration under load";

/// `bench reconfig`: this scenario alone, with its sizes.
#[derive(Debug, Args)]
pub struct ReconfigArgs {
    /// Smoke-test sizes: 1,000 members, 500 req/s, one repetition.
    #[arg(long)]
    pub quick: bool,
    /// Members of the servicegroup [default: 10000; quick: 1000].
    #[arg(long)]
    pub members: Option<usize>,
    /// Open-loop load through the vserver while the changes are made, requests/s [default:
    /// 2000; quick: 500].
    #[arg(long)]
    pub rate: Option<f64>,
    /// Times the four changes are made [default: 5; quick: 1].
    #[arg(long)]
    pub repeats: Option<usize>,
}

/// The sizes of one run.
#[derive(Debug, Clone)]
pub struct Plan {
    pub members: usize,
    pub rate: f64,
    pub connections: usize,
    /// Load before anything is measured: Ballast opens a connection to each member.
    pub warmup: Duration,
    /// Load with no change, for the latency to compare with.
    pub baseline: Duration,
    /// The load window the changes are made in.
    pub window: Duration,
    pub repeats: usize,
}

impl Plan {
    pub fn new(quick: bool) -> Plan {
        if quick {
            Plan {
                members: 1_000,
                rate: 500.0,
                connections: 8,
                warmup: Duration::from_millis(500),
                baseline: Duration::from_secs(1),
                window: Duration::from_secs(4),
                repeats: 1,
            }
        } else {
            Plan {
                members: 10_000,
                rate: 2_000.0,
                connections: 32,
                warmup: Duration::from_secs(5),
                baseline: Duration::from_secs(5),
                window: Duration::from_secs(18),
                repeats: 5,
            }
        }
    }

    pub fn from_args(args: &ReconfigArgs) -> Result<Plan> {
        let mut plan = Plan::new(args.quick);
        plan.members = args.members.unwrap_or(plan.members);
        plan.rate = args.rate.unwrap_or(plan.rate);
        plan.repeats = args.repeats.unwrap_or(plan.repeats);
        if plan.members < 2 || plan.repeats == 0 || !(plan.rate > 0.0 && plan.rate.is_finite()) {
            bail!("need at least 2 members, 1 repetition and a positive --rate");
        }
        Ok(plan)
    }
}

/// The table, and what makes the run fail (requests that failed during the changes).
#[derive(Debug)]
pub struct Measured {
    pub table: Table,
    pub problems: Vec<String>,
}

/// One line for the report's method section.
pub fn method(quick: bool) -> String {
    let plan = Plan::new(quick);
    format!(
        "`reconfig` (Ballast only): one `ROUNDROBIN` HTTP vserver in front of a servicegroup of {} members, each \
         a real listener on its own loopback address, and an open loop of {:.0} req/s through it; through the \
         admin API, {} time(s) over: bind a member, change a member's weight, disable one gracefully, unbind \
         one. Each change's API round trip, the time until the member gets its first request (the bench serves \
         the changed members and sees their requests arrive), and every failed request of the window.",
        plan.members, plan.rate, plan.repeats
    )
}

/// `reconfig` in `bench all`: the table, and the problems that fail the run.
pub async fn scenario(quick: bool, ballast: &Path, pin: &Pinning) -> Result<Measured> {
    measure(&Plan::new(quick), ballast, pin).await
}

/// `bench reconfig`: measures and prints the figures.
pub async fn run(args: &ReconfigArgs, ballast: &Path, pin: &Pinning) -> Result<()> {
    let plan = Plan::from_args(args)?;
    let measured = measure(&plan, ballast, pin).await?;
    println!();
    for row in &measured.table.rows {
        if let Row::Figure {
            label,
            decimals,
            values,
            ..
        } = row
            && let Some(value) = values.get("ballast")
        {
            println!("{label}: {value:.decimals$}");
        }
    }
    for note in &measured.table.notes {
        println!("\n{note}");
    }
    if !measured.problems.is_empty() {
        bail!("{}", measured.problems.join("; "));
    }
    Ok(())
}

pub async fn measure(plan: &Plan, ballast: &Path, pin: &Pinning) -> Result<Measured> {
    if !ballast.is_file() {
        bail!(
            "no Ballast binary at {}: build it (`cargo build --release -p ballast`) or pass --ballast PATH",
            ballast.display()
        );
    }
    let mut notes = Vec::new();
    let want = plan.members as u64 * 2 + SPARE_FDS * 4;
    let fd_limit = memory::raise_fd_limit(want);
    let members = members_that_fit(plan.members, fd_limit, plan.connections);
    if members < 2 {
        bail!("the open-files limit of {fd_limit} leaves no room for a servicegroup (`ulimit -n`)");
    }
    if members < plan.members {
        notes.push(format!(
            "{} members were asked for; {members} fit under the open-files limit of {fd_limit} \
             (Ballast keeps a connection to each member).",
            plan.members
        ));
    }

    let workdir = Workdir::new()?;
    let port = free_addr()?.port();
    let first = SocketAddr::new([127, 1, 0, 1].into(), port);
    // The group's members, then `P`, the address bound and unbound by the changes.
    let mut addrs = consecutive_addrs(first, members + 1)?;
    let new_member =
        WatchedBackend::start(addrs.pop().context("no address for the new member")?).await?;
    let changed = WatchedBackend::start(*addrs.last().context("no members")?).await?;
    println!(
        "\n== reconfig: {members} members, {} req/s, {} repetition(s)",
        plan.rate, plan.repeats
    );
    let _backends = start_backends(&addrs[..members - 1], fd_limit, pin, &workdir).await?;

    let listen = free_addr()?;
    let admin_addr = free_addr()?;
    let password = random_password()?;
    let password_file = workdir.path().join("admin.pass");
    std::fs::write(&password_file, format!("{password}\n"))
        .with_context(|| format!("writing {}", password_file.display()))?;
    let config = workdir.path().join("reconfig.toml");
    std::fs::write(
        &config,
        ballast_config(listen, admin_addr, &addrs, "admin.pass"),
    )
    .with_context(|| format!("writing {}", config.display()))?;
    let args = [
        "run".to_string(),
        "--config".to_string(),
        config.display().to_string(),
    ];
    let proxy_cpu = pin.enabled.then_some(pin.proxy_cpu);
    let started = Instant::now();
    let mut proxy = Server::spawn("ballast", ballast, &args, proxy_cpu, &workdir)?;
    proxy
        .wait_accepting(listen, Duration::from_secs(60))
        .await?;
    proxy
        .wait_accepting(admin_addr, Duration::from_secs(10))
        .await?;
    let admin = AdminClient::new(admin_addr, "nsroot", &password);
    let group = admin.group_stat(GROUP, false).await?;
    let startup = started.elapsed();
    if group.members != members || group.up != members {
        bail!(
            "Ballast's servicegroup has {} members, {} UP, after start; expected {members} UP",
            group.members,
            group.up
        );
    }
    let rss = procstat::vm_rss(proxy.pid())?;
    println!(
        "ballast: {members} members UP {:.1} s after start, RSS {:.1} MB",
        startup.as_secs_f64(),
        rss as f64 / 1e6
    );

    let mut spec = LoadSpec {
        addr: listen,
        connections: plan.connections,
        warmup: plan.warmup,
        duration: plan.baseline,
        rate: Some(plan.rate),
        tick: Duration::from_micros(100),
        sample_pids: vec![proxy.pid()],
    };
    let quiet = loadgen::run(&spec)
        .await
        .context("the load before the changes")?;
    spec.warmup = CHANGES_WARMUP;
    spec.duration = plan.window;
    let t0 = Instant::now();
    let window = (t0 + spec.warmup, t0 + spec.warmup + plan.window);
    let members_ = Members {
        admin: &admin,
        new_member: &new_member,
        changed: &changed,
    };
    let (load, changes) = tokio::join!(
        loadgen::run(&spec),
        members_.change_repeatedly(plan.repeats, window)
    );
    let load = load.context("the load during the changes")?;
    let reps = changes?;
    proxy.check_alive()?;
    let after = admin.group_stat(GROUP, true).await?;

    let outcome = Outcome {
        members,
        startup,
        rss,
        reps,
        quiet,
        load,
        connect_failures: after.connect_failures,
    };
    let (reps, quiet, load) = (&outcome.reps, &outcome.quiet, &outcome.load);
    let (failed, sent) = (outcome.failed(), outcome.sent());
    println!(
        "reconfig: {} repetition(s); {sent} requests, {failed} failed; p99 {:.2} ms (with no change {:.2}), \
         max {:.2} ms (with no change {:.2})",
        reps.len(),
        p99_ms(&load.latency),
        p99_ms(&quiet.latency),
        max_ms(&load.latency),
        max_ms(&quiet.latency),
    );
    let mut problems = Vec::new();
    let quiet_failed = quiet.errors + quiet.unfinished;
    if quiet_failed > 0 {
        let first = quiet.first_error.as_deref().unwrap_or("a non-2xx status");
        let why = format!("{quiet_failed} requests failed before any change (first: {first})");
        eprintln!("bench: reconfig: {why}");
        notes.push(format!("{why}."));
        problems.push(why);
    }
    if failed > 0 {
        let first = load.first_error.as_deref().unwrap_or("a non-2xx status");
        let why = format!("{failed} of {sent} requests failed during the changes (first: {first})");
        eprintln!("bench: reconfig: {why}");
        notes.push(format!("{why}."));
        problems.push(why);
    }
    if after.members != members || after.up != members {
        notes.push(format!(
            "After the changes the group had {} members, {} UP (expected {members}).",
            after.members, after.up
        ));
    }

    notes.push(format!(
        "Each change figure is the median of {} repetition(s), made through the admin API while an open loop \
         of {} req/s over {} connections ran through the vserver; a member is \"served\" when its listener in \
         the bench receives a request. A changed member has weight {HEAVY} against 1, about {:.1}% of the \
         requests, so a first request comes within a few requests' time of the change.",
        reps.len(),
        plan.rate,
        plan.connections,
        100.0 * f64::from(HEAVY) / (outcome.members as f64 + 2.0 * f64::from(HEAVY))
    ));
    notes.push(
        "HAProxy and nginx are not measured: they apply such a change by a reload or through their runtime \
         API, which this scenario does not drive."
            .to_string(),
    );
    Ok(Measured {
        table: Table {
            scenario: "reconfig".into(),
            title: TITLE.into(),
            rows: outcome.rows(plan),
            notes,
        },
        problems,
    })
}

/// Members Ballast can hold a connection to under `fd_limit`, besides two descriptors per
/// client connection and [`SPARE_FDS`].
fn members_that_fit(requested: usize, fd_limit: u64, connections: usize) -> usize {
    let room = fd_limit.saturating_sub(SPARE_FDS + 2 * connections as u64);
    requested.min(usize::try_from(room).unwrap_or(usize::MAX))
}

/// Members per `bench backend` process: a listener and an accepted connection each.
fn members_per_backend(fd_limit: u64) -> usize {
    usize::try_from(fd_limit.saturating_sub(SPARE_FDS) / 2)
        .unwrap_or(usize::MAX)
        .max(1)
}

/// Starts `bench backend` processes answering on `addrs` (consecutive, as
/// [`consecutive_addrs`] makes them), and waits until the last address of each accepts.
async fn start_backends(
    addrs: &[SocketAddr],
    fd_limit: u64,
    pin: &Pinning,
    workdir: &Workdir,
) -> Result<Vec<Server>> {
    let me = std::env::current_exe().context("finding the bench binary")?;
    let cpu = pin.enabled.then_some(pin.generator_cpu);
    let mut servers = Vec::new();
    for (i, chunk) in addrs.chunks(members_per_backend(fd_limit)).enumerate() {
        let (Some(first), Some(last)) = (chunk.first(), chunk.last()) else {
            continue;
        };
        let args = [
            "backend".to_string(),
            "--listen".to_string(),
            first.to_string(),
            "--listeners".to_string(),
            chunk.len().to_string(),
        ];
        let mut server = Server::spawn(&format!("backend-{i}"), &me, &args, cpu, workdir)?;
        server
            .wait_accepting(*last, Duration::from_secs(30))
            .await?;
        servers.push(server);
    }
    Ok(servers)
}

/// The Ballast config: one worker, the admin API on `admin` (password in `password_file`,
/// beside the config), one `ROUNDROBIN` HTTP vserver on `listen` and one servicegroup of
/// `members`.
fn ballast_config(
    listen: SocketAddr,
    admin: SocketAddr,
    members: &[SocketAddr],
    password_file: &str,
) -> String {
    let mut text = format!(
        r#"# Written by `bench`: the reconfig scenario, one vserver, {n} members, one worker thread.
[ballast]
workers = 1

[admin]
listen = "{admin}"
passwordfile = "{password_file}"

[[lbvserver]]
name = "{GROUP}"
servicetype = "HTTP"
ipv46 = "{ip}"
port = {port}
lbmethod = "ROUNDROBIN"
servicegroupname = "{GROUP}"

[[servicegroup]]
servicegroupname = "{GROUP}"
servicetype = "HTTP"
members = [
"#,
        n = members.len(),
        ip = listen.ip(),
        port = listen.port(),
    );
    for member in members {
        text.push_str(&format!(
            "  {{ ip = \"{}\", port = {} }},\n",
            member.ip(),
            member.port()
        ));
    }
    text.push_str("]\n");
    text
}

/// 32 hex digits from the kernel's random source.
fn random_password() -> Result<String> {
    use std::io::Read;
    let mut bytes = [0u8; 16];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut bytes))
        .context("reading /dev/urandom for the admin password")?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(text: &str) -> SocketAddr {
        text.parse().unwrap()
    }

    #[test]
    fn config_lists_every_member_and_the_admin_api() {
        let members = consecutive_addrs(addr("127.1.0.1:9000"), 300).unwrap();
        let text = ballast_config(
            addr("127.0.0.1:8080"),
            addr("127.0.0.1:9080"),
            &members,
            "admin.pass",
        );
        assert_eq!(text.matches("port = 9000 }").count(), 300);
        assert!(text.contains("  { ip = \"127.1.0.1\", port = 9000 },\n"));
        assert!(text.contains("  { ip = \"127.1.1.46\", port = 9000 },\n"));
        assert!(!text.contains("127.1.1.47"));
        assert!(
            text.contains("[admin]\nlisten = \"127.0.0.1:9080\"\npasswordfile = \"admin.pass\"\n")
        );
        assert!(text.contains("workers = 1\n"));
        assert!(text.contains("lbmethod = \"ROUNDROBIN\"\n"));
        assert!(text.contains("port = 8080\n"));
        assert!(text.ends_with("]\n"));
    }

    #[test]
    fn members_fit_the_descriptor_limit() {
        assert_eq!(members_that_fit(10_000, 20_000, 32), 10_000);
        assert_eq!(members_that_fit(10_000, 4_096, 32), 4_096 - 512 - 64);
        assert_eq!(members_that_fit(10_000, 100, 32), 0);
        assert_eq!(members_per_backend(20_000), 9_744);
        assert_eq!(members_per_backend(100), 1);
    }

    #[test]
    fn quick_plan_is_small() {
        let quick = Plan::new(true);
        assert!(quick.members < Plan::new(false).members);
        let args = ReconfigArgs {
            quick: false,
            members: Some(1),
            rate: None,
            repeats: None,
        };
        assert!(Plan::from_args(&args).is_err());
    }
}
