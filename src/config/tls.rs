//! The `[tls]` section and the TLS fields of a `[[node]]`: what cluster.toml says about TLS,
//! checked before anything starts (ValidBeforeUse). Reading the files and building the
//! rustls configurations is `crate::tls`'s; this file only names what must be present.
//!
//! Names follow Redis where Redis has the setting: `tls_addr` is Redis's `tls-port`,
//! `tls_cert_file`/`tls_key_file`/`ca_cert_file` its `tls-cert-file`, `tls-key-file` and
//! `tls-ca-cert-file`, `auth_clients` its `tls-auth-clients`, `protocols` its `tls-protocols`.

use std::fmt;
use std::path::PathBuf;

use serde::Deserialize;

use super::{invalid, ClusterConfig, ConfigError};

/// `[tls]`: the cluster-wide TLS settings. Each node's certificate is in its `[[node]]`.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct TlsSection {
    /// The CA (PEM, one or more certificates) that client certificates (`auth_clients`) and
    /// the peers' certificates (`peers`) must chain to.
    pub ca_cert_file: Option<PathBuf>,
    /// Whether a TLS client must present a certificate signed by `ca_cert_file` (Redis's
    /// `tls-auth-clients`; `yes` by default, as in Redis).
    pub auth_clients: TlsAuthClients,
    /// Peer traffic over mutual TLS: every node presents its certificate and checks the other
    /// side's against `ca_cert_file`; the dialling node also checks that the certificate names
    /// the IP of the `raft_addr` it dialled. All nodes must agree (a plain-text peer cannot
    /// talk to a TLS one).
    pub peers: bool,
    /// `/metrics`, `/health` and `/ready` over HTTPS (with the node's certificate; client
    /// certificates are not asked for).
    pub metrics: bool,
    /// The TLS versions offered, as Redis's `tls-protocols`: "TLSv1.2", "TLSv1.3" or both,
    /// space separated. Default: both.
    pub protocols: Option<String>,
}

/// Redis's `tls-auth-clients`.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum TlsAuthClients {
    /// A client must present a certificate the CA signed (mutual TLS).
    #[default]
    Yes,
    /// No client certificate is asked for.
    No,
    /// A client may present one; if it does, it must be valid.
    Optional,
}

impl TlsAuthClients {
    /// Parses Redis's `CONFIG SET tls-auth-clients` values.
    pub fn parse(s: &str) -> Option<Self> {
        match s.to_ascii_lowercase().as_str() {
            "yes" => Some(Self::Yes),
            "no" => Some(Self::No),
            "optional" => Some(Self::Optional),
            _ => None,
        }
    }
}

impl fmt::Display for TlsAuthClients {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Yes => "yes",
            Self::No => "no",
            Self::Optional => "optional",
        })
    }
}

/// The TLS versions of a `protocols` string, or why it is refused.
pub fn parse_protocols(s: &str) -> Result<(bool, bool), String> {
    let (mut v12, mut v13) = (false, false);
    for word in s.split_whitespace() {
        match word.to_ascii_lowercase().as_str() {
            "tlsv1.2" => v12 = true,
            "tlsv1.3" => v13 = true,
            "tlsv1" | "tlsv1.1" => {
                return Err(format!("{word} is not offered: TLS 1.2 and 1.3 only"));
            }
            _ => return Err(format!("{word:?} is not a TLS version (TLSv1.2, TLSv1.3)")),
        }
    }
    if !v12 && !v13 {
        return Err("names no TLS version (TLSv1.2, TLSv1.3)".into());
    }
    Ok((v12, v13))
}

impl ClusterConfig {
    /// Whether node `i` needs its own certificate: it serves TLS clients, TLS peers or HTTPS.
    fn node_needs_cert(&self, i: usize) -> bool {
        self.nodes[i].tls_addr.is_some() || self.tls.peers || self.tls.metrics
    }

    /// **TlsComplete.** Every TLS listener has what its handshake needs: a node serving TLS has
    /// a certificate and a key; mutual TLS (peers, or clients with `auth_clients` other than
    /// `no`) has a CA. Whether the files exist and parse is checked when the node starts.
    pub(super) fn validate_tls(&self) -> Result<(), ConfigError> {
        if let Some(p) = &self.tls.protocols {
            parse_protocols(p).map_err(|e| invalid("tls.protocols", e))?;
        }
        let clients_need_ca = self.tls.auth_clients != TlsAuthClients::No
            && self.nodes.iter().any(|n| n.tls_addr.is_some());
        if (self.tls.peers || clients_need_ca) && self.tls.ca_cert_file.is_none() {
            let why = if self.tls.peers {
                "peers = true"
            } else {
                "auth_clients checks client certificates"
            };
            return Err(invalid(
                "tls.ca_cert_file",
                format!("is required: {why} (set auth_clients = \"no\" for server-only TLS)"),
            ));
        }
        for (i, node) in self.nodes.iter().enumerate() {
            let needs = self.node_needs_cert(i);
            for (name, v) in [
                ("tls_cert_file", &node.tls_cert_file),
                ("tls_key_file", &node.tls_key_file),
            ] {
                if needs && v.is_none() {
                    return Err(invalid(
                        format!("node[{i}].{name}"),
                        "is required: this node serves TLS (tls_addr, tls.peers or tls.metrics)",
                    ));
                }
                if v.as_ref().is_some_and(|p| p.as_os_str().is_empty()) {
                    return Err(invalid(format!("node[{i}].{name}"), "must not be empty"));
                }
            }
        }
        Ok(())
    }
}
