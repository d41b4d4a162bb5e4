//! Content rules: one JSON Schema per entity (`ferry-server --schemas DIR`).
//!
//! A mutation is checked against its entity's schema on the record it would
//! produce (a patch merged onto the current record), so a patch cannot
//! break a rule a full write would have to keep. A record that breaks one
//! is rejected with code `validation` and a message naming the field and
//! the rule, which the client shows the user to correct. Entities without a
//! schema take any object. Schemas are local files only: a `$ref` to the
//! network is never fetched.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use ferry_protocol::validate_entity;
use serde_json::Value;

/// At most this many broken rules are named in one rejection: enough to fix
/// a form in one go, short enough to read.
const MAX_NAMED: usize = 3;

/// Why the schemas could not be loaded; the server does not start.
#[derive(Debug, thiserror::Error)]
pub enum SchemaError {
    #[error("cannot read the schema directory {dir}: {source}")]
    ReadDir { dir: PathBuf, source: std::io::Error },
    #[error("cannot read the schema file {file}: {source}")]
    ReadFile { file: PathBuf, source: std::io::Error },
    #[error("{file} is not JSON: {message}")]
    NotJson { file: PathBuf, message: String },
    #[error("{file}: the file name must be an entity name followed by .json ({message})")]
    BadName { file: PathBuf, message: String },
    #[error("{origin} is not a valid JSON Schema: {message}")]
    Invalid { origin: String, message: String },
    #[error("the schema directory {dir} holds no *.json files: give one file per entity, e.g. expense.json")]
    Empty { dir: PathBuf },
}

/// Compiled schemas by entity.
#[derive(Default)]
pub struct Schemas {
    by_entity: BTreeMap<String, jsonschema::Validator>,
}

impl fmt::Debug for Schemas {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Schemas").field("entities", &self.entities().collect::<Vec<_>>()).finish()
    }
}

impl Schemas {
    /// No rules: every entity takes any object.
    pub fn none() -> Self {
        Self::default()
    }

    /// Every `ENTITY.json` in `dir`; other files are left alone.
    pub fn load_dir(dir: &Path) -> Result<Self, SchemaError> {
        let read_dir = |source| SchemaError::ReadDir { dir: dir.to_path_buf(), source };
        let mut files = Vec::new();
        for entry in std::fs::read_dir(dir).map_err(read_dir)? {
            let path = entry.map_err(read_dir)?.path();
            if path.extension().is_some_and(|e| e == "json") {
                files.push(path);
            }
        }
        if files.is_empty() {
            return Err(SchemaError::Empty { dir: dir.to_path_buf() });
        }
        files.sort();
        let mut schemas = Self::default();
        for file in files {
            let entity = file.file_stem().and_then(|s| s.to_str()).unwrap_or_default().to_owned();
            validate_entity(&entity).map_err(|message| SchemaError::BadName { file: file.clone(), message })?;
            let text = std::fs::read_to_string(&file)
                .map_err(|source| SchemaError::ReadFile { file: file.clone(), source })?;
            let schema: Value = serde_json::from_str(&text)
                .map_err(|e| SchemaError::NotJson { file: file.clone(), message: e.to_string() })?;
            schemas.add(&entity, &schema, &file.display().to_string())?;
        }
        Ok(schemas)
    }

    /// Adds (or replaces) the schema of `entity`; `origin` names it in errors.
    pub fn add(&mut self, entity: &str, schema: &Value, origin: &str) -> Result<(), SchemaError> {
        let validator = jsonschema::validator_for(schema)
            .map_err(|e| SchemaError::Invalid { origin: origin.to_owned(), message: e.to_string() })?;
        self.by_entity.insert(entity.to_owned(), validator);
        Ok(())
    }

    /// Entities that have a schema, in name order.
    pub fn entities(&self) -> impl Iterator<Item = &str> {
        self.by_entity.keys().map(String::as_str)
    }

    pub fn is_empty(&self) -> bool {
        self.by_entity.is_empty()
    }

    /// Whether `entity` has rules at all.
    pub fn has(&self, entity: &str) -> bool {
        self.by_entity.contains_key(entity)
    }

    /// Checks a record (its data, a JSON object) against its entity's
    /// schema. The error names each broken rule's field and the rule, e.g.
    /// `amount: -5 is less than the minimum of 0 (rule: minimum)`.
    pub fn check(&self, entity: &str, record: &Value) -> Result<(), String> {
        let Some(validator) = self.by_entity.get(entity) else {
            return Ok(());
        };
        let mut broken = Vec::new();
        let mut more = 0usize;
        for error in validator.iter_errors(record) {
            if broken.len() == MAX_NAMED {
                more += 1;
                continue;
            }
            broken.push(describe(&error));
        }
        if broken.is_empty() {
            return Ok(());
        }
        let mut message = broken.join("; ");
        if more > 0 {
            message.push_str(&format!("; and {more} more"));
        }
        Err(message)
    }
}

/// `field: what is wrong (rule: keyword)`; the record itself when the rule
/// is about the whole object (a missing required field names itself).
fn describe(error: &jsonschema::ValidationError<'_>) -> String {
    let path = error.instance_path().to_string();
    let field = path.trim_start_matches('/').replace('/', ".");
    let rule = error.schema_path().to_string();
    let rule = rule.rsplit('/').next().unwrap_or_default();
    let what = if field.is_empty() { "the record".to_owned() } else { field };
    if rule.is_empty() {
        format!("{what}: {error}")
    } else {
        format!("{what}: {error} (rule: {rule})")
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{json, Map};

    use super::*;

    fn expense_rules() -> Schemas {
        let mut s = Schemas::none();
        let schema = json!({
            "type": "object",
            "required": ["amount", "description"],
            "properties": {
                "amount": {"type": "number", "exclusiveMinimum": 0},
                "description": {"type": "string", "minLength": 3},
                "currency": {"enum": ["NOK", "EUR"]}
            }
        });
        s.add("expense", &schema, "test").unwrap();
        s
    }

    fn obj(v: Value) -> Value {
        assert!(v.is_object());
        v
    }

    #[test]
    fn a_record_that_keeps_the_rules_passes_and_other_entities_are_free() {
        let s = expense_rules();
        assert_eq!(
            s.check("expense", &obj(json!({"amount": 120.5, "description": "Taxi", "currency": "NOK"}))),
            Ok(())
        );
        assert_eq!(s.check("activity", &obj(json!({"anything": [1, 2]}))), Ok(()));
        assert!(s.has("expense") && !s.has("activity"));
    }

    #[test]
    fn a_broken_rule_names_the_field_and_the_rule() {
        let s = expense_rules();
        let err = s.check("expense", &obj(json!({"amount": -40, "description": "Taxi"}))).unwrap_err();
        assert!(err.starts_with("amount: "), "{err}");
        assert!(err.contains("(rule: exclusiveMinimum)"), "{err}");

        let err = s.check("expense", &obj(json!({"description": "Taxi"}))).unwrap_err();
        assert!(
            err.contains("the record: ") && err.contains("\"amount\"") && err.contains("(rule: required)"),
            "{err}"
        );

        let err = s.check("expense", &obj(json!({"amount": 5, "description": "Taxi", "currency": "SEK"}))).unwrap_err();
        assert!(err.starts_with("currency: ") && err.contains("(rule: enum)"), "{err}");
    }

    #[test]
    fn many_broken_rules_are_summed_up() {
        let mut s = Schemas::none();
        let props: Map<String, Value> = (0..6).map(|i| (format!("f{i}"), json!({"type": "string"}))).collect();
        s.add("t", &json!({"properties": props}), "test").unwrap();
        let data: Map<String, Value> = (0..6).map(|i| (format!("f{i}"), json!(i))).collect();
        let err = s.check("t", &Value::Object(data)).unwrap_err();
        assert_eq!(err.matches("(rule: type)").count(), MAX_NAMED, "{err}");
        assert!(err.ends_with("; and 3 more"), "{err}");
    }

    #[test]
    fn loading_a_directory_names_what_is_wrong() {
        let dir = tempfile::tempdir().unwrap();
        assert!(matches!(Schemas::load_dir(dir.path()), Err(SchemaError::Empty { .. })));
        assert!(matches!(Schemas::load_dir(&dir.path().join("missing")), Err(SchemaError::ReadDir { .. })));

        std::fs::write(dir.path().join("README.txt"), "not a schema").unwrap();
        std::fs::write(dir.path().join("expense.json"), r#"{"required": ["amount"]}"#).unwrap();
        let s = Schemas::load_dir(dir.path()).unwrap();
        assert_eq!(s.entities().collect::<Vec<_>>(), ["expense"]);

        std::fs::write(dir.path().join("contact.json"), "{ nope").unwrap();
        let err = Schemas::load_dir(dir.path()).unwrap_err();
        assert!(matches!(err, SchemaError::NotJson { .. }) && err.to_string().contains("contact.json"), "{err}");

        std::fs::write(dir.path().join("contact.json"), r#"{"type": "no-such-type"}"#).unwrap();
        let err = Schemas::load_dir(dir.path()).unwrap_err();
        assert!(matches!(err, SchemaError::Invalid { .. }), "{err}");

        std::fs::remove_file(dir.path().join("contact.json")).unwrap();
        std::fs::write(dir.path().join("bad name!.json"), "{}").unwrap();
        assert!(matches!(Schemas::load_dir(dir.path()), Err(SchemaError::BadName { .. })));
    }
}
