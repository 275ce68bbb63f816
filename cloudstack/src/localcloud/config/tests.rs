//! Config parsing and validation.

use super::*;

const MINIMAL: &str = r#"
    [[apiuser]]
    username = "admin"
    apikey = "k"
    secretkey = "s"
    [[zone]]
    name = "z1"
    [[host]]
    name = "h1"
    zone = "z1"
    cpunumber = 4
    cpuspeed = 2000
    memory = 8192
    [[serviceoffering]]
    name = "small"
    cpunumber = 1
    cpuspeed = 1000
    memory = 512
    [[template]]
    name = "web"
    port = 8000
    request_cpu = "2ms"
"#;

#[test]
fn minimal_file_gets_defaults_and_stable_ids() {
    let config = LocalCloudConfig::from_toml_str(MINIMAL).expect("valid");
    assert_eq!(config.listen, SocketAddr::from(([127, 0, 0, 1], 8080)));
    assert_eq!(config.address_range.to_string(), "127.77.0.0/16");
    assert_eq!(config.boot_delay, Duration::from_secs(2));
    assert_eq!(config.templates[0].request_cpu, Duration::from_millis(2));
    assert_eq!(config.templates[0].zones, vec![0]);
    assert_eq!(config.zones[0].network_name, "z1-guest");
    let again = LocalCloudConfig::from_toml_str(MINIMAL).expect("valid");
    assert_eq!(config.zones[0].id, again.zones[0].id);
    assert!(config.users[0].admin);
    assert_eq!(
        config.max_account_user_vms,
        Some(20),
        "CloudStack's default"
    );
}

#[test]
fn the_account_vm_limit_is_a_count_or_minus_one() {
    let with = |value: &str| {
        LocalCloudConfig::from_toml_str(&format!("max_account_user_vms = {value}\n{MINIMAL}"))
    };
    assert_eq!(with("3").expect("valid").max_account_user_vms, Some(3));
    assert_eq!(with("0").expect("valid").max_account_user_vms, Some(0));
    assert_eq!(with("-1").expect("valid").max_account_user_vms, None);
    let error = with("-2").expect_err("invalid");
    assert_eq!(
        error.problems,
        ["max_account_user_vms: expected -1 (no limit) or a count from 0 to 4294967295, got -2"]
    );
}

#[test]
fn a_localcloud_table_works_too() {
    let nested = MINIMAL.replace("[[", "[[localcloud.").replace(
        "\n    [[localcloud.apiuser]]",
        "\n    [localcloud]\n    boot_delay = \"1s\"\n    [[localcloud.apiuser]]",
    );
    let text = format!("[other]\nx = 1\n{nested}");
    let config = LocalCloudConfig::from_toml_str(&text).expect("valid");
    assert_eq!(config.boot_delay, Duration::from_secs(1));
    assert_eq!(config.hosts.len(), 1);
}

#[test]
fn every_problem_in_one_pass() {
    let broken = MINIMAL
        .replace("zone = \"z1\"", "zone = \"z2\"")
        .replace("request_cpu = \"2ms\"", "request_cpu = \"fast\"");
    let text = format!("boot_delay = \"soon\"\naddress_range = \"10.0.0.0/8\"\n{broken}");
    let error = LocalCloudConfig::from_toml_str(&text).expect_err("invalid");
    let all = error.to_string();
    assert!(all.contains("host[0].zone: no zone named \"z2\""), "{all}");
    assert!(all.contains("template[0].request_cpu"), "{all}");
    assert!(all.contains("boot_delay"), "{all}");
    assert!(all.contains("address_range"), "{all}");
    assert_eq!(error.problems.len(), 4, "{all}");
}

#[test]
fn unknown_keys_are_rejected() {
    let error = LocalCloudConfig::from_toml_str(&format!("bootdelay = \"1s\"\n{MINIMAL}"))
        .expect_err("invalid");
    assert!(error.to_string().contains("bootdelay"), "{error}");
}

#[test]
fn durations_and_ranges() {
    assert_eq!(parse_duration("500ms"), Some(Duration::from_millis(500)));
    assert_eq!(parse_duration("1.5s"), Some(Duration::from_millis(1500)));
    assert_eq!(parse_duration("2m"), Some(Duration::from_secs(120)));
    assert_eq!(parse_duration("0"), Some(Duration::ZERO));
    assert_eq!(parse_duration("5"), None);
    assert_eq!(parse_duration("5d"), None);
    let range = AddressRange::parse("127.77.1.9/24").expect("valid");
    assert_eq!(range.to_string(), "127.77.1.0/24");
    assert_eq!(
        range.usable(),
        (
            u32::from(Ipv4Addr::new(127, 77, 1, 1)),
            u32::from(Ipv4Addr::new(127, 77, 1, 254))
        )
    );
    assert_eq!(range.netmask(), Ipv4Addr::new(255, 255, 255, 0));
    assert!(AddressRange::parse("127.0.0.0/31").is_none());
}

#[test]
fn the_file_form_round_trips_through_toml() {
    let file: FileConfig = toml::from_str(MINIMAL).expect("valid");
    let text = toml::to_string(&file).expect("serializes");
    let again = LocalCloudConfig::from_toml_str(&text).expect("still valid");
    assert_eq!(again.templates[0].request_cpu, Duration::from_millis(2));
    assert_eq!(again.hosts[0].cpuspeed, 2000);
}
