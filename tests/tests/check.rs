//! `ballast check`: every problem of a file in one run, each named by its path; every
//! example config in `configs/` passes (the stand-alone local cloud file by the local cloud's
//! rules); and `--online` proves a profile against a real `ballast localcloud`.

use std::path::PathBuf;

use ballast_tests::autoscale::{Addrs, ballast_toml, localcloud_toml};
use ballast_tests::ballast::Ballast;
use ballast_tests::{Binary, Net};
use cloudstack::{
    ClientConfig, CloudStackClient, DeployVirtualMachine, JobWait, ProfileIds, resolve_profile_ids,
};

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

#[test]
fn every_example_config_passes_check() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("configs");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|error| panic!("cannot read {}: {error}", dir.display()))
        .map(|entry| entry.expect("directory entry").path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "toml"))
        .collect();
    files.sort();
    let mut failures = Vec::new();
    for path in &files {
        let (code, stdout, stderr) = BALLAST.check_file(path);
        if code != 0 {
            failures.push(format!(
                "{} (exit {code}):\n{stdout}{stderr}",
                path.display()
            ));
        }
        // The stand-alone local cloud file is validated as one, not as a Ballast config.
        if path.ends_with("localcloud.toml") {
            assert!(
                stdout.contains("OK (local cloud for `ballast localcloud` on 127.0.0.1:8080"),
                "{stdout}"
            );
        }
    }
    for name in ["cloudstack.toml", "localcloud.toml", "production.toml"] {
        assert!(
            files.iter().any(|path| path.ends_with(name)),
            "configs/{name} is missing"
        );
    }
    assert!(
        failures.is_empty(),
        "configs failed `ballast check`:\n{}",
        failures.join("\n")
    );
}

#[test]
fn a_local_cloud_file_is_checked_by_the_local_clouds_rules() {
    let config = r#"
listen = "127.0.0.1:8080"

[[apiuser]]
username = "admin"
apikey = "k"
secretkey = "s"

[[zone]]
name = "z"

[[host]]
name = "h"
zone = "elsewhere"
cpunumber = 4
cpuspeed = 2000
memory = 8192
"#;
    let (code, stdout, stderr) = BALLAST.check(config);
    assert_eq!(code, 1, "stdout:\n{stdout}\nstderr:\n{stderr}");
    assert!(
        stderr.contains("problems in local cloud config"),
        "{stderr}"
    );
    for missing in ["elsewhere", "serviceoffering", "template"] {
        assert!(stderr.contains(missing), "{missing} not named:\n{stderr}");
    }
}

/// The admin password file `ballast_toml` names: `check` reads it too.
const ADMIN_PASS: &[(&str, &[u8])] = &[("admin.pass", b"test-admin-password\n")];

/// A local cloud as its own process, and a Ballast config whose profile `local` names its
/// zone, template and offering (`ballast_toml`), for `check --online`.
async fn cloud_and_config() -> (Ballast, Addrs, String) {
    let net = Net::new();
    let addrs = Addrs::new(&net);
    let cloud = BALLAST
        .start_localcloud(&localcloud_toml(&net, addrs.cloud, "1ms"))
        .await;
    (cloud, addrs, ballast_toml(&addrs, 1, 2, 90, 10))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_online_resolves_the_profile_and_lists_the_groups_vms() {
    let (_cloud, addrs, config) = cloud_and_config().await;
    // What the names are in the cloud, and a VM already in the group `web`.
    let client = CloudStackClient::new(ClientConfig::new(
        format!("http://{}/client/api", addrs.cloud),
        "test-key",
        "test-secret",
    ))
    .expect("a client");
    let names = ProfileIds {
        zone: "local-zone".into(),
        template: "web".into(),
        service_offering: "small".into(),
        networks: Vec::new(),
    };
    let ids = resolve_profile_ids(&client, &names)
        .await
        .expect("resolved");
    let job = client
        .deploy_virtual_machine(&DeployVirtualMachine {
            zoneid: ids.zone.clone(),
            templateid: ids.template.clone(),
            serviceofferingid: ids.service_offering.clone(),
            group: Some("web".into()),
            ..DeployVirtualMachine::default()
        })
        .await
        .expect("deployed");
    let vm = client
        .wait_for_virtual_machine("deployVirtualMachine", &job.jobid, JobWait::default())
        .await
        .expect("Running");

    let (code, stdout, stderr) = BALLAST.check_online_with_files(&config, ADMIN_PASS);
    assert_eq!(code, 0, "stdout:\n{stdout}\nstderr:\n{stderr}");
    for line in [
        format!("  zoneid \"local-zone\" -> {}", ids.zone),
        format!("  templateid \"web\" -> {}", ids.template),
        format!("  serviceofferingid \"small\" -> {}", ids.service_offering),
        "  autoscalegroup `web`: 1 VM(s) in CloudStack group \"web\"".to_owned(),
    ] {
        assert!(stdout.contains(&line), "no `{line}` in:\n{stdout}");
    }
    let ip = vm.ip_address().expect("a Running VM has an address");
    assert!(
        stdout.contains(&format!("    {} Running {ip}:8000", vm.id)),
        "the group's VM is not listed:\n{stdout}"
    );
    assert!(stdout.contains("accepts apikey test-key"), "{stdout}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_online_names_a_wrong_secret_and_an_unknown_template() {
    let (_cloud, _addrs, config) = cloud_and_config().await;

    let wrong_secret = config.replace(
        "sharedsecret = \"test-secret\"",
        "sharedsecret = \"not-the-secret\"",
    );
    assert_ne!(wrong_secret, config);
    let (code, stdout, stderr) = BALLAST.check_online_with_files(&wrong_secret, ADMIN_PASS);
    assert_eq!(code, 1, "stdout:\n{stdout}\nstderr:\n{stderr}");
    assert!(
        stderr.contains("autoscaleprofile `local`: the signature was refused")
            && stderr.contains("error 401"),
        "{stderr}"
    );

    let unknown_template = config.replace("templateid = \"web\"", "templateid = \"nope\"");
    assert_ne!(unknown_template, config);
    let (code, stdout, stderr) = BALLAST.check_online_with_files(&unknown_template, ADMIN_PASS);
    assert_eq!(code, 1, "stdout:\n{stdout}\nstderr:\n{stderr}");
    assert!(
        stderr.contains(r#"autoscaleprofile `local`: templateid: no template named "nope""#),
        "{stderr}"
    );
    // The keys were fine: that much was proven before the names failed.
    assert!(stdout.contains("accepts apikey test-key"), "{stdout}");
}

#[test]
fn check_refuses_a_member_nobody_can_connect_to_and_a_file_without_vservers() {
    let vserver = r#"
[[lbvserver]]
name = "web"
servicetype = "HTTP"
ipv46 = "127.0.0.1"
port = 8080
servicegroupname = "pool"
"#;
    for (ip, shown) in [
        ("0.0.0.0", "0.0.0.0"),
        ("::", "::"),
        ("224.0.0.1", "224.0.0.1"),
        ("255.255.255.255", "255.255.255.255"),
    ] {
        let config = format!(
            "[[servicegroup]]\nservicegroupname = \"pool\"\nservicetype = \"HTTP\"\nmembers = [{{ ip = \"127.0.0.2\", port = 80 }}, {{ ip = \"{ip}\", port = 80 }}]\n{vserver}"
        );
        let (code, stdout, stderr) = BALLAST.check(&config);
        assert_eq!(code, 1, "{ip}: stdout:\n{stdout}\nstderr:\n{stderr}");
        assert!(
            stderr.contains(&format!(
                "servicegroup[0].members[1].ip: `{shown}` is not a member address"
            )),
            "{stderr}"
        );
    }

    for empty in [
        "",
        "# nothing yet\n",
        "[[servicegroup]]\nservicegroupname = \"pool\"\nservicetype = \"HTTP\"\n",
    ] {
        let (code, stdout, stderr) = BALLAST.check(empty);
        assert_eq!(code, 1, "{empty:?}: stdout:\n{stdout}\nstderr:\n{stderr}");
        assert!(
            stderr.contains("lbvserver: the file defines no lbvserver"),
            "{empty:?}: {stderr}"
        );
    }
}
