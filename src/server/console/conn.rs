//! The console's sessions: each API request runs its Redis commands in a session of its own,
//! acting as the logged-in user (ConsoleThroughCommands, ConsoleLogin).

use std::sync::atomic::Ordering;
use std::sync::Arc;

use axum::http::StatusCode;
use axum::response::Response;
use bytes::Bytes;

use super::Console;
use crate::commands::{Batch, Session};
use crate::context::ClientHandle;
use crate::protocol::Frame;

/// An HTTP error with a JSON body `{"error": message}`.
pub fn error(status: StatusCode, message: &str) -> Response {
    use axum::response::IntoResponse;
    (status, axum::Json(serde_json::json!({ "error": message }))).into_response()
}

/// A console session: runs commands as a client of this node would.
pub struct Conn {
    session: Session,
}

impl Conn {
    /// A session acting as `user`, whose login the console checked (ConsoleLogin).
    pub fn new(c: &Console, user: &[u8]) -> Self {
        let any: std::net::SocketAddr = ([0, 0, 0, 0], 0).into();
        let id = c.ctx.next_client_id.fetch_add(1, Ordering::Relaxed);
        let handle = Arc::new(ClientHandle::new(id, any, any, -1));
        let mut session = Session::new(&c.ctx, handle);
        // The HTTP login stands for AUTH (ConsoleLogin).
        session.authenticated = true;
        session.user = Bytes::copy_from_slice(user);
        Self { session }
    }

    pub async fn call(&mut self, c: &Console, argv: &[&[u8]]) -> Frame {
        let argv: Vec<Bytes> = argv.iter().map(|a| Bytes::copy_from_slice(a)).collect();
        let mut batch = Batch::new(vec![argv], &mut self.session);
        match batch.next(&c.ctx, &mut self.session).await {
            Some(out) => out.frame,
            None => Frame::Error("ERR no reply".into()),
        }
    }

    /// Runs a command; an error reply becomes the HTTP error the page shows.
    pub async fn ok(&mut self, c: &Console, argv: &[&[u8]]) -> Result<Frame, Response> {
        match self.call(c, argv).await {
            Frame::Error(e) => Err(command_error(&e)),
            f => Ok(f),
        }
    }
}

/// An error reply as an HTTP error: a schema refusal 422, no leader or an uncertain outcome
/// 503, anything else 400; the reply's text as the message.
fn command_error(e: &str) -> Response {
    let word = e.split_whitespace().next().unwrap_or("");
    let status = match word {
        "SCHEMA" => StatusCode::UNPROCESSABLE_ENTITY,
        "TRYAGAIN" | "CLUSTERDOWN" | "UNCERTAIN" | "LOADING" => StatusCode::SERVICE_UNAVAILABLE,
        _ => StatusCode::BAD_REQUEST,
    };
    error(status, e)
}
