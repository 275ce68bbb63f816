//! `configs/localcloud.toml` loads and says what its comments promise.

use std::time::Duration;

use cloudstack::localcloud::LocalCloudConfig;

#[test]
fn the_example_config_is_valid() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../configs/localcloud.toml");
    let config = LocalCloudConfig::load(std::path::Path::new(path))
        .expect("configs/localcloud.toml is valid");
    assert_eq!(config.listen.to_string(), "127.0.0.1:8080");
    assert_eq!(config.address_range.to_string(), "127.77.0.0/16");
    assert_eq!(config.boot_delay, Duration::from_secs(2));
    assert_eq!((config.zones.len(), config.hosts.len()), (1, 2));
    assert!(config.offerings.iter().any(|o| o.offerha));
    assert_eq!(config.templates[0].request_cpu, Duration::from_millis(5));
    assert!(config.users[0].admin);
    assert!(
        config.vm_command.is_none(),
        "VMs run this ballast binary by default"
    );
}
