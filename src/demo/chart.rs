//! The demo's timeline: requests/s, the group's metric with its upper and lower band, and the
//! members in service, on one time axis, with a named marker at every scale-out and scale-in.
//! Drawn with plotters' SVG backend (as `ballast simulate --chart` draws), so the SVG needs no
//! font; the PNG is that SVG rendered by resvg with a font built into the binary.

use std::time::SystemTime;

use anyhow::Context;
use autoscaler::EventRecord;
use autoscaler::simulate::chart::MARKERS;
use plotters::coord::Shift;
use plotters::prelude::*;

use super::RunRecord;
use super::status::GroupInfo;
use super::summary::Files;

const WIDTH: u32 = 1000;
const PANEL: u32 = 220;
const TITLE: u32 = 40;

const LOAD: RGBColor = RGBColor(31, 119, 180);
const TARGET: RGBColor = RGBColor(150, 150, 150);
const UPPER: RGBColor = RGBColor(214, 39, 40);
const LOWER: RGBColor = RGBColor(44, 160, 44);

/// Writes `files.svg` and `files.png`.
pub fn write(files: &Files, group: &GroupInfo, run: &RunRecord) -> anyhow::Result<()> {
    let svg = svg(group, run)?;
    std::fs::write(&files.svg, &svg)
        .with_context(|| format!("cannot write {}", files.svg.display()))?;
    let png = super::png::render(&svg)?;
    std::fs::write(&files.png, png)
        .with_context(|| format!("cannot write {}", files.png.display()))?;
    Ok(())
}

/// The chart as an SVG document.
pub fn svg(group: &GroupInfo, run: &RunRecord) -> anyhow::Result<String> {
    let mut out = String::new();
    {
        let root =
            SVGBackend::with_string(&mut out, (WIDTH, TITLE + 3 * PANEL)).into_drawing_area();
        draw(&root, group, run).map_err(|e| anyhow::anyhow!("drawing the chart: {e}"))?;
        root.present()
            .map_err(|e| anyhow::anyhow!("drawing the chart: {e}"))?;
    }
    Ok(out)
}

type DrawResult = Result<(), DrawingAreaErrorKind<std::io::Error>>;
type Chart<'a, 'b> = ChartContext<
    'a,
    SVGBackend<'b>,
    Cartesian2d<plotters::coord::types::RangedCoordf64, plotters::coord::types::RangedCoordf64>,
>;

fn draw(
    root: &DrawingArea<SVGBackend<'_>, Shift>,
    group: &GroupInfo,
    run: &RunRecord,
) -> DrawResult {
    root.fill(&WHITE)?;
    let root = root.titled(
        &format!("ballast demo: autoscale group {}", group.name),
        ("sans-serif", 24),
    )?;
    let end = run
        .samples
        .last()
        .map_or(1.0, |s| s.t.as_secs_f64())
        .max(1.0);
    let markers = markers(run);
    let panels = root.split_evenly((3, 1));

    // Requests per second, and what the ramp asked for.
    let answered: Vec<(f64, f64)> = run
        .samples
        .iter()
        .map(|s| (s.t.as_secs_f64(), s.load.ok as f64))
        .collect();
    let target: Vec<(f64, f64)> = run
        .samples
        .iter()
        .filter_map(|s| Some((s.t.as_secs_f64(), s.target_rate?)))
        .collect();
    let top = answered
        .iter()
        .chain(&target)
        .map(|p| p.1)
        .fold(10.0, f64::max)
        * 1.15;
    let mut chart = panel(&panels[0], end, top, "requests/s", 10)?;
    draw_markers(&mut chart, &markers, top, true)?;
    if !target.is_empty() {
        chart
            .draw_series(DashedLineSeries::new(target, 6, 4, TARGET.stroke_width(1)))?
            .label("load asked for")
            .legend(|(x, y)| PathElement::new([(x, y), (x + 20, y)], TARGET));
    }
    chart
        .draw_series(LineSeries::new(answered, LOAD.stroke_width(2)))?
        .label("answered 200 per second")
        .legend(|(x, y)| PathElement::new([(x, y), (x + 20, y)], LOAD.stroke_width(2)));
    legend(&mut chart)?;

    // The group's metric against its band.
    let average: Vec<(f64, f64)> = run
        .samples
        .iter()
        .filter_map(|s| Some((s.t.as_secs_f64(), s.average?)))
        .collect();
    let top = average
        .iter()
        .map(|p| p.1)
        .chain(group.upper)
        .fold(100.0, f64::max);
    let mut chart = panel(&panels[1], end, top, &format!("{} %", group.metric), 10)?;
    if let (Some(upper), Some(lower)) = (group.upper, group.lower) {
        chart.draw_series([Rectangle::new(
            [(0.0, lower), (end, upper)],
            LOWER.mix(0.08).filled(),
        )])?;
    }
    draw_markers(&mut chart, &markers, top, false)?;
    for (threshold, color, label) in [(group.upper, UPPER, "upper"), (group.lower, LOWER, "lower")]
    {
        let Some(threshold) = threshold else { continue };
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
        .draw_series(LineSeries::new(average, LOAD.stroke_width(2)))?
        .label(format!("{} (group average)", group.metric))
        .legend(|(x, y)| PathElement::new([(x, y), (x + 20, y)], LOAD.stroke_width(2)));
    legend(&mut chart)?;

    // Members in service.
    let mut steps = Vec::new();
    let mut current = None;
    for sample in &run.samples {
        let (t, members) = (sample.t.as_secs_f64(), f64::from(sample.current));
        if let Some(previous) = current
            && previous != members
        {
            steps.push((t, previous));
        }
        steps.push((t, members));
        current = Some(members);
    }
    let top = f64::from(group.max_members) + 1.0;
    let mut chart = panel(&panels[2], end, top, "members", top as usize + 1)?;
    draw_markers(&mut chart, &markers, top, false)?;
    let bounds = [f64::from(group.min_members), f64::from(group.max_members)];
    chart
        .draw_series(bounds.map(|b| PathElement::new([(0.0, b), (end, b)], TARGET)))?
        .label("min, max")
        .legend(|(x, y)| PathElement::new([(x, y), (x + 20, y)], TARGET));
    chart
        .draw_series(LineSeries::new(steps, LOAD.stroke_width(2)))?
        .label("members in service")
        .legend(|(x, y)| PathElement::new([(x, y), (x + 20, y)], LOAD.stroke_width(2)));
    legend(&mut chart)
}

fn panel<'a, 'b>(
    area: &'a DrawingArea<SVGBackend<'b>, Shift>,
    end: f64,
    top: f64,
    name: &str,
    y_labels: usize,
) -> Result<Chart<'a, 'b>, DrawingAreaErrorKind<std::io::Error>> {
    let mut chart = ChartBuilder::on(area)
        .margin(10)
        .x_label_area_size(30)
        .y_label_area_size(60)
        .build_cartesian_2d(0.0..end, 0.0..top)?;
    chart
        .configure_mesh()
        .light_line_style(WHITE)
        .x_desc("t (s)")
        .x_label_formatter(&|t| format!("{t:.0}"))
        .y_desc(name)
        .y_labels(y_labels)
        .y_label_formatter(&|y| format!("{y:.0}"))
        .draw()?;
    Ok(chart)
}

fn legend<'a, 'b: 'a>(chart: &mut Chart<'a, 'b>) -> DrawResult {
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()
}

/// Each marked event: seconds since the load started, colour, name.
fn markers(run: &RunRecord) -> Vec<(f64, RGBColor, &'static str)> {
    let started = run.started.unwrap_or(SystemTime::UNIX_EPOCH);
    run.events
        .iter()
        .filter_map(|record: &EventRecord| {
            let (_, color, name) = MARKERS.iter().find(|m| m.0 == record.event.kind)?;
            let at = record.time.duration_since(started).ok()?.as_secs_f64();
            Some((at, *color, *name))
        })
        .collect()
}

/// A vertical line at each marker; with `named`, its name at the top (a step lower than the
/// previous name when the two are close, so that neither hides the other).
fn draw_markers(
    chart: &mut Chart<'_, '_>,
    markers: &[(f64, RGBColor, &'static str)],
    top: f64,
    named: bool,
) -> DrawResult {
    let end = chart.x_range().end;
    let (mut previous, mut level) = (f64::NEG_INFINITY, 0_u32);
    for &(at, color, name) in markers {
        level = if at - previous < end * 0.08 {
            (level + 1) % 4
        } else {
            0
        };
        previous = at;
        chart.draw_series([PathElement::new(
            [(at, 0.0), (at, top)],
            color.stroke_width(2),
        )])?;
        if named {
            chart.draw_series([Text::new(
                name,
                (at, top * (0.97 - 0.08 * f64::from(level))),
                ("sans-serif", 13).into_font().color(&color),
            )])?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use autoscaler::{Event, EventKind};

    use super::super::Sample;
    use super::*;

    fn event(at_secs: u64, kind: EventKind) -> EventRecord {
        EventRecord {
            seq: at_secs,
            time: SystemTime::UNIX_EPOCH + Duration::from_secs(at_secs),
            group: "web-scale".into(),
            event: Event {
                at: Duration::from_secs(at_secs),
                kind,
                reason: String::new(),
                members: 0,
                vm: None,
                values: Vec::new(),
                observed: false,
            },
        }
    }

    #[test]
    fn the_chart_names_every_scale_out_and_scale_in_and_renders_as_png() {
        let group = GroupInfo {
            name: "web-scale".into(),
            vserver: "web".into(),
            metric: "cpu".into(),
            upper: Some(70.0),
            lower: Some(25.0),
            min_members: 1,
            max_members: 5,
        };
        let samples = (1..=60)
            .map(|t| Sample {
                t: Duration::from_secs(t),
                target_rate: Some(100.0),
                average: Some(50.0),
                current: 1 + u32::from(t > 20) - u32::from(t > 50),
                ..Sample::default()
            })
            .collect();
        let run = RunRecord {
            samples,
            events: vec![
                event(18, EventKind::ScaleOutStarted),
                event(20, EventKind::MemberUp),
                event(48, EventKind::ScaleInStarted),
                event(50, EventKind::ScaleInStarted),
            ],
            started: Some(SystemTime::UNIX_EPOCH),
            ..RunRecord::default()
        };
        let svg = svg(&group, &run).expect("an SVG");
        assert_eq!(svg.matches("\nscale-out\n").count(), 1, "{svg}");
        assert_eq!(svg.matches("\nscale-in\n").count(), 2, "{svg}");
        let png = super::super::png::render(&svg).expect("a PNG");
        assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"));
    }
}
