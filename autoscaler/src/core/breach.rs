//! Breach windows: for each metric, since when every sample has been above its `upper`
//! (and, separately, below its `lower`). A sample that is not in breach, or an unknown
//! average, closes the window; every action closes them all.

use std::time::Duration;

use crate::policy::MetricRule;

#[derive(Debug, Clone, Default)]
pub(crate) struct BreachWindows {
    windows: Vec<Window>,
}

#[derive(Debug, Clone, Copy, Default)]
struct Window {
    over_since: Option<Duration>,
    under_since: Option<Duration>,
}

impl BreachWindows {
    /// Adds one sample of group averages (one per rule, `None` when unknown).
    pub fn record(&mut self, now: Duration, rules: &[MetricRule], averages: &[Option<f64>]) {
        self.windows.resize(rules.len(), Window::default());
        for ((window, rule), average) in self.windows.iter_mut().zip(rules).zip(averages) {
            let over = matches!((average, rule.upper), (Some(v), Some(upper)) if *v > upper);
            let under = matches!((average, rule.lower), (Some(v), Some(lower)) if *v < lower);
            window.over_since = over.then(|| window.over_since.unwrap_or(now));
            window.under_since = under.then(|| window.under_since.unwrap_or(now));
        }
    }

    /// Forgets every open window: samples so far do not count toward the next watch time.
    pub fn restart(&mut self) {
        self.windows.clear();
    }

    /// The first metric that has been above its `upper` for the whole `watch`, and since when.
    pub fn scale_out(&self, now: Duration, watch: Duration) -> Option<(usize, Duration)> {
        self.windows.iter().enumerate().find_map(|(index, w)| {
            let since = w.over_since?;
            (now.saturating_sub(since) >= watch).then_some((index, since))
        })
    }

    /// Whether every metric that has a `lower` has been below it for the whole `watch`.
    pub fn scale_in(&self, now: Duration, watch: Duration, rules: &[MetricRule]) -> bool {
        let mut any = false;
        for (window, rule) in self.windows.iter().zip(rules) {
            if rule.lower.is_none() {
                continue;
            }
            any = true;
            match window.under_since {
                Some(since) if now.saturating_sub(since) >= watch => {}
                _ => return false,
            }
        }
        any && self.windows.len() == rules.len()
    }

    /// Since when the oldest open window has been open: above `upper` (`out`) and/or below
    /// `lower` (`in_`), whichever directions could lead to an action.
    pub fn watching_since(&self, out: bool, in_: bool) -> Option<Duration> {
        let over = self
            .windows
            .iter()
            .filter_map(|w| w.over_since)
            .filter(|_| out);
        let under = self
            .windows
            .iter()
            .filter_map(|w| w.under_since)
            .filter(|_| in_);
        over.chain(under).min()
    }
}
