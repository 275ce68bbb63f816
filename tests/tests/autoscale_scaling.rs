//! The autoscale engine end to end, with real processes: `ballast localcloud` (its VMs are
//! `ballast vm` processes that burn real CPU per request and report it over SNMP) and
//! `ballast run` scaling a servicegroup on that CPU. Load rises: a VM is added, bound, and
//! serves. Load falls: the group scales back in, the victim drained first. A deploy failure
//! the local cloud injects is retried and recorded. No client request fails.

use std::time::Duration;

use ballast_tests::autoscale::{
    Addrs, PacedLoad, ballast_toml, events, eventually, inject, live_vms, localcloud_toml,
    wait_for_event,
};
use ballast_tests::nitro::Nitro;
use ballast_tests::prom::{assert_promtool_accepts, sample, scrape};
use ballast_tests::{Binary, Net, wait_until};

const BALLAST: Binary = Binary::new(env!("CARGO_BIN_EXE_ballast"));

/// Long enough for a deploy (boot 0.5 s), the first health check and a watch time on a busy
/// two-core machine.
const STEP: Duration = Duration::from_secs(45);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn load_scales_the_group_out_and_back_in_without_a_failed_request() {
    let net = Net::new();
    let addrs = Addrs::new(&net);
    // 20 ms of CPU per request on one vCPU: 40 requests/s keep one VM at ~80 % (above
    // `upper` 60), two VMs at ~40 % each (between the thresholds); 5 requests/s is ~10 %.
    let _cloud = BALLAST
        .start_localcloud(&localcloud_toml(&net, addrs.cloud, "20ms"))
        .await;
    let ballast = BALLAST
        .start_with_files(
            &ballast_toml(&addrs, 1, 3, 60, 20),
            &[("admin.pass", b"test-pass\n")],
        )
        .await;

    // Enabled with min 1: one VM is deployed, bound and UP.
    wait_for_event(&ballast, 0, "member_up", STEP)
        .await
        .unwrap_or_else(|| panic!("no first member came UP; log:\n{}", ballast.log_text()));
    assert_eq!(live_vms(addrs.cloud).await.len(), 1);

    // The next deploy fails in the cloud; the engine records it and tries again.
    inject(
        addrs.cloud,
        r#"{"fail_deploys": 1, "fail_deploys_errorcode": 533}"#,
    )
    .await;
    let mark = ballast.log_mark();
    let load = PacedLoad::start(addrs.vserver, 40, 8);
    let failed = wait_for_event(&ballast, mark, "deploy_failed", STEP).await;
    assert!(
        failed.is_some(),
        "no deploy_failed; log:\n{}",
        ballast.log_text()
    );
    let after_failure = ballast.log_mark();
    let up = wait_for_event(&ballast, after_failure, "member_up", STEP * 2).await;
    assert!(
        up.is_some(),
        "the failed launch was not retried; log:\n{}",
        ballast.log_text()
    );
    assert!(
        wait_until(STEP, || load.by_vm().len() >= 2).await,
        "the new member does not serve: answers per VM {:?}",
        load.by_vm()
    );
    // The failed deploy's VM was destroyed: only the two members exist.
    assert!(
        eventually(STEP, || async { live_vms(addrs.cloud).await.len() == 2 }).await,
        "VMs in the cloud: {:?}",
        live_vms(addrs.cloud).await
    );
    let busy = load.stop().await;

    // What an operator sees: the events through NITRO, the group's figures, Prometheus.
    let nitro = Nitro::new(addrs.admin, "nsroot", "test-pass");
    let failures = nitro
        .get("config/autoscaleevent?filter=group:web,kind:deploy_failed")
        .await;
    let failures = failures.body["autoscaleevent"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert_eq!(failures.len(), 1, "{failures:?}");
    assert!(
        failures[0]["reason"]
            .as_str()
            .is_some_and(|r| r.contains("533")),
        "{failures:?}"
    );
    let stat = nitro.get("stat/autoscalegroup/web").await;
    let group = &stat.body["autoscalegroup"][0];
    assert_eq!(group["currentmembers"], 2, "{group}");
    assert_eq!(group["minmembers"], 1, "{group}");
    assert!(group["averages"]["cpu"].is_number(), "{group}");
    let (_, text) = scrape(addrs.metrics, None).await;
    assert_promtool_accepts(&text);
    let series = |s: &str| sample(&text, s);
    assert_eq!(
        series(r#"ballast_autoscale_events_total{group="web",kind="deploy_failed"}"#),
        Some(1.0)
    );
    assert_eq!(
        series(r#"ballast_autoscale_members{group="web",state="up"}"#),
        Some(2.0)
    );
    assert!(
        series(r#"ballast_autoscale_last_scale_out_seconds{group="web"}"#).is_some_and(|s| s > 3.0)
    );

    // Light load: everything under `lower`; one member is drained, then destroyed.
    let mark = ballast.log_mark();
    let light = PacedLoad::start(addrs.vserver, 5, 2);
    let scale_in = wait_for_event(&ballast, mark, "scale_in_started", STEP * 2).await;
    let scale_in = scale_in.unwrap_or_else(|| panic!("no scale-in; log:\n{}", ballast.log_text()));
    let victim = scale_in["vm"]
        .as_str()
        .expect("a scale-in names its victim")
        .to_string();
    wait_for_event(&ballast, mark, "vm_destroyed", STEP)
        .await
        .unwrap_or_else(|| panic!("the victim was not destroyed; log:\n{}", ballast.log_text()));
    let steps: Vec<String> = events(&ballast)
        .into_iter()
        .filter(|(_, vm)| *vm == victim)
        .map(|(kind, _)| kind)
        .skip_while(|kind| kind != "scale_in_started")
        .collect();
    assert_eq!(
        steps,
        [
            "scale_in_started",
            "drain_finished",
            "member_unbound",
            "vm_destroyed"
        ],
        "the victim's steps"
    );
    assert_eq!(live_vms(addrs.cloud).await.len(), 1);
    let calm = light.stop().await;

    // An operator disables the group: it decides nothing (the VM stays); enabling resumes it.
    for (action, phase_is_disabled) in [("disable", true), ("enable", false)] {
        let reply = nitro
            .post(
                &format!("config/autoscalegroup?action={action}"),
                serde_json::json!({"autoscalegroup": {"name": "web"}}),
            )
            .await;
        assert_eq!(reply.errorcode(), 0, "{action}: {}", reply.message());
        let shown = eventually(STEP, || async {
            let stat = nitro.get("stat/autoscalegroup/web").await;
            let group = &stat.body["autoscalegroup"][0];
            (group["phase"] == "disabled") == phase_is_disabled
        })
        .await;
        assert!(
            shown,
            "after {action}: {}",
            nitro.get("stat/autoscalegroup/web").await.body
        );
    }
    assert_eq!(live_vms(addrs.cloud).await.len(), 1);

    assert_eq!(
        (busy.failed, calm.failed),
        (0, 0),
        "failed requests: {:?} {:?}",
        busy.errors,
        calm.errors
    );
    assert!(busy.ok > 100 && calm.ok > 10, "{busy:?} {calm:?}");
}
