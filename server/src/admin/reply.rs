//! The admin API's answers: JSON bodies for everything but `/metrics`,
//! errors shaped `{"success": false, "errors": [{"code": ..., "message":
//! ...}]}` as Cloudflare's API shapes them.

use http_body_util::Full;
use hyper::body::Bytes;
use hyper::header::{HeaderValue, CONTENT_TYPE};
use hyper::{Response, StatusCode};
use serde::Serialize;

/// Every answer's type.
pub type Reply = Response<Full<Bytes>>;

/// `status` with `body` as JSON.
pub fn json(status: StatusCode, body: &impl Serialize) -> Reply {
    // Serializing our own plain structs cannot fail; an empty object if it did.
    let text = serde_json::to_vec(body).unwrap_or_else(|_| b"{}".to_vec());
    with_type(status, "application/json", text)
}

/// `status` with `body` of `content_type`.
pub fn with_type(status: StatusCode, content_type: &'static str, body: impl Into<Bytes>) -> Reply {
    let mut reply = Response::new(Full::new(body.into()));
    *reply.status_mut() = status;
    reply
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    reply
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    success: bool,
    errors: [ErrorDetail<'a>; 1],
}

#[derive(Serialize)]
struct ErrorDetail<'a> {
    code: &'a str,
    message: &'a str,
}

/// An error answer: `code` is a word a program can match (`TAG_INVALID`,
/// `NOT_FOUND`, ...), `message` says what was wrong for a person.
pub fn error(status: StatusCode, code: &str, message: &str) -> Reply {
    let body = ErrorBody {
        success: false,
        errors: [ErrorDetail { code, message }],
    };
    json(status, &body)
}
