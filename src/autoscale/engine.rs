//! The autoscale engine inside `ballast run`: one [`Driver`] per `[[autoscalegroup]]`, kept in
//! step with the running config. Each applied config (file, SIGHUP, admin API) is compared
//! with what runs: a new group starts (its profile's names resolved to ids through the
//! CloudStack API first), a changed policy takes effect in the running driver at once, a
//! changed profile restarts the driver, and a removed group stops (its VMs stay; a later
//! start adopts them).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use arc_swap::ArcSwap;
use autoscaler::{CloudStackCloud, Controls, Driver, Event, EventKind, History, Policy, VmProfile};
use ballast_proxy::config::{AutoscaleGroup, AutoscaleProfile, Config};
use ballast_proxy::snapshot::Snapshot;
use ballast_proxy::writer::ConfigWriter;
use cloudstack::resolve::{ProfileIds, ResolveError, resolve_profile_ids};
use cloudstack::{ClientConfig, CloudError, CloudStackClient};
use tokio::sync::{Notify, watch};
use tokio_util::sync::CancellationToken;

use super::fleet::WriterFleet;
use super::policy::policy;

/// How long a group whose profile cannot be resolved waits before trying again.
const RESOLVE_RETRY: Duration = Duration::from_secs(30);

/// The running engine: its groups and their shared history.
#[derive(Debug, Clone)]
pub struct Autoscale {
    history: Arc<History>,
    groups: Arc<Mutex<BTreeMap<String, RunningGroup>>>,
}

#[derive(Debug)]
struct RunningGroup {
    /// What the driver was started with; a change restarts it.
    profile: AutoscaleProfile,
    service_group: String,
    policy: watch::Sender<Policy>,
    resume: Arc<Notify>,
    stop: CancellationToken,
}

impl Autoscale {
    /// Starts a driver for every autoscale group of each config the writer applies, until
    /// `shutdown`.
    pub fn start(
        writer: ConfigWriter,
        snapshot: Arc<ArcSwap<Snapshot>>,
        shutdown: CancellationToken,
    ) -> Autoscale {
        let engine = Autoscale {
            history: Arc::new(History::new()),
            groups: Arc::default(),
        };
        let mut configs = writer.config_changes();
        let running = engine.clone();
        tokio::spawn(async move {
            loop {
                let config = configs.borrow_and_update().clone();
                running.align(&config, &writer, &snapshot, &shutdown);
                tokio::select! {
                    changed = configs.changed() => if changed.is_err() { break },
                    () = shutdown.cancelled() => break,
                }
            }
            running.stop_all();
        });
        engine
    }

    pub fn history(&self) -> &Arc<History> {
        &self.history
    }

    /// Lifts a launch suspension of `group`; false if no such group runs.
    pub fn resume(&self, group: &str) -> bool {
        let groups = self.lock();
        match groups.get(group) {
            Some(running) => {
                running.resume.notify_one();
                true
            }
            None => false,
        }
    }

    /// Starts, updates and stops drivers so that they match `config`.
    fn align(
        &self,
        config: &Config,
        writer: &ConfigWriter,
        snapshot: &Arc<ArcSwap<Snapshot>>,
        shutdown: &CancellationToken,
    ) {
        let mut groups = self.lock();
        groups.retain(|name, running| {
            let keep = config.autoscale_groups.iter().any(|g| {
                g.name == *name
                    && g.service_group == running.service_group
                    && profile_of(config, g) == Some(&running.profile)
            });
            if !keep {
                running.stop.cancel();
                tracing::info!(group = %name, "autoscale group stopped");
            }
            keep
        });
        for group in &config.autoscale_groups {
            let policy = policy(group);
            if let Some(running) = groups.get(&group.name) {
                running.policy.send_if_modified(|current| {
                    let changed = *current != policy;
                    *current = policy;
                    changed
                });
                continue;
            }
            let Some(profile) = profile_of(config, group) else {
                continue;
            };
            let (policy_tx, policy_rx) = watch::channel(policy);
            let running = RunningGroup {
                profile: profile.clone(),
                service_group: group.service_group.clone(),
                policy: policy_tx,
                resume: Arc::new(Notify::new()),
                stop: shutdown.child_token(),
            };
            let fleet = WriterFleet::new(
                writer.clone(),
                snapshot.clone(),
                &group.service_group,
                &group.name,
            );
            let controls = Controls {
                policy: policy_rx,
                resume: running.resume.clone(),
            };
            tokio::spawn(run_group(
                group.name.clone(),
                profile.clone(),
                fleet,
                self.history.clone(),
                controls,
                running.stop.clone(),
            ));
            groups.insert(group.name.clone(), running);
        }
    }

    fn stop_all(&self) {
        for running in self.lock().values() {
            running.stop.cancel();
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, RunningGroup>> {
        self.groups
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

fn profile_of<'a>(config: &'a Config, group: &AutoscaleGroup) -> Option<&'a AutoscaleProfile> {
    config
        .autoscale_profiles
        .iter()
        .find(|p| p.name == group.profile)
}

/// Resolves the profile (retrying while the cloud cannot answer), then drives the group.
async fn run_group(
    group: String,
    profile: AutoscaleProfile,
    fleet: WriterFleet,
    history: Arc<History>,
    controls: Controls,
    stop: CancellationToken,
) {
    let cloud = loop {
        match connect(&profile).await {
            Ok(cloud) => break cloud,
            Err(error) => {
                let reason = format!(
                    "autoscaleprofile `{}`: {error}; trying again in {RESOLVE_RETRY:?}",
                    profile.name
                );
                tracing::error!(group, %reason, "autoscale group cannot start");
                history.record(&group, setup_failed(reason));
                tokio::select! {
                    () = tokio::time::sleep(RESOLVE_RETRY) => {}
                    () = stop.cancelled() => return,
                }
            }
        }
    };
    tracing::info!(group, profile = %profile.name, "autoscale group started");
    let driver = Driver::new(group, Arc::new(cloud), Arc::new(fleet), history, controls);
    driver.run(stop).await;
}

/// A CloudStack client for `profile`, with its zone, template, offering and networks
/// resolved from names to ids. `ballast check --online` uses the same two steps.
async fn connect(profile: &AutoscaleProfile) -> Result<CloudStackCloud, String> {
    let client = client(profile).map_err(|error| error.to_string())?;
    let vm_profile = resolve(&client, profile)
        .await
        .map_err(|error| error.to_string())?;
    Ok(CloudStackCloud::new(client, vm_profile))
}

/// The signed client for `profile`'s endpoint and keys (no call is made yet).
pub fn client(profile: &AutoscaleProfile) -> Result<CloudStackClient, CloudError> {
    CloudStackClient::new(ClientConfig::new(
        profile.url.clone(),
        profile.api_key.clone(),
        profile.secret.expose().to_string(),
    ))
}

/// `profile`'s zone, template, offering and networks as UUIDs (names resolved through the
/// list calls), and its member port: what every deploy of its groups uses.
pub async fn resolve(
    client: &CloudStackClient,
    profile: &AutoscaleProfile,
) -> Result<VmProfile, ResolveError> {
    let ids = ProfileIds {
        zone: profile.zone_id.clone(),
        template: profile.template_id.clone(),
        service_offering: profile.service_offering_id.clone(),
        networks: profile.network_ids.clone(),
    };
    let resolved = resolve_profile_ids(client, &ids).await?;
    Ok(VmProfile {
        zone: resolved.zone,
        template: resolved.template,
        service_offering: resolved.service_offering,
        networks: resolved.networks,
        member_port: profile.member_port,
    })
}

fn setup_failed(reason: String) -> Event {
    Event {
        at: Duration::ZERO,
        kind: EventKind::ActionFailed,
        reason,
        members: 0,
        vm: None,
        values: Vec::new(),
        observed: false,
    }
}
