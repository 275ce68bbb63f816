//! The driver's part of the world, as `autoscaler::Driver` behaves: each action is a task
//! whose request lands a little later (the effect on the cloud or the proxy) and whose result
//! comes back later still (the reply); a deploy reports its VM id as soon as the cloud took
//! it, then polls the job; transport errors on the deploy call are `Uncertain`; bind treats
//! `AlreadyBound` as done and unbind `NotBound`; one listing at a time.

use std::net::SocketAddr;
use std::time::Duration;

use autoscaler::{Action, CloudState, CloudVm, DeployError, Inventory, LaunchId};

use super::cloud::Fate;
use super::scenario::Faults;
use super::{Ev, World};

/// A deploy job the driver polls.
#[derive(Debug, Clone, Copy)]
pub struct Job {
    pub generation: u32,
    pub launch: LaunchId,
    /// Its `Accepted` reply comes then: the job's result cannot come before.
    pub accepted_at: Duration,
}

/// What a finished task reports to the core.
#[derive(Debug)]
pub enum Reply {
    Accepted {
        launch: LaunchId,
        vm: String,
    },
    Finished {
        launch: LaunchId,
        result: Result<(String, SocketAddr), DeployError>,
    },
    Bound {
        vm: String,
        result: Result<(), String>,
    },
    Unbound {
        vm: String,
        result: Result<(), String>,
    },
    Destroyed {
        vm: String,
        result: Result<(), String>,
    },
    /// The cloud's VMs as listed when the listing was `taken`; the members are read as it
    /// ends (the driver reads them after the cloud answered).
    Inventory {
        taken: Duration,
        result: Result<Vec<CloudVm>, String>,
    },
    /// `gave_up`: every listing attempt failed, and the driver says Broken.
    Investigated {
        vm: String,
        gave_up: bool,
    },
}

/// A request as it reaches the cloud or the proxy.
#[derive(Debug)]
pub enum Effect {
    Deploy {
        launch: LaunchId,
        sent: Duration,
        fate: Fate,
        healthy: bool,
        /// The connection breaks after the cloud took the request.
        lost_after: bool,
        /// Polling its job fails for good.
        poll_fails: bool,
    },
    Bind {
        vm: String,
        addr: SocketAddr,
    },
    Drain {
        vm: String,
        addr: SocketAddr,
    },
    Unbind {
        vm: String,
        addr: SocketAddr,
    },
    Destroy {
        vm: String,
    },
    List,
}

impl World {
    /// The driver executes one action: the request leaves now.
    pub(super) fn execute(&mut self, action: Action) -> Result<(), String> {
        let f = self.faults();
        match action {
            Action::Deploy { launch } => {
                self.deploys_sent += 1;
                let at = self.now + self.latency();
                if self.rng.chance(f.deploy_refused) {
                    self.count("fault: deploy refused".into());
                    let reason = "deploy refused: 533 insufficient capacity".to_string();
                    let result = Err(DeployError::Failed { reason, vm: None });
                    self.reply(at, Reply::Finished { launch, result });
                } else if self.rng.chance(f.lost_before) {
                    self.count("fault: deploy lost before the cloud".into());
                    let reason = "deploy: connection reset".to_string();
                    let result = Err(DeployError::Uncertain { reason });
                    self.reply(at, Reply::Finished { launch, result });
                } else {
                    let fate = if self.rng.chance(f.fails_leaving_vm) {
                        Fate::FailsLeavingVm
                    } else if self.rng.chance(f.fails_without_vm) {
                        Fate::FailsWithoutVm
                    } else if self.rng.chance(f.never_running) {
                        Fate::NeverRunning
                    } else {
                        Fate::Runs
                    };
                    let effect = Effect::Deploy {
                        launch,
                        sent: self.now,
                        fate,
                        healthy: !self.rng.chance(f.never_healthy),
                        lost_after: self.rng.chance(f.lost_after),
                        poll_fails: self.rng.chance(f.poll_fails),
                    };
                    let at = self.now + self.rng.secs(0.0, 0.5);
                    self.effect(at, effect);
                }
            }
            Action::Bind { vm, addr } => {
                if self.rng.chance(f.bind_fails) {
                    self.count("fault: bind failed".into());
                    let at = self.now + self.latency();
                    let result = Err("rejected: the config writer is busy".to_string());
                    self.reply(at, Reply::Bound { vm, result });
                } else {
                    self.proxy_effect(Effect::Bind { vm, addr });
                }
            }
            Action::Drain { vm, addr } => self.proxy_effect(Effect::Drain { vm, addr }),
            Action::Unbind { vm, addr } => {
                if self.rng.chance(f.unbind_fails) {
                    self.count("fault: unbind failed".into());
                    let at = self.now + self.latency();
                    let result = Err("rejected: the config writer is busy".to_string());
                    self.reply(at, Reply::Unbound { vm, result });
                } else {
                    self.proxy_effect(Effect::Unbind { vm, addr });
                }
            }
            Action::Destroy { vm } => {
                self.check_destroy(&vm, "sent")?;
                if self.rng.chance(f.destroy_fails) {
                    self.count("fault: destroy failed".into());
                    let at = self.now + self.latency();
                    let result = Err("530 internal error".to_string());
                    self.reply(at, Reply::Destroyed { vm, result });
                } else {
                    let at = self.now + self.rng.secs(0.0, 0.5);
                    self.effect(at, Effect::Destroy { vm });
                }
            }
            Action::Reconcile => {
                // The core's own request during a listing gets a fresh one.
                self.relist = self.listing;
                self.list();
            }
            Action::Investigate { vm } => {
                // Up to five listings, two seconds apart; then the driver says Broken.
                let mut at = self.now;
                let mut gave_up = true;
                for _ in 0..5 {
                    at += self.latency();
                    if !self.rng.chance(f.list_fails) {
                        gave_up = false;
                        break;
                    }
                    at += Duration::from_secs(2);
                }
                self.reply(at, Reply::Investigated { vm, gave_up });
            }
        }
        Ok(())
    }

    /// Lists the group, unless a listing is under way.
    pub(super) fn list(&mut self) {
        if self.listing {
            return;
        }
        self.listing = true;
        if self.rng.chance(self.faults().list_fails) {
            self.count("fault: list failed".into());
            let at = self.now + self.latency();
            let (taken, result) = (self.now, Err("530 internal error".to_string()));
            self.reply(at, Reply::Inventory { taken, result });
        } else {
            let at = self.now + self.rng.secs(0.0, 0.5);
            self.effect(at, Effect::List);
        }
    }

    /// A request reaches the cloud or the proxy.
    pub(super) fn apply(&mut self, generation: u32, effect: Effect) -> Result<(), String> {
        let at = self.now + self.latency();
        let old = if generation == self.generation {
            ""
        } else {
            " (sent by a dead engine)"
        };
        match effect {
            Effect::Deploy {
                launch,
                sent,
                fate,
                healthy,
                lost_after,
                poll_fails,
            } => {
                // The display name the engine of `generation` gave this launch (see
                // `World::start_engine`).
                let displayname = format!("gen{generation}-{}", launch.0);
                let id = self.cloud.create(self.now, fate, healthy, displayname);
                self.line(format!(
                    "cloud: deploy {launch:?} created {id} ({fate:?}, healthy {healthy}){old}"
                ));
                self.count(format!("vm fate {fate:?}"));
                if generation == self.generation {
                    self.checks.launch_created(launch, &id);
                }
                if fate != Fate::NeverRunning {
                    let boot = self.now + self.rng.secs(5.0, 90.0);
                    self.schedule(boot, Ev::VmBooted { vm: id.clone() });
                }
                if generation == self.generation {
                    self.unanswered.insert(id.clone(), launch);
                }
                if lost_after {
                    self.count("fault: deploy lost after the cloud created the VM".into());
                    let reason = "deploy: connection reset".to_string();
                    let result = Err(DeployError::Uncertain { reason });
                    self.reply_to(generation, at, Reply::Finished { launch, result });
                    return Ok(());
                }
                let vm = id.clone();
                self.reply_to(generation, at, Reply::Accepted { launch, vm });
                let failure = if poll_fails {
                    self.count("fault: polling the deploy job failed".into());
                    let reason = "polling the deploy job: 530 internal error";
                    Some((at + self.rng.secs(1.0, 30.0), reason.to_string()))
                } else if fate == Fate::NeverRunning {
                    let timeout = self.sc.policy.launch.deploy_timeout;
                    let reason = format!("not Running within the deploy timeout {timeout:?}");
                    Some(((sent + timeout).max(at), reason))
                } else {
                    None
                };
                match failure {
                    Some((when, reason)) => {
                        let vm = Some(id);
                        let result = Err(DeployError::Failed { reason, vm });
                        self.reply_to(generation, when, Reply::Finished { launch, result });
                    }
                    None => {
                        let job = Job {
                            generation,
                            launch,
                            accepted_at: at,
                        };
                        self.jobs.insert(id, job);
                    }
                }
            }
            Effect::Bind { vm, addr } => {
                self.check_member_op("Bind", &vm, addr)?;
                let delay = self.rng.secs(0.0, 15.0);
                let bound = self.proxy.bind(self.now, &vm, addr, delay);
                let how = if bound { "bound" } else { "already bound:" };
                self.line(format!("proxy: {how} {vm} at {addr}{old}"));
                let result = Ok(());
                self.reply_to(generation, at, Reply::Bound { vm, result });
            }
            Effect::Drain { vm, addr } => {
                self.check_member_op("Drain", &vm, addr)?;
                let decay = self.rng.pick(&[0.0, 0.5, 0.8, 1.0]);
                self.proxy.drain(addr, decay);
                self.line(format!(
                    "proxy: draining {vm} at {addr} (decay {decay}){old}"
                ));
            }
            Effect::Unbind { vm, addr } => {
                self.check_member_op("Unbind", &vm, addr)?;
                self.proxy.members.remove(&addr);
                self.line(format!("proxy: unbound {vm} at {addr}{old}"));
                let result = Ok(());
                self.reply_to(generation, at, Reply::Unbound { vm, result });
            }
            Effect::Destroy { vm } => {
                // Destroying waits for the job.
                let at = at + self.rng.secs(0.5, 10.0);
                let result = if self.cloud.get(&vm).is_some() {
                    self.check_destroy(&vm, "reached the cloud")?;
                    self.cloud.destroy(&vm);
                    self.line(format!("cloud: destroyed {vm}{old}"));
                    Ok(())
                } else {
                    Err(format!("431 unable to find virtual machine {vm}"))
                };
                self.reply_to(generation, at, Reply::Destroyed { vm, result });
            }
            Effect::List => {
                let vms = self.cloud.list();
                self.line(format!("cloud: listed {} VMs{old}", vms.len()));
                let (taken, result) = (self.now, Ok(vms));
                self.reply_to(generation, at, Reply::Inventory { taken, result });
            }
        }
        Ok(())
    }

    /// Feeds a reply to the live core.
    pub(super) fn deliver(&mut self, reply: Reply) -> Result<(), String> {
        let now = self.now;
        self.line(format!("reply {reply:?}"));
        match reply {
            Reply::Accepted { launch, vm } => {
                self.unanswered.remove(&vm);
                self.core().on_deploy_accepted(now, launch, &vm)
            }
            Reply::Finished { launch, result } => {
                self.unanswered.retain(|_, l| *l != launch);
                if matches!(result, Err(DeployError::Uncertain { .. })) {
                    self.checks.launch_uncertain(launch);
                    self.stale.uncertain_at = Some(now);
                }
                self.core().on_deploy_finished(now, launch, result)
            }
            Reply::Bound { vm, result } => self.core().on_bound(now, &vm, result),
            Reply::Unbound { vm, result } => self.core().on_unbound(now, &vm, result),
            Reply::Destroyed { vm, result } => self.core().on_destroyed(now, &vm, result),
            Reply::Inventory { taken, result } => {
                self.listing = false;
                if std::mem::take(&mut self.relist) {
                    self.line("  driver: the core asked during this listing: listing again".into());
                    self.list();
                    return Ok(());
                }
                if let Ok(vms) = &result {
                    self.note_stale(taken, vms);
                }
                let members = self.proxy.members.iter();
                let bound = members.map(|(addr, m)| (m.vm.clone(), *addr)).collect();
                let draining = self.proxy.members.values().filter(|m| m.draining);
                let draining = draining.map(|m| m.vm.clone()).collect();
                let result = result.map(|vms| Inventory {
                    vms,
                    bound,
                    draining,
                    taken_at: Some(taken),
                });
                self.core().on_inventory(now, result)
            }
            Reply::Investigated { vm, gave_up } => {
                let state = if gave_up {
                    Some(CloudState::Broken)
                } else {
                    self.cloud.get(&vm).map(|rec| rec.state)
                };
                self.line(format!("  investigated {vm}: {state:?}"));
                self.core().on_investigated(now, &vm, state)
            }
        }
        self.after_core()
    }

    /// A Starting VM's provisioning ends; the driver polling its deploy job hears of it.
    pub(super) fn boot(&mut self, id: &str) {
        let Some(rec) = self
            .cloud
            .get(id)
            .filter(|r| r.state == CloudState::Starting)
        else {
            // Destroyed while it was deploying: its job fails.
            if let Some(job) = self.jobs.remove(id) {
                let at = self.poll_time(job);
                let reason = "deploy failed: the VM was destroyed".to_string();
                let vm = Some(id.to_string());
                let result = Err(DeployError::Failed { reason, vm });
                let launch = job.launch;
                self.reply_to(job.generation, at, Reply::Finished { launch, result });
            }
            return;
        };
        let (fate, addr) = (rec.fate, rec.addr);
        let state = match fate {
            Fate::Runs => CloudState::Running,
            Fate::FailsLeavingVm => CloudState::Broken,
            Fate::FailsWithoutVm | Fate::NeverRunning => CloudState::Gone,
        };
        self.cloud.set_state(id, state);
        self.line(format!("cloud: {id} is {state:?}"));
        let Some(job) = self.jobs.remove(id) else {
            return;
        };
        let result = match fate {
            Fate::Runs => Ok((id.to_string(), addr)),
            _ => Err(DeployError::Failed {
                reason: "deploy failed: 530 the job failed".into(),
                vm: Some(id.to_string()),
            }),
        };
        let at = self.poll_time(job);
        let launch = job.launch;
        self.reply_to(job.generation, at, Reply::Finished { launch, result });
    }

    /// When the driver's next poll of `job` sees its result (never before its `Accepted`).
    fn poll_time(&mut self, job: Job) -> Duration {
        let at = self.now + self.rng.secs(0.0, 2.0) + self.rng.secs(0.05, 1.0);
        at.max(job.accepted_at + Duration::from_millis(1))
    }

    fn core(&mut self) -> &mut autoscaler::GroupCore {
        self.core.as_mut().expect("replies go to a live core")
    }

    fn faults(&self) -> Faults {
        if self.calm {
            Faults::none()
        } else {
            self.sc.faults.clone()
        }
    }

    /// A reply to the live engine.
    fn reply(&mut self, at: Duration, reply: Reply) {
        self.reply_to(self.generation, at, reply);
    }

    pub(super) fn reply_to(&mut self, generation: u32, at: Duration, reply: Reply) {
        self.schedule(at, Ev::Reply { generation, reply });
    }

    fn effect(&mut self, at: Duration, effect: Effect) {
        let generation = self.generation;
        self.schedule(at, Ev::Effect { generation, effect });
    }

    /// The proxy's config writer applies one operation at a time, in the order they came.
    fn proxy_effect(&mut self, effect: Effect) {
        let at = (self.now + self.rng.secs(0.0, 0.5)).max(self.proxy_free_at);
        self.proxy_free_at = at + Duration::from_millis(1);
        self.effect(at, effect);
    }
}
