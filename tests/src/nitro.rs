//! A small client for Ballast's NITRO-like admin API: one HTTP/1.1 request per call, with
//! `X-NITRO-USER`/`X-NITRO-PASS` (or a session cookie), answers parsed as JSON.

use std::net::SocketAddr;

use bytes::Bytes;
use http::{Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use serde_json::Value;
use tokio::net::TcpStream;

/// How requests authenticate.
#[derive(Debug, Clone)]
pub enum Credentials {
    None,
    Password { user: String, password: String },
    Cookie(String),
}

/// An admin API endpoint and the credentials to use with it.
#[derive(Debug, Clone)]
pub struct Nitro {
    pub addr: SocketAddr,
    pub credentials: Credentials,
}

/// A reply: status, parsed JSON body (`Null` if the body was not JSON), and any `Set-Cookie`.
#[derive(Debug, Clone)]
pub struct NitroReply {
    pub status: StatusCode,
    pub body: Value,
    pub set_cookie: Option<String>,
}

impl NitroReply {
    /// The NITRO `errorcode` (0 on success).
    pub fn errorcode(&self) -> i64 {
        self.body["errorcode"].as_i64().unwrap_or(-1)
    }

    pub fn message(&self) -> &str {
        self.body["message"].as_str().unwrap_or("")
    }
}

impl Nitro {
    pub fn new(addr: SocketAddr, user: &str, password: &str) -> Nitro {
        Nitro {
            addr,
            credentials: Credentials::Password {
                user: user.to_owned(),
                password: password.to_owned(),
            },
        }
    }

    pub fn with(&self, credentials: Credentials) -> Nitro {
        Nitro {
            addr: self.addr,
            credentials,
        }
    }

    pub async fn get(&self, path: &str) -> NitroReply {
        self.call(Method::GET, path, None).await
    }

    pub async fn post(&self, path: &str, body: Value) -> NitroReply {
        self.call(Method::POST, path, Some(body.to_string().into_bytes()))
            .await
    }

    pub async fn put(&self, path: &str, body: Value) -> NitroReply {
        self.call(Method::PUT, path, Some(body.to_string().into_bytes()))
            .await
    }

    pub async fn delete(&self, path: &str) -> NitroReply {
        self.call(Method::DELETE, path, None).await
    }

    /// Any method with a raw body (for malformed-input tests). `path` is after `/nitro/v1/`.
    pub async fn call(&self, method: Method, path: &str, body: Option<Vec<u8>>) -> NitroReply {
        let stream = TcpStream::connect(self.addr)
            .await
            .expect("admin API accepts connections");
        let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .expect("HTTP/1.1 handshake with the admin API");
        tokio::spawn(connection);
        let mut request = Request::builder()
            .method(method)
            .uri(format!("/nitro/v1/{path}"))
            .header("host", self.addr.to_string())
            .header("content-type", "application/json");
        match &self.credentials {
            Credentials::None => {}
            Credentials::Password { user, password } => {
                request = request
                    .header("x-nitro-user", user)
                    .header("x-nitro-pass", password);
            }
            Credentials::Cookie(token) => {
                request = request.header("cookie", format!("NITRO_AUTH_TOKEN={token}"));
            }
        }
        let request = request
            .body(Full::new(Bytes::from(body.unwrap_or_default())))
            .expect("a valid request");
        let response = sender
            .send_request(request)
            .await
            .expect("the admin API answers");
        let status = response.status();
        let set_cookie = response
            .headers()
            .get("set-cookie")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let bytes = response
            .into_body()
            .collect()
            .await
            .expect("a whole body")
            .to_bytes();
        let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        NitroReply {
            status,
            body,
            set_cookie,
        }
    }
}
