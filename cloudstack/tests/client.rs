//! Ballast's own client against the local cloud: the full flow (GET, POST, legacy signature),
//! and every error class of `CloudError`, each produced for real (wrong secret, bad
//! parameters, unknown command, a user without expunge rights, a full zone) or by fault
//! injection (API errors, failed and hung deploys, dropped connections, a slow API).

mod common;

use std::time::Duration;

use base64::Engine as _;

use cloudstack::localcloud::Faults;
use cloudstack::{
    ClientConfig, CloudError, CloudStackClient, DeployVirtualMachine, HttpMethod, ListFilter,
    ListVirtualMachines, Params, VmState,
};
use common::{
    ADMIN_KEY, ADMIN_SECRET, Setup, TestCloud, client, header, host_block, http_get, wait,
};

async fn full_flow(test: &TestCloud, client: &CloudStackClient, name: &str) {
    let caps = client.list_capabilities().await.expect("listCapabilities");
    assert!(caps.cloudstackversion.starts_with("4."));
    let request = DeployVirtualMachine {
        userdata: Some("#cloud-config\nrole: web ~ é".into()),
        ..test.deploy(name, &test.small)
    };
    let job = client
        .deploy_virtual_machine(&request)
        .await
        .expect("deploy accepted");
    let id = job.id.clone().expect("deploy returns the new VM's id");
    let vm = client
        .wait_for_virtual_machine("deployVirtualMachine", &job.jobid, wait(20))
        .await
        .expect("deploy job succeeds");
    assert_eq!(
        (vm.id.as_str(), &vm.state),
        (id.as_str(), &VmState::Running)
    );
    assert!(vm.hostid.is_some());

    let listed = client
        .list_virtual_machines(&ListVirtualMachines {
            group: Some("web".into()),
            name: Some(name.into()),
            ..Default::default()
        })
        .await
        .expect("list by group and name");
    assert_eq!(listed.items.len(), 1);
    let vm = &listed.items[0];
    assert_eq!(vm.group.as_deref(), Some("web"));
    let (status, headers, body) = http_get(test.workload_addr(vm), "/")
        .await
        .expect("HTTP to the VM");
    assert_eq!(status, 200);
    assert_eq!(header(&headers, "x-ballast-vm-id"), Some(id.as_str()));
    assert_eq!(header(&headers, "x-ballast-vm"), Some(name));
    assert_eq!(body.len(), 128, "the template's response size");
    let userdata = client
        .call(
            "getVirtualMachineUserData",
            &Params::new().with("virtualmachineid", id.as_str()),
        )
        .await
        .expect("user data");
    let encoded = userdata["virtualmachineuserdata"]["userdata"]
        .as_str()
        .expect("a string");
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .expect("Base64");
    assert_eq!(
        String::from_utf8_lossy(&decoded),
        "#cloud-config\nrole: web ~ é"
    );
    let (status, _, body) = http_get(test.workload_addr(vm), "/healthz")
        .await
        .expect("healthz");
    assert_eq!((status, body.as_str()), (200, "ok\n"));

    let job = client
        .destroy_virtual_machine(&id, true)
        .await
        .expect("destroy accepted");
    client
        .wait_for_job("destroyVirtualMachine", &job.jobid, wait(20))
        .await
        .expect("destroy job succeeds");
    assert!(test.vm(&id).await.is_none(), "an expunged VM is gone");
}

#[tokio::test]
async fn full_flow_with_get_post_and_legacy_signatures() {
    let test = TestCloud::start().await;
    full_flow(&test, &test.admin, "rust-get").await;

    let mut config = ClientConfig::new(test.cloud.endpoint(), ADMIN_KEY, ADMIN_SECRET);
    config.method = HttpMethod::Post;
    full_flow(
        &test,
        &CloudStackClient::new(config).expect("valid"),
        "rust-post",
    )
    .await;

    let mut config = ClientConfig::new(test.cloud.endpoint(), ADMIN_KEY, ADMIN_SECRET);
    config.expires = None;
    full_flow(
        &test,
        &CloudStackClient::new(config).expect("valid"),
        "rust-legacy",
    )
    .await;
    test.cloud.shutdown().await;
}

#[tokio::test]
async fn errors_that_must_not_be_retried() {
    let test = TestCloud::start().await;

    // 401: wrong secret, and wrong key.
    for (key, secret) in [(ADMIN_KEY, "wrong"), ("nobody", ADMIN_SECRET)] {
        let error = client(&test.cloud.endpoint(), key, secret)
            .list_zones(&ListFilter::default())
            .await
            .expect_err("refused");
        assert_eq!(error.errorcode(), Some(401), "{error}");
        assert_eq!(
            error.errortext(),
            Some("unable to verify user credentials and/or request signature")
        );
        assert!(!error.is_retryable());
    }

    // 431: a required parameter missing, an id that does not exist.
    let error = test
        .admin
        .call("listTemplates", &Params::new())
        .await
        .expect_err("templatefilter is required");
    assert_eq!(error.errorcode(), Some(431), "{error}");
    assert!(
        error
            .errortext()
            .is_some_and(|t| t.contains("missing parameter templatefilter"))
    );
    assert!(!error.is_retryable());
    let mut bad = test.deploy("bad-zone", &test.small);
    bad.zoneid = "no-such-zone".into();
    let error = test
        .admin
        .deploy_virtual_machine(&bad)
        .await
        .expect_err("unknown zone");
    assert_eq!(
        (error.errorcode(), error.cserrorcode()),
        (Some(431), Some(9999)),
        "{error}"
    );
    assert!(!error.is_retryable());

    // 432: a command the server does not have.
    let error = test
        .admin
        .call("listFlyingSaucers", &Params::new())
        .await
        .expect_err("unknown command");
    assert_eq!(error.errorcode(), Some(432), "{error}");
    assert!(!error.is_retryable());

    // 531: a plain user may not expunge (allow.user.expunge.recover.vm is off).
    let job = test
        .user
        .deploy_virtual_machine(&test.deploy("users-vm", &test.small))
        .await
        .expect("users may deploy");
    let vm = test
        .user
        .wait_for_virtual_machine("deployVirtualMachine", &job.jobid, wait(20))
        .await
        .expect("deployed");
    let error = test
        .user
        .destroy_virtual_machine(&vm.id, true)
        .await
        .expect_err("no expunge for users");
    assert_eq!(
        (error.errorcode(), error.cserrorcode()),
        (Some(531), Some(4365)),
        "{error}"
    );
    assert!(!error.is_retryable());
    // The user's VM is invisible to other accounts' lists unless an admin asks for all.
    let own = test
        .admin
        .list_virtual_machines(&ListVirtualMachines::default())
        .await
        .expect("list");
    assert!(own.items.iter().all(|v| v.id != vm.id));
    let all = ListVirtualMachines {
        listall: true,
        ..Default::default()
    };
    let all = test
        .admin
        .list_virtual_machines(&all)
        .await
        .expect("list all");
    assert!(all.items.iter().any(|v| v.id == vm.id));
    test.cloud.shutdown().await;
}

#[tokio::test]
async fn injected_api_errors_are_retryable_and_read_calls_retry_them() {
    let test = TestCloud::start().await;
    for code in [429_u16, 530, 534] {
        test.cloud.inject(&Faults {
            api_errors: Some(1),
            api_errors_errorcode: Some(code),
            api_errors_command: Some("deployVirtualMachine".into()),
            ..Faults::default()
        });
        let error = test
            .admin
            .deploy_virtual_machine(&test.deploy("never", &test.small))
            .await
            .expect_err("injected");
        assert_eq!(error.errorcode(), Some(code), "{error}");
        assert!(error.is_retryable(), "{code} is retryable");
        assert!(matches!(error, CloudError::Api { .. }));
    }

    // A read-only call rides out one 429 by itself; with no retries it sees it.
    test.cloud.clear_faults();
    test.cloud.inject(&Faults {
        api_errors: Some(1),
        api_errors_errorcode: Some(429),
        ..Faults::default()
    });
    let zones = test
        .admin
        .list_zones(&ListFilter::default())
        .await
        .expect("retried");
    assert_eq!(zones.len(), 1);
    let mut config = ClientConfig::new(test.cloud.endpoint(), ADMIN_KEY, ADMIN_SECRET);
    config.read_retries = 0;
    let no_retries = CloudStackClient::new(config).expect("valid");
    test.cloud.inject(&Faults {
        api_errors: Some(1),
        api_errors_errorcode: Some(429),
        ..Faults::default()
    });
    let error = no_retries
        .list_zones(&ListFilter::default())
        .await
        .expect_err("429");
    assert_eq!(
        (error.errorcode(), error.cserrorcode()),
        (Some(429), Some(4545))
    );
    test.cloud.shutdown().await;
}

#[tokio::test]
async fn failed_deploy_jobs_carry_the_inner_error_and_leave_the_vm_in_error() {
    let test = TestCloud::start().await;
    for code in [530_u16, 534] {
        test.cloud.inject(&Faults {
            fail_deploys: Some(1),
            fail_deploys_errorcode: Some(code),
            ..Faults::default()
        });
        let job = test
            .admin
            .deploy_virtual_machine(&test.deploy(&format!("fails-{code}"), &test.small))
            .await
            .expect("the deploy itself is accepted");
        let error = test
            .admin
            .wait_for_virtual_machine("deployVirtualMachine", &job.jobid, wait(20))
            .await
            .expect_err("the job fails");
        assert!(matches!(error, CloudError::JobFailed { .. }), "{error}");
        assert_eq!(error.errorcode(), Some(code));
        assert_eq!(error.jobid(), Some(job.jobid.as_str()));
        assert!(error.is_retryable());
        let id = job.id.expect("id");
        assert_eq!(
            test.vm(&id).await.expect("still listed").state,
            VmState::Error
        );
        let destroy = test
            .admin
            .destroy_virtual_machine(&id, true)
            .await
            .expect("destroy");
        test.admin
            .wait_for_job("destroyVirtualMachine", &destroy.jobid, wait(20))
            .await
            .expect("an Error VM can be destroyed");
    }
    test.cloud.shutdown().await;
}

#[tokio::test]
async fn a_deploy_into_a_full_zone_gets_533() {
    // One host with room for two 1-vCPU VMs.
    let setup = Setup {
        hosts: host_block("only", 1, 1024),
        ..Setup::default()
    };
    let test = TestCloud::start_with(setup).await;
    let first = test.running_vm("fill-1", &test.small).await;
    let second = test.running_vm("fill-2", &test.small).await;
    let job = test
        .admin
        .deploy_virtual_machine(&test.deploy("one-too-many", &test.small))
        .await
        .expect("accepted; capacity is found out by the job");
    let error = test
        .admin
        .wait_for_virtual_machine("deployVirtualMachine", &job.jobid, wait(20))
        .await
        .expect_err("no capacity");
    assert_eq!(
        (error.errorcode(), error.cserrorcode()),
        (Some(533), Some(4335)),
        "{error}"
    );
    assert!(error.is_retryable());
    assert!(
        error
            .errortext()
            .is_some_and(|t| t.contains("Unable to create a deployment"))
    );

    // Room again after a destroy: the same deploy works.
    let destroy = test
        .admin
        .destroy_virtual_machine(&first.id, true)
        .await
        .expect("destroy");
    test.admin
        .wait_for_job("destroyVirtualMachine", &destroy.jobid, wait(20))
        .await
        .expect("destroyed");
    test.running_vm("fits-now", &test.small).await;
    assert!(test.vm(&second.id).await.is_some());
    test.cloud.shutdown().await;
}

#[tokio::test]
async fn transport_errors_dropped_connections_slow_api_and_nobody_listening() {
    let test = TestCloud::start().await;
    let mut config = ClientConfig::new(test.cloud.endpoint(), ADMIN_KEY, ADMIN_SECRET);
    config.read_retries = 0;
    config.timeout = Duration::from_millis(300);
    let impatient = CloudStackClient::new(config).expect("valid");

    test.cloud.inject(&Faults {
        drop_connections: Some(1),
        ..Faults::default()
    });
    let error = impatient
        .list_zones(&ListFilter::default())
        .await
        .expect_err("dropped");
    assert!(matches!(error, CloudError::AnswerLost { .. }), "{error}");
    assert!(!error.is_retryable(), "the cloud read the request");
    assert!(error.is_retryable_if_read_only());

    test.cloud.inject(&Faults {
        api_delay_ms: Some(1000),
        ..Faults::default()
    });
    let error = impatient
        .list_zones(&ListFilter::default())
        .await
        .expect_err("too slow");
    assert!(matches!(error, CloudError::AnswerLost { .. }), "{error}");
    assert!(error.to_string().contains("no answer within"), "{error}");
    test.cloud.clear_faults();
    impatient
        .list_zones(&ListFilter::default())
        .await
        .expect("fast again");

    // The default client retries a dropped read by itself.
    test.cloud.inject(&Faults {
        drop_connections: Some(1),
        ..Faults::default()
    });
    test.admin
        .list_zones(&ListFilter::default())
        .await
        .expect("retried");

    let endpoint = test.cloud.endpoint();
    test.cloud.shutdown().await;
    let error = client(&endpoint, ADMIN_KEY, ADMIN_SECRET)
        .call_once("listZones", &Params::new())
        .await
        .expect_err("nobody listens");
    assert!(matches!(error, CloudError::NotSent { .. }), "{error}");
    assert!(error.is_retryable());
}

#[tokio::test]
async fn a_hung_deploy_times_out_with_its_job_id_and_can_be_cleaned_up() {
    let test = TestCloud::start().await;
    test.cloud.inject(&Faults {
        hang_deploys: Some(1),
        ..Faults::default()
    });
    let job = test
        .admin
        .deploy_virtual_machine(&test.deploy("hangs", &test.small))
        .await
        .expect("accepted");
    let error = test
        .admin
        .wait_for_virtual_machine("deployVirtualMachine", &job.jobid, wait(1))
        .await
        .expect_err("still pending");
    assert!(matches!(error, CloudError::JobTimeout { .. }), "{error}");
    assert_eq!(error.jobid(), Some(job.jobid.as_str()));
    assert!(!error.is_retryable(), "reconcile, do not repeat the deploy");

    // Reconcile: the VM is there, Starting, with the job pending on it.
    let id = job.id.expect("id");
    let vm = test.vm(&id).await.expect("listed");
    assert_eq!(vm.state, VmState::Starting);
    assert_eq!(vm.jobid.as_deref(), Some(job.jobid.as_str()));
    let jobs = test
        .admin
        .list_async_jobs(&Default::default())
        .await
        .expect("listAsyncJobs");
    assert!(
        jobs.iter()
            .any(|j| j.jobid == job.jobid && j.jobstatus == 0)
    );

    let destroy = test
        .admin
        .destroy_virtual_machine(&id, true)
        .await
        .expect("destroy");
    test.admin
        .wait_for_job("destroyVirtualMachine", &destroy.jobid, wait(20))
        .await
        .expect("destroyed");
    let deploy = test
        .admin
        .query_async_job_result(&job.jobid)
        .await
        .expect("query");
    assert_eq!(
        deploy.jobstatus, 2,
        "the hung deploy fails once its VM is destroyed"
    );
    assert!(test.vm(&id).await.is_none());
    test.cloud.shutdown().await;
}

#[tokio::test]
async fn expired_and_tampered_requests_get_401() {
    let test = TestCloud::start().await;
    let mut config = ClientConfig::new(test.cloud.endpoint(), ADMIN_KEY, ADMIN_SECRET);
    config.expires = Some(Duration::ZERO);
    let signer = CloudStackClient::new(config).expect("valid");
    let an_hour_ago = std::time::SystemTime::now() - Duration::from_secs(3600);
    let expired = signer.sign("listZones", &Params::new(), an_hour_ago);
    let addr = test.cloud.local_addr();
    let (status, _, body) = http_get(addr, &format!("/client/api?{}", expired.to_query()))
        .await
        .expect("answer");
    assert_eq!(status, 401, "{body}");
    let body: serde_json::Value = serde_json::from_str(&body).expect("JSON");
    assert_eq!(body["listzonesresponse"]["errorcode"], 401);

    let fresh = test
        .admin
        .sign("listZones", &Params::new(), std::time::SystemTime::now());
    let (status, _, _) = http_get(addr, &format!("/client/api?{}", fresh.to_query()))
        .await
        .expect("answer");
    assert_eq!(status, 200);
    let tampered = fresh.with("name", "z1");
    let (status, _, _) = http_get(addr, &format!("/client/api?{}", tampered.to_query()))
        .await
        .expect("answer");
    assert_eq!(
        status, 401,
        "a parameter added after signing breaks the signature"
    );
    test.cloud.shutdown().await;
}
