//! `ballast demo --load none` waits for the user's load; Ctrl-C (SIGINT) stops it cleanly: exit
//! 0, a summary that says it stopped early, the chart written, and no VM process left.

use std::time::Duration;

use ballast_tests::demo::{demo_config, run_demo_interrupted, still_running};
use ballast_tests::{Binary, Net, TempDir};

const BALLAST: Binary = Binary::new(env!("CARGO_BIN_EXE_ballast"));

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ctrl_c_stops_a_demo_without_load_and_leaves_no_vm() {
    let net = Net::new();
    let dir = TempDir::new("demo-interrupt");
    let config = dir.write("demo-test.toml", demo_config(&net));
    let config = config.to_str().expect("a UTF-8 temp path");
    let args = ["demo", "--load", "none", "--config", config];
    // The plain status line of the second second: the first VM serves and the status runs.
    let run = run_demo_interrupted(
        &BALLAST.path(),
        &args,
        dir.path(),
        Duration::from_secs(60),
        Some("\nt=2 "),
    )
    .await;
    let output = format!("stdout:\n{}\nstderr:\n{}", run.stdout, run.stderr);

    assert!(run.status.success(), "ballast demo failed: {output}");
    for expected in [
        "load: yours",
        "Summary (stopped early after 0:0",
        "all stopped",
    ] {
        assert!(run.stdout.contains(expected), "no `{expected}`: {output}");
    }
    assert!(!run.vm_pids.is_empty(), "no VM process was seen: {output}");
    assert_eq!(still_running(&run.vm_pids), Vec::<u32>::new(), "{output}");
    assert!(dir.path().join("ballast-demo.svg").exists(), "{output}");
}
