//! The config resources (`lbvserver`, `servicegroup`, `lbmonitor`, `sslcertkey`,
//! `csvserver`, `cspolicy`, `lbmetrictable`, `autoscaleprofile`, `autoscalegroup`): list, get, add, update and delete on
//! the file form of the config.
//!
//! Each resource is a [`Resource`] value that says where its array lives in [`FileConfig`],
//! which field is its key, which fields are secret, and what still refers to it. The
//! operations run inside the config writer (see [`crate::writer::ConfigWriter::edit`]), so the
//! whole config is validated after each one and a bad request changes nothing.

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use crate::config::file::*;
use crate::writer::EditError;

/// What the admin API can do with one resource type.
pub trait ResourceOps: Sync {
    fn name(&self) -> &'static str;
    /// The objects, secrets removed; one by key if `key` is given.
    fn get(&self, file: &FileConfig, key: Option<&str>) -> Result<Vec<Value>, EditError>;
    /// Adds one object; returns its key.
    fn add(&self, file: &mut FileConfig, object: Value) -> Result<String, EditError>;
    /// Changes the given fields of the object the body's key names (`null` unsets a field).
    fn update(&self, file: &mut FileConfig, object: Value) -> Result<(), EditError>;
    fn delete(&self, file: &mut FileConfig, key: &str) -> Result<(), EditError>;
    /// Lets `change` edit one object in place (for `?action=enable|disable`).
    fn modify(
        &self,
        file: &mut FileConfig,
        key: &str,
        change: &dyn Fn(&mut Value),
    ) -> Result<(), EditError>;
}

/// One resource type: an array in [`FileConfig`] of `T`, keyed by one of its fields.
pub struct Resource<T: 'static> {
    pub name: &'static str,
    pub key: &'static str,
    list: fn(&FileConfig) -> &Vec<T>,
    list_mut: fn(&mut FileConfig) -> &mut Vec<T>,
    key_of: fn(&T) -> &str,
    /// Fields that are stored and saved but never returned (secrets).
    secret: &'static [&'static str],
    /// What still refers to the object with this key, if anything.
    used_by: fn(&FileConfig, &str) -> Option<String>,
}

impl<T> std::fmt::Debug for Resource<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Resource")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

/// Every config resource, by its NITRO name.
pub fn find(name: &str) -> Option<&'static dyn ResourceOps> {
    let all: [&'static dyn ResourceOps; 9] = [
        &LBVSERVER,
        &CSVSERVER,
        &CSPOLICY,
        &SERVICEGROUP,
        &LBMONITOR,
        &SSLCERTKEY,
        &LBMETRICTABLE,
        &AUTOSCALEPROFILE,
        &AUTOSCALEGROUP,
    ];
    all.into_iter().find(|r| r.name() == name)
}

/// `lbvserver` as a trait object, for actions that modify a vserver.
pub static LBVSERVER_OPS: &dyn ResourceOps = &LBVSERVER;

pub static LBVSERVER: Resource<LbVserverFile> = Resource {
    name: "lbvserver",
    key: "name",
    list: |f| &f.lbvserver,
    list_mut: |f| &mut f.lbvserver,
    key_of: |v| &v.name,
    secret: &["cookiekey"],
    used_by: |f, name| {
        let backed_up = f.lbvserver.iter();
        if let Some(v) = backed_up
            .filter(|v| v.name != name)
            .find(|v| v.backupvserver.as_deref() == Some(name))
        {
            return Some(format!("lbvserver `{}` as its backupvserver", v.name));
        }
        if let Some(cs) = crate::config::content_switch::target_user(f, name) {
            return Some(cs);
        }
        let group = f.autoscalegroup.iter().find(|g| g.vserver == name)?;
        Some(format!("autoscalegroup `{}`", group.name))
    },
};

/// `csvserver`: its policy bindings are written inline (`policies`) or through
/// `csvserver_cspolicy_binding`.
pub static CSVSERVER: Resource<crate::config::content_switch::CsVserverFile> = Resource {
    name: "csvserver",
    key: "name",
    list: |f| &f.csvserver,
    list_mut: |f| &mut f.csvserver,
    key_of: |v| &v.name,
    secret: &[],
    used_by: |_, _| None,
};

pub static CSPOLICY: Resource<crate::config::content_switch::CsPolicyFile> = Resource {
    name: "cspolicy",
    key: "policyname",
    list: |f| &f.cspolicy,
    list_mut: |f| &mut f.cspolicy,
    key_of: |p| &p.policyname,
    secret: &[],
    used_by: crate::config::content_switch::policy_user,
};

pub static SERVICEGROUP: Resource<ServiceGroupFile> = Resource {
    name: "servicegroup",
    key: "servicegroupname",
    list: |f| &f.servicegroup,
    list_mut: |f| &mut f.servicegroup,
    key_of: |g| &g.servicegroupname,
    secret: &[],
    used_by: |f, name| {
        if let Some(v) = f
            .lbvserver
            .iter()
            .find(|v| v.servicegroupname.as_deref() == Some(name))
        {
            return Some(format!("lbvserver `{}`", v.name));
        }
        let group = f
            .autoscalegroup
            .iter()
            .find(|g| g.servicegroupname == name)?;
        Some(format!("autoscalegroup `{}`", group.name))
    },
};

pub static LBMONITOR: Resource<LbMonitorFile> = Resource {
    name: "lbmonitor",
    key: "monitorname",
    list: |f| &f.lbmonitor,
    list_mut: |f| &mut f.lbmonitor,
    key_of: |m| &m.monitorname,
    secret: &["snmpcommunity", "snmpauthpassword", "snmpprivpassword"],
    used_by: |f, name| {
        let group = f
            .servicegroup
            .iter()
            .find(|g| g.monitor.iter().any(|m| m == name))?;
        Some(format!("servicegroup `{}`", group.servicegroupname))
    },
};

pub static SSLCERTKEY: Resource<SslCertKeyFile> = Resource {
    name: "sslcertkey",
    key: "certkey",
    list: |f| &f.sslcertkey,
    list_mut: |f| &mut f.sslcertkey,
    key_of: |c| &c.certkey,
    secret: &[],
    used_by: |f, name| {
        if let Some(group) = f
            .servicegroup
            .iter()
            .find(|g| g.clientcertkey.as_deref() == Some(name))
        {
            return Some(format!("servicegroup `{}`", group.servicegroupname));
        }
        if let Some(cs) = f
            .csvserver
            .iter()
            .find(|v| v.sslcertkey.iter().any(|c| c == name))
        {
            return Some(format!("csvserver `{}`", cs.name));
        }
        let vserver = f
            .lbvserver
            .iter()
            .find(|v| v.sslcertkey.iter().any(|c| c == name))?;
        Some(format!("lbvserver `{}`", vserver.name))
    },
};

pub static LBMETRICTABLE: Resource<LbMetricTableFile> = Resource {
    name: "lbmetrictable",
    key: "metrictable",
    list: |f| &f.lbmetrictable,
    list_mut: |f| &mut f.lbmetrictable,
    key_of: |t| &t.metrictable,
    secret: &[],
    used_by: |_, _| None,
};

pub static AUTOSCALEPROFILE: Resource<AutoscaleProfileFile> = Resource {
    name: "autoscaleprofile",
    key: "name",
    list: |f| &f.autoscaleprofile,
    list_mut: |f| &mut f.autoscaleprofile,
    key_of: |p| &p.name,
    secret: &["sharedsecret"],
    used_by: |f, name| {
        let group = f.autoscalegroup.iter().find(|g| g.profilename == name)?;
        Some(format!("autoscalegroup `{}`", group.name))
    },
};

pub static AUTOSCALEGROUP: Resource<AutoscaleGroupFile> = Resource {
    name: "autoscalegroup",
    key: "name",
    list: |f| &f.autoscalegroup,
    list_mut: |f| &mut f.autoscalegroup,
    key_of: |g| &g.name,
    secret: &[],
    used_by: |_, _| None,
};

impl<T: Serialize + DeserializeOwned + Send + Sync + 'static> ResourceOps for Resource<T> {
    fn name(&self) -> &'static str {
        self.name
    }

    fn get(&self, file: &FileConfig, key: Option<&str>) -> Result<Vec<Value>, EditError> {
        let items = (self.list)(file)
            .iter()
            .filter(|item| key.is_none_or(|k| (self.key_of)(item) == k));
        let values: Vec<Value> = items.map(|item| self.public(item)).collect();
        match key {
            Some(key) if values.is_empty() => Err(self.missing(key)),
            _ => Ok(values),
        }
    }

    fn add(&self, file: &mut FileConfig, object: Value) -> Result<String, EditError> {
        let item: T = parse(self.name, object)?;
        let key = (self.key_of)(&item).to_owned();
        if (self.list)(file)
            .iter()
            .any(|existing| (self.key_of)(existing) == key)
        {
            return Err(EditError::Exists(format!(
                "{} `{key}` already exists",
                self.name
            )));
        }
        (self.list_mut)(file).push(item);
        Ok(key)
    }

    fn update(&self, file: &mut FileConfig, object: Value) -> Result<(), EditError> {
        let key = object
            .get(self.key)
            .and_then(Value::as_str)
            .ok_or_else(|| {
                EditError::Rejected(format!(
                    "{}: the body must name the object to update in `{}`",
                    self.name, self.key
                ))
            })?
            .to_owned();
        let Value::Object(changes) = object else {
            return Err(EditError::Rejected(format!(
                "{}: expected an object",
                self.name
            )));
        };
        self.modify(file, &key, &|current| {
            if let Value::Object(fields) = current {
                merge(fields, &changes);
            }
        })
    }

    fn delete(&self, file: &mut FileConfig, key: &str) -> Result<(), EditError> {
        let items = (self.list_mut)(file);
        let index = items
            .iter()
            .position(|item| (self.key_of)(item) == key)
            .ok_or_else(|| self.missing(key))?;
        if let Some(user) = (self.used_by)(file, key) {
            return Err(EditError::InUse(format!(
                "{} `{key}` is still used by {user}; unbind it first",
                self.name
            )));
        }
        (self.list_mut)(file).remove(index);
        Ok(())
    }

    fn modify(
        &self,
        file: &mut FileConfig,
        key: &str,
        change: &dyn Fn(&mut Value),
    ) -> Result<(), EditError> {
        // The JSON round trip below drops what the file form never serializes (autoscaled
        // members' marks, scale-in protection): keep it.
        let before = file.clone();
        self.modify_serialized(file, key, change)?;
        crate::writer::members::restore_runtime_state(&before, file);
        Ok(())
    }
}

impl<T: Serialize + DeserializeOwned> Resource<T> {
    fn modify_serialized(
        &self,
        file: &mut FileConfig,
        key: &str,
        change: &dyn Fn(&mut Value),
    ) -> Result<(), EditError> {
        let items = (self.list_mut)(file);
        let item = items
            .iter_mut()
            .find(|item| (self.key_of)(item) == key)
            .ok_or_else(|| self.missing(key))?;
        let mut value =
            serde_json::to_value(&*item).map_err(|e| EditError::Rejected(e.to_string()))?;
        change(&mut value);
        if value.get(self.key).and_then(Value::as_str) != Some(key) {
            return Err(EditError::Rejected(format!(
                "{}: `{}` cannot be changed; delete and add instead",
                self.name, self.key
            )));
        }
        *item = parse(self.name, value)?;
        Ok(())
    }
}

impl<T: Serialize> Resource<T> {
    fn public(&self, item: &T) -> Value {
        let mut value = serde_json::to_value(item).unwrap_or(Value::Null);
        if let Value::Object(fields) = &mut value {
            for secret in self.secret {
                fields.remove(*secret);
            }
        }
        value
    }

    fn missing(&self, key: &str) -> EditError {
        EditError::NotFound(format!("no {} named `{key}`", self.name))
    }
}

/// Deserializes an object of `resource`, naming the field in any error.
pub fn parse<T: DeserializeOwned>(resource: &str, object: Value) -> Result<T, EditError> {
    serde_path_to_error::deserialize(object).map_err(|error| {
        let path = error.path().to_string();
        let at = if path == "." {
            resource.to_owned()
        } else {
            format!("{resource}.{path}")
        };
        EditError::Rejected(format!("{at}: {}", error.into_inner()))
    })
}

/// Fields that say the same thing in different ways: setting one in an update drops the others
/// (so `{"sharedsecretenv": "CS_SECRET"}` replaces an inline `sharedsecret`).
const ALTERNATIVES: &[&[&str]] = &[
    &["url", "urlfile", "urlenv"],
    &["apikey", "apikeyfile", "apikeyenv"],
    &["sharedsecret", "sharedsecretfile", "sharedsecretenv"],
    &["cookiekey", "cookiekeyfile", "cookiekeyenv"],
    &["snmpcommunity", "snmpcommunityfile", "snmpcommunityenv"],
    &[
        "snmpauthpassword",
        "snmpauthpasswordfile",
        "snmpauthpasswordenv",
    ],
    &[
        "snmpprivpassword",
        "snmpprivpasswordfile",
        "snmpprivpasswordenv",
    ],
];

/// Overlays `changes` on `fields`; a `null` removes the field (back to its default).
pub(super) fn merge(fields: &mut Map<String, Value>, changes: &Map<String, Value>) {
    for group in ALTERNATIVES {
        let chosen = group
            .iter()
            .any(|key| changes.get(*key).is_some_and(|v| !v.is_null()));
        if chosen {
            for key in *group {
                if !changes.contains_key(*key) {
                    fields.remove(*key);
                }
            }
        }
    }
    for (key, value) in changes {
        if value.is_null() {
            fields.remove(key);
        } else {
            fields.insert(key.clone(), value.clone());
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn profile() -> Value {
        json!({"name": "cloud", "url": "http://127.0.0.1:8096/client/api", "apikey": "k",
               "sharedsecret": "s3cr3t-value", "zoneid": "zone-1", "templateid": "tmpl",
               "serviceofferingid": "small", "memberport": 8000})
    }

    #[test]
    fn a_profile_shows_where_its_secret_comes_from_but_never_the_value() {
        let mut file = FileConfig::default();
        AUTOSCALEPROFILE.add(&mut file, profile()).unwrap();
        let shown = AUTOSCALEPROFILE.get(&file, Some("cloud")).unwrap();
        assert!(shown[0].get("sharedsecret").is_none(), "{shown:?}");
        assert!(!shown[0].to_string().contains("s3cr3t-value"));

        // Naming another source replaces the inline value; the reference may be shown.
        let change = json!({"name": "cloud", "sharedsecretenv": "CLOUDSTACK_SECRET"});
        AUTOSCALEPROFILE.update(&mut file, change).unwrap();
        assert_eq!(file.autoscaleprofile[0].sharedsecret, None);
        let shown = AUTOSCALEPROFILE.get(&file, Some("cloud")).unwrap();
        assert_eq!(shown[0]["sharedsecretenv"], "CLOUDSTACK_SECRET");

        let change = json!({"name": "cloud", "sharedsecretfile": "/etc/ballast/cloudstack.secret"});
        AUTOSCALEPROFILE.update(&mut file, change).unwrap();
        let shown = AUTOSCALEPROFILE.get(&file, Some("cloud")).unwrap();
        assert_eq!(
            shown[0]["sharedsecretfile"],
            "/etc/ballast/cloudstack.secret"
        );
        assert!(shown[0].get("sharedsecretenv").is_none(), "{shown:?}");

        // The API key's three forms replace each other the same way.
        let change = json!({"name": "cloud", "apikeyenv": "CLOUDSTACK_KEY"});
        AUTOSCALEPROFILE.update(&mut file, change).unwrap();
        assert_eq!(file.autoscaleprofile[0].apikey, None);
        let shown = AUTOSCALEPROFILE.get(&file, Some("cloud")).unwrap();
        assert_eq!(shown[0]["apikeyenv"], "CLOUDSTACK_KEY");
        assert!(shown[0].get("apikey").is_none(), "{shown:?}");
    }

    #[test]
    fn a_load_monitor_never_shows_its_community_or_passphrases() {
        let mut file = FileConfig::default();
        let v3 = json!({"monitorname": "v3", "type": "LOAD", "snmpversion": "V3",
                        "snmpv3user": "ballast", "snmpauthprotocol": "SHA-256",
                        "snmpauthpassword": "auth-pass-do-not-show", "snmpprivprotocol": "AES",
                        "snmpprivpassword": "priv-pass-do-not-show"});
        let v2 = json!({"monitorname": "v2", "type": "LOAD",
                        "snmpcommunity": "community-do-not-show"});
        LBMONITOR.add(&mut file, v3).unwrap();
        LBMONITOR.add(&mut file, v2).unwrap();
        for shown in [
            LBMONITOR.get(&file, None).unwrap(),
            LBMONITOR.get(&file, Some("v3")).unwrap(),
            LBMONITOR.get(&file, Some("v2")).unwrap(),
        ] {
            let text = Value::Array(shown).to_string();
            for secret in ["auth-pass", "priv-pass", "community-do"] {
                assert!(!text.contains(secret), "{text}");
            }
        }
        let shown = LBMONITOR.get(&file, Some("v3")).unwrap();
        assert_eq!(shown[0]["snmpv3user"], "ballast");
        assert_eq!(shown[0]["snmpauthprotocol"], "SHA-256");

        // An update keeps the stored passphrases; naming a file replaces the inline one.
        let change = json!({"monitorname": "v3", "interval": "2s",
                            "snmpprivpasswordfile": "/etc/ballast/snmp-priv.secret"});
        LBMONITOR.update(&mut file, change).unwrap();
        let monitor = &file.lbmonitor[0];
        assert_eq!(
            monitor.snmpauthpassword.as_ref().map(|s| s.expose()),
            Some("auth-pass-do-not-show")
        );
        assert_eq!(monitor.snmpprivpassword, None);
        let shown = LBMONITOR.get(&file, Some("v3")).unwrap();
        assert_eq!(
            shown[0]["snmpprivpasswordfile"],
            "/etc/ballast/snmp-priv.secret"
        );
    }

    #[test]
    fn a_group_takes_and_shows_observe_and_deploytimeout() {
        let mut file = FileConfig::default();
        let group = json!({"name": "scale", "vserver": "web", "servicegroupname": "app",
                           "profilename": "cloud", "minmembers": 1, "maxmembers": 4,
                           "observe": true, "deploytimeout": "5m",
                           "metrics": [{"name": "cpu", "source": "snmp", "upper": 70, "lower": 20}]});
        AUTOSCALEGROUP.add(&mut file, group).unwrap();
        let shown = AUTOSCALEGROUP.get(&file, Some("scale")).unwrap();
        assert_eq!(shown[0]["observe"], true);
        assert_eq!(shown[0]["deploytimeout"], "5m");
        let change = json!({"name": "scale", "observe": null});
        AUTOSCALEGROUP.update(&mut file, change).unwrap();
        assert_eq!(file.autoscalegroup[0].observe, None);
    }
}
