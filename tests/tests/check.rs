//! `ballast check`: every problem of a file in one run, each named by its path; and every
//! example config in `configs/` passes.

use std::path::PathBuf;

use ballast_tests::Binary;

/// The `ballast` binary cargo built for this test run.
const BALLAST: Binary = Binary::new(env!("CARGO_BIN_EXE_ballast"));

#[test]
fn check_reports_every_problem_with_its_path() {
    let config = r#"
[[servicegroup]]
servicegroupname = "pool"
servicetype = "HTTP"
members = [{ ip = "127.0.0.1", port = 8000 }, { ip = "127.0.0.2", port = 70000 }]

[[lbvserver]]
name = "web"
servicetype = "HTTP"
ipv46 = "127.0.0.1"
port = 8080
lbmethod = "FASTEST"
servicegroupname = "pool"

[[lbvserver]]
name = "api"
servicetype = "HTTP"
ipv46 = "127.0.0.1"
port = 8081
servicegroupname = "missing"
"#;
    let (code, _stdout, stderr) = BALLAST.check(config);
    assert_eq!(code, 1, "exit code; stderr:\n{stderr}");
    for path in [
        "lbvserver[0].lbmethod",
        "servicegroup[0].members[1].port",
        "lbvserver[1].servicegroupname",
    ] {
        assert!(
            stderr.contains(path),
            "stderr does not name {path}:\n{stderr}"
        );
    }
    assert!(
        stderr.contains("FASTEST"),
        "the bad value is not quoted:\n{stderr}"
    );
    assert!(
        stderr.contains("70000"),
        "the bad value is not quoted:\n{stderr}"
    );
    assert!(
        stderr.contains("missing"),
        "the missing name is not quoted:\n{stderr}"
    );
}

#[test]
fn a_valid_file_passes_check() {
    let config = r#"
[[servicegroup]]
servicegroupname = "pool"
servicetype = "HTTP"
members = [{ ip = "127.0.0.1", port = 8000 }]

[[lbvserver]]
name = "web"
servicetype = "HTTP"
ipv46 = "127.0.0.1"
port = 8080
servicegroupname = "pool"
"#;
    let (code, stdout, stderr) = BALLAST.check(config);
    assert_eq!(code, 0, "stdout:\n{stdout}\nstderr:\n{stderr}");
}

/// Files in `configs/` that are not `ballast run` configs, and the test that loads each.
const OTHER_CONFIGS: &[(&str, &str)] = &[(
    "localcloud.toml",
    "a `ballast localcloud` file; loaded by cloudstack/tests/example_config.rs",
)];

#[test]
fn every_example_config_passes_check() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("configs");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|error| panic!("cannot read {}: {error}", dir.display()))
        .map(|entry| entry.expect("directory entry").path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "toml"))
        .collect();
    files.sort();
    for (name, _) in OTHER_CONFIGS {
        assert!(
            files.iter().any(|path| path.ends_with(name)),
            "configs/{name} is listed in OTHER_CONFIGS but does not exist"
        );
    }
    let mut checked = 0;
    let mut failures = Vec::new();
    for path in &files {
        if OTHER_CONFIGS.iter().any(|(name, _)| path.ends_with(name)) {
            continue;
        }
        let (code, stdout, stderr) = BALLAST.check_file(path);
        if code != 0 {
            failures.push(format!(
                "{} (exit {code}):\n{stdout}{stderr}",
                path.display()
            ));
        }
        checked += 1;
    }
    assert!(checked > 0, "no configs found in {}", dir.display());
    assert!(
        failures.is_empty(),
        "configs failed `ballast check`:\n{}",
        failures.join("\n")
    );
}
