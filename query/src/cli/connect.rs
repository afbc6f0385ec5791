//! How `plumb` reaches the query service: TLS for an `https://` address
//! (trusting `--ca-file`, else the system's CAs), and the service's token
//! on every request (`--token-file`/`PLUMB_TOKEN_FILE`, else `PLUMB_TOKEN`).

use std::path::Path;

use anyhow::Context;
use plumbline_proto::v1::query_service_client::QueryServiceClient;
use tonic::{
    metadata::{Ascii, MetadataValue},
    service::{interceptor::InterceptedService, Interceptor},
    transport::{Certificate, Channel, ClientTlsConfig, Endpoint},
};

use super::Cli;

/// The environment variable holding the token itself.
pub const TOKEN_ENV: &str = "PLUMB_TOKEN";

/// A client of the query service that sends the token, if it has one.
pub type Client = QueryServiceClient<InterceptedService<Channel, Bearer>>;

/// Adds `authorization: Bearer <token>` to every request.
#[derive(Clone)]
pub struct Bearer(Option<MetadataValue<Ascii>>);

impl Interceptor for Bearer {
    fn call(&mut self, mut request: tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> {
        if let Some(value) = &self.0 {
            request.metadata_mut().insert("authorization", value.clone());
        }
        Ok(request)
    }
}

pub async fn connect(cli: &Cli) -> anyhow::Result<Client> {
    let bearer = Bearer(token(cli.token_file.as_deref())?);
    let mut endpoint = Endpoint::from_shared(cli.addr.clone())
        .with_context(|| format!("{} is not an address like http://127.0.0.1:50051", cli.addr))?;
    let https = cli.addr.starts_with("https://");
    match (&cli.ca_file, https) {
        (Some(ca_file), true) => {
            let pem = std::fs::read(ca_file).with_context(|| format!("reading --ca-file {}", ca_file.display()))?;
            endpoint = endpoint.tls_config(ClientTlsConfig::new().ca_certificate(Certificate::from_pem(pem)))?;
        }
        (None, true) => endpoint = endpoint.tls_config(ClientTlsConfig::new().with_native_roots())?,
        (Some(_), false) => anyhow::bail!("--ca-file is for TLS: give an https:// address ({})", cli.addr),
        (None, false) => {}
    }
    let channel = endpoint.connect().await.map_err(|e| {
        let cause = anyhow::Error::from(e);
        anyhow::anyhow!(
            "cannot reach the query service at {}: {cause:#} (is `plumbline run` or `plumbline query run` up? \
             does it serve TLS — then use https:// — or not?)",
            cli.addr,
        )
    })?;
    Ok(QueryServiceClient::with_interceptor(channel, bearer))
}

/// The token to send: the file's contents, else `PLUMB_TOKEN`, else none.
fn token(file: Option<&Path>) -> anyhow::Result<Option<MetadataValue<Ascii>>> {
    let text = match file {
        Some(file) => {
            std::fs::read_to_string(file).with_context(|| format!("reading --token-file {}", file.display()))?
        }
        None => std::env::var(TOKEN_ENV).unwrap_or_default(),
    };
    let text = text.trim();
    if text.is_empty() {
        return match file {
            Some(file) => Err(anyhow::anyhow!("--token-file {} is empty", file.display())),
            None => Ok(None),
        };
    }
    let value = format!("Bearer {text}")
        .parse()
        .map_err(|_| anyhow::anyhow!("the token must be visible ASCII without spaces (it travels in a header)"))?;
    Ok(Some(value))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_file_is_read_without_its_newline_and_an_empty_one_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("token");
        std::fs::write(&path, "abc123\n").unwrap();
        assert_eq!(token(Some(&path)).unwrap().unwrap(), "Bearer abc123");
        std::fs::write(&path, "\n").unwrap();
        assert!(token(Some(&path)).unwrap_err().to_string().contains("empty"));
    }
}
