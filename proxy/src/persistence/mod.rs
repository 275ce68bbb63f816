//! Persistence (NetScaler's `persistencetype`): a client that was sent to a member keeps going
//! to it, ahead of the LB method.
//!
//! - `SOURCEIP`: the client's address, masked by `persistmask` (IPv4) or `v6persistmasklen`,
//!   is looked up in the vserver's [`table::SessionTable`]; an entry ends `timeout` after its
//!   last use. HTTP and TCP vservers.
//! - `COOKIEINSERT`: a response to a request that brought no valid cookie gets `Set-Cookie`
//!   with a signed, opaque value naming the member ([`cookie`]). HTTP and SSL vservers.
//!
//! A persistent client goes to its member while that member is UP and enabled, or draining
//! within the grace a disable gave it (`delay`, the autoscaler's `quiettime`: see
//! [`crate::member::MemberState::accepts_persistent`]). Otherwise it gets an ordinary pick and
//! a new entry or cookie. A [`PersistencePlan`] is compiled into each vserver's snapshot;
//! the table lives in the vserver's runtime state and outlives snapshots.

pub mod cookie;
pub mod table;

#[cfg(test)]
mod drain_tests;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use arc_swap::ArcSwap;
use http::{HeaderMap, HeaderValue};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use self::cookie::{CookieSigner, MemberId, whole_seconds};
use self::table::SessionTable;
use crate::config::{LbVserver, PersistenceType};
use crate::member::{MemberKey, MemberState};
use crate::snapshot::{GroupPlan, Snapshot, VserverPlan};

/// How often expired `SOURCEIP` entries are swept.
pub const SWEEP_INTERVAL: Duration = Duration::from_secs(5);

/// A vserver's persistence, compiled for one snapshot.
#[derive(Debug)]
pub struct PersistencePlan {
    pub kind: PersistenceType,
    pub timeout: Duration,
    v4_prefix: u8,
    v6_prefix: u8,
    cookie_name: String,
    signer: CookieSigner,
    /// The cookie id of each member of the vserver's group, in the group's order.
    ids: Vec<MemberId>,
    /// The group `ids` were computed for.
    group: Option<Arc<GroupPlan>>,
    /// `SSL` vservers mark their cookie `Secure`.
    secure: bool,
}

/// The member a request asks for, before it is found in the group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// A `SOURCEIP` entry.
    Source(MemberKey),
    /// A valid cookie; `renew`: at most half its `timeout` is left, so the response brings a
    /// fresh one (an active client keeps its member; an idle one's cookie ends).
    Cookie { id: MemberId, renew: bool },
}

/// The key that signs cookies of vservers without a `cookiekey`: random, made once per process,
/// so such cookies do not survive a restart.
fn process_key() -> &'static [u8; 32] {
    static KEY: OnceLock<[u8; 32]> = OnceLock::new();
    KEY.get_or_init(|| {
        let mut key = [0u8; 32];
        getrandom::getrandom(&mut key).expect("the operating system gives random bytes");
        key
    })
}

impl PersistencePlan {
    /// `None` for `persistencetype = NONE`.
    pub fn new(vserver: &LbVserver, group: Option<&Arc<GroupPlan>>) -> Option<PersistencePlan> {
        let persistence = &vserver.persistence;
        if persistence.kind == PersistenceType::None {
            return None;
        }
        let signer = match &persistence.cookie_key {
            Some(key) => CookieSigner::new(key.expose().as_bytes()),
            None => CookieSigner::new(process_key()),
        };
        let ids = group.as_ref().map_or_else(Vec::new, |group| {
            group
                .members
                .iter()
                .map(|m| signer.member_id(&m.key.group, m.key.addr))
                .collect()
        });
        Some(PersistencePlan {
            kind: persistence.kind,
            timeout: persistence.timeout,
            v4_prefix: persistence.v4_prefix,
            v6_prefix: persistence.v6_prefix,
            cookie_name: persistence.cookie_name.clone(),
            signer,
            ids,
            group: group.cloned(),
            secure: vserver.service_type.is_tls(),
        })
    }

    /// `client` under `persistmask` / `v6persistmasklen`.
    pub fn masked(&self, client: IpAddr) -> IpAddr {
        match client {
            IpAddr::V4(v4) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.v4_prefix))
                    .unwrap_or(0);
                IpAddr::V4(Ipv4Addr::from(u32::from(v4) & mask))
            }
            IpAddr::V6(v6) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.v6_prefix))
                    .unwrap_or(0);
                IpAddr::V6(Ipv6Addr::from(u128::from(v6) & mask))
            }
        }
    }

    /// The member this client persists to, if any: its `SOURCEIP` entry (the use restarts its
    /// timeout), or the first valid cookie of the vserver's name among `headers`' cookies.
    pub fn target(
        &self,
        vserver: &str,
        client: IpAddr,
        headers: Option<&HeaderMap>,
        sessions: &SessionTable,
    ) -> Option<Target> {
        match self.kind {
            PersistenceType::None => None,
            PersistenceType::SourceIp => sessions
                .get(self.masked(client), Instant::now(), self.timeout)
                .map(Target::Source),
            PersistenceType::CookieInsert => headers?
                .get_all(http::header::COOKIE)
                .iter()
                .filter_map(|value| value.to_str().ok())
                .flat_map(|value| value.split(';'))
                .filter_map(|pair| pair.trim().split_once('='))
                .filter(|(name, _)| *name == self.cookie_name)
                .find_map(|(_, value)| self.signer.check(vserver, value.trim_matches('"')))
                .map(|(id, left)| Target::Cookie {
                    id,
                    // Whole seconds: "1 left" may be a moment, so it renews too.
                    renew: left
                        .is_some_and(|left| left <= 1 || left * 2 <= whole_seconds(self.timeout)),
                }),
        }
    }

    /// Where `target` is in `group` (the group this plan was compiled with, or a newer one).
    pub fn index(&self, target: &Target, group: &GroupPlan) -> Option<usize> {
        match target {
            Target::Source(key) => group.members.iter().position(|m| m.key == *key),
            Target::Cookie { id, .. } => {
                let same_group = self
                    .group
                    .as_ref()
                    .is_some_and(|g| std::ptr::eq(&**g, group));
                let by_id = same_group
                    .then(|| self.ids.iter().position(|i| i == id))
                    .flatten();
                by_id.or_else(|| {
                    group
                        .members
                        .iter()
                        .position(|m| self.signer.member_id(&m.key.group, m.key.addr) == *id)
                })
            }
        }
    }

    /// Records that member `index` of `group` now serves this client, unless `target` already
    /// named it: a `SOURCEIP` entry, or the `Set-Cookie` value to send with the response.
    pub fn remember(
        &self,
        vserver: &str,
        client: IpAddr,
        group: &GroupPlan,
        index: usize,
        target: Option<&Target>,
        sessions: &SessionTable,
    ) -> Option<HeaderValue> {
        let member = group.members.get(index)?;
        match self.kind {
            PersistenceType::None => None,
            PersistenceType::SourceIp => {
                if target != Some(&Target::Source(member.key.clone())) {
                    sessions.insert(
                        self.masked(client),
                        member.key.clone(),
                        Instant::now(),
                        self.timeout,
                    );
                }
                None
            }
            PersistenceType::CookieInsert => {
                let id = self.signer.member_id(&member.key.group, member.key.addr);
                if target == Some(&Target::Cookie { id, renew: false }) {
                    return None;
                }
                let lifetime = (!self.timeout.is_zero()).then_some(self.timeout);
                let value = self.signer.issue(vserver, id, lifetime);
                let mut cookie = format!("{}={value}; Path=/; HttpOnly", self.cookie_name);
                if let Some(lifetime) = lifetime {
                    cookie.push_str(&format!("; Max-Age={}", whole_seconds(lifetime)));
                }
                if self.secure {
                    cookie.push_str("; Secure");
                }
                HeaderValue::from_str(&cookie).ok()
            }
        }
    }
}

/// One request's (or TCP connection's) persistence: the member it asks for, found once before
/// the first pick, and what it leaves behind (an entry, a cookie).
#[derive(Debug, Default)]
pub struct Sticky {
    target: Option<Target>,
}

impl Sticky {
    /// What the client persists to on `plan` (nothing when the vserver has no persistence).
    pub fn lookup(plan: &VserverPlan, client: IpAddr, headers: Option<&HeaderMap>) -> Sticky {
        let target = plan
            .persistence
            .as_ref()
            .and_then(|p| p.target(&plan.name, client, headers, &plan.stats.sessions));
        Sticky { target }
    }

    /// The member to use ahead of the LB method: the one the client persists to, if it is in
    /// `group`, was not tried yet, and accepts persistent clients (UP, and enabled or within
    /// its drain grace). Counts a persistence hit.
    pub fn member(&self, plan: &VserverPlan, group: &GroupPlan, tried: &[usize]) -> Option<usize> {
        let persistence = plan.persistence.as_ref()?;
        let index = persistence.index(self.target.as_ref()?, group)?;
        if tried.contains(&index) || !group.members[index].accepts_persistent() {
            return None;
        }
        plan.stats.persistence_hits.fetch_add(1, Relaxed);
        Some(index)
    }

    /// Member `index` of `group` serves the client: a new `SOURCEIP` entry, or the
    /// `Set-Cookie` value for the response, unless the client persisted to it already.
    pub fn remember(
        &self,
        plan: &VserverPlan,
        client: IpAddr,
        group: &GroupPlan,
        index: usize,
    ) -> Option<HeaderValue> {
        let persistence = plan.persistence.as_ref()?;
        persistence.remember(
            &plan.name,
            client,
            group,
            index,
            self.target.as_ref(),
            &plan.stats.sessions,
        )
    }
}

/// Members whose next drain keeps their persistent clients for a while (see
/// [`crate::member::MemberState::set_next_drain_grace`]): armed before the edit that disables
/// them; dropping this disarms whatever that edit did not use (it failed, or the member was
/// draining already).
#[derive(Debug, Default)]
pub struct DrainGrace(Vec<Arc<MemberState>>);

impl DrainGrace {
    /// Arms member `member` of servicegroup `group` (every member when `None`) with `grace`.
    pub fn arm(
        &mut self,
        snapshot: &Snapshot,
        group: &str,
        member: Option<SocketAddr>,
        grace: Duration,
    ) {
        let Some(plan) = snapshot.groups.get(group) else {
            return;
        };
        let chosen = plan.members.iter();
        for state in chosen.filter(|m| member.is_none_or(|addr| m.key.addr == addr)) {
            state.set_next_drain_grace(grace);
            self.0.push(state.clone());
        }
    }
}

impl Drop for DrainGrace {
    fn drop(&mut self) {
        for member in &self.0 {
            member.set_next_drain_grace(Duration::ZERO);
            // A drain that took its grace: log the state change when the grace ends.
            let left = member.drain_grace_left();
            if !left.is_zero()
                && let Ok(runtime) = tokio::runtime::Handle::try_current()
            {
                let member = member.clone();
                runtime.spawn(async move {
                    tokio::time::sleep(left).await;
                    member.drain_grace_ended();
                });
            }
        }
    }
}

/// Sweeps expired `SOURCEIP` entries of every vserver every [`SWEEP_INTERVAL`], until
/// `shutdown`.
pub async fn sweep(snapshot: Arc<ArcSwap<Snapshot>>, shutdown: CancellationToken) {
    let mut interval = tokio::time::interval(SWEEP_INTERVAL);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = interval.tick() => {}
            () = shutdown.cancelled() => return,
        }
        let now = Instant::now();
        let current = snapshot.load_full();
        for plan in current.vservers.values() {
            if !plan.stats.sessions.is_empty() {
                plan.stats.sessions.sweep(now);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::validate::from_toml;

    fn vserver(extra: &str) -> LbVserver {
        let text = format!(
            "[[lbvserver]]\nname = \"vs\"\nservicetype = \"HTTP\"\nipv46 = \"127.0.0.1\"\nport = 8080\n{extra}"
        );
        let config = from_toml(&text, std::path::Path::new(".")).unwrap();
        config.vservers[0].clone()
    }

    #[test]
    fn masks_apply_to_both_families() {
        let plan = PersistencePlan::new(
            &vserver("persistencetype = \"SOURCEIP\"\npersistmask = \"255.255.255.0\"\nv6persistmasklen = 64"),
            None,
        )
        .unwrap();
        assert_eq!(
            plan.masked("10.1.2.3".parse().unwrap()),
            "10.1.2.0".parse::<IpAddr>().unwrap()
        );
        assert_eq!(
            plan.masked("2001:db8:1:2:3:4:5:6".parse().unwrap()),
            "2001:db8:1:2::".parse::<IpAddr>().unwrap()
        );
        let exact = PersistencePlan::new(&vserver("persistencetype = \"SOURCEIP\""), None).unwrap();
        assert_eq!(
            exact.masked("10.1.2.3".parse().unwrap()),
            "10.1.2.3".parse::<IpAddr>().unwrap()
        );
        assert!(PersistencePlan::new(&vserver(""), None).is_none());
    }

    #[test]
    fn the_cookie_is_found_among_others_and_a_bad_one_is_skipped() {
        let plan = PersistencePlan::new(
            &vserver("persistencetype = \"COOKIEINSERT\"\ncookiekey = \"0123456789abcdef\""),
            None,
        )
        .unwrap();
        let id = plan.signer.member_id("g", ([127, 0, 0, 1], 1).into());
        let good = plan.signer.issue("vs", id, None);
        let mut headers = HeaderMap::new();
        headers.append(
            http::header::COOKIE,
            HeaderValue::from_static("a=1; NSC_vs=forged; b=2"),
        );
        headers.append(
            http::header::COOKIE,
            HeaderValue::from_str(&format!("NSC_vs={good}")).unwrap(),
        );
        let sessions = SessionTable::default();
        let client = IpAddr::from([127, 0, 0, 1]);
        assert_eq!(
            plan.target("vs", client, Some(&headers), &sessions),
            Some(Target::Cookie { id, renew: false })
        );
        assert_eq!(
            plan.target("other", client, Some(&headers), &sessions),
            None
        );
    }
}
