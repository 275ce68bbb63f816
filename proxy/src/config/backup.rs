//! `backupvserver` and spillover (`somethod`, `sothreshold`) of an `[[lbvserver]]`: the keys
//! as checked, and the references between vservers (the backup exists, is not the vserver
//! itself, serves the same kind of servicegroup, and no chain is a cycle or longer than
//! [`MAX_BACKUP_CHAIN`]).

use std::collections::HashMap;

use super::file::{FileConfig, LbVserverFile};
use super::model::{BackendType, ServiceType};
use super::problems::Problems;

/// Backups one vserver's traffic may pass through: a backup's backup, and so on.
pub const MAX_BACKUP_CHAIN: usize = 3;
/// The most `sothreshold` may be.
pub const MAX_SO_THRESHOLD: i64 = 10_000_000;

/// Checks `somethod` and `sothreshold`; the threshold when spillover is on.
pub fn spillover(file: &LbVserverFile, path: &str, p: &mut Problems) -> Option<Option<u32>> {
    let method = file.somethod.as_deref().unwrap_or("NONE");
    match method {
        "NONE" => {
            if file.sothreshold.is_some() {
                p.add(
                    format!("{path}.sothreshold"),
                    "sothreshold needs somethod = \"CONNECTION\"",
                );
                return None;
            }
            Some(None)
        }
        "CONNECTION" => {
            if file.backupvserver.is_none() {
                p.add(
                    format!("{path}.somethod"),
                    "spillover needs a backupvserver to spill over to",
                );
            }
            let threshold = match file.sothreshold {
                None => {
                    p.add(
                        format!("{path}.sothreshold"),
                        "somethod = \"CONNECTION\" needs a sothreshold (open client connections)",
                    );
                    None
                }
                Some(n) if (1..=MAX_SO_THRESHOLD).contains(&n) => Some(n as u32),
                Some(n) => {
                    p.add(
                        format!("{path}.sothreshold"),
                        format!("expected 1..={MAX_SO_THRESHOLD}, got {n}"),
                    );
                    None
                }
            };
            file.backupvserver.as_ref()?;
            threshold.map(Some)
        }
        other => {
            p.add(
                format!("{path}.somethod"),
                format!("unknown somethod `{other}`; expected CONNECTION or NONE"),
            );
            None
        }
    }
}

/// Checks `disableprimaryondown` (`ENABLED` needs a `backupvserver`).
pub fn disable_primary_on_down(file: &LbVserverFile, path: &str, p: &mut Problems) -> Option<bool> {
    let key = format!("{path}.disableprimaryondown");
    match file.disableprimaryondown.as_deref() {
        None | Some("DISABLED") => Some(false),
        Some("ENABLED") if file.backupvserver.is_none() => {
            p.add(
                key,
                "disableprimaryondown needs a backupvserver to fail over to",
            );
            None
        }
        Some("ENABLED") => Some(true),
        Some(other) => {
            p.add(key, format!("expected ENABLED or DISABLED, got `{other}`"));
            None
        }
    }
}

/// Each `backupvserver` names another vserver of a compatible `servicetype`, and following
/// backups from any vserver ends within [`MAX_BACKUP_CHAIN`] steps without coming back.
/// `broken` says whether a name belongs to an element that did not even parse (its problem
/// is reported already).
pub fn backup_references(file: &FileConfig, broken: impl Fn(&str) -> bool, p: &mut Problems) {
    let by_name: HashMap<&str, &LbVserverFile> = file
        .lbvserver
        .iter()
        .map(|v| (v.name.as_str(), v))
        .collect();
    let backend = |vserver: &LbVserverFile| {
        ServiceType::ALL
            .iter()
            .find(|(word, _)| *word == vserver.servicetype)
            .map(|(_, t)| t.backend_type())
    };
    for (index, vserver) in file.lbvserver.iter().enumerate() {
        let Some(backup_name) = &vserver.backupvserver else {
            continue;
        };
        let path = format!("lbvserver[{index}].backupvserver");
        if *backup_name == vserver.name {
            p.add(path, "a vserver cannot be its own backupvserver");
            continue;
        }
        let Some(backup) = by_name.get(backup_name.as_str()) else {
            if !broken(backup_name) {
                p.add(path, format!("no lbvserver named `{backup_name}`"));
            }
            continue;
        };
        if let (Some(wanted), Some(found)) = (backend(vserver), backend(backup))
            && wanted != found
        {
            let kind = |t: BackendType| match t {
                BackendType::Http => "HTTP or SSL",
                BackendType::Tcp => "TCP or SSL_TCP",
            };
            p.add(
                &path,
                format!(
                    "a {} vserver needs a {} backupvserver, `{backup_name}` is {}",
                    vserver.servicetype,
                    kind(wanted),
                    backup.servicetype
                ),
            );
            continue;
        }
        let mut chain = vec![vserver.name.as_str()];
        let mut next = Some(*backup);
        while let Some(current) = next {
            if chain.contains(&current.name.as_str()) {
                chain.push(&current.name);
                p.add(
                    &path,
                    format!("backup vservers form a cycle: {}", chain.join(" -> ")),
                );
                break;
            }
            chain.push(&current.name);
            if chain.len() > MAX_BACKUP_CHAIN + 1 {
                p.add(
                    &path,
                    format!(
                        "backup chain {} is longer than {MAX_BACKUP_CHAIN} backups",
                        chain.join(" -> ")
                    ),
                );
                break;
            }
            next = current
                .backupvserver
                .as_deref()
                .and_then(|name| by_name.get(name).copied());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vserver(name: &str, servicetype: &str, backup: Option<&str>) -> LbVserverFile {
        LbVserverFile {
            name: name.into(),
            servicetype: servicetype.into(),
            ipv46: "127.0.0.1".into(),
            port: 80,
            backupvserver: backup.map(str::to_owned),
            ..LbVserverFile::default()
        }
    }

    fn problems(vservers: Vec<LbVserverFile>) -> String {
        let file = FileConfig {
            lbvserver: vservers,
            ..FileConfig::default()
        };
        let mut p = Problems::default();
        backup_references(&file, |_| false, &mut p);
        match p.into_result(|| ()) {
            Ok(()) => String::new(),
            Err(error) => format!("{:?}", error.problems),
        }
    }

    #[test]
    fn a_chain_of_three_backups_is_fine_four_is_too_long() {
        let chain = |n: usize| {
            (0..=n)
                .map(|i| {
                    let next = format!("v{}", i + 1);
                    vserver(&format!("v{i}"), "HTTP", (i < n).then_some(next.as_str()))
                })
                .collect::<Vec<_>>()
        };
        assert_eq!(problems(chain(3)), "");
        let long = problems(chain(4));
        assert!(
            long.contains("lbvserver[0].backupvserver")
                && long.contains("v0 -> v1 -> v2 -> v3 -> v4 is longer than 3 backups"),
            "{long}"
        );
    }

    #[test]
    fn missing_own_and_mismatched_backups_are_named_by_path() {
        let found = problems(vec![
            vserver("a", "HTTP", Some("ghost")),
            vserver("b", "SSL", Some("b")),
            vserver("c", "SSL_TCP", Some("a")),
            vserver("d", "SSL", Some("a")),
        ]);
        assert!(
            found.contains("lbvserver[0].backupvserver")
                && found.contains("no lbvserver named `ghost`"),
            "{found}"
        );
        assert!(
            found.contains("a vserver cannot be its own backupvserver"),
            "{found}"
        );
        assert!(
            found.contains("a SSL_TCP vserver needs a TCP or SSL_TCP backupvserver, `a` is HTTP"),
            "{found}"
        );
        assert!(
            !found.contains("lbvserver[3]"),
            "SSL backs up with HTTP: {found}"
        );
    }

    #[test]
    fn spillover_needs_connection_a_threshold_and_a_backup() {
        let check = |somethod: Option<&str>, threshold: Option<i64>, backup: Option<&str>| {
            let mut file = vserver("web", "HTTP", backup);
            file.somethod = somethod.map(str::to_owned);
            file.sothreshold = threshold;
            let mut p = Problems::default();
            let result = spillover(&file, "lbvserver[0]", &mut p);
            let text = match p.into_result(|| ()) {
                Ok(()) => String::new(),
                Err(error) => format!("{:?}", error.problems),
            };
            (result, text)
        };
        assert_eq!(check(None, None, None), (Some(None), String::new()));
        assert_eq!(
            check(Some("CONNECTION"), Some(10), Some("b")).0,
            Some(Some(10))
        );
        let (result, text) = check(Some("CONNECTION"), Some(10), None);
        assert_eq!(result, None);
        assert!(
            text.contains("lbvserver[0].somethod") && text.contains("needs a backupvserver"),
            "{text}"
        );
        let (_, text) = check(Some("CONNECTION"), Some(0), Some("b"));
        assert!(
            text.contains("lbvserver[0].sothreshold") && text.contains("got 0"),
            "{text}"
        );
        let (_, text) = check(None, Some(5), Some("b"));
        assert!(text.contains("sothreshold needs somethod"), "{text}");
        let (_, text) = check(Some("BANDWIDTH"), None, Some("b"));
        assert!(text.contains("unknown somethod `BANDWIDTH`"), "{text}");
    }

    #[test]
    fn disableprimaryondown_is_enabled_or_disabled_and_needs_a_backup() {
        let check = |value: Option<&str>, backup: Option<&str>| {
            let mut file = vserver("web", "HTTP", backup);
            file.disableprimaryondown = value.map(str::to_owned);
            let mut p = Problems::default();
            let result = disable_primary_on_down(&file, "lbvserver[0]", &mut p);
            (result, format!("{:?}", p.into_result(|| ()).err()))
        };
        assert_eq!(check(None, None).0, Some(false));
        assert_eq!(check(Some("ENABLED"), Some("b")).0, Some(true));
        let (result, text) = check(Some("ENABLED"), None);
        assert_eq!(result, None);
        assert!(
            text.contains("lbvserver[0].disableprimaryondown")
                && text.contains("needs a backupvserver"),
            "{text}"
        );
        let (_, text) = check(Some("YES"), Some("b"));
        assert!(
            text.contains("expected ENABLED or DISABLED, got `YES`"),
            "{text}"
        );
    }
}
