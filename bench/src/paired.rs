//! Round by round: how often one target beat each other one in the same round, and how far a
//! figure moved between rounds. A median over rounds hides both, and on a shared VM the p99 of
//! a single round can move tenfold, so the table's medians carry this beside them.

use std::collections::BTreeMap;

/// One kept run's figure: `(target, round, value)`.
pub type Sample<'a> = (&'a str, usize, f64);

/// "`subject` was lower than P in W of N rounds …; per-round values: T lo–hi …": wins counted
/// against each of `peers` over the rounds both ran; a span for every target (one value where
/// all its rounds gave the same figure, as with one round); `None` if no peer shares a round
/// with `subject`.
pub fn lower_in_rounds(
    samples: &[Sample<'_>],
    subject: &str,
    peers: &[&str],
    unit: &str,
) -> Option<String> {
    let mut by_target: BTreeMap<&str, BTreeMap<usize, f64>> = BTreeMap::new();
    for &(target, round, value) in samples.iter().filter(|s| s.2.is_finite()) {
        by_target.entry(target).or_default().insert(round, value);
    }
    let own = by_target.get(subject)?;
    let wins: Vec<String> = by_target
        .iter()
        .filter(|(target, _)| peers.contains(target))
        .filter_map(|(target, theirs)| {
            let shared: Vec<(f64, f64)> = own
                .iter()
                .filter_map(|(round, mine)| theirs.get(round).map(|other| (*mine, *other)))
                .collect();
            let lower = shared.iter().filter(|(mine, other)| mine < other).count();
            (!shared.is_empty()).then(|| format!("{target} in {lower} of {}", shared.len()))
        })
        .collect();
    if wins.is_empty() {
        return None;
    }
    let spans: Vec<String> = by_target
        .iter()
        .map(|(target, values)| {
            let lo = values.values().copied().fold(f64::INFINITY, f64::min);
            let hi = values.values().copied().fold(f64::NEG_INFINITY, f64::max);
            if lo == hi {
                format!("{target} {lo:.0}")
            } else {
                format!("{target} {lo:.0}–{hi:.0}")
            }
        })
        .collect();
    Some(format!(
        "{subject} was lower than {} rounds; per-round values: {} {unit}",
        wins.join(", than "),
        spans.join(", ")
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_wins_only_in_rounds_both_ran() {
        let samples = [
            ("ballast", 1, 900.0),
            ("haproxy", 1, 1000.0),
            ("ballast", 2, 3000.0),
            ("haproxy", 2, 2000.0),
            ("ballast", 3, 500.0),
            ("haproxy", 3, 800.0),
            ("nginx", 3, 400.0),
            ("direct", 1, 300.0),
        ];
        let note = lower_in_rounds(&samples, "ballast", &["haproxy", "nginx"], "µs").unwrap();
        assert_eq!(
            note,
            "ballast was lower than haproxy in 2 of 3, than nginx in 0 of 1 rounds; per-round \
             values: ballast 500–3000, direct 300, haproxy 800–2000, nginx 400 µs"
        );
    }

    #[test]
    fn nothing_to_say_without_the_subject_or_a_peer() {
        let peers = &["haproxy"];
        let alone = [("haproxy", 1, 1.0)];
        assert_eq!(lower_in_rounds(&alone, "ballast", peers, "µs"), None);
        let no_peer = [("ballast", 1, 1.0), ("direct", 1, 0.5)];
        assert_eq!(lower_in_rounds(&no_peer, "ballast", peers, "µs"), None);
        let unmeasured = [("ballast", 1, 1.0), ("haproxy", 1, f64::NAN)];
        assert_eq!(lower_in_rounds(&unmeasured, "ballast", peers, "µs"), None);
    }
}
