//! Profile ids by name: an autoscale profile names its zone, template, service offering and
//! networks by UUID or by name, and [`resolve_profile_ids`] turns the names into UUIDs through
//! the `list*` calls (at start and on every reload, so a renamed or re-registered object is
//! picked up).
//!
//! A value shaped like a UUID (`8-4-4-4-12` hex digits) is kept as it is, without a call.
//! Anything else must be the exact name of exactly one object: CloudStack's `name` filters
//! can match substrings, so the answer is filtered exactly here, and two objects with the same
//! name are an error that asks for a UUID. Templates and networks are looked up in the
//! resolved zone; templates with `templatefilter=executable` (what the caller may deploy).

use crate::api::{ListFilter, TemplateFilter};
use crate::client::CloudStackClient;
use crate::error::CloudError;

/// The ids of an autoscale profile: as written (UUIDs or names), or all UUIDs once resolved.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProfileIds {
    pub zone: String,
    pub template: String,
    pub service_offering: String,
    pub networks: Vec<String>,
}

/// Why a profile's ids could not be resolved. `field` is the profile key (`zoneid`,
/// `templateid`, `serviceofferingid`, `networkids[1]`).
#[derive(Debug, thiserror::Error)]
pub enum ResolveError {
    /// No object has this exact name (in the profile's zone, for templates and networks).
    #[error("{field}: no {kind} named {name:?}")]
    NotFound {
        field: String,
        kind: &'static str,
        name: String,
    },
    /// Several objects have this name; only a UUID can say which.
    #[error("{field}: {} {kind}s are named {name:?} (ids {}); use a UUID", ids.len(), ids.join(", "))]
    Ambiguous {
        field: String,
        kind: &'static str,
        name: String,
        ids: Vec<String>,
    },
    /// The list call failed; [`ResolveError::is_retryable`] says whether trying later may help.
    #[error("{field}: {source}")]
    Cloud {
        field: String,
        #[source]
        source: CloudError,
    },
}

impl ResolveError {
    /// Whether resolving again later may succeed: only when the list call failed with a
    /// retryable [`CloudError`] (a missing or ambiguous name needs the operator).
    pub fn is_retryable(&self) -> bool {
        match self {
            // Resolving only lists, so an answer lost may be asked again too.
            Self::Cloud { source, .. } => source.is_retryable_if_read_only(),
            Self::NotFound { .. } | Self::Ambiguous { .. } => false,
        }
    }

    /// The profile key the error is about.
    pub fn field(&self) -> &str {
        match self {
            Self::NotFound { field, .. }
            | Self::Ambiguous { field, .. }
            | Self::Cloud { field, .. } => field,
        }
    }
}

/// Resolves every name in `ids` to its UUID (UUIDs are kept as they are). The zone comes
/// first, since templates and networks are looked up in it.
pub async fn resolve_profile_ids(
    client: &CloudStackClient,
    ids: &ProfileIds,
) -> Result<ProfileIds, ResolveError> {
    let zone = match uuid_or_name(&ids.zone) {
        Some(uuid) => uuid,
        None => {
            let field = "zoneid";
            let zones = client
                .list_zones(&ListFilter::by_name(&ids.zone))
                .await
                .map_err(|source| cloud(field, source))?;
            let found = zones.iter().map(|z| (z.id.as_str(), z.name.as_str()));
            pick(field, "zone", &ids.zone, found)?
        }
    };
    let in_zone = |name: &str| ListFilter {
        name: Some(name.to_owned()),
        zoneid: Some(zone.clone()),
        ..ListFilter::default()
    };
    let template = match uuid_or_name(&ids.template) {
        Some(uuid) => uuid,
        None => {
            let field = "templateid";
            let templates = client
                .list_templates(TemplateFilter::Executable, &in_zone(&ids.template))
                .await
                .map_err(|source| cloud(field, source))?;
            // One item per zone a template is in; the zone filter should leave one, but a
            // server that ignores it must not make one template look like two.
            let found = templates
                .iter()
                .filter(|t| t.zoneid.as_deref().is_none_or(|z| z == zone))
                .map(|t| (t.id.as_str(), t.name.as_str()));
            pick(field, "template", &ids.template, found)?
        }
    };
    let service_offering = match uuid_or_name(&ids.service_offering) {
        Some(uuid) => uuid,
        None => {
            let field = "serviceofferingid";
            let offerings = client
                .list_service_offerings(&ListFilter::by_name(&ids.service_offering))
                .await
                .map_err(|source| cloud(field, source))?;
            let found = offerings.iter().map(|o| (o.id.as_str(), o.name.as_str()));
            pick(field, "service offering", &ids.service_offering, found)?
        }
    };
    let mut networks = Vec::with_capacity(ids.networks.len());
    for (index, network) in ids.networks.iter().enumerate() {
        let resolved = match uuid_or_name(network) {
            Some(uuid) => uuid,
            None => {
                let field = format!("networkids[{index}]");
                let found = client
                    .list_networks(&in_zone(network))
                    .await
                    .map_err(|source| cloud(&field, source))?;
                let found = found
                    .iter()
                    .filter(|n| n.zoneid.as_deref().is_none_or(|z| z == zone))
                    .map(|n| (n.id.as_str(), n.name.as_str()));
                pick(&field, "network", network, found)?
            }
        };
        networks.push(resolved);
    }
    Ok(ProfileIds {
        zone,
        template,
        service_offering,
        networks,
    })
}

/// Whether `text` is a UUID as CloudStack writes them: `8-4-4-4-12` hex digits (any case).
pub fn is_uuid(text: &str) -> bool {
    let groups: Vec<&str> = text.split('-').collect();
    groups.len() == 5
        && groups
            .iter()
            .zip([8, 4, 4, 4, 12])
            .all(|(group, len)| group.len() == len && group.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// The one id among `found` (`(id, name)` pairs as a list call returned them) whose name is
/// exactly `name`. The same id listed twice counts once.
pub fn pick<'a>(
    field: &str,
    kind: &'static str,
    name: &str,
    found: impl IntoIterator<Item = (&'a str, &'a str)>,
) -> Result<String, ResolveError> {
    let mut ids: Vec<String> = Vec::new();
    for (id, candidate) in found {
        if candidate == name && !ids.iter().any(|known| known == id) {
            ids.push(id.to_owned());
        }
    }
    match ids.len() {
        0 => Err(ResolveError::NotFound {
            field: field.to_owned(),
            kind,
            name: name.to_owned(),
        }),
        1 => Ok(ids.remove(0)),
        _ => Err(ResolveError::Ambiguous {
            field: field.to_owned(),
            kind,
            name: name.to_owned(),
            ids,
        }),
    }
}

fn uuid_or_name(text: &str) -> Option<String> {
    is_uuid(text).then(|| text.to_owned())
}

fn cloud(field: &str, source: CloudError) -> ResolveError {
    ResolveError::Cloud {
        field: field.to_owned(),
        source,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuids_are_8_4_4_4_12_hex_digits() {
        assert!(is_uuid("2a6b0b35-1f0a-4c0e-9d3e-3f4b1c2d5e6f"));
        assert!(is_uuid("2A6B0B35-1F0A-4C0E-9D3E-3F4B1C2D5E6F"));
        for not in [
            "web",
            "",
            "2a6b0b35-1f0a-4c0e-9d3e-3f4b1c2d5e6",
            "2a6b0b351f0a4c0e9d3e3f4b1c2d5e6f",
            "2a6b0b35-1f0a-4c0e-9d3e-3f4b1c2d5e6g",
            "2a6b0b35-1f0a-4c0e-9d3e-3f4b1c2d5e6f-0",
            "web-2a6b0b35-1f0a-4c0e-9d3e",
        ] {
            assert!(!is_uuid(not), "{not:?}");
        }
    }

    #[test]
    fn a_name_must_match_exactly_one_object_exactly() {
        let found = [("id-1", "web"), ("id-2", "web-large"), ("id-3", "Web")];
        assert_eq!(
            pick("templateid", "template", "web", found).unwrap(),
            "id-1"
        );
        // A substring match from the server is not a match.
        let error = pick("templateid", "template", "we", found).unwrap_err();
        assert_eq!(error.to_string(), r#"templateid: no template named "we""#);
        assert!(!error.is_retryable());
        // The same template listed once per zone is one template.
        let per_zone = [("id-1", "web"), ("id-1", "web")];
        assert_eq!(
            pick("templateid", "template", "web", per_zone).unwrap(),
            "id-1"
        );
    }

    #[test]
    fn two_objects_with_one_name_ask_for_a_uuid() {
        let found = [("a", "web"), ("b", "web"), ("c", "db")];
        let error = pick("templateid", "template", "web", found).unwrap_err();
        assert_eq!(
            error.to_string(),
            r#"templateid: 2 templates are named "web" (ids a, b); use a UUID"#
        );
        assert_eq!(error.field(), "templateid");
        let offerings = [("x", "small"), ("y", "small"), ("z", "small")];
        let error = pick("serviceofferingid", "service offering", "small", offerings).unwrap_err();
        assert_eq!(
            error.to_string(),
            r#"serviceofferingid: 3 service offerings are named "small" (ids x, y, z); use a UUID"#
        );
    }
}
