//! `ballast simulate`: the checked-in ramp trace gives exactly the checked-in events, the chart
//! is written, and bad input is refused with a message that says where.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use ballast_tests::{Binary, TempDir};

/// The `ballast` binary cargo built for this test run.
const BALLAST: Binary = Binary::new(env!("CARGO_BIN_EXE_ballast"));

fn repo(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

/// Runs `ballast simulate` with `args`: (exit code, stdout, stderr).
fn simulate(args: &[&str]) -> (i32, String, String) {
    let output = Command::new(BALLAST.path())
        .arg("simulate")
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|error| panic!("cannot run ballast simulate: {error}"));
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

const RAMP: [&str; 6] = [
    "--config",
    "configs/simulate.toml",
    "--group",
    "web-scale",
    "--trace",
    "configs/traces/ramp.csv",
];

/// Scales out twice on the rush (min fill at 0, then 260 and 470), scales in twice when it is
/// quiet: the first drain empties early (no cooldown), the second is cut short (cooldown).
/// After a deliberate change to the engine, regenerate the file with the command in
/// docs/operations.md and review the difference.
#[test]
fn the_ramp_trace_gives_exactly_the_expected_events() {
    let (code, stdout, stderr) = simulate(&RAMP);
    assert_eq!(code, 0, "stderr:\n{stderr}");
    assert_eq!(stderr, "");
    let expected_path = repo("configs/traces/ramp.expected.jsonl");
    let expected = std::fs::read_to_string(&expected_path)
        .unwrap_or_else(|error| panic!("cannot read {}: {error}", expected_path.display()));
    for (index, (got, want)) in stdout.lines().zip(expected.lines()).enumerate() {
        assert_eq!(got, want, "event {} differs", index + 1);
    }
    assert_eq!(stdout, expected);
    for line in stdout.lines() {
        let event: serde_json::Value = serde_json::from_str(line).expect("one JSON object");
        assert!(
            event["t"].is_number() && event["event"].is_string(),
            "{line}"
        );
    }
}

#[test]
fn the_chart_is_an_svg_of_the_run() {
    let dir = TempDir::new("simulate-chart");
    let chart = dir.path().join("ramp.svg");
    let mut args = RAMP.to_vec();
    args.extend(["--chart", chart.to_str().expect("a UTF-8 path")]);
    let (code, stdout, stderr) = simulate(&args);
    assert_eq!(code, 0, "stderr:\n{stderr}");
    assert_eq!(stdout.lines().count(), 28, "the events are printed as well");
    let svg = std::fs::read_to_string(&chart).expect("the chart was written");
    assert!(svg.starts_with("<svg"), "{}", &svg[..svg.len().min(200)]);
    for text in [
        "autoscalegroup web-scale",
        "upper 70",
        "lower 30",
        "members in service",
        "scale-out",
        "scale-in",
    ] {
        assert!(svg.contains(text), "no `{text}` in the chart");
    }
}

#[test]
fn the_delays_change_the_timeline() {
    let mut args = RAMP.to_vec();
    args.extend(["--provision-delay", "1m30s"]);
    let (code, _, stderr) = simulate(&args);
    assert_eq!(code, 2, "a bad duration is a usage error");
    assert!(stderr.contains("--provision-delay"), "{stderr}");

    let mut args = RAMP.to_vec();
    args.extend(["--provision-delay", "95s", "--deprovision-delay", "500ms"]);
    let (code, stdout, stderr) = simulate(&args);
    assert_eq!(code, 0, "stderr:\n{stderr}");
    let lines: Vec<&str> = stdout.lines().collect();
    // Running and bound at 95 s, UP at the next sample (100 s).
    assert!(
        lines[2].starts_with(r#"{"t": 95.0, "event": "vm_deployed""#),
        "{}",
        lines[2]
    );
    assert!(
        lines[4].starts_with(r#"{"t": 100.0, "event": "member_up""#),
        "{}",
        lines[4]
    );
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with(r#"{"t": 820.5, "event": "vm_destroyed""#)),
        "{stdout}"
    );
}

#[test]
fn an_unknown_group_is_refused_with_the_names_there_are() {
    let (code, stdout, stderr) = simulate(&[
        "--config",
        "configs/simulate.toml",
        "--group",
        "web",
        "--trace",
        "configs/traces/ramp.csv",
    ]);
    assert_eq!(code, 1);
    assert_eq!(stdout, "");
    assert_eq!(
        stderr,
        "ballast: configs/simulate.toml has no autoscalegroup `web`; its groups: web-scale\n"
    );
}

#[test]
fn a_bad_trace_is_refused_with_its_line_and_column() {
    let dir = TempDir::new("simulate-trace");
    let trace = dir.write("bad.csv", "t,cpu,connections\n0,20,1\n10,busy,1\n");
    let (code, stdout, stderr) = simulate(&[
        "--config",
        "configs/simulate.toml",
        "--group",
        "web-scale",
        "--trace",
        trace.to_str().expect("a UTF-8 path"),
    ]);
    assert_eq!(code, 1);
    assert_eq!(stdout, "");
    assert_eq!(
        stderr,
        format!(
            "ballast: trace {}: line 3, column 2: `busy` is not a number\n",
            trace.display()
        )
    );
}

#[test]
fn a_config_that_fails_check_is_refused() {
    let dir = TempDir::new("simulate-config");
    let config = dir.write("bad.toml", "[[autoscalegroup]]\nname = \"g\"\n");
    let (code, _, stderr) = simulate(&[
        "--config",
        config.to_str().expect("a UTF-8 path"),
        "--group",
        "g",
        "--trace",
        "configs/traces/ramp.csv",
    ]);
    assert_eq!(code, 1);
    assert!(
        stderr.starts_with(&format!(
            "ballast: cannot simulate with {}: ",
            config.display()
        )),
        "{stderr}"
    );
}
