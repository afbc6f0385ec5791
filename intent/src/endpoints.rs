//! Which captured exchanges are LLM calls: a catalog of endpoints, each a
//! host and a path prefix that a provider serves in one wire format.
//!
//! Capture sees every TLS connection a process makes; only requests to a
//! known endpoint are read as LLM calls, so a package download or a git
//! fetch is never mistaken for one. The defaults hold the public APIs of the
//! providers Plumbline knows; configuration adds more (a gateway, a
//! self-hosted server, a new provider) as [`Endpoint`] entries, which are
//! consulted before the defaults.

use serde::{Deserialize, Serialize};

use crate::llm::Format;

/// One endpoint, as configuration writes it:
///
/// ```toml
/// [[llm.endpoints]]
/// provider = "internal-gateway"
/// host = "*.llm.corp.example"
/// path_prefix = "/v1/chat/completions"
/// format = "openai_chat"
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Endpoint {
    /// Who serves it: "openai", "anthropic", ...
    pub provider: String,
    /// An exact host name, `*.suffix` for every name under `suffix` (not
    /// `suffix` itself), or `*` for any host. Matched against the TLS server name or the Host
    /// header, without regard to case or port.
    pub host: String,
    /// The request path starts with this, ending at a path segment (`/v1/chat`
    /// matches `/v1/chat` and `/v1/chat/x`, not `/v1/chatter`); the query
    /// string is not part of the path.
    pub path_prefix: String,
    /// The wire format the endpoint speaks.
    pub format: Format,
}

impl Endpoint {
    pub fn new(provider: &str, host: &str, path_prefix: &str, format: Format) -> Self {
        Self { provider: provider.to_string(), host: host.to_string(), path_prefix: path_prefix.to_string(), format }
    }

    /// `host` is already lower-case and without its port.
    fn matches_host(&self, host: &str) -> bool {
        if self.host == "*" {
            return true;
        }
        match self.host.strip_prefix("*.") {
            Some(suffix) => {
                let suffix = suffix.trim_end_matches('.');
                let Some(dot) = host.len().checked_sub(suffix.len() + 1) else { return false };
                dot > 0
                    && host.get(dot..=dot) == Some(".")
                    && host.get(dot + 1..).is_some_and(|tail| tail.eq_ignore_ascii_case(suffix))
            }
            None => host.eq_ignore_ascii_case(self.host.trim_end_matches('.')),
        }
    }

    fn matches_path(&self, path: &str) -> bool {
        let prefix = self.path_prefix.as_str();
        let Some(rest) = path.strip_prefix(prefix) else { return false };
        // Gemini's `models/{model}:method` ends a segment with a colon.
        prefix.ends_with('/') || rest.is_empty() || rest.starts_with(['/', ':'])
    }
}

/// The endpoints to recognise, searched in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndpointCatalog {
    pub endpoints: Vec<Endpoint>,
}

impl Default for EndpointCatalog {
    /// The providers' public API hosts and paths.
    fn default() -> Self {
        use Format::*;
        let mut endpoints = Vec::new();
        let mut add = |provider: &str, hosts: &[&str], paths: &[(&str, Format)]| {
            for host in hosts {
                for (path, format) in paths {
                    endpoints.push(Endpoint::new(provider, host, path, *format));
                }
            }
        };
        add(
            "openai",
            &["api.openai.com"],
            &[
                ("/v1/chat/completions", OpenAiChat),
                ("/v1/responses", OpenAiResponses),
                ("/v1/embeddings", OpenAiEmbeddings),
            ],
        );
        add("anthropic", &["api.anthropic.com"], &[("/v1/messages", AnthropicMessages)]);
        add(
            "gemini",
            &["generativelanguage.googleapis.com"],
            &[
                ("/v1beta/models/", Gemini),
                ("/v1/models/", Gemini),
                ("/v1alpha/models/", Gemini),
                // Gemini's OpenAI-compatible API.
                ("/v1beta/openai/chat/completions", OpenAiChat),
                ("/v1beta/openai/embeddings", OpenAiEmbeddings),
            ],
        );
        add(
            "cohere",
            &["api.cohere.com", "api.cohere.ai"],
            &[
                ("/v2/chat", CohereChat),
                ("/v1/chat", CohereChatV1),
                // Cohere's OpenAI-compatible API.
                ("/compatibility/v1/chat/completions", OpenAiChat),
            ],
        );
        add(
            "mistral",
            &["api.mistral.ai"],
            &[
                ("/v1/chat/completions", OpenAiChat),
                ("/v1/agents/completions", OpenAiChat),
                ("/v1/embeddings", OpenAiEmbeddings),
            ],
        );
        add(
            "together",
            &["api.together.xyz", "api.together.ai"],
            &[("/v1/chat/completions", OpenAiChat), ("/v1/embeddings", OpenAiEmbeddings)],
        );
        add(
            "groq",
            &["api.groq.com"],
            &[("/openai/v1/chat/completions", OpenAiChat), ("/openai/v1/responses", OpenAiResponses)],
        );
        add(
            "fireworks",
            &["api.fireworks.ai"],
            &[
                ("/inference/v1/chat/completions", OpenAiChat),
                ("/inference/v1/responses", OpenAiResponses),
                ("/inference/v1/embeddings", OpenAiEmbeddings),
            ],
        );
        add(
            "perplexity",
            &["api.perplexity.ai"],
            &[
                ("/chat/completions", OpenAiChat),
                ("/v1/chat/completions", OpenAiChat),
                // The Agent API, and its OpenAI-compatible alias.
                ("/v1/agent", OpenAiResponses),
                ("/v1/responses", OpenAiResponses),
            ],
        );
        Self { endpoints }
    }
}

impl EndpointCatalog {
    /// The defaults with configured endpoints before them: on an equal
    /// match, a configured entry wins.
    pub fn with_extra(extra: Vec<Endpoint>) -> Self {
        let mut endpoints = extra;
        endpoints.extend(Self::default().endpoints);
        Self { endpoints }
    }

    /// The endpoint a request to `host` (a server name or Host header, with
    /// or without port) for `target` (its path, or an absolute URL, with or
    /// without a query) goes to: of those matching, the longest path prefix,
    /// then the first.
    pub fn find(&self, host: &str, target: &str) -> Option<&Endpoint> {
        let host = bare_host(host);
        let path = path_of(target);
        let mut best: Option<&Endpoint> = None;
        for endpoint in &self.endpoints {
            if endpoint.matches_host(&host)
                && endpoint.matches_path(path)
                && best.is_none_or(|b| endpoint.path_prefix.len() > b.path_prefix.len())
            {
                best = Some(endpoint);
            }
        }
        best
    }
}

/// `host` lower-case, without port, brackets or a trailing dot.
fn bare_host(host: &str) -> String {
    let host = host.trim();
    let host = match host.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or_default(),
        // One colon is a port; more are an IPv6 address.
        None if host.matches(':').count() == 1 => host.split(':').next().unwrap_or_default(),
        None => host,
    };
    host.trim_end_matches('.').to_ascii_lowercase()
}

/// The path of a request target: origin form (`/p?q`) or absolute form
/// (`https://host/p?q`, as sent to proxies).
fn path_of(target: &str) -> &str {
    let target = match target.split_once("://") {
        Some((scheme, rest)) if !scheme.contains('/') => rest.find('/').map_or("/", |at| &rest[at..]),
        _ => target,
    };
    target.split(['?', '#']).next().unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_providers_apis_are_known_by_host_and_path() {
        let catalog = EndpointCatalog::default();
        let found = |host: &str, target: &str| catalog.find(host, target).map(|e| (e.provider.as_str(), e.format));
        assert_eq!(found("api.openai.com", "/v1/chat/completions"), Some(("openai", Format::OpenAiChat)));
        assert_eq!(found("API.OpenAI.com:443", "/v1/responses?stream=true"), Some(("openai", Format::OpenAiResponses)));
        assert_eq!(found("api.openai.com", "/v1/embeddings"), Some(("openai", Format::OpenAiEmbeddings)));
        assert_eq!(found("api.anthropic.com", "/v1/messages"), Some(("anthropic", Format::AnthropicMessages)));
        assert_eq!(
            found("generativelanguage.googleapis.com", "/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse"),
            Some(("gemini", Format::Gemini))
        );
        assert_eq!(
            found("generativelanguage.googleapis.com", "/v1beta/openai/chat/completions"),
            Some(("gemini", Format::OpenAiChat))
        );
        assert_eq!(found("api.cohere.com", "/v2/chat"), Some(("cohere", Format::CohereChat)));
        assert_eq!(found("api.cohere.ai", "/v1/chat"), Some(("cohere", Format::CohereChatV1)));
        assert_eq!(found("api.mistral.ai", "/v1/chat/completions"), Some(("mistral", Format::OpenAiChat)));
        assert_eq!(found("api.together.xyz", "/v1/chat/completions"), Some(("together", Format::OpenAiChat)));
        assert_eq!(found("api.together.ai", "/v1/embeddings"), Some(("together", Format::OpenAiEmbeddings)));
        assert_eq!(found("api.groq.com", "/openai/v1/chat/completions"), Some(("groq", Format::OpenAiChat)));
        assert_eq!(
            found("api.fireworks.ai", "/inference/v1/chat/completions"),
            Some(("fireworks", Format::OpenAiChat))
        );
        assert_eq!(found("api.perplexity.ai", "/chat/completions"), Some(("perplexity", Format::OpenAiChat)));
        assert_eq!(
            found("api.openai.com", "https://api.openai.com/v1/chat/completions"),
            Some(("openai", Format::OpenAiChat))
        );
    }

    #[test]
    fn ordinary_https_traffic_matches_nothing() {
        let catalog = EndpointCatalog::default();
        for (host, target) in [
            ("files.pythonhosted.org", "/packages/ab/cd/requests-2.32.3-py3-none-any.whl"),
            ("static.crates.io", "/crates/serde/serde-1.0.228.crate"),
            ("github.com", "/plumbline/plumbline.git/git-upload-pack"),
            ("registry.npmjs.org", "/openai"),
            // A provider's host, but not an LLM call.
            ("api.openai.com", "/v1/models"),
            ("api.openai.com", "/v1/files"),
            ("api.anthropic.com", "/v1/models"),
            // A path that only starts like one.
            ("api.openai.com", "/v1/chat/completionsx"),
            // A look-alike host.
            ("api.openai.com.evil.example", "/v1/chat/completions"),
            ("evil-api.openai.com", "/v1/chat/completions"),
        ] {
            assert_eq!(catalog.find(host, target), None, "{host}{target}");
        }
    }

    #[test]
    fn configured_endpoints_come_first_and_the_longest_prefix_wins() {
        let catalog = EndpointCatalog::with_extra(vec![
            Endpoint::new("gateway", "*.llm.corp.example", "/", Format::OpenAiChat),
            Endpoint::new("gateway", "*.llm.corp.example", "/anthropic/v1/messages", Format::AnthropicMessages),
            Endpoint::new("proxy", "api.openai.com", "/v1/chat/completions", Format::OpenAiChat),
        ]);
        let found = |host: &str, target: &str| catalog.find(host, target).map(|e| (e.provider.as_str(), e.format));
        assert_eq!(found("eu.llm.corp.example", "/v1/chat/completions"), Some(("gateway", Format::OpenAiChat)));
        assert_eq!(
            found("eu.llm.corp.example:8443", "/anthropic/v1/messages?beta=true"),
            Some(("gateway", Format::AnthropicMessages))
        );
        // `*.suffix` does not cover the suffix itself.
        assert_eq!(found("llm.corp.example", "/v1/chat/completions"), None);
        // An equal match: the configured entry is first.
        assert_eq!(found("api.openai.com", "/v1/chat/completions"), Some(("proxy", Format::OpenAiChat)));
        assert_eq!(found("api.openai.com", "/v1/responses"), Some(("openai", Format::OpenAiResponses)));
    }

    #[test]
    fn endpoints_deserialize_from_configuration_and_name_a_bad_format() {
        let endpoint: Endpoint = serde_json::from_str(
            r#"{"provider":"vllm","host":"llm.internal","path_prefix":"/v1/chat/completions","format":"openai_chat"}"#,
        )
        .unwrap();
        assert_eq!(endpoint, Endpoint::new("vllm", "llm.internal", "/v1/chat/completions", Format::OpenAiChat));
        for format in Format::ALL {
            let json = format!(r#"{{"provider":"p","host":"h","path_prefix":"/","format":"{format}"}}"#);
            assert_eq!(serde_json::from_str::<Endpoint>(&json).unwrap().format, format);
        }
        let err = serde_json::from_str::<Endpoint>(
            r#"{"provider":"p","host":"h","path_prefix":"/","format":"openai_chatt"}"#,
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("unknown variant `openai_chatt`") && err.contains("openai_responses"), "{err}");
        let err = serde_json::from_str::<Endpoint>(r#"{"provider":"p","host":"h","path":"/","format":"gemini"}"#)
            .unwrap_err();
        assert!(err.to_string().contains("unknown field `path`"), "{err}");
    }

    #[test]
    fn hosts_and_targets_in_every_form() {
        assert_eq!(bare_host("API.Example.com.:443"), "api.example.com");
        assert_eq!(bare_host("[::1]:8080"), "::1");
        assert_eq!(bare_host("::1"), "::1");
        assert_eq!(path_of("/v1/x?key=k#f"), "/v1/x");
        assert_eq!(path_of("https://h:1/v1/x?y"), "/v1/x");
        assert_eq!(path_of("https://h"), "/");
        assert_eq!(path_of("api.example.com:443"), "api.example.com:443");
    }
}
