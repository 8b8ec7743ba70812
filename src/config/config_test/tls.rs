//! The `[tls]` section and the TLS fields of a node (TlsComplete): what each listener needs,
//! refused before anything starts, naming the field.

use super::*;

/// BASE with node 1 serving TLS clients, plus `extra`.
fn with_tls_node(node_fields: &str, extra: &str) -> String {
    let text = BASE.replacen(
        "data_dir = \"data/node1\"\n",
        &format!("data_dir = \"data/node1\"\n{node_fields}"),
        1,
    );
    format!("{text}\n{extra}")
}

const CERT: &str = "tls_cert_file = \"n1.crt\"\ntls_key_file = \"n1.key\"\n";

#[test]
fn tls_is_off_by_default() {
    let c = must_parse(BASE);
    assert_eq!(c.tls, TlsSection::default());
    assert_eq!(c.tls.auth_clients, TlsAuthClients::Yes, "Redis's default");
    assert!(c.nodes.iter().all(|n| n.tls_addr.is_none()));
}

#[test]
fn a_tls_port_needs_a_certificate_a_key_and_for_client_certificates_a_ca() {
    let addr = "tls_addr = \"127.0.0.1:6391\"\n";
    must_be_invalid(
        &with_tls_node(addr, ""),
        "tls.ca_cert_file",
        "auth_clients checks client certificates",
    );
    must_be_invalid(
        &with_tls_node(addr, "[tls]\nauth_clients = \"no\"\n"),
        "node[0].tls_cert_file",
        "is required",
    );
    must_be_invalid(
        &with_tls_node(
            &format!("{addr}tls_cert_file = \"n1.crt\"\n"),
            "[tls]\nauth_clients = \"no\"\n",
        ),
        "node[0].tls_key_file",
        "is required",
    );
    let c = must_parse(&with_tls_node(
        &format!("{addr}{CERT}"),
        "[tls]\nauth_clients = \"no\"\n",
    ));
    assert_eq!(c.nodes[0].tls_addr.as_deref(), Some("127.0.0.1:6391"));
    must_parse(&with_tls_node(
        &format!("{addr}{CERT}"),
        "[tls]\nca_cert_file = \"ca.crt\"\nauth_clients = \"optional\"\n",
    ));
    must_be_invalid(
        &with_tls_node(
            "tls_addr = \"127.0.0.1:6381\"\n",
            "[tls]\nauth_clients = \"no\"\n",
        ),
        "node[0].tls_addr",
        "already used by node[0].redis_addr",
    );
    must_not_parse(
        &with_tls_node(addr, "[tls]\nauth_clients = \"maybe\"\n"),
        &["auth_clients"],
    );
}

#[test]
fn peer_tls_needs_every_node_certified_and_replaces_the_secret_off_loopback() {
    must_be_invalid(
        &with_tls_node(CERT, "[tls]\npeers = true\n"),
        "tls.ca_cert_file",
        "peers = true",
    );
    must_be_invalid(
        &with_tls_node(CERT, "[tls]\npeers = true\nca_cert_file = \"ca.crt\"\n"),
        "node[1].tls_cert_file",
        "is required",
    );
    // Off loopback, mutual TLS authenticates the peers: no secret is required.
    let off_loopback = BASE.replace("127.0.0.1:71", "10.0.0.1:71");
    must_be_invalid(&off_loopback, "cluster.secret", "is required");
    let certs: String = (1..=3)
        .map(|i| {
            format!(
                "data_dir = \"data/node{i}\"\ntls_cert_file = \"n{i}.crt\"\ntls_key_file = \"n{i}.key\"\n"
            )
        })
        .fold(off_loopback, |text, with| {
            let plain = with.lines().next().unwrap().to_string() + "\n";
            text.replacen(&plain, &with, 1)
        });
    let c = must_parse(&format!(
        "{certs}\n[tls]\npeers = true\nca_cert_file = \"ca.crt\"\n"
    ));
    assert!(c.tls.peers);
    assert_eq!(c.cluster.secret, None);
}

#[test]
fn protocols_are_tls_1_2_and_1_3_only() {
    let tls = |p: &str| {
        with_tls_node(
            &format!("tls_addr = \"127.0.0.1:6391\"\n{CERT}"),
            &format!("[tls]\nauth_clients = \"no\"\nprotocols = {p:?}\n"),
        )
    };
    must_parse(&tls("TLSv1.3"));
    must_parse(&tls("TLSv1.2 TLSv1.3"));
    must_be_invalid(&tls("TLSv1.1"), "tls.protocols", "TLS 1.2 and 1.3 only");
    must_be_invalid(&tls("SSLv3"), "tls.protocols", "is not a TLS version");
    must_be_invalid(&tls(""), "tls.protocols", "names no TLS version");
}
