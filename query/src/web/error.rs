//! A page that cannot be answered says why, with the status to match.

use axum::{
    http::StatusCode,
    response::{IntoResponse, Response},
};
use maud::html;
use tonic::{Code, Status};

use super::layout;

/// Why a page could not be rendered.
#[derive(Debug)]
pub struct PageError {
    status: StatusCode,
    message: String,
}

impl PageError {
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self { status: StatusCode::BAD_REQUEST, message: message.into() }
    }
}

/// The API's answer, as the page's: a bad filter is the reader's to fix,
/// a store outage is said as such.
impl From<Status> for PageError {
    fn from(status: Status) -> Self {
        let code = match status.code() {
            Code::InvalidArgument | Code::OutOfRange => StatusCode::BAD_REQUEST,
            Code::NotFound => StatusCode::NOT_FOUND,
            Code::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            Code::DeadlineExceeded => StatusCode::GATEWAY_TIMEOUT,
            Code::Unauthenticated => StatusCode::UNAUTHORIZED,
            Code::PermissionDenied => StatusCode::FORBIDDEN,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        };
        Self { status: code, message: status.message().to_string() }
    }
}

impl From<super::params::BadField> for PageError {
    fn from(bad: super::params::BadField) -> Self {
        Self::bad_request(bad.0)
    }
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        let title = self.status.canonical_reason().unwrap_or("Error");
        let body = html! {
            section.panel.error {
                h2 { (self.status.as_u16()) " " (title) }
                p { (self.message) }
            }
        };
        (self.status, layout::page(title, "", &Default::default(), body)).into_response()
    }
}

pub async fn not_found() -> PageError {
    PageError { status: StatusCode::NOT_FOUND, message: "no such page".into() }
}
