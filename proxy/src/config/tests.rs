//! Validation as an operator meets it: every problem in one pass, each with its path.

use std::path::Path;
use std::time::Duration;

use super::validate::from_toml;
use super::*;

fn problems(text: &str) -> Vec<String> {
    match from_toml(text, Path::new(".")) {
        Ok(_) => Vec::new(),
        Err(error) => error.problems.iter().map(ToString::to_string).collect(),
    }
}

const GOOD: &str = r#"
[[lbmonitor]]
monitorname = "h"
type = "HTTP"
httprequest = "GET /healthz"
respcode = ["200", "300-399"]
interval = "1s"
resptimeout = "500ms"

[[servicegroup]]
servicegroupname = "pool"
servicetype = "HTTP"
monitor = ["h"]
members = [{ ip = "127.0.0.2", port = 80, weight = 3 }, { ip = "::1", port = 81, state = "DISABLED" }]

[[lbvserver]]
name = "web"
servicetype = "HTTP"
ipv46 = "127.0.0.1"
port = 8080
lbmethod = "URLHASH"
servicegroupname = "pool"
"#;

#[test]
fn a_good_config_becomes_typed_values() {
    let config = from_toml(GOOD, Path::new(".")).expect("valid");
    let group = config.service_group("pool").unwrap();
    assert_eq!(group.members[0].weight, 3);
    assert!(!group.members[1].enabled);
    assert_eq!(config.vservers[0].lb_method, LbMethod::UrlHash);
    assert_eq!(config.monitors[0].retries, 3, "NetScaler's default");
    match &config.monitors[0].probe {
        Probe::Http {
            path, resp_codes, ..
        } => {
            assert_eq!(path, "/healthz");
            assert_eq!(resp_codes, &vec![200..=200, 300..=399]);
        }
        other => panic!("expected an HTTP probe, got {other:?}"),
    }
}

#[test]
fn every_problem_is_reported_in_one_pass_with_its_path() {
    let text = r#"
[[servicegroup]]
servicegroupname = "pool"
servicetype = "HTTP"
members = [{ ip = "127.0.0.2", port = 70000 }, { ip = "not-an-ip", port = 80, weight = 0 }]

[[lbvserver]]
name = "web"
servicetype = "HTTP"
ipv46 = "127.0.0.1"
port = 8080
lbmethod = "FASTEST"
servicegroupname = "missing"
"#;
    let found = problems(text);
    for expected in [
        "servicegroup[0].members[0].port: expected 1..=65535, got 70000",
        "servicegroup[0].members[1].ip: `not-an-ip` is not an IPv4 or IPv6 address",
        "servicegroup[0].members[1].weight: expected 1..=100, got 0",
        "lbvserver[0].lbmethod: unknown lbmethod `FASTEST`",
        "lbvserver[0].servicegroupname: no servicegroup named `missing`",
    ] {
        assert!(
            found.iter().any(|p| p.starts_with(expected)),
            "missing {expected:?} in {found:#?}"
        );
    }
    assert_eq!(found.len(), 5, "{found:#?}");
}

#[test]
fn unknown_keys_and_wrong_types_name_their_path() {
    let text = r#"
[[servicegroup]]
servicegroupname = "a"
servicetype = "HTTP"
members = [{ ip = "127.0.0.2", port = "eighty" }]

[[servicegroup]]
servicegroupname = "b"
servicetype = "HTTP"
timeout = "5s"

[[lbvserver]]
name = "web"
servicetype = "HTTP"
ipv46 = "127.0.0.1"
port = 8080
servicegroupname = "a"
"#;
    let found = problems(text);
    assert!(
        found
            .iter()
            .any(|p| *p == "servicegroup[0].members[0].port: expected an integer, got \"eighty\""),
        "{found:#?}"
    );
    assert!(
        found
            .iter()
            .any(|p| p.starts_with("servicegroup[1].timeout: unknown field `timeout`")),
        "{found:#?}"
    );
    // `a` failed to parse, so the vserver's reference to it is not reported a second time.
    assert_eq!(found.len(), 2, "{found:#?}");
}

#[test]
fn cross_checks_duplicates_clashes_and_types() {
    let text = r#"
[[lbmonitor]]
monitorname = "m"
type = "TCP"
interval = "1s"
resptimeout = "2s"
respcode = ["200"]

[[servicegroup]]
servicegroupname = "tcp"
servicetype = "TCP"
monitor = ["m", "nope"]
members = [{ ip = "127.0.0.2", port = 80 }, { ip = "127.0.0.2", port = 80 }]

[[lbvserver]]
name = "a"
servicetype = "HTTP"
ipv46 = "0.0.0.0"
port = 8080
servicegroupname = "tcp"

[[lbvserver]]
name = "a"
servicetype = "SSL"
ipv46 = "127.0.0.1"
port = 8080
"#;
    let found = problems(text);
    for expected in [
        "lbmonitor[0].resptimeout: must be shorter than interval (1s)",
        "lbmonitor[0].respcode: a TCP monitor does not take this field",
        "servicegroup[0].monitor[1]: no lbmonitor named `nope`",
        "servicegroup[0].members[1]: 127.0.0.2:80 is bound twice",
        "lbvserver[0].servicegroupname: a HTTP vserver needs an HTTP or SSL servicegroup, `tcp` is TCP",
        "lbvserver[1].name: `a` is already the name of lbvserver[0]",
        "lbvserver[1].port: 127.0.0.1:8080 is already used by lbvserver `a`",
        "lbvserver[1].sslcertkey: a SSL vserver needs at least one sslcertkey",
    ] {
        assert!(
            found.iter().any(|p| p.starts_with(expected)),
            "missing {expected:?} in {found:#?}"
        );
    }
}

#[test]
fn bad_durations_and_toml_syntax_are_explained() {
    let found = problems(
        "[httpprofile]\nclientheadertimeout = \"10\"\n[ballast]\nshutdowntimeout = \"3 fortnights\"\n",
    );
    assert!(
        found
            .iter()
            .any(|p| p.contains("httpprofile.clientheadertimeout: `10` has no unit")),
        "{found:#?}"
    );
    assert!(
        found
            .iter()
            .any(|p| p.contains("ballast.shutdowntimeout: unknown unit")),
        "{found:#?}"
    );
    let found = problems("[[lbvserver]\nname = 1");
    assert!(found[0].starts_with("not valid TOML"), "{found:#?}");
}

#[test]
fn saving_and_loading_round_trips() {
    let config = from_toml(GOOD, Path::new(".")).unwrap();
    let text = toml::to_string(&config.to_file()).unwrap();
    let again = from_toml(&text, Path::new(".")).unwrap();
    assert_eq!(again.to_file(), config.to_file());
    assert_eq!(again.service_groups, config.service_groups);
    assert_eq!(again.vservers, config.vservers);
    assert_eq!(again.monitors, config.monitors);
}

#[test]
fn missing_certificate_files_are_reported() {
    let text = r#"
[[sslcertkey]]
certkey = "site"
cert = "/nonexistent/site.pem"
key = "/nonexistent/site.key"
"#;
    let found = problems(text);
    assert!(
        found[0].starts_with("sslcertkey[0].cert: cannot read /nonexistent/site.pem"),
        "{found:#?}"
    );
    assert!(
        found[1].starts_with("sslcertkey[0].key: cannot read /nonexistent/site.key"),
        "{found:#?}"
    );
}

#[test]
fn load_monitors_check_versions_tables_and_metrics() {
    let text = r#"
[[lbmetrictable]]
metrictable = "app"
metrics = [{ metric = "queue", snmpoid = "1.3.6.1.4.1.99.1.0", type = "gauge" }]

[[lbmonitor]]
monitorname = "cpu"
type = "LOAD"
metrics = [{ metric = "cpu", metricthreshold = 80, metricweight = 2 }]

[[lbmonitor]]
monitorname = "app-load"
type = "LOAD"
snmpversion = "V3"
snmpv3user = "ballast"
snmpauthprotocol = "SHA-256"
snmpauthpassword = "authpass123"
snmpprivprotocol = "AES"
snmpprivpassword = "privpass123"
metrictable = "app"
metrics = [{ metric = "queue", metricthreshold = "100" }]
passive = true
"#;
    let config = from_toml(text, Path::new(".")).expect("valid");
    let Probe::Load(load) = &config.monitor("cpu").unwrap().probe else {
        panic!("a LOAD probe")
    };
    assert_eq!(load.table, "linux");
    assert_eq!(
        load.security,
        SnmpSecurity::V2c {
            community: Secret::inline("public").unwrap()
        }
    );
    assert_eq!(load.metrics[0].weight, 2.0);
    let Probe::Load(app) = &config.monitor("app-load").unwrap().probe else {
        panic!("a LOAD probe")
    };
    assert!(app.passive);
    assert_eq!(app.metrics[0].threshold, Some(100.0));

    let bad = r#"
[[lbmonitor]]
monitorname = "m"
type = "LOAD"
snmpversion = "V3"
snmpcommunity = "public"
snmpauthprotocol = "MD5"
snmpauthpassword = "short"
metrictable = "nope"

[[lbmonitor]]
monitorname = "n"
type = "LOAD"
metrics = [{ metric = "disk", metricthreshold = 0 }]
"#;
    let found = problems(bad);
    for expected in [
        "lbmonitor[0].snmpcommunity: snmpversion V3 authenticates a user, not a community",
        "lbmonitor[0].snmpv3user: snmpversion V3 needs a user",
        "lbmonitor[0].snmpauthprotocol: unknown protocol `MD5`",
        "lbmonitor[0].snmpauthpassword: must be at least 8 characters",
        "lbmonitor[0].metrictable: no lbmetrictable named `nope`",
        "lbmonitor[1].metrics[0].metricthreshold: must be above zero",
        "lbmonitor[1].metrics[0].metric: metric table `linux` has no metric `disk`",
    ] {
        assert!(
            found.iter().any(|p| p.starts_with(expected)),
            "missing {expected:?} in {found:#?}"
        );
    }
}

#[test]
fn snmp_secrets_come_inline_from_a_file_or_the_environment_and_never_show_in_debug() {
    let dir = temp_dir("snmp-secrets");
    std::fs::write(dir.join("auth.secret"), "auth-from-a-file\n").unwrap();
    std::fs::write(dir.join("short.secret"), "short\n").unwrap();
    let v3 = |auth: &str| {
        format!(
            r#"
[[lbmonitor]]
monitorname = "v3"
type = "LOAD"
snmpversion = "V3"
snmpv3user = "ballast"
snmpauthprotocol = "SHA"
{auth}
snmpprivprotocol = "AES"
snmpprivpassword = "priv-inline-never-shown"

[[lbmonitor]]
monitorname = "v2"
type = "LOAD"
snmpcommunity = "community-never-shown"
"#
        )
    };
    let config = from_toml(&v3(r#"snmpauthpasswordfile = "auth.secret""#), &dir).expect("valid");
    let Probe::Load(load) = &config.monitor("v3").unwrap().probe else {
        panic!("a LOAD probe")
    };
    let SnmpSecurity::V3 {
        auth: Some((protocol, auth)),
        privacy: Some((_, privacy)),
        ..
    } = &load.security
    else {
        panic!("authPriv: {:?}", load.security)
    };
    assert_eq!(protocol, "SHA");
    assert_eq!(auth.expose(), "auth-from-a-file");
    assert_eq!(auth.source(), &SecretSource::File(dir.join("auth.secret")));
    assert_eq!(privacy.expose(), "priv-inline-never-shown");
    // Debug of the validated config and of its file form shows no value.
    for debugged in [format!("{config:?}"), format!("{:?}", config.to_file())] {
        for secret in [
            "auth-from-a-file",
            "priv-inline-never-shown",
            "community-never-shown",
        ] {
            assert!(!debugged.contains(secret), "{debugged}");
        }
    }
    // Saving writes what was given: the reference, and the inline values.
    let saved = toml::to_string(&config.to_file()).unwrap();
    assert!(
        saved.contains(r#"snmpauthpasswordfile = "auth.secret""#),
        "{saved}"
    );
    assert!(
        saved.contains(r#"snmpprivpassword = "priv-inline-never-shown""#),
        "{saved}"
    );
    assert!(
        saved.contains(r#"snmpcommunity = "community-never-shown""#),
        "{saved}"
    );

    let found = |auth: &str| match from_toml(&v3(auth), &dir) {
        Ok(_) => Vec::new(),
        Err(error) => error.problems.iter().map(ToString::to_string).collect(),
    };
    assert_eq!(
        found(r#"snmpauthpasswordenv = "BALLAST_TEST_NEVER_SET_7F3C""#),
        [
            "lbmonitor[0].snmpauthpasswordenv: environment variable BALLAST_TEST_NEVER_SET_7F3C is not set"
        ]
    );
    assert_eq!(
        found(r#"snmpauthpasswordfile = "short.secret""#),
        ["lbmonitor[0].snmpauthpasswordfile: must be at least 8 characters (as net-snmp requires)"]
    );
    assert_eq!(
        found("snmpauthpassword = \"authpass123\"\nsnmpauthpasswordenv = \"PATH\""),
        [
            "lbmonitor[0].snmpauthpassword: give only one of snmpauthpassword, snmpauthpasswordfile and snmpauthpasswordenv"
        ]
    );
    let absent = found(r#"snmpauthpasswordfile = "absent.secret""#);
    assert_eq!(absent.len(), 1, "{absent:#?}");
    assert!(
        absent[0].starts_with(&format!(
            "lbmonitor[0].snmpauthpasswordfile: cannot read {}: ",
            dir.join("absent.secret").display()
        )),
        "{absent:#?}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A LOAD-monitored servicegroup behind a vserver, scaled by a CloudStack profile. `{secret}`
/// and `{group}` are replaced by the profile's secret keys and extra group keys.
const AUTOSCALE: &str = r#"
[[lbmonitor]]
monitorname = "load"
type = "LOAD"
metrics = [{ metric = "cpu", metricthreshold = 90 }]

[[servicegroup]]
servicegroupname = "app"
servicetype = "HTTP"
monitor = ["load"]

[[lbvserver]]
name = "web"
servicetype = "HTTP"
ipv46 = "127.0.0.1"
port = 8080
servicegroupname = "app"

[[autoscaleprofile]]
name = "cloud"
url = "http://127.0.0.1:8096/client/api"
apikey = "key"
{secret}
zoneid = "zone-1"
templateid = "2a6b0b35-1f0a-4c0e-9d3e-3f4b1c2d5e6f"
serviceofferingid = "small"
networkids = ["net-a"]
memberport = 8000

[[autoscalegroup]]
name = "scale"
vserver = "web"
servicegroupname = "app"
profilename = "cloud"
minmembers = 1
maxmembers = 4
{group}
"#;

const METRICS: &str = r#"metrics = [{ name = "cpu", source = "snmp", upper = 70, lower = 20 }]"#;

fn autoscale(secret: &str, group: &str) -> String {
    AUTOSCALE
        .replace("{secret}", secret)
        .replace("{group}", group)
}

/// A fresh directory under the system's temp dir, removed by the test.
fn temp_dir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("ballast-config-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("create a temp dir");
    dir
}

#[test]
fn autoscale_groups_have_documented_defaults() {
    let text = autoscale(r#"sharedsecret = "s3cr3t-inline""#, METRICS);
    let config = from_toml(&text, Path::new(".")).expect("valid");
    let group = &config.autoscale_groups[0];
    let secs = Duration::from_secs;
    assert_eq!(group.interval, secs(10));
    assert_eq!(group.watch_time, secs(60));
    assert_eq!(group.cooldown, secs(120));
    assert_eq!(group.quiet_time, secs(60));
    assert_eq!(group.destroy_grace_period, secs(0));
    assert_eq!(group.warmup, secs(30));
    assert_eq!(group.health_grace_period, secs(60));
    assert_eq!(group.deploy_timeout, secs(600));
    assert_eq!(group.step, 1);
    assert_eq!(group.victim, Victim::Newest);
    assert!(group.enabled);
    assert!(!group.observe);

    let profile = &config.autoscale_profiles[0];
    assert_eq!(profile.secret.expose(), "s3cr3t-inline");
    assert_eq!(profile.secret.source(), &SecretSource::Inline);
    // Names and UUIDs are kept as written; the autoscaler resolves names.
    assert_eq!(profile.zone_id, "zone-1");
    assert_eq!(profile.template_id, "2a6b0b35-1f0a-4c0e-9d3e-3f4b1c2d5e6f");
    let debug = format!("{config:?}");
    assert!(!debug.contains("s3cr3t-inline"), "{debug}");

    let text = autoscale(
        r#"sharedsecret = "s""#,
        &format!("observe = true\ndeploytimeout = \"5m\"\nstate = \"DISABLED\"\n{METRICS}"),
    );
    let group = &from_toml(&text, Path::new("."))
        .expect("valid")
        .autoscale_groups[0];
    assert!(group.observe);
    assert!(!group.enabled);
    assert_eq!(group.deploy_timeout, secs(300));
}

#[test]
fn the_cloudstack_secret_comes_from_exactly_one_place() {
    let dir = temp_dir("secret");
    std::fs::write(dir.join("cloud.secret"), "from-a-file\nsecond line\n").unwrap();
    std::fs::write(dir.join("empty.secret"), "\n").unwrap();

    // A relative file is read beside the config.
    let text = autoscale(r#"sharedsecretfile = "cloud.secret""#, METRICS);
    let config = from_toml(&text, &dir).expect("valid");
    let secret = &config.autoscale_profiles[0].secret;
    assert_eq!(secret.expose(), "from-a-file");
    assert_eq!(
        secret.source(),
        &SecretSource::File(dir.join("cloud.secret"))
    );
    // Saving writes the reference, not the value.
    let saved = toml::to_string(&config.to_file()).unwrap();
    assert!(
        saved.contains(r#"sharedsecretfile = "cloud.secret""#),
        "{saved}"
    );
    assert!(!saved.contains("from-a-file"), "{saved}");

    let found = |secret: &str| match from_toml(&autoscale(secret, METRICS), &dir) {
        Ok(_) => Vec::new(),
        Err(error) => error.problems.iter().map(ToString::to_string).collect(),
    };
    let exactly_one =
        "autoscaleprofile[0]: give exactly one of sharedsecret, sharedsecretfile, sharedsecretenv";
    assert_eq!(found(""), [exactly_one]);
    assert_eq!(
        found("sharedsecret = \"s\"\nsharedsecretenv = \"PATH\""),
        [exactly_one]
    );
    assert_eq!(
        found(r#"sharedsecretfile = "empty.secret""#),
        [format!(
            "autoscaleprofile[0].sharedsecretfile: the first line of {} is empty",
            dir.join("empty.secret").display()
        )]
    );
    let absent = found(r#"sharedsecretfile = "absent.secret""#);
    assert_eq!(absent.len(), 1, "{absent:#?}");
    assert!(
        absent[0].starts_with(&format!(
            "autoscaleprofile[0].sharedsecretfile: cannot read {}: ",
            dir.join("absent.secret").display()
        )),
        "{absent:#?}"
    );
    assert_eq!(
        found(r#"sharedsecretenv = "BALLAST_TEST_NEVER_SET_7F3C""#),
        [
            "autoscaleprofile[0].sharedsecretenv: environment variable BALLAST_TEST_NEVER_SET_7F3C is not set"
        ]
    );
    assert_eq!(
        found(r#"sharedsecret = " ""#),
        ["autoscaleprofile[0].sharedsecret: must not be empty"]
    );
    // PATH is set wherever tests run (setting a variable would need `unsafe`).
    assert_eq!(found(r#"sharedsecretenv = "PATH""#), Vec::<String>::new());
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn the_cloudstack_api_key_comes_from_exactly_one_place() {
    let dir = temp_dir("apikey");
    std::fs::write(dir.join("cloud.apikey"), "key-from-a-file\n").unwrap();
    let secret = r#"sharedsecret = "s""#;
    let with_key =
        |key: &str| autoscale(secret, METRICS).replace("apikey = \"key\"\n", &format!("{key}\n"));
    let found = |key: &str| match from_toml(&with_key(key), &dir) {
        Ok(_) => Vec::new(),
        Err(error) => error.problems.iter().map(ToString::to_string).collect(),
    };

    // A relative file is read beside the config; saving writes the reference back.
    let config = from_toml(&with_key(r#"apikeyfile = "cloud.apikey""#), &dir).expect("valid");
    assert_eq!(config.autoscale_profiles[0].api_key, "key-from-a-file");
    let saved = toml::to_string(&config.to_file()).unwrap();
    assert!(saved.contains(r#"apikeyfile = "cloud.apikey""#), "{saved}");
    assert!(!saved.contains("key-from-a-file"), "{saved}");
    // Inline, as before.
    let config = from_toml(&with_key(r#"apikey = "inline-key""#), &dir).expect("valid");
    assert_eq!(config.autoscale_profiles[0].api_key, "inline-key");
    // PATH is set wherever tests run (setting a variable would need `unsafe`).
    assert_eq!(found(r#"apikeyenv = "PATH""#), Vec::<String>::new());

    let exactly_one = "autoscaleprofile[0]: give exactly one of apikey, apikeyfile, apikeyenv";
    assert_eq!(found(""), [exactly_one]);
    assert_eq!(
        found("apikey = \"k\"\napikeyfile = \"cloud.apikey\""),
        [exactly_one]
    );
    assert_eq!(
        found(r#"apikeyenv = "BALLAST_TEST_NEVER_SET_7F3C""#),
        [
            "autoscaleprofile[0].apikeyenv: environment variable BALLAST_TEST_NEVER_SET_7F3C is not set"
        ]
    );
    assert_eq!(
        found(r#"apikey = " ""#),
        ["autoscaleprofile[0].apikey: must not be empty"]
    );
    let absent = found(r#"apikeyfile = "absent.apikey""#);
    assert_eq!(absent.len(), 1, "{absent:#?}");
    assert!(
        absent[0].starts_with(&format!(
            "autoscaleprofile[0].apikeyfile: cannot read {}: ",
            dir.join("absent.apikey").display()
        )),
        "{absent:#?}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn the_cloudstack_endpoint_comes_from_exactly_one_place() {
    let dir = temp_dir("url");
    std::fs::write(
        dir.join("cloud.url"),
        "https://cs.example:8443/client/api\n",
    )
    .unwrap();
    std::fs::write(dir.join("bad.url"), "cs.example:8443\n").unwrap();
    let secret = r#"sharedsecret = "s""#;
    let inline = "url = \"http://127.0.0.1:8096/client/api\"\n";
    let with_url = |url: &str| autoscale(secret, METRICS).replace(inline, &format!("{url}\n"));
    let found = |url: &str| match from_toml(&with_url(url), &dir) {
        Ok(_) => Vec::new(),
        Err(error) => error.problems.iter().map(ToString::to_string).collect(),
    };

    let config = from_toml(&with_url(r#"urlfile = "cloud.url""#), &dir).expect("valid");
    assert_eq!(
        config.autoscale_profiles[0].url,
        "https://cs.example:8443/client/api"
    );
    let saved = toml::to_string(&config.to_file()).unwrap();
    assert!(saved.contains(r#"urlfile = "cloud.url""#), "{saved}");

    assert_eq!(
        found(""),
        ["autoscaleprofile[0]: give exactly one of url, urlfile, urlenv"]
    );
    // What a file or a variable holds is checked like an inline URL, under its own key.
    assert_eq!(
        found(r#"urlfile = "bad.url""#),
        ["autoscaleprofile[0].urlfile: `cs.example:8443` is not an http:// or https:// URL"]
    );
    assert_eq!(
        found(r#"url = "ftp://cs.example/""#),
        ["autoscaleprofile[0].url: `ftp://cs.example/` is not an http:// or https:// URL"]
    );
    assert_eq!(
        found(r#"urlenv = "BALLAST_TEST_NEVER_SET_7F3C""#),
        ["autoscaleprofile[0].urlenv: environment variable BALLAST_TEST_NEVER_SET_7F3C is not set"]
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn autoscale_groups_check_bounds_thresholds_and_snmp_metrics() {
    let secret = r#"sharedsecret = "s""#;
    let group = r#"
minmembers = 5
step = 0
deploytimeout = "0s"
metrics = [
    { name = "disk", source = "snmp", upper = 70, lower = 20 },
    { name = "connections", source = "connections", upper = 10, lower = 10 },
]
"#;
    let text = autoscale(secret, group).replace("minmembers = 1\n", "");
    let found = problems(&text);
    let expected = [
        "autoscalegroup[0].maxmembers: must be at least minmembers (5)",
        "autoscalegroup[0].deploytimeout: must be longer than zero",
        "autoscalegroup[0].step: expected 1..=100, got 0",
        "autoscalegroup[0].metrics[1].lower: must be below upper (10)",
        "autoscalegroup[0].metrics[0].name: metric table `linux` of LOAD monitor `load` has no metric `disk`; it has cpu, memory, load, cpu_user, cpu_system, cpu_idle, mem_total_kb, mem_avail_kb",
    ];
    for problem in expected {
        assert!(
            found.iter().any(|p| p == problem),
            "missing {problem:?} in {found:#?}"
        );
    }
    assert_eq!(found.len(), expected.len(), "{found:#?}");

    // Thresholds on one side only: the group could never scale the other way.
    let only_upper = r#"metrics = [{ name = "cpu", source = "snmp", upper = 70 }, { name = "connections", source = "connections", upper = 100 }]"#;
    assert_eq!(
        problems(&autoscale(secret, only_upper)),
        [
            "autoscalegroup[0].metrics: no metric has a lower threshold, so the group could never scale in"
        ]
    );
    let only_lower = r#"metrics = [{ name = "cpu", source = "snmp", lower = 20 }]"#;
    assert_eq!(
        problems(&autoscale(secret, only_lower)),
        [
            "autoscalegroup[0].metrics: no metric has an upper threshold, so the group could never scale out"
        ]
    );

    // An snmp metric needs a LOAD monitor on the servicegroup, and reads that monitor's table.
    let no_load = autoscale(secret, METRICS).replace("monitor = [\"load\"]\n", "");
    assert_eq!(
        problems(&no_load),
        [
            "autoscalegroup[0].metrics[0].source: servicegroup `app` binds no LOAD monitor to read snmp metric `cpu` from"
        ]
    );
    let custom_table = format!(
        "{}\n[[lbmetrictable]]\nmetrictable = \"app\"\nmetrics = [{{ metric = \"queue\", snmpoid = \"1.3.6.1.4.1.99.1.0\" }}]\n",
        autoscale(secret, METRICS).replace(
            "metrics = [{ metric = \"cpu\", metricthreshold = 90 }]",
            "metrictable = \"app\"",
        )
    );
    assert_eq!(
        problems(&custom_table),
        [
            "autoscalegroup[0].metrics[0].name: metric table `app` of LOAD monitor `load` has no metric `cpu`; it has queue"
        ]
    );
    let queue = custom_table.replace(
        r#"{ name = "cpu", source = "snmp""#,
        r#"{ name = "queue", source = "snmp""#,
    );
    assert_eq!(problems(&queue), Vec::<String>::new());
}

#[test]
fn connection_limits_and_idle_timeouts_default_by_service_type_and_are_checked() {
    let both = r#"
[[servicegroup]]
servicegroupname = "echo"
servicetype = "TCP"

[[lbvserver]]
name = "tcp"
servicetype = "TCP"
ipv46 = "127.0.0.1"
port = 9000
servicegroupname = "echo"
"#;
    let config = from_toml(&format!("{GOOD}{both}"), Path::new(".")).expect("valid");
    assert_eq!(
        config.settings.max_conn, None,
        "derived from the descriptor limit"
    );
    assert_eq!(config.http_profile.max_concurrent_streams, 100);
    let web = &config.vservers[0];
    assert_eq!((web.max_client, web.max_client_per_source), (None, None));
    assert_eq!(web.client_timeout, Duration::from_secs(180));
    assert_eq!(config.vservers[1].client_timeout, Duration::from_secs(9000));
    assert_eq!(
        config.service_groups[0].server_timeout,
        Duration::from_secs(360)
    );
    assert_eq!(
        config.service_groups[1].server_timeout,
        Duration::from_secs(9000)
    );

    // GOOD ends in its [[lbvserver]]: the keys below go there.
    let text = format!(
        "{GOOD}\nmaxclient = 500\nmaxclientpersource = 0\nclttimeout = \"30s\"\n\n[ballast]\nmaxconn = 1000\n\n[httpprofile]\nmaxconcurrentstreams = 8\n"
    );
    let config = from_toml(&text, Path::new(".")).expect("valid");
    assert_eq!(config.settings.max_conn, Some(1000));
    assert_eq!(config.http_profile.max_concurrent_streams, 8);
    let web = &config.vservers[0];
    assert_eq!(
        (web.max_client, web.max_client_per_source),
        (Some(500), None)
    );
    assert_eq!(web.client_timeout, Duration::from_secs(30));

    let text = format!(
        "{GOOD}\nmaxclient = -1\nclttimeout = \"0s\"\n\n[ballast]\nmaxconn = -5\n\n[httpprofile]\nmaxconcurrentstreams = 0\n"
    );
    let found = problems(&text);
    for path in [
        "ballast.maxconn",
        "httpprofile.maxconcurrentstreams",
        "lbvserver[0].maxclient",
        "lbvserver[0].clttimeout",
    ] {
        assert!(
            found.iter().any(|p| p.starts_with(path)),
            "{path} not in {found:?}"
        );
    }
}

#[test]
fn clientbodytimeout_defaults_to_30s_and_must_be_positive() {
    let config = from_toml(GOOD, Path::new(".")).expect("GOOD is valid");
    assert_eq!(
        config.http_profile.client_body_timeout,
        Duration::from_secs(30)
    );
    let config = from_toml(
        &format!("[httpprofile]\nclientbodytimeout = \"5s\"\n{GOOD}"),
        Path::new("."),
    )
    .expect("valid");
    assert_eq!(
        config.http_profile.client_body_timeout,
        Duration::from_secs(5)
    );
    let found = problems("[httpprofile]\nclientbodytimeout = \"0s\"\n");
    assert!(
        found
            .iter()
            .any(|p| p.contains("httpprofile.clientbodytimeout: must be longer than zero")),
        "{found:#?}"
    );
}
