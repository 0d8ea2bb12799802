//! A plain HTTP/1.1 client for the admin API ([`http`]): one request per
//! connection (`Connection: close`), the answer read to its end, every
//! step bounded by [`crate::RECV_TIMEOUT`]. Written out rather than taken
//! from an HTTP crate so tests can send what a well-behaved client would
//! not: a body larger than it declares, a wrong method, no body at all.

use std::net::SocketAddr;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::RECV_TIMEOUT;

/// An answer: status, headers (names in lower case) and body.
#[derive(Debug, Clone)]
pub struct HttpReply {
    /// The status code.
    pub status: u16,
    /// Header names (lower case) and values, in order.
    pub headers: Vec<(String, String)>,
    /// The body as text.
    pub body: String,
}

impl HttpReply {
    /// The first value of header `name` (any case).
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(found, _)| *found == name)
            .map(|(_, value)| value.as_str())
    }

    /// The body as JSON; panics if it is not.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|error| panic!("not JSON ({error}): {}", self.body))
    }

    /// The `code` of a `{"success": false, "errors": [{"code": ...}]}`
    /// body; panics on any other shape.
    pub fn error_code(&self) -> String {
        let json = self.json();
        assert_eq!(json["success"], false, "{json}");
        json["errors"][0]["code"]
            .as_str()
            .unwrap_or_else(|| panic!("no errors[0].code: {json}"))
            .to_owned()
    }
}

/// Sends `method path` with `headers` and `body` to `addr`, and reads the
/// answer. A `Content-Length` for `body` is added unless `headers` has one
/// (to declare a length the body does not have).
pub async fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> HttpReply {
    let length = body.len().to_string();
    let mut headers = headers.to_vec();
    if !headers
        .iter()
        .any(|(name, _)| name.eq_ignore_ascii_case("content-length"))
    {
        headers.push(("Content-Length", &length));
    }
    let exchange = async {
        let mut stream = TcpStream::connect(addr).await?;
        let mut request =
            format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
        for (name, value) in headers {
            request.push_str(&format!("{name}: {value}\r\n"));
        }
        request.push_str("\r\n");
        stream.write_all(request.as_bytes()).await?;
        stream.write_all(body).await?;
        let mut answer = Vec::new();
        stream.read_to_end(&mut answer).await?;
        Ok::<_, std::io::Error>(answer)
    };
    let answer = tokio::time::timeout(RECV_TIMEOUT, exchange)
        .await
        .unwrap_or_else(|_| panic!("{method} {path}: no answer within {RECV_TIMEOUT:?}"))
        .unwrap_or_else(|error| panic!("{method} {path}: {error}"));
    parse(&answer).unwrap_or_else(|| {
        panic!(
            "{method} {path}: not an HTTP answer: {:?}",
            String::from_utf8_lossy(&answer)
        )
    })
}

fn parse(answer: &[u8]) -> Option<HttpReply> {
    let text = std::str::from_utf8(answer).ok()?;
    let (head, body) = text.split_once("\r\n\r\n")?;
    let mut lines = head.split("\r\n");
    let status = lines.next()?.split(' ').nth(1)?.parse().ok()?;
    let headers = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(name, value)| (name.trim().to_ascii_lowercase(), value.trim().to_owned()))
        .collect();
    Some(HttpReply {
        status,
        headers,
        body: body.to_owned(),
    })
}
