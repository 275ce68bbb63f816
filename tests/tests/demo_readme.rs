//! The README's run command, as written: `ballast demo` with the built-in config, its fixed
//! loopback ports and its defaults, only shorter. The README says
//! `cargo run --release -- demo --duration 20s`; a release build is too slow for the test
//! suite, so this runs the same arguments on the binary cargo built for the tests. It starts,
//! prints where everything listens and the admin password, runs its ramp, stops cleanly with
//! no VM process left, and writes its files in the current directory.

use std::time::Duration;

use ballast_tests::demo::{demo_addresses_free, run_demo, still_running};
use ballast_tests::{Binary, TempDir};

const BALLAST: Binary = Binary::new(env!("CARGO_BIN_EXE_ballast"));

/// The README's run command, as its "The two commands" section writes it.
const README_COMMAND: &str = "cargo run --release -- demo";

/// Its arguments after `cargo run --release --`, with a shorter ramp.
const README_ARGS: [&str; 3] = ["demo", "--duration", "20s"];

/// The first command block of the README's "The two commands" section is the run command this
/// test runs: if the README changes its command, this test must change with it.
#[test]
fn the_readme_says_this_run_command() {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md"))
        .expect("README.md at the root");
    let section = readme
        .split("## The two commands")
        .nth(1)
        .expect("a `The two commands` section");
    let block = section
        .split("```")
        .nth(1)
        .expect("a command block in that section");
    assert_eq!(block.trim(), README_COMMAND);
    let args: Vec<&str> = README_COMMAND.split_whitespace().skip(4).collect();
    assert_eq!(
        args,
        README_ARGS[..1],
        "the test runs the README's arguments"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_readme_command_starts_and_stops_cleanly() {
    if let Err(reason) = demo_addresses_free() {
        eprintln!("skipped: the built-in demo config's fixed addresses are taken: {reason}");
        return;
    }
    let dir = TempDir::new("demo-readme");
    let run = run_demo(
        &BALLAST.path(),
        &README_ARGS,
        dir.path(),
        Duration::from_secs(70),
    )
    .await;
    let output = format!("stdout:\n{}\nstderr:\n{}", run.stdout, run.stderr);

    assert!(run.status.success(), "ballast demo failed: {output}");
    for expected in [
        "http://127.0.0.1:8480/",
        "user nsroot, password ",
        "/metrics",
        "/client/api",
        "Summary (load finished after 0:20)",
        "all stopped",
    ] {
        assert!(run.stdout.contains(expected), "no `{expected}`: {output}");
    }
    assert_eq!(still_running(&run.vm_pids), Vec::<u32>::new(), "{output}");
    for file in ["ballast-demo.svg", "ballast-demo.png", "ballast-demo.log"] {
        assert!(dir.path().join(file).exists(), "no {file}: {output}");
    }
}
