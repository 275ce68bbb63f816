//! The NITRO-like admin API (`[admin] listen`): change Ballast while it carries traffic, the way
//! a NetScaler is driven through NITRO.
//!
//! - [`request`]: `/nitro/v1/<config|stat>/<resource>[/<name>]`, query options, JSON bodies.
//! - [`auth`]: `X-NITRO-USER`/`X-NITRO-PASS` or a `NITRO_AUTH_TOKEN` session.
//! - [`lockout`]: failed logins lock the client's address out for a while.
//! - [`resources`]: CRUD on `lbvserver`, `servicegroup`, `lbmonitor`, `sslcertkey`,
//!   `lbmetrictable`, `autoscaleprofile`, `autoscalegroup`.
//! - [`bindings`]: the three `*_binding` resources.
//! - [`persistence`]: `config/persistentsessions` (list, `?action=clear`).
//! - [`stat`]: `stat/lbvserver`, `stat/servicegroup`, `stat/autoscalegroup`.
//! - [`autoscale`]: what the API asks of the autoscale engine (events, live figures, resume).
//! - [`reply`]: NITRO envelopes and error codes.
//!
//! Every change goes through the one config writer as an edit of the running config; the edited
//! config is validated whole before it is applied, so a bad request changes nothing.
//!
//! A request is authenticated from its headers before its body is read; a body is read only up
//! to its size limit (`413` past it) and refused when nested too deep (`400`). Secrets are never
//! returned ([`resources`] leaves them out of every GET).

pub mod auth;
pub mod autoscale;
pub mod bindings;
pub mod content_switch;
pub mod lockout;
pub mod persistence;
pub mod reply;
pub mod request;
pub mod resources;
pub mod settings;
pub mod stat;

use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use bytes::Bytes;
use http::{HeaderValue, Method, Request, Response, StatusCode, header};
use http_body::Body as _;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use self::auth::Auth;
use self::autoscale::AutoscaleView;
use self::reply::{NitroError, code, done};
use self::request::{Area, Target};
use self::resources::ResourceOps;
use crate::error::is_local_exhaustion;
use crate::limits::AcceptBackoff;
use crate::snapshot::Snapshot;
use crate::writer::ConfigWriter;
use crate::writer::members::{self, MemberChange};

type Reply = Result<Response<Full<Bytes>>, NitroError>;

/// Everything the admin API needs.
#[derive(Debug)]
pub struct AdminApi {
    writer: ConfigWriter,
    snapshot: Arc<ArcSwap<Snapshot>>,
    auth: Auth,
    save_path: PathBuf,
    rates: Arc<stat::Rates>,
    /// The autoscale engine, when one runs.
    autoscale: Option<Arc<dyn AutoscaleView>>,
}

impl AdminApi {
    /// Serves `config/autoscaleevent`, the engine's figures in `stat/autoscalegroup`, and
    /// `autoscalegroup?action=enable` lifting a launch suspension, from `engine`.
    pub fn with_autoscale(mut self, engine: Arc<dyn AutoscaleView>) -> AdminApi {
        self.autoscale = Some(engine);
        self
    }

    pub fn new(
        writer: ConfigWriter,
        snapshot: Arc<ArcSwap<Snapshot>>,
        auth: Auth,
        save_path: PathBuf,
    ) -> AdminApi {
        let rates = Arc::new(stat::Rates::default());
        tokio::spawn(rates.clone().run(snapshot.clone()));
        AdminApi {
            writer,
            snapshot,
            auth,
            save_path,
            rates,
            autoscale: None,
        }
    }
}

/// Serves the admin API on `listener` until `shutdown`.
pub async fn serve(listener: TcpListener, api: Arc<AdminApi>, shutdown: CancellationToken) {
    let mut backoff = AcceptBackoff::new("admin API".into());
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = shutdown.cancelled() => return,
        };
        let (stream, peer) = match accepted {
            Ok(accepted) => {
                backoff.recovered();
                accepted
            }
            // Out of descriptors: pause instead of spinning on the same error.
            Err(error) if is_local_exhaustion(&error) => {
                tokio::time::sleep(backoff.failed(&error)).await;
                continue;
            }
            Err(_) => continue,
        };
        let api = api.clone();
        tokio::spawn(async move {
            let service = service_fn(move |request| {
                let api = api.clone();
                async move { Ok::<_, Infallible>(handle(&api, request, peer).await) }
            });
            let _ = auto::Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

async fn handle(
    api: &AdminApi,
    request: Request<Incoming>,
    peer: SocketAddr,
) -> Response<Full<Bytes>> {
    let (head, mut body) = request.into_parts();
    let response = match dispatch(api, &head, &mut body, peer.ip()).await {
        Ok(response) => response,
        Err(error) => error.into_response(),
    };
    if !body.is_end_stream() {
        // Answered before its body was read (401, 413): read the rest off the wire, so the
        // client gets its answer rather than a connection reset.
        tokio::spawn(request::linger(body));
    }
    let (method, path) = (head.method, head.uri.path());
    if method != Method::GET {
        tracing::info!(client = %peer, %method, path, status = response.status().as_u16(), "admin request");
    }
    response
}

async fn dispatch(
    api: &AdminApi,
    head: &http::request::Parts,
    body: &mut Incoming,
    peer: IpAddr,
) -> Reply {
    let target = Target::parse(head.uri.path(), head.uri.query())?;
    let (method, headers) = (&head.method, &head.headers);

    if target.area == Area::Config && target.resource == "login" {
        if *method != Method::POST {
            return Err(NitroError::method(
                "log in with POST /nitro/v1/config/login",
            ));
        }
        let body = request::json_body(body, request::MAX_LOGIN_BODY).await?;
        let token = api.auth.login(&body, peer)?;
        let mut response = done(StatusCode::CREATED, Some(("sessionid", json!(token))));
        let cookie = format!(
            "{}={token}; Path=/nitro/v1; HttpOnly; SameSite=Strict; Max-Age={}",
            auth::COOKIE,
            api.auth.session_timeout().as_secs()
        );
        if let Ok(value) = HeaderValue::from_str(&cookie) {
            response.headers_mut().insert(header::SET_COOKIE, value);
        }
        return Ok(response);
    }
    api.auth.check(headers, peer)?;
    let body = request::json_body(body, request::MAX_BODY).await?;

    match target.area {
        Area::Stat => stat(api, method, &target),
        Area::Config => config(api, method, &target, body, headers).await,
    }
}

fn stat(api: &AdminApi, method: &Method, target: &Target) -> Reply {
    if *method != Method::GET {
        return Err(NitroError::method("statistics are read with GET"));
    }
    let snapshot = api.snapshot.load();
    let name = target.name.as_deref();
    let items = match target.resource.as_str() {
        "lbvserver" => stat::lbvservers(&snapshot, &api.rates, name)?,
        "servicegroup" => stat::servicegroups(&snapshot, name, target.statbindings)?,
        "csvserver" => content_switch::csvservers(&snapshot, &api.rates, name)?,
        "cspolicy" => content_switch::cspolicies(&snapshot, name)?,
        "autoscalegroup" => stat::autoscalegroups(&snapshot, name, api.autoscale.as_deref())?,
        other => {
            return Err(NitroError::unknown(format!(
                "no statistics for `{other}`; available: lbvserver, servicegroup, csvserver, cspolicy, autoscalegroup"
            )));
        }
    };
    Ok(done(
        StatusCode::OK,
        Some((target.resource.as_str(), items)),
    ))
}

async fn config(
    api: &AdminApi,
    method: &Method,
    target: &Target,
    body: Value,
    headers: &http::HeaderMap,
) -> Reply {
    let resource = target.resource.as_str();
    match resource {
        "logout" => {
            api.auth.logout(headers);
            return Ok(done(StatusCode::OK, None));
        }
        "nsconfig" => return save(api, method, target).await,
        persistence::NAME => return persistence::handle(api, method, target, &body),
        "autoscaleevent" => {
            if *method != Method::GET {
                return Err(NitroError::method("autoscaleevent is read-only"));
            }
            let events = api
                .autoscale
                .as_ref()
                .map(|a| a.events())
                .unwrap_or_default();
            let events = filtered(events, &target.filter);
            return Ok(done(
                StatusCode::OK,
                Some(("autoscaleevent", Value::Array(events))),
            ));
        }
        _ => {}
    }
    if bindings::NAMES.contains(&resource) {
        return binding(api, method, target, body).await;
    }
    if settings::NAMES.contains(&resource) {
        return setting(api, method, target, body).await;
    }
    let Some(ops) = resources::find(resource) else {
        return Err(NitroError::unknown(format!(
            "no resource named `{resource}`; available: lbvserver, servicegroup, lbmonitor, sslcertkey, \
             csvserver, cspolicy, lbmetrictable, autoscaleprofile, autoscalegroup, autoscaleevent, persistentsessions, {}, {}, nsconfig, login, logout",
            bindings::NAMES.join(", "),
            settings::NAMES.join(", ")
        )));
    };
    match (method, target.action.as_deref()) {
        (&Method::GET, None) => {
            let file = api.snapshot.load().config.to_file();
            let items = ops.get(&file, target.name.as_deref())?;
            let items = filtered(items, &target.filter);
            Ok(done(StatusCode::OK, Some((resource, Value::Array(items)))))
        }
        (&Method::POST, None) => {
            let objects = request::objects(&body, resource)?;
            api.writer
                .edit(move |file| {
                    objects
                        .into_iter()
                        .try_for_each(|object| ops.add(file, object).map(drop))
                })
                .await?;
            Ok(done(StatusCode::CREATED, None))
        }
        (&Method::PUT, None) => {
            let objects = request::objects(&body, resource)?;
            api.writer
                .edit(move |file| {
                    objects
                        .into_iter()
                        .try_for_each(|object| ops.update(file, object))
                })
                .await?;
            Ok(done(StatusCode::OK, None))
        }
        (&Method::DELETE, None) => {
            let name = target.name.clone().ok_or_else(|| {
                NitroError::invalid(format!(
                    "DELETE needs a name: /nitro/v1/config/{resource}/<name>"
                ))
            })?;
            api.writer.edit(move |file| ops.delete(file, &name)).await?;
            Ok(done(StatusCode::OK, None))
        }
        (&Method::POST, Some(action @ ("enable" | "disable"))) => {
            let enable = action == "enable";
            let objects = request::objects(&body, resource)?;
            match resource {
                "lbvserver" => set_vserver_state(api, objects, enable).await?,
                "servicegroup" => set_member_state(api, objects, enable).await?,
                "autoscalegroup" => set_autoscale_state(api, objects, enable).await?,
                _ => {
                    return Err(NitroError::invalid(format!(
                        "{resource} has no action `{action}`"
                    )));
                }
            }
            Ok(done(StatusCode::OK, None))
        }
        (_, Some(action)) => Err(NitroError::invalid(format!(
            "{resource} has no action `{action}`"
        ))),
        (method, None) => Err(NitroError::method(format!(
            "{method} is not supported on {resource}"
        ))),
    }
}

/// A section that exists once (`accesslog`): GET, PUT, DELETE.
async fn setting(api: &AdminApi, method: &Method, target: &Target, body: Value) -> Reply {
    let resource = target.resource.as_str();
    if let Some(action) = &target.action {
        return Err(NitroError::invalid(format!(
            "{resource} has no action `{action}`"
        )));
    }
    match *method {
        Method::GET => {
            let file = api.snapshot.load().config.to_file();
            Ok(done(StatusCode::OK, Some((resource, settings::get(&file)))))
        }
        Method::PUT => {
            let changes = request::objects(&body, resource)?;
            let [changes] = <[Value; 1]>::try_from(changes).map_err(|_| {
                NitroError::invalid(format!("{resource} is one object, not a list"))
            })?;
            api.writer
                .edit(move |file| settings::update(file, changes))
                .await?;
            Ok(done(StatusCode::OK, None))
        }
        Method::DELETE => {
            api.writer
                .edit(|file| {
                    settings::delete(file);
                    Ok(())
                })
                .await?;
            Ok(done(StatusCode::OK, None))
        }
        ref method => Err(NitroError::method(format!(
            "{method} is not supported on {resource}: GET, PUT or DELETE"
        ))),
    }
}

async fn binding(api: &AdminApi, method: &Method, target: &Target, body: Value) -> Reply {
    let resource = target.resource.clone();
    match *method {
        Method::GET => {
            let snapshot = api.snapshot.load();
            let file = snapshot.config.to_file();
            let items = bindings::get(&file, &snapshot, &resource, target.name.as_deref())?;
            Ok(done(
                StatusCode::OK,
                Some((
                    resource.as_str(),
                    Value::Array(filtered(items, &target.filter)),
                )),
            ))
        }
        Method::PUT | Method::POST => {
            let objects = request::objects(&body, &resource)?;
            let created = api
                .writer
                .edit(move |file| {
                    let mut created = false;
                    for object in objects {
                        created |= bindings::add(file, &resource, object)?;
                    }
                    Ok(created)
                })
                .await?;
            Ok(done(
                if created {
                    StatusCode::CREATED
                } else {
                    StatusCode::OK
                },
                None,
            ))
        }
        Method::DELETE => {
            let target = target.clone();
            api.writer
                .edit(move |file| bindings::delete(file, &target))
                .await?;
            Ok(done(StatusCode::OK, None))
        }
        _ => Err(NitroError::method(format!(
            "{method} is not supported on {resource}"
        ))),
    }
}

/// `POST lbvserver?action=enable|disable` with `{"lbvserver": {"name": …}}`.
async fn set_vserver_state(
    api: &AdminApi,
    objects: Vec<Value>,
    enable: bool,
) -> Result<(), NitroError> {
    let names = named(&objects, "lbvserver")?;
    set_state(api, resources::LBVSERVER_OPS, names.clone(), enable).await?;
    if enable {
        // A vserver out of service after a failover (`disableprimaryondown`) serves again.
        let snapshot = api.snapshot.load();
        for plan in names.iter().filter_map(|name| snapshot.vserver(name)) {
            plan.stats
                .disabled_on_down
                .store(false, std::sync::atomic::Ordering::Relaxed);
        }
    }
    Ok(())
}

/// `POST autoscalegroup?action=enable|disable` with `{"autoscalegroup": {"name": …}}`.
/// Disabled: the engine takes no decisions and the VMs stay. Enabling also lifts a launch
/// suspension (after failed launches), even when the group was enabled already.
async fn set_autoscale_state(
    api: &AdminApi,
    objects: Vec<Value>,
    enable: bool,
) -> Result<(), NitroError> {
    let names = named(&objects, "autoscalegroup")?;
    set_state(api, &resources::AUTOSCALEGROUP, names.clone(), enable).await?;
    if enable && let Some(engine) = &api.autoscale {
        for name in &names {
            engine.resume(name);
        }
    }
    Ok(())
}

/// The `name` of every object of an `?action=` body.
fn named(objects: &[Value], resource: &str) -> Result<Vec<String>, NitroError> {
    objects
        .iter()
        .map(|o| o.get("name").and_then(Value::as_str).map(str::to_owned))
        .collect::<Option<Vec<String>>>()
        .ok_or_else(|| NitroError::invalid(format!("{resource}: the body must give its `name`")))
}

/// Sets `state` (`ENABLED` or `DISABLED`) on the named objects, in one edit.
async fn set_state(
    api: &AdminApi,
    ops: &'static dyn ResourceOps,
    names: Vec<String>,
    enable: bool,
) -> Result<(), NitroError> {
    let state = if enable { "ENABLED" } else { "DISABLED" };
    api.writer
        .edit(move |file| {
            names
                .iter()
                .try_for_each(|name| ops.modify(file, name, &|v| v["state"] = json!(state)))
        })
        .await?;
    Ok(())
}

/// `POST servicegroup?action=enable|disable` with `{"servicegroup": {"servicegroupname": …,
/// "ip"|"servername": …, "port": …, "graceful": "YES", "delay": N}}`: one member, or every
/// member of the group when no `ip` is given. Disabling drains: in-flight requests always
/// finish (`graceful` is accepted; Ballast never cuts a request short). `delay` (seconds) ends
/// the drain's upgraded connections (WebSocket) that are still open N seconds later.
async fn set_member_state(
    api: &AdminApi,
    objects: Vec<Value>,
    enable: bool,
) -> Result<(), NitroError> {
    let mut changes = Vec::new();
    let mut delays = Vec::new();
    for object in &objects {
        let group = object
            .get("servicegroupname")
            .and_then(Value::as_str)
            .ok_or_else(|| {
                NitroError::invalid(
                    "servicegroup: the body must name the group in `servicegroupname`",
                )
            })?;
        let ip = object
            .get("ip")
            .or(object.get("servername"))
            .and_then(Value::as_str);
        let port = match object.get("port") {
            None => None,
            Some(Value::Number(n)) => n.as_i64(),
            Some(Value::String(s)) => s.parse().ok(),
            Some(_) => None,
        };
        let member = match (ip, port) {
            (None, None) => None,
            (Some(ip), Some(port)) => {
                let ip: IpAddr = ip.parse().map_err(|_| {
                    NitroError::invalid(format!(
                        "servicegroup.ip: `{ip}` is not an IPv4 or IPv6 address"
                    ))
                })?;
                let port = u16::try_from(port).map_err(|_| {
                    NitroError::invalid(format!(
                        "servicegroup.port: expected 1..=65535, got {port}"
                    ))
                })?;
                Some(SocketAddr::new(ip, port))
            }
            _ => {
                return Err(NitroError::invalid(
                    "servicegroup: give both `ip` (or `servername`) and `port`, or neither",
                ));
            }
        };
        for key in object.as_object().into_iter().flat_map(|o| o.keys()) {
            if ![
                "servicegroupname",
                "ip",
                "servername",
                "port",
                "graceful",
                "delay",
            ]
            .contains(&key.as_str())
            {
                return Err(NitroError::invalid(format!(
                    "servicegroup.{key}: unknown field for action enable/disable"
                )));
            }
        }
        let delay = match object.get("delay") {
            None | Some(Value::Null) => None,
            Some(value) => Some(drain_delay(value)?),
        };
        changes.push((group.to_owned(), member));
        delays.push(delay);
    }
    let cuts: Vec<_> = changes.iter().cloned().zip(delays).collect();
    // Persistent clients keep coming to a member disabled with a `delay` until it is over:
    // armed before the edit that starts the drain, disarmed when this returns.
    let _grace = (!enable).then(|| persistence::arm_drain_grace(&api.snapshot.load(), &cuts));
    let change = MemberChange {
        enabled: Some(enable),
        ..MemberChange::default()
    };
    api.writer
        .edit(move |file| {
            for (group, member) in &changes {
                let addrs = match member {
                    Some(addr) => vec![*addr],
                    None => members::addresses(file, group)?,
                };
                for addr in addrs {
                    members::change(file, group, addr, change.clone())?;
                }
            }
            Ok(())
        })
        .await?;
    if !enable {
        let snapshot = api.snapshot.load();
        for ((group, member), delay) in cuts {
            let (Some(delay), Some(plan)) = (delay, snapshot.groups.get(&group)) else {
                continue;
            };
            let drained = plan.members.iter();
            for state in drained.filter(|m| member.is_none_or(|addr| m.key.addr == addr)) {
                state.cut_tunnels_after(delay);
            }
        }
    }
    Ok(())
}

/// The `delay` of a `disable`: whole seconds, a number or a numeric string.
fn drain_delay(value: &Value) -> Result<Duration, NitroError> {
    let seconds = match value {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    };
    seconds.map(Duration::from_secs).ok_or_else(|| {
        NitroError::invalid(format!(
            "servicegroup.delay: expected whole seconds (0 or more), got {value}"
        ))
    })
}

/// `POST nsconfig?action=save`: the running config, atomically, where it was loaded from.
async fn save(api: &AdminApi, method: &Method, target: &Target) -> Reply {
    if *method != Method::POST || target.action.as_deref() != Some("save") {
        return Err(NitroError::invalid(
            "nsconfig supports POST /nitro/v1/config/nsconfig?action=save",
        ));
    }
    api.writer
        .save(api.save_path.clone())
        .await
        .map_err(|error| {
            NitroError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                code::SAVE_FAILED,
                format!(
                    "cannot save the config to {}: {error}",
                    api.save_path.display()
                ),
            )
        })?;
    tracing::info!(path = %api.save_path.display(), "config saved");
    Ok(done(StatusCode::OK, None))
}

/// NITRO's `?filter=k:v,…`: keeps objects whose fields equal every value (as text).
fn filtered(items: Vec<Value>, filter: &[(String, String)]) -> Vec<Value> {
    items
        .into_iter()
        .filter(|item| {
            filter.iter().all(|(key, wanted)| match item.get(key) {
                Some(Value::String(s)) => s == wanted,
                Some(other) => *other.to_string() == **wanted,
                None => false,
            })
        })
        .collect()
}
