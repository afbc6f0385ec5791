//! The HTTPS server: TLS with ALPN choosing HTTP/2 or HTTP/1.1, the routes, and the exchange log.

use std::convert::Infallible;
use std::fs::{File, OpenOptions};
use std::future::Future;
use std::io::{Read, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use bytes::Bytes;
use flate2::{read::GzDecoder, write::GzEncoder, Compression};
use http::{header, HeaderMap, HeaderValue, Method, Request, Response, StatusCode, Version};
use http_body::Frame;
use http_body_util::{combinators::BoxBody, BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use serde::Serialize;
use serde_json::{json, Value};
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio_rustls::TlsAcceptor;

use crate::call::{Answer, Api, Call, Provider, FAIL_401_MODEL};
use crate::render::{self, Ids, Rendered};
use crate::script::{self, Missing, Turn, SCRIPT_PREFIX};

/// Where the CA certificate is written, in the server's directory.
pub const CA_FILE: &str = "ca.pem";
/// Where one JSON line per exchange is appended, in the server's directory.
pub const EXCHANGES_FILE: &str = "exchanges.jsonl";
/// Size of the non-LLM download.
pub const DOWNLOAD_BYTES: usize = 200 * 1024;

#[derive(Clone, Debug)]
pub struct Config {
    pub listen: SocketAddr,
    /// Gets `ca.pem` and `exchanges.jsonl`.
    pub dir: PathBuf,
    /// Pause between the events of a streamed answer.
    pub stream_delay: Duration,
    /// Where `script:<name>` models find `<name>.json` and `/pages/<file>` its file (see [`crate::script`]);
    /// without it those answer 404.
    pub scripts_dir: Option<PathBuf>,
    /// Names the server certificate carries besides `localhost` and `127.0.0.1`.
    pub server_names: Vec<String>,
    /// A request (LLM route) whose body, decompressed, holds this text is never answered: the exchange is logged
    /// at once with `held: true` and `completed: false`, and the answer waits until the client closes the
    /// connection, whenever that is. For tests whose outcome must not depend on how fast an answer comes (the client
    /// is cut off, killed, or times out by its own clock). `None`: every request is answered.
    pub hold_requests_containing: Option<String>,
}

/// One exchange as the server saw it: the truth captured calls are compared with.
#[derive(Debug, Serialize)]
pub struct Exchange {
    /// `openai`, `anthropic`, … or `none` for non-LLM routes and unknown paths.
    pub provider: &'static str,
    pub method: String,
    /// The request path, without the query string.
    pub path: String,
    /// `HTTP/1.1` or `HTTP/2`.
    pub http_version: &'static str,
    pub model: Option<String>,
    pub stream: bool,
    pub input_tokens: u64,
    pub output_tokens: u64,
    pub cached_tokens: u64,
    /// Names of the tools the answer called.
    pub tool_calls: Vec<String>,
    /// Request body bytes as received (compressed when the client compressed).
    pub request_bytes: u64,
    /// Response body bytes as sent (compressed when the server compressed; all events of a stream).
    pub response_bytes: u64,
    pub status: u16,
    pub gzip_request: bool,
    pub gzip_response: bool,
    /// False when the client went away before the stream's last event, and for a held request.
    pub completed: bool,
    pub duration_ms: f64,
    /// Held (see [`Config::hold_requests_containing`]): no answer was or will be sent; `status` is 0. Absent
    /// when false.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub held: bool,
}

struct State {
    log: Mutex<File>,
    stream_delay: Duration,
    scripts_dir: Option<PathBuf>,
    hold: Option<String>,
    answers: AtomicU64,
    download: Bytes,
}

impl State {
    fn record(&self, exchange: &Exchange) {
        let mut line = serde_json::to_vec(exchange).unwrap_or_default();
        line.push(b'\n');
        let mut log = self.log.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Err(error) = log.write_all(&line) {
            eprintln!("plumbline-llm-fixture: writing the exchange log: {error}");
        }
    }
}

pub struct Server {
    listener: TcpListener,
    acceptor: TlsAcceptor,
    state: Arc<State>,
    ca_path: PathBuf,
}

impl Server {
    /// Makes the certificates, writes `ca.pem`, opens the exchange log and binds the listener.
    pub async fn bind(config: Config) -> anyhow::Result<Server> {
        std::fs::create_dir_all(&config.dir).with_context(|| format!("creating {}", config.dir.display()))?;
        let certs = crate::tls::make(&config.server_names)?;
        let ca_path = config.dir.join(CA_FILE);
        std::fs::write(&ca_path, &certs.ca_pem).with_context(|| format!("writing {}", ca_path.display()))?;
        let log_path = config.dir.join(EXCHANGES_FILE);
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .with_context(|| format!("opening {}", log_path.display()))?;
        let listener = TcpListener::bind(config.listen).await.with_context(|| format!("binding {}", config.listen))?;
        let state = State {
            log: Mutex::new(log),
            stream_delay: config.stream_delay,
            scripts_dir: config.scripts_dir,
            hold: config.hold_requests_containing.filter(|text| !text.is_empty()),
            answers: AtomicU64::new(0),
            download: download_body(),
        };
        Ok(Server { listener, acceptor: TlsAcceptor::from(certs.server_config), state: Arc::new(state), ca_path })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.listener.local_addr().expect("a bound listener has an address")
    }

    pub fn ca_path(&self) -> &Path {
        &self.ca_path
    }

    /// Serves until the process ends.
    pub async fn serve(self) {
        self.serve_until(std::future::pending()).await
    }

    /// Serves until `shutdown` completes; connections still open are dropped with the runtime.
    pub async fn serve_until(self, shutdown: impl Future<Output = ()>) {
        tokio::pin!(shutdown);
        loop {
            let accepted = tokio::select! {
                _ = &mut shutdown => return,
                accepted = self.listener.accept() => accepted,
            };
            let (tcp, _) = match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    eprintln!("plumbline-llm-fixture: accept: {error}");
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
            };
            let _ = tcp.set_nodelay(true);
            let acceptor = self.acceptor.clone();
            let state = self.state.clone();
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(tcp).await else { return };
                let h2 = tls.get_ref().1.alpn_protocol() == Some(b"h2".as_slice());
                let builder = auto::Builder::new(TokioExecutor::new());
                let builder = if h2 { builder.http2_only() } else { builder.http1_only() };
                let service = service_fn(move |request| handle(state.clone(), request));
                let _ = builder.serve_connection(TokioIo::new(tls), service).await;
            });
        }
    }
}

/// About 200 KiB of gzip: pseudo-random bytes, so the archive is as large as its content.
fn download_body() -> Bytes {
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let content: Vec<u8> = (0..DOWNLOAD_BYTES)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect();
    let mut gz = GzEncoder::new(Vec::new(), Compression::fast());
    gz.write_all(&content).expect("gzip to memory");
    Bytes::from(gz.finish().expect("gzip to memory"))
}

type Body = BoxBody<Bytes, Infallible>;

/// A response body fed event by event from a task.
struct ChannelBody(mpsc::Receiver<Bytes>);

impl http_body::Body for ChannelBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        self.0.poll_recv(cx).map(|event| event.map(|bytes| Ok(Frame::data(bytes))))
    }
}

enum Route {
    Llm { provider: Provider, api: Api, gemini_model: String },
    Download,
    Page(String),
    Health,
    NotFound,
}

fn route(method: &Method, path: &str, query: &str) -> Route {
    if method == Method::GET {
        return match path {
            "/downloads/package.tar.gz" => Route::Download,
            "/health" => Route::Health,
            _ => match path.strip_prefix("/pages/") {
                Some(file) => Route::Page(file.to_owned()),
                None => Route::NotFound,
            },
        };
    }
    if method != Method::POST {
        return Route::NotFound;
    }
    let llm = |provider, api| Route::Llm { provider, api, gemini_model: String::new() };
    match path {
        "/openai/v1/chat/completions" => llm(Provider::OpenAi, Api::ChatCompletions),
        "/openai/v1/responses" => llm(Provider::OpenAi, Api::Responses),
        "/openai/v1/embeddings" => llm(Provider::OpenAi, Api::Embeddings),
        "/anthropic/v1/messages" => llm(Provider::Anthropic, Api::Messages),
        "/cohere/v2/chat" => llm(Provider::Cohere, Api::CohereChat),
        "/mistral/v1/chat/completions" => llm(Provider::Mistral, Api::ChatCompletions),
        "/together/v1/chat/completions" => llm(Provider::Together, Api::ChatCompletions),
        "/groq/openai/v1/chat/completions" => llm(Provider::Groq, Api::ChatCompletions),
        "/fireworks/inference/v1/chat/completions" => llm(Provider::Fireworks, Api::ChatCompletions),
        "/perplexity/chat/completions" => llm(Provider::Perplexity, Api::ChatCompletions),
        _ => {
            let Some(rest) = path.strip_prefix("/gemini/v1beta/models/") else { return Route::NotFound };
            let Some((model, action)) = rest.rsplit_once(':') else { return Route::NotFound };
            let sse = query.split('&').any(|pair| pair == "alt=sse");
            let api = match action {
                "generateContent" => Api::Gemini { stream: false, sse: false },
                "streamGenerateContent" => Api::Gemini { stream: true, sse },
                _ => return Route::NotFound,
            };
            if model.is_empty() || model.contains('/') {
                return Route::NotFound;
            }
            Route::Llm { provider: Provider::Gemini, api, gemini_model: model.to_owned() }
        }
    }
}

fn http_version(version: Version) -> &'static str {
    match version {
        Version::HTTP_2 => "HTTP/2",
        Version::HTTP_10 => "HTTP/1.0",
        Version::HTTP_3 => "HTTP/3",
        _ => "HTTP/1.1",
    }
}

fn header_has(headers: &HeaderMap, name: header::HeaderName, token: &str) -> bool {
    headers
        .get_all(name)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.split(',').any(|item| item.split(';').next().unwrap_or("").trim().eq_ignore_ascii_case(token)))
}

async fn handle(state: Arc<State>, request: Request<Incoming>) -> Result<Response<Body>, Infallible> {
    let start = Instant::now();
    let (parts, body) = request.into_parts();
    let raw = match body.collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(_) => Bytes::new(),
    };
    let path = parts.uri.path().to_owned();
    let query = parts.uri.query().unwrap_or("");
    let gzip_request = header_has(&parts.headers, header::CONTENT_ENCODING, "gzip");
    let mut exchange = Exchange {
        provider: "none",
        method: parts.method.to_string(),
        path: path.clone(),
        http_version: http_version(parts.version),
        model: None,
        stream: false,
        input_tokens: 0,
        output_tokens: 0,
        cached_tokens: 0,
        tool_calls: Vec::new(),
        request_bytes: raw.len() as u64,
        response_bytes: 0,
        status: 200,
        gzip_request,
        gzip_response: false,
        completed: true,
        duration_ms: 0.0,
        held: false,
    };
    let accept_gzip = header_has(&parts.headers, header::ACCEPT_ENCODING, "gzip");
    let n = state.answers.fetch_add(1, Ordering::Relaxed) + 1;
    let ids = Ids { n };
    let reply = |exchange: &mut Exchange, status: StatusCode, content_type: &'static str, body: Bytes, gzip: bool| {
        let mut builder = Response::builder()
            .status(status)
            .header(header::CONTENT_TYPE, content_type)
            .header("x-request-id", format!("req_fixture{n:06}"));
        let body = if gzip {
            builder = builder.header(header::CONTENT_ENCODING, "gzip").header(header::VARY, "Accept-Encoding");
            let mut gz = GzEncoder::new(Vec::new(), Compression::default());
            gz.write_all(&body).expect("gzip to memory");
            Bytes::from(gz.finish().expect("gzip to memory"))
        } else {
            body
        };
        exchange.status = status.as_u16();
        exchange.gzip_response = gzip;
        exchange.response_bytes = body.len() as u64;
        exchange.duration_ms = millis(start);
        state.record(exchange);
        builder.body(Full::new(body).boxed()).expect("a valid response")
    };
    let json_reply = |exchange: &mut Exchange, status: StatusCode, value: &Value| {
        let body = Bytes::from(serde_json::to_vec(value).expect("JSON to memory"));
        reply(exchange, status, "application/json", body, accept_gzip)
    };

    let (provider, api, gemini_model) = match route(&parts.method, &path, query) {
        Route::Health => return Ok(json_reply(&mut exchange, StatusCode::OK, &json!({"status": "ok"}))),
        Route::Download => {
            return Ok(reply(&mut exchange, StatusCode::OK, "application/gzip", state.download.clone(), false))
        }
        Route::Page(file) => {
            return Ok(match script::page(state.scripts_dir.as_deref(), &file, query) {
                Ok((text, content_type)) => reply(&mut exchange, StatusCode::OK, content_type, text.into(), false),
                Err(missing) => {
                    let (status, error) = missing_error(missing, "page_not_found");
                    json_reply(&mut exchange, status, &error)
                }
            });
        }
        Route::NotFound => {
            let error = render::openai_error(
                &format!("Invalid URL ({} {path})", parts.method),
                "invalid_request_error",
                Value::Null,
            );
            return Ok(json_reply(&mut exchange, StatusCode::NOT_FOUND, &error));
        }
        Route::Llm { provider, api, gemini_model } => (provider, api, gemini_model),
    };
    exchange.provider = provider.name();

    let body = if gzip_request {
        let mut decoded = Vec::new();
        match GzDecoder::new(&raw[..]).read_to_end(&mut decoded) {
            Ok(_) => Bytes::from(decoded),
            Err(_) => {
                let error =
                    render::openai_error("The gzip request body is corrupt.", "invalid_request_error", Value::Null);
                return Ok(json_reply(&mut exchange, StatusCode::BAD_REQUEST, &error));
            }
        }
    } else {
        raw
    };
    let hold = state.hold.as_deref().is_some_and(|text| holds(&body, text));
    let body: Value = match serde_json::from_slice(&body) {
        Ok(value @ Value::Object(_)) => value,
        _ => {
            let error = render::openai_error(
                "We could not parse the JSON body of your request.",
                "invalid_request_error",
                Value::Null,
            );
            return Ok(json_reply(&mut exchange, StatusCode::BAD_REQUEST, &error));
        }
    };
    let call = Call::read(api, &body, &gemini_model);
    exchange.model = Some(call.model.clone());
    exchange.stream = call.stream;
    if hold {
        // Logged now, so a test sees the request arrived; the answer never comes. The client closing its
        // connection drops this future (hyper notices the end of a connection with a request in flight).
        exchange.completed = false;
        exchange.held = true;
        exchange.status = 0;
        exchange.duration_ms = millis(start);
        state.record(&exchange);
        return Ok(std::future::pending::<Response<Body>>().await);
    }
    if call.model == FAIL_401_MODEL {
        return Ok(json_reply(&mut exchange, StatusCode::UNAUTHORIZED, &render::unauthorized(provider, &ids)));
    }

    let cached = parts
        .headers
        .get("x-fixture-cached")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .unwrap_or(0);
    let answer = match call.model.strip_prefix(SCRIPT_PREFIX) {
        Some(name) if scripts_answer(provider, api) => match script::load(state.scripts_dir.as_deref(), name) {
            Ok(turns) => scripted(&turns, &call, cached),
            Err(missing) => {
                let (status, error) = missing_error(missing, "model_not_found");
                return Ok(json_reply(&mut exchange, status, &error));
            }
        },
        _ => Answer::new(provider, &call, cached),
    };
    exchange.input_tokens = answer.input_tokens;
    exchange.output_tokens = if api == Api::Embeddings { 0 } else { answer.output_tokens };
    exchange.cached_tokens = answer.cached_tokens;
    exchange.tool_calls = answer.tool_calls.iter().map(|tool| tool.name.clone()).collect();

    match render::render(provider, api, &call, &answer, &ids) {
        Rendered::Json(value) => Ok(json_reply(&mut exchange, StatusCode::OK, &value)),
        Rendered::Stream { content_type, events } => {
            let (tx, rx) = mpsc::channel::<Bytes>(1);
            let delay = state.stream_delay;
            exchange.status = 200;
            tokio::spawn(async move {
                let total = events.len();
                for (i, event) in events.into_iter().enumerate() {
                    if i > 0 && !delay.is_zero() {
                        tokio::time::sleep(delay).await;
                    }
                    exchange.response_bytes += event.len() as u64;
                    if i + 1 == total {
                        // Recorded before the last event leaves, so the line is there when the client has it all.
                        exchange.duration_ms = millis(start);
                        state.record(&exchange);
                    }
                    if tx.send(Bytes::from(event)).await.is_err() {
                        if i + 1 < total {
                            exchange.completed = false;
                            exchange.duration_ms = millis(start);
                            state.record(&exchange);
                        }
                        return;
                    }
                }
            });
            let response = Response::builder()
                .status(StatusCode::OK)
                .header(header::CONTENT_TYPE, content_type)
                .header(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"))
                .header("x-request-id", format!("req_fixture{n:06}"))
                .body(ChannelBody(rx).boxed())
                .expect("a valid response");
            Ok(response)
        }
    }
}

/// `body` holds `text` (as bytes: a JSON string with no escapes in `text` matches as written).
fn holds(body: &[u8], text: &str) -> bool {
    body.windows(text.len()).any(|window| window == text.as_bytes())
}

/// Whether a `script:` model is answered from its script: OpenAI chat completions, Anthropic Messages and Gemini
/// (streamed or not); other routes ignore the prefix.
fn scripts_answer(provider: Provider, api: Api) -> bool {
    matches!(
        (provider, api),
        (Provider::OpenAi, Api::ChatCompletions) | (Provider::Anthropic, Api::Messages) | (_, Api::Gemini { .. })
    )
}

/// The answer from a script: the turn for the conversation so far, with the fixture's token counts.
fn scripted(turns: &[Turn], call: &Call, cached: u64) -> Answer {
    let input_tokens = call.input_words.max(1);
    let cached_tokens = cached.min(input_tokens);
    match script::turn(turns, call.assistant_messages) {
        (at, Turn::ToolCalls(calls)) => {
            Answer::calling(script::tool_calls(at, calls, &call.metadata), input_tokens, cached_tokens)
        }
        (_, Turn::Text(text)) => Answer::text(script::fill(text, &call.metadata), input_tokens, cached_tokens),
    }
}

/// A missing script or page as an OpenAI-style error: 404 with `code`, or 500 for a file that is not valid.
fn missing_error(missing: Missing, code: &str) -> (StatusCode, Value) {
    match missing {
        Missing::NotFound(why) => {
            (StatusCode::NOT_FOUND, render::openai_error(&why, "invalid_request_error", Value::String(code.into())))
        }
        Missing::Invalid(why) => {
            (StatusCode::INTERNAL_SERVER_ERROR, render::openai_error(&why, "server_error", Value::Null))
        }
    }
}

/// Milliseconds since `start`, to the microsecond.
fn millis(start: Instant) -> f64 {
    (start.elapsed().as_secs_f64() * 1e6).round() / 1e3
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gemini_model(path: &str, query: &str) -> Option<(String, Api)> {
        match route(&Method::POST, path, query) {
            Route::Llm { provider: Provider::Gemini, api, gemini_model } => Some((gemini_model, api)),
            _ => None,
        }
    }

    #[test]
    fn gemini_models_may_hold_a_colon() {
        assert_eq!(
            gemini_model("/gemini/v1beta/models/script:corpus-3:generateContent", ""),
            Some(("script:corpus-3".into(), Api::Gemini { stream: false, sse: false }))
        );
        assert_eq!(
            gemini_model("/gemini/v1beta/models/script:corpus-3:streamGenerateContent", "alt=sse"),
            Some(("script:corpus-3".into(), Api::Gemini { stream: true, sse: true }))
        );
        assert_eq!(
            gemini_model("/gemini/v1beta/models/gemini-2.5-pro:generateContent", ""),
            Some(("gemini-2.5-pro".into(), Api::Gemini { stream: false, sse: false }))
        );
        assert_eq!(gemini_model("/gemini/v1beta/models/script:corpus-3", ""), None);
        assert_eq!(gemini_model("/gemini/v1beta/models/:generateContent", ""), None);
    }

    #[test]
    fn scripts_answer_chat_messages_and_gemini() {
        assert!(scripts_answer(Provider::OpenAi, Api::ChatCompletions));
        assert!(scripts_answer(Provider::Anthropic, Api::Messages));
        assert!(scripts_answer(Provider::Gemini, Api::Gemini { stream: true, sse: false }));
        assert!(!scripts_answer(Provider::OpenAi, Api::Responses));
        assert!(!scripts_answer(Provider::Mistral, Api::ChatCompletions));
        assert!(!scripts_answer(Provider::Cohere, Api::CohereChat));
    }
}
