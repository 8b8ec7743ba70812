//! `GET /api/events`: the watch stream as server-sent events, so an open page follows every
//! change under its prefix (the key page, the namespace browser).

use std::collections::VecDeque;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Query, State};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::Extension;
use serde::Deserialize;
use serde_json::{json, Value};

use super::auth::ConsoleUser;
use super::conn::Conn;
use super::json::{flat_pairs, int, text, to_json, value_json};
use super::Console;
use crate::protocol::Frame;

/// How long one watch read of the event stream blocks before it is renewed.
const EVENT_BLOCK_MS: u64 = 10_000;

#[derive(Deserialize)]
pub struct EventsQuery {
    #[serde(default)]
    prefix: String,
}

/// One watch stream entry (`id`, then field/value pairs) as an event's JSON.
fn watch_entry(e: &Frame) -> Option<(String, Value)> {
    let Frame::Array(parts) = e else { return None };
    let [id, Frame::Array(fields)] = parts.as_slice() else {
        return None;
    };
    let id = text(id);
    let mut obj = serde_json::Map::new();
    obj.insert("id".into(), json!(id));
    for pair in fields.chunks(2).filter(|c| c.len() == 2) {
        let name = text(&pair[0]);
        let v = match &pair[1] {
            Frame::Bulk(b) => value_json(&b[..b.len().min(64 * 1024)]),
            other => to_json(other),
        };
        obj.insert(name, v);
    }
    Some((id, Value::Object(obj)))
}

/// The entries of an `XREAD` reply (one stream).
fn xread_entries(reply: &Frame) -> Vec<Frame> {
    let streams: Vec<&Frame> = match reply {
        Frame::Array(s) => s.iter().collect(),
        _ => Vec::new(),
    };
    streams
        .into_iter()
        .filter_map(|s| match s {
            Frame::Array(p) if p.len() == 2 => match &p[1] {
                Frame::Array(entries) => Some(entries.clone()),
                _ => None,
            },
            _ => None,
        })
        .flatten()
        .collect()
}

/// `GET /api/events?prefix=`: server-sent events, one `change` per entry of the watch stream
/// `__watch__:<prefix>` from now on (the page reloads what it shows when one arrives), an
/// `error` event and the end when the stream fails.
pub async fn events(
    State(c): State<Arc<Console>>,
    Extension(u): Extension<ConsoleUser>,
    Query(q): Query<EventsQuery>,
) -> Response {
    let mut conn = Conn::new(&c, &u.0);
    let start = match conn.ok(&c, &[b"REVISION"]).await {
        Ok(f) => flat_pairs(&f)
            .into_iter()
            .find(|(k, _)| text(k) == "revision")
            .and_then(|(_, v)| int(v))
            .unwrap_or(0),
        Err(r) => return r,
    };
    let stream_name = format!("__watch__:{}", q.prefix);
    struct St {
        c: Arc<Console>,
        conn: Conn,
        stream: String,
        last: String,
        queue: VecDeque<Event>,
        done: bool,
    }
    let st = St {
        c: c.clone(),
        conn,
        stream: stream_name,
        last: start.to_string(),
        queue: VecDeque::new(),
        done: false,
    };
    let events = futures::stream::unfold(st, |mut st| async move {
        loop {
            if let Some(ev) = st.queue.pop_front() {
                return Some((Ok::<Event, Infallible>(ev), st));
            }
            if st.done {
                return None;
            }
            let block = EVENT_BLOCK_MS.to_string();
            let reply = st
                .conn
                .call(
                    &st.c,
                    &[
                        b"XREAD",
                        b"COUNT",
                        b"100",
                        b"BLOCK",
                        block.as_bytes(),
                        b"STREAMS",
                        st.stream.as_bytes(),
                        st.last.as_bytes(),
                    ],
                )
                .await;
            match reply {
                Frame::Error(e) => {
                    st.done = true;
                    st.queue.push_back(
                        Event::default()
                            .event("error")
                            .data(json!({ "error": e }).to_string()),
                    );
                }
                Frame::Null | Frame::NullArray => {}
                reply => {
                    for e in xread_entries(&reply) {
                        if let Some((id, v)) = watch_entry(&e) {
                            st.last = id;
                            st.queue
                                .push_back(Event::default().event("change").data(v.to_string()));
                        }
                    }
                }
            }
            if st.queue.is_empty() {
                // A short pause after an empty read or an error, so a failing read cannot spin.
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    });
    Sse::new(events)
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
        .into_response()
}
