//! `/metrics` as a real scraper sees it: the classic text format passes `promtool check
//! metrics`, OpenMetrics (when asked for) passes Python `prometheus_client`'s strict parser, and
//! the counters match the requests that were sent.

use ballast_tests::prom::{
    OPENMETRICS_ACCEPT, assert_openmetrics_parses, assert_promtool_accepts, sample, scrape,
};
use ballast_tests::{BALLAST_SECTION, Backend, Binary, Net, get, members_toml};
use http::StatusCode;

/// The `ballast` binary cargo built for this test run.
const BALLAST: Binary = Binary::new(env!("CARGO_BIN_EXE_ballast"));

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_pass_promtool_and_a_strict_openmetrics_parser_and_count_right() {
    let net = Net::new();
    let a = Backend::start(net.free_addr(1), "a").await;
    let metrics = net.free_addr(250);
    let vserver = net.free_addr(251);
    let config = format!(
        r#"{BALLAST_SECTION}[metrics]
listen = "{metrics}"

[[servicegroup]]
servicegroupname = "pool"
servicetype = "HTTP"
{}

[[lbvserver]]
name = "web"
servicetype = "HTTP"
ipv46 = "{}"
port = {}
lbmethod = "ROUNDROBIN"
servicegroupname = "pool"
"#,
        members_toml(&[a.addr()]),
        vserver.ip(),
        vserver.port()
    );
    let _ballast = BALLAST.start(&config).await;
    for _ in 0..25 {
        assert_eq!(get(vserver, "/").await.unwrap().status, StatusCode::OK);
    }
    for _ in 0..3 {
        assert_eq!(
            get(vserver, "/missing-path-is-still-200")
                .await
                .unwrap()
                .status,
            StatusCode::OK
        );
    }

    let (content_type, text) = scrape(metrics, None).await;
    assert!(
        content_type.starts_with("text/plain; version=0.0.4"),
        "{content_type}"
    );
    assert_promtool_accepts(&text);
    assert_eq!(
        sample(&text, "ballast_vserver_requests_total{vserver=\"web\"}"),
        Some(28.0),
        "{text}"
    );
    assert_eq!(
        sample(
            &text,
            "ballast_vserver_responses_total{vserver=\"web\",class=\"2xx\"}"
        ),
        Some(28.0)
    );
    let member = format!(
        "ballast_member_requests_total{{servicegroup=\"pool\",member=\"{}\"}}",
        a.addr()
    );
    assert_eq!(sample(&text, &member), Some(28.0), "{text}");
    assert_eq!(
        sample(
            &text,
            "ballast_vserver_response_time_seconds_count{vserver=\"web\"}"
        ),
        Some(28.0)
    );
    assert_eq!(a.requests(), 28);

    let (content_type, openmetrics) = scrape(metrics, Some(OPENMETRICS_ACCEPT)).await;
    assert!(
        content_type.starts_with("application/openmetrics-text"),
        "{content_type}"
    );
    assert!(openmetrics.ends_with("# EOF\n"));
    let families = assert_openmetrics_parses(&openmetrics);
    assert!(families >= 15, "only {families} families");
}
