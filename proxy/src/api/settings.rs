//! Sections of the config that exist once (`accesslog`), as NITRO resources without a key:
//! GET shows the section with its defaults filled in, PUT changes the fields it names (`null`
//! resets one), DELETE removes the section.

use serde_json::{Map, Value, json};

use super::resources::{merge, parse};
use crate::config::accesslog::{AccessLogFile, DEFAULT_BUFFER_LINES};
use crate::config::file::FileConfig;
use crate::writer::EditError;

/// The singleton resources, by their NITRO names.
pub const NAMES: [&str; 1] = ["accesslog"];

/// `accesslog` as the API shows it: what the file says, and the default for what it leaves out.
pub fn get(file: &FileConfig) -> Value {
    let section = file.accesslog.clone().unwrap_or_default();
    json!({
        "enabled": file.accesslog.is_some() && section.enabled.unwrap_or(true),
        "path": section.path,
        "format": section.format.as_deref().unwrap_or("text"),
        "bufferlines": section.bufferlines.unwrap_or(DEFAULT_BUFFER_LINES as i64),
    })
}

/// Changes the fields `changes` names, adding the section if the file has none.
pub fn update(file: &mut FileConfig, changes: Value) -> Result<(), EditError> {
    let Value::Object(changes) = changes else {
        return Err(EditError::Rejected(
            "accesslog: expected an object".to_owned(),
        ));
    };
    let current = file.accesslog.clone().unwrap_or_default();
    let mut fields = match serde_json::to_value(&current) {
        Ok(Value::Object(fields)) => fields,
        _ => Map::new(),
    };
    merge(&mut fields, &changes);
    let section: AccessLogFile = parse("accesslog", Value::Object(fields))?;
    file.accesslog = Some(section);
    Ok(())
}

/// Removes the section: no access log.
pub fn delete(file: &mut FileConfig) {
    file.accesslog = None;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shows_defaults_and_merges_changes() {
        let mut file = FileConfig::default();
        assert_eq!(get(&file)["enabled"], false);
        assert_eq!(get(&file)["bufferlines"], 8192);

        update(&mut file, json!({"path": "access.log", "format": "json"})).unwrap();
        let shown = get(&file);
        assert_eq!(shown["enabled"], true);
        assert_eq!(shown["path"], "access.log");
        assert_eq!(shown["format"], "json");

        update(&mut file, json!({"format": null, "enabled": false})).unwrap();
        assert_eq!(get(&file)["format"], "text");
        assert_eq!(get(&file)["enabled"], false);
        assert_eq!(get(&file)["path"], "access.log");

        let error = update(&mut file, json!({"bufferlines": "many"})).unwrap_err();
        assert!(
            error.to_string().starts_with("accesslog.bufferlines"),
            "{error}"
        );
        let error = update(&mut file, json!({"colour": "red"})).unwrap_err();
        assert!(error.to_string().contains("colour"), "{error}");

        delete(&mut file);
        assert!(file.accesslog.is_none());
    }
}
