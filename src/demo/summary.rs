//! What the demo prints at the end: requests and failures, scale-outs and scale-ins, the time
//! from each breach to its new member serving, and the files it wrote.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use autoscaler::EventKind;

use super::RunRecord;
use super::status::clock;

/// The files a demo writes.
#[derive(Debug, Clone)]
pub struct Files {
    pub svg: PathBuf,
    pub png: PathBuf,
    pub log: PathBuf,
}

impl Files {
    pub fn new(dir: &Path) -> Files {
        Files {
            svg: dir.join("ballast-demo.svg"),
            png: dir.join("ballast-demo.png"),
            log: dir.join("ballast-demo.log"),
        }
    }
}

impl fmt::Display for Files {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "timeline chart: {} and {}\nlog: {}",
            self.svg.display(),
            self.png.display(),
            self.log.display()
        )
    }
}

/// The summary.
#[derive(Debug)]
pub struct Report<'a> {
    run: &'a RunRecord,
    vms_at_end: usize,
    vms_left: usize,
}

impl Report<'_> {
    pub fn new(run: &RunRecord, vms_at_end: usize, vms_left: usize) -> Report<'_> {
        Report {
            run,
            vms_at_end,
            vms_left,
        }
    }

    /// Scale-outs on load (not the ones that filled `minmembers`), and the fills.
    pub fn scale_outs(&self) -> (usize, usize) {
        let starts = self
            .run
            .events
            .iter()
            .filter(|e| e.event.kind == EventKind::ScaleOutStarted);
        let (fills, load): (Vec<_>, Vec<_>) =
            starts.partition(|e| e.event.reason.contains("minmembers"));
        (load.len(), fills.len())
    }

    pub fn scale_ins(&self) -> usize {
        self.run
            .events
            .iter()
            .filter(|e| e.event.kind == EventKind::ScaleInStarted)
            .count()
    }
}

impl fmt::Display for Report<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let run = self.run;
        let totals = &run.totals;
        let length = run.samples.last().map_or(Duration::ZERO, |s| s.t);
        let how = if run.interrupted {
            "stopped early"
        } else {
            "load finished"
        };
        writeln!(f, "\nSummary ({how} after {})", clock(length))?;
        writeln!(
            f,
            "  requests     {} sent, {} answered 200, {} failed",
            totals.sent, totals.ok, totals.errors
        )?;
        if totals.not_sent > 0 {
            writeln!(
                f,
                "               {} due but not sent (2000 already waited for an answer)",
                totals.not_sent
            )?;
        }
        for error in &totals.first_errors {
            writeln!(f, "               failure: {error}")?;
        }
        let (outs, fills) = self.scale_outs();
        writeln!(
            f,
            "  scale-outs   {outs} (plus {fills} to reach minmembers)"
        )?;
        writeln!(f, "  scale-ins    {}", self.scale_ins())?;
        let times: Vec<String> = run
            .breach_to_serving
            .iter()
            .map(|t| format!("{:.1}s", t.as_secs_f64()))
            .collect();
        writeln!(
            f,
            "  breach to new member serving: {}",
            if times.is_empty() {
                "no scale-out completed".to_string()
            } else {
                times.join(", ")
            }
        )?;
        let peak = run.samples.iter().map(|s| s.current).max().unwrap_or(0);
        writeln!(f, "  members      at most {peak} in service")?;
        if self.vms_left == 0 {
            write!(
                f,
                "  VMs          {} running at the end, all stopped",
                self.vms_at_end
            )
        } else {
            write!(
                f,
                "  VMs          {} of {} still running!",
                self.vms_left, self.vms_at_end
            )
        }
    }
}
