//! `ballast demo --load ramp`, end to end: the demo's own load makes the VMs busy (their SNMP
//! CPU is real), the group scales out and back in, no request fails, the chart names the
//! events, and no VM process outlives the demo. It runs on this test's own addresses (the
//! built-in config moved by `--config`), so it can run beside other tests.

use std::time::Duration;

use ballast_tests::demo::{demo_config, run_demo, still_running};
use ballast_tests::{Binary, Net, TempDir};

const BALLAST: Binary = Binary::new(env!("CARGO_BIN_EXE_ballast"));

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ramp_scales_out_and_in_without_a_failed_request_and_leaves_no_vm() {
    let net = Net::new();
    let dir = TempDir::new("demo");
    let config = dir.write("demo-test.toml", demo_config(&net));
    let config = config.to_str().expect("a UTF-8 temp path");
    let args = [
        "demo",
        "--load",
        "ramp",
        "--duration",
        "75s",
        "--config",
        config,
        "--out",
        ".",
    ];
    let run = run_demo(&BALLAST.path(), &args, dir.path(), Duration::from_secs(110)).await;
    // The log's warnings and errors say why a request failed, if one did.
    let log = std::fs::read_to_string(dir.path().join("ballast-demo.log")).unwrap_or_default();
    let warnings: Vec<&str> = log
        .lines()
        .filter(|line| {
            ["WARN", "ERROR", "panicked"]
                .iter()
                .any(|w| line.contains(w))
        })
        .take(40)
        .collect();
    let output = format!(
        "stdout:\n{}\nstderr:\n{}\nthe log's warnings and errors:\n{}",
        run.stdout,
        run.stderr,
        warnings.join("\n")
    );

    assert!(run.status.success(), "ballast demo failed: {output}");
    let scale_outs = run.summary_count("scale-outs").expect("a scale-outs line");
    let scale_ins = run.summary_count("scale-ins").expect("a scale-ins line");
    assert!(scale_outs >= 1, "no scale-out: {output}");
    assert!(scale_ins >= 1, "no scale-in: {output}");
    assert!(
        run.stdout.contains(" answered 200, 0 failed"),
        "requests failed: {output}"
    );
    let svg = std::fs::read_to_string(dir.path().join("ballast-demo.svg")).expect("the SVG");
    assert!(
        svg.contains("scale-out") && svg.contains("scale-in"),
        "{svg}"
    );
    let png = std::fs::read(dir.path().join("ballast-demo.png")).expect("the PNG");
    assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"), "not a PNG");
    assert!(!run.vm_pids.is_empty(), "no VM process was seen: {output}");
    assert_eq!(still_running(&run.vm_pids), Vec::<u32>::new(), "{output}");
}
