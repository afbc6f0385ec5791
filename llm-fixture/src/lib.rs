//! A local HTTPS server that answers in LLM providers' real wire formats (OpenAI chat completions, Responses and
//! embeddings, Anthropic Messages, Gemini, Cohere v2, and the OpenAI-compatible Mistral, Together, Groq, Fireworks
//! and Perplexity), and helpers to run real clients against it: the test bed for capturing LLM calls from TLS
//! plaintext.
//!
//! Each provider lives under its own path prefix (`/openai/v1/chat/completions`, `/anthropic/v1/messages`,
//! `/gemini/v1beta/models/{model}:generateContent`, …). Answers are deterministic: the text is
//! `Hello from <provider> fixture: <first 8 words of the last user message>`, token counts are word counts (see
//! [`call`]), a request that declares tools gets one call to the first tool with `{"path": "/etc/hostname"}`, model
//! `big-stream` answers with about 100 KiB of text and `fail-401` with the provider's authentication error.
//! Every exchange is appended to `exchanges.jsonl` as a [`server::Exchange`].
//! With [`Options::hold_requests_containing`] (`--hold-requests-containing TEXT`), a request whose body holds that
//! text is logged at once (`held: true`) and never answered: the client ends it by closing its connection, so a
//! test that cuts a call off does not race the answer.
//!
//! **Scripted conversations**, for scripted agents (`plumbline/tests/agents/`): given a scripts directory
//! ([`Options::scripts_dir`], `--scripts DIR` on the binary), an OpenAI chat-completions, Anthropic Messages or
//! Gemini request whose model is `script:<name>` is answered from `DIR/<name>.json`, a list of turns:
//!
//! ```json
//! [{"tool_calls": [{"name": "run_command", "arguments": {"command": "python -m pytest -q"}}]},
//!  {"text": "All tests passed."}]
//! ```
//!
//! The turn answered is the number of assistant messages (Gemini: `model` contents) already in the request's
//! conversation, clamped to the last turn. A `tool_calls` turn (one call or several) is answered with all those
//! calls, ids `call_<turn>_<i>`, in the API's own form; a `text` turn with that text. `{KEY}` in arguments and texts
//! is filled from a chat request's `metadata` (`{"WORKDIR": "/tmp/x"}`), so the calls name the paths and ports the
//! agent was really given. Token counts are the fixture's usual word counts, streamed or not. A missing script
//! answers 404 `model_not_found`; the other providers and APIs ignore the prefix. A Gemini model name may hold a
//! colon: `/gemini/v1beta/models/script:x:generateContent` is model `script:x`. `GET /pages/<file>` serves `DIR/<file>`
//! (`text/html` for `.html`), each `{KEY}` in it replaced by the query's `KEY=VALUE`: the pages a scripted agent's
//! "fetch a URL" tool reads (see [`script`]).

pub mod call;
pub mod clients;
mod fixture;
mod render;
pub mod script;
pub mod server;
mod tls;

pub use fixture::{Fixture, Options};
