//! The VM lifecycle as CloudStack runs it, with real processes: placement, stop/start,
//! destroy without expunge, crashes seen as `Stopped`, HA restarts, failed hosts, the
//! workload's capacity, and no VM process outliving the local cloud (checked by PID).

mod common;

use std::time::Duration;

use cloudstack::localcloud::LocalCloudConfig;
use cloudstack::{DeployVirtualMachine, ListVirtualMachines, VmState};
use common::{Setup, TestCloud, alive, fault_endpoint, http_get, kill, wait, wait_dead};
use tokio::time::Instant;

#[tokio::test]
async fn placement_is_least_loaded_and_stop_start_keeps_the_address() {
    let test = TestCloud::start().await;
    let a = test.running_vm("place-a", &test.small).await;
    let b = test.running_vm("place-b", &test.small).await;
    assert_ne!(a.hostid, b.hostid, "the second VM goes to the emptier host");
    assert_ne!(a.ip_address(), b.ip_address());

    let job = test
        .admin
        .stop_virtual_machine(&a.id, false)
        .await
        .expect("stop");
    let stopped = test
        .admin
        .wait_for_virtual_machine("stopVirtualMachine", &job.jobid, wait(20))
        .await
        .expect("stopped");
    assert_eq!(stopped.state, VmState::Stopped);
    assert!(stopped.hostid.is_none(), "a stopped VM holds no host");
    assert!(
        http_get(test.workload_addr(&a), "/").await.is_err(),
        "its workload is gone"
    );

    let job = test
        .admin
        .start_virtual_machine(&a.id)
        .await
        .expect("start");
    let started = test
        .admin
        .wait_for_virtual_machine("startVirtualMachine", &job.jobid, wait(20))
        .await
        .expect("started");
    assert_eq!(started.state, VmState::Running);
    assert_eq!(
        started.ip_address(),
        a.ip_address(),
        "the nic keeps its address"
    );
    let (status, _, _) = http_get(test.workload_addr(&started), "/")
        .await
        .expect("serving again");
    assert_eq!(status, 200);

    // States, paging and tags in listVirtualMachines.
    let tag = vec![("role".to_string(), "canary".to_string())];
    let job = test
        .admin
        .tag_virtual_machines(std::slice::from_ref(&b.id), &tag)
        .await
        .expect("tag");
    test.admin
        .wait_for_job("createTags", &job.jobid, wait(5))
        .await
        .expect("tagged");
    let by_tag = ListVirtualMachines {
        tags: tag.clone(),
        ..Default::default()
    };
    let tagged = test
        .admin
        .list_virtual_machines(&by_tag)
        .await
        .expect("by tag");
    assert_eq!(tagged.items.len(), 1);
    assert_eq!(tagged.items[0].tag("role"), Some("canary"));
    let first_page = ListVirtualMachines {
        state: Some(VmState::Running),
        page: Some(1),
        pagesize: Some(1),
        ..Default::default()
    };
    let page = test
        .admin
        .list_virtual_machines(&first_page)
        .await
        .expect("page");
    assert_eq!((page.count, page.items.len()), (2, 1));
    let all = test
        .admin
        .list_all_virtual_machines(&ListVirtualMachines::default())
        .await
        .expect("all");
    assert_eq!(all.len(), 2);
    test.cloud.shutdown().await;
}

#[tokio::test]
async fn startvm_false_then_start() {
    let test = TestCloud::start().await;
    let request = DeployVirtualMachine {
        startvm: Some(false),
        ..test.deploy("cold", &test.small)
    };
    let job = test
        .admin
        .deploy_virtual_machine(&request)
        .await
        .expect("deploy");
    let vm = test
        .admin
        .wait_for_virtual_machine("deployVirtualMachine", &job.jobid, wait(20))
        .await
        .expect("created");
    assert_eq!(vm.state, VmState::Stopped);
    assert!(
        vm.ip_address().is_some(),
        "the address is allocated at create"
    );
    assert!(test.pid(&vm.id).is_none());
    let job = test
        .admin
        .start_virtual_machine(&vm.id)
        .await
        .expect("start");
    let vm = test
        .admin
        .wait_for_virtual_machine("startVirtualMachine", &job.jobid, wait(20))
        .await
        .expect("started");
    assert_eq!(vm.state, VmState::Running);
    test.cloud.shutdown().await;
}

#[tokio::test]
async fn destroy_without_expunge_keeps_the_vm_destroyed_until_the_expunge_delay() {
    let setup = Setup {
        expunge_delay: "1s",
        ..Setup::default()
    };
    let test = TestCloud::start_with(setup).await;
    let vm = test.running_vm("keep-a-while", &test.small).await;
    let pid = test.pid(&vm.id).expect("a process");
    let job = test
        .admin
        .destroy_virtual_machine(&vm.id, false)
        .await
        .expect("destroy");
    let destroyed = test
        .admin
        .wait_for_virtual_machine("destroyVirtualMachine", &job.jobid, wait(20))
        .await
        .expect("destroyed");
    assert_eq!(destroyed.state, VmState::Destroyed);
    assert!(wait_dead(pid, 5).await, "the process ended");
    assert_eq!(
        test.vm(&vm.id).await.expect("still listed").state,
        VmState::Destroyed
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    while test.vm(&vm.id).await.is_some() {
        assert!(Instant::now() < deadline, "never expunged");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    test.cloud.shutdown().await;
}

#[tokio::test]
async fn a_vm_process_killed_from_outside_is_seen_stopped() {
    let test = TestCloud::start().await;
    let vm = test.running_vm("victim", &test.small).await;
    let pid = test.pid(&vm.id).expect("a process");
    kill("KILL", pid);
    let stopped = test.wait_state(&vm.id, "Stopped", 10).await;
    assert!(stopped.hostid.is_none());
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(
        test.vm(&vm.id).await.expect("listed").state,
        VmState::Stopped,
        "no HA on this offering: it stays Stopped"
    );
    test.cloud.shutdown().await;
}

#[tokio::test]
async fn an_ha_vm_is_restarted_after_a_crash() {
    let test = TestCloud::start().await;
    let vm = test.running_vm("phoenix", &test.ha).await;
    assert!(vm.haenable);
    let pid = test.pid(&vm.id).expect("a process");
    kill("KILL", pid);
    let (back, new_pid) = test.wait_restarted(&vm.id, pid, 20).await;
    assert_eq!(back.ip_address(), vm.ip_address(), "same VM, same address");
    let (status, _, _) = http_get(test.workload_addr(&back), "/")
        .await
        .expect("serving");
    assert_eq!(status, 200);

    // An injected crash (admin endpoint) goes the same way.
    let crash = format!("/localcloud/v1/vms/{}/crash", vm.id);
    let (status, _) = post(test.cloud.local_addr(), &crash).await;
    assert_eq!(status, 200);
    assert!(wait_dead(new_pid, 5).await);
    test.wait_restarted(&vm.id, new_pid, 20).await;
    test.cloud.shutdown().await;
}

#[tokio::test]
async fn a_failed_host_takes_its_vms_down_and_ha_moves_them() {
    let test = TestCloud::start().await;
    let plain = test.running_vm("plain", &test.small).await;
    let ha = test.running_vm("ha", &test.ha).await;
    assert_ne!(plain.hostid, ha.hostid);
    // Fail the HA VM's host through the admin endpoint.
    let host = ha.hostid.clone().expect("placed");
    let (status, _) = post(
        test.cloud.local_addr(),
        &format!("/localcloud/v1/hosts/{host}/fail"),
    )
    .await;
    assert_eq!(status, 200);
    let moved = test
        .wait_vm(&ha.id, 20, "Running on another host", |vm| {
            vm.state == VmState::Running && vm.hostid.as_ref().is_some_and(|h| *h != host)
        })
        .await;
    assert!(moved.hostid.is_some());
    assert_eq!(
        test.vm(&plain.id).await.expect("listed").state,
        VmState::Running
    );

    // The plain VM's host fails too: it stops, and with no host Up the zone is full.
    let other = plain.hostid.clone().expect("placed");
    assert!(test.cloud.fail_host(&other));
    test.wait_state(&plain.id, "Stopped", 10).await;
    let job = test
        .admin
        .deploy_virtual_machine(&test.deploy("nowhere", &test.small))
        .await
        .expect("deploy");
    let error = test
        .admin
        .wait_for_virtual_machine("deployVirtualMachine", &job.jobid, wait(20))
        .await
        .expect_err("no host up");
    assert_eq!(error.errorcode(), Some(533));
    assert!(test.cloud.recover_host(&host));
    assert!(test.cloud.recover_host(&other));
    test.running_vm("after-recovery", &test.small).await;
    test.cloud.shutdown().await;
}

#[tokio::test]
async fn shutting_down_leaves_no_vm_process_behind() {
    let test = TestCloud::start().await;
    test.running_vm("one", &test.small).await;
    test.running_vm("two", &test.ha).await;
    let pids: Vec<u32> = test
        .cloud
        .vm_pids()
        .into_iter()
        .map(|(_, pid)| pid)
        .collect();
    assert_eq!(pids.len(), 2);
    assert!(pids.iter().all(|pid| alive(*pid)));
    test.cloud.shutdown().await;
    for pid in pids {
        assert!(!alive(pid), "VM process {pid} outlived the local cloud");
    }
}

#[tokio::test]
async fn vm_processes_die_with_the_localcloud_binary_even_when_it_is_killed() {
    let port = common::free_port();
    let dir = std::env::temp_dir().join(format!("ballast-lc-bin-{}-{port}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let config = dir.join("localcloud.toml");
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/configs/localcloud.toml"
    ))
    .expect("configs/localcloud.toml")
    .replace(
        "listen = \"127.0.0.1:8080\"",
        &format!("listen = \"127.0.0.1:{port}\""),
    )
    .replace(
        "address_range = \"127.77.0.0/16\"",
        &format!("address_range = \"{}\"", common::fresh_range()),
    )
    .replace("boot_delay = \"2s\"", "boot_delay = \"200ms\"")
    .replace("port = 8000", &format!("port = {}", common::free_port()));
    std::fs::write(&config, text).expect("write config");

    for signal in ["TERM", "KILL"] {
        let mut cloud = tokio::process::Command::new(common::ballast_bin())
            .arg("localcloud")
            .arg("--config")
            .arg(&config)
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("start ballast localcloud");
        let endpoint = format!("http://127.0.0.1:{port}/client/api");
        let parsed = LocalCloudConfig::load(&config).expect("valid");
        let user = &parsed.users[0];
        let client = common::client(&endpoint, &user.apikey, &user.secretkey);
        let deadline = Instant::now() + Duration::from_secs(10);
        while client.list_capabilities().await.is_err() {
            assert!(
                Instant::now() < deadline,
                "ballast localcloud did not come up"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let request = DeployVirtualMachine {
            zoneid: parsed.zones[0].id.clone(),
            templateid: parsed.templates[0].id.clone(),
            serviceofferingid: parsed.offerings[0].id.clone(),
            ..Default::default()
        };
        let job = client
            .deploy_virtual_machine(&request)
            .await
            .expect("deploy");
        client
            .wait_for_virtual_machine("deployVirtualMachine", &job.jobid, wait(20))
            .await
            .expect("running");
        let (status, state) = fault_endpoint(
            ([127, 0, 0, 1], port).into(),
            "GET",
            "/localcloud/v1/state",
            (&user.apikey, &user.secretkey),
        )
        .await;
        assert_eq!(status, 200, "{state}");
        let state: serde_json::Value = serde_json::from_str(&state).expect("JSON");
        let pid = state["vms"][0]["pid"]
            .as_u64()
            .and_then(|p| u32::try_from(p).ok())
            .expect("a pid");
        assert!(alive(pid));

        kill(signal, cloud.id().expect("running"));
        let _ = cloud.wait().await;
        assert!(
            wait_dead(pid, 5).await,
            "VM process {pid} outlived `ballast localcloud` (SIG{signal})"
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn a_vm_serves_at_most_vcpus_over_request_cpu() {
    // 20 ms per request on 1000 MHz: a 1-vCPU VM serves ~50 requests/s, so 10 at once take
    // at least 200 ms; two such VMs serve 10 (5 each) in at least 100 ms.
    let setup = Setup {
        request_cpu: "20ms",
        ..Setup::default()
    };
    let test = TestCloud::start_with(setup).await;
    let a = test.running_vm("cpu-a", &test.small).await;
    let b = test.running_vm("cpu-b", &test.small).await;
    let one = burst(&[test.workload_addr(&a)], 10).await;
    let two = burst(&[test.workload_addr(&a), test.workload_addr(&b)], 10).await;
    eprintln!("10 requests: one VM {one:?}, two VMs {two:?}");
    assert!(
        one >= Duration::from_millis(195),
        "one VM was too fast: {one:?}"
    );
    assert!(
        two >= Duration::from_millis(95),
        "two VMs were too fast: {two:?}"
    );
    assert!(
        two < one,
        "two VMs serve the same burst faster ({two:?} vs {one:?})"
    );
    test.cloud.shutdown().await;
}

/// Sends `count` requests at once, spread over `targets`; the time until all are answered.
async fn burst(targets: &[std::net::SocketAddr], count: usize) -> Duration {
    let start = Instant::now();
    let mut tasks = Vec::new();
    for i in 0..count {
        let target = targets[i % targets.len()];
        tasks.push(tokio::spawn(async move { http_get(target, "/").await }));
    }
    for task in tasks {
        let (status, _, _) = task.await.expect("task").expect("answer");
        assert_eq!(status, 200);
    }
    start.elapsed()
}

/// `POST path` on the fault endpoint with the test cloud's admin key pair.
async fn post(addr: std::net::SocketAddr, path: &str) -> (u16, String) {
    fault_endpoint(
        addr,
        "POST",
        path,
        (common::ADMIN_KEY, common::ADMIN_SECRET),
    )
    .await
}
