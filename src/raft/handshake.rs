//! The peer handshake: once per TCP connection, both sides prove they hold the cluster secret
//! (**MutualPeerAuth**). Its messages are in `wire.rs`.
//!
//!
//! ```text
//! client ── Hello { cluster, from, to, nonce: c } ─────────▶ server  refuses another cluster
//! client ◀── Challenge { nonce: s, mac: S } | Refused ────── server  name or a `to` not itself
//! client ── Proof { mac: C } ──────────────────────────────▶ server
//! client ◀── Welcome | Refused(reason) ───────────────────── server
//!
//! S = HMAC-SHA256(secret, "server" | cluster | from | to | c | s)   checked by the client
//! C = HMAC-SHA256(secret, "client" | cluster | from | to | c | s)   checked by the server
//! ```
//!
//! Each side proves the secret over a nonce the other chose, so neither a replayed proof nor a
//! fake node without the secret passes (a follower must not forward writes to, nor take a read
//! index from, an impostor). With no `secret` configured (allowed only when every peer address
//! is loopback: `config.rs`, SecretOffLoopback) the macs are empty and not checked; the cluster
//! name and target id still are. After `Welcome`, the client sends [`Envelope`]s of
//! [`RpcRequest`] and the server answers each with an `Envelope` of [`RpcResponse`] carrying
//! the same id. Requests are served concurrently, so one connection multiplexes many forwarded
//! writes. The secret authenticates the peers; it does not encrypt their traffic.

use std::io;
use std::time::Duration;

use hmac::{Hmac, Mac};
use sha2::Sha256;
use tokio::io::{AsyncRead, AsyncWrite};

use super::wire::{
    read_frame, write_frame, Hello, HelloReply, PeerIdentity, Proof, Side, Verdict,
    MAX_HANDSHAKE_FRAME,
};

/// How long a peer may take to complete the handshake.
pub(super) const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);

/// HMAC-SHA256 keyed with the cluster secret over what the handshake binds: the protocol,
/// the proving side, the cluster name, both node ids and both nonces of this connection.
fn handshake_hmac(secret: &str, side: Side, hello: &Hello, nonce: &[u8; 32]) -> Hmac<Sha256> {
    let mut mac =
        Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC accepts keys of any length");
    mac.update(b"redraft-peer/2\0");
    mac.update(match side {
        Side::Client => b"client\0",
        Side::Server => b"server\0",
    });
    mac.update(hello.cluster.as_bytes());
    mac.update(b"\0");
    mac.update(&hello.from.to_be_bytes());
    mac.update(&hello.to.to_be_bytes());
    mac.update(&hello.nonce);
    mac.update(nonce);
    mac
}

/// The proof that `side` knows the cluster secret, bound to this connection's nonces (`nonce`
/// is the server's; the client's is in `hello`), or empty without a secret.
pub fn handshake_mac(secret: Option<&str>, side: Side, hello: &Hello, nonce: &[u8; 32]) -> Vec<u8> {
    match secret {
        Some(secret) => handshake_hmac(secret, side, hello, nonce)
            .finalize()
            .into_bytes()
            .to_vec(),
        None => Vec::new(),
    }
}

fn verify_mac(secret: &str, side: Side, hello: &Hello, nonce: &[u8; 32], got: &[u8]) -> bool {
    // Constant-time comparison.
    handshake_hmac(secret, side, hello, nonce)
        .verify_slice(got)
        .is_ok()
}

/// Server side of the handshake. Returns the peer's node id when it is welcome.
pub(super) async fn accept_handshake<S>(stream: &mut S, me: &PeerIdentity) -> io::Result<u64>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let hello: Hello = read_frame(stream, MAX_HANDSHAKE_FRAME)
        .await?
        .ok_or_else(|| io::Error::new(io::ErrorKind::UnexpectedEof, "closed before hello"))?;
    let refuse = |why: String| io::Error::new(io::ErrorKind::PermissionDenied, why);
    if hello.cluster != me.cluster {
        let why = format!(
            "refused peer node {} of cluster {:?}: this node belongs to cluster {:?}",
            hello.from, hello.cluster, me.cluster
        );
        write_frame(stream, &HelloReply::Refused(why.clone())).await?;
        return Err(refuse(why));
    }
    if hello.to != me.node_id {
        let why = format!(
            "refused peer node {}: it addressed node {} but this is node {}",
            hello.from, hello.to, me.node_id
        );
        write_frame(stream, &HelloReply::Refused(why.clone())).await?;
        return Err(refuse(why));
    }
    let nonce: [u8; 32] = rand::random();
    let mac = handshake_mac(me.secret.as_deref(), Side::Server, &hello, &nonce);
    write_frame(stream, &HelloReply::Challenge { nonce, mac }).await?;
    let proof: Proof = read_frame(stream, MAX_HANDSHAKE_FRAME)
        .await?
        .ok_or_else(|| io::Error::new(io::ErrorKind::UnexpectedEof, "closed before proof"))?;
    if let Some(secret) = &me.secret {
        if !verify_mac(secret, Side::Client, &hello, &nonce, &proof.mac) {
            let why = format!(
                "refused peer node {}: it did not prove the cluster secret",
                hello.from
            );
            write_frame(stream, &Verdict::Refused(why.clone())).await?;
            return Err(refuse(why));
        }
    }
    write_frame(stream, &Verdict::Welcome).await?;
    Ok(hello.from)
}

/// Client side of the handshake.
pub async fn connect_handshake<S>(stream: &mut S, me: &PeerIdentity, target: u64) -> io::Result<()>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let hello = Hello {
        cluster: me.cluster.clone(),
        from: me.node_id,
        to: target,
        nonce: rand::random(),
    };
    write_frame(stream, &hello).await?;
    let reply: HelloReply = read_frame(stream, MAX_HANDSHAKE_FRAME)
        .await?
        .ok_or_else(|| io::Error::new(io::ErrorKind::UnexpectedEof, "peer closed"))?;
    let (nonce, server_mac) = match reply {
        HelloReply::Challenge { nonce, mac } => (nonce, mac),
        HelloReply::Refused(why) => {
            return Err(io::Error::new(io::ErrorKind::PermissionDenied, why));
        }
    };
    // MutualPeerAuth: the node we dialled must prove the secret before we send it anything.
    if let Some(secret) = &me.secret {
        if !verify_mac(secret, Side::Server, &hello, &nonce, &server_mac) {
            return Err(io::Error::new(
                io::ErrorKind::PermissionDenied,
                format!("refused node {target}: it did not prove the cluster secret"),
            ));
        }
    }
    let mac = handshake_mac(me.secret.as_deref(), Side::Client, &hello, &nonce);
    write_frame(stream, &Proof { mac }).await?;
    let verdict: Verdict = read_frame(stream, MAX_HANDSHAKE_FRAME)
        .await?
        .ok_or_else(|| io::Error::new(io::ErrorKind::UnexpectedEof, "peer closed"))?;
    match verdict {
        Verdict::Welcome => Ok(()),
        Verdict::Refused(why) => Err(io::Error::new(io::ErrorKind::PermissionDenied, why)),
    }
}

#[cfg(test)]
mod tests {
    use tokio::net::{TcpListener, TcpStream};

    use super::*;

    fn ident(cluster: &str, secret: Option<&str>, node_id: u64) -> PeerIdentity {
        PeerIdentity {
            cluster: cluster.into(),
            secret: secret.map(Into::into),
            node_id,
            tls: None,
        }
    }

    /// Runs one handshake: `server` accepts, `client` dials node `target`.
    async fn handshake(
        server: PeerIdentity,
        client: PeerIdentity,
        target: u64,
    ) -> (io::Result<u64>, io::Result<()>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let srv = tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.unwrap();
            accept_handshake(&mut s, &server).await
        });
        let mut c = TcpStream::connect(addr).await.unwrap();
        let cli = connect_handshake(&mut c, &client, target).await;
        // A client that gave up closes its end, so the server is not left waiting.
        drop(c);
        (srv.await.unwrap(), cli)
    }

    #[tokio::test]
    async fn same_cluster_and_secret_is_welcome() {
        let (s, c) = handshake(ident("a", Some("k"), 1), ident("a", Some("k"), 2), 1).await;
        assert_eq!(s.unwrap(), 2);
        c.unwrap();
        let (s, c) = handshake(ident("a", None, 1), ident("a", None, 2), 1).await;
        assert_eq!(s.unwrap(), 2);
        c.unwrap();
    }

    #[tokio::test]
    async fn another_cluster_is_refused_with_both_names() {
        let (s, c) = handshake(ident("a", None, 1), ident("b", None, 2), 1).await;
        let msg = s.unwrap_err().to_string();
        assert!(msg.contains("\"b\"") && msg.contains("\"a\""), "{msg}");
        let cmsg = c.unwrap_err().to_string();
        assert!(cmsg.contains("cluster"), "{cmsg}");
    }

    #[tokio::test]
    async fn wrong_target_node_is_refused() {
        let (s, c) = handshake(ident("a", None, 1), ident("a", None, 2), 3).await;
        assert!(s
            .unwrap_err()
            .to_string()
            .contains("addressed node 3 but this is node 1"));
        assert_eq!(c.unwrap_err().kind(), io::ErrorKind::PermissionDenied);
    }

    #[tokio::test]
    async fn wrong_or_missing_secret_is_refused() {
        // Without a secret the client sends an empty proof: the server refuses it.
        let (s, c) = handshake(ident("a", Some("k"), 1), ident("a", None, 2), 1).await;
        assert!(s
            .unwrap_err()
            .to_string()
            .contains("node 2: it did not prove the cluster secret"));
        assert_eq!(c.unwrap_err().kind(), io::ErrorKind::PermissionDenied);
        // With another secret the server's proof fails first: the client leaves, and the
        // server never welcomes it.
        let (s, c) = handshake(ident("a", Some("k"), 1), ident("a", Some("wrong"), 2), 1).await;
        assert!(s.is_err(), "{s:?}");
        let c = c.unwrap_err();
        assert_eq!(c.kind(), io::ErrorKind::PermissionDenied);
        assert!(c.to_string().contains("node 1: it did not prove"), "{c}");
    }

    #[test]
    fn mac_binds_side_cluster_nodes_and_both_nonces() {
        let hello = Hello {
            cluster: "a".into(),
            from: 2,
            to: 1,
            nonce: [5u8; 32],
        };
        let nonce = [7u8; 32];
        let mac = handshake_mac(Some("k"), Side::Client, &hello, &nonce);
        assert!(verify_mac("k", Side::Client, &hello, &nonce, &mac));
        assert!(
            !verify_mac("k", Side::Server, &hello, &nonce, &mac),
            "a client proof is not a server proof (no reflection)"
        );
        let nonce2 = [8u8; 32];
        assert!(
            !verify_mac("k", Side::Client, &hello, &nonce2, &mac),
            "another nonce"
        );
        assert!(
            !verify_mac("other", Side::Client, &hello, &nonce, &mac),
            "another secret"
        );
        let other = Hello { from: 3, ..hello };
        assert!(
            !verify_mac("k", Side::Client, &other, &nonce, &mac),
            "another sender"
        );
        let other = Hello {
            nonce: [6u8; 32],
            ..other
        };
        assert!(
            !verify_mac("k", Side::Client, &other, &nonce, &mac),
            "another client nonce"
        );
        assert!(handshake_mac(None, Side::Client, &other, &nonce).is_empty());
    }

    /// MutualPeerAuth: a node without the secret that answers on a peer's address (an
    /// impostor, or a node of a cluster that runs without one) is refused by the dialling node
    /// before it sends any request.
    #[tokio::test]
    async fn a_server_without_the_secret_is_refused_by_the_client() {
        for server_secret in [None, Some("wrong")] {
            let (s, c) = handshake(ident("a", server_secret, 1), ident("a", Some("k"), 2), 1).await;
            let c = c.unwrap_err();
            assert_eq!(c.kind(), io::ErrorKind::PermissionDenied, "{c}");
            assert!(
                c.to_string()
                    .contains("node 1: it did not prove the cluster secret"),
                "{c}"
            );
            // The client left without a proof: the server saw the connection end.
            assert!(s.is_err(), "{s:?}");
        }
    }
}
