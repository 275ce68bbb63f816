//! The HTTP side: `GET|POST /client/api` (CloudStack's API, JSON answers) and
//! `/localcloud/v1/...` (fault injection and state, see [`super::admin`]; admin key pairs
//! only, see [`super::admin_auth`]).
//!
//! An API request goes: injected delay / dropped connection → parameters from the query string
//! and a form body (first value of a name wins) → [`super::auth`] → injected API error →
//! [`super::commands::dispatch`] → an injected lost answer, or `{"<command>response": ...}`
//! with the error code as HTTP status.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode, header};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tokio::net::TcpListener;

use super::admin_auth::{self, Denied};
use super::api_error::ApiError;
use super::args::Args;
use super::state::Shared;
use super::{admin, auth, commands};
use crate::dates;
use crate::params::parse_form;

/// Request bodies (form POSTs with user data, admin JSON) larger than this are refused.
const MAX_BODY: usize = 4 * 1024 * 1024;
pub const API_PATH: &str = "/client/api";

/// Accepts connections until shutdown.
pub async fn serve(shared: Arc<Shared>, listener: TcpListener) {
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = shared.shutdown.cancelled() => return,
        };
        let stream = match accepted {
            Ok((stream, _)) => stream,
            Err(error) => {
                tracing::warn!(%error, "local cloud: accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let shared = shared.clone();
        tokio::spawn(async move {
            let handler = shared.clone();
            let service = service_fn(move |request| handle(handler.clone(), request));
            let connection = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service);
            tokio::select! {
                _ = connection => {}
                () = shared.shutdown.cancelled() => {}
            }
        });
    }
}

/// An `Err` closes the connection without an answer (an injected dropped connection).
async fn handle(
    shared: Arc<Shared>,
    request: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, std::io::Error> {
    let path = request.uri().path().to_string();
    if path == API_PATH || path == format!("{API_PATH}/") {
        return api(shared, request).await;
    }
    if let Some(rest) = path.strip_prefix("/localcloud/v1/") {
        let authorization = request.headers().get(header::AUTHORIZATION);
        if let Err(denied) = admin_auth::authorize(&shared.config, authorization) {
            return Ok(refused(&denied));
        }
        let method = request.method().clone();
        let rest = rest.to_string();
        let body = match read_body(request).await {
            Ok(body) => body,
            Err(response) => return Ok(response),
        };
        let (status, value) = admin::handle(&shared, &method, &rest, &body);
        return Ok(json_response(status, &value));
    }
    Ok(json_response(
        StatusCode::NOT_FOUND,
        &json!({"error": format!("nothing at {path}; the API is at {API_PATH}")}),
    ))
}

async fn api(
    shared: Arc<Shared>,
    request: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, std::io::Error> {
    let (drop_connection, delay) = {
        let mut state = shared.lock();
        (
            state.faults.take_drop(),
            state.faults.api_delay_ms.unwrap_or(0),
        )
    };
    if delay > 0 {
        tokio::time::sleep(Duration::from_millis(delay)).await;
    }
    if drop_connection {
        tracing::info!("fault injection: dropping an API connection");
        return Err(std::io::Error::other("injected fault: connection dropped"));
    }
    let method = request.method().clone();
    let is_form = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    let query = request.uri().query().unwrap_or("").to_string();
    if method != Method::GET && method != Method::POST {
        let error = ApiError::new(405, None, format!("method {method} is not allowed"));
        return Ok(envelope("errorresponse", Err(error)));
    }
    let body = match read_body(request).await {
        Ok(body) => body,
        Err(response) => return Ok(response),
    };
    let mut pairs = parse_form(&query);
    if method == Method::POST && is_form {
        pairs.extend(parse_form(&String::from_utf8_lossy(&body)));
    }
    let pairs = first_values(pairs);
    let command = pairs
        .iter()
        .find(|(name, _)| name == "command")
        .map(|(_, value)| value.clone());
    let response_name = command.as_deref().map_or_else(
        || "errorresponse".to_string(),
        |c| format!("{}response", c.to_lowercase()),
    );
    let outcome = run(&shared, command.as_deref(), pairs);
    if let (Ok(_), Some(command)) = (&outcome, command.as_deref())
        && shared.lock().faults.take_lost_answer(command)
    {
        tracing::info!(
            command,
            "fault injection: the call was carried out, its answer is lost"
        );
        return Err(std::io::Error::other("injected fault: answer lost"));
    }
    if let Err(error) = &outcome {
        tracing::debug!(
            command,
            errorcode = error.errorcode,
            error = error.errortext,
            "API error"
        );
    }
    Ok(envelope(&response_name, outcome))
}

fn run(
    shared: &Arc<Shared>,
    command: Option<&str>,
    pairs: Vec<(String, String)>,
) -> Result<Value, ApiError> {
    let now = dates::unix_seconds(SystemTime::now());
    let user = auth::authenticate(&shared.config, &pairs, now)?;
    let command = command.ok_or_else(ApiError::no_command)?;
    let injected = shared.lock().faults.take_api_error(command);
    if let Some(code) = injected {
        tracing::info!(command, code, "fault injection: failing an API call");
        return Err(ApiError::injected(code));
    }
    if !commands::COMMANDS.contains(&command) {
        return Err(ApiError::unsupported(command));
    }
    commands::dispatch(shared, user, &Args::new(command, pairs))
}

fn envelope(response_name: &str, outcome: Result<Value, ApiError>) -> Response<Full<Bytes>> {
    let (status, inner, description) = match outcome {
        Ok(value) => (StatusCode::OK, value, None),
        Err(error) => {
            let status =
                StatusCode::from_u16(error.errorcode).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            (status, error.body(), Some(error.errortext))
        }
    };
    let mut body = serde_json::Map::new();
    body.insert(response_name.to_string(), inner);
    let mut response = json_response(status, &Value::Object(body));
    if let Some(text) = description.and_then(|t| http::HeaderValue::from_str(&t).ok()) {
        response.headers_mut().insert("x-description", text);
    }
    response
}

/// 401 with a Basic challenge (no or wrong credentials), or 403 (not an admin).
fn refused(denied: &Denied) -> Response<Full<Bytes>> {
    tracing::info!(reason = denied.message(), "fault endpoint: request refused");
    let status = match denied {
        Denied::Unauthenticated => StatusCode::UNAUTHORIZED,
        Denied::NotAdmin { .. } => StatusCode::FORBIDDEN,
    };
    let mut response = json_response(status, &json!({"error": denied.message()}));
    if status == StatusCode::UNAUTHORIZED {
        response.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            http::HeaderValue::from_static("Basic realm=\"localcloud\""),
        );
    }
    response
}

fn json_response(status: StatusCode, value: &Value) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(value.to_string())));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json; charset=UTF-8"),
    );
    response
}

async fn read_body(request: Request<Incoming>) -> Result<Bytes, Response<Full<Bytes>>> {
    match Limited::new(request.into_body(), MAX_BODY).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(_) => Err(json_response(
            StatusCode::PAYLOAD_TOO_LARGE,
            &json!({"error": format!("request body over {MAX_BODY} bytes or unreadable")}),
        )),
    }
}

/// Keeps the first value of each name (CloudStack's rule for repeated parameters).
fn first_values(pairs: Vec<(String, String)>) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::with_capacity(pairs.len());
    for (name, value) in pairs {
        if !out.iter().any(|(n, _)| *n == name) {
            out.push((name, value));
        }
    }
    out
}
