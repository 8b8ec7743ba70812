//! TLS configurations from files: what is refused at load, and ReloadAllOrNothing.

use super::cert::{Ca, Subject};
use super::*;
use crate::config::ClusterConfig;

struct Files {
    dir: tempfile::TempDir,
}

impl Files {
    fn new() -> Self {
        Self {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn write(&self, name: &str, text: &str) -> PathBuf {
        let p = self.path(name);
        std::fs::write(&p, text).unwrap();
        p
    }

    /// A CA and one node certificate under it, as `stem`.crt/.key and `stem`-ca.crt.
    fn issue(&self, stem: &str) {
        let ca = Ca::generate("t").unwrap();
        let node = ca
            .issue(&Subject {
                common_name: "node".into(),
                ips: vec![[127, 0, 0, 1].into()],
                server: true,
                client: true,
                ..Subject::default()
            })
            .unwrap();
        self.write(&format!("{stem}-ca.crt"), &ca.cert_pem());
        self.write(&format!("{stem}.crt"), &node.cert_pem);
        self.write(&format!("{stem}.key"), &node.key_pem);
    }
}

/// A one-node config serving TLS clients and peers with `stem`'s files.
fn config(f: &Files, stem: &str) -> ClusterConfig {
    let mut cfg = ClusterConfig::single_node();
    cfg.nodes[0].tls_addr = Some("127.0.0.1:0".into());
    cfg.nodes[0].tls_cert_file = Some(f.path(&format!("{stem}.crt")));
    cfg.nodes[0].tls_key_file = Some(f.path(&format!("{stem}.key")));
    cfg.tls.ca_cert_file = Some(f.path(&format!("{stem}-ca.crt")));
    cfg.tls.peers = true;
    cfg.validate().unwrap();
    cfg
}

fn load(cfg: &ClusterConfig) -> Result<Option<Arc<TlsContext>>, TlsError> {
    TlsContext::load(cfg, &cfg.nodes[0])
}

#[test]
fn a_node_without_tls_listeners_has_no_context() {
    let cfg = ClusterConfig::single_node();
    assert!(load(&cfg).unwrap().is_none());
}

#[test]
fn good_files_give_every_configuration() {
    let f = Files::new();
    f.issue("a");
    let t = load(&config(&f, "a")).unwrap().expect("tls");
    assert!(t.client_acceptor().is_some());
    assert!(t.peer_acceptor().is_some());
    assert!(t.peer_connector().is_some());
    assert!(t.https_acceptor().is_none(), "metrics is off");
    assert_eq!(t.get("tls-auth-clients").as_deref(), Some("yes"));
    assert_eq!(t.get("tls-protocols").as_deref(), Some("TLSv1.2 TLSv1.3"));
}

#[test]
fn bad_files_are_refused_naming_the_setting() {
    let f = Files::new();
    f.issue("a");
    f.issue("b");
    let mut cfg = config(&f, "a");
    cfg.nodes[0].tls_cert_file = Some(f.path("missing.crt"));
    let e = load(&cfg).unwrap_err();
    assert_eq!(e.setting, "tls-cert-file", "{e}");
    assert!(e.to_string().contains("No such file"), "{e}");

    let mut cfg = config(&f, "a");
    cfg.nodes[0].tls_cert_file = Some(f.write("garbage.crt", "not a certificate\n"));
    let e = load(&cfg).unwrap_err();
    assert_eq!(e.setting, "tls-cert-file", "{e}");
    assert!(e.reason.contains("no PEM certificate"), "{e}");

    // A key that is not the certificate's.
    let mut cfg = config(&f, "a");
    cfg.nodes[0].tls_key_file = Some(f.path("b.key"));
    let e = load(&cfg).unwrap_err();
    assert_eq!(e.setting, "tls-key-file", "{e}");

    let mut cfg = config(&f, "a");
    cfg.tls.ca_cert_file = Some(f.write("empty.crt", ""));
    let e = load(&cfg).unwrap_err();
    assert_eq!(e.setting, "tls-ca-cert-file", "{e}");
}

#[test]
fn a_failed_reload_keeps_the_configurations_in_use() {
    let f = Files::new();
    f.issue("a");
    let t = load(&config(&f, "a")).unwrap().expect("tls");
    let before = t.current();
    // The certificate file is replaced by garbage: SIGHUP's reload fails and changes nothing.
    f.write(
        "a.crt",
        "-----BEGIN CERTIFICATE-----\nnope\n-----END CERTIFICATE-----\n",
    );
    assert!(t.reload().is_err());
    assert!(Arc::ptr_eq(&before, &t.current()), "ReloadAllOrNothing");

    // CONFIG SET of a good pair together switches; of a missing file, refuses and keeps it.
    f.issue("b");
    let b_crt = f.path("b.crt").display().to_string();
    let b_key = f.path("b.key").display().to_string();
    let b_ca = f.path("b-ca.crt").display().to_string();
    t.set(&[
        ("tls-cert-file", b_crt.as_str()),
        ("tls-key-file", b_key.as_str()),
        ("tls-ca-cert-file", b_ca.as_str()),
    ])
    .unwrap();
    let switched = t.current();
    assert!(!Arc::ptr_eq(&before, &switched));
    assert_eq!(t.get("tls-cert-file"), Some(b_crt.clone()));
    let (param, why) = t.set(&[("tls-cert-file", "/nonexistent.crt")]).unwrap_err();
    assert_eq!(param, "tls-cert-file");
    assert_eq!(
        why,
        "Unable to update TLS configuration. Check server logs."
    );
    assert_eq!(
        t.get("tls-cert-file"),
        Some(b_crt),
        "the setting is unchanged"
    );
    assert!(Arc::ptr_eq(&switched, &t.current()));

    let (param, why) = t.set(&[("tls-auth-clients", "maybe")]).unwrap_err();
    assert_eq!(param, "tls-auth-clients");
    assert!(why.contains("yes, no, optional"), "{why}");
    assert!(t.set(&[("tls-protocols", "TLSv1.1")]).is_err());
    t.set(&[
        ("tls-protocols", "TLSv1.3"),
        ("tls-auth-clients", "optional"),
    ])
    .unwrap();
    assert_eq!(t.get("tls-protocols").as_deref(), Some("TLSv1.3"));
}

#[test]
fn peer_names_are_the_dialled_ip() {
    assert_eq!(
        peer_server_name("127.0.0.1:7001").unwrap(),
        ServerName::IpAddress(IpAddr::from([127, 0, 0, 1]).into())
    );
    assert!(peer_server_name("[::1]:7001").is_ok());
    assert!(peer_server_name("node1:7001").is_err());
}

/// The DER certificate of a PEM one.
fn der(pem: &str) -> CertificateDer<'static> {
    CertificateDer::from_pem_slice(pem.as_bytes()).unwrap()
}

#[test]
fn a_dialling_peer_must_present_a_node_certificate_naming_its_member_address() {
    let f = Files::new();
    let ca = Ca::generate("t").unwrap();
    let node = ca
        .issue(&Subject {
            common_name: "node 2".into(),
            ips: vec![[127, 0, 0, 1].into(), [10, 0, 0, 2].into()],
            server: true,
            client: true,
            ..Subject::default()
        })
        .unwrap();
    let client = ca
        .issue(&Subject {
            common_name: "client".into(),
            ips: vec![[127, 0, 0, 1].into(), [10, 0, 0, 2].into()],
            client: true,
            ..Subject::default()
        })
        .unwrap();
    f.write("a-ca.crt", &ca.cert_pem());
    f.write("a.crt", &node.cert_pem);
    f.write("a.key", &node.key_pem);
    let t = load(&config(&f, "a")).unwrap().expect("tls");

    // PeerIsANode and PeerNamesChecked.
    let node_chain = [der(&node.cert_pem)];
    t.check_peer(&node_chain, Some("10.0.0.2:7002")).unwrap();
    t.check_peer(&node_chain, None).unwrap();
    let other = t
        .check_peer(&node_chain, Some("10.0.0.3:7003"))
        .unwrap_err();
    assert!(
        other.contains("does not name its member address 10.0.0.3:7003"),
        "{other}"
    );
    let refused = t
        .check_peer(&[der(&client.cert_pem)], Some("10.0.0.2:7002"))
        .unwrap_err();
    assert!(refused.contains("not a node certificate"), "{refused}");
    assert!(t.check_peer(&[], None).is_err());
    // A certificate with no extended key usage at all is not taken for a node's.
    let bare = ca
        .issue(&Subject {
            common_name: "no usage".into(),
            ips: vec![[10, 0, 0, 2].into()],
            ..Subject::default()
        })
        .unwrap();
    let bare = t.check_peer(&[der(&bare.cert_pem)], None).unwrap_err();
    assert!(bare.contains("not a node certificate"), "{bare}");
    // A node certificate of another CA (rustls refuses it first; checked here too).
    let stranger = Ca::generate("other")
        .unwrap()
        .issue(&Subject {
            common_name: "stranger".into(),
            ips: vec![[10, 0, 0, 2].into()],
            server: true,
            client: true,
            ..Subject::default()
        })
        .unwrap();
    assert!(t.check_peer(&[der(&stranger.cert_pem)], None).is_err());
}
