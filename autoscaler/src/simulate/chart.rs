//! The replay as an SVG timeline, for `ballast simulate --chart`: one panel per metric (the
//! trace's group average against its `upper` and `lower` thresholds), then the members in
//! service as a step line between `minmembers` and `maxmembers`, all on one time axis, with a
//! vertical marker at every scale-out, scale-in and failed deploy.
//!
//! Drawn with plotters' SVG backend alone: text is written as `<text>` elements and the
//! viewer supplies the font, so rendering needs no font file and no system library.

use plotters::coord::Shift;
use plotters::prelude::*;

use super::SimEvent;
use super::trace::Trace;
use crate::event::EventKind;
use crate::policy::Policy;

/// Why a chart could not be drawn.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("drawing the chart: {0}")]
pub struct ChartError(String);

const WIDTH: u32 = 1000;
const METRIC_HEIGHT: u32 = 220;
const MEMBERS_HEIGHT: u32 = 200;
const TITLE_HEIGHT: u32 = 40;

const VALUE: RGBColor = RGBColor(31, 119, 180);
const UPPER: RGBColor = RGBColor(214, 39, 40);
const LOWER: RGBColor = RGBColor(44, 160, 44);
const MEMBERS: RGBColor = RGBColor(31, 119, 180);
const BOUNDS: RGBColor = RGBColor(150, 150, 150);

/// The events that get a marker, with their colour and name (the demo's chart uses them too).
pub const MARKERS: [(EventKind, RGBColor, &str); 3] = [
    (
        EventKind::ScaleOutStarted,
        RGBColor(255, 127, 14),
        "scale-out",
    ),
    (
        EventKind::ScaleInStarted,
        RGBColor(148, 103, 189),
        "scale-in",
    ),
    (
        EventKind::DeployFailed,
        RGBColor(214, 39, 40),
        "deploy failed",
    ),
];

/// Draws the replay of `trace` for `policy` as an SVG document titled `title`.
pub fn svg(
    title: &str,
    policy: &Policy,
    trace: &Trace,
    events: &[SimEvent],
) -> Result<String, ChartError> {
    let mut out = String::new();
    let panels = trace.metrics.len() as u32;
    let height = TITLE_HEIGHT + panels * METRIC_HEIGHT + MEMBERS_HEIGHT;
    {
        let root = SVGBackend::with_string(&mut out, (WIDTH, height)).into_drawing_area();
        draw(&root, title, policy, trace, events).map_err(|e| ChartError(e.to_string()))?;
        root.present().map_err(|e| ChartError(e.to_string()))?;
    }
    Ok(out)
}

type DrawResult = Result<(), DrawingAreaErrorKind<std::io::Error>>;

fn draw(
    root: &DrawingArea<SVGBackend<'_>, Shift>,
    title: &str,
    policy: &Policy,
    trace: &Trace,
    events: &[SimEvent],
) -> DrawResult {
    root.fill(&WHITE)?;
    let root = root.titled(title, ("sans-serif", 24))?;
    let end = trace.end().as_secs_f64().max(1.0);
    let mut rest = root;
    for (index, name) in trace.metrics.iter().enumerate() {
        let (panel, below) = rest.split_vertically(METRIC_HEIGHT);
        let rule = policy.metrics.iter().find(|m| &m.name == name);
        let (upper, lower) = rule.map_or((None, None), |r| (r.upper, r.lower));
        let points: Vec<(f64, f64)> = trace
            .samples
            .iter()
            .map(|s| (s.at.as_secs_f64(), s.values[index]))
            .collect();
        metric_panel(&panel, name, end, &points, upper, lower, events)?;
        rest = below;
    }
    members_panel(&rest, policy, end, events)
}

fn metric_panel(
    area: &DrawingArea<SVGBackend<'_>, Shift>,
    name: &str,
    end: f64,
    points: &[(f64, f64)],
    upper: Option<f64>,
    lower: Option<f64>,
    events: &[SimEvent],
) -> DrawResult {
    let values = points.iter().map(|(_, v)| *v).chain(upper).chain(lower);
    let (low, high) = values.fold((0.0f64, 1.0f64), |(lo, hi), v| (lo.min(v), hi.max(v)));
    let top = high + (high - low) * 0.1;
    let mut chart = ChartBuilder::on(area)
        .margin(10)
        .x_label_area_size(30)
        .y_label_area_size(60)
        .build_cartesian_2d(0.0..end, low..top)?;
    chart
        .configure_mesh()
        .light_line_style(WHITE)
        .x_desc("t (s)")
        .x_label_formatter(&seconds)
        .y_desc(name)
        .draw()?;
    draw_markers(&mut chart, events, low, top, false)?;
    for (threshold, color, label) in [(upper, UPPER, "upper"), (lower, LOWER, "lower")] {
        let Some(threshold) = threshold else {
            continue;
        };
        chart
            .draw_series(DashedLineSeries::new(
                [(0.0, threshold), (end, threshold)],
                6,
                4,
                color.stroke_width(1),
            ))?
            .label(format!("{label} {threshold}"))
            .legend(move |(x, y)| PathElement::new([(x, y), (x + 20, y)], color));
    }
    chart
        .draw_series(LineSeries::new(
            points.iter().copied(),
            VALUE.stroke_width(2),
        ))?
        .label(format!("{name} (group average)"))
        .legend(|(x, y)| PathElement::new([(x, y), (x + 20, y)], VALUE.stroke_width(2)));
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()
}

fn members_panel(
    area: &DrawingArea<SVGBackend<'_>, Shift>,
    policy: &Policy,
    end: f64,
    events: &[SimEvent],
) -> DrawResult {
    let mut steps = vec![(0.0, 0.0)];
    let mut current = 0.0;
    for SimEvent(event) in events {
        let members = f64::from(event.members);
        if members != current {
            let at = event.at.as_secs_f64();
            steps.push((at, current));
            steps.push((at, members));
            current = members;
        }
    }
    steps.push((end, current));
    let most = events.iter().map(|e| e.0.members).max().unwrap_or(0);
    let top = f64::from(policy.max_members.max(most)) + 1.0;
    let mut chart = ChartBuilder::on(area)
        .margin(10)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .build_cartesian_2d(0.0..end, 0.0..top)?;
    chart
        .configure_mesh()
        .light_line_style(WHITE)
        .x_desc("t (s)")
        .x_label_formatter(&seconds)
        .y_desc("members")
        .y_labels(top as usize + 1)
        .y_label_formatter(&|y| format!("{y:.0}"))
        .draw()?;
    draw_markers(&mut chart, events, 0.0, top, true)?;
    let bounds = [f64::from(policy.min_members), f64::from(policy.max_members)];
    chart
        .draw_series(
            bounds.map(|bound| {
                PathElement::new([(0.0, bound), (end, bound)], BOUNDS.stroke_width(1))
            }),
        )?
        .label("min, max")
        .legend(|(x, y)| PathElement::new([(x, y), (x + 20, y)], BOUNDS));
    chart
        .draw_series(LineSeries::new(steps, MEMBERS.stroke_width(2)))?
        .label("members in service")
        .legend(|(x, y)| PathElement::new([(x, y), (x + 20, y)], MEMBERS.stroke_width(2)));
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()
}

/// An axis label in whole seconds.
fn seconds(t: &f64) -> String {
    format!("{t:.0}")
}

type Chart<'a, 'b> = ChartContext<
    'a,
    SVGBackend<'b>,
    Cartesian2d<plotters::coord::types::RangedCoordf64, plotters::coord::types::RangedCoordf64>,
>;

/// A vertical line at each marked event; with `legend`, each kind that occurs is labelled.
fn draw_markers(
    chart: &mut Chart<'_, '_>,
    events: &[SimEvent],
    low: f64,
    high: f64,
    legend: bool,
) -> DrawResult {
    for (kind, color, label) in MARKERS {
        let times: Vec<f64> = events
            .iter()
            .filter(|e| e.0.kind == kind)
            .map(|e| e.0.at.as_secs_f64())
            .collect();
        if times.is_empty() {
            continue;
        }
        let series = chart.draw_series(
            times
                .into_iter()
                .map(|at| PathElement::new([(at, low), (at, high)], color.stroke_width(2))),
        )?;
        if legend {
            series.label(label).legend(move |(x, y)| {
                PathElement::new([(x, y), (x + 20, y)], color.stroke_width(2))
            });
        }
    }
    Ok(())
}
