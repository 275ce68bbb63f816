//! `ballast check`: validates a file and, with `--online`, proves each autoscale profile
//! against its cloud before a group relies on it.
//!
//! A file is one of two kinds: a Ballast config (what `ballast run` reads, with an optional
//! `[localcloud]` table) or a stand-alone local cloud (what `ballast localcloud` reads, its
//! keys at the top level). Each is validated by its own rules and every problem is printed.
//! Every secret given as a file or an environment variable must be readable: validation reads
//! the SNMP and CloudStack ones, and `check` reads the admin password, which `ballast run`
//! reads only when it starts.
//!
//! `--online` then takes each `[[autoscaleprofile]]` through the steps the engine takes when
//! a group starts: the same signed client, a cheap `listCapabilities` that proves the keys,
//! the names resolved to ids by the engine's own function, and the listing of each group's VMs
//! that the engine would adopt. Nothing is deployed or destroyed.

use std::path::Path;
use std::process::ExitCode;

use autoscaler::{Cloud, CloudStackCloud};
use ballast_proxy::config::{AutoscaleProfile, Config, PasswordSource};
use cloudstack::localcloud::LocalCloudConfig;
use cloudstack::{CloudError, CloudStackClient, ResolveError};

use crate::autoscale::engine;
use crate::config::AppConfig;

/// Why the admin password cannot be read from where `[admin]` says, naming the key.
fn admin_password_problem(config: &Config) -> Option<String> {
    let admin = config.admin.as_ref()?;
    let key = match &admin.password {
        PasswordSource::Env(_) => "admin.passwordenv",
        PasswordSource::File(_) => "admin.passwordfile",
    };
    let error = admin.password.read().err()?;
    Some(format!("{key}: {error}"))
}

/// Top-level keys only a stand-alone local cloud file has (a Ballast config has none of them).
const LOCAL_CLOUD_KEYS: &[&str] = &[
    "apiuser",
    "zone",
    "host",
    "serviceoffering",
    "template",
    "address_range",
];

/// Runs `ballast check --config path [--online]`: 0 when the file (and, online, every
/// profile) is good, 1 otherwise. Problems go to stderr, findings to stdout.
pub fn check(path: &Path, online: bool) -> ExitCode {
    let text = match ballast_proxy::config::read::text_file(path) {
        Ok(text) => text,
        Err(message) => {
            eprintln!("{message}");
            return ExitCode::FAILURE;
        }
    };
    if is_local_cloud_file(&text) {
        return check_local_cloud(path, &text, online);
    }
    let config = match AppConfig::load(path) {
        Ok(AppConfig { proxy, .. }) => proxy,
        Err(error) => {
            eprintln!("{}: {error}", path.display());
            return ExitCode::FAILURE;
        }
    };
    if let Some(problem) = admin_password_problem(&config) {
        eprintln!("{}: {problem}", path.display());
        return ExitCode::FAILURE;
    }
    println!(
        "{}: OK ({} lbvserver, {} csvserver, {} servicegroup, {} lbmonitor, {} sslcertkey, {} autoscalegroup)",
        path.display(),
        config.vservers.len(),
        config.cs_vservers.len(),
        config.service_groups.len(),
        config.monitors.len(),
        config.cert_keys.len(),
        config.autoscale_groups.len(),
    );
    if !online {
        return ExitCode::SUCCESS;
    }
    if config.autoscale_profiles.is_empty() {
        println!("online: no autoscaleprofile to check");
        return ExitCode::SUCCESS;
    }
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("ballast: cannot start a runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    let mut failed = false;
    for profile in &config.autoscale_profiles {
        if let Err(problem) = runtime.block_on(check_profile(&config, profile)) {
            eprintln!("autoscaleprofile `{}`: {problem}", profile.name);
            failed = true;
        }
    }
    if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

/// Whether `text` is a stand-alone local cloud file: a TOML table with one of the local
/// cloud's own top-level keys. (A broken file is left to the Ballast validation to report.)
fn is_local_cloud_file(text: &str) -> bool {
    toml::from_str::<toml::Table>(text).is_ok_and(|table| {
        !table.contains_key("localcloud") && LOCAL_CLOUD_KEYS.iter().any(|k| table.contains_key(*k))
    })
}

fn check_local_cloud(path: &Path, text: &str, online: bool) -> ExitCode {
    match LocalCloudConfig::from_toml_str(text) {
        Ok(cloud) => {
            println!(
                "{}: OK (local cloud for `ballast localcloud` on {}: {} zone, {} host, {} \
                 serviceoffering, {} template, {} apiuser)",
                path.display(),
                cloud.listen,
                cloud.zones.len(),
                cloud.hosts.len(),
                cloud.offerings.len(),
                cloud.templates.len(),
                cloud.users.len(),
            );
            if online {
                println!("online: a local cloud file has no autoscaleprofile to check");
            }
            ExitCode::SUCCESS
        }
        Err(error) => {
            let count = error.problems.len();
            let noun = if count == 1 { "problem" } else { "problems" };
            eprintln!("{}: {count} {noun} in local cloud config", path.display());
            for problem in &error.problems {
                eprintln!("  {problem}");
            }
            ExitCode::FAILURE
        }
    }
}

/// One profile online: keys, names, and the VMs of each group that uses it.
async fn check_profile(config: &Config, profile: &AutoscaleProfile) -> Result<(), String> {
    let client = engine::client(profile).map_err(|error| error.to_string())?;
    let capabilities = client
        .list_capabilities()
        .await
        .map_err(|error| explain(&error, &client, profile))?;
    println!(
        "autoscaleprofile `{}`: {} accepts apikey {} (CloudStack {})",
        profile.name, profile.url, profile.api_key, capabilities.cloudstackversion,
    );
    let resolved = engine::resolve(&client, profile)
        .await
        .map_err(|error| match &error {
            ResolveError::Cloud { field, source } => {
                format!("{field}: {}", explain(source, &client, profile))
            }
            // A missing or ambiguous name: the message names the key and the value.
            other => other.to_string(),
        })?;
    let networks = profile.network_ids.iter().zip(&resolved.networks);
    let rows = [
        ("zoneid", &profile.zone_id, &resolved.zone),
        ("templateid", &profile.template_id, &resolved.template),
        (
            "serviceofferingid",
            &profile.service_offering_id,
            &resolved.service_offering,
        ),
    ];
    for (key, written, id) in rows {
        println!("  {key} {written:?} -> {id}");
    }
    for (index, (written, id)) in networks.enumerate() {
        println!("  networkids[{index}] {written:?} -> {id}");
    }
    let cloud = CloudStackCloud::new(client.clone(), resolved);
    for group in config
        .autoscale_groups
        .iter()
        .filter(|g| g.profile == profile.name)
    {
        let vms = cloud
            .list_group(&group.name)
            .await
            .map_err(|error| explain(&error, &client, profile))?;
        println!(
            "  autoscalegroup `{}`: {} VM(s) in CloudStack group {:?} (the engine adopts these)",
            group.name,
            vms.len(),
            group.name,
        );
        for vm in vms {
            let addr = vm
                .addr
                .map_or_else(|| "no address".to_owned(), |a| a.to_string());
            println!(
                "    {} {:?} {addr} {}",
                vm.id,
                vm.state,
                vm.displayname.as_deref().unwrap_or("")
            );
        }
    }
    Ok(())
}

/// A failed call, said so that an operator knows what to fix.
fn explain(error: &CloudError, client: &CloudStackClient, profile: &AutoscaleProfile) -> String {
    let hint = match error {
        CloudError::Api { errorcode: 401, .. } => format!(
            "the signature was refused: apikey {} and the secret key (sharedsecret*) are not a \
             pair this CloudStack knows, or the clock of this machine is off",
            profile.api_key
        ),
        CloudError::Api { errorcode: 432, .. } => {
            "the API key's role does not allow this command (see docs/real-cloudstack.md)".into()
        }
        CloudError::Api { errorcode: 531, .. } => {
            "the account may not do this (see docs/real-cloudstack.md)".into()
        }
        CloudError::NotSent { .. } => format!("cannot reach {}", client.endpoint_url()),
        CloudError::AnswerLost { .. } => format!(
            "{} took the request but sent no answer",
            client.endpoint_url()
        ),
        CloudError::Http { .. } | CloudError::Protocol { .. } => format!(
            "{} does not answer like a CloudStack API (is the url .../client/api?)",
            client.endpoint_url()
        ),
        _ => return error.to_string(),
    };
    format!("{hint}; {error}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_local_cloud_file_is_told_from_a_ballast_config() {
        assert!(is_local_cloud_file(
            "listen = \"127.0.0.1:8080\"\n[[zone]]\nname = \"z\"\n"
        ));
        assert!(is_local_cloud_file("[[apiuser]]\nusername = \"a\"\n"));
        // A Ballast config, embedded local cloud or not, and a broken file are Ballast's.
        assert!(!is_local_cloud_file("[[lbvserver]]\nname = \"web\"\n"));
        assert!(!is_local_cloud_file(
            "[localcloud]\nlisten = \"127.0.0.1:8080\"\n[[localcloud.zone]]\nname = \"z\"\n"
        ));
        assert!(!is_local_cloud_file("[[zone]\n"));
        assert!(!is_local_cloud_file(""));
    }

    #[test]
    fn the_cloudstack_example_says_what_its_comments_promise() {
        use ballast_proxy::config::{Probe, SecretSource, SnmpSecurity};

        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("configs");
        let config = AppConfig::load(&dir.join("cloudstack.toml"))
            .expect("configs/cloudstack.toml is valid")
            .proxy;
        let profile = &config.autoscale_profiles[0];
        // Both keys from the placeholder files beside it; names, not ids.
        assert_eq!(profile.api_key, "replace-with-the-api-key");
        assert_eq!(
            profile.secret.source(),
            &SecretSource::File(dir.join("cloudstack.secret"))
        );
        assert_eq!(profile.template_id, "replace-with-the-template-name");
        // It starts observing, and scales on the SNMPv3 CPU of its VMs.
        let group = &config.autoscale_groups[0];
        assert!(group.observe);
        assert_eq!(group.profile, profile.name);
        let load = config.monitor("web-load").expect("the LOAD monitor");
        let Probe::Load(probe) = &load.probe else {
            panic!("web-load is not a LOAD monitor: {load:?}")
        };
        assert!(probe.passive);
        assert!(
            matches!(&probe.security, SnmpSecurity::V3 { user, auth: Some(_), privacy: Some(_) } if user == "ballast"),
            "{:?}",
            probe.security
        );
    }
}
