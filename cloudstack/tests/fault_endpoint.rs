//! The local cloud's fault endpoint (`/localcloud/v1/...`) over real HTTP: it crashes VMs and
//! fails hosts, so it answers only an admin user's key pair (HTTP Basic); no credentials or a
//! wrong secret get 401 with a Basic challenge, a `user`-role key 403, and neither changes
//! anything. The credentials are checked before the body is read.

use std::net::SocketAddr;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use bytes::Bytes;
use http::{Request, StatusCode, header};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use cloudstack::localcloud::{LocalCloud, LocalCloudConfig};

const CONFIG: &str = r#"
listen = "127.0.0.1:0"
address_range = "127.78.1.0/24"

[[apiuser]]
username = "admin"
apikey = "admin-key"
secretkey = "admin-secret"

[[apiuser]]
username = "alice"
apikey = "user-key"
secretkey = "user-secret"
role = "user"

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
"#;

async fn start() -> LocalCloud {
    let config = LocalCloudConfig::from_toml_str(CONFIG).expect("valid config");
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    LocalCloud::start_on(config, listener)
        .await
        .expect("the local cloud starts")
}

struct Answer {
    status: StatusCode,
    challenge: Option<String>,
    body: Value,
}

/// One request with hyper's HTTP/1.1 client; `credentials` go as `Authorization: Basic`.
async fn call(
    cloud: SocketAddr,
    method: &str,
    path: &str,
    credentials: Option<(&str, &str)>,
    body: &str,
) -> Answer {
    let stream = TcpStream::connect(cloud).await.expect("connect");
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .expect("handshake");
    let driver = tokio::spawn(connection);
    let mut request = Request::builder()
        .method(method)
        .uri(format!("/localcloud/v1/{path}"))
        .header(header::HOST, cloud.to_string())
        .header(header::CONTENT_TYPE, "application/json");
    if let Some((key, secret)) = credentials {
        let encoded = STANDARD.encode(format!("{key}:{secret}"));
        request = request.header(header::AUTHORIZATION, format!("Basic {encoded}"));
    }
    let request = request
        .body(Full::new(Bytes::from(body.to_owned())))
        .expect("a valid request");
    let response = sender.send_request(request).await.expect("an answer");
    let status = response.status();
    let challenge = response
        .headers()
        .get(header::WWW_AUTHENTICATE)
        .map(|v| v.to_str().expect("ASCII").to_owned());
    let bytes = response
        .into_body()
        .collect()
        .await
        .expect("the body")
        .to_bytes();
    driver.abort();
    let body = serde_json::from_slice(&bytes).expect("a JSON answer");
    Answer {
        status,
        challenge,
        body,
    }
}

const ADMIN: Option<(&str, &str)> = Some(("admin-key", "admin-secret"));
const USER: Option<(&str, &str)> = Some(("user-key", "user-secret"));

#[tokio::test]
async fn without_an_admin_key_pair_the_fault_endpoint_refuses_and_changes_nothing() {
    let cloud = start().await;
    let addr = cloud.local_addr();
    let arm = r#"{"fail_deploys": 3}"#;

    for (who, credentials) in [
        ("no credentials", None),
        ("a wrong secret", Some(("admin-key", "user-secret"))),
        ("an unknown key", Some(("nobody", "admin-secret"))),
    ] {
        for (method, path, body) in [
            ("POST", "faults", arm),
            ("GET", "state", ""),
            ("DELETE", "faults", ""),
            ("POST", "hosts/h1/fail", ""),
        ] {
            let answer = call(addr, method, path, credentials, body).await;
            assert_eq!(
                answer.status,
                StatusCode::UNAUTHORIZED,
                "{who}: {method} {path}"
            );
            assert_eq!(
                answer.challenge.as_deref(),
                Some("Basic realm=\"localcloud\"")
            );
            assert!(
                answer.body["error"]
                    .as_str()
                    .is_some_and(|e| e.contains("admin user's API key and secret key")),
                "{}",
                answer.body
            );
        }
    }

    let answer = call(addr, "POST", "faults", USER, arm).await;
    assert_eq!(answer.status, StatusCode::FORBIDDEN);
    assert_eq!(
        answer.body["error"],
        "user \"alice\" is not an admin: only admin users may use the fault endpoint"
    );
    let answer = call(addr, "POST", "hosts/h1/fail", USER, "").await;
    assert_eq!(answer.status, StatusCode::FORBIDDEN);

    // Nothing was armed and the host is still Up.
    let state = call(addr, "GET", "state", ADMIN, "").await;
    assert_eq!(state.status, StatusCode::OK);
    assert_eq!(state.body["faults"], serde_json::json!({}));
    assert_eq!(state.body["hosts"][0]["state"], "Up");
    cloud.shutdown().await;
}

#[tokio::test]
async fn an_admin_key_pair_arms_faults_and_fails_hosts() {
    let cloud = start().await;
    let addr = cloud.local_addr();
    let answer = call(addr, "POST", "faults", ADMIN, r#"{"fail_deploys": 3}"#).await;
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(answer.body["fail_deploys"], 3);

    let answer = call(addr, "POST", "hosts/h1/fail", ADMIN, "").await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    let state = call(addr, "GET", "state", ADMIN, "").await;
    assert_eq!(state.body["hosts"][0]["state"], "Down");
    assert_eq!(state.body["faults"]["fail_deploys"], 3);

    let answer = call(addr, "DELETE", "faults", ADMIN, "").await;
    assert_eq!(answer.body, serde_json::json!({}));
    let answer = call(addr, "POST", "vms/no-such-vm/crash", ADMIN, "").await;
    assert_eq!(answer.status, StatusCode::NOT_FOUND);
    cloud.shutdown().await;
}

#[tokio::test]
async fn credentials_are_checked_before_the_body_is_read() {
    let cloud = start().await;
    // A request that announces 10 MB and sends none of it: the refusal comes at once.
    let mut stream = TcpStream::connect(cloud.local_addr())
        .await
        .expect("connect");
    let head = "POST /localcloud/v1/faults HTTP/1.1\r\nHost: localcloud\r\n\
                Content-Type: application/json\r\nContent-Length: 10000000\r\n\r\n";
    stream.write_all(head.as_bytes()).await.expect("write");
    let mut answer = vec![0_u8; 1024];
    let n = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut answer))
        .await
        .expect("an answer without the body")
        .expect("read");
    let answer = String::from_utf8_lossy(&answer[..n]);
    assert!(answer.starts_with("HTTP/1.1 401 "), "{answer}");
    cloud.shutdown().await;
}
