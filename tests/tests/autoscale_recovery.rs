//! The autoscale engine recovering, end to end: a crashed VM is investigated, fenced and
//! replaced; `ballast run` killed with SIGKILL while a replacement is being deployed comes
//! back, adopts what the cloud has, and leaves no orphan and no duplicate VM; a deploy whose
//! answer the cloud lost is settled by a listing and adopted, never deployed again. The local cloud
//! runs as its own `ballast localcloud` process, so it outlives the proxy.

use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::time::Duration;

use ballast_tests::autoscale::{
    Addrs, PacedLoad, ballast_toml, crash, events, eventually, inject, live_vms, localcloud_toml,
    wait_for_event,
};
use ballast_tests::nitro::Nitro;
use ballast_tests::{Binary, Net, field};
use serde_json::Value;

const BALLAST: Binary = Binary::new(env!("CARGO_BIN_EXE_ballast"));

const STEP: Duration = Duration::from_secs(45);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crashed_vm_is_replaced_and_a_killed_ballast_neither_orphans_nor_duplicates() {
    let net = Net::new();
    let addrs = Addrs::new(&net);
    let _cloud = BALLAST
        .start_localcloud(&localcloud_toml(&net, addrs.cloud, "1ms"))
        .await;
    let files: &[(&str, &[u8])] = &[("admin.pass", b"test-pass\n")];
    // Thresholds no light load reaches: only the bounds and health drive this test.
    let config = ballast_toml(&addrs, 2, 3, 95, 0);
    let mut ballast = BALLAST.start_with_files(&config, files).await;
    let nitro = Nitro::new(addrs.admin, "nsroot", "test-pass");

    assert!(
        eventually(STEP, || async {
            let up = events(&ballast)
                .iter()
                .filter(|(kind, _)| kind == "member_up")
                .count();
            up == 2 && members(&nitro).await.len() == 2
        })
        .await,
        "the group did not fill to 2; log:\n{}",
        ballast.log_text()
    );
    let load = PacedLoad::start(addrs.vserver, 20, 2);

    // A VM dies: its member goes DOWN, is investigated, fenced and replaced.
    let victim = members(&nitro).await[0].clone();
    let mark = ballast.log_mark();
    crash(addrs.cloud, &victim).await;
    let replaced = wait_for_event(&ballast, mark, "member_replaced", STEP).await;
    let replaced = replaced.unwrap_or_else(|| panic!("not replaced; log:\n{}", ballast.log_text()));
    assert_eq!(replaced["vm"], Value::from(victim.as_str()));
    assert!(
        eventually(STEP, || async {
            let bound = members(&nitro).await;
            bound.len() == 2 && !bound.contains(&victim) && live_vms(addrs.cloud).await.len() == 2
        })
        .await,
        "after the crash: members {:?}, VMs {:?}",
        members(&nitro).await,
        live_vms(addrs.cloud).await
    );
    let served = load.stop().await;
    assert!(served.ok > 0, "{served:?}");

    // Another VM dies; while its replacement is deployed, ballast is killed outright.
    let victim = members(&nitro).await[0].clone();
    let mark = ballast.log_mark();
    crash(addrs.cloud, &victim).await;
    wait_for_event(&ballast, mark, "member_replaced", STEP)
        .await
        .unwrap_or_else(|| panic!("not replaced; log:\n{}", ballast.log_text()));
    wait_for_event(&ballast, mark, "scale_out_started", STEP)
        .await
        .unwrap_or_else(|| panic!("no replacement deploy; log:\n{}", ballast.log_text()));
    ballast.signal("KILL");
    ballast.wait_exit(Duration::from_secs(10)).await;
    drop(ballast);

    // Restarted with the same config: it adopts the cloud's VMs, finishes the fencing, and
    // ends with exactly `minmembers` VMs, all bound, never more than `maxmembers`.
    let ballast = BALLAST.start_with_files(&config, files).await;
    wait_for_event(&ballast, 0, "reconciled", STEP)
        .await
        .unwrap_or_else(|| panic!("no reconcile after restart; log:\n{}", ballast.log_text()));
    let most = AtomicUsize::new(0);
    let settled = eventually(STEP * 2, || async {
        let vms = live_vms(addrs.cloud).await;
        most.fetch_max(vms.len(), Relaxed);
        let bound = members(&nitro).await;
        let running: Vec<String> = vms
            .iter()
            .filter(|vm| vm["state"] == "Running")
            .filter_map(|vm| vm["id"].as_str().map(str::to_string))
            .collect();
        vms.len() == 2 && running.len() == 2 && running.iter().all(|id| bound.contains(id))
    })
    .await;
    assert!(
        settled,
        "after the restart: VMs {:?}, members {:?}; log:\n{}",
        live_vms(addrs.cloud).await,
        members(&nitro).await,
        ballast.log_text()
    );
    let most = most.into_inner();
    assert!(most <= 3, "{most} VMs existed at once, over maxmembers 3");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deploy_whose_answer_is_lost_is_adopted_not_repeated() {
    let net = Net::new();
    let addrs = Addrs::new(&net);
    let _cloud = BALLAST
        .start_localcloud(&localcloud_toml(&net, addrs.cloud, "1ms"))
        .await;
    // The first deploy makes its VM, and its connection closes without the answer.
    inject(
        addrs.cloud,
        r#"{"lose_answers": 1, "lose_answers_command": "deployVirtualMachine"}"#,
    )
    .await;
    let files: &[(&str, &[u8])] = &[("admin.pass", b"test-pass\n")];
    let ballast = BALLAST
        .start_with_files(&ballast_toml(&addrs, 1, 3, 95, 0), files)
        .await;
    let nitro = Nitro::new(addrs.admin, "nsroot", "test-pass");

    let lost = wait_for_event(&ballast, 0, "action_failed", STEP)
        .await
        .unwrap_or_else(|| panic!("no lost deploy answer; log:\n{}", ballast.log_text()));
    let reason = lost["reason"].as_str().unwrap_or_default();
    assert!(
        reason.contains("deployVirtualMachine: sent to")
            && reason.contains("but the answer was lost")
            && reason.ends_with("listing the group to see whether the VM exists"),
        "{reason}"
    );
    wait_for_event(&ballast, 0, "member_up", STEP)
        .await
        .unwrap_or_else(|| panic!("no member UP; log:\n{}", ballast.log_text()));

    // One VM, the lost deploy's own, bound; and it stays one (minmembers is 1).
    let vms = live_vms(addrs.cloud).await;
    assert_eq!(vms.len(), 1, "{vms:?}");
    let vm = vms[0]["id"].as_str().expect("an id").to_string();
    assert_eq!(members(&nitro).await, std::slice::from_ref(&vm));
    let adopted = format!("{vm} is the VM of the deploy whose answer was lost");
    let adopted = ballast.logs().iter().any(|line| {
        field(line, "kind") == Some("reconciled") && field(line, "reason") == Some(&adopted)
    });
    assert!(adopted, "log:\n{}", ballast.log_text());
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(live_vms(addrs.cloud).await.len(), 1);
    let deploys = ballast
        .logs()
        .iter()
        .filter(|line| field(line, "kind") == Some("scale_out_started"))
        .count();
    assert_eq!(deploys, 1, "log:\n{}", ballast.log_text());
}

/// The VM ids of the autoscaled members bound in servicegroup `app`.
async fn members(nitro: &Nitro) -> Vec<String> {
    let reply = nitro
        .get("config/servicegroup_servicegroupmember_binding/app")
        .await;
    reply.body["servicegroup_servicegroupmember_binding"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|member| member["vmid"].as_str().map(str::to_string))
        .collect()
}
