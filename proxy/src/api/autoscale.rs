//! The autoscale engine as the admin API sees it. The engine lives above the proxy (in the
//! binary), so the API reaches it through this trait: the event history
//! (`config/autoscaleevent`), each group's live figures (merged into `stat/autoscalegroup`),
//! and lifting a launch suspension (`autoscalegroup?action=enable` on an enabled group).

use serde_json::{Map, Value};

/// What the admin API asks of a running autoscale engine.
pub trait AutoscaleView: Send + Sync + std::fmt::Debug {
    /// Every event in the history, oldest first, as NITRO `autoscaleevent` objects.
    fn events(&self) -> Vec<Value>;

    /// The engine's figures for `group` (phase, members by state, averages ...), if it runs.
    fn group_stats(&self, group: &str) -> Option<Map<String, Value>>;

    /// An operator enabled `group`: a suspended launch may go again. Returns whether the
    /// engine runs that group.
    fn resume(&self, group: &str) -> bool;
}
