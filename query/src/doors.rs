//! The query service's doors — gRPC and the dashboard on one address — and
//! what locks them: `[access]` (a token every request must carry) and
//! `[tls]` (certificate files). Both `query.toml` and `plumbline.toml` hold
//! these two sections. Captured prompts and completions are behind these
//! doors, so a service listening anywhere but loopback refuses to start
//! without a token.

use std::{
    net::SocketAddr,
    os::unix::fs::PermissionsExt,
    path::{Path, PathBuf},
    sync::Arc,
};

use plumbline_config::{invalid, ConfigError};
use serde::{Deserialize, Serialize};

use crate::access::Token;

/// `[access]`: who may use the query service (gRPC and the dashboard).
#[derive(Debug, Clone, Default, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct AccessConfig {
    /// File holding the token every request must carry: `authorization:
    /// Bearer <token>` on gRPC and HTTP, or the session cookie the
    /// dashboard's login form sets. Required when `listen` is not a loopback
    /// address. The file must be non-empty and not readable by others
    /// (mode 0600 or 0640). Default: none, every request is answered (only
    /// allowed on loopback).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token_file: Option<PathBuf>,
}

/// `[tls]`: serve TLS on the query service's address (gRPC and the
/// dashboard alike; plain HTTP is then refused).
#[derive(Debug, Clone, Default, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct TlsConfig {
    /// PEM certificate chain, the service's own certificate first. Default:
    /// none, plain HTTP.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cert_file: Option<PathBuf>,
    /// PEM private key of `cert_file`, not readable by others. Set with
    /// `cert_file` or not at all.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key_file: Option<PathBuf>,
}

/// What the doors need at run time: the token (if any) and the TLS
/// identity (if any), read from the configured files.
#[derive(Clone, Default)]
pub struct Doors {
    pub token: Option<Arc<Token>>,
    /// (certificate chain, private key), PEM.
    pub tls: Option<(Vec<u8>, Vec<u8>)>,
}

impl std::fmt::Debug for Doors {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Doors").field("token", &self.token.is_some()).field("tls", &self.tls.is_some()).finish()
    }
}

/// Checks what can be checked without reading files (`validate`): a
/// listener off loopback needs a token, and TLS needs both files.
pub fn check(listen: SocketAddr, access: &AccessConfig, tls: &TlsConfig) -> Result<(), ConfigError> {
    if !is_loopback(listen) && access.token_file.is_none() {
        return Err(invalid(
            "access.token_file",
            format!(
                "must be set: `listen` ({listen}) is not a loopback address, and the query service shows captured \
                 prompts and completions to whoever reaches it (or listen on 127.0.0.1)"
            ),
        ));
    }
    match (&tls.cert_file, &tls.key_file) {
        (Some(_), None) => Err(invalid("tls.key_file", "must be set with tls.cert_file")),
        (None, Some(_)) => Err(invalid("tls.cert_file", "must be set with tls.key_file")),
        _ => Ok(()),
    }
}

impl Doors {
    /// Reads the token and certificate files, refusing (and naming the key)
    /// a file that is missing, empty, or readable by every user.
    pub fn load(listen: SocketAddr, access: &AccessConfig, tls: &TlsConfig) -> Result<Self, ConfigError> {
        check(listen, access, tls)?;
        let token = match &access.token_file {
            Some(path) => {
                let text = read_secret("access.token_file", path)?;
                let token = Token::new(text.trim())
                    .map_err(|why| invalid("access.token_file", format!("{}: {why}", path.display())))?;
                Some(Arc::new(token))
            }
            None => None,
        };
        let tls = match (&tls.cert_file, &tls.key_file) {
            (Some(cert_file), Some(key_file)) => {
                let cert = std::fs::read(cert_file)
                    .map_err(|e| invalid("tls.cert_file", format!("{}: {e}", cert_file.display())))?;
                let key = read_secret("tls.key_file", key_file)?.into_bytes();
                let identity = tonic::transport::Identity::from_pem(&cert, &key);
                // tonic parses the pair only when the server is built: build
                // one now, so a bad file is refused before anything listens.
                tonic::transport::Server::builder()
                    .tls_config(tonic::transport::ServerTlsConfig::new().identity(identity))
                    .map_err(|e| {
                        let cause = anyhow::Error::from(e);
                        invalid(
                            "tls.cert_file",
                            format!(
                                "{} with tls.key_file {} is not a usable certificate and key: {cause:#}",
                                cert_file.display(),
                                key_file.display(),
                            ),
                        )
                    })?;
                Some((cert, key))
            }
            _ => None,
        };
        Ok(Doors { token, tls })
    }

    /// Whether the address serves TLS.
    pub fn tls(&self) -> bool {
        self.tls.is_some()
    }
}

/// Loopback, including an IPv4 loopback address written as IPv6.
pub fn is_loopback(addr: SocketAddr) -> bool {
    addr.ip().to_canonical().is_loopback()
}

/// A secret file's text. Refused when missing, empty, or readable by every
/// user of the host: that would hand the dashboard (and every prompt it
/// shows) to any local account. Readable by a group is allowed, so a
/// deployment can share it with an operators' group (mode 0640).
fn read_secret(key: &str, path: &Path) -> Result<String, ConfigError> {
    let metadata = std::fs::metadata(path).map_err(|e| invalid(key, format!("{}: {e}", path.display())))?;
    let mode = metadata.permissions().mode();
    if mode & 0o004 != 0 {
        return Err(invalid(
            key,
            format!(
                "{} is readable by every user (mode {:04o}): any local account could read it; chmod o-r it \
                 (0600 or 0640)",
                path.display(),
                mode & 0o7777
            ),
        ));
    }
    let text = std::fs::read_to_string(path).map_err(|e| invalid(key, format!("{}: {e}", path.display())))?;
    if text.trim().is_empty() {
        return Err(invalid(key, format!("{} is empty", path.display())));
    }
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret(dir: &Path, text: &str, mode: u32) -> PathBuf {
        let path = dir.join("token");
        std::fs::write(&path, text).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
        path
    }

    fn access(path: &Path) -> AccessConfig {
        AccessConfig { token_file: Some(path.to_path_buf()) }
    }

    #[test]
    fn loopback_needs_no_token_and_any_other_address_does() {
        let none = AccessConfig::default();
        for open in ["127.0.0.1:1", "[::1]:1", "[::ffff:127.0.0.1]:1"] {
            check(open.parse().unwrap(), &none, &TlsConfig::default()).unwrap();
        }
        for exposed in ["0.0.0.0:1", "10.1.2.3:1", "[::]:1"] {
            let err = check(exposed.parse().unwrap(), &none, &TlsConfig::default()).unwrap_err().to_string();
            assert!(err.contains("access.token_file"), "{err}");
        }
    }

    #[test]
    fn a_token_file_missing_empty_or_readable_by_all_is_refused_naming_the_key() {
        let dir = tempfile::tempdir().unwrap();
        let listen = "0.0.0.0:1".parse().unwrap();
        let missing = access(&dir.path().join("nothing"));
        let err = Doors::load(listen, &missing, &TlsConfig::default()).unwrap_err().to_string();
        assert!(err.contains("access.token_file") && err.contains("nothing"), "{err}");

        let empty = secret(dir.path(), "\n", 0o600);
        let err = Doors::load(listen, &access(&empty), &TlsConfig::default()).unwrap_err().to_string();
        assert!(err.contains("access.token_file") && err.contains("empty"), "{err}");

        let open = secret(dir.path(), "s3cret-token-value\n", 0o644);
        let err = Doors::load(listen, &access(&open), &TlsConfig::default()).unwrap_err().to_string();
        assert!(err.contains("access.token_file") && err.contains("readable by every user"), "{err}");

        let good = secret(dir.path(), "s3cret-token-value\n", 0o640);
        let doors = Doors::load(listen, &access(&good), &TlsConfig::default()).unwrap();
        assert!(doors.token.unwrap().matches(b"s3cret-token-value"), "the trailing newline is not the token's");
    }

    #[test]
    fn tls_needs_both_files() {
        let listen = "127.0.0.1:1".parse().unwrap();
        let half = TlsConfig { cert_file: Some("/c.pem".into()), key_file: None };
        let err = check(listen, &AccessConfig::default(), &half).unwrap_err().to_string();
        assert!(err.contains("tls.key_file"), "{err}");
    }
}
