//! The console's JSON API: each handler runs Redis commands in a console session
//! (ConsoleThroughCommands) and shapes their replies as JSON (InertOutput: bytes as strings,
//! flagged `binary` when not UTF-8, long values cut: `json.rs`); the live event stream is
//! `events.rs`.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Extension;
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

use super::auth::{error, ConsoleUser};
use super::conn::Conn;
use super::json::{flat_pairs, int, text, to_json};
use super::Console;
use crate::protocol::Frame;
use crate::raft::status::Role;

/// The most keys one namespace listing scans.
const MAX_LISTED_KEYS: usize = 10_000;
/// The most history entries one key page shows (the newest).
const MAX_HISTORY_SHOWN: usize = 200;

type C = State<Arc<Console>>;
type U = Extension<ConsoleUser>;

fn role_name(r: Role) -> &'static str {
    match r {
        Role::Leader => "leader",
        Role::Follower => "follower",
        Role::Candidate => "candidate",
        Role::Learner => "learner",
        Role::Shutdown => "shutdown",
    }
}

/// `GET /api/overview`: this node's view of the cluster.
pub async fn overview(State(c): C, Extension(u): U) -> Response {
    let st = c.ctx.node.status();
    let mut conn = Conn::new(&c, &u.0);
    let (mut revision, mut compact) = (Value::Null, Value::Null);
    if let Frame::Map(pairs) = conn.call(&c, &[b"REVISION"]).await {
        for (k, v) in &pairs {
            match text(k).as_str() {
                "revision" => revision = json!(int(v)),
                "compact_revision" => compact = json!(int(v)),
                _ => {}
            }
        }
    }
    let voters: Vec<u64> = st.membership.voter_ids().collect();
    let applied = st.last_applied.map(|p| p.index);
    let members: Vec<Value> = st
        .membership
        .nodes()
        .map(|(id, n)| {
            let matched = st
                .replication
                .as_ref()
                .and_then(|r| r.get(id).copied().flatten())
                .map(|p| p.index);
            let heartbeat_ms = st
                .heartbeat
                .as_ref()
                .and_then(|h| h.get(id).copied().flatten())
                .map(|d| d.as_millis() as u64);
            json!({
                "id": id,
                "raft_addr": n.raft_addr,
                "redis_addr": n.redis_addr,
                "voter": voters.contains(id),
                "leader": st.current_leader == Some(*id),
                "matched_index": matched,
                "lag": matched.zip(st.last_log_index).map(|(m, l)| l.saturating_sub(m)),
                "heartbeat_ms": heartbeat_ms,
            })
        })
        .collect();
    Json(json!({
        "node_id": st.id,
        "cluster": c.ctx.cluster_name,
        "role": role_name(st.state),
        "term": st.current_term,
        "leader": st.current_leader,
        "last_log_index": st.last_log_index,
        "committed_index": st.local_committed.map(|p| p.index),
        "applied_index": applied,
        "snapshot_index": st.snapshot.map(|p| p.index),
        "revision": revision,
        "compact_revision": compact,
        "members": members,
    }))
    .into_response()
}

#[derive(Deserialize)]
pub struct PrefixQuery {
    #[serde(default)]
    prefix: String,
}

/// Escapes glob characters so `SCAN MATCH` takes `prefix` literally.
fn glob_escape(prefix: &str) -> String {
    let mut out = String::with_capacity(prefix.len() + 1);
    for ch in prefix.chars() {
        if matches!(ch, '*' | '?' | '[' | ']' | '\\') {
            out.push('\\');
        }
        out.push(ch);
    }
    out.push('*');
    out
}

/// The namespaces and keys directly under `prefix`: a key's name after the prefix up to and
/// including its first `/` or `:` is a namespace; a name with neither is a key (so is the
/// prefix itself, when it is a key).
pub fn group(prefix: &str, keys: &[String]) -> (Vec<(String, usize)>, Vec<String>) {
    let mut folders: BTreeMap<String, usize> = BTreeMap::new();
    let mut leaves = Vec::new();
    for k in keys {
        let Some(rest) = k.strip_prefix(prefix) else {
            continue;
        };
        match rest.find(['/', ':']) {
            Some(i) => {
                *folders
                    .entry(format!("{prefix}{}", &rest[..=i]))
                    .or_default() += 1;
            }
            _ => leaves.push(k.clone()),
        }
    }
    leaves.sort();
    (folders.into_iter().collect(), leaves)
}

/// `GET /api/keys?prefix=`: the namespace browser.
pub async fn keys(State(c): C, Extension(u): U, Query(q): Query<PrefixQuery>) -> Response {
    let mut conn = Conn::new(&c, &u.0);
    let pattern = glob_escape(&q.prefix);
    let mut cursor = b"0".to_vec();
    let mut keys = Vec::new();
    let mut truncated = false;
    loop {
        let reply = match conn
            .ok(
                &c,
                &[
                    b"SCAN",
                    &cursor,
                    b"MATCH",
                    pattern.as_bytes(),
                    b"COUNT",
                    b"1000",
                ],
            )
            .await
        {
            Ok(r) => r,
            Err(resp) => return resp,
        };
        let Frame::Array(parts) = reply else { break };
        let [next, Frame::Array(batch)] = parts.as_slice() else {
            break;
        };
        keys.extend(batch.iter().map(text));
        cursor = text(next).into_bytes();
        if cursor == b"0" {
            break;
        }
        if keys.len() >= MAX_LISTED_KEYS {
            truncated = true;
            break;
        }
    }
    let (folders, leaves) = group(&q.prefix, &keys);
    Json(json!({
        "prefix": q.prefix,
        "namespaces": folders.into_iter().map(|(name, count)| json!({"name": name, "keys": count})).collect::<Vec<_>>(),
        "keys": leaves,
        "truncated": truncated,
    }))
    .into_response()
}

#[derive(Deserialize)]
pub struct KeyQuery {
    key: String,
}

/// `GET /api/key?key=`: a key's value and metadata.
pub async fn key(State(c): C, Extension(u): U, Query(q): Query<KeyQuery>) -> Response {
    let mut conn = Conn::new(&c, &u.0);
    let k = q.key.as_bytes();
    let typ = match conn.ok(&c, &[b"TYPE", k]).await {
        Ok(t) => text(&t),
        Err(r) => return r,
    };
    if typ == "none" {
        return error(StatusCode::NOT_FOUND, "no such key");
    }
    let meta = match conn.ok(&c, &[b"GETMETA", k]).await {
        Ok(m) => m,
        Err(r) => return r,
    };
    let mut out = json!({ "key": q.key, "type": typ });
    for (name, v) in flat_pairs(&meta) {
        let name = text(name);
        out[name.as_str()] = match (name.as_str(), v) {
            ("value", Frame::Array(fields)) => Value::Array(
                fields
                    .chunks(2)
                    .filter(|c| c.len() == 2)
                    .map(|c| json!([to_json(&c[0]), to_json(&c[1])]))
                    .collect(),
            ),
            _ => to_json(v),
        };
    }
    Json(out).into_response()
}

/// `GET /api/history?key=`: the newest [`MAX_HISTORY_SHOWN`] versions, oldest first.
pub async fn history(State(c): C, Extension(u): U, Query(q): Query<KeyQuery>) -> Response {
    let mut conn = Conn::new(&c, &u.0);
    let reply = match conn
        .ok(&c, &[b"HISTORY", q.key.as_bytes(), b"WITHAUTHORS"])
        .await
    {
        Ok(r) => r,
        Err(r) => return r,
    };
    let Frame::Array(items) = reply else {
        return Json(json!({ "entries": [], "truncated": false })).into_response();
    };
    let skip = items.len().saturating_sub(MAX_HISTORY_SHOWN);
    let entries: Vec<Value> = items[skip..]
        .iter()
        .filter_map(|e| match e {
            Frame::Array(parts) if parts.len() == 4 => Some(json!({
                "revision": int(&parts[0]),
                "event": text(&parts[1]),
                "value": to_json(&parts[2]),
                "author": match &parts[3] {
                    Frame::Bulk(b) => json!(String::from_utf8_lossy(b)),
                    _ => Value::Null,
                },
            })),
            _ => None,
        })
        .collect();
    Json(json!({ "entries": entries, "truncated": skip > 0 })).into_response()
}

#[derive(Deserialize)]
pub struct AtQuery {
    key: String,
    revision: u64,
}

/// `GET /api/at?key=&revision=`: the value as of a revision (`GETAT`).
pub async fn at(State(c): C, Extension(u): U, Query(q): Query<AtQuery>) -> Response {
    let mut conn = Conn::new(&c, &u.0);
    let rev = q.revision.to_string();
    match conn
        .ok(&c, &[b"GETAT", q.key.as_bytes(), rev.as_bytes()])
        .await
    {
        Ok(v) => Json(json!({ "value": to_json(&v) })).into_response(),
        Err(r) => r,
    }
}

#[derive(Deserialize)]
pub struct SetBody {
    key: String,
    value: String,
}

#[derive(Deserialize)]
pub struct KeyBody {
    key: String,
}

#[derive(Deserialize)]
pub struct RollbackBody {
    key: String,
    revision: u64,
}

/// Runs one change and answers its reply as JSON.
async fn change(c: &Console, u: &ConsoleUser, argv: &[&[u8]]) -> Response {
    let mut conn = Conn::new(c, &u.0);
    match conn.ok(c, argv).await {
        Ok(f) => Json(json!({ "ok": true, "reply": to_json(&f) })).into_response(),
        Err(r) => r,
    }
}

/// `POST /api/set {key, value}`.
pub async fn set(State(c): C, Extension(u): U, Json(b): Json<SetBody>) -> Response {
    if b.key.is_empty() {
        return error(StatusCode::BAD_REQUEST, "key must not be empty");
    }
    change(&c, &u, &[b"SET", b.key.as_bytes(), b.value.as_bytes()]).await
}

/// `POST /api/del {key}`.
pub async fn del(State(c): C, Extension(u): U, Json(b): Json<KeyBody>) -> Response {
    change(&c, &u, &[b"DEL", b.key.as_bytes()]).await
}

/// `POST /api/rollback {key, revision}`.
pub async fn rollback(State(c): C, Extension(u): U, Json(b): Json<RollbackBody>) -> Response {
    let rev = b.revision.to_string();
    change(&c, &u, &[b"ROLLBACK", b.key.as_bytes(), rev.as_bytes()]).await
}

/// `GET /api/schemas`.
pub async fn schemas(State(c): C, Extension(u): U) -> Response {
    let mut conn = Conn::new(&c, &u.0);
    match conn.ok(&c, &[b"SCHEMA", b"LIST"]).await {
        Ok(f) => Json(json!({
            "schemas": flat_pairs(&f)
                .into_iter()
                .map(|(p, s)| json!({ "prefix": text(p), "schema": text(s) }))
                .collect::<Vec<_>>()
        }))
        .into_response(),
        Err(r) => r,
    }
}

#[derive(Deserialize)]
pub struct SchemaBody {
    prefix: String,
    #[serde(default)]
    schema: String,
}

/// `POST /api/schema/set {prefix, schema}`.
pub async fn schema_set(State(c): C, Extension(u): U, Json(b): Json<SchemaBody>) -> Response {
    change(
        &c,
        &u,
        &[b"SCHEMA", b"SET", b.prefix.as_bytes(), b.schema.as_bytes()],
    )
    .await
}

/// `POST /api/schema/del {prefix}`.
pub async fn schema_del(State(c): C, Extension(u): U, Json(b): Json<SchemaBody>) -> Response {
    change(&c, &u, &[b"SCHEMA", b"DEL", b.prefix.as_bytes()]).await
}

/// `GET /api/gray`: every staged candidate.
pub async fn gray(State(c): C, Extension(u): U) -> Response {
    let mut conn = Conn::new(&c, &u.0);
    match conn.ok(&c, &[b"GRAY", b"LIST"]).await {
        Ok(Frame::Array(items)) => Json(json!({
            "staged": items
                .iter()
                .filter_map(|i| match i {
                    Frame::Array(p) if p.len() == 3 => Some(json!({
                        "label": text(&p[0]),
                        "key": text(&p[1]),
                        "value": to_json(&p[2]),
                    })),
                    _ => None,
                })
                .collect::<Vec<_>>()
        }))
        .into_response(),
        Ok(_) => Json(json!({ "staged": [] })).into_response(),
        Err(r) => r,
    }
}

#[derive(Deserialize)]
pub struct GrayBody {
    label: String,
    key: String,
    #[serde(default)]
    value: String,
}

/// `POST /api/gray/stage {label, key, value}`.
pub async fn gray_stage(State(c): C, Extension(u): U, Json(b): Json<GrayBody>) -> Response {
    change(
        &c,
        &u,
        &[
            b"GRAY",
            b"STAGE",
            b.label.as_bytes(),
            b.key.as_bytes(),
            b.value.as_bytes(),
        ],
    )
    .await
}

/// `POST /api/gray/promote {label, key}`.
pub async fn gray_promote(State(c): C, Extension(u): U, Json(b): Json<GrayBody>) -> Response {
    change(
        &c,
        &u,
        &[b"GRAY", b"PROMOTE", b.label.as_bytes(), b.key.as_bytes()],
    )
    .await
}

/// `POST /api/gray/abort {label, key}`.
pub async fn gray_abort(State(c): C, Extension(u): U, Json(b): Json<GrayBody>) -> Response {
    change(
        &c,
        &u,
        &[b"GRAY", b"ABORT", b.label.as_bytes(), b.key.as_bytes()],
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn namespaces_are_cut_at_the_first_separator() {
        let keys: Vec<String> = [
            "app/db/url",
            "app/db/pool",
            "app/name",
            "app:x:1",
            "app/",
            "other",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let (folders, leaves) = group("", &keys);
        assert_eq!(
            folders,
            vec![("app/".to_string(), 4), ("app:".to_string(), 1)]
        );
        assert_eq!(leaves, vec!["other".to_string()]);
        let (folders, leaves) = group("app/", &keys);
        assert_eq!(folders, vec![("app/db/".to_string(), 2)]);
        assert_eq!(leaves, vec!["app/".to_string(), "app/name".to_string()]);
    }

    #[test]
    fn globs_in_a_prefix_are_literal() {
        assert_eq!(glob_escape("a*b?[c]\\"), "a\\*b\\?\\[c\\]\\\\*");
        assert!(crate::glob::matches(glob_escape("a*").as_bytes(), b"a*x"));
        assert!(!crate::glob::matches(glob_escape("a*").as_bytes(), b"ax"));
    }
}
