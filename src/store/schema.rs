//! Schema-checked values: a JSON Schema attached to a key prefix, checked at apply on every
//! write of a key under it.
//!
//! A schema is an ordinary key, `__schema__/<prefix>` ([`SCHEMA_PREFIX`]), whose value is the
//! schema's JSON text (`SCHEMA SET` writes it, `SCHEMA DEL` deletes it): so schemas are cluster
//! state with nothing new to replicate, and have revisions, history (`HISTORY
//! __schema__/<prefix>`), `ROLLBACK`, the watch stream and snapshots like any key.
//!
//! - **SchemaAtApply.** The check runs inside apply, before the write changes anything, on
//!   every node, against the schemas in force at that point of the log: every node accepts or
//!   refuses the same writes (DeterministicApply). A refused write is a [`StoreError::Schema`]
//!   naming the key, the schema's prefix, the value's JSON path and the rule; it changes
//!   nothing. Which violation is named is decided by sorting them (paths, then rules), not by
//!   the validator's iteration order.
//! - **SchemaValid.** A write of a schema key itself must be a valid JSON Schema (no remote
//!   `$ref`: this build cannot fetch one).
//! - A gray release's candidate (`gray.rs`) is checked as the key it stands for.
//! - A key under several prefixes with schemas must satisfy all of them; a schema checks
//!   string values, so a hash under a schema is refused; a schema applies to the writes after
//!   it (the keys already there are not checked). Expiry and `PERSIST`/`EXPIRE` re-write a
//!   value unchanged: not checked. `MSET` checks every pair against the schemas in force
//!   before it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use bytes::Bytes;

use super::{Store, StoreError, Stored};

/// Where schemas live: the schema of prefix `p` is the key `__schema__/p`.
pub const SCHEMA_PREFIX: &[u8] = b"__schema__/";

/// Compiled validators kept per node, by schema text (compiling is the costly part).
const MAX_COMPILED: usize = 256;

fn compiled() -> &'static Mutex<HashMap<Bytes, Arc<jsonschema::Validator>>> {
    static CACHE: OnceLock<Mutex<HashMap<Bytes, Arc<jsonschema::Validator>>>> = OnceLock::new();
    CACHE.get_or_init(Default::default)
}

/// The validator of the schema text `schema`, or why it is not a valid schema.
pub fn compile(schema: &[u8]) -> Result<Arc<jsonschema::Validator>, String> {
    if let Some(v) = compiled()
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .get(schema)
    {
        return Ok(v.clone());
    }
    let json: serde_json::Value =
        serde_json::from_slice(schema).map_err(|e| format!("not JSON: {e}"))?;
    let validator = Arc::new(jsonschema::validator_for(&json).map_err(|e| e.to_string())?);
    let mut cache = compiled().lock().unwrap_or_else(|p| p.into_inner());
    if cache.len() >= MAX_COMPILED {
        cache.clear();
    }
    cache.insert(Bytes::copy_from_slice(schema), validator.clone());
    Ok(validator)
}

/// The first violation of `value` against `validator`, in a fixed order: `(JSON path, rule,
/// message)`, or `None` when the value is valid.
pub fn first_violation(
    validator: &jsonschema::Validator,
    value: &serde_json::Value,
) -> Option<(String, String, String)> {
    let mut all: Vec<(String, String, String)> = validator
        .iter_errors(value)
        .map(|e| {
            let path = e.instance_path().as_str();
            let path = if path.is_empty() { "/" } else { path };
            (
                path.to_string(),
                e.schema_path().as_str().to_string(),
                e.to_string(),
            )
        })
        .collect();
    all.sort();
    all.into_iter().next()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

impl Store {
    /// SchemaAtApply: whether `value` may be written at `key` under the schemas in force.
    pub(super) fn check_schema(&self, key: &Bytes, value: &Stored) -> Result<(), StoreError> {
        if let Some(prefix) = key.strip_prefix(SCHEMA_PREFIX) {
            // SchemaValid.
            let refuse = |why: String| {
                Err(StoreError::Schema(format!(
                    "SCHEMA the schema of '{}' is not a valid JSON Schema: {why}",
                    text(prefix)
                )))
            };
            return match value {
                Stored::String(s) => compile(s).map(|_| ()).or_else(refuse),
                Stored::Hash(_) => refuse("a hash, not a JSON text".into()),
            };
        }
        // A gray candidate is checked as the key it stands for (`gray.rs`).
        let checked = super::gray::gray_parts(key).map_or(&key[..], |(_, k)| k);
        for (prefix, schema) in self.schemas_over(checked) {
            let Stored::String(s) = value else {
                return Err(StoreError::Schema(format!(
                    "SCHEMA '{}' is under the schema of '{}', which checks string values: a \
                     hash cannot be stored there",
                    text(key),
                    text(&prefix)
                )));
            };
            // A schema that no longer compiles (written by a build that accepted it) checks
            // nothing rather than blocking every write under it.
            let Ok(validator) = compile(&schema) else {
                continue;
            };
            let json: serde_json::Value = match serde_json::from_slice(s) {
                Ok(json) => json,
                Err(e) => {
                    return Err(StoreError::Schema(format!(
                        "SCHEMA value of '{}' is not JSON (schema of '{}'): {e}",
                        text(key),
                        text(&prefix)
                    )))
                }
            };
            if let Some((path, rule, message)) = first_violation(&validator, &json) {
                return Err(StoreError::Schema(format!(
                    "SCHEMA value of '{}' does not match the schema of '{}' at {path}: {message} \
                     (rule {rule})",
                    text(key),
                    text(&prefix)
                )));
            }
        }
        Ok(())
    }

    /// The live schemas whose prefix `key` starts with: (prefix, schema text). Every write asks,
    /// so a keyspace without schemas answers with one map descent and no allocation.
    fn schemas_over(&self, key: &[u8]) -> Vec<(Bytes, Bytes)> {
        if !self.keyspace.any_key_with_prefix(SCHEMA_PREFIX) {
            return Vec::new();
        }
        self.live_schemas()
            .into_iter()
            .filter(|(prefix, _)| key.starts_with(prefix))
            .collect()
    }

    /// Every live schema, by prefix: (prefix, schema text).
    pub fn live_schemas(&self) -> Vec<(Bytes, Bytes)> {
        self.keyspace
            .live_with_prefix(SCHEMA_PREFIX)
            .into_iter()
            .map(|kv| (kv.key.slice(SCHEMA_PREFIX.len()..), kv.value))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_util::{b, del, must_apply, put};
    use super::super::{Op, Response};
    use super::*;

    const LIMITS: &str = r#"{"type": "object", "required": ["limit"],
        "properties": {"limit": {"type": "integer", "maximum": 1000}}}"#;

    fn refused(r: &Response) -> String {
        match r {
            Response::Error(StoreError::Schema(text)) => text.clone(),
            other => panic!("not refused by a schema: {other:?}"),
        }
    }

    #[test]
    fn writes_under_a_schema_are_checked_and_a_refused_one_changes_nothing() {
        let mut s = Store::new();
        must_apply(&mut s, put("__schema__/app/pay/", LIMITS));
        must_apply(&mut s, put("app/pay/eu", r#"{"limit": 5}"#));
        let before = s.clone();
        let e = refused(&must_apply(&mut s, put("app/pay/eu", r#"{"limit": 5000}"#)));
        assert_eq!(
            e,
            "SCHEMA value of 'app/pay/eu' does not match the schema of 'app/pay/' at /limit: \
             5000 is greater than the maximum of 1000 (rule /properties/limit/maximum)"
        );
        assert_eq!(s, before, "nothing changed, not even the revision");
        let e = refused(&must_apply(&mut s, put("app/pay/us", "not json")));
        assert!(
            e.starts_with("SCHEMA value of 'app/pay/us' is not JSON"),
            "{e}"
        );
        // Every pair of an MSET is checked before any is written.
        let mset = Op::MSet {
            pairs: vec![(b("other"), b("1")), (b("app/pay/us"), b("{}"))],
            if_none_exist: false,
        };
        let e = refused(&must_apply(&mut s, mset));
        assert!(e.contains("required"), "{e}");
        assert_eq!(s, before);
        // RENAME onto a checked key, a hash under a schema: refused the same way.
        must_apply(&mut s, put("loose", "[1, 2]"));
        let rename = Op::Rename {
            src: b("loose"),
            dst: b("app/pay/jp"),
            if_absent: false,
        };
        refused(&must_apply(&mut s, rename));
        assert!(s.get(b"loose").is_some(), "the source stays");
        let hset = Op::HSet {
            key: b("app/pay/h"),
            pairs: vec![(b("f"), b("v"))],
            if_absent: false,
        };
        assert!(refused(&must_apply(&mut s, hset)).contains("hash"));
        // Keys outside the prefix, and every key once the schema is gone, are free.
        must_apply(&mut s, put("app/other", "anything"));
        must_apply(&mut s, del(&["__schema__/app/pay/"]));
        must_apply(&mut s, put("app/pay/eu", "anything"));
        assert_eq!(s.get(b"app/pay/eu").unwrap().value, b("anything"));
    }

    #[test]
    fn read_modify_writes_are_checked_on_the_value_they_produce() {
        let mut s = Store::new();
        must_apply(
            &mut s,
            put("__schema__/n/", r#"{"type": "integer", "maximum": 10}"#),
        );
        must_apply(&mut s, put("n/a", "9"));
        let incr = |delta| Op::IncrBy {
            key: b("n/a"),
            delta,
        };
        must_apply(&mut s, incr(1));
        assert_eq!(s.get(b"n/a").unwrap().value, b("10"));
        assert!(refused(&must_apply(&mut s, incr(1))).contains("greater than the maximum"));
        let append = Op::Append {
            key: b("n/a"),
            value: b("0"),
        };
        refused(&must_apply(&mut s, append));
        let setrange = Op::SetRange {
            key: b("n/a"),
            offset: 0,
            value: b("x"),
        };
        refused(&must_apply(&mut s, setrange));
        assert_eq!(
            s.get(b"n/a").unwrap().value,
            b("10"),
            "every refusal left it"
        );
    }

    #[test]
    fn a_schema_key_must_hold_a_valid_schema_and_nested_prefixes_all_apply() {
        let mut s = Store::new();
        let e = refused(&must_apply(&mut s, put("__schema__/app/", "{")));
        assert!(
            e.starts_with("SCHEMA the schema of 'app/' is not a valid JSON Schema"),
            "{e}"
        );
        assert!(s.get(b"__schema__/app/").is_none());
        must_apply(&mut s, put("__schema__/app/", r#"{"type": "object"}"#));
        must_apply(&mut s, put("__schema__/app/pay/", LIMITS));
        assert_eq!(s.live_schemas().len(), 2);
        refused(&must_apply(&mut s, put("app/pay/x", "[]")));
        refused(&must_apply(&mut s, put("app/x", "[]")));
        must_apply(&mut s, put("app/x", "{}"));
        refused(&must_apply(&mut s, put("app/pay/x", "{}")));
        must_apply(&mut s, put("app/pay/x", r#"{"limit": 1}"#));
    }

    #[test]
    fn violations_come_in_a_fixed_order() {
        let schema = br#"{"type":"object","properties":{"a":{"type":"integer","maximum":5},
            "b":{"type":"string"}},"required":["a","b","c"]}"#;
        let v = compile(schema).unwrap();
        let value: serde_json::Value = serde_json::from_str(r#"{"a": 9, "b": 1}"#).unwrap();
        let (path, rule, message) = first_violation(&v, &value).unwrap();
        assert_eq!(path, "/");
        assert_eq!(rule, "/required");
        assert!(message.contains("\"c\""), "{message}");
        for _ in 0..20 {
            assert_eq!(
                first_violation(&v, &value).unwrap().0,
                "/",
                "the same violation every time"
            );
        }
        let ok: serde_json::Value =
            serde_json::from_str(r#"{"a": 1, "b": "x", "c": null}"#).unwrap();
        assert_eq!(first_violation(&v, &ok), None);
        assert!(compile(b"{").is_err());
        assert!(compile(br#"{"type": 12}"#).is_err());
        assert!(compile(br#"{"$ref": "https://example.com/s.json"}"#).is_err());
    }
}
