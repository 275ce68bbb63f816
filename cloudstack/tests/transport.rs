//! The client against real TCP servers that misbehave: a request refused before it was sent
//! is [`CloudError::NotSent`] (safe to repeat); a request read in full by a server that then
//! closes without answering is [`CloudError::AnswerLost`], and a deploy is then never sent a
//! second time by the client. The cause stays reachable through `source()`. Last, the local
//! cloud carrying out a deploy and losing its answer: the VM is there to be found.

use std::error::Error as _;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use cloudstack::localcloud::{Faults, LocalCloud, LocalCloudConfig};
use cloudstack::{
    ClientConfig, CloudError, CloudStackClient, DeployVirtualMachine, HttpMethod, ListFilter,
    ListVirtualMachines, TransportError,
};
use tokio::io::AsyncReadExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// A server on 127.0.0.1 that reads each request whole (head and `content-length` body),
/// counts it, and closes the connection without a byte of answer.
struct Swallower {
    addr: SocketAddr,
    requests: Arc<AtomicUsize>,
    task: JoinHandle<()>,
}

impl Swallower {
    async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("local addr");
        let requests = Arc::new(AtomicUsize::new(0));
        let counted = requests.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let counted = counted.clone();
                tokio::spawn(async move {
                    if read_request(stream).await.is_some() {
                        counted.fetch_add(1, Ordering::SeqCst);
                    }
                });
            }
        });
        Self {
            addr,
            requests,
            task,
        }
    }

    fn endpoint(&self) -> String {
        format!("http://{}/client/api", self.addr)
    }

    fn requests(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }
}

impl Drop for Swallower {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Reads one HTTP/1.1 request to its end; `Some(request)` when it came whole. Dropping the
/// stream afterwards closes the connection with no answer.
async fn read_request(mut stream: TcpStream) -> Option<String> {
    let mut raw = Vec::new();
    let mut buf = [0_u8; 4096];
    let head_end = loop {
        let n = stream.read(&mut buf).await.ok()?;
        if n == 0 {
            return None;
        }
        raw.extend_from_slice(&buf[..n]);
        if let Some(at) = raw.windows(4).position(|w| w == b"\r\n\r\n") {
            break at + 4;
        }
    };
    let head = String::from_utf8_lossy(&raw[..head_end]).to_lowercase();
    let length: usize = head
        .lines()
        .find_map(|line| line.strip_prefix("content-length:"))
        .map_or(0, |v| v.trim().parse().unwrap_or(0));
    while raw.len() < head_end + length {
        let n = stream.read(&mut buf).await.ok()?;
        if n == 0 {
            return None;
        }
        raw.extend_from_slice(&buf[..n]);
    }
    Some(String::from_utf8_lossy(&raw).into_owned())
}

fn client(endpoint: &str, method: HttpMethod) -> CloudStackClient {
    let mut config = ClientConfig::new(endpoint, "key", "secret");
    config.method = method;
    config.timeout = Duration::from_secs(5);
    config.read_retries = 2;
    config.retry_backoff =
        cloudstack::Backoff::new(Duration::from_millis(10), Duration::from_millis(10), 1.0);
    CloudStackClient::new(config).expect("valid client config")
}

fn deploy() -> DeployVirtualMachine {
    DeployVirtualMachine {
        zoneid: "z".into(),
        templateid: "t".into(),
        serviceofferingid: "o".into(),
        name: Some("web-1".into()),
        group: Some("web".into()),
        ..DeployVirtualMachine::default()
    }
}

/// The `TransportError` under a `CloudError`, found through `source()`.
fn transport_cause(error: &CloudError) -> &TransportError {
    error
        .source()
        .and_then(|cause| cause.downcast_ref::<TransportError>())
        .unwrap_or_else(|| panic!("no TransportError in the chain of {error:?}"))
}

#[tokio::test]
async fn a_deploy_whose_answer_is_lost_is_sent_once_and_said_to_maybe_have_taken_effect() {
    for method in [HttpMethod::Get, HttpMethod::Post] {
        let server = Swallower::start().await;
        let error = client(&server.endpoint(), method)
            .deploy_virtual_machine(&deploy())
            .await
            .expect_err("no answer");
        assert!(
            matches!(&error, CloudError::AnswerLost { command, .. } if command == "deployVirtualMachine"),
            "{method:?}: {error:?}"
        );
        assert!(
            !error.is_retryable(),
            "a repeated deploy may make a second VM"
        );
        assert!(error.may_have_taken_effect());
        assert_eq!(
            server.requests(),
            1,
            "{method:?}: the deploy went out exactly once"
        );
        let message = error.to_string();
        assert!(
            message.starts_with(&format!(
                "deployVirtualMachine: sent to {}, but the answer was lost: HTTP: ",
                server.endpoint()
            )),
            "{message}"
        );

        // The cause is kept as an error, not as text: hyper's "closed before a message".
        let TransportError::Http(hyper) = transport_cause(&error) else {
            panic!("{error:?}");
        };
        assert!(hyper.is_incomplete_message(), "{hyper:?}");
    }
}

#[tokio::test]
async fn a_read_whose_answer_is_lost_is_asked_again() {
    let server = Swallower::start().await;
    let error = client(&server.endpoint(), HttpMethod::Get)
        .list_zones(&ListFilter::default())
        .await
        .expect_err("no answer");
    assert!(matches!(error, CloudError::AnswerLost { .. }), "{error:?}");
    assert!(error.is_retryable_if_read_only());
    assert_eq!(
        server.requests(),
        3,
        "the first try and read_retries = 2 more"
    );
}

#[tokio::test]
async fn a_refused_connection_is_not_sent_and_keeps_the_os_error() {
    // A port that was just free: nothing listens, so the kernel refuses the connection.
    let addr = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.local_addr().expect("local addr")
    };
    let error = client(&format!("http://{addr}/client/api"), HttpMethod::Get)
        .deploy_virtual_machine(&deploy())
        .await
        .expect_err("refused");
    assert!(matches!(error, CloudError::NotSent { .. }), "{error:?}");
    assert!(error.is_retryable(), "the cloud never saw it");
    assert!(!error.may_have_taken_effect());
    assert!(
        error.to_string().starts_with(&format!(
            "deployVirtualMachine: not sent to http://{addr}/client/api: cannot connect: "
        )),
        "{error}"
    );

    let cause = transport_cause(&error);
    assert!(matches!(cause, TransportError::Connect(_)), "{cause:?}");
    let io = cause
        .source()
        .and_then(|io| io.downcast_ref::<std::io::Error>())
        .expect("the io::Error under it");
    assert_eq!(io.kind(), std::io::ErrorKind::ConnectionRefused);
}

#[tokio::test]
async fn a_server_that_never_answers_is_an_answer_lost_at_the_deadline() {
    // Accepts and reads, but keeps the connection open and silent.
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("local addr");
    let silent = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((stream, _)) = listener.accept().await {
            held.push(stream);
        }
    });
    let mut config = ClientConfig::new(format!("http://{addr}/client/api"), "key", "secret");
    config.timeout = Duration::from_millis(300);
    let client = CloudStackClient::new(config).expect("valid");
    let error = client
        .deploy_virtual_machine(&deploy())
        .await
        .expect_err("silence");
    assert!(matches!(error, CloudError::AnswerLost { .. }), "{error:?}");
    assert!(
        matches!(transport_cause(&error), TransportError::Timeout(t) if *t == Duration::from_millis(300)),
        "{error:?}"
    );
    assert!(
        error.to_string().ends_with("no answer within 300ms"),
        "{error}"
    );
    silent.abort();
}

#[tokio::test]
async fn a_connection_not_up_by_the_deadline_is_not_sent() {
    // A listener that never accepts, with its accept queue full: the kernel leaves further
    // connection attempts unanswered.
    let socket =
        socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).expect("a socket");
    socket
        .bind(&SocketAddr::from(([127, 0, 0, 1], 0)).into())
        .expect("bind");
    socket.listen(0).expect("listen");
    let addr = socket
        .local_addr()
        .expect("local addr")
        .as_socket()
        .expect("an IP address");
    let mut queued = Vec::new();
    for _ in 0..4 {
        let attempt = tokio::time::timeout(Duration::from_millis(200), TcpStream::connect(addr));
        match attempt.await {
            Ok(Ok(stream)) => queued.push(stream),
            _ => break,
        }
    }

    let mut config = ClientConfig::new(format!("http://{addr}/client/api"), "key", "secret");
    config.timeout = Duration::from_millis(300);
    let error = CloudStackClient::new(config)
        .expect("valid")
        .deploy_virtual_machine(&deploy())
        .await
        .expect_err("no connection");
    assert!(matches!(error, CloudError::NotSent { .. }), "{error:?}");
    assert!(
        matches!(transport_cause(&error), TransportError::ConnectTimeout(t) if *t == Duration::from_millis(300)),
        "{error:?}"
    );
    assert!(
        error.to_string().ends_with("no connection within 300ms"),
        "{error}"
    );
    drop(queued);
}

#[tokio::test]
async fn a_deploy_the_local_cloud_carried_out_but_did_not_answer_is_found_by_a_listing() {
    let config = LocalCloudConfig::from_toml_str(
        r#"
        address_range = "127.78.3.0/24"
        [[apiuser]]
        username = "admin"
        apikey = "key"
        secretkey = "secret"
        [[zone]]
        name = "z1"
        [[host]]
        name = "h1"
        zone = "z1"
        cpunumber = 2
        cpuspeed = 2000
        memory = 2048
        [[serviceoffering]]
        name = "small"
        cpunumber = 1
        cpuspeed = 1000
        memory = 512
        [[template]]
        name = "web"
        port = 8000
        "#,
    )
    .expect("valid");
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let cloud = LocalCloud::start_on(config.clone(), listener)
        .await
        .expect("starts");
    cloud.inject(&Faults {
        lose_answers: Some(1),
        lose_answers_command: Some("deployVirtualMachine".into()),
        ..Faults::default()
    });
    let client = client(&cloud.endpoint(), HttpMethod::Get);
    let request = DeployVirtualMachine {
        zoneid: config.zones[0].id.clone(),
        templateid: config.templates[0].id.clone(),
        serviceofferingid: config.offerings[0].id.clone(),
        startvm: Some(false),
        ..deploy()
    };
    let error = client
        .deploy_virtual_machine(&request)
        .await
        .expect_err("the answer is lost");
    assert!(matches!(error, CloudError::AnswerLost { .. }), "{error:?}");
    assert!(error.may_have_taken_effect());

    // It did take effect: the group has the VM, once.
    let listed = client
        .list_virtual_machines(&ListVirtualMachines {
            group: Some("web".into()),
            ..ListVirtualMachines::default()
        })
        .await
        .expect("a listing");
    assert_eq!(listed.items.len(), 1);
    assert_eq!(listed.items[0].name, "web-1");
    cloud.shutdown().await;
}
