//! The decision core in a seeded, chaotic world (`world`): many seeds, every invariant
//! checked after every step.
//!
//! - `cargo test -p autoscaler --test seeded_simulation` runs seeds `0..SEEDS`, tolerating no
//!   violation; `BALLAST_SIM_SEEDS=5000` runs seeds `0..5000` instead.
//! - `BALLAST_SIM_SEED=1234 cargo test -p autoscaler --test seeded_simulation` runs only seed
//!   1234 and prints its scenario and its step log.
//! - `known_bugs`: each core bug the simulation found (all fixed), as the shortest script that
//!   shows it. Should one come back while a fix is under way, listing its `Known` kind in
//!   `OPEN` tolerates it (counted and listed with `-- --nocapture`, not failed).

mod known_bugs;
mod world;

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write as _;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use world::{Known, Outcome, Scenario};

/// Seeds `0..SEEDS` run in CI.
const SEEDS: u64 = 200;

/// Core bugs found by this simulation and not fixed yet (see `known_bugs`): none.
const OPEN: [Known; 0] = [];

/// Log lines shown with a failure (the replay prints them all).
const TAIL: usize = 60;

#[test]
fn seeded_simulation() {
    if let Ok(seed) = std::env::var("BALLAST_SIM_SEED") {
        let seed = seed
            .trim()
            .parse::<u64>()
            .expect("BALLAST_SIM_SEED is an unsigned integer");
        replay(seed, &open());
        return;
    }
    let seeds = std::env::var("BALLAST_SIM_SEEDS")
        .ok()
        .and_then(|n| n.trim().parse::<u64>().ok())
        .unwrap_or(SEEDS);
    sweep(0..seeds, &open());
}

fn open() -> BTreeSet<Known> {
    BTreeSet::from(OPEN)
}

/// Runs the seeds; prints what they covered; fails with every seed that broke an invariant.
fn sweep(seeds: std::ops::Range<u64>, tolerate: &BTreeSet<Known>) {
    let outcomes = run_seeds(seeds, tolerate);
    let mut totals: BTreeMap<String, u64> = BTreeMap::new();
    let mut steps = 0;
    for outcome in &outcomes {
        steps += outcome.steps;
        for (what, n) in &outcome.stats {
            *totals.entry(what.clone()).or_insert(0) += n;
        }
    }
    println!("{} seeds, {steps} steps; what happened:", outcomes.len());
    for (what, n) in &totals {
        println!("  {n:>7}  {what}");
    }
    for known in tolerate {
        let key = format!("known bug hit: {known:?}");
        let hit: Vec<u64> = outcomes
            .iter()
            .filter(|o| o.stats.contains_key(&key))
            .map(|o| o.seed)
            .collect();
        if !hit.is_empty() {
            println!("open bug {known:?} hit by {} seeds: {hit:?}", hit.len());
        }
    }
    let failed: Vec<&Outcome> = outcomes.iter().filter(|o| o.violation.is_some()).collect();
    let Some(first) = failed.first() else {
        return;
    };
    let mut message = format!("{} of {} seeds failed:\n", failed.len(), outcomes.len());
    for outcome in &failed {
        message += &format!(
            "  seed {} (step {}): {}\n",
            outcome.seed,
            outcome.steps,
            outcome.violation.as_deref().unwrap_or_default()
        );
    }
    message += &format!(
        "\nthe last {TAIL} lines of seed {}'s step log:\n{}\n\nreplay one seed with its whole \
         log: BALLAST_SIM_SEED={} cargo test -p autoscaler --test seeded_simulation",
        first.seed,
        tail(&first.log),
        first.seed
    );
    panic!("{message}");
}

/// Runs one seed and prints its scenario and step log (straight to stderr, so the test
/// harness's capture does not hide them).
fn replay(seed: u64, tolerate: &BTreeSet<Known>) {
    let scenario = Scenario::from_seed(seed);
    let mut out = format!("{scenario:#?}\n");
    let outcome = world::run(scenario, tolerate);
    for line in &outcome.log {
        out += line;
        out.push('\n');
    }
    out += &format!(
        "seed {seed}: {} steps; {:#?}\n",
        outcome.steps, outcome.stats
    );
    let _ = std::io::stderr().lock().write_all(out.as_bytes());
    if let Some(violation) = outcome.violation {
        panic!("seed {seed} (step {}): {violation}", outcome.steps);
    }
}

/// Runs the seeds on every core; each seed's run is deterministic whatever the thread.
fn run_seeds(seeds: std::ops::Range<u64>, tolerate: &BTreeSet<Known>) -> Vec<Outcome> {
    let next = AtomicU64::new(seeds.start);
    let outcomes = Mutex::new(Vec::new());
    let threads = std::thread::available_parallelism().map_or(1, usize::from);
    std::thread::scope(|scope| {
        for _ in 0..threads {
            scope.spawn(|| {
                loop {
                    let seed = next.fetch_add(1, Ordering::Relaxed);
                    if seed >= seeds.end {
                        break;
                    }
                    let mut outcome = world::run(Scenario::from_seed(seed), tolerate);
                    if outcome.violation.is_none() {
                        outcome.log = Vec::new();
                    }
                    outcomes.lock().expect("no thread panics").push(outcome);
                }
            });
        }
    });
    let mut outcomes = outcomes.into_inner().expect("no thread panics");
    outcomes.sort_by_key(|o| o.seed);
    outcomes
}

fn tail(log: &[String]) -> String {
    log[log.len().saturating_sub(TAIL)..].join("\n")
}
