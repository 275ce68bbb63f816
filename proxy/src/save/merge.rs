//! Saving onto the file that is there: the running config, serialized afresh, is laid onto the
//! document parsed from the existing file with `toml_edit`. Whatever did not change keeps its
//! text (comments, blank lines, key order, quoting, inline or expanded tables); a changed value
//! keeps the comments around it; what is new is written in the default layout; what is gone is
//! removed.
//!
//! `[[section]]` elements are matched by their name (`name`, `servicegroupname`,
//! `monitorname` ...), so deleting one element does not shift the comments of the others.

use toml_edit::{Array, ArrayOfTables, DocumentMut, InlineTable, Item, Table, Value};

/// The keys that name an element of an array of tables.
const NAME_KEYS: [&str; 6] = [
    "name",
    "policyname",
    "servicegroupname",
    "monitorname",
    "certkey",
    "metrictable",
];

/// Changes `existing` so that it holds what `fresh` holds, keeping its layout where it can.
pub fn onto(existing: &mut DocumentMut, fresh: DocumentMut) {
    table(existing.as_table_mut(), fresh.into_table());
}

fn table(old: &mut Table, new: Table) {
    let gone: Vec<String> = old
        .iter()
        .filter(|(key, _)| !new.contains_key(key))
        .map(|(key, _)| key.to_owned())
        .collect();
    for key in gone {
        old.remove(&key);
    }
    for (key, new_item) in new {
        match old.get_mut(&key) {
            Some(old_item) => item(old_item, new_item),
            None => {
                old.insert(&key, new_item);
            }
        }
    }
}

fn item(old: &mut Item, new: Item) {
    match (old, new) {
        (Item::Table(old), Item::Table(new)) => table(old, new),
        (Item::ArrayOfTables(old), Item::ArrayOfTables(new)) => array_of_tables(old, new),
        (Item::Value(old), Item::Value(new)) => value(old, new),
        // The file writes inline what serializes as tables (`members = [{ ... }]`): keep that.
        (Item::Value(old), Item::ArrayOfTables(new)) => value(old, Value::Array(new.into_array())),
        (Item::Value(old), Item::Table(new)) => {
            value(old, Value::InlineTable(new.into_inline_table()))
        }
        (old, new) => *old = new,
    }
}

fn array_of_tables(old: &mut ArrayOfTables, new: ArrayOfTables) {
    let mut previous: Vec<Table> = std::mem::take(old).into_iter().collect();
    for (index, new_table) in new.into_iter().enumerate() {
        let name = name_of(&new_table);
        let found = match name {
            Some(name) => previous
                .iter()
                .position(|t| name_of(t).as_deref() == Some(name.as_str())),
            None => (index < previous.len()).then_some(index),
        };
        match found {
            Some(at) => {
                let mut kept = previous.remove(at);
                table(&mut kept, new_table);
                old.push(kept);
            }
            None => old.push(new_table),
        }
    }
}

fn name_of(table: &Table) -> Option<String> {
    NAME_KEYS
        .iter()
        .find_map(|key| table.get(key)?.as_str().map(str::to_owned))
}

fn value(old: &mut Value, new: Value) {
    if same(old, &new) {
        return;
    }
    match (old, new) {
        (Value::Array(old), Value::Array(new)) => array(old, new),
        (Value::InlineTable(old), Value::InlineTable(new)) => inline_table(old, new),
        (old, mut new) => {
            *new.decor_mut() = old.decor().clone();
            *old = new;
        }
    }
}

/// Elements that are still there keep their text; new ones take the layout of the last old one
/// (a one-per-line array stays one per line), after the comment that ended the list (which
/// belongs to the element before it, not to the new one).
fn array(old: &mut Array, new: Array) {
    let mut previous: Vec<Value> = old.iter().cloned().collect();
    let layout = previous.last().map(|v| v.decor().clone());
    let trailing = old.trailing().as_str().unwrap_or("").to_owned();
    let mut merged: Vec<Value> = Vec::new();
    let mut after_trailing = None;
    for new_value in new {
        match previous.iter().position(|v| same(v, &new_value)) {
            Some(at) => merged.push(previous.remove(at)),
            None => {
                let mut added = new_value;
                if let Some(decor) = &layout {
                    *added.decor_mut() = decor.clone();
                    let first_after_old = after_trailing.is_none() && !merged.is_empty();
                    if let (true, Some(end)) = (first_after_old, trailing.rfind('\n')) {
                        let prefix = decor.prefix().and_then(|p| p.as_str()).unwrap_or("");
                        let indent = prefix.rsplit('\n').next().unwrap_or("");
                        added
                            .decor_mut()
                            .set_prefix(format!("{}{indent}", &trailing[..=end]));
                        after_trailing = Some(trailing[end..].to_owned());
                    }
                }
                merged.push(added);
            }
        }
    }
    old.clear();
    for value in merged {
        old.push_formatted(value);
    }
    if let Some(trailing) = after_trailing {
        old.set_trailing(trailing);
    }
}

fn inline_table(old: &mut InlineTable, new: InlineTable) {
    let gone: Vec<String> = old
        .iter()
        .filter(|(key, _)| !new.contains_key(key))
        .map(|(key, _)| key.to_owned())
        .collect();
    for key in gone {
        old.remove(&key);
    }
    for (key, new_value) in new {
        match old.get_mut(&key) {
            Some(old_value) => value(old_value, new_value),
            None => {
                old.insert(&key, new_value);
            }
        }
    }
}

/// The same data, however written.
fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::String(a), Value::String(b)) => a.value() == b.value(),
        (Value::Integer(a), Value::Integer(b)) => a.value() == b.value(),
        (Value::Float(a), Value::Float(b)) => a.value().to_bits() == b.value().to_bits(),
        (Value::Boolean(a), Value::Boolean(b)) => a.value() == b.value(),
        (Value::Datetime(a), Value::Datetime(b)) => a.value() == b.value(),
        (Value::Array(a), Value::Array(b)) => {
            a.len() == b.len() && a.iter().zip(b.iter()).all(|(a, b)| same(a, b))
        }
        (Value::InlineTable(a), Value::InlineTable(b)) => {
            a.len() == b.len()
                && a.iter()
                    .all(|(key, a)| b.get(key).is_some_and(|b| same(a, b)))
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn merged(existing: &str, fresh: &str) -> String {
        let mut document: DocumentMut = existing.parse().unwrap();
        onto(&mut document, fresh.parse().unwrap());
        document.to_string()
    }

    #[test]
    fn comments_and_layout_stay_where_nothing_changed() {
        let existing = "# Ballast\n\n[ballast]\nworkers = 2 # two\n\n# the pool\n[[servicegroup]]\nservicegroupname = 'pool'\nmembers = [\n  { ip = \"127.0.0.2\", port = 80 }, # first\n]\n";
        let fresh = "[ballast]\nworkers = 2\n\n[[servicegroup]]\nservicegroupname = \"pool\"\n\n[[servicegroup.members]]\nip = \"127.0.0.2\"\nport = 80\n\n[[servicegroup.members]]\nip = \"127.0.0.3\"\nport = 81\n";
        let text = merged(existing, fresh);
        for kept in [
            "# Ballast",
            "workers = 2 # two",
            "# the pool",
            "'pool'",
            "# first",
        ] {
            assert!(text.contains(kept), "`{kept}` is gone:\n{text}");
        }
        let (first, added) = (
            text.find("# first").unwrap(),
            text.find("127.0.0.3").unwrap(),
        );
        assert!(
            first < added,
            "the old member's comment moved to the new one:\n{text}"
        );
        let parsed: toml::Table = toml::from_str(&text).unwrap();
        let expected: toml::Table = toml::from_str(fresh).unwrap();
        assert_eq!(parsed, expected, "{text}");
    }

    #[test]
    fn a_new_section_is_added_and_the_file_still_reads_as_the_fresh_config() {
        let existing = "# monitors\n[[lbmonitor]]\nmonitorname = \"a\"\ntype = \"TCP\"\n\n# vservers\n[[lbvserver]]\nname = \"web\" # main\nport = 80\n";
        let fresh = "[[lbmonitor]]\nmonitorname = \"a\"\ntype = \"TCP\"\n\n[[lbmonitor]]\nmonitorname = \"b\"\ntype = \"HTTP\"\n\n[[lbvserver]]\nname = \"web\"\nport = 80\n";
        let text = merged(existing, fresh);
        for kept in ["# monitors", "# vservers", "name = \"web\" # main"] {
            assert!(text.contains(kept), "`{kept}` is gone:\n{text}");
        }
        let parsed: toml::Table = toml::from_str(&text).unwrap();
        let expected: toml::Table = toml::from_str(fresh).unwrap();
        assert_eq!(parsed, expected, "{text}");
    }

    #[test]
    fn elements_are_matched_by_name_and_removed_ones_go() {
        let existing = "# a\n[[lbmonitor]]\nmonitorname = \"a\"\ntype = \"TCP\"\n\n# b\n[[lbmonitor]]\nmonitorname = \"b\"\ntype = \"TCP\" # b's type\n";
        let fresh = "[[lbmonitor]]\nmonitorname = \"b\"\ntype = \"HTTP\"\n";
        let text = merged(existing, fresh);
        assert!(!text.contains("\"a\""), "{text}");
        assert!(text.contains("type = \"HTTP\" # b's type"), "{text}");
    }
}
