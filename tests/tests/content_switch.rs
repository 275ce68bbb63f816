//! Content switching through `ballast run`: a `csvserver` sends each request to the lbvserver
//! its `cspolicy` rules choose from the host, path and headers; non-addressable lbvservers
//! (`port = 0`) are reached only that way. Policies bound through the admin API take effect
//! without a dropped request; a rule that does not parse is refused with its path (file and
//! API) and the running config stays; no match without a default is `404`; an `SSL` csvserver
//! terminates TLS (SNI, ALPN) before it switches.

use std::net::SocketAddr;
use std::time::Duration;

use ballast_tests::certs::{TestCa, connect_tls, negotiated_alpn, peer_leaf};
use ballast_tests::client::connect_tcp;
use ballast_tests::nitro::Nitro;
use ballast_tests::prom::{
    OPENMETRICS_ACCEPT, assert_openmetrics_parses, assert_promtool_accepts, sample, scrape,
};
use ballast_tests::{
    BALLAST_SECTION, Backend, Binary, H1, H2, Load, Net, get, members_toml, wait_until,
};
use http::StatusCode;
use serde_json::{Value, json};

/// The `ballast` binary cargo built for this test run.
const BALLAST: Binary = Binary::new(env!("CARGO_BIN_EXE_ballast"));

const WAIT: Duration = Duration::from_secs(10);
const PASSWORD: &str = "Pw-content-switch";

/// A servicegroup `<name>-pool` with one member and a non-addressable lbvserver `<name>-lb`.
fn pool(name: &str, member: SocketAddr) -> String {
    format!(
        r#"
[[servicegroup]]
servicegroupname = "{name}-pool"
servicetype = "HTTP"
{}

[[lbvserver]]
name = "{name}-lb"
servicetype = "HTTP"
ipv46 = "0.0.0.0"
port = 0
lbmethod = "ROUNDROBIN"
servicegroupname = "{name}-pool"
"#,
        members_toml(&[member])
    )
}

/// `[admin]` on `admin`, `[metrics]` on `metrics`, and `body`.
fn config(admin: SocketAddr, metrics: SocketAddr, body: &str) -> String {
    format!(
        r#"{BALLAST_SECTION}[admin]
listen = "{admin}"
passwordfile = "admin.pass"

[metrics]
listen = "{metrics}"
{body}"#
    )
}

async fn start(text: &str) -> ballast_tests::Ballast {
    BALLAST
        .start_with_files(text, &[("admin.pass", format!("{PASSWORD}\n").as_bytes())])
        .await
}

/// GET `path` on `front` with `Host: host` on a fresh HTTP/1.1 connection: (status, backend
/// name or body).
async fn get_as(front: SocketAddr, host: &str, path: &str) -> (StatusCode, String) {
    let stream = connect_tcp(front, None)
        .await
        .expect("connect to the csvserver");
    let mut client = H1::over(stream, host).await.expect("HTTP/1.1 handshake");
    let reply = client.get(path).await.expect("a reply");
    let who = reply
        .backend()
        .map_or_else(|| reply.text(), ToOwned::to_owned);
    (reply.status, who)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hosts_and_two_paths_reach_four_pools_through_one_csvserver() {
    let net = Net::new();
    let shop = Backend::start(net.free_addr(1), "shop").await;
    let blog = Backend::start(net.free_addr(2), "blog").await;
    let api = Backend::start(net.free_addr(3), "api").await;
    let assets = Backend::start(net.free_addr(4), "assets").await;
    let (front, admin, metrics) = (net.free_addr(250), net.free_addr(251), net.free_addr(252));
    let body = format!(
        r#"{}{}{}{}
[accesslog]
path = "access.log"
format = "json"

[[cspolicy]]
policyname = "shop"
rule = 'HTTP.REQ.HOSTNAME.EQ("shop.example.com")'

[[cspolicy]]
policyname = "blog"
rule = 'HTTP.REQ.HOSTNAME.ENDSWITH(".blog.example.com")'

[[cspolicy]]
policyname = "api"
rule = 'HTTP.REQ.URL.PATH.STARTSWITH("/api/")'

[[cspolicy]]
policyname = "assets"
rule = 'HTTP.REQ.URL.PATH.STARTSWITH("/static/") || HTTP.REQ.HEADER("X-Asset").EXISTS'

[[csvserver]]
name = "front"
servicetype = "HTTP"
ipv46 = "{}"
port = {}
policies = [
  {{ policyname = "assets", targetlbvserver = "assets-lb", priority = 40 }},
  {{ policyname = "shop", targetlbvserver = "shop-lb", priority = 10 }},
  {{ policyname = "blog", targetlbvserver = "blog-lb", priority = 20 }},
  {{ policyname = "api", targetlbvserver = "api-lb", priority = 30 }},
]
"#,
        pool("shop", shop.addr()),
        pool("blog", blog.addr()),
        pool("api", api.addr()),
        pool("assets", assets.addr()),
        front.ip(),
        front.port()
    );
    let ballast = start(&config(admin, metrics, &body)).await;

    let front_host = front.to_string();
    let cases = [
        // Hosts are matched without their port and without regard to case; host policies
        // come first (priority 10, 20), so a shop path under /api/ still goes to the shop.
        ("shop.example.com", "/", "shop"),
        ("Shop.Example.COM:8080", "/api/cart", "shop"),
        ("www.blog.example.com", "/post/1", "blog"),
        ("a.b.blog.example.com:80", "/static/x.css", "blog"),
        (front_host.as_str(), "/api/items?page=2", "api"),
        (front_host.as_str(), "/static/app.js", "assets"),
        ("other.example.com", "/static/", "assets"),
    ];
    for (host, path, expected) in cases {
        let (status, who) = get_as(front, host, path).await;
        assert_eq!(
            (status, who.as_str()),
            (StatusCode::OK, expected),
            "Host: {host}, GET {path}"
        );
    }
    // A header rule, and HTTP/2 (its `:authority` is the host).
    let stream = connect_tcp(front, None).await.unwrap();
    let mut client = H1::over(stream, "x.example.org").await.unwrap();
    let request = http::Request::get("/anything")
        .header("host", "x.example.org")
        .header("x-asset", "1")
        .body(http_body_util::Full::new(bytes::Bytes::new()))
        .unwrap();
    assert_eq!(
        client.send(request).await.unwrap().backend(),
        Some("assets")
    );
    let stream = connect_tcp(front, None).await.unwrap();
    let mut h2 = H2::over(stream, "http", "SHOP.example.com:443")
        .await
        .unwrap();
    assert_eq!(h2.get("/").await.unwrap().backend(), Some("shop"));
    assert_eq!(
        (
            shop.requests(),
            blog.requests(),
            api.requests(),
            assets.requests()
        ),
        (3, 2, 1, 3)
    );

    // The targets have no listener of their own: only the csvserver listens.
    let listening: Vec<String> = ballast
        .logs()
        .iter()
        .filter(|line| ballast_tests::is_event(line, "vserver listening"))
        .filter_map(|line| ballast_tests::field(line, "vserver").map(str::to_owned))
        .collect();
    assert_eq!(listening, ["front"]);

    // Statistics: the csvserver's own, per policy, and the targets' (they served the requests).
    let nitro = Nitro::new(admin, "nsroot", PASSWORD);
    let stat = nitro.get("stat/csvserver/front").await;
    assert_eq!(stat.status, StatusCode::OK, "{:?}", stat.body);
    let front_stat = &stat.body["csvserver"][0];
    assert_eq!(front_stat["totalrequests"], 9, "{front_stat}");
    assert_eq!(front_stat["unmatched"], 0);
    let hits: Vec<(String, u64)> = front_stat["cspolicy"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["policyname"].as_str().unwrap().to_owned(),
                p["hits"].as_u64().unwrap(),
            )
        })
        .collect();
    let expected: Vec<(String, u64)> = [("shop", 3), ("blog", 2), ("api", 1), ("assets", 3)]
        .iter()
        .map(|(p, n)| ((*p).to_owned(), *n))
        .collect();
    assert_eq!(hits, expected, "in priority order");
    let lb = nitro.get("stat/lbvserver/shop-lb").await;
    assert_eq!(lb.body["lbvserver"][0]["totalrequests"], 3, "{:?}", lb.body);
    assert_eq!(lb.body["lbvserver"][0]["primaryport"], 0);
    let lbs = nitro.get("stat/lbvserver").await;
    let names: Vec<&str> = lbs.body["lbvserver"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|v| v["name"].as_str())
        .collect();
    assert!(!names.contains(&"front"), "{names:?}");
    let policy = nitro.get("stat/cspolicy/assets").await;
    assert_eq!(
        policy.body["cspolicy"][0]["pipolicyhits"], 3,
        "{:?}",
        policy.body
    );

    let (_, text) = scrape(metrics, None).await;
    assert_eq!(
        sample(
            &text,
            r#"ballast_csvserver_policy_hits_total{csvserver="front",policy="blog",target="blog-lb"}"#
        ),
        Some(2.0),
        "{text}"
    );
    assert_eq!(
        sample(&text, r#"ballast_vserver_requests_total{vserver="front"}"#),
        Some(9.0)
    );
    assert_eq!(
        sample(&text, r#"ballast_vserver_requests_total{vserver="api-lb"}"#),
        Some(1.0)
    );

    assert_promtool_accepts(&text);
    let (_, openmetrics) = scrape(metrics, Some(OPENMETRICS_ACCEPT)).await;
    assert_openmetrics_parses(&openmetrics);

    // The access log names the csvserver and the lbvserver it switched to.
    let log = ballast.dir().join("access.log");
    let lines = || {
        std::fs::read_to_string(&log)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .collect::<Vec<_>>()
    };
    assert!(
        wait_until(WAIT, || lines().len() >= 9).await,
        "{:?}",
        lines()
    );
    let api_line = lines()
        .into_iter()
        .find(|l| l["uri"] == "/api/items?page=2")
        .expect("the api request's line");
    assert_eq!(
        (
            &api_line["vserver"],
            &api_line["target"],
            &api_line["servicegroup"]
        ),
        (&json!("front"), &json!("api-lb"), &json!("api-pool")),
        "{api_line}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_policy_bound_through_the_api_takes_traffic_without_a_dropped_request() {
    let net = Net::new();
    let old = Backend::start(net.free_addr(1), "old").await;
    let beta = Backend::start(net.free_addr(2), "beta").await;
    let (front, admin, metrics) = (net.free_addr(250), net.free_addr(251), net.free_addr(252));
    let body = format!(
        r#"{}{}
[[csvserver]]
name = "front"
servicetype = "HTTP"
ipv46 = "{}"
port = {}
defaultlbvserver = "old-lb"
"#,
        pool("old", old.addr()),
        pool("beta", beta.addr()),
        front.ip(),
        front.port()
    );
    let ballast = start(&config(admin, metrics, &body)).await;
    let nitro = Nitro::new(admin, "nsroot", PASSWORD);

    let load = Load::start(front, 4, "/beta/page");
    assert!(load.wait_for_more(200, WAIT).await, "the load runs");
    assert_eq!(load.ok_from("beta"), 0, "the default serves /beta first");

    let added = nitro
        .post(
            "config/cspolicy",
            json!({"cspolicy": {"policyname": "beta", "rule": r#"HTTP.REQ.URL.PATH.STARTSWITH("/beta/")"#}}),
        )
        .await;
    assert_eq!(added.status, StatusCode::CREATED, "{:?}", added.body);
    let bound = nitro
        .put(
            "config/csvserver_cspolicy_binding",
            json!({"csvserver_cspolicy_binding": {"name": "front", "policyname": "beta",
                   "targetlbvserver": "beta-lb", "priority": 10}}),
        )
        .await;
    assert_eq!(bound.status, StatusCode::CREATED, "{:?}", bound.body);
    let switched_at = load.ok_from("old");
    assert!(
        wait_until(WAIT, || load.ok_from("beta") >= 200).await,
        "the new policy's pool takes the traffic"
    );
    let report = load.stop().await;
    eprintln!(
        "load across the change: {} ok, {} failed, by backend {:?}",
        report.ok, report.failed, report.by_backend
    );
    assert_eq!(report.failed, 0, "{:?}", report.errors);
    assert!(
        report.by_backend["old"] <= switched_at + 8,
        "after the binding, /beta stops going to the default: {:?} (old had {switched_at})",
        report.by_backend
    );

    let bindings = nitro.get("config/csvserver_cspolicy_binding/front").await;
    assert_eq!(
        bindings.body["csvserver_cspolicy_binding"],
        json!([{"name": "front", "policyname": "beta", "targetlbvserver": "beta-lb", "priority": 10}])
    );
    // `nsconfig save` writes the policy and its binding; the file runs as it is.
    let saved = nitro
        .post("config/nsconfig?action=save", json!({"nsconfig": {}}))
        .await;
    assert_eq!(saved.status, StatusCode::OK, "{:?}", saved.body);
    let saved = std::fs::read_to_string(ballast.config_path()).expect("the saved file");
    let (code, _, stderr) = BALLAST.check_file(ballast.config_path());
    assert_eq!(code, 0, "{stderr}\n{saved}");
    let reread: toml::Table = toml::from_str(&saved).expect("TOML");
    assert_eq!(
        reread["cspolicy"][0]["rule"].as_str(),
        Some(r#"HTTP.REQ.URL.PATH.STARTSWITH("/beta/")"#),
        "{saved}"
    );
    assert_eq!(
        reread["csvserver"][0]["policies"][0]["targetlbvserver"].as_str(),
        Some("beta-lb"),
        "{saved}"
    );

    // A bound policy, or a target in use, cannot be deleted; unbinding sends /beta back to the
    // default.
    let refused = nitro.delete("config/lbvserver/beta-lb").await;
    assert_eq!(refused.status, StatusCode::CONFLICT, "{:?}", refused.body);
    assert!(
        refused.message().contains("csvserver `front`"),
        "{}",
        refused.message()
    );
    let refused = nitro.delete("config/cspolicy/beta").await;
    assert_eq!(refused.status, StatusCode::CONFLICT, "{:?}", refused.body);
    let unbound = nitro
        .delete("config/csvserver_cspolicy_binding/front?args=policyname:beta")
        .await;
    assert_eq!(unbound.status, StatusCode::OK, "{:?}", unbound.body);
    assert_eq!(
        get(front, "/beta/page").await.unwrap().backend(),
        Some("old")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invalid_rule_is_refused_with_its_path_in_the_file_and_through_the_api() {
    let net = Net::new();
    let a = Backend::start(net.free_addr(1), "a").await;
    let (front, admin, metrics) = (net.free_addr(250), net.free_addr(251), net.free_addr(252));
    let good = format!(
        r#"{}
[[cspolicy]]
policyname = "api"
rule = 'HTTP.REQ.URL.STARTSWITH("/api")'

[[csvserver]]
name = "front"
servicetype = "HTTP"
ipv46 = "{}"
port = {}
policies = [{{ policyname = "api", targetlbvserver = "a-lb", priority = 10 }}]
"#,
        pool("a", a.addr()),
        front.ip(),
        front.port()
    );
    let text = config(admin, metrics, &good);

    let dir = ballast_tests::TempDir::new("cs-run");
    dir.write("admin.pass", format!("{PASSWORD}\n").as_bytes());
    let (code, stdout, stderr) = BALLAST.check_file(&dir.write("good.toml", &text));
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stdout.contains("OK (1 lbvserver, 1 csvserver, 1 servicegroup"),
        "{stdout}"
    );

    // In a file: `ballast check` and `ballast run` name the key and where the rule broke.
    let broken = text.replace(
        r#"'HTTP.REQ.URL.STARTSWITH("/api")'"#,
        r#"'HTTP.REQ.URL.STARTSWITH(/api)'"#,
    );
    let (code, _, stderr) = BALLAST.check(&broken);
    assert_eq!(code, 1, "{stderr}");
    let problem =
        "cspolicy[0].rule: at character 25: expected a string in double quotes, found `/api)`";
    assert!(stderr.contains(problem), "{stderr}");
    let path = dir.write("ballast.toml", &broken);
    let run = std::process::Command::new(BALLAST.path())
        .args(["run", "--config"])
        .arg(&path)
        .stdin(std::process::Stdio::null())
        .output()
        .expect("ballast run");
    assert!(!run.status.success());
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(stderr.contains(problem), "{stderr}");

    // Through the API: 400 naming the policy's field; nothing changes.
    let ballast = start(&text).await;
    let nitro = Nitro::new(admin, "nsroot", PASSWORD);
    let bad = nitro
        .post(
            "config/cspolicy",
            json!({"cspolicy": {"policyname": "web", "rule": r#"HTTP.REQ.HOST.EQ("a")"#}}),
        )
        .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST, "{:?}", bad.body);
    assert!(
        bad.message()
            .contains("cspolicy `web`.rule: at character 10: expected HOSTNAME, URL"),
        "{}",
        bad.message()
    );
    let changed = nitro
        .put(
            "config/cspolicy",
            json!({"cspolicy": {"policyname": "api", "rule": r#"HTTP.REQ.URL.STARTSWITH("/api") &&"#}}),
        )
        .await;
    assert_eq!(
        changed.status,
        StatusCode::BAD_REQUEST,
        "{:?}",
        changed.body
    );
    assert!(
        changed
            .message()
            .contains("cspolicy `api`.rule: at character 35"),
        "{}",
        changed.message()
    );
    let bad_priority = nitro
        .put(
            "config/csvserver_cspolicy_binding",
            json!({"csvserver_cspolicy_binding": {"name": "front", "policyname": "api",
                   "targetlbvserver": "nowhere", "priority": 10}}),
        )
        .await;
    assert_eq!(bad_priority.status, StatusCode::BAD_REQUEST);
    assert!(
        bad_priority.message().contains(
            "csvserver `front`.policies[0].targetlbvserver: no lbvserver named `nowhere`"
        ),
        "{}",
        bad_priority.message()
    );
    let policies = nitro.get("config/cspolicy").await;
    assert_eq!(
        policies.body["cspolicy"],
        json!([{"policyname": "api", "rule": r#"HTTP.REQ.URL.STARTSWITH("/api")"#}])
    );
    assert_eq!(get(front, "/api/x").await.unwrap().backend(), Some("a"));
    drop(ballast);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_match_without_a_default_is_404_until_a_default_is_set() {
    let net = Net::new();
    let a = Backend::start(net.free_addr(1), "a").await;
    let (front, admin, metrics) = (net.free_addr(250), net.free_addr(251), net.free_addr(252));
    let body = format!(
        r#"{}
[[cspolicy]]
policyname = "api"
rule = 'HTTP.REQ.URL.STARTSWITH("/api")'

[[csvserver]]
name = "front"
servicetype = "HTTP"
ipv46 = "{}"
port = {}
policies = [{{ policyname = "api", targetlbvserver = "a-lb", priority = 10 }}]
"#,
        pool("a", a.addr()),
        front.ip(),
        front.port()
    );
    let _ballast = start(&config(admin, metrics, &body)).await;

    let (status, text) = get_as(front, "www.example.com", "/index.html").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(
        text,
        "404 Not Found: nothing is configured to serve this request\n"
    );
    assert_eq!(a.requests(), 0);
    assert_eq!(get(front, "/api/x").await.unwrap().backend(), Some("a"));

    let nitro = Nitro::new(admin, "nsroot", PASSWORD);
    let stat = nitro.get("stat/csvserver/front").await;
    assert_eq!(stat.body["csvserver"][0]["unmatched"], 1, "{:?}", stat.body);
    let (_, text) = scrape(metrics, None).await;
    assert_eq!(
        sample(
            &text,
            r#"ballast_csvserver_unmatched_total{csvserver="front"}"#
        ),
        Some(1.0)
    );
    assert_eq!(
        sample(
            &text,
            r#"ballast_vserver_errors_total{vserver="front",side="client",kind="no_switch_match"}"#
        ),
        Some(1.0),
        "{text}"
    );

    let set = nitro
        .put(
            "config/csvserver",
            json!({"csvserver": {"name": "front", "defaultlbvserver": "a-lb"}}),
        )
        .await;
    assert_eq!(set.status, StatusCode::OK, "{:?}", set.body);
    let (status, who) = get_as(front, "www.example.com", "/index.html").await;
    assert_eq!((status, who.as_str()), (StatusCode::OK, "a"));

    // A csvserver added through the API listens at once; deleted, it stops listening.
    let second = net.free_addr(253);
    let added = nitro
        .post(
            "config/csvserver",
            json!({"csvserver": {"name": "second", "servicetype": "HTTP",
                   "ipv46": second.ip().to_string(), "port": second.port(),
                   "defaultlbvserver": "a-lb"}}),
        )
        .await;
    assert_eq!(added.status, StatusCode::CREATED, "{:?}", added.body);
    assert_eq!(get(second, "/").await.unwrap().backend(), Some("a"));
    let clash = nitro
        .post(
            "config/csvserver",
            json!({"csvserver": {"name": "third", "servicetype": "HTTP",
                   "ipv46": second.ip().to_string(), "port": second.port()}}),
        )
        .await;
    assert_eq!(clash.status, StatusCode::BAD_REQUEST, "{:?}", clash.body);
    assert!(
        clash
            .message()
            .contains("is already used by csvserver `second`"),
        "{}",
        clash.message()
    );
    let deleted = nitro.delete("config/csvserver/second").await;
    assert_eq!(deleted.status, StatusCode::OK, "{:?}", deleted.body);
    assert!(
        wait_until(WAIT, || std::net::TcpStream::connect(second).is_err()).await,
        "the deleted csvserver still accepts connections"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ssl_csvserver_terminates_tls_and_switches_by_sni_host_over_h2_and_http1() {
    let net = Net::new();
    let shop = Backend::start(net.free_addr(1), "shop").await;
    let blog = Backend::start(net.free_addr(2), "blog").await;
    let (front, admin, metrics) = (net.free_addr(250), net.free_addr(251), net.free_addr(252));
    let ca = TestCa::new();
    let (shop_cert, blog_cert) = (ca.issue(&["shop.test"]), ca.issue(&["blog.test"]));
    let body = format!(
        r#"{}{}
[[sslcertkey]]
certkey = "shop"
cert = "shop.pem"
key = "shop.key"

[[sslcertkey]]
certkey = "blog"
cert = "blog.pem"
key = "blog.key"

[[cspolicy]]
policyname = "blog"
rule = 'HTTP.REQ.HOSTNAME.EQ("blog.test")'

[[csvserver]]
name = "secure-front"
servicetype = "SSL"
ipv46 = "{}"
port = {}
sslcertkey = ["shop", "blog"]
defaultlbvserver = "shop-lb"
policies = [{{ policyname = "blog", targetlbvserver = "blog-lb", priority = 1 }}]
"#,
        pool("shop", shop.addr()),
        pool("blog", blog.addr()),
        front.ip(),
        front.port()
    );
    let _ballast = BALLAST
        .start_with_files(
            &config(admin, metrics, &body),
            &[
                ("admin.pass", format!("{PASSWORD}\n").as_bytes()),
                ("shop.pem", shop_cert.cert_pem.as_bytes()),
                ("shop.key", shop_cert.key_pem.as_bytes()),
                ("blog.pem", blog_cert.cert_pem.as_bytes()),
                ("blog.key", blog_cert.key_pem.as_bytes()),
            ],
        )
        .await;

    // HTTP/2 (ALPN h2): SNI picks blog's certificate, `:authority` picks the blog pool.
    let tls = connect_tls(front, "blog.test", ca.client_config(&["h2", "http/1.1"]))
        .await
        .expect("TLS as blog.test");
    assert_eq!(peer_leaf(&tls).as_ref(), Some(&blog_cert.der));
    assert_eq!(negotiated_alpn(&tls).as_deref(), Some("h2"));
    let mut h2 = H2::over(tls, "https", "blog.test:443").await.unwrap();
    let reply = h2.get("/post/1").await.unwrap();
    assert_eq!(reply.backend(), Some("blog"));
    assert_eq!(blog.last_forwarded_proto().as_deref(), Some("https"));

    // HTTP/1.1: no policy matches shop.test, so the default takes it.
    let tls = connect_tls(front, "shop.test", ca.client_config(&["http/1.1"]))
        .await
        .expect("TLS as shop.test");
    assert_eq!(peer_leaf(&tls).as_ref(), Some(&shop_cert.der));
    let mut h1 = H1::over(tls, "shop.test").await.unwrap();
    assert_eq!(h1.get("/cart").await.unwrap().backend(), Some("shop"));
}
