//! TLS on a three-node cluster whose certificates are `redraft cert`'s: real clients
//! (redis-cli, redis-py) on the TLS port with mutual TLS, the bad certificates a server must
//! refuse (none, expired, self-signed, another CA's) while it keeps serving everyone else, a
//! client on the wrong port, peers over mutual TLS refusing a node whose certificate another
//! CA signed until its certificate is rotated, and rotation on `CONFIG SET tls-*` and SIGHUP
//! (`src/tls`).

use crate::common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::client_libs::{run_bounded, run_ok_script, testdata_command};
use common::{phase, Cluster};
use redraft::tls::cert::{self, Ca, Subject};
use resp_client::raw::{RawConn, Reply};
use time::OffsetDateTime;

/// Runs redis-cli with `args`; returns whether it exited 0 and what it printed (both streams).
fn redis_cli(args: &[&str]) -> (bool, String) {
    let mut cmd = Command::new("redis-cli");
    cmd.args(args);
    let out = run_bounded(cmd, Duration::from_secs(30));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text.trim().to_string())
}

fn port(addr: &str) -> &str {
    addr.rsplit_once(':').expect("host:port").1
}

/// redis-cli over TLS to `addr` with the cluster's CA and, when given, a client certificate.
fn tls_cli(
    addr: &str,
    certs: &Path,
    client: Option<(&Path, &Path)>,
    cmd: &[&str],
) -> (bool, String) {
    let ca = certs.join("ca.crt").display().to_string();
    let mut args: Vec<String> = [
        "--tls",
        "--cacert",
        &ca,
        "-h",
        "127.0.0.1",
        "-p",
        port(addr),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    if let Some((crt, key)) = client {
        args.extend([
            "--cert".into(),
            crt.display().to_string(),
            "--key".into(),
            key.display().to_string(),
        ]);
    }
    args.extend(cmd.iter().map(|s| s.to_string()));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    redis_cli(&args)
}

/// Writes `issued` as `<stem>.crt`/`<stem>.key` in `dir`; returns both paths.
fn write_pair(dir: &Path, stem: &str, issued: &cert::Issued) -> (PathBuf, PathBuf) {
    let (crt, key) = (
        dir.join(format!("{stem}.crt")),
        dir.join(format!("{stem}.key")),
    );
    std::fs::write(&crt, &issued.cert_pem).unwrap();
    std::fs::write(&key, &issued.key_pem).unwrap();
    (crt, key)
}

fn client_subject() -> Subject {
    Subject {
        common_name: "test client".into(),
        client: true,
        ..Subject::default()
    }
}

fn node_subject(ips: Vec<std::net::IpAddr>) -> Subject {
    Subject {
        common_name: "test node".into(),
        ips,
        server: true,
        client: true,
        ..Subject::default()
    }
}

fn log_of(c: &Cluster, id: u64) -> String {
    std::fs::read_to_string(c.log_path(id)).unwrap_or_default()
}

/// Waits until node `id`'s log contains `needle`.
fn must_log(c: &Cluster, id: u64, needle: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !log_of(c, id).contains(needle) {
        assert!(
            Instant::now() < deadline,
            "node {id} never logged {needle:?}:\n{}",
            common::file_tail(&c.log_path(id), 30)
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn redis_py(c: &Cluster, id: u64, client: (&Path, &Path), mode: &str) {
    let addr = c.tls_addr(id);
    let mut cmd = testdata_command("python3", "redis_py_tls.py");
    cmd.args(["127.0.0.1", port(&addr)])
        .arg(c.certs().join("ca.crt"))
        .arg(client.0)
        .arg(client.1)
        .arg(mode);
    if let Err(e) = run_ok_script(cmd, Duration::from_secs(60)) {
        panic!("redis-py over TLS ({mode}) against node {id}: {e}");
    }
}

#[test]
fn tls_clients_are_served_and_bad_certificates_refused() {
    let mut c = Cluster::builder().name("tls").tls().start();
    // The peers speak mutual TLS: a leader means they reached each other.
    let leader = c.must_leader(Duration::from_secs(30));
    let follower = c.ids().into_iter().find(|&id| id != leader).unwrap();
    let certs = c.certs();
    let client = (certs.join("client.crt"), certs.join("client.key"));
    let good = Some((client.0.as_path(), client.1.as_path()));
    let (f_tls, l_tls) = (c.tls_addr(follower), c.tls_addr(leader));

    phase("redis-cli over TLS with a client certificate: a write through a follower, read on the leader");
    assert_eq!(
        tls_cli(&f_tls, &certs, good, &["SET", "tls:k", "v"]),
        (true, "OK".into())
    );
    assert_eq!(
        tls_cli(&l_tls, &certs, good, &["GET", "tls:k"]),
        (true, "v".into())
    );

    phase("redis-py over TLS, the server's name checked; without a client certificate refused");
    redis_py(&c, follower, (&client.0, &client.1), "mutual");

    phase("bad client certificates are refused and logged; the node keeps serving");
    let ca_key = std::fs::read_to_string(certs.join("ca.key")).unwrap();
    let ca = Ca::from_key_pem("tls", &ca_key).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let now = OffsetDateTime::now_utc();
    let expired = ca
        .issue(&Subject {
            not_before: Some(now - time::Duration::days(30)),
            not_after: Some(now - time::Duration::days(1)),
            ..client_subject()
        })
        .unwrap();
    let other_ca = Ca::generate("other")
        .unwrap()
        .issue(&client_subject())
        .unwrap();
    // A CA that took this cluster's CA's name, with its own key.
    let same_name = Ca::generate("tls")
        .unwrap()
        .issue(&client_subject())
        .unwrap();
    let self_signed = cert::self_signed(&client_subject()).unwrap();
    for (name, issued) in [
        ("expired", &expired),
        ("another-ca", &other_ca),
        ("same-name-ca", &same_name),
        ("self-signed", &self_signed),
    ] {
        let (crt, key) = write_pair(dir.path(), name, issued);
        let (ok, out) = tls_cli(&f_tls, &certs, Some((&crt, &key)), &["GET", "tls:k"]);
        assert!(
            !ok || !out.ends_with('v'),
            "{name} client certificate was served: {out}"
        );
    }
    let (ok, out) = tls_cli(&f_tls, &certs, None, &["GET", "tls:k"]);
    assert!(
        !ok || !out.ends_with('v'),
        "no client certificate was served: {out}"
    );
    must_log(&c, follower, "client TLS handshake failed");
    let log = log_of(&c, follower);
    let refusals: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("client TLS handshake failed"))
        .collect();
    let named = |what: &str| refusals.iter().any(|l| l.contains(what));
    assert!(named("expired"), "the expiry is named: {refusals:#?}");
    assert!(
        named("UnknownIssuer"),
        "the unknown issuer is named: {refusals:#?}"
    );
    assert!(
        named("BadSignature"),
        "another CA of the same name is named: {refusals:#?}"
    );
    assert!(
        named("peer sent no certificates"),
        "no certificate: {refusals:#?}"
    );
    assert_eq!(
        tls_cli(&f_tls, &certs, good, &["GET", "tls:k"]),
        (true, "v".into())
    );

    phase("a plain client on the TLS port is told; a TLS client on the plain port is closed");
    let (_, out) = redis_cli(&["-h", "127.0.0.1", "-p", port(&f_tls), "PING"]);
    assert!(out.contains("ERR this port speaks TLS"), "{out}");
    let (ok, out) = tls_cli(&c.redis_addr(follower), &certs, good, &["PING"]);
    assert!(
        !ok || !out.contains("PONG"),
        "TLS on the plain port answered: {out}"
    );
    must_log(&c, follower, "TLS client on the plain-text port");
    let mut plain = RawConn::must_connect(&c.redis_addr(follower));
    assert_eq!(
        plain.must_call(&["GET", "tls:k"]),
        Reply::Bulk(Some(b"v".to_vec()))
    );

    phase("tls-auth-clients optional: redis-py without a client certificate");
    assert_eq!(
        plain.must_call(&["CONFIG", "SET", "tls-auth-clients", "optional"]),
        Reply::ok()
    );
    redis_py(&c, follower, (&client.0, &client.1), "optional");

    phase("CONFIG SET rotates the certificate; a bad file is refused and changes nothing");
    let wrong_host = ca
        .issue(&node_subject(vec!["10.9.8.7".parse().unwrap()]))
        .unwrap();
    let (wh_crt, wh_key) = write_pair(dir.path(), "wrong-host", &wrong_host);
    let refused = plain.must_call(&["CONFIG", "SET", "tls-cert-file", "/nonexistent/x.crt"]);
    assert_eq!(
        refused,
        Reply::Error(
            b"ERR CONFIG SET failed (possibly related to argument 'tls-cert-file') - Unable to \
              update TLS configuration. Check server logs."
                .to_vec()
        )
    );
    redis_py(&c, follower, (&client.0, &client.1), "optional");
    let (crt, key) = (wh_crt.display().to_string(), wh_key.display().to_string());
    assert_eq!(
        plain.must_call(&["CONFIG", "SET", "tls-cert-file", &crt, "tls-key-file", &key]),
        Reply::ok()
    );
    assert_eq!(
        plain.must_call(&["CONFIG", "GET", "tls-cert-file"]),
        Reply::Array(Some(vec![
            Reply::Bulk(Some(b"tls-cert-file".to_vec())),
            Reply::Bulk(Some(crt.clone().into_bytes())),
        ]))
    );
    redis_py(&c, follower, (&client.0, &client.1), "wrong-host");

    phase("SIGHUP reloads the files in place");
    let node_cert = certs.join(format!("node{follower}.crt"));
    let node_key = certs.join(format!("node{follower}.key"));
    std::fs::copy(&node_cert, &wh_crt).unwrap();
    std::fs::copy(&node_key, &wh_key).unwrap();
    c.hangup(follower);
    must_log(&c, follower, "SIGHUP: TLS certificates reloaded");
    redis_py(&c, follower, (&client.0, &client.1), "optional");
}

#[test]
fn a_peer_certified_by_another_ca_is_refused_until_its_certificate_is_rotated() {
    let mut c = Cluster::builder().name("tlsp").tls().start();
    let certs = c.certs();
    let (crt, key) = (certs.join("node3.crt"), certs.join("node3.key"));
    let (good_crt, good_key) = (std::fs::read(&crt).unwrap(), std::fs::read(&key).unwrap());
    c.must_leader(Duration::from_secs(30));

    phase("node 3 restarts with a certificate of another CA: refused both ways");
    c.kill9(3);
    let impostor = Ca::generate("another")
        .unwrap()
        .issue(&node_subject(cert::node_ips(&[])))
        .unwrap();
    std::fs::write(&crt, &impostor.cert_pem).unwrap();
    std::fs::write(&key, &impostor.key_pem).unwrap();
    let leader = c.must_leader(Duration::from_secs(30));
    c.restart(3);
    c.must_set(leader, "peer:k", "v");
    must_log(&c, leader, "invalid peer certificate: UnknownIssuer");
    let mut n3 = RawConn::must_connect(&c.redis_addr(3));
    assert_eq!(n3.must_call(&["READMODE", "stale"]), Reply::ok());
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(
        n3.must_call(&["GET", "peer:k"]),
        Reply::Bulk(None),
        "node 3 received nothing"
    );

    phase("node 3 restarts with the cluster's client certificate (same CA): not a node's");
    c.kill9(3);
    std::fs::copy(certs.join("client.crt"), &crt).unwrap();
    std::fs::copy(certs.join("client.key"), &key).unwrap();
    let leader = c.must_leader(Duration::from_secs(30));
    c.restart(3);
    // Node 3 campaigns (it hears no leader it can accept): its vote requests are refused.
    must_log(&c, leader, "is not a node certificate");
    let mut n3 = RawConn::must_connect(&c.redis_addr(3));
    assert_eq!(n3.must_call(&["READMODE", "stale"]), Reply::ok());
    c.must_set(leader, "peer:k2", "v");
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(
        n3.must_call(&["GET", "peer:k2"]),
        Reply::Bulk(None),
        "node 3 received nothing"
    );

    phase("node 3's certificate rotated with CONFIG SET: it joins in and catches up");
    std::fs::write(&crt, good_crt).unwrap();
    std::fs::write(&key, good_key).unwrap();
    let (crt, key) = (crt.display().to_string(), key.display().to_string());
    assert_eq!(
        n3.must_call(&["CONFIG", "SET", "tls-cert-file", &crt, "tls-key-file", &key]),
        Reply::ok()
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if n3.must_call(&["GET", "peer:k"]) == Reply::Bulk(Some(b"v".to_vec())) {
            break;
        }
        assert!(Instant::now() < deadline, "node 3 never caught up");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn ioredis_over_tls_and_metrics_over_https() {
    let mut c = Cluster::builder().name("tlsh").tls().metrics().start();
    let leader = c.must_leader(Duration::from_secs(30));
    let certs = c.certs();

    phase("ioredis with its tls option: the CA, a client certificate, the host checked");
    let addr = c.tls_addr(leader);
    let mut cmd = testdata_command("node", "ioredis_tls.js");
    cmd.args(["127.0.0.1", port(&addr)])
        .arg(certs.join("ca.crt"))
        .arg(certs.join("client.crt"))
        .arg(certs.join("client.key"));
    if let Err(e) = run_ok_script(cmd, Duration::from_secs(60)) {
        panic!("ioredis over TLS: {e}");
    }

    phase("/metrics over HTTPS, checked against the CA; plain HTTP gets nothing");
    let metrics = c.metrics_addr(leader).expect("metrics_addr");
    let script = "import ssl, sys, urllib.request\n\
        ctx = ssl.create_default_context(cafile=sys.argv[2])\n\
        body = urllib.request.urlopen('https://' + sys.argv[1] + '/metrics', context=ctx, timeout=10).read().decode()\n\
        assert 'redraft_' in body, body[:200]\n\
        print('ok')\n";
    let mut cmd = Command::new("python3");
    cmd.args(["-c", script, &metrics]).arg(certs.join("ca.crt"));
    if let Err(e) = run_ok_script(cmd, Duration::from_secs(30)) {
        panic!("GET https://{metrics}/metrics: {e}");
    }
    let plain = common::http_get(&metrics, "/metrics");
    assert!(
        !matches!(plain, Ok((200, _))),
        "plain HTTP was served on the HTTPS port: {plain:?}"
    );
}
