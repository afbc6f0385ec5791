//! A certificate authority made at start, and a server certificate it signs for `localhost`, `127.0.0.1` and any
//! further names asked for.

use std::sync::Arc;

use anyhow::Context;
use rcgen::{
    date_time_ymd, BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

pub struct Certs {
    /// The CA certificate, PEM: what clients trust.
    pub ca_pem: String,
    pub server_config: Arc<rustls::ServerConfig>,
}

fn name(common_name: &str) -> DistinguishedName {
    let mut name = DistinguishedName::new();
    name.push(DnType::OrganizationName, "Plumbline LLM fixture");
    name.push(DnType::CommonName, common_name);
    name
}

/// `extra_names`: host names (or addresses) the server certificate names besides `localhost` and `127.0.0.1`.
pub fn make(extra_names: &[String]) -> anyhow::Result<Certs> {
    let ca_key = KeyPair::generate().context("CA key")?;
    let mut ca = CertificateParams::new(Vec::<String>::new())?;
    ca.distinguished_name = name("Plumbline LLM fixture CA");
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign, KeyUsagePurpose::DigitalSignature];
    ca.not_before = date_time_ymd(2025, 1, 1);
    ca.not_after = date_time_ymd(2045, 1, 1);
    let ca_cert = ca.self_signed(&ca_key).context("CA certificate")?;
    let issuer = Issuer::new(ca, ca_key);

    let server_key = KeyPair::generate().context("server key")?;
    let mut names = vec!["localhost".to_owned(), "127.0.0.1".to_owned()];
    names.extend(extra_names.iter().cloned());
    let mut server = CertificateParams::new(names)?;
    server.distinguished_name = name("localhost");
    server.key_usages = vec![KeyUsagePurpose::DigitalSignature, KeyUsagePurpose::KeyEncipherment];
    server.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    server.use_authority_key_identifier_extension = true;
    server.not_before = date_time_ymd(2025, 1, 1);
    server.not_after = date_time_ymd(2045, 1, 1);
    let server_cert = server.signed_by(&server_key, &issuer).context("server certificate")?;

    let chain: Vec<CertificateDer<'static>> = vec![server_cert.der().clone(), ca_cert.der().clone()];
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(server_key.serialize_der()));
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .context("TLS versions")?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .context("server certificate and key")?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Certs { ca_pem: ca_cert.pem(), server_config: Arc::new(config) })
}
