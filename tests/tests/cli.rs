//! The command line as an operator meets it: every flag of `ballast --help` and of each
//! subcommand's `--help` says what it is for, and a fatal error (an address already in use) is
//! printed once, naming the address once.

use std::net::{SocketAddr, TcpListener};
use std::process::Stdio;
use std::time::Duration;

use ballast_tests::{Binary, Net, TempDir, members_toml, single_vserver_config};
use tokio::process::Command;

/// The `ballast` binary cargo built for this test run.
const BALLAST: Binary = Binary::new(env!("CARGO_BIN_EXE_ballast"));

/// How long a command that should fail at once may take.
const EXIT_TIMEOUT: Duration = Duration::from_secs(20);

/// Runs `ballast ARGS` to its end: (exit code, stdout, stderr).
async fn ballast(args: &[&str]) -> (i32, String, String) {
    let child = Command::new(BALLAST.path())
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap_or_else(|error| panic!("cannot run ballast {args:?}: {error}"));
    let output = tokio::time::timeout(EXIT_TIMEOUT, child.wait_with_output())
        .await
        .unwrap_or_else(|_| panic!("ballast {args:?} still runs after {EXIT_TIMEOUT:?}"))
        .unwrap();
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// The entries of a clap help section (`Options:`, `Arguments:`, `Commands:`) that have no
/// description, neither after the entry on its line nor on the more indented line below it.
fn undescribed(help: &str, section: &str) -> Vec<String> {
    let lines: Vec<&str> = help.lines().collect();
    let Some(start) = lines.iter().position(|line| *line == section) else {
        return Vec::new();
    };
    let mut missing = Vec::new();
    for (i, line) in lines.iter().enumerate().skip(start + 1) {
        let text = line.trim_start();
        let indent = line.len() - text.len();
        if !line.is_empty() && indent == 0 {
            break; // the next section
        }
        // Entries are indented 2 to 6 columns; descriptions below them further.
        if text.is_empty() || !(1..=6).contains(&indent) {
            continue;
        }
        let (entry, same_line) = text.split_once("  ").unwrap_or((text, ""));
        let below = lines.get(i + 1).is_some_and(|next| {
            let next_text = next.trim_start();
            !next_text.is_empty() && next.len() - next_text.len() > 6
        });
        if same_line.trim().is_empty() && !below {
            missing.push(entry.to_owned());
        }
    }
    missing
}

/// The subcommands listed in a help text's `Commands:` section, but `help`.
fn subcommands(help: &str) -> Vec<String> {
    help.lines()
        .skip_while(|line| *line != "Commands:")
        .skip(1)
        .take_while(|line| line.is_empty() || line.starts_with(' '))
        .filter(|line| line.len() - line.trim_start().len() == 2)
        .filter_map(|line| line.split_whitespace().next())
        .filter(|name| *name != "help")
        .map(str::to_owned)
        .collect()
}

#[test]
fn the_checker_finds_a_flag_without_a_description() {
    let help = "Usage: x [OPTIONS]\n\nOptions:\n      --config <CONFIG>\n          The file\n\n      --log-format <LOG_FORMAT>\n\n  -q, --quiet\n  -h, --help     Print help\n";
    assert_eq!(
        undescribed(help, "Options:"),
        ["--log-format <LOG_FORMAT>", "-q, --quiet"]
    );
}

#[tokio::test]
async fn every_flag_and_subcommand_in_every_help_has_a_description() {
    let mut missing = Vec::new();
    let mut checked = 0;
    let mut pending = vec![Vec::<String>::new()];
    while let Some(path) = pending.pop() {
        for help_flag in ["--help", "-h"] {
            let mut args: Vec<&str> = path.iter().map(String::as_str).collect();
            args.push(help_flag);
            let (code, help, stderr) = ballast(&args).await;
            assert_eq!(code, 0, "ballast {args:?}: {stderr}");
            assert!(help.contains("Options:"), "ballast {args:?}:\n{help}");
            for section in ["Options:", "Arguments:", "Commands:"] {
                for entry in undescribed(&help, section) {
                    missing.push(format!("ballast {}: {entry}", args.join(" ")));
                }
            }
            checked += 1;
            if help_flag == "--help" {
                for name in subcommands(&help) {
                    let mut sub = path.clone();
                    sub.push(name);
                    pending.push(sub);
                }
            }
        }
    }
    // ballast and run, check, localcloud, vm, simulate, demo; --help and -h of each.
    assert!(checked >= 14, "only {checked} help texts");
    assert!(
        missing.is_empty(),
        "without a description:\n{}",
        missing.join("\n")
    );
}

/// Counts the occurrences of `needle` in `text`.
fn count(text: &str, needle: &str) -> usize {
    text.matches(needle).count()
}

#[tokio::test]
async fn a_vserver_address_in_use_is_one_fatal_error_naming_the_address_once() {
    let net = Net::new();
    let held = TcpListener::bind(SocketAddr::new(net.ip(1), 0)).unwrap();
    let taken = held.local_addr().unwrap();
    let member = net.free_addr(2);
    let config = single_vserver_config(taken, "HTTP", "ROUNDROBIN", &members_toml(&[member]), "");
    let dir = TempDir::new("cli");
    let path = dir.write("ballast.toml", config);
    let path = path.to_str().unwrap();

    for log_format in ["text", "json"] {
        let (code, _stdout, stderr) =
            ballast(&["run", "--config", path, "--log-format", log_format]).await;
        assert_eq!(code, 1, "--log-format {log_format}:\n{stderr}");
        let expected = format!(
            "ballast: lbvserver `web` cannot listen on {taken}: Address already in use (os error 98)\n"
        );
        assert!(
            stderr.ends_with(&expected),
            "--log-format {log_format}:\n{stderr}"
        );
        assert_eq!(count(&stderr, "cannot listen"), 1, "{stderr}");
        assert_eq!(count(&stderr, "already in use"), 1, "{stderr}");
        assert_eq!(count(&stderr, &taken.to_string()), 1, "{stderr}");
    }
}

#[tokio::test]
async fn a_vm_address_in_use_is_one_fatal_error_naming_the_address() {
    let net = Net::new();
    let held = TcpListener::bind(SocketAddr::new(net.ip(1), 0)).unwrap();
    let taken = held.local_addr().unwrap().to_string();
    let (code, _stdout, stderr) = ballast(&["vm", "--listen", &taken, "--snmp-port", "0"]).await;
    assert_eq!(code, 1, "{stderr}");
    assert_eq!(
        stderr,
        format!("ballast: vm cannot listen on {taken}: Address already in use (os error 98)\n")
    );
}
