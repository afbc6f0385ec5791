//! `[roles.llm]` compiled: the LLM providers a role may call, how many
//! requests a process of it may start per window, and whether a guardrail
//! match aborts the request's connection.

use plumbline_intent::endpoints::EndpointCatalog;

use super::{invalid, spec::LlmSpec, Mode, PolicyError, RateAction};

/// The hold a `hold` rate limit applies at most, unless the role says.
pub const DEFAULT_MAX_HOLD_S: u32 = 30;

/// A role's LLM rules.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LlmRules {
    pub mode: Mode,
    /// The providers the role may call; `None`: every provider.
    pub providers: Option<Vec<String>>,
    pub rate: Option<RateRules>,
    pub kill_on_guardrail: bool,
}

/// A token bucket per process: `requests` tokens, refilled evenly over
/// `window_ns`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateRules {
    pub requests: u32,
    pub window_ns: u64,
    pub action: RateAction,
    /// `hold`: the longest hold, then `after_hold` (`deny` or `kill`).
    pub max_hold_ns: u64,
    pub after_hold: RateAction,
}

impl LlmRules {
    /// Checks `[roles.llm]` at `key`; `known` are the provider names the
    /// node knows besides the catalog's (its configured endpoints').
    pub fn compile(key: &str, spec: &LlmSpec, mode: Mode, known: &[String]) -> Result<Self, PolicyError> {
        let providers = spec
            .allow
            .as_ref()
            .map(|allow| {
                let known = known_providers(known);
                let mut providers = Vec::with_capacity(allow.len());
                for (i, name) in allow.iter().enumerate() {
                    if name != "*" && !known.iter().any(|k| k == name) {
                        return Err(invalid(
                            format!("{key}.allow[{i}]"),
                            name,
                            format!("unknown LLM provider (known: {}; or * for all)", known.join(", ")),
                        ));
                    }
                    providers.push(name.clone());
                }
                Ok(providers)
            })
            .transpose()?;
        let providers = providers.filter(|p| !p.iter().any(|name| name == "*"));
        let rate = spec.rate.as_ref().map(|rate| RateRules::compile(&format!("{key}.rate"), rate)).transpose()?;
        Ok(Self { mode, providers, rate, kill_on_guardrail: spec.kill_on_guardrail })
    }

    /// May the role call `provider`?
    pub fn allows_provider(&self, provider: &str) -> bool {
        self.providers.as_ref().is_none_or(|allowed| allowed.iter().any(|p| p == provider))
    }

    /// In a few words, for summaries.
    pub fn describe(&self) -> String {
        let mut parts = vec![match &self.providers {
            None => "every provider".to_string(),
            Some(providers) => format!("providers {}", providers.join(", ")),
        }];
        if let Some(rate) = &self.rate {
            parts.push(rate.describe());
        }
        if self.kill_on_guardrail {
            parts.push("connection aborted on a guardrail match".to_string());
        }
        parts.join("; ")
    }
}

impl RateRules {
    fn compile(key: &str, spec: &super::RateSpec) -> Result<Self, PolicyError> {
        if spec.requests == 0 {
            return Err(invalid(format!("{key}.requests"), "0", "at least 1 request per window"));
        }
        if spec.window_s == 0 {
            return Err(invalid(format!("{key}.window_s"), "0", "a window of at least 1 second"));
        }
        if spec.action != RateAction::Hold {
            if let Some(hold) = spec.max_hold_s {
                return Err(invalid(format!("{key}.max_hold_s"), &hold.to_string(), "only with action = \"hold\""));
            }
            if let Some(after) = spec.after_hold {
                return Err(invalid(format!("{key}.after_hold"), after.name(), "only with action = \"hold\""));
            }
        }
        let max_hold_s = spec.max_hold_s.unwrap_or(DEFAULT_MAX_HOLD_S);
        if max_hold_s == 0 {
            return Err(invalid(format!("{key}.max_hold_s"), "0", "a hold of at least 1 second"));
        }
        let after_hold = spec.after_hold.unwrap_or(RateAction::Kill);
        if after_hold == RateAction::Hold {
            return Err(invalid(format!("{key}.after_hold"), "hold", "after a hold comes deny or kill"));
        }
        Ok(Self {
            requests: spec.requests,
            window_ns: u64::from(spec.window_s) * 1_000_000_000,
            action: spec.action,
            max_hold_ns: u64::from(max_hold_s) * 1_000_000_000,
            after_hold,
        })
    }

    pub fn describe(&self) -> String {
        let window_s = self.window_ns / 1_000_000_000;
        let mut text =
            format!("{} request(s) per {window_s} s per process, then {}", self.requests, self.action.name());
        if self.action == RateAction::Hold {
            text.push_str(&format!(
                " (at most {} s, then {})",
                self.max_hold_ns / 1_000_000_000,
                self.after_hold.name()
            ));
        }
        text
    }
}

/// The catalog's providers and `extra`, sorted, once each.
fn known_providers(extra: &[String]) -> Vec<String> {
    let catalog = EndpointCatalog::default();
    let mut known: Vec<String> =
        catalog.endpoints.iter().map(|e| e.provider.clone()).chain(extra.iter().cloned()).collect();
    known.sort_unstable();
    known.dedup();
    known
}
