//! Real CloudStack clients against the local cloud: ngine-io's `cs` (GET and POST, signature
//! version 3 with `expires`) and apache-libcloud's driver (legacy signature, lower-cased names).
//! Each runs the whole flow: list zones/offerings/templates, deploy, wait for the job, see the
//! VM Running with an address, fetch from its workload, destroy with expunge, see it gone, and
//! get CloudStack's 401 with a wrong secret. `cs` in a deploy loop is stopped by the account's
//! VM limit with CloudStack's 535.

mod common;

use std::path::PathBuf;

use common::{ADMIN_KEY, ADMIN_SECRET, Setup, TestCloud, USER_KEY, USER_SECRET, venv_python};
use serde_json::Value;

async fn run_script(script: &str, args: &[String]) -> Value {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("cloudstack/tests/python")
        .join(script);
    let output = tokio::process::Command::new(venv_python())
        .arg(&path)
        .args(args)
        .output()
        .await
        .expect("run python");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "{script} failed:\n{stdout}\n{stderr}"
    );
    serde_json::from_str(stdout.lines().last().unwrap_or(""))
        .unwrap_or_else(|error| panic!("{script} printed no JSON ({error}):\n{stdout}\n{stderr}"))
}

async fn cs_flow(method: &str) {
    let test = TestCloud::start().await;
    let seen = run_script(
        "cs_flow.py",
        &[
            test.cloud.endpoint(),
            ADMIN_KEY.into(),
            ADMIN_SECRET.into(),
            method.into(),
            test.port.to_string(),
        ],
    )
    .await;
    assert_eq!(seen["zones"], serde_json::json!(["z1"]));
    assert_eq!(seen["offerings"], serde_json::json!(["small", "small-ha"]));
    assert_eq!(seen["templates"], serde_json::json!(["web"]));
    assert_eq!(seen["deployed_state"], "Running");
    assert_eq!(seen["listed_state"], "Running");
    assert_eq!(seen["group"], "python");
    assert_eq!(seen["displayname"], "cs flow a*b/c+d é");
    assert!(
        seen["ip"].as_str().is_some_and(|ip| ip.starts_with("127.")),
        "{seen}"
    );
    assert_eq!(seen["http_status"], 200);
    assert_eq!(seen["http_vm_id"], seen["vm_id"]);
    assert_eq!(
        seen["after_destroy"],
        serde_json::json!({}),
        "an expunged VM is gone"
    );
    assert_eq!(seen["wrong_secret_status"], 401);
    assert_eq!(seen["wrong_secret_error"]["errorcode"], 401);
    assert_eq!(
        seen["wrong_secret_error"]["errortext"],
        "unable to verify user credentials and/or request signature"
    );
    assert!(test.cloud.vm_pids().is_empty());
    test.cloud.shutdown().await;
}

#[tokio::test]
async fn cs_client_full_flow_with_get() {
    cs_flow("get").await;
}

#[tokio::test]
async fn cs_client_full_flow_with_post() {
    cs_flow("post").await;
}

#[tokio::test]
async fn libcloud_driver_full_flow() {
    let test = TestCloud::start().await;
    let address = test.cloud.local_addr();
    let seen = run_script(
        "libcloud_flow.py",
        &[
            address.ip().to_string(),
            address.port().to_string(),
            ADMIN_KEY.into(),
            ADMIN_SECRET.into(),
            test.port.to_string(),
        ],
    )
    .await;
    assert_eq!(seen["locations"], serde_json::json!(["z1"]));
    assert_eq!(seen["sizes"], serde_json::json!(["small", "small-ha"]));
    assert_eq!(seen["images"], serde_json::json!(["web"]));
    assert_eq!(seen["running"], true, "{seen}");
    assert!(
        seen["ips"][0]
            .as_str()
            .is_some_and(|ip| ip.starts_with("127.")),
        "{seen}"
    );
    assert_eq!(seen["http_status"], 200);
    assert_eq!(seen["http_vm_id"], seen["node_id"]);
    assert_eq!(seen["destroyed"], true);
    assert_eq!(seen["after_destroy"], serde_json::json!([]));
    assert_eq!(seen["wrong_secret"], "InvalidCredsError");
    test.cloud.shutdown().await;
}

#[tokio::test]
async fn cs_client_in_a_deploy_loop_is_stopped_by_the_account_vm_limit() {
    let test = TestCloud::start_with(Setup {
        max_account_user_vms: 3,
        ..Setup::default()
    })
    .await;
    let seen = run_script(
        "cs_limit.py",
        &[
            test.cloud.endpoint(),
            USER_KEY.into(),
            USER_SECRET.into(),
            "10".into(),
        ],
    )
    .await;
    assert_eq!(seen["deployed"], 3, "{seen}");
    assert_eq!(seen["refused_at"], 3);
    assert_eq!(seen["status"], 535);
    assert_eq!(seen["error"]["errorcode"], 535);
    assert_eq!(seen["error"]["cserrorcode"], 4370);
    assert_eq!(
        seen["error"]["errortext"],
        "Maximum amount of resources of Type = 'user_vm' for Account Name = alice in Domain Id \
         = 1 is exceeded: Account Resource Limit = 3, Current Account Resource Amount = 3, \
         Requested Resource Amount = 1."
    );
    assert_eq!(
        seen["listed"], 3,
        "nothing was created by the refused deploy"
    );
    test.cloud.shutdown().await;
}
