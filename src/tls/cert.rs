//! `redraft cert`: a CA and the certificates a cluster needs, made with rcgen (ECDSA P-256),
//! so the three-node example runs with TLS without an `openssl` recipe.
//!
//! From `cluster.toml` it writes, into one directory: `ca.crt`/`ca.key` (made once; an existing
//! pair is reused, so re-running issues new node certificates under the same CA: rotation),
//! `node<ID>.crt`/`node<ID>.key` for every `[[node]]`, naming every IP address of the node
//! (`raft_addr`, `redis_addr`, `tls_addr`, `metrics_addr`; a wildcard address names nothing),
//! 127.0.0.1, ::1 and `localhost`, valid for both TLS server and client use (peers are
//! both), and `client.crt`/`client.key`, a client certificate for `tls-auth-clients`. Keys are
//! written with mode 0600.

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, Certificate, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose, SanType,
};
use time::{Duration, OffsetDateTime};

use crate::config::ClusterConfig;

/// A certificate authority that can issue certificates.
pub struct Ca {
    cert: Certificate,
    key: KeyPair,
}

/// An issued certificate and its private key, both PEM.
pub struct Issued {
    pub cert_pem: String,
    pub key_pem: String,
}

/// What a certificate is for and whom it names.
#[derive(Clone, Debug, Default)]
pub struct Subject {
    pub common_name: String,
    pub ips: Vec<IpAddr>,
    pub dns: Vec<String>,
    /// Usable by a TLS server (serverAuth).
    pub server: bool,
    /// Usable by a TLS client (clientAuth).
    pub client: bool,
    /// Valid from `not_before` (default: an hour ago) ...
    pub not_before: Option<OffsetDateTime>,
    /// ... to `not_after` (default: in 365 days).
    pub not_after: Option<OffsetDateTime>,
}

fn ca_params(name: &str) -> CertificateParams {
    let mut p = CertificateParams::default();
    p.distinguished_name
        .push(DnType::CommonName, format!("redraft CA {name}"));
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    p.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let now = OffsetDateTime::now_utc();
    p.not_before = now - Duration::hours(1);
    p.not_after = now + Duration::days(3650);
    p
}

impl Ca {
    /// A new CA named after `name` (the cluster), valid for ten years.
    pub fn generate(name: &str) -> Result<Self, rcgen::Error> {
        let key = KeyPair::generate()?;
        let cert = ca_params(name).self_signed(&key)?;
        Ok(Self { cert, key })
    }

    /// The CA of an existing `ca.key`, made by [`Ca::generate`] for the same `name`: the
    /// certificates it issues chain to the `ca.crt` written then (same name, same key).
    pub fn from_key_pem(name: &str, key_pem: &str) -> Result<Self, rcgen::Error> {
        let key = KeyPair::from_pem(key_pem)?;
        let cert = ca_params(name).self_signed(&key)?;
        Ok(Self { cert, key })
    }

    pub fn cert_pem(&self) -> String {
        self.cert.pem()
    }

    pub fn key_pem(&self) -> String {
        self.key.serialize_pem()
    }

    /// Issues a certificate for `subject`, signed by this CA.
    pub fn issue(&self, subject: &Subject) -> Result<Issued, rcgen::Error> {
        let key = KeyPair::generate()?;
        let cert = subject_params(subject)?.signed_by(&key, &self.cert, &self.key)?;
        Ok(Issued {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        })
    }
}

/// A certificate for `subject` signed by its own key (no CA): what a TLS peer must refuse.
pub fn self_signed(subject: &Subject) -> Result<Issued, rcgen::Error> {
    let key = KeyPair::generate()?;
    let cert = subject_params(subject)?.self_signed(&key)?;
    Ok(Issued {
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
    })
}

fn subject_params(s: &Subject) -> Result<CertificateParams, rcgen::Error> {
    let mut p = CertificateParams::new(s.dns.clone())?;
    p.subject_alt_names
        .extend(s.ips.iter().map(|ip| SanType::IpAddress(*ip)));
    p.distinguished_name
        .push(DnType::CommonName, s.common_name.clone());
    p.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    if s.server {
        p.extended_key_usages
            .push(ExtendedKeyUsagePurpose::ServerAuth);
    }
    if s.client {
        p.extended_key_usages
            .push(ExtendedKeyUsagePurpose::ClientAuth);
    }
    let now = OffsetDateTime::now_utc();
    p.not_before = s.not_before.unwrap_or(now - Duration::hours(1));
    p.not_after = s.not_after.unwrap_or(now + Duration::days(365));
    Ok(p)
}

/// The IP addresses a node's certificate names: every concrete address of the node, and
/// loopback.
pub fn node_ips(addrs: &[Option<&str>]) -> Vec<IpAddr> {
    let mut ips: Vec<IpAddr> = vec![
        IpAddr::from([127, 0, 0, 1]),
        IpAddr::from(std::net::Ipv6Addr::LOCALHOST),
    ];
    for a in addrs.iter().flatten() {
        if let Ok(sa) = a.parse::<SocketAddr>() {
            if !sa.ip().is_unspecified() && !ips.contains(&sa.ip()) {
                ips.push(sa.ip());
            }
        }
    }
    ips
}

/// What `redraft cert` wrote.
pub struct Written {
    pub files: Vec<PathBuf>,
    pub reused_ca: bool,
}

/// Writes `contents` to `path`; with `private`, readable by the owner only.
fn write(path: &Path, contents: &str, private: bool) -> std::io::Result<()> {
    use std::io::Write;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    if private {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts.open(path)?;
    f.write_all(contents.as_bytes())?;
    f.sync_all()
}

/// `redraft cert --config FILE --out DIR [--days N]`.
pub fn write_cluster_certs(cfg: &ClusterConfig, out: &Path, days: i64) -> Result<Written, String> {
    let err = |p: &Path, e: &dyn std::fmt::Display| format!("{}: {e}", p.display());
    std::fs::create_dir_all(out).map_err(|e| err(out, &e))?;
    let name = &cfg.cluster.name;
    let (ca_crt, ca_key) = (out.join("ca.crt"), out.join("ca.key"));
    let mut files = Vec::new();
    let reused_ca = ca_key.exists();
    let ca = if reused_ca {
        let pem = std::fs::read_to_string(&ca_key).map_err(|e| err(&ca_key, &e))?;
        Ca::from_key_pem(name, &pem).map_err(|e| err(&ca_key, &e))?
    } else {
        let ca = Ca::generate(name).map_err(|e| err(&ca_key, &e))?;
        write(&ca_key, &ca.key_pem(), true).map_err(|e| err(&ca_key, &e))?;
        write(&ca_crt, &ca.cert_pem(), false).map_err(|e| err(&ca_crt, &e))?;
        files.extend([ca_crt.clone(), ca_key.clone()]);
        ca
    };
    let until = Some(OffsetDateTime::now_utc() + Duration::days(days));
    let mut issue = |stem: String, subject: Subject| -> Result<(), String> {
        let issued = ca.issue(&subject).map_err(|e| err(out, &e))?;
        let (crt, key) = (
            out.join(format!("{stem}.crt")),
            out.join(format!("{stem}.key")),
        );
        write(&key, &issued.key_pem, true).map_err(|e| err(&key, &e))?;
        write(&crt, &issued.cert_pem, false).map_err(|e| err(&crt, &e))?;
        files.extend([crt, key]);
        Ok(())
    };
    for node in &cfg.nodes {
        let ips = node_ips(&[
            Some(&node.raft_addr),
            Some(&node.redis_addr),
            node.tls_addr.as_deref(),
            node.metrics_addr.as_deref(),
        ]);
        issue(
            format!("node{}", node.id),
            Subject {
                common_name: format!("redraft {name} node {}", node.id),
                ips,
                dns: vec!["localhost".into()],
                server: true,
                client: true,
                not_after: until,
                ..Subject::default()
            },
        )?;
    }
    issue(
        "client".into(),
        Subject {
            common_name: format!("redraft {name} client"),
            client: true,
            not_after: until,
            ..Subject::default()
        },
    )?;
    Ok(Written { files, reused_ca })
}
