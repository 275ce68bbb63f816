//! The local cloud's per-account VM limit (`max_account_user_vms`), through the real server
//! and the real client: a deploy over the limit is refused at once with CloudStack's
//! `ResourceAllocationException` answer (HTTP 535, errorcode 535, cserrorcode 4370) and creates
//! nothing, even when many deploys race; each account has its own count; a destroyed VM frees
//! its place and recovering it counts again. VMs are deployed with `startvm=false`, so no VM
//! process is needed.

use std::time::{Duration, SystemTime};

use bytes::Bytes;
use http::{Request, StatusCode, header};
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tokio::net::{TcpListener, TcpStream};

use cloudstack::localcloud::{LocalCloud, LocalCloudConfig};
use cloudstack::{
    ClientConfig, CloudError, CloudStackClient, DeployVirtualMachine, JobWait, ListFilter,
    ListVirtualMachines, Params, TemplateFilter, VmState,
};

const CONFIG: &str = r#"
listen = "127.0.0.1:0"
address_range = "127.78.2.0/24"
max_account_user_vms = 2

[[apiuser]]
username = "admin"
apikey = "admin-key"
secretkey = "admin-secret"

[[apiuser]]
username = "alice"
apikey = "alice-key"
secretkey = "alice-secret"
role = "user"

[[apiuser]]
username = "bob"
apikey = "bob-key"
secretkey = "bob-secret"
role = "user"

[[zone]]
name = "z1"

[[host]]
name = "h1"
zone = "z1"
cpunumber = 64
cpuspeed = 2000
memory = 65536

[[serviceoffering]]
name = "small"
cpunumber = 1
cpuspeed = 1000
memory = 512

[[template]]
name = "web"
port = 8000
"#;

const OVER_THE_LIMIT: &str = "Maximum amount of resources of Type = 'user_vm' for Account Name \
    = alice in Domain Id = 1 is exceeded: Account Resource Limit = 2, Current Account Resource \
    Amount = 2, Requested Resource Amount = 1.";

struct Cloud {
    cloud: LocalCloud,
    admin: CloudStackClient,
    alice: CloudStackClient,
    bob: CloudStackClient,
    deploy: DeployVirtualMachine,
}

impl Cloud {
    async fn start() -> Self {
        let config = LocalCloudConfig::from_toml_str(CONFIG).expect("valid config");
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let cloud = LocalCloud::start_on(config, listener)
            .await
            .expect("the local cloud starts");
        let client = |key: &str, secret: &str| {
            CloudStackClient::new(ClientConfig::new(cloud.endpoint(), key, secret))
                .expect("valid client")
        };
        let admin = client("admin-key", "admin-secret");
        let deploy = DeployVirtualMachine {
            zoneid: admin
                .list_zones(&ListFilter::default())
                .await
                .expect("zones")[0]
                .id
                .clone(),
            templateid: admin
                .list_templates(TemplateFilter::Executable, &ListFilter::default())
                .await
                .expect("templates")[0]
                .id
                .clone(),
            serviceofferingid: admin
                .list_service_offerings(&ListFilter::default())
                .await
                .expect("offerings")[0]
                .id
                .clone(),
            startvm: Some(false),
            ..DeployVirtualMachine::default()
        };
        Self {
            alice: client("alice-key", "alice-secret"),
            bob: client("bob-key", "bob-secret"),
            admin,
            cloud,
            deploy,
        }
    }

    /// Deploys a stopped VM and waits for its job.
    async fn deploy(&self, client: &CloudStackClient) -> Result<String, CloudError> {
        let job = client.deploy_virtual_machine(&self.deploy).await?;
        client
            .wait_for_job("deployVirtualMachine", &job.jobid, wait())
            .await?;
        Ok(job.id.expect("a deploy names its VM"))
    }

    /// The VMs `client`'s account sees, any state.
    async fn vms(&self, client: &CloudStackClient) -> Vec<(String, VmState)> {
        client
            .list_virtual_machines(&ListVirtualMachines::default())
            .await
            .expect("listVirtualMachines")
            .items
            .into_iter()
            .map(|vm| (vm.id, vm.state))
            .collect()
    }
}

fn wait() -> JobWait {
    let mut wait = JobWait::new(Duration::from_secs(10));
    wait.poll =
        cloudstack::Backoff::new(Duration::from_millis(20), Duration::from_millis(100), 1.5);
    wait
}

#[tokio::test]
async fn a_deploy_over_the_account_limit_is_refused_as_cloudstack_does_and_creates_nothing() {
    let test = Cloud::start().await;
    let first = test.deploy(&test.alice).await.expect("1 of 2");
    test.deploy(&test.alice).await.expect("2 of 2");

    let error = test.deploy(&test.alice).await.expect_err("3 of 2");
    assert!(matches!(error, CloudError::Api { .. }), "{error:?}");
    assert_eq!(
        (error.errorcode(), error.cserrorcode(), error.errortext()),
        (Some(535), Some(4370), Some(OVER_THE_LIMIT))
    );
    assert!(!error.is_retryable(), "the limit needs the operator");
    assert_eq!(test.vms(&test.alice).await.len(), 2, "nothing was created");
    let everyone = test
        .admin
        .list_virtual_machines(&ListVirtualMachines {
            listall: true,
            ..ListVirtualMachines::default()
        })
        .await
        .expect("listall");
    assert_eq!(everyone.count, 2);

    // Other accounts have their own count.
    test.deploy(&test.bob).await.expect("bob's first");
    test.deploy(&test.admin).await.expect("admin's first");

    // A destroyed VM no longer counts; recovering it would make three.
    let job = test
        .alice
        .destroy_virtual_machine(&first, false)
        .await
        .expect("destroy");
    test.alice
        .wait_for_job("destroyVirtualMachine", &job.jobid, wait())
        .await
        .expect("destroyed");
    test.deploy(&test.alice).await.expect("room again");
    let error = test
        .alice
        .call(
            "recoverVirtualMachine",
            &Params::new().with("id", first.as_str()),
        )
        .await
        .expect_err("a recovered VM counts again");
    assert_eq!(
        (error.errorcode(), error.cserrorcode()),
        (Some(535), Some(4370))
    );
    test.cloud.shutdown().await;
}

#[tokio::test]
async fn the_refusal_is_cloudstacks_error_envelope_with_http_status_535() {
    let test = Cloud::start().await;
    test.deploy(&test.alice).await.expect("1 of 2");
    test.deploy(&test.alice).await.expect("2 of 2");

    let mut params = Params::new();
    params
        .set("zoneid", test.deploy.zoneid.as_str())
        .set("templateid", test.deploy.templateid.as_str())
        .set("serviceofferingid", test.deploy.serviceofferingid.as_str())
        .set("startvm", "false");
    let signed = test
        .alice
        .sign("deployVirtualMachine", &params, SystemTime::now());
    let (status, body) = get(&test.cloud, &format!("/client/api?{}", signed.to_query())).await;
    assert_eq!(status.as_u16(), 535);
    assert_eq!(
        body,
        json!({"deployvirtualmachineresponse": {
            "uuidList": [],
            "errorcode": 535,
            "cserrorcode": 4370,
            "errortext": OVER_THE_LIMIT,
        }})
    );
    test.cloud.shutdown().await;
}

#[tokio::test]
async fn racing_deploys_do_not_get_past_the_limit() {
    let test = Cloud::start().await;
    let racers: Vec<_> = (0..30)
        .map(|_| {
            let bob = test.bob.clone();
            let request = test.deploy.clone();
            tokio::spawn(async move { bob.deploy_virtual_machine(&request).await })
        })
        .collect();
    let mut accepted = 0;
    for racer in racers {
        match racer.await.expect("the task ends") {
            Ok(_) => accepted += 1,
            Err(error) => assert_eq!(error.errorcode(), Some(535), "{error}"),
        }
    }
    assert_eq!(accepted, 2);
    assert_eq!(test.vms(&test.bob).await.len(), 2);
    test.cloud.shutdown().await;
}

/// `GET path` with hyper's HTTP/1.1 client: the status and the JSON body.
async fn get(cloud: &LocalCloud, path: &str) -> (StatusCode, Value) {
    let stream = TcpStream::connect(cloud.local_addr())
        .await
        .expect("connect");
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .expect("handshake");
    let driver = tokio::spawn(connection);
    let request = Request::get(path)
        .header(header::HOST, cloud.local_addr().to_string())
        .body(Empty::<Bytes>::new())
        .expect("a valid request");
    let response = sender.send_request(request).await.expect("an answer");
    let status = response.status();
    let body = response
        .into_body()
        .collect()
        .await
        .expect("the body")
        .to_bytes();
    driver.abort();
    (status, serde_json::from_slice(&body).expect("JSON"))
}
