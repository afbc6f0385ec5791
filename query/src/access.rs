//! The lock on the query service's address: one layer in front of gRPC and
//! the dashboard alike. With a token configured ([`crate::doors`]) a request
//! passes when it carries `authorization: Bearer <token>`, or the session
//! cookie the login form sets (derived from the token, never the token
//! itself). Otherwise gRPC gets UNAUTHENTICATED, a browser is sent to the
//! login form and comes back to the page it asked for; the stylesheet and
//! scripts and the form itself are open. Without a token (the loopback
//! default) every request passes, as before.

use std::{
    sync::Arc,
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use axum::{
    extract::{Query, Request, State},
    http::{header, HeaderMap, HeaderValue, Method, StatusCode},
    middleware::{from_fn_with_state, Next},
    response::{IntoResponse, Response},
    routing::get,
    Form, Router,
};
use maud::{html, Markup, DOCTYPE};
use ring::{digest, hmac};
use serde::Deserialize;
use subtle::ConstantTimeEq;

/// The login form's path.
pub const LOGIN: &str = "/login";
/// The dashboard's stylesheet and scripts: open, the login form uses them.
const ASSETS: &str = "/assets/";
/// The session cookie's name.
const COOKIE: &str = "plumbline_session";
/// How long a login lasts.
const SESSION: Duration = Duration::from_secs(12 * 3600);
/// What `plumb` and every gRPC client are told when they come without a token.
pub const NO_TOKEN: &str =
    "this query service wants a token: send `authorization: Bearer <token>` (plumb: PLUMB_TOKEN or --token-file)";
/// What they are told when the token they sent is not the service's.
pub const WRONG_TOKEN: &str = "the token sent is not this query service's";

/// The service's token, kept as what comparing and signing need: its
/// SHA-256 (bearer tokens are compared digest to digest, so neither their
/// bytes nor their length leak through timing) and an HMAC key for session
/// cookies.
pub struct Token {
    digest: [u8; 32],
    session_key: hmac::Key,
}

impl Token {
    /// A token must be one header-safe word: visible ASCII, no spaces.
    pub fn new(text: &str) -> Result<Self, &'static str> {
        if text.is_empty() {
            return Err("the token is empty");
        }
        if !text.bytes().all(|b| b.is_ascii_graphic()) {
            return Err("the token must be visible ASCII without spaces (it travels in an HTTP header)");
        }
        Ok(Token { digest: sha256(text.as_bytes()), session_key: hmac::Key::new(hmac::HMAC_SHA256, text.as_bytes()) })
    }

    /// Whether `offered` is the token, in constant time.
    pub fn matches(&self, offered: &[u8]) -> bool {
        sha256(offered).ct_eq(&self.digest).into()
    }

    /// A session cookie's value, good until `expires` (Unix seconds):
    /// `<expires>.<HMAC-SHA256 of it under the token>`. Changing the token
    /// ends every session.
    fn session(&self, expires: u64) -> String {
        let tag = hmac::sign(&self.session_key, session_message(expires).as_bytes());
        format!("{expires}.{}", hex(tag.as_ref()))
    }

    /// Whether `value` is a session this token signed that has not expired
    /// at `now` (the tag is checked in constant time).
    fn session_is_valid(&self, value: &str, now: u64) -> bool {
        let Some((expires, tag)) = value.split_once('.') else { return false };
        let (Ok(expires), Some(tag)) = (expires.parse::<u64>(), unhex(tag)) else { return false };
        expires > now && hmac::verify(&self.session_key, session_message(expires).as_bytes(), &tag).is_ok()
    }
}

fn session_message(expires: u64) -> String {
    format!("plumbline dashboard session until {expires}")
}

fn sha256(bytes: &[u8]) -> [u8; 32] {
    digest::digest(&digest::SHA256, bytes).as_ref().try_into().expect("SHA-256 is 32 bytes")
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) || !text.is_ascii() {
        return None;
    }
    (0..text.len()).step_by(2).map(|i| u8::from_str_radix(&text[i..i + 2], 16).ok()).collect()
}

fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// The layer's state: the token and whether cookies must say `Secure`.
#[derive(Clone)]
pub struct Access {
    token: Arc<Token>,
    secure: bool,
}

/// What a request carries.
#[derive(Debug, PartialEq, Eq)]
enum Verdict {
    Admitted,
    NoToken,
    WrongToken,
}

impl Access {
    pub fn new(token: Arc<Token>, secure: bool) -> Self {
        Access { token, secure }
    }

    fn verdict(&self, headers: &HeaderMap) -> Verdict {
        if let Some(offered) = bearer(headers) {
            return if self.token.matches(offered) { Verdict::Admitted } else { Verdict::WrongToken };
        }
        let now = now();
        if cookies(headers, COOKIE).any(|value| self.token.session_is_valid(value, now)) {
            return Verdict::Admitted;
        }
        Verdict::NoToken
    }

    fn cookie(&self) -> String {
        let value = self.token.session(now() + SESSION.as_secs());
        let secure = if self.secure { "; Secure" } else { "" };
        format!("{COOKIE}={value}; Path=/; Max-Age={}; HttpOnly; SameSite=Strict{secure}", SESSION.as_secs())
    }
}

/// The bytes after `Bearer ` in `authorization`, if that is what it holds.
fn bearer(headers: &HeaderMap) -> Option<&[u8]> {
    let value = headers.get(header::AUTHORIZATION)?.as_bytes();
    let (scheme, rest) = value.split_at_checked(7)?;
    scheme.eq_ignore_ascii_case(b"bearer ").then(|| rest.trim_ascii())
}

/// Every value of cookie `name` in the request's `cookie` headers.
fn cookies<'h>(headers: &'h HeaderMap, name: &'h str) -> impl Iterator<Item = &'h str> + 'h {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|line| line.split(';'))
        .filter_map(move |pair| pair.trim().strip_prefix(name)?.strip_prefix('='))
}

/// Locks `doors` with `access` (none: left open) and adds the login form.
pub fn lock(doors: Router, access: Option<Access>) -> Router {
    let login = Router::new().route(LOGIN, get(login_form).post(log_in)).with_state(access.clone());
    let doors = doors.merge(login);
    match access {
        Some(access) => doors.layer(from_fn_with_state(access, guard)),
        None => doors,
    }
}

/// The layer: admits, or refuses in the asker's own terms.
async fn guard(State(access): State<Access>, request: Request, next: Next) -> Response {
    let path = request.uri().path();
    if path == LOGIN || path.starts_with(ASSETS) {
        return next.run(request).await;
    }
    let verdict = access.verdict(request.headers());
    if verdict == Verdict::Admitted {
        return next.run(request).await;
    }
    let grpc = request
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|value| value.as_bytes().starts_with(b"application/grpc"));
    let message = if verdict == Verdict::WrongToken { WRONG_TOKEN } else { NO_TOKEN };
    if grpc {
        return tonic::Status::unauthenticated(message).into_http();
    }
    let browsing = matches!(*request.method(), Method::GET | Method::HEAD);
    if verdict == Verdict::NoToken && browsing {
        let asked = request.uri().path_and_query().map_or("/", |pq| pq.as_str());
        let query = serde_urlencoded::to_string([("next", asked)]).unwrap_or_default();
        return see_other(&format!("{LOGIN}?{query}"), None);
    }
    let challenge = if verdict == Verdict::WrongToken { "Bearer error=\"invalid_token\"" } else { "Bearer" };
    (StatusCode::UNAUTHORIZED, [(header::WWW_AUTHENTICATE, challenge)], message).into_response()
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct LoginQuery {
    next: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct LoginForm {
    token: String,
    next: String,
}

/// GET /login: the form, or straight back when there is nothing to log in to.
async fn login_form(
    State(access): State<Option<Access>>,
    Query(query): Query<LoginQuery>,
    headers: HeaderMap,
) -> Response {
    let next = same_origin(&query.next);
    match access {
        Some(access) if access.verdict(&headers) != Verdict::Admitted => login_page(next, None).into_response(),
        _ => see_other(next, None),
    }
}

/// POST /login: the right token sets the session cookie and goes back to
/// the page asked for; a wrong one gets the form again.
async fn log_in(State(access): State<Option<Access>>, Form(form): Form<LoginForm>) -> Response {
    let next = same_origin(&form.next);
    let Some(access) = access else { return see_other(next, None) };
    if access.token.matches(form.token.trim().as_bytes()) {
        return see_other(next, Some(access.cookie()));
    }
    (StatusCode::UNAUTHORIZED, login_page(next, Some("That is not this service's token."))).into_response()
}

/// `next` when it is a path on this host; `/` for anything that could
/// send the browser elsewhere (`//host`, `https://…`, `/\host`).
fn same_origin(next: &str) -> &str {
    let path_here =
        next.starts_with('/') && !next.starts_with("//") && !next.chars().any(|c| c == '\\' || c.is_control());
    if path_here && HeaderValue::from_str(next).is_ok() {
        next
    } else {
        "/"
    }
}

fn see_other(location: &str, cookie: Option<String>) -> Response {
    let mut response = StatusCode::SEE_OTHER.into_response();
    let headers = response.headers_mut();
    headers.insert(header::LOCATION, HeaderValue::from_str(location).unwrap_or(HeaderValue::from_static("/")));
    if let Some(cookie) = cookie.and_then(|c| HeaderValue::from_str(&c).ok()) {
        headers.insert(header::SET_COOKIE, cookie);
    }
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

fn login_page(next: &str, refused: Option<&str>) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { "Log in · Plumbline" }
                link rel="stylesheet" href="/assets/plumbline.css";
            }
            body {
                header.top { span.brand { "Plumbline" } }
                main {
                    h1 { "Log in" }
                    section.panel {
                        p { "This dashboard shows captured prompts and completions. Enter the query service's token \
                             (the contents of its " code { "[access] token_file" } ")." }
                        @if let Some(refused) = refused { p.error role="alert" { (refused) } }
                        form method="post" action=(LOGIN) {
                            input type="hidden" name="next" value=(next);
                            label { "Token " input type="password" name="token" autocomplete="current-password" required autofocus; }
                            button type="submit" { "Log in" }
                        }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use axum::body::Body;
    use tower::ServiceExt;

    use super::*;

    const SECRET: &str = "0123456789abcdef-test-token";

    fn locked(secure: bool) -> Router {
        let pages = Router::new()
            .route("/fleet", get(|| async { "fleet page" }))
            .route("/assets/plumbline.css", get(|| async { "css" }))
            .route("/plumbline.v1.QueryService/{*rpc}", axum::routing::post(|| async { "rpc answer" }));
        lock(pages, Some(Access::new(Arc::new(Token::new(SECRET).unwrap()), secure)))
    }

    async fn send(router: &Router, request: http::Request<Body>) -> Response {
        router.clone().oneshot(request).await.unwrap()
    }

    fn get_with(path: &str, header: Option<(header::HeaderName, String)>) -> http::Request<Body> {
        let mut request = http::Request::get(path);
        if let Some((name, value)) = header {
            request = request.header(name, value);
        }
        request.body(Body::empty()).unwrap()
    }

    fn location(response: &Response) -> &str {
        response.headers().get(header::LOCATION).unwrap().to_str().unwrap()
    }

    #[tokio::test]
    async fn a_bearer_token_opens_and_a_wrong_one_does_not() {
        let router = locked(false);
        let right = send(&router, get_with("/fleet", Some((header::AUTHORIZATION, format!("Bearer {SECRET}"))))).await;
        assert_eq!(right.status(), StatusCode::OK);
        let wrong = send(&router, get_with("/fleet", Some((header::AUTHORIZATION, "Bearer nope".into())))).await;
        assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
        assert!(wrong.headers()[header::WWW_AUTHENTICATE].to_str().unwrap().contains("invalid_token"));
    }

    #[tokio::test]
    async fn grpc_without_a_token_is_unauthenticated_with_a_clear_message() {
        let router = locked(false);
        let request = http::Request::post("/plumbline.v1.QueryService/PipelineStats")
            .header(header::CONTENT_TYPE, "application/grpc")
            .body(Body::empty())
            .unwrap();
        let response = send(&router, request).await;
        let status = tonic::Status::from_header_map(response.headers()).expect("a gRPC status");
        assert_eq!(status.code(), tonic::Code::Unauthenticated);
        assert_eq!(status.message(), NO_TOKEN);
    }

    #[tokio::test]
    async fn a_browser_is_sent_to_the_login_form_and_back_with_a_cookie() {
        let router = locked(true);
        let asked = send(&router, get_with("/fleet?host=a&since=1h", None)).await;
        assert_eq!(asked.status(), StatusCode::SEE_OTHER);
        let form_url = location(&asked).to_string();
        assert_eq!(form_url, "/login?next=%2Ffleet%3Fhost%3Da%26since%3D1h");

        let form = send(&router, get_with(&form_url, None)).await;
        assert_eq!(form.status(), StatusCode::OK);
        let html = String::from_utf8(axum::body::to_bytes(form.into_body(), 1 << 20).await.unwrap().to_vec()).unwrap();
        assert!(html.contains(r#"name="next" value="/fleet?host=a&amp;since=1h""#), "{html}");

        let post = |token: &str, next: &str| {
            http::Request::post(LOGIN)
                .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                .body(Body::from(serde_urlencoded::to_string([("token", token), ("next", next)]).unwrap()))
                .unwrap()
        };
        let refused = send(&router, post("wrong", "/fleet?host=a")).await;
        assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
        assert!(refused.headers().get(header::SET_COOKIE).is_none());

        let admitted = send(&router, post(SECRET, "/fleet?host=a")).await;
        assert_eq!(admitted.status(), StatusCode::SEE_OTHER);
        assert_eq!(location(&admitted), "/fleet?host=a");
        let cookie = admitted.headers()[header::SET_COOKIE].to_str().unwrap().to_string();
        for attribute in ["HttpOnly", "SameSite=Strict", "Secure", "Path=/"] {
            assert!(cookie.contains(attribute), "{attribute} in {cookie}");
        }
        assert!(!cookie.contains(SECRET), "the cookie is derived from the token, not the token: {cookie}");
        let pair = cookie.split(';').next().unwrap().to_string();
        let page = send(&router, get_with("/fleet", Some((header::COOKIE, format!("theme=dark; {pair}"))))).await;
        assert_eq!(page.status(), StatusCode::OK);

        let forged = send(&router, get_with("/fleet", Some((header::COOKIE, format!("{pair}0"))))).await;
        assert_eq!(forged.status(), StatusCode::SEE_OTHER, "a cookie that was not signed is no session");
    }

    #[tokio::test]
    async fn the_way_back_after_login_stays_on_this_host() {
        for (next, back) in [
            ("/fleet?x=1", "/fleet?x=1"),
            ("//evil.example/", "/"),
            ("https://evil.example/", "/"),
            ("/\\evil.example", "/"),
            ("", "/"),
            ("fleet", "/"),
        ] {
            assert_eq!(same_origin(next), back, "{next:?}");
        }
    }

    #[tokio::test]
    async fn assets_and_the_login_form_are_open() {
        let router = locked(false);
        assert_eq!(send(&router, get_with("/assets/plumbline.css", None)).await.status(), StatusCode::OK);
        assert_eq!(send(&router, get_with("/login", None)).await.status(), StatusCode::OK);
        let post = http::Request::post("/fleet").body(Body::empty()).unwrap();
        assert_eq!(send(&router, post).await.status(), StatusCode::UNAUTHORIZED, "only page loads are redirected");
    }

    #[tokio::test]
    async fn without_a_token_everything_is_open() {
        let pages = Router::new().route("/fleet", get(|| async { "fleet page" }));
        let open = lock(pages, None);
        assert_eq!(send(&open, get_with("/fleet", None)).await.status(), StatusCode::OK);
        let login = send(&open, get_with("/login?next=/fleet", None)).await;
        assert_eq!((login.status(), location(&login)), (StatusCode::SEE_OTHER, "/fleet"));
    }

    #[test]
    fn sessions_expire_and_are_bound_to_the_token() {
        let token = Token::new(SECRET).unwrap();
        let session = token.session(1_000);
        assert!(token.session_is_valid(&session, 999));
        assert!(!token.session_is_valid(&session, 1_000), "expired");
        let other = Token::new("another-token").unwrap();
        assert!(!other.session_is_valid(&session, 999), "a new token ends old sessions");
        let moved = session.replacen("1000", "9000", 1);
        assert!(!token.session_is_valid(&moved, 999), "the expiry is signed");
        assert!(Token::new("has space").is_err());
    }
}
