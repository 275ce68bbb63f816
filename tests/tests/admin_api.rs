//! The NITRO-like admin API through real HTTP on loopback: every resource and binding round-trips,
//! changes reach traffic at once, bad requests change nothing, auth holds, saves survive restarts
//! and `kill -9`.

use std::net::SocketAddr;
use std::time::Duration;

use ballast_tests::nitro::{Credentials, Nitro};
use ballast_tests::{
    BALLAST_SECTION, Backend, Ballast, Binary, Load, Net, TempDir, get, members_toml, wait_until,
};
use http::{Method, StatusCode};
use serde_json::{Value, json};

/// The `ballast` binary cargo built for this test run.
const BALLAST: Binary = Binary::new(env!("CARGO_BIN_EXE_ballast"));

const PASSWORD: &str = "Pw-7f3c9e1a-do-not-log";

/// A Ballast with the admin API on, one HTTP vserver over `members`, and its API client.
struct Admin {
    ballast: Ballast,
    nitro: Nitro,
    vserver: SocketAddr,
}

fn config(admin: SocketAddr, vserver: SocketAddr, members: &[SocketAddr], extra: &str) -> String {
    format!(
        r#"{BALLAST_SECTION}[admin]
listen = "{admin}"
passwordfile = "admin.pass"
sessiontimeout = "1s"
{extra}
[[lbmonitor]]
monitorname = "health"
type = "HTTP"
httprequest = "GET /healthz"
interval = "200ms"
resptimeout = "100ms"
retries = 2

[[servicegroup]]
servicegroupname = "pool"
servicetype = "HTTP"
monitor = ["health"]
{}

[[lbvserver]]
name = "web"
servicetype = "HTTP"
ipv46 = "{}"
port = {}
lbmethod = "ROUNDROBIN"
servicegroupname = "pool"
"#,
        members_toml(members),
        vserver.ip(),
        vserver.port()
    )
}

async fn start(net: &Net, members: &[SocketAddr], extra: &str) -> Admin {
    let admin = net.free_addr(250);
    let vserver = net.free_addr(251);
    let ballast = BALLAST
        .start_with_files(
            &config(admin, vserver, members, extra),
            &[("admin.pass", format!("{PASSWORD}\n").as_bytes())],
        )
        .await;
    Admin {
        ballast,
        nitro: Nitro::new(admin, "nsroot", PASSWORD),
        vserver,
    }
}

/// Every config resource's GET output, for before/after comparisons.
async fn everything(nitro: &Nitro) -> Vec<Value> {
    let mut all = Vec::new();
    for path in [
        "config/lbvserver",
        "config/servicegroup",
        "config/lbmonitor",
        "config/sslcertkey",
        "config/lbmetrictable",
        "config/autoscaleprofile",
        "config/autoscalegroup",
        "config/servicegroup_servicegroupmember_binding",
        "config/servicegroup_lbmonitor_binding",
        "config/lbvserver_servicegroup_binding",
    ] {
        let reply = nitro.get(path).await;
        assert_eq!(reply.status, StatusCode::OK, "GET {path}: {:?}", reply.body);
        all.push(reply.body);
    }
    all
}

/// A bad request: what it is, method, path, body, and the status, `errorcode` and message text
/// it must get.
struct BadCase(
    &'static str,
    Method,
    &'static str,
    Vec<u8>,
    StatusCode,
    i64,
    &'static str,
);

fn assert_done(reply: &ballast_tests::nitro::NitroReply, status: StatusCode, what: &str) {
    assert_eq!(reply.status, status, "{what}: {:?}", reply.body);
    assert_eq!(reply.errorcode(), 0, "{what}: {:?}", reply.body);
    assert_eq!(reply.body["severity"], "NONE", "{what}");
}

/// `fields` all appear with the same values in `object`.
fn assert_has(object: &Value, fields: &Value, what: &str) {
    for (key, value) in fields.as_object().expect("fields are an object") {
        assert_eq!(&object[key], value, "{what}: field {key} in {object}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_resource_and_binding_round_trips() {
    let net = Net::new();
    let backend = Backend::start(net.free_addr(1), "a").await;
    let admin = start(&net, &[backend.addr()], "").await;
    let nitro = &admin.nitro;
    let cert =
        rcgen::generate_simple_self_signed(vec!["api.test".to_owned()]).expect("a certificate");
    let dir = TempDir::new("certs");
    let cert_path = dir.write("api.pem", cert.cert.pem());
    let key_path = dir.write("api.key", cert.key_pair.serialize_pem());

    let spare = net.free_addr(2);
    let tls = net.free_addr(252);
    let tls_port = tls.port();
    let objects = [
        (
            "lbmonitor",
            "monitorname",
            json!({"monitorname": "tcp", "type": "TCP", "interval": "2s", "resptimeout": "1s"}),
            json!({"retries": 5}),
        ),
        (
            "lbmetrictable",
            "metrictable",
            json!({"metrictable": "app", "metrics": [{"metric": "queue", "snmpoid": "1.3.6.1.4.1.99.1.0"}]}),
            json!({"metrics": [{"metric": "queue", "snmpoid": "1.3.6.1.4.1.99.2.0", "type": "integer"}]}),
        ),
        (
            "servicegroup",
            "servicegroupname",
            json!({"servicegroupname": "spare", "servicetype": "HTTP", "members": [{"ip": spare.ip().to_string(), "port": spare.port()}]}),
            json!({"svrtimeout": "10s"}),
        ),
        (
            "sslcertkey",
            "certkey",
            json!({"certkey": "api", "cert": cert_path.display().to_string(), "key": key_path.display().to_string()}),
            json!({"cert": cert_path.display().to_string()}),
        ),
        (
            "lbvserver",
            "name",
            json!({"name": "tls", "servicetype": "SSL", "ipv46": tls.ip().to_string(), "port": tls_port, "servicegroupname": "spare", "sslcertkey": ["api"]}),
            json!({"lbmethod": "LEASTRESPONSETIME"}),
        ),
        (
            "autoscaleprofile",
            "name",
            json!({"name": "cloud", "url": "http://127.0.0.1:8096/client/api", "apikey": "k", "sharedsecret": "s3cr3t", "zoneid": "z", "templateid": "t", "serviceofferingid": "o", "memberport": "8000"}),
            json!({"zoneid": "z2"}),
        ),
        (
            "autoscalegroup",
            "name",
            json!({"name": "scale", "vserver": "tls", "servicegroupname": "spare", "profilename": "cloud", "minmembers": 1, "maxmembers": "4", "observe": true, "deploytimeout": "5m", "metrics": [{"name": "connections", "source": "connections", "upper": 70.0, "lower": 20.0}]}),
            json!({"maxmembers": 6}),
        ),
    ];
    for (resource, key, object, update) in &objects {
        let name = object[*key].as_str().unwrap();
        let added = nitro
            .post(&format!("config/{resource}"), json!({ *resource: object }))
            .await;
        assert_done(&added, StatusCode::CREATED, &format!("add {resource}"));
        let one = nitro.get(&format!("config/{resource}/{name}")).await;
        assert_done(&one, StatusCode::OK, &format!("get {resource}"));
        let mut expected = object.clone();
        if *resource == "autoscaleprofile" {
            // The shared secret is stored but never returned.
            expected.as_object_mut().unwrap().remove("sharedsecret");
            assert!(
                one.body[*resource][0].get("sharedsecret").is_none(),
                "{:?}",
                one.body
            );
            expected["memberport"] = json!(8000);
        }
        if *resource == "autoscalegroup" {
            expected["maxmembers"] = json!(4);
        }
        assert_has(&one.body[*resource][0], &expected, resource);
        let mut change = update.clone();
        change[*key] = json!(name);
        let updated = nitro
            .put(&format!("config/{resource}"), json!({ *resource: change }))
            .await;
        assert_done(&updated, StatusCode::OK, &format!("update {resource}"));
        let again = nitro.get(&format!("config/{resource}/{name}")).await;
        assert_has(
            &again.body[*resource][0],
            update,
            &format!("{resource} after update"),
        );
    }
    // Filters select by field value.
    let filtered = nitro.get("config/lbvserver?filter=servicetype:SSL").await;
    assert_eq!(
        filtered.body["lbvserver"].as_array().unwrap().len(),
        1,
        "{:?}",
        filtered.body
    );

    // Bindings: add, list, remove.
    let member =
        json!({"servicegroupname": "spare", "ip": "127.0.0.9", "port": "9000", "weight": 3});
    let bound = nitro
        .put(
            "config/servicegroup_servicegroupmember_binding",
            json!({"servicegroup_servicegroupmember_binding": member}),
        )
        .await;
    assert_done(&bound, StatusCode::CREATED, "bind a member");
    let listed = nitro
        .get("config/servicegroup_servicegroupmember_binding/spare")
        .await;
    let members = listed.body["servicegroup_servicegroupmember_binding"]
        .as_array()
        .unwrap()
        .clone();
    assert!(
        members
            .iter()
            .any(|m| m["ip"] == "127.0.0.9" && m["port"] == 9000 && m["weight"] == 3),
        "{members:?}"
    );
    let monitor = nitro.put("config/servicegroup_lbmonitor_binding", json!({"servicegroup_lbmonitor_binding": {"servicegroupname": "spare", "monitor_name": "tcp"}})).await;
    assert_done(&monitor, StatusCode::CREATED, "bind a monitor");
    let monitors = nitro
        .get("config/servicegroup_lbmonitor_binding/spare")
        .await;
    assert_eq!(
        monitors.body["servicegroup_lbmonitor_binding"][0]["monitor_name"],
        "tcp"
    );
    let vs = nitro.get("config/lbvserver_servicegroup_binding/web").await;
    assert_eq!(
        vs.body["lbvserver_servicegroup_binding"][0]["servicegroupname"],
        "pool"
    );

    // Deleting in dependency order works; each one is gone afterwards.
    let deletions = [
        "config/servicegroup_servicegroupmember_binding/spare?args=ip:127.0.0.9,port:9000",
        "config/servicegroup_lbmonitor_binding/spare?args=monitor_name:tcp",
        "config/autoscalegroup/scale",
        "config/autoscaleprofile/cloud",
        "config/lbvserver/tls",
        "config/sslcertkey/api",
        "config/servicegroup/spare",
        "config/lbmetrictable/app",
        "config/lbmonitor/tcp",
    ];
    for path in deletions {
        let deleted = nitro.delete(path).await;
        assert_done(&deleted, StatusCode::OK, path);
    }
    for (resource, key, object, _) in &objects {
        let gone = nitro
            .get(&format!(
                "config/{resource}/{}",
                object[*key].as_str().unwrap()
            ))
            .await;
        assert_eq!(
            gone.status,
            StatusCode::NOT_FOUND,
            "{resource} after delete: {:?}",
            gone.body
        );
        assert_eq!(gone.errorcode(), 258);
    }
    // The event history is read-only.
    assert_done(
        &nitro.get("config/autoscaleevent").await,
        StatusCode::OK,
        "autoscaleevent",
    );
    let refused = nitro
        .post("config/autoscaleevent", json!({"autoscaleevent": {}}))
        .await;
    assert_eq!(refused.status, StatusCode::METHOD_NOT_ALLOWED);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_added_through_the_api_gets_traffic_within_a_second() {
    let net = Net::new();
    let a = Backend::start(net.free_addr(1), "a").await;
    let b = Backend::start(net.free_addr(2), "b").await;
    let admin = start(&net, &[a.addr()], "").await;
    let added = admin
        .nitro
        .put(
            "config/servicegroup_servicegroupmember_binding",
            json!({"servicegroup_servicegroupmember_binding": {"servicegroupname": "pool", "ip": b.addr().ip().to_string(), "port": b.addr().port()}}),
        )
        .await;
    assert_done(&added, StatusCode::CREATED, "add member b");
    let since = tokio::time::Instant::now();
    let mut reached = false;
    while since.elapsed() < Duration::from_secs(1) {
        let reply = get(admin.vserver, "/").await.expect("the vserver answers");
        assert_eq!(reply.status, StatusCode::OK);
        if reply.backend() == Some("b") {
            reached = true;
            break;
        }
    }
    assert!(reached, "member b got no request within 1 s of being added");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_drained_through_the_api_finishes_its_request_then_gets_none() {
    let net = Net::new();
    let a = Backend::start(net.free_addr(1), "a").await;
    let b = Backend::start(net.free_addr(2), "b").await;
    let admin = start(&net, &[a.addr(), b.addr()], "").await;
    let vserver = admin.vserver;
    // Send slow requests until one is in flight on `a`.
    let mut slow = Vec::new();
    while a.in_flight() == 0 {
        slow.push(tokio::spawn(
            async move { get(vserver, "/slow?ms=1500").await },
        ));
        assert!(
            wait_until(Duration::from_secs(2), || a.in_flight() + b.in_flight()
                >= slow.len() as u64)
            .await
        );
    }
    let drained = admin
        .nitro
        .post(
            "config/servicegroup?action=disable",
            json!({"servicegroup": {"servicegroupname": "pool", "ip": a.addr().ip().to_string(), "port": a.addr().port(), "graceful": "YES"}}),
        )
        .await;
    assert_done(&drained, StatusCode::OK, "drain a");
    let before = a.requests();
    for _ in 0..20 {
        let reply = get(vserver, "/").await.expect("the vserver answers");
        assert_eq!(
            reply.backend(),
            Some("b"),
            "a drained member got a new request"
        );
    }
    for request in slow {
        let reply = request
            .await
            .expect("task")
            .expect("the slow request completes");
        assert_eq!(reply.status, StatusCode::OK);
    }
    assert_eq!(
        a.requests(),
        before,
        "no new request reached the drained member"
    );
    let states = admin
        .nitro
        .get("config/servicegroup_servicegroupmember_binding/pool")
        .await;
    let a_state = states.body["servicegroup_servicegroupmember_binding"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["port"] == a.addr().port())
        .cloned()
        .unwrap();
    assert_eq!(a_state["svrstate"], "OUT OF SERVICE", "{a_state}");
    assert_eq!(a_state["state"], "DISABLED");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_concurrent_changes_under_load_lose_nothing() {
    let net = Net::new();
    let mut backends = Vec::new();
    for host in 1..=30u8 {
        backends.push(Backend::start(net.free_addr(host), &format!("b{host}")).await);
    }
    let initial: Vec<SocketAddr> = backends[..10].iter().map(Backend::addr).collect();
    let admin = start(&net, &initial, "").await;
    let load = Load::start(admin.vserver, 8, "/");
    assert!(
        load.wait_for_more(200, Duration::from_secs(10)).await,
        "the load runs"
    );

    // 20 adds (with a weight), 5 removes, 25 weight updates (5 of initial members, 20 of the
    // added ones, racing their own add).
    let mut changes = Vec::new();
    let binding = "config/servicegroup_servicegroupmember_binding";
    let body = |addr: SocketAddr, weight: u32| json!({"servicegroup_servicegroupmember_binding": {"servicegroupname": "pool", "ip": addr.ip().to_string(), "port": addr.port(), "weight": weight}});
    for (i, backend) in backends[10..30].iter().enumerate() {
        let (nitro, addr) = (admin.nitro.clone(), backend.addr());
        let body = body(addr, 10 + i as u32);
        changes.push(tokio::spawn(async move {
            ("add", addr, 10 + i as u32, nitro.put(binding, body).await)
        }));
    }
    for backend in &backends[5..10] {
        let (nitro, addr) = (admin.nitro.clone(), backend.addr());
        let path = format!("{binding}/pool?args=ip:{},port:{}", addr.ip(), addr.port());
        changes.push(tokio::spawn(async move {
            ("remove", addr, 0, nitro.delete(&path).await)
        }));
    }
    for (i, backend) in backends[..5].iter().chain(&backends[10..30]).enumerate() {
        let (nitro, addr) = (admin.nitro.clone(), backend.addr());
        let weight = 50 + i as u32;
        // An update of a member that is not bound yet must not add it: use the servicegroup
        // resource's member-aware binding only when the member exists, i.e. the add won the race.
        let body = body(addr, weight);
        changes.push(tokio::spawn(async move {
            ("update", addr, weight, nitro.put(binding, body).await)
        }));
    }
    let mut results = Vec::new();
    for change in changes {
        results.push(change.await.expect("task"));
    }
    assert_eq!(results.len(), 50);

    // Expected final state from the accepted changes: every PUT was accepted (add or update);
    // the weight of a member written twice is the one the later write set, which the writer's
    // order decides: a PUT that created the member answered 201, one that updated it 200.
    let mut expected: std::collections::BTreeMap<SocketAddr, u32> =
        initial.iter().map(|a| (*a, 1)).collect();
    for (kind, addr, _, reply) in &results {
        assert!(reply.status.is_success(), "{kind} {addr}: {:?}", reply.body);
        if *kind == "remove" {
            expected.remove(addr);
        }
    }
    // For members PUT twice: the one that answered 200 came second.
    for (kind, addr, weight, reply) in &results {
        if *kind == "remove" {
            continue;
        }
        let twice = results
            .iter()
            .filter(|(k, a, _, _)| *k != "remove" && a == addr)
            .count()
            == 2;
        if !twice || reply.status == StatusCode::OK {
            expected.insert(*addr, *weight);
        }
    }
    let listed = admin.nitro.get(&format!("{binding}/pool")).await;
    let actual: std::collections::BTreeMap<SocketAddr, u32> =
        listed.body["servicegroup_servicegroupmember_binding"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| {
                let addr = SocketAddr::new(
                    m["ip"].as_str().unwrap().parse().unwrap(),
                    m["port"].as_u64().unwrap() as u16,
                );
                (addr, m["weight"].as_u64().unwrap() as u32)
            })
            .collect();
    assert_eq!(actual, expected);

    assert!(
        load.wait_for_more(200, Duration::from_secs(10)).await,
        "the load still runs"
    );
    let report = load.stop().await;
    assert_eq!(
        report.failed, 0,
        "failed client requests: {:?}",
        report.errors
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_get_their_error_and_change_nothing() {
    let net = Net::new();
    let a = Backend::start(net.free_addr(1), "a").await;
    let admin = start(&net, &[a.addr()], "").await;
    let nitro = &admin.nitro;
    let before = everything(nitro).await;
    let vs = |fields: Value| {
        let mut object =
            json!({"name": "new", "servicetype": "HTTP", "ipv46": "127.0.0.1", "port": 1});
        for (k, v) in fields.as_object().unwrap() {
            object[k] = v.clone();
        }
        json!({ "lbvserver": object })
    };
    let cases = [
        BadCase("unknown field", Method::POST, "config/lbvserver", vs(json!({"colour": "red"})).to_string().into_bytes(), StatusCode::BAD_REQUEST, 278, "lbvserver.colour: unknown field"),
        BadCase("wrong type", Method::POST, "config/lbvserver", vs(json!({"port": [80]})).to_string().into_bytes(), StatusCode::BAD_REQUEST, 278, "lbvserver.port"),
        BadCase("out of range", Method::POST, "config/lbvserver", vs(json!({"port": 70000})).to_string().into_bytes(), StatusCode::BAD_REQUEST, 278, "lbvserver `new`.port: expected 1..=65535, got 70000"),
        BadCase("missing reference", Method::POST, "config/lbvserver", vs(json!({"servicegroupname": "ghost"})).to_string().into_bytes(), StatusCode::BAD_REQUEST, 278, "no servicegroup named `ghost`"),
        BadCase("still bound", Method::DELETE, "config/servicegroup/pool", Vec::new(), StatusCode::CONFLICT, 1500, "servicegroup `pool` is still used by lbvserver `web`"),
        BadCase("duplicate", Method::POST, "config/lbvserver", json!({"lbvserver": {"name": "web", "servicetype": "HTTP", "ipv46": "127.0.0.1", "port": 2}}).to_string().into_bytes(), StatusCode::CONFLICT, 273, "lbvserver `web` already exists"),
        BadCase("malformed JSON", Method::POST, "config/lbvserver", b"{\"lbvserver\": {".to_vec(), StatusCode::BAD_REQUEST, 1501, "malformed JSON"),
        BadCase("wrong shape", Method::POST, "config/lbvserver", b"[1, 2]".to_vec(), StatusCode::BAD_REQUEST, 1501, "expected a body like {\"lbvserver\""),
        BadCase("too large", Method::POST, "config/lbvserver", vec![b' '; 2 * 1024 * 1024], StatusCode::PAYLOAD_TOO_LARGE, 1502, "larger than"),
        BadCase("unknown resource", Method::GET, "config/gslbvserver", Vec::new(), StatusCode::NOT_FOUND, 1503, "no resource named `gslbvserver`"),
        BadCase("missing object", Method::DELETE, "config/lbmonitor/ghost", Vec::new(), StatusCode::NOT_FOUND, 258, "no lbmonitor named `ghost`"),
    ];
    for BadCase(what, method, path, body, status, code, message) in cases {
        let reply = nitro.call(method, path, Some(body)).await;
        assert_eq!(reply.status, status, "{what}: {:?}", reply.body);
        assert_eq!(reply.errorcode(), code, "{what}: {:?}", reply.body);
        assert_eq!(reply.body["severity"], "ERROR", "{what}");
        assert!(
            reply.message().contains(message),
            "{what}: {:?} does not say {message:?}",
            reply.message()
        );
    }
    assert_eq!(
        everything(nitro).await,
        before,
        "a rejected request changed the config"
    );
    let served = get(admin.vserver, "/").await.expect("still serving");
    assert_eq!(served.status, StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auth_rejects_missing_wrong_and_expired_credentials_and_never_logs_the_password() {
    let net = Net::new();
    let a = Backend::start(net.free_addr(1), "a").await;
    let admin = start(&net, &[a.addr()], "").await;
    let anonymous = admin.nitro.with(Credentials::None);
    let no = anonymous.get("config/lbvserver").await;
    assert_eq!(
        (no.status, no.errorcode()),
        (StatusCode::UNAUTHORIZED, 444),
        "{:?}",
        no.body
    );
    let wrong = admin
        .nitro
        .with(Credentials::Password {
            user: "nsroot".into(),
            password: "guess".into(),
        })
        .get("config/lbvserver")
        .await;
    assert_eq!(
        (wrong.status, wrong.errorcode()),
        (StatusCode::UNAUTHORIZED, 354),
        "{:?}",
        wrong.body
    );

    let login = anonymous
        .post(
            "config/login",
            json!({"login": {"username": "nsroot", "password": PASSWORD}}),
        )
        .await;
    assert_eq!(login.status, StatusCode::CREATED, "{:?}", login.body);
    let token = login.body["sessionid"]
        .as_str()
        .expect("a session id")
        .to_owned();
    assert!(
        login
            .set_cookie
            .unwrap_or_default()
            .starts_with(&format!("NITRO_AUTH_TOKEN={token}"))
    );
    let session = admin.nitro.with(Credentials::Cookie(token.clone()));
    assert_eq!(session.get("config/lbvserver").await.status, StatusCode::OK);
    // The session times out after 1 s without use.
    tokio::time::sleep(Duration::from_millis(1300)).await;
    let expired = session.get("config/lbvserver").await;
    assert_eq!(
        (expired.status, expired.errorcode()),
        (StatusCode::UNAUTHORIZED, 444),
        "{:?}",
        expired.body
    );
    // A logged-out session is over too.
    let login = anonymous
        .post(
            "config/login",
            json!({"login": {"username": "nsroot", "password": PASSWORD}}),
        )
        .await;
    let session = admin.nitro.with(Credentials::Cookie(
        login.body["sessionid"].as_str().unwrap().to_owned(),
    ));
    assert_eq!(
        session
            .post("config/logout", json!({"logout": {}}))
            .await
            .status,
        StatusCode::OK
    );
    assert_eq!(
        session.get("config/lbvserver").await.status,
        StatusCode::UNAUTHORIZED
    );

    let logs = admin.ballast.log_text();
    assert!(logs.contains("admin login failed"), "failures are logged");
    assert!(!logs.contains(PASSWORD), "the password appears in the log");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_saved_config_restarts_to_the_same_state() {
    let net = Net::new();
    let a = Backend::start(net.free_addr(1), "a").await;
    let b = Backend::start(net.free_addr(2), "b").await;
    let mut admin = start(&net, &[a.addr()], "").await;
    let nitro = admin.nitro.clone();
    let member = json!({"servicegroup_servicegroupmember_binding": {"servicegroupname": "pool", "ip": b.addr().ip().to_string(), "port": b.addr().port(), "weight": 4}});
    assert_done(
        &nitro
            .put("config/servicegroup_servicegroupmember_binding", member)
            .await,
        StatusCode::CREATED,
        "bind b",
    );
    let monitor = json!({"lbmonitor": {"monitorname": "tcp", "type": "TCP", "interval": "1s", "resptimeout": "500ms"}});
    assert_done(
        &nitro.post("config/lbmonitor", monitor).await,
        StatusCode::CREATED,
        "add a monitor",
    );
    let updated = nitro
        .put(
            "config/lbvserver",
            json!({"lbvserver": {"name": "web", "lbmethod": "LEASTCONNECTION"}}),
        )
        .await;
    assert_done(&updated, StatusCode::OK, "update the vserver");
    let before = everything(&nitro).await;
    let saved = nitro
        .post("config/nsconfig?action=save", json!({"nsconfig": {}}))
        .await;
    assert_done(&saved, StatusCode::OK, "save");
    let text = std::fs::read_to_string(admin.ballast.config_path()).expect("the saved config");
    assert!(admin.ballast.terminate().await.success());
    let restarted = BALLAST
        .start_with_files(&text, &[("admin.pass", format!("{PASSWORD}\n").as_bytes())])
        .await;
    let after = everything(&nitro).await;
    assert_eq!(after, before, "the restarted config differs");
    drop(restarted);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_save_killed_at_any_moment_leaves_the_old_or_the_new_file() {
    let net = Net::new();
    let a = Backend::start(net.free_addr(1), "a").await;
    let admin_addr = net.free_addr(250);
    let vserver = net.free_addr(251);
    let original = config(admin_addr, vserver, &[a.addr()], "");
    for round in 0..12u64 {
        let ballast = BALLAST
            .start_with_files(
                &original,
                &[("admin.pass", format!("{PASSWORD}\n").as_bytes())],
            )
            .await;
        let nitro = Nitro::new(admin_addr, "nsroot", PASSWORD);
        let path = ballast.config_path().to_owned();
        let old = std::fs::read_to_string(&path).unwrap();
        // Make the running config differ from the file, then save and kill -9 mid-way.
        let member = json!({"servicegroup_servicegroupmember_binding": {"servicegroupname": "pool", "ip": "127.0.0.9", "port": 9000 + round}});
        assert!(
            nitro
                .put("config/servicegroup_servicegroupmember_binding", member)
                .await
                .status
                .is_success()
        );
        let save = tokio::spawn(async move {
            nitro
                .post("config/nsconfig?action=save", json!({"nsconfig": {}}))
                .await
        });
        tokio::time::sleep(Duration::from_micros(round * 150)).await;
        let status = std::process::Command::new("kill")
            .args(["-9", &ballast.pid().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        let _ = save.await;
        let now = std::fs::read_to_string(&path).expect("the config file still exists");
        if now != old {
            assert!(
                now.contains(&format!("port = {}", 9000 + round)),
                "round {round}: neither old nor new:\n{now}"
            );
        }
        let (code, _, stderr) = BALLAST.check_file(&path);
        assert_eq!(code, 0, "round {round}: the file is torn: {stderr}");
        drop(ballast);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scale_in_protection_is_set_through_the_api_shown_and_never_saved() {
    let net = Net::new();
    let a = Backend::start(net.free_addr(1), "a").await;
    let admin = start(&net, &[a.addr()], "").await;
    let nitro = &admin.nitro;
    let binding = "config/servicegroup_servicegroupmember_binding";
    let member = |extra: Value| {
        let mut object = json!({"servicegroupname": "pool", "ip": a.addr().ip().to_string(), "port": a.addr().port()});
        for (key, value) in extra.as_object().unwrap() {
            object[key] = value.clone();
        }
        json!({ "servicegroup_servicegroupmember_binding": object })
    };
    let protect = nitro
        .put(binding, member(json!({"scaleinprotection": "ENABLED"})))
        .await;
    assert_done(&protect, StatusCode::OK, "protect a bound member");

    let listed = nitro.get(&format!("{binding}/pool")).await;
    let shown = &listed.body["servicegroup_servicegroupmember_binding"][0];
    assert_has(
        shown,
        &json!({"scaleinprotection": "ENABLED", "autoscaled": false, "weight": 1, "state": "ENABLED", "svrstate": "UP"}),
        "the binding",
    );
    assert!(shown.get("vmid").is_none(), "{shown}");
    let stat = nitro.get("stat/servicegroup/pool?statbindings=yes").await;
    let counted = &stat.body["servicegroup"][0]["servicegroupmember"][0];
    assert_has(
        counted,
        &json!({"scaleinprotection": "ENABLED", "autoscaled": false}),
        "stat",
    );

    // Only the typed bind of the autoscaler marks a member; values are NetScaler's words.
    let marked = nitro
        .put(binding, member(json!({"autoscaled": true, "vmid": "vm-1"})))
        .await;
    assert_eq!(
        (marked.status, marked.errorcode()),
        (StatusCode::BAD_REQUEST, 278),
        "{:?}",
        marked.body
    );
    assert!(
        marked.message().contains("unknown field `autoscaled`"),
        "{}",
        marked.message()
    );
    let maybe = nitro
        .put(binding, member(json!({"scaleinprotection": "MAYBE"})))
        .await;
    assert_eq!(
        maybe.message(),
        "servicegroup_servicegroupmember_binding.scaleinprotection: expected ENABLED or DISABLED, got `MAYBE`"
    );

    let saved = nitro
        .post("config/nsconfig?action=save", json!({"nsconfig": {}}))
        .await;
    assert_done(&saved, StatusCode::OK, "save");
    let text = std::fs::read_to_string(admin.ballast.config_path()).expect("the saved config");
    assert!(
        !text.contains("protection"),
        "runtime state was saved:\n{text}"
    );
}
