//! The console's logins and CSRF checks.
//!
//! **ConsoleLogin.** Every console page's data and every change need a login: `POST
//! /api/login` with a user name and password, checked by the `AUTH` command (an ACL user, or
//! `default` with the node's `requirepass`; none needed when `default` has no password, as a
//! Redis client needs none), sets a random session cookie (`HttpOnly`, `SameSite=Strict`,
//! `Secure` over HTTPS, 12 hours). The console then acts as that user: its commands are checked
//! against the user's permissions, and its writes carry the user as their author. Nothing
//! secret travels in a URL.
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
use bytes::Bytes;
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

/// One login: its user, its CSRF token and when it ends.
struct Login {
    user: Bytes,
    csrf: String,
    expires: Instant,
}

/// The user a request's login acts as (put in the request by [`require_login`]).
#[derive(Clone, Debug)]
pub struct ConsoleUser(pub Bytes);

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
    fn create(&self, user: Bytes) -> (String, String) {
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
                user,
                csrf: csrf.clone(),
                expires: now + LOGIN_TTL,
            },
        );
        (token, csrf)
    }

    /// The CSRF token and user of the live login `token`.
    fn get(&self, token: &str) -> Option<(String, Bytes)> {
        let map = self.by_token.lock().unwrap_or_else(|e| e.into_inner());
        map.get(token)
            .filter(|l| l.expires > Instant::now())
            .map(|l| (l.csrf.clone(), l.user.clone()))
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

pub use super::conn::error;

#[derive(Deserialize)]
pub struct LoginForm {
    /// Empty: `default`.
    #[serde(default)]
    username: String,
    #[serde(default)]
    password: String,
}

/// `POST /api/login`.
pub async fn login(
    State(c): State<std::sync::Arc<Console>>,
    Json(form): Json<LoginForm>,
) -> Response {
    let user = if form.username.is_empty() {
        "default"
    } else {
        form.username.as_str()
    };
    if !(user == "default" && c.ctx.acl.default_is_open()) {
        // AUTH decides, as for a Redis client (ACL users, requirepass, disabled users).
        let mut conn = super::conn::Conn::new(&c, b"default");
        let reply = conn
            .call(&c, &[b"AUTH", user.as_bytes(), form.password.as_bytes()])
            .await;
        if let crate::protocol::Frame::Error(e) = reply {
            tracing::warn!(user, "console login refused");
            return error(StatusCode::UNAUTHORIZED, &e);
        }
    }
    let (token, csrf) = c.logins.create(Bytes::copy_from_slice(user.as_bytes()));
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
    let login = cookie_token(&headers).and_then(|t| c.logins.get(&t));
    Json(json!({
        "password_required": !c.ctx.acl.default_is_open(),
        "logged_in": login.is_some(),
        "csrf": login.as_ref().map(|l| l.0.clone()),
        "user": login.as_ref().map(|l| String::from_utf8_lossy(&l.1).into_owned()),
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
    mut request: Request,
    next: Next,
) -> Response {
    let headers = request.headers();
    let Some((csrf, user)) = cookie_token(headers).and_then(|t| c.logins.get(&t)) else {
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
    request.extensions_mut().insert(ConsoleUser(user));
    next.run(request).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn logins_are_random_and_end() {
        let l = Logins::default();
        let (t1, c1) = l.create(Bytes::from_static(b"default"));
        let (t2, _) = l.create(Bytes::from_static(b"alice"));
        assert_ne!(t1, t2);
        assert_eq!(t1.len(), 64);
        assert_eq!(l.get(&t1).map(|(c, _)| c), Some(c1));
        assert_eq!(
            l.get(&t2).map(|(_, u)| u),
            Some(Bytes::from_static(b"alice"))
        );
        l.remove(&t1);
        assert_eq!(l.get(&t1), None);
        assert!(l.get(&t2).is_some());
        assert_eq!(l.get("forged"), None);
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
