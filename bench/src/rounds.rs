//! Rounds of runs that take turns: each round every target gets one run, the order rotating
//! from round to round, so slow drift spreads over all targets instead of favouring one. A run
//! that other load disturbed is tried again (`--retries`), and of a turn's attempts the least
//! disturbed is kept for the medians; every attempt is written to `--out`.

use anyhow::Result;
use serde::Serialize;

use crate::Common;
use crate::procstat;
use crate::report::{JsonOut, keep_least_disturbed};
use crate::targets::{Lab, Target};

/// One measured run, as every scenario records it.
pub trait Attempt: Serialize {
    /// Cores' worth of CPU that other processes used during the run.
    fn foreign_cores(&self) -> f64;
    /// Marks the run as the one kept for its turn.
    fn keep(&mut self);
    /// The progress line printed after the run.
    fn line(&self) -> String;
}

/// What a run is told: whom to measure, which round and attempt it is, and the processes
/// whose CPU counts as the lab's.
#[derive(Debug, Clone)]
pub struct Turn {
    pub target: Target,
    pub round: usize,
    pub attempt: usize,
    pub pids: Vec<u32>,
}

/// `common.rounds` rounds over `targets`, each turn measured by `run` once the machine is quiet.
pub async fn alternate<T: Attempt>(
    lab: &mut Lab,
    targets: &[Target],
    common: &Common,
    out: &mut JsonOut,
    run: impl AsyncFnMut(Turn) -> Result<T>,
) -> Result<Vec<T>> {
    alternate_for(lab, targets, common.rounds, common, out, run).await
}

/// [`alternate`] for `rounds` rounds instead of `common.rounds`.
pub async fn alternate_for<T: Attempt>(
    lab: &mut Lab,
    targets: &[Target],
    rounds: usize,
    common: &Common,
    out: &mut JsonOut,
    mut run: impl AsyncFnMut(Turn) -> Result<T>,
) -> Result<Vec<T>> {
    let n = targets.len();
    let mut runs = Vec::new();
    for round in 1..=rounds {
        for i in 0..n {
            let target = &targets[(round - 1 + i) % n];
            let mut attempts: Vec<T> = Vec::new();
            for attempt in 1..=common.retries + 1 {
                lab.check_alive()?;
                let pids = lab.pids();
                procstat::wait_quiet(&pids, common.max_foreign, common.quiet_wait).await?;
                let turn = Turn {
                    target: target.clone(),
                    round,
                    attempt,
                    pids,
                };
                let record = run(turn).await?;
                println!("{}", record.line());
                let clean = record.foreign_cores() <= common.max_foreign;
                attempts.push(record);
                if clean {
                    break;
                }
            }
            keep_least_disturbed(&mut attempts, |r| r.foreign_cores(), |r| r.keep());
            for record in attempts {
                out.write(&record)?;
                runs.push(record);
            }
        }
    }
    Ok(runs)
}
