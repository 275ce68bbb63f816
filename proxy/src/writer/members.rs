//! Typed member operations: bind a member to a servicegroup, change it (weight, enable or
//! disable, scale-in protection), unbind it. The admin API and the autoscaler's fleet adapter
//! both use them, so a member is bound the same way whoever asks.
//!
//! Each operation is a change to the running config's file form, validated whole and applied
//! by the one writer like every edit. [`ConfigWriter::bind_member`] and its siblings run one
//! operation as one edit; the admin API runs several in one edit (a request with several
//! bindings is all or nothing) through the functions [`bind`], [`change`] and [`unbind`].
//!
//! A member bound with an [`AutoscaleMark`] is runtime state: the file form holds the mark in a
//! field that serde skips, so no file can set it, `nsconfig save` leaves the member out
//! ([`crate::save::file_to_save`]), and [`carry_over`] keeps it when a reload replaces the
//! config.

use std::net::{IpAddr, SocketAddr};

use super::{ApplyError, ConfigWriter, EditError};
use crate::config::file::{FileConfig, MemberFile, ServiceGroupFile};
use crate::config::{AutoscaleMark, Config, ConfigError, Problem};

/// How a new member is bound.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberBinding {
    /// 1..=100 (checked with the rest of the config); 1 by default.
    pub weight: u32,
    /// `false` binds it disabled: it takes no traffic until enabled.
    pub enabled: bool,
    /// The autoscaler never picks a protected member for a scale-in.
    pub scale_in_protection: bool,
    /// Set by the autoscaler for the members it binds; `None` for everyone else.
    pub autoscale: Option<AutoscaleMark>,
}

impl Default for MemberBinding {
    fn default() -> MemberBinding {
        MemberBinding {
            weight: 1,
            enabled: true,
            scale_in_protection: false,
            autoscale: None,
        }
    }
}

impl MemberBinding {
    /// A member the autoscaler bound for `mark`'s VM, with the default weight, enabled.
    pub fn autoscaled(mark: AutoscaleMark) -> MemberBinding {
        MemberBinding {
            autoscale: Some(mark),
            ..MemberBinding::default()
        }
    }
}

/// A change to a bound member; `None` leaves that part as it is.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MemberChange {
    pub weight: Option<u32>,
    /// `Some(false)` drains the member: it stays bound, takes no new traffic, and what it is
    /// serving finishes.
    pub enabled: Option<bool>,
    pub scale_in_protection: Option<bool>,
}

/// Why a member operation changed nothing.
#[derive(Debug, thiserror::Error)]
pub enum MemberOpError {
    #[error("no servicegroup named `{0}`")]
    NoGroup(String),
    #[error("{addr} is already bound to servicegroup `{group}`")]
    AlreadyBound { group: String, addr: SocketAddr },
    #[error("{addr} is not bound to servicegroup `{group}`")]
    NotBound { group: String, addr: SocketAddr },
    /// The changed config does not validate (a weight out of range, a port clash ...).
    #[error("{0}")]
    Invalid(ConfigError),
    /// The changed config validated but could not be applied.
    #[error(transparent)]
    Apply(ApplyError),
    #[error("the config writer has stopped")]
    Stopped,
}

impl ConfigWriter {
    /// Binds `addr` to servicegroup `group`. An address that is already bound there is
    /// [`MemberOpError::AlreadyBound`] (and nothing changes).
    pub async fn bind_member(
        &self,
        group: &str,
        addr: SocketAddr,
        binding: MemberBinding,
    ) -> Result<(), MemberOpError> {
        let group = group.to_owned();
        self.member_op(move |file| bind(file, &group, addr, binding))
            .await
    }

    /// Changes a bound member.
    pub async fn change_member(
        &self,
        group: &str,
        addr: SocketAddr,
        member_change: MemberChange,
    ) -> Result<(), MemberOpError> {
        let group = group.to_owned();
        self.member_op(move |file| change(file, &group, addr, member_change))
            .await
    }

    /// Drains a member gracefully: it stays bound and takes no new traffic; in-flight work
    /// finishes (its state goes GOING OUT OF SERVICE, then OUT OF SERVICE).
    pub async fn disable_member(&self, group: &str, addr: SocketAddr) -> Result<(), MemberOpError> {
        let enabled = Some(false);
        let member_change = MemberChange {
            enabled,
            ..MemberChange::default()
        };
        self.change_member(group, addr, member_change).await
    }

    /// Ends a drain: the member takes traffic again once it is UP.
    pub async fn enable_member(&self, group: &str, addr: SocketAddr) -> Result<(), MemberOpError> {
        let enabled = Some(true);
        let member_change = MemberChange {
            enabled,
            ..MemberChange::default()
        };
        self.change_member(group, addr, member_change).await
    }

    /// Sets or clears a member's scale-in protection.
    pub async fn set_scale_in_protection(
        &self,
        group: &str,
        addr: SocketAddr,
        protected: bool,
    ) -> Result<(), MemberOpError> {
        let member_change = MemberChange {
            scale_in_protection: Some(protected),
            ..MemberChange::default()
        };
        self.change_member(group, addr, member_change).await
    }

    /// Removes a member from its servicegroup; it drains (what it serves finishes).
    pub async fn unbind_member(&self, group: &str, addr: SocketAddr) -> Result<(), MemberOpError> {
        let group = group.to_owned();
        self.member_op(move |file| unbind(file, &group, addr)).await
    }

    async fn member_op(
        &self,
        op: impl FnOnce(&mut FileConfig) -> Result<(), MemberOpError> + Send + 'static,
    ) -> Result<(), MemberOpError> {
        self.edit_from(super::ChangeSource::Autoscaler, move |file| Ok(op(file)?))
            .await
            .map_err(MemberOpError::from)
    }
}

/// Binds `addr` to `group` in `file` (see [`ConfigWriter::bind_member`]).
pub fn bind(
    file: &mut FileConfig,
    group: &str,
    addr: SocketAddr,
    binding: MemberBinding,
) -> Result<(), MemberOpError> {
    let found = group_mut(file, group)?;
    if position(found, addr).is_some() {
        return Err(MemberOpError::AlreadyBound {
            group: group.to_owned(),
            addr,
        });
    }
    found.members.push(MemberFile {
        ip: addr.ip().to_string(),
        port: i64::from(addr.port()),
        // Defaults are left out, as an operator would write the file.
        weight: (binding.weight != 1).then_some(i64::from(binding.weight)),
        state: (!binding.enabled).then(|| "DISABLED".to_owned()),
        autoscale: binding.autoscale,
        scale_in_protection: binding.scale_in_protection,
    });
    Ok(())
}

/// Changes the member `addr` of `group` in `file` (see [`ConfigWriter::change_member`]).
pub fn change(
    file: &mut FileConfig,
    group: &str,
    addr: SocketAddr,
    change: MemberChange,
) -> Result<(), MemberOpError> {
    let found = group_mut(file, group)?;
    let index = position(found, addr).ok_or_else(|| not_bound(group, addr))?;
    let member = &mut found.members[index];
    if let Some(weight) = change.weight {
        member.weight = Some(i64::from(weight));
    }
    if let Some(enabled) = change.enabled {
        let disabled = member.state.as_deref() == Some("DISABLED");
        if enabled == disabled {
            member.state = (!enabled).then(|| "DISABLED".to_owned());
        }
    }
    if let Some(protected) = change.scale_in_protection {
        member.scale_in_protection = protected;
    }
    Ok(())
}

/// Removes the member `addr` from `group` in `file` (see [`ConfigWriter::unbind_member`]).
pub fn unbind(file: &mut FileConfig, group: &str, addr: SocketAddr) -> Result<(), MemberOpError> {
    let found = group_mut(file, group)?;
    let index = position(found, addr).ok_or_else(|| not_bound(group, addr))?;
    found.members.remove(index);
    Ok(())
}

/// Every member address of `group` in `file`.
pub fn addresses(file: &FileConfig, group: &str) -> Result<Vec<SocketAddr>, MemberOpError> {
    let found = file
        .servicegroup
        .iter()
        .find(|g| g.servicegroupname == group)
        .ok_or_else(|| MemberOpError::NoGroup(group.to_owned()))?;
    Ok(found.members.iter().filter_map(address).collect())
}

/// `new` (a whole config replacing `running`: SIGHUP, or an apply) with the autoscaled members
/// of `running` added to the servicegroups that still exist, unless `new` lists that address
/// there itself. They keep their mark, weight, state and scale-in protection.
pub fn carry_over(running: &Config, mut new: Config) -> Config {
    for group in &running.source.servicegroup {
        let autoscaled = group.members.iter().filter(|m| m.autoscale.is_some());
        for member in autoscaled {
            let Some(addr) = address(member) else {
                continue;
            };
            let Some(model) = running
                .service_group(&group.servicegroupname)
                .and_then(|g| g.members.iter().find(|m| m.addr == addr))
            else {
                continue;
            };
            let file_group = new
                .source
                .servicegroup
                .iter_mut()
                .find(|g| g.servicegroupname == group.servicegroupname);
            let model_group = new
                .service_groups
                .iter_mut()
                .find(|g| g.name == group.servicegroupname);
            let (Some(file_group), Some(model_group)) = (file_group, model_group) else {
                continue;
            };
            if position(file_group, addr).is_some() {
                continue;
            }
            file_group.members.push(member.clone());
            model_group.members.push(model.clone());
        }
    }
    new
}

/// Puts back the runtime state (autoscale marks, scale-in protection) of the members of
/// `after` that an edit rebuilt from their serialized form, which cannot hold it. `before` is
/// the file form before that edit.
pub fn restore_runtime_state(before: &FileConfig, after: &mut FileConfig) {
    for group in &mut after.servicegroup {
        let Some(old) = before
            .servicegroup
            .iter()
            .find(|g| g.servicegroupname == group.servicegroupname)
        else {
            continue;
        };
        for member in &mut group.members {
            let Some(addr) = address(member) else {
                continue;
            };
            if let Some(index) = position(old, addr) {
                let old = &old.members[index];
                member.autoscale.clone_from(&old.autoscale);
                member.scale_in_protection = old.scale_in_protection;
            }
        }
    }
}

/// A member operation inside a larger edit (the admin API's).
impl From<MemberOpError> for EditError {
    fn from(error: MemberOpError) -> EditError {
        EditError::Member(error)
    }
}

/// An edit's outcome, as a member operation sees it.
impl From<EditError> for MemberOpError {
    fn from(error: EditError) -> MemberOpError {
        match error {
            EditError::Member(error) => error,
            EditError::Invalid(invalid) => MemberOpError::Invalid(invalid),
            EditError::Apply(ApplyError::Stopped) => MemberOpError::Stopped,
            EditError::Apply(error) => MemberOpError::Apply(error),
            // A member operation's edit returns none of these; keep the message if one does.
            EditError::NotFound(message)
            | EditError::Exists(message)
            | EditError::InUse(message)
            | EditError::Rejected(message) => MemberOpError::Invalid(ConfigError {
                problems: vec![Problem {
                    path: String::new(),
                    message,
                }],
            }),
        }
    }
}

fn group_mut<'a>(
    file: &'a mut FileConfig,
    group: &str,
) -> Result<&'a mut ServiceGroupFile, MemberOpError> {
    file.servicegroup
        .iter_mut()
        .find(|g| g.servicegroupname == group)
        .ok_or_else(|| MemberOpError::NoGroup(group.to_owned()))
}

/// Where `addr` is among the group's members (compared as addresses: `::1` is `0::1`).
fn position(group: &ServiceGroupFile, addr: SocketAddr) -> Option<usize> {
    group.members.iter().position(|m| address(m) == Some(addr))
}

/// A member's address; `None` for one that does not parse (it would not have validated).
fn address(member: &MemberFile) -> Option<SocketAddr> {
    let ip: IpAddr = member.ip.parse().ok()?;
    let port = u16::try_from(member.port).ok()?;
    Some(SocketAddr::new(ip, port))
}

fn not_bound(group: &str, addr: SocketAddr) -> MemberOpError {
    MemberOpError::NotBound {
        group: group.to_owned(),
        addr,
    }
}

#[cfg(test)]
mod tests;
