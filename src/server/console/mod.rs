//! The web console, served by every node on its HTTP port (`metrics_addr`): a cluster
//! overview, a namespace browser, each key's value, metadata, history and a diff between any
//! two revisions, edit/create/delete, rollback, schemas and gray releases, with changes pushed
//! live from the watch stream (server-sent events).
//!
//! Owns the console's routes, its API (`api.rs`), its logins and CSRF checks (`auth.rs`) and
//! its page (`assets/`: HTML, CSS and JS embedded in the binary, no CDN, so it works on an
//! air-gapped network).
//!
//! **ConsoleThroughCommands.** The API reads and writes only by running Redis commands in a
//! session of its own, as a client would (`commands::Batch`): its writes take the same path as
//! every write (forwarded to the leader, one revision each, checked against schemas at apply),
//! its reads the same read gate (linearizable). It adds no way to change the store.
//!
//! **InertOutput.** Keys and values are arbitrary bytes: the API sends them as JSON strings
//! (invalid UTF-8 replaced, flagged `binary`), and the page only ever puts them into text
//! nodes (`textContent`), never HTML; the pages are served with a Content-Security-Policy
//! that allows no inline script.

mod api;
pub mod auth;
mod conn;
mod events;
mod json;

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::Request;
use axum::http::header;
use axum::middleware::Next;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::Router;
use futures::StreamExt;

use crate::context::ServerContext;

/// Largest request body the console takes (a value to write, a schema): larger ones get 413.
pub const MAX_BODY: usize = 16 * 1024 * 1024;

/// How long a request body may take to arrive after its head (BodyDeadline): a client that
/// trickles a body is answered `400` and its connection closed, not served forever.
pub const BODY_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Debug, thiserror::Error)]
#[error("request body not received within {} s", BODY_TIMEOUT.as_secs())]
struct BodyTimedOut;

/// BodyDeadline: the request's body ends in an error once [`BODY_TIMEOUT`] has passed.
async fn body_deadline(request: Request, next: Next) -> axum::response::Response {
    // A body announced over the limit is refused before it is waited for.
    let announced = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if announced.is_some_and(|n| n > MAX_BODY as u64) {
        return (
            axum::http::StatusCode::PAYLOAD_TOO_LARGE,
            [(header::CONNECTION, "close")],
            format!("request body over {MAX_BODY} bytes\n"),
        )
            .into_response();
    }
    let deadline = tokio::time::Instant::now() + BODY_TIMEOUT;
    let (parts, body) = request.into_parts();
    let chunks = futures::stream::unfold(Some(body.into_data_stream()), move |s| async move {
        let mut s = s?;
        match tokio::time::timeout_at(deadline, s.next()).await {
            Ok(Some(chunk)) => Some((chunk, Some(s))),
            Ok(None) => None,
            Err(_) => Some((Err(axum::Error::new(BodyTimedOut)), None)),
        }
    });
    next.run(Request::from_parts(parts, Body::from_stream(chunks)))
        .await
}

/// What every console request shares.
pub struct Console {
    ctx: Arc<ServerContext>,
    logins: auth::Logins,
    /// Served over HTTPS (the cookie is then `Secure`).
    https: bool,
}

const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                   connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

fn asset(content_type: &'static str, body: &'static str) -> axum::response::Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CONTENT_SECURITY_POLICY, CSP),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        body,
    )
        .into_response()
}

/// The console's routes: the page and its assets (no login: they hold no data), the login
/// routes, and the API behind the login (ConsoleLogin, CsrfOnEveryChange).
pub fn router(ctx: Arc<ServerContext>, https: bool) -> Router {
    let console = Arc::new(Console {
        ctx,
        logins: auth::Logins::default(),
        https,
    });
    let api = Router::new()
        .route("/api/overview", get(api::overview))
        .route("/api/keys", get(api::keys))
        .route("/api/key", get(api::key))
        .route("/api/history", get(api::history))
        .route("/api/at", get(api::at))
        .route("/api/set", post(api::set))
        .route("/api/del", post(api::del))
        .route("/api/rollback", post(api::rollback))
        .route("/api/schemas", get(api::schemas))
        .route("/api/schema/set", post(api::schema_set))
        .route("/api/schema/del", post(api::schema_del))
        .route("/api/gray", get(api::gray))
        .route("/api/gray/stage", post(api::gray_stage))
        .route("/api/gray/promote", post(api::gray_promote))
        .route("/api/gray/abort", post(api::gray_abort))
        .route("/api/events", get(events::events))
        .route_layer(axum::middleware::from_fn_with_state(
            console.clone(),
            auth::require_login,
        ));
    Router::new()
        .route(
            "/",
            get(|| async {
                asset(
                    "text/html; charset=utf-8",
                    include_str!("assets/index.html"),
                )
            }),
        )
        .route(
            "/console.js",
            get(|| async {
                asset(
                    "text/javascript; charset=utf-8",
                    include_str!("assets/console.js"),
                )
            }),
        )
        .route(
            "/console.css",
            get(|| async {
                asset(
                    "text/css; charset=utf-8",
                    include_str!("assets/console.css"),
                )
            }),
        )
        .route("/api/login", post(auth::login))
        .route("/api/logout", post(auth::logout))
        .route("/api/session", get(auth::session))
        .merge(api)
        .layer(axum::extract::DefaultBodyLimit::max(MAX_BODY))
        .layer(axum::middleware::from_fn(body_deadline))
        .with_state(console)
}
