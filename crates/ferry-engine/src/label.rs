//! A record's human label: what the queue, the conflicts and the history
//! show instead of a bare record id ("Visit to the Hansens", not "a1b2…").
//!
//! The rule (shared with the window, docs/cli.md): the entity's title field
//! when one is set (`Engine::set_title_field`), else the first of `title`,
//! `name`, `description`; a string is used as it is (if not empty), a
//! number as its JSON text, anything else falls through to the next field;
//! when nothing fits, the record id. At most [`MAX_CHARS`] characters.

use serde_json::Value;

use crate::model::Fields;

/// Fields tried, in order, when the entity has no title field set.
pub const DEFAULT_TITLE_FIELDS: [&str; 3] = ["title", "name", "description"];

/// Longest label, in characters (longer ones end in "…").
pub const MAX_CHARS: usize = 80;

/// The label of record `record_id` whose data is `data` (the current local
/// data, or for a record gone here the last data the engine has of it),
/// with `title_field` the one set for its entity.
pub fn label(record_id: &str, title_field: Option<&str>, data: Option<&Fields>) -> String {
    let found = data.and_then(|data| {
        title_field.into_iter().chain(DEFAULT_TITLE_FIELDS).find_map(|field| text_of(data.get(field)?))
    });
    cut(found.unwrap_or_else(|| record_id.to_owned()))
}

/// Why `field` cannot be a title field, or `Ok`: a record field's name,
/// 1-128 bytes without control characters.
pub fn validate_field(field: &str) -> Result<(), String> {
    if field.is_empty() || field.len() > MAX_FIELD_LEN {
        return Err(format!("a title field name must be 1-{MAX_FIELD_LEN} bytes, got {}", field.len()));
    }
    if field.chars().any(char::is_control) {
        return Err(format!("title field {field:?} contains a control character"));
    }
    Ok(())
}

const MAX_FIELD_LEN: usize = 128;

/// A field's value as label text, if it can be one.
fn text_of(v: &Value) -> Option<String> {
    match v {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn cut(text: String) -> String {
    if text.chars().count() <= MAX_CHARS {
        return text;
    }
    let mut out: String = text.chars().take(MAX_CHARS - 1).collect();
    out.push('…');
    out
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn fields(v: Value) -> Fields {
        v.as_object().cloned().unwrap()
    }

    #[test]
    fn the_set_field_wins_then_title_name_description_then_the_id() {
        let d = fields(json!({"title": "Visit", "name": "Hansen", "description": "d", "ref": "R-7"}));
        assert_eq!(label("a1", Some("ref"), Some(&d)), "R-7");
        assert_eq!(label("a1", None, Some(&d)), "Visit");
        let d = fields(json!({"name": "Hansen", "description": "d"}));
        assert_eq!(label("a1", None, Some(&d)), "Hansen");
        let d = fields(json!({"description": "Thursday"}));
        assert_eq!(label("a1", None, Some(&d)), "Thursday");
        assert_eq!(label("a1", None, Some(&fields(json!({"other": "x"})))), "a1");
        assert_eq!(label("a1", Some("title"), None), "a1");
    }

    #[test]
    fn numbers_are_their_json_text_and_other_values_fall_through() {
        assert_eq!(label("a1", Some("no"), Some(&fields(json!({"no": 42, "title": "t"})))), "42");
        assert_eq!(label("a1", Some("no"), Some(&fields(json!({"no": 1.5})))), "1.5");
        // A set field that is empty, null, a boolean, an array or an object
        // gives way to the default fields, then to the id.
        for v in [json!(""), json!(null), json!(true), json!([1]), json!({"a": 1})] {
            assert_eq!(label("a1", Some("f"), Some(&fields(json!({"f": v.clone(), "name": "N"})))), "N", "{v}");
            assert_eq!(label("a1", None, Some(&fields(json!({"title": v.clone()})))), "a1", "{v}");
        }
        // A missing set field too.
        assert_eq!(label("a1", Some("gone"), Some(&fields(json!({"title": "T"})))), "T");
    }

    #[test]
    fn field_names_are_checked() {
        assert!(validate_field("title").is_ok());
        assert!(validate_field("Navn på aktivitet").is_ok());
        assert!(validate_field("").is_err());
        assert!(validate_field("a\nb").is_err());
        assert!(validate_field(&"x".repeat(129)).is_err());
    }

    #[test]
    fn strings_are_kept_as_they_are_up_to_80_characters() {
        assert_eq!(label("a1", None, Some(&fields(json!({"title": "  spaced  "})))), "  spaced  ");
        let exactly = "å".repeat(80);
        assert_eq!(label("a1", None, Some(&fields(json!({"title": exactly.clone()})))), exactly);
        let long = label("a1", None, Some(&fields(json!({"title": "ø".repeat(200)}))));
        assert_eq!(long.chars().count(), 80);
        assert!(long.ends_with("ø…"), "{long}");
        let long_id = "x".repeat(100);
        assert_eq!(label(&long_id, None, None).chars().count(), 80);
    }
}
