//! `POST /purge`: INVALIDATE_TAGS for webhooks, with a body shaped like
//! Cloudflare's purge API: `{"tags": ["post:3", "posts"]}`, or for a soft
//! invalidation `{"tags": [...], "soft": true, "expire": 3600}` (entries
//! stay readable as STALE by ALLOW_STALE reads for `expire` seconds).
//!
//! The request is encoded as the INVALIDATE_TAGS frame a client would send
//! and decoded by the data port's own codec, so the tag rules and limits
//! are the data port's by construction, with its error codes and messages;
//! then it is planned and run by the same code as a data-port request
//! ([`super::workers::run_request`]), and answered once every shard has
//! applied it.

use bytes::{Bytes, BytesMut};
use hyper::StatusCode;
use serde::{Deserialize, Serialize};
use tagcached_protocol::request::{Command, InvalidateTags};
use tagcached_protocol::response::Outcome;
use tagcached_protocol::tag::validate_tag_count;
use tagcached_protocol::{Request, ServerCodec};
use tokio_util::codec::Decoder;

use super::reply::{self, Reply};
use super::workers::{run_request, Unanswered};
use super::AdminState;

/// The body, as JSON. Unknown fields are refused rather than ignored: a
/// caller that sends Cloudflare's `files` or `prefixes` must learn they
/// did nothing.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PurgeBody {
    tags: Vec<String>,
    #[serde(default)]
    soft: bool,
    expire: Option<u32>,
}

/// The answer. The sequence is a decimal string: it starts near 2^60
/// (the boot time, `sequence.rs`), beyond the 2^53 that JavaScript's
/// numbers, and so most webhooks' JSON parsers, hold exactly.
#[derive(Serialize)]
struct Purged {
    success: bool,
    sequence: String,
}

/// Answers a purge whose body is `body` (already bounded in size).
pub async fn purge(state: &AdminState, body: &Bytes) -> Reply {
    let bad = |code: &str, message: &str| reply::error(StatusCode::BAD_REQUEST, code, message);
    let parsed: PurgeBody = match serde_json::from_slice(body) {
        Ok(parsed) => parsed,
        Err(error) => {
            return bad(
                "BAD_JSON",
                &format!("the body is not a purge request: {error}"),
            )
        }
    };
    let soft_expire = match (parsed.soft, parsed.expire) {
        (true, Some(expire)) => Some(expire),
        (true, None) => return bad("BAD_REQUEST", "\"soft\": true needs \"expire\" (seconds)"),
        (false, Some(_)) => return bad("BAD_REQUEST", "\"expire\" is for \"soft\": true only"),
        (false, None) => None,
    };
    if parsed.tags.is_empty() {
        return bad("NO_TAGS", "\"tags\" must name at least one tag");
    }
    let limits = state.shared.config.limits;
    if let Err(invalid) = validate_tag_count(parsed.tags.len(), &limits) {
        return bad(invalid.code.name(), &invalid.message);
    }
    let tags = parsed.tags.into_iter().map(Bytes::from).collect();
    let request = Request::new(
        0,
        Command::InvalidateTags(InvalidateTags { tags, soft_expire }),
    );
    let request = match as_the_data_port_reads_it(request, &state.shared.config.limits) {
        Ok(request) => request,
        Err((code, message)) => return bad(code, &message),
    };
    match run_request(request, &state.shared, &state.router).await {
        Ok(response) => match response.outcome {
            Outcome::Sequence(sequence) => reply::json(
                StatusCode::OK,
                &Purged {
                    success: true,
                    sequence: sequence.to_string(),
                },
            ),
            Outcome::Error(error) => {
                bad(error.code.name(), &String::from_utf8_lossy(&error.message))
            }
            other => reply::error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "INTERNAL",
                &format!("unexpected answer {other:?}"),
            ),
        },
        Err(Unanswered::Stopping) => reply::error(
            StatusCode::SERVICE_UNAVAILABLE,
            "STOPPING",
            "the server is stopping",
        ),
        Err(error @ Unanswered::Garbled(_)) => reply::error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "INTERNAL",
            &error.to_string(),
        ),
    }
}

/// `request` encoded and decoded by the server's codec: the request the
/// data port would plan, or the error code and message it would answer.
fn as_the_data_port_reads_it(
    request: Request,
    limits: &tagcached_protocol::Limits,
) -> Result<Request, (&'static str, String)> {
    let mut frame = BytesMut::with_capacity(request.encoded_len());
    request.encode(&mut frame);
    match ServerCodec::new(*limits).decode(&mut frame) {
        Ok(Some(Ok(request))) => Ok(request),
        Ok(Some(Err(refused))) => Err((refused.error.code.name(), refused.error.message.into())),
        Ok(None) => Err(("MALFORMED", "the request could not be framed".to_owned())),
        Err(fatal) => Err(("TOO_LARGE", fatal.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(tags: &[&str], soft_expire: Option<u32>) -> Result<Request, (&'static str, String)> {
        let tags = tags
            .iter()
            .map(|tag| Bytes::from(tag.to_string()))
            .collect();
        let request = Request::new(
            0,
            Command::InvalidateTags(InvalidateTags { tags, soft_expire }),
        );
        as_the_data_port_reads_it(request, &tagcached_protocol::Limits::default())
    }

    #[test]
    fn the_codec_applies_the_data_ports_tag_rules() {
        let request = read(&["post:3", "posts"], Some(60)).expect("valid");
        assert!(matches!(
            request.command,
            Command::InvalidateTags(InvalidateTags {
                soft_expire: Some(60),
                ..
            })
        ));
        assert_eq!(
            read(&["two words"], None).expect_err("space").0,
            "TAG_INVALID"
        );
        assert_eq!(read(&[""], None).expect_err("empty").0, "TAG_INVALID");
    }
}
