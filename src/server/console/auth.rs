//! The console's logins and CSRF checks.
//!
//! **ConsoleLogin.** Every console page's data and every change need a login: `POST
//! /api/login` with the node's `requirepass` (compared in constant time; any password when
//! the node has none, as a Redis client needs none) sets a random session cookie
//! (`HttpOnly`, `SameSite=Strict`, `Secure` over HTTPS, 12 hours). Nothing secret travels in
//! a URL.
//!
//! **CsrfOnEveryChange.** Every `POST` must carry `X-CSRF-Token` equal to its session's token
//! (which only same-origin script can read, from `GET /api/session`), and an `Origin` header,
//! when the browser sends one, naming this host. A cross-site form post has neither.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::json;
use sha2::{Digest, Sha256};

use super::Console;

/// The session cookie's name.
pub const COOKIE: &str = "redraft_console";
/// How long a login lasts.
const LOGIN_TTL: Duration = Duration::from_secs(12 * 3600);
/// The most logins a node keeps; the oldest goes first.
const MAX_LOGINS: usize = 1024;

/// One login: its CSRF token and when it ends.
struct Login {
    csrf: String,
    expires: Instant,
}

/// The logins of one node's console (not replicated: a login is per node).
#[derive(Default)]
pub struct Logins {
    by_token: Mutex<HashMap<String, Login>>,
}

fn random_token() -> String {
    let bytes: [u8; 32] = rand::random();
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl Logins {
    fn create(&self) -> (String, String) {
        let (token, csrf) = (random_token(), random_token());
        let mut map = self.by_token.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        map.retain(|_, l| l.expires > now);
        if map.len() >= MAX_LOGINS {
            if let Some(oldest) = map
                .iter()
                .min_by_key(|(_, l)| l.expires)
                .map(|(t, _)| t.clone())
            {
                map.remove(&oldest);
            }
        }
        map.insert(
            token.clone(),
            Login {
                csrf: csrf.clone(),
                expires: now + LOGIN_TTL,
            },
        );
        (token, csrf)
    }

    /// The CSRF token of the live login `token`.
    fn csrf(&self, token: &str) -> Option<String> {
        let map = self.by_token.lock().unwrap_or_else(|e| e.into_inner());
        map.get(token)
            .filter(|l| l.expires > Instant::now())
            .map(|l| l.csrf.clone())
    }

    fn remove(&self, token: &str) {
        self.by_token
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(token);
    }
}

/// The session token in the request's cookie, if any.
fn cookie_token(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == COOKIE)
        .map(|(_, v)| v.to_string())
}

/// Equal in constant time (over SHA-256 digests, so lengths do not leak either).
fn same_secret(a: &str, b: &str) -> bool {
    let (x, y) = (Sha256::digest(a.as_bytes()), Sha256::digest(b.as_bytes()));
    x.iter()
        .zip(y.iter())
        .fold(0u8, |acc, (p, q)| acc | (p ^ q))
        == 0
}

pub fn error(status: StatusCode, message: &str) -> Response {
    (status, Json(json!({ "error": message }))).into_response()
}

#[derive(Deserialize)]
pub struct LoginForm {
    #[serde(default)]
    password: String,
}

/// `POST /api/login`.
pub async fn login(
    State(c): State<std::sync::Arc<Console>>,
    Json(form): Json<LoginForm>,
) -> Response {
    if let Some(pass) = &c.ctx.requirepass {
        if !same_secret(pass, &form.password) {
            tracing::warn!("console login refused: wrong password");
            return error(StatusCode::UNAUTHORIZED, "wrong password");
        }
    }
    let (token, csrf) = c.logins.create();
    let secure = if c.https { "; Secure" } else { "" };
    let cookie = format!(
        "{COOKIE}={token}; HttpOnly; SameSite=Strict; Path=/; Max-Age={}{secure}",
        LOGIN_TTL.as_secs()
    );
    (
        [(header::SET_COOKIE, cookie)],
        Json(json!({ "logged_in": true, "csrf": csrf })),
    )
        .into_response()
}

/// `POST /api/logout`.
pub async fn logout(State(c): State<std::sync::Arc<Console>>, headers: HeaderMap) -> Response {
    if let Some(t) = cookie_token(&headers) {
        c.logins.remove(&t);
    }
    let cookie = format!("{COOKIE}=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0");
    (
        [(header::SET_COOKIE, cookie)],
        Json(json!({ "logged_in": false })),
    )
        .into_response()
}

/// `GET /api/session`: whether a login is needed and held, and the login's CSRF token.
pub async fn session(State(c): State<std::sync::Arc<Console>>, headers: HeaderMap) -> Response {
    let csrf = cookie_token(&headers).and_then(|t| c.logins.csrf(&t));
    Json(json!({
        "password_required": c.ctx.requirepass.is_some(),
        "logged_in": csrf.is_some(),
        "csrf": csrf,
        "node_id": c.ctx.node.id,
        "cluster": c.ctx.cluster_name,
    }))
    .into_response()
}

/// Whether the request's `Origin` (when present) is this host (CsrfOnEveryChange).
fn same_origin(headers: &HeaderMap) -> bool {
    let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) else {
        return true;
    };
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let bare = origin
        .strip_prefix("http://")
        .or_else(|| origin.strip_prefix("https://"))
        .unwrap_or("");
    !host.is_empty() && bare == host
}

/// Guards the API: a login (ConsoleLogin), and on a `POST` the CSRF token and the origin
/// (CsrfOnEveryChange).
pub async fn require_login(
    State(c): State<std::sync::Arc<Console>>,
    request: Request,
    next: Next,
) -> Response {
    let headers = request.headers();
    let Some(csrf) = cookie_token(headers).and_then(|t| c.logins.csrf(&t)) else {
        return error(StatusCode::UNAUTHORIZED, "login required");
    };
    if request.method() == Method::POST {
        let sent = headers
            .get("x-csrf-token")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        if !same_secret(&csrf, sent) || !same_origin(headers) {
            tracing::warn!(path = %request.uri().path(), "console change refused: CSRF check failed");
            return error(StatusCode::FORBIDDEN, "missing or wrong CSRF token");
        }
    }
    next.run(request).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn logins_are_random_and_end() {
        let l = Logins::default();
        let (t1, c1) = l.create();
        let (t2, _) = l.create();
        assert_ne!(t1, t2);
        assert_eq!(t1.len(), 64);
        assert_eq!(l.csrf(&t1), Some(c1));
        l.remove(&t1);
        assert_eq!(l.csrf(&t1), None);
        assert!(l.csrf(&t2).is_some());
        assert_eq!(l.csrf("forged"), None);
    }

    #[test]
    fn the_cookie_and_origin_are_read_strictly() {
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            "a=1; redraft_console=abc; b=2".parse().unwrap(),
        );
        assert_eq!(cookie_token(&h).as_deref(), Some("abc"));
        h.insert(header::HOST, "127.0.0.1:9101".parse().unwrap());
        assert!(
            same_origin(&h),
            "no Origin: a same-origin fetch may omit it"
        );
        h.insert(header::ORIGIN, "http://127.0.0.1:9101".parse().unwrap());
        assert!(same_origin(&h));
        h.insert(header::ORIGIN, "http://evil.example".parse().unwrap());
        assert!(!same_origin(&h));
        h.insert(header::ORIGIN, "null".parse().unwrap());
        assert!(!same_origin(&h));
        assert!(same_secret("x", "x") && !same_secret("x", "y") && !same_secret("x", "xx"));
    }
}
