//! Fault injection: what the next API calls and deploys should suffer. Set through
//! [`super::LocalCloud::inject`] or `POST /localcloud/v1/faults` (not part of the CloudStack
//! API). Counters count down as faults are used; `api_delay_ms` stays until changed.

use serde::{Deserialize, Serialize};

/// A set of faults. As a patch (JSON body, or [`super::LocalCloud::inject`]), only the fields
/// given change.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Faults {
    /// The next N deploy jobs fail (the VM goes to `Error`) ...
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fail_deploys: Option<u32>,
    /// ... with this error code (default 530; 533 and 534 are the other usual ones).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fail_deploys_errorcode: Option<u16>,
    /// The next N deploy jobs never finish: the VM stays `Starting` until destroyed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hang_deploys: Option<u32>,
    /// The next N API calls (of `api_errors_command` only, if set) answer an error ...
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_errors: Option<u32>,
    /// ... with this error code (default 530; e.g. 429, 534).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_errors_errorcode: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_errors_command: Option<String>,
    /// The next N API requests get their connection closed without an answer, before the
    /// command runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub drop_connections: Option<u32>,
    /// The next N API calls (of `lose_answers_command` only, if set) that succeed are carried
    /// out, then their connection is closed without the answer: a deploy makes its VM, and
    /// the client never hears of it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lose_answers: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lose_answers_command: Option<String>,
    /// Every API answer is delayed this long (0 turns it off).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_delay_ms: Option<u64>,
}

/// What a deploy job must suffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeployFault {
    Fail(u16),
    Hang,
}

impl Faults {
    /// Applies the fields set in `patch`.
    pub fn apply(&mut self, patch: &Faults) {
        macro_rules! take {
            ($($field:ident),*) => {$(
                if patch.$field.is_some() {
                    self.$field.clone_from(&patch.$field);
                }
            )*};
        }
        take!(
            fail_deploys,
            fail_deploys_errorcode,
            hang_deploys,
            api_errors,
            api_errors_errorcode,
            api_errors_command,
            drop_connections,
            lose_answers,
            lose_answers_command,
            api_delay_ms
        );
    }

    /// Uses up one deploy fault, if any is armed (failures before hangs).
    pub fn take_deploy_fault(&mut self) -> Option<DeployFault> {
        if take_one(&mut self.fail_deploys) {
            return Some(DeployFault::Fail(
                self.fail_deploys_errorcode.unwrap_or(530),
            ));
        }
        take_one(&mut self.hang_deploys).then_some(DeployFault::Hang)
    }

    /// Uses up one API error for `command`, if one is armed: its error code.
    pub fn take_api_error(&mut self, command: &str) -> Option<u16> {
        let applies = self
            .api_errors_command
            .as_deref()
            .is_none_or(|only| only.eq_ignore_ascii_case(command));
        (applies && take_one(&mut self.api_errors))
            .then(|| self.api_errors_errorcode.unwrap_or(530))
    }

    /// Uses up one dropped connection, if armed.
    pub fn take_drop(&mut self) -> bool {
        take_one(&mut self.drop_connections)
    }

    /// Uses up one lost answer for `command` (which succeeded), if one is armed.
    pub fn take_lost_answer(&mut self, command: &str) -> bool {
        let applies = self
            .lose_answers_command
            .as_deref()
            .is_none_or(|only| only.eq_ignore_ascii_case(command));
        applies && take_one(&mut self.lose_answers)
    }
}

fn take_one(counter: &mut Option<u32>) -> bool {
    match counter {
        Some(n) if *n > 0 => {
            *n -= 1;
            true
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_count_down() {
        let mut faults = Faults::default();
        faults.apply(&Faults {
            fail_deploys: Some(1),
            fail_deploys_errorcode: Some(534),
            hang_deploys: Some(1),
            api_errors: Some(1),
            api_errors_command: Some("listZones".into()),
            ..Faults::default()
        });
        assert_eq!(faults.take_deploy_fault(), Some(DeployFault::Fail(534)));
        assert_eq!(faults.take_deploy_fault(), Some(DeployFault::Hang));
        assert_eq!(faults.take_deploy_fault(), None);
        assert_eq!(faults.take_api_error("listHosts"), None);
        assert_eq!(faults.take_api_error("listzones"), Some(530));
        assert_eq!(faults.take_api_error("listZones"), None);
        assert!(!faults.take_drop());

        faults.apply(&Faults {
            lose_answers: Some(1),
            lose_answers_command: Some("deployVirtualMachine".into()),
            ..Faults::default()
        });
        assert!(!faults.take_lost_answer("listZones"));
        assert!(faults.take_lost_answer("deployvirtualmachine"));
        assert!(!faults.take_lost_answer("deployVirtualMachine"));
    }

    #[test]
    fn json_patches() {
        let patch: Faults = serde_json::from_str(r#"{"api_delay_ms": 200}"#).expect("valid");
        let mut faults = Faults {
            hang_deploys: Some(2),
            ..Faults::default()
        };
        faults.apply(&patch);
        assert_eq!(
            (faults.hang_deploys, faults.api_delay_ms),
            (Some(2), Some(200))
        );
        assert!(serde_json::from_str::<Faults>(r#"{"hang": 1}"#).is_err());
    }
}
