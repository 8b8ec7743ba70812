//! TLS for every listener that has it: Redis clients on `tls_addr`, peers (`[tls] peers`,
//! mutual TLS) and HTTPS for `/metrics` (`[tls] metrics`), with rustls (ring, TLS 1.2/1.3, no
//! OpenSSL). This module owns reading the PEM files, building the rustls configurations, and
//! replacing them while the node runs (certificate rotation: `CONFIG SET tls-*` or SIGHUP);
//! `stream.rs` is the byte stream a session or a peer connection reads, plain or TLS; `cert.rs`
//! is `redraft cert`, which makes a CA and the certificates of a cluster.
//!
//! Invariants:
//! - **ReloadAllOrNothing.** A reload reads every file and builds every configuration first;
//!   only if all of them succeed does it replace the ones in use. A bad file leaves the node
//!   serving with the certificates it had, and the caller gets the reason.
//! - **NewHandshakesOnly.** A reload affects the handshakes that start after it; connections
//!   already established keep their session (as in Redis).
//! - **PeerNamesChecked.** The dialling side of a peer connection checks that the peer's
//!   certificate chains to the CA *and* names the IP address it dialled (the `raft_addr`); the
//!   accepting side checks that the dialler's certificate chains to the CA, and after the
//!   peer handshake (which tells it the dialler's node id) that it names that member's
//!   `raft_addr` IP, when the membership holds the node.
//! - **PeerIsANode.** The accepting side also requires the dialler's certificate to carry the
//!   serverAuth extended key usage, as node certificates do (`redraft cert` makes them for
//!   both uses) and client certificates (`client.crt`: clientAuth only) do not: a client
//!   certificate from the same CA cannot pass as a peer ([`TlsContext::check_peer`]).
//!
//! The cluster secret's handshake (`raft::handshake`), when a secret is set, runs inside the TLS
//! session as a second factor.

pub mod cert;
mod stream;

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::server::WebPkiClientVerifier;
use rustls::{ClientConfig, RootCertStore, ServerConfig, SupportedProtocolVersion};
use tokio_rustls::{TlsAcceptor, TlsConnector};

pub use stream::MaybeTls;

use crate::config::{parse_protocols, ClusterConfig, NodeConfig, TlsAuthClients};

/// Why TLS could not be set up, naming the setting and file at fault.
#[derive(Debug, thiserror::Error)]
#[error("{setting} {path}: {reason}")]
pub struct TlsError {
    /// The setting that names the file, e.g. `tls-cert-file`.
    pub setting: &'static str,
    pub path: String,
    pub reason: String,
}

fn tls_error(setting: &'static str, path: &Path, reason: impl ToString) -> TlsError {
    TlsError {
        setting,
        path: path.display().to_string(),
        reason: reason.to_string(),
    }
}

/// The files and choices a configuration is built from; `CONFIG SET tls-*` changes them.
#[derive(Clone, Debug)]
struct TlsFiles {
    cert: Option<PathBuf>,
    key: Option<PathBuf>,
    ca: Option<PathBuf>,
    auth_clients: TlsAuthClients,
    protocols: String,
}

/// Which listeners of this node speak TLS (fixed at start).
#[derive(Clone, Copy, Debug)]
struct Roles {
    clients: bool,
    peers: bool,
    https: bool,
}

/// The rustls configurations in use.
struct Built {
    clients: Option<Arc<ServerConfig>>,
    peer_server: Option<Arc<ServerConfig>>,
    /// The CA the peers' certificates chain to (with `peer_server`).
    peer_roots: Option<Arc<RootCertStore>>,
    peer_client: Option<Arc<ClientConfig>>,
    https: Option<Arc<ServerConfig>>,
}

/// One node's TLS: its configurations, swapped whole on reload (ReloadAllOrNothing).
pub struct TlsContext {
    roles: Roles,
    files: Mutex<TlsFiles>,
    built: RwLock<Arc<Built>>,
}

impl std::fmt::Debug for TlsContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsContext")
            .field("roles", &self.roles)
            .finish_non_exhaustive()
    }
}

/// The TLS settings `CONFIG GET`/`CONFIG SET` know, with Redis's names.
pub const CONFIG_PARAMS: &[&str] = &[
    "tls-cert-file",
    "tls-key-file",
    "tls-ca-cert-file",
    "tls-auth-clients",
    "tls-protocols",
];

impl TlsContext {
    /// The TLS of node `me` of `cfg`, or `None` when none of its listeners speaks TLS. Reads
    /// and checks every file now, so a bad one stops the node before it serves.
    pub fn load(cfg: &ClusterConfig, me: &NodeConfig) -> Result<Option<Arc<Self>>, TlsError> {
        let roles = Roles {
            clients: me.tls_addr.is_some(),
            peers: cfg.tls.peers,
            https: cfg.tls.metrics,
        };
        if !roles.clients && !roles.peers && !roles.https {
            return Ok(None);
        }
        let files = TlsFiles {
            cert: me.tls_cert_file.clone(),
            key: me.tls_key_file.clone(),
            ca: cfg.tls.ca_cert_file.clone(),
            auth_clients: cfg.tls.auth_clients,
            protocols: cfg
                .tls
                .protocols
                .clone()
                .unwrap_or_else(|| "TLSv1.2 TLSv1.3".into()),
        };
        let built = build(roles, &files)?;
        Ok(Some(Arc::new(Self {
            roles,
            files: Mutex::new(files),
            built: RwLock::new(Arc::new(built)),
        })))
    }

    fn current(&self) -> Arc<Built> {
        self.built.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Reads the files again and, if all of them are good, uses them for new handshakes
    /// (ReloadAllOrNothing, NewHandshakesOnly): SIGHUP, or a certificate rotation.
    pub fn reload(&self) -> Result<(), TlsError> {
        let files = self.files.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let built = build(self.roles, &files)?;
        *self.built.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(built);
        Ok(())
    }

    /// `CONFIG SET` of [`CONFIG_PARAMS`] (one or several, e.g. a new certificate and its key
    /// together): changes the settings and reloads; on any failure nothing changes (the old
    /// settings stay and so do the configurations in use). The error is `(param, reason)`.
    pub fn set(&self, changes: &[(&str, &str)]) -> Result<(), (String, String)> {
        let mut files = self.files.lock().unwrap_or_else(|e| e.into_inner());
        let mut next = files.clone();
        for &(param, value) in changes {
            let fail = |why: String| (param.to_string(), why);
            let path = || Some(PathBuf::from(value));
            match param.to_ascii_lowercase().as_str() {
                "tls-cert-file" => next.cert = path(),
                "tls-key-file" => next.key = path(),
                "tls-ca-cert-file" => next.ca = path(),
                "tls-auth-clients" => {
                    next.auth_clients = TlsAuthClients::parse(value).ok_or_else(|| {
                        fail("argument(s) must be one of the following: yes, no, optional".into())
                    })?
                }
                "tls-protocols" => {
                    parse_protocols(value).map_err(fail)?;
                    next.protocols = value.to_string();
                }
                _ => return Err(fail("unknown TLS setting".into())),
            }
        }
        let first = changes.first().map(|c| c.0.to_string()).unwrap_or_default();
        let built = build(self.roles, &next).map_err(|e| {
            tracing::warn!(error = %e, "TLS configuration not changed");
            (
                first.clone(),
                "Unable to update TLS configuration. Check server logs.".to_string(),
            )
        })?;
        *files = next;
        *self.built.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(built);
        Ok(())
    }

    /// `CONFIG GET` of one of [`CONFIG_PARAMS`].
    pub fn get(&self, param: &str) -> Option<String> {
        let files = self.files.lock().unwrap_or_else(|e| e.into_inner());
        let path = |p: &Option<PathBuf>| {
            p.as_ref()
                .map(|p| p.display().to_string())
                .unwrap_or_default()
        };
        Some(match param {
            "tls-cert-file" => path(&files.cert),
            "tls-key-file" => path(&files.key),
            "tls-ca-cert-file" => path(&files.ca),
            "tls-auth-clients" => files.auth_clients.to_string(),
            "tls-protocols" => files.protocols.clone(),
            _ => return None,
        })
    }

    /// Accepts Redis clients on `tls_addr`, if this node has one.
    pub fn client_acceptor(&self) -> Option<TlsAcceptor> {
        self.current().clients.clone().map(TlsAcceptor::from)
    }

    /// Accepts peers (mutual TLS), if `[tls] peers`.
    pub fn peer_acceptor(&self) -> Option<TlsAcceptor> {
        self.current().peer_server.clone().map(TlsAcceptor::from)
    }

    /// Dials peers (mutual TLS), if `[tls] peers`.
    pub fn peer_connector(&self) -> Option<TlsConnector> {
        self.current().peer_client.clone().map(TlsConnector::from)
    }

    /// Serves HTTPS on `metrics_addr`, if `[tls] metrics`.
    pub fn https_acceptor(&self) -> Option<TlsAcceptor> {
        self.current().https.clone().map(TlsAcceptor::from)
    }
}

/// The DER content of the serverAuth extended key usage's OID, 1.3.6.1.5.5.7.3.1.
const EKU_SERVER_AUTH: &[u8] = &[0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x03, 0x01];

impl TlsContext {
    /// Checks the certificate chain a dialling peer presented (already verified against the CA
    /// by the TLS handshake) once it has said which node it is: it must be a node certificate
    /// (serverAuth: PeerIsANode) and, when `member_raft_addr` (that node's `raft_addr` in the
    /// membership) is known, name its IP (PeerNamesChecked). `Err` says why, for the log.
    pub fn check_peer(
        &self,
        chain: &[CertificateDer<'static>],
        member_raft_addr: Option<&str>,
    ) -> Result<(), String> {
        let built = self.built.read().unwrap_or_else(|p| p.into_inner()).clone();
        let Some(roots) = built.peer_roots.as_ref() else {
            return Ok(());
        };
        let Some((end_entity, intermediates)) = chain.split_first() else {
            return Err("the peer presented no certificate".into());
        };
        let cert = webpki::EndEntityCert::try_from(end_entity)
            .map_err(|e| format!("the peer's certificate cannot be read: {e}"))?;
        let now = rustls::pki_types::UnixTime::now();
        cert.verify_for_usage(
            provider().signature_verification_algorithms.all,
            &roots.roots,
            intermediates,
            now,
            webpki::KeyUsage::required(EKU_SERVER_AUTH),
            None,
            None,
        )
        .map_err(|e| {
            format!(
                "the peer's certificate is not a node certificate (it must allow TLS server \
                 use, serverAuth, as `redraft cert` node certificates do; a client \
                 certificate is refused): {e}"
            )
        })?;
        if let Some(addr) = member_raft_addr {
            let name = peer_server_name(addr)?;
            cert.verify_is_valid_for_subject_name(&name).map_err(|e| {
                format!("the peer's certificate does not name its member address {addr}: {e}")
            })?;
        }
        Ok(())
    }
}

/// The name a peer's certificate must carry: the IP of the `raft_addr` dialled
/// (PeerNamesChecked).
pub fn peer_server_name(addr: &str) -> Result<ServerName<'static>, String> {
    let ip: IpAddr = addr
        .parse::<std::net::SocketAddr>()
        .map(|a| a.ip())
        .map_err(|e| format!("{addr}: {e}"))?;
    Ok(ServerName::IpAddress(ip.into()))
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn versions(protocols: &str) -> Result<Vec<&'static SupportedProtocolVersion>, TlsError> {
    let (v12, v13) = parse_protocols(protocols)
        .map_err(|e| tls_error("tls-protocols", Path::new(protocols), e))?;
    let mut v = Vec::new();
    if v13 {
        v.push(&rustls::version::TLS13);
    }
    if v12 {
        v.push(&rustls::version::TLS12);
    }
    Ok(v)
}

fn read_certs(
    setting: &'static str,
    path: &Path,
) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| tls_error(setting, path, pem_reason(e)))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| tls_error(setting, path, pem_reason(e)))?;
    if certs.is_empty() {
        return Err(tls_error(setting, path, "no PEM certificate in the file"));
    }
    Ok(certs)
}

fn pem_reason(e: rustls::pki_types::pem::Error) -> String {
    match e {
        rustls::pki_types::pem::Error::Io(io) => io.to_string(),
        other => format!("not a valid PEM file ({other:?})"),
    }
}

fn read_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    PrivateKeyDer::from_pem_file(path).map_err(|e| match e {
        rustls::pki_types::pem::Error::NoItemsFound => {
            tls_error("tls-key-file", path, "no PEM private key in the file")
        }
        e => tls_error("tls-key-file", path, pem_reason(e)),
    })
}

fn read_roots(path: &Path) -> Result<Arc<RootCertStore>, TlsError> {
    let mut roots = RootCertStore::empty();
    for cert in read_certs("tls-ca-cert-file", path)? {
        roots
            .add(cert)
            .map_err(|e| tls_error("tls-ca-cert-file", path, e))?;
    }
    Ok(Arc::new(roots))
}

/// Builds every configuration `roles` needs from `files`, or says which file is at fault.
fn build(roles: Roles, files: &TlsFiles) -> Result<Built, TlsError> {
    let missing = |setting: &'static str| TlsError {
        setting,
        path: String::new(),
        reason: "is not set".into(),
    };
    let cert_path = files
        .cert
        .as_deref()
        .ok_or_else(|| missing("tls-cert-file"))?;
    let key_path = files
        .key
        .as_deref()
        .ok_or_else(|| missing("tls-key-file"))?;
    let certs = read_certs("tls-cert-file", cert_path)?;
    let key = read_key(key_path)?;
    let roots = files.ca.as_deref().map(read_roots).transpose()?;
    let versions = versions(&files.protocols)?;
    let provider = provider();
    let server_builder = || {
        ServerConfig::builder_with_provider(provider.clone())
            .with_protocol_versions(&versions)
            .map_err(|e| tls_error("tls-protocols", Path::new(&files.protocols), e))
    };
    // The certificate and key are checked against each other here (a key of another
    // certificate is refused at load, not at the first handshake).
    let single = |b: rustls::ConfigBuilder<ServerConfig, rustls::server::WantsServerCert>| {
        b.with_single_cert(certs.clone(), key.clone_key())
            .map_err(|e| tls_error("tls-key-file", key_path, e))
    };
    let need_roots = |why: &str| {
        roots.clone().ok_or_else(|| TlsError {
            setting: "tls-ca-cert-file",
            path: String::new(),
            reason: format!("is not set, and {why} needs it"),
        })
    };
    let ca_path = files.ca.clone().unwrap_or_default();
    let client_verifier = |roots: Arc<RootCertStore>, optional: bool| {
        let b = WebPkiClientVerifier::builder_with_provider(roots, provider.clone());
        let b = if optional {
            b.allow_unauthenticated()
        } else {
            b
        };
        b.build()
            .map_err(|e| tls_error("tls-ca-cert-file", &ca_path, e))
    };

    let clients = if roles.clients {
        let b = server_builder()?;
        let mut c = match files.auth_clients {
            TlsAuthClients::No => single(b.with_no_client_auth())?,
            mode => {
                let v = client_verifier(
                    need_roots("tls-auth-clients")?,
                    mode == TlsAuthClients::Optional,
                )?;
                single(b.with_client_cert_verifier(v))?
            }
        };
        c.alpn_protocols.clear();
        Some(Arc::new(c))
    } else {
        None
    };
    let (peer_server, peer_client, peer_roots) = if roles.peers {
        let roots = need_roots("tls.peers")?;
        let v = client_verifier(roots.clone(), false)?;
        let server = single(server_builder()?.with_client_cert_verifier(v))?;
        let client = ClientConfig::builder_with_provider(provider.clone())
            .with_protocol_versions(&versions)
            .map_err(|e| tls_error("tls-protocols", Path::new(&files.protocols), e))?
            .with_root_certificates(roots.clone())
            .with_client_auth_cert(certs.clone(), key.clone_key())
            .map_err(|e| tls_error("tls-key-file", key_path, e))?;
        (Some(Arc::new(server)), Some(Arc::new(client)), Some(roots))
    } else {
        (None, None, None)
    };
    let https = if roles.https {
        Some(Arc::new(single(server_builder()?.with_no_client_auth())?))
    } else {
        None
    };
    Ok(Built {
        clients,
        peer_server,
        peer_client,
        peer_roots,
        https,
    })
}

#[cfg(test)]
mod tls_test;
