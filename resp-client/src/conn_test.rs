//! Tests of the async connection: the decoder on every reply type, partial and pipelined input,
//! malformed and truncated replies, and a fake server that answers, splits a reply across
//! writes, or never answers.

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::*;
use crate::encode::encode_into;

/// Reads one reply from `bytes` as if a server had sent them and then closed the connection.
async fn read_from(bytes: &[u8]) -> io::Result<Reply> {
    let mut r = bytes;
    read_reply(&mut r, &mut Vec::new(), &mut 0).await
}

#[tokio::test]
async fn reads_every_reply_type_from_a_stream() {
    let s = |x: &str| Reply::Bulk(Some(x.as_bytes().to_vec()));
    let cases: Vec<(&[u8], Reply)> = vec![
        (b"+OK\r\n", Reply::Simple("OK".into())),
        (
            b"-TRYAGAIN no leader\r\n",
            Reply::Error("TRYAGAIN no leader".into()),
        ),
        (b":-12\r\n", Reply::Int(-12)),
        (b"$3\r\na\r\n\r\n", s("a\r\n")),
        (b"$0\r\n\r\n", s("")),
        (b"$-1\r\n", Reply::Bulk(None)),
        (b"_\r\n", Reply::Bulk(None)),
        (b"*-1\r\n", Reply::Array(None)),
        (b"*0\r\n", Reply::Array(Some(vec![]))),
        (
            b"*2\r\n*1\r\n:1\r\n$1\r\nx\r\n",
            Reply::Array(Some(vec![Reply::Array(Some(vec![Reply::Int(1)])), s("x")])),
        ),
        (
            b"%1\r\n+value\r\n$1\r\n7\r\n",
            Reply::Array(Some(vec![Reply::Simple("value".into()), s("7")])),
        ),
        (
            b"*3\r\n*0\r\n*1\r\n*0\r\n:5\r\n",
            Reply::Array(Some(vec![
                Reply::Array(Some(vec![])),
                Reply::Array(Some(vec![Reply::Array(Some(vec![]))])),
                Reply::Int(5),
            ])),
        ),
    ];
    for (bytes, want) in cases {
        assert_eq!(
            read_from(bytes).await.unwrap(),
            want,
            "{:?}",
            String::from_utf8_lossy(bytes)
        );
    }
}

#[tokio::test]
async fn rejects_malformed_and_truncated_replies() {
    for bytes in [
        &b"?x\r\n"[..],
        b"+OK\n",
        b"$5\r\nab\r\n",
        b":x\r\n",
        b"",
        b"*2\r\n:1\r\n",
    ] {
        assert!(
            read_from(bytes).await.is_err(),
            "{:?}",
            String::from_utf8_lossy(bytes)
        );
    }
}
#[test]
fn decodes_every_reply_type() {
    let cases: Vec<(&[u8], Reply)> = vec![
        (b"+OK\r\n", Reply::Simple("OK".into())),
        (b"-ERR nope\r\n", Reply::Error("ERR nope".into())),
        (b":-42\r\n", Reply::Int(-42)),
        (b"$5\r\nhe\r\no\r\n", Reply::Bulk(Some(b"he\r\no".to_vec()))),
        (b"$-1\r\n", Reply::Bulk(None)),
        (b"*-1\r\n", Reply::Array(None)),
        (b"_\r\n", Reply::Bulk(None)),
        (
            b"*2\r\n$1\r\na\r\n*1\r\n:1\r\n",
            Reply::Array(Some(vec![
                Reply::Bulk(Some(b"a".to_vec())),
                Reply::Array(Some(vec![Reply::Int(1)])),
            ])),
        ),
        (
            b"%1\r\n+k\r\n:2\r\n",
            Reply::Array(Some(vec![Reply::Simple("k".into()), Reply::Int(2)])),
        ),
    ];
    for (bytes, want) in cases {
        let (got, used) = decode(bytes).unwrap().unwrap();
        assert_eq!(got, want, "{:?}", String::from_utf8_lossy(bytes));
        assert_eq!(used, bytes.len());
    }
}

/// A reply split at any byte is incomplete until its last byte arrives, and two replies in
/// one buffer (a pipeline) are decoded one after the other.
#[test]
fn decodes_partial_and_pipelined_input() {
    let whole = b"*2\r\n$3\r\nfoo\r\n:7\r\n+OK\r\n";
    let first_len = whole.len() - 5;
    for cut in 0..first_len {
        assert_eq!(decode(&whole[..cut]).unwrap(), None, "cut at {cut}");
    }
    let (first, used) = decode(whole).unwrap().unwrap();
    assert_eq!(used, first_len);
    assert_eq!(first.items().unwrap()[0].text().unwrap(), "foo");
    let (second, _) = decode(&whole[used..]).unwrap().unwrap();
    assert_eq!(second, Reply::Simple("OK".into()));
}

#[test]
fn refuses_garbage() {
    assert!(decode(b"?what\r\n").is_err());
    assert!(decode(b":12x\r\n").is_err());
    assert!(decode(b"$3\r\nabcXY").is_err());
}

#[tokio::test]
async fn pipelines_over_a_socket() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let server = tokio::spawn(async move {
        let (mut s, _) = listener.accept().await.unwrap();
        let mut got = Vec::new();
        let mut chunk = [0u8; 256];
        while got.len() < 2 * encode(&[b"PING"]).len() {
            let n = s.read(&mut chunk).await.unwrap();
            got.extend_from_slice(&chunk[..n]);
        }
        // Both replies in two writes, the first split inside a bulk string.
        s.write_all(b"$4\r\nPO").await.unwrap();
        s.flush().await.unwrap();
        tokio::time::sleep(Duration::from_millis(20)).await;
        s.write_all(b"NG\r\n+PONG\r\n").await.unwrap();
        got
    });
    let mut c = Conn::connect(&addr, Duration::from_secs(5)).await.unwrap();
    let mut req = Vec::new();
    encode_into(&mut req, &[b"PING"]);
    encode_into(&mut req, &[b"PING"]);
    c.send(&req).await.unwrap();
    assert_eq!(c.read().await.unwrap().text().unwrap(), "PONG");
    assert_eq!(c.read().await.unwrap(), Reply::Simple("PONG".into()));
    assert_eq!(server.await.unwrap(), req);
}

#[tokio::test]
async fn talks_to_a_fake_server_and_times_out() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    tokio::spawn(async move {
        let (mut s, _) = listener.accept().await.unwrap();
        let mut buf = vec![0; 1024];
        let n = s.read(&mut buf).await.unwrap();
        assert!(buf[..n].starts_with(b"*1\r\n$4\r\nPING"));
        s.write_all(b"+PONG\r\n").await.unwrap();
        // The second request is never answered.
        let _ = s.read(&mut buf).await;
        tokio::time::sleep(Duration::from_secs(5)).await;
    });
    let mut c = Conn::connect(&addr, Duration::from_secs(1)).await.unwrap();
    let r = c.call(&[b"PING"], Duration::from_secs(1)).await.unwrap();
    assert_eq!(r, Reply::Simple("PONG".into()));
    let err = c
        .call(&[b"GET", b"k"], Duration::from_millis(100))
        .await
        .unwrap_err();
    assert!(matches!(err, IoError::AfterSend(_)), "{err}");
    // Nobody listens on port 1: nothing can be sent.
    let err = Conn::connect("127.0.0.1:1", Duration::from_secs(1))
        .await
        .err()
        .unwrap();
    assert!(matches!(err, IoError::NotSent(_)), "{err}");
}

#[tokio::test]
async fn tells_pushes_from_replies_and_reads_only_what_is_ready() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let (go_tx, go_rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(async move {
        let (mut s, _) = listener.accept().await.unwrap();
        // A push, then a reply split across writes.
        s.write_all(b">2\r\n$10\r\ninvalidate\r\n*1\r\n$1\r\nk\r\n$1\r\n")
            .await
            .unwrap();
        s.flush().await.unwrap();
        tokio::time::sleep(Duration::from_millis(20)).await;
        s.write_all(b"v\r\n").await.unwrap();
        go_rx.await.unwrap();
        // Two pushes and half a reply: only the pushes are whole.
        s.write_all(
            b">2\r\n$10\r\ninvalidate\r\n_\r\n>2\r\n$10\r\ninvalidate\r\n*1\r\n$1\r\nj\r\n+O",
        )
        .await
        .unwrap();
        s.flush().await.unwrap();
        tokio::time::sleep(Duration::from_millis(200)).await;
        s.write_all(b"K\r\n").await.unwrap();
        tokio::time::sleep(Duration::from_millis(100)).await;
    });
    let mut c = Conn::connect(&addr, Duration::from_secs(5)).await.unwrap();
    let bulk = |x: &str| Reply::Bulk(Some(x.as_bytes().to_vec()));
    let invalidate = |keys: Reply| Reply::Array(Some(vec![bulk("invalidate"), keys]));
    assert_eq!(
        c.read_frame().await.unwrap(),
        (invalidate(Reply::Array(Some(vec![bulk("k")]))), true)
    );
    assert_eq!(c.read_frame().await.unwrap(), (bulk("v"), false));
    assert!(c.read_ready().unwrap().is_empty(), "nothing has arrived");
    go_tx.send(()).unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(
        c.read_ready().unwrap(),
        vec![
            (invalidate(Reply::Bulk(None)), true),
            (invalidate(Reply::Array(Some(vec![bulk("j")]))), true)
        ]
    );
    assert_eq!(
        c.read_frame().await.unwrap(),
        (Reply::Simple("OK".into()), false)
    );
    server.await.unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(c.read_ready().is_err(), "the server closed the connection");
}
