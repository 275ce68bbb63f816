//! A small client of Ballast's admin API (NITRO-like, `docs/admin-api.md`) for the benches: it
//! authenticates as an operator would, with `X-NITRO-USER`/`X-NITRO-PASS` on every request,
//! sends JSON, and turns a non-2xx reply into an error carrying the reply's message.

use std::net::SocketAddr;

use anyhow::{Context, Result, bail};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Method, Request};
use hyper_util::rt::TokioIo;
use serde_json::Value;
use tokio::net::TcpStream;
use tokio::time::Duration;

/// A call with no answer by then is an error (a change to a large group can take a while).
const ANSWER_WITHIN: Duration = Duration::from_secs(60);

/// What `stat/servicegroup/<name>` says of one group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GroupStat {
    pub members: usize,
    pub up: usize,
    /// Summed over members; only with `statbindings=yes`.
    pub connect_failures: u64,
}

/// A NITRO client that authenticates every request with `X-NITRO-USER`/`X-NITRO-PASS`, over a
/// new connection each time, as `curl` does.
#[derive(Debug)]
pub struct AdminClient {
    addr: SocketAddr,
    user: String,
    password: String,
}

impl AdminClient {
    pub fn new(addr: SocketAddr, user: &str, password: &str) -> AdminClient {
        AdminClient {
            addr,
            user: user.to_string(),
            password: password.to_string(),
        }
    }

    /// One servicegroup's figures; with `bindings`, its members' too.
    pub async fn group_stat(&self, group: &str, bindings: bool) -> Result<GroupStat> {
        let query = if bindings { "?statbindings=yes" } else { "" };
        let reply = self
            .call(
                Method::GET,
                &format!("stat/servicegroup/{group}{query}"),
                None,
            )
            .await?;
        parse_group_stat(&reply)
    }

    /// `method /nitro/v1/{path}`; a non-2xx status is an error with the reply's message.
    pub async fn call(&self, method: Method, path: &str, body: Option<&Value>) -> Result<Value> {
        let what = format!("{method} /nitro/v1/{path}");
        tokio::time::timeout(ANSWER_WITHIN, self.exchange(method, path, body))
            .await
            .with_context(|| format!("{what}: no answer within {ANSWER_WITHIN:?}"))?
            .with_context(|| what)
    }

    async fn exchange(&self, method: Method, path: &str, body: Option<&Value>) -> Result<Value> {
        let stream = TcpStream::connect(self.addr)
            .await
            .with_context(|| format!("connecting to the admin API at {}", self.addr))?;
        let (mut sender, connection) =
            hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
        let connection = tokio::spawn(connection);
        let body = body.map_or(Bytes::new(), |b| Bytes::from(b.to_string()));
        let request = Request::builder()
            .method(method)
            .uri(format!("/nitro/v1/{path}"))
            .header("host", self.addr.to_string())
            .header("content-type", "application/json")
            .header("x-nitro-user", &self.user)
            .header("x-nitro-pass", &self.password)
            .body(Full::new(body))?;
        let response = sender.send_request(request).await?;
        let status = response.status();
        let bytes = response.into_body().collect().await?.to_bytes();
        drop(sender);
        connection.abort();
        let reply: Value = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).with_context(|| {
                format!(
                    "status {status}, not JSON: {}",
                    String::from_utf8_lossy(&bytes)
                )
            })?
        };
        if !status.is_success() {
            let message = reply["message"].as_str().unwrap_or("no message");
            bail!("status {status}: {message}");
        }
        Ok(reply)
    }
}

/// The group's figures from a `stat/servicegroup/<name>` reply.
fn parse_group_stat(reply: &Value) -> Result<GroupStat> {
    let group = reply["servicegroup"]
        .as_array()
        .and_then(|groups| groups.first())
        .with_context(|| format!("no servicegroup in the stat reply: {reply}"))?;
    let count = |key: &str| {
        group[key]
            .as_u64()
            .and_then(|n| usize::try_from(n).ok())
            .with_context(|| format!("stat servicegroup: `{key}` is not a count: {}", group[key]))
    };
    let connect_failures = group["servicegroupmember"].as_array().map_or(0, |members| {
        members
            .iter()
            .map(|m| m["connectfailures"].as_u64().unwrap_or(0))
            .sum()
    });
    Ok(GroupStat {
        members: count("members")?,
        up: count("upmembers")?,
        connect_failures,
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn group_stat_is_read_from_the_reply() {
        let reply = json!({"errorcode": 0, "servicegroup": [{
            "servicegroupname": "reconfig", "members": 3, "upmembers": 2,
            "servicegroupmember": [{"connectfailures": 1}, {"connectfailures": 4}, {}],
        }]});
        assert_eq!(
            parse_group_stat(&reply).unwrap(),
            GroupStat {
                members: 3,
                up: 2,
                connect_failures: 5
            }
        );
        assert!(parse_group_stat(&json!({"servicegroup": []})).is_err());
        assert!(parse_group_stat(&json!({"servicegroup": [{"members": "x"}]})).is_err());
    }
}
