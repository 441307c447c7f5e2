//! A minimal HTTP/1.1 client over a plain TCP socket, the default for
//! `http://` targets.
//!
//! Each request of the pool is serialized once, headers and body in one
//! buffer, before the run. An exchange is then one `write` of those bytes
//! and as many `read`s as the response needs, parsed with `httparse` (the
//! parser hyper uses) into a status and a body length. There is no
//! channel, task or header map between the worker and the socket, so the
//! client's own cost per request is a fraction of hyper's. On a fast
//! receiver that cost decides the achievable rate.
//!
//! Responses are framed as RFC 9112 section 6 says: no body after 1xx, 204
//! and 304; `Transfer-Encoding` ending in `chunked` is decoded; another
//! `Transfer-Encoding` or no length at all reads to the end of the
//! connection; otherwise `Content-Length` counts. Informational (1xx)
//! responses before the final one are skipped, except 101, which ends the
//! exchange. Redirects are not followed: a 307 counts as a 307.
//!
//! A connection is kept alive unless the response says `Connection:
//! close`, is HTTP/1.0 without `keep-alive`, reads to the end, is cut at
//! the body cap or carries bytes past its end. Before a connection is
//! reused, its read readiness is checked (no system call in the common
//! case): a connection the receiver closed while it was idle is replaced
//! instead of failing the next request.

use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

use bytes::{Buf, Bytes, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;
use url::Url;

use super::client::{
    Connection, Deadline, Endpoint, Exchange, TargetError, Transport, failure, protocol_failure,
};
use crate::delivery::{ConnectionErrorKind, DeliveryConfig, TimeoutPhase};
use crate::secret::Redactor;

/// The largest response head (status line and headers) accepted, in bytes.
const MAX_HEAD_BYTES: usize = 64 * 1024;

/// The maximum number of response headers accepted, the same as hyper's
/// default.
const MAX_HEADERS: usize = 100;

/// The free buffer space reserved before each read, in bytes. Small,
/// because every connection keeps its buffer and a webhook response is
/// small; a large body is read in several steps.
const READ_CHUNK: usize = 4 * 1024;

/// The part of the target every connection shares.
#[derive(Debug)]
struct RawTarget {
    endpoint: Endpoint,
    /// Each pool body as a whole request: request line, headers, body.
    requests: Vec<Bytes>,
    timeout: Duration,
    idle_timeout: Duration,
    max_response_body: usize,
    redactor: Redactor,
}

/// The minimal HTTP/1.1 client: one plain TCP connection per worker.
#[derive(Debug, Clone)]
pub struct RawTransport {
    target: Arc<RawTarget>,
}

impl RawTransport {
    /// Prepares requests to `url` (token already in its query) carrying
    /// `bodies`, under the deadline, idle timeout and response cap of
    /// `config`, and resolves the host.
    pub async fn new(
        url: &Url,
        bodies: Vec<Bytes>,
        config: &DeliveryConfig,
        redactor: Redactor,
    ) -> Result<RawTransport, TargetError> {
        let endpoint = Endpoint::resolve(url, &redactor).await?;
        let invalid = |cause: &str| TargetError::InvalidRequest {
            url: redactor.redact_url(url.as_str()),
            cause: cause.to_string(),
        };
        // Anything outside visible ASCII could end the request line or a
        // header early. The url crate percent-encodes such bytes in URLs,
        // so in practice this guards against a Content-Type with a line
        // break.
        let visible = |text: &str| text.bytes().all(|byte| (0x21..=0x7e).contains(&byte));
        if !visible(&endpoint.path_and_query) || !visible(&endpoint.authority) {
            return Err(invalid(
                "the URL contains characters that cannot go in a request line",
            ));
        }
        if config
            .content_type
            .bytes()
            .any(|byte| byte < 0x20 || byte == 0x7f)
        {
            return Err(invalid("the Content-Type contains a control character"));
        }

        let requests = bodies
            .iter()
            .map(|body| serialize_request(&endpoint, &config.content_type, body))
            .collect();
        Ok(RawTransport {
            target: Arc::new(RawTarget {
                endpoint,
                requests,
                timeout: config.timeout,
                idle_timeout: config.pool_idle_timeout,
                max_response_body: config.max_response_body,
                redactor,
            }),
        })
    }
}

/// Writes one POST request, headers and body, into one buffer.
fn serialize_request(endpoint: &Endpoint, content_type: &str, body: &[u8]) -> Bytes {
    let head = format!(
        "POST {} HTTP/1.1\r\nHost: {}\r\nContent-Type: {}\r\nContent-Length: {}\r\nUser-Agent: mewshook/{}\r\n\r\n",
        endpoint.path_and_query,
        endpoint.authority,
        content_type,
        body.len(),
        env!("CARGO_PKG_VERSION"),
    );
    let mut request = Vec::with_capacity(head.len() + body.len());
    request.extend_from_slice(head.as_bytes());
    request.extend_from_slice(body);
    Bytes::from(request)
}

impl Transport for RawTransport {
    type Connection = RawConnection;

    fn open(&self) -> RawConnection {
        RawConnection {
            target: self.target.clone(),
            socket: None,
            deadline: Deadline::new(),
        }
    }
}

/// An open socket and the bytes read from it but not yet parsed.
struct Socket {
    stream: TcpStream,
    buffer: BytesMut,
    idle_since: Instant,
}

/// One worker's connection; reconnects whenever the last one closed,
/// broke, timed out or sat idle too long.
pub struct RawConnection {
    target: Arc<RawTarget>,
    socket: Option<Socket>,
    deadline: Deadline,
}

impl Connection for RawConnection {
    async fn exchange(&mut self, body: usize) -> Exchange {
        let deadline = Instant::now() + self.target.timeout;
        let mut phase = TimeoutPhase::Headers;
        let RawConnection {
            target,
            socket,
            deadline: timer,
        } = self;
        let exchange = exchange_on(target, socket, body, &mut phase);
        match timer.run(deadline, exchange).await {
            Some(exchange) => exchange,
            None => {
                // The response may still arrive; the socket cannot be
                // trusted for the next request.
                *socket = None;
                Exchange::TimedOut { phase }
            }
        }
    }
}

/// The way the body of a response ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Framing {
    /// No body.
    Empty,
    /// Exactly this many bytes.
    Length(u64),
    /// Chunked transfer coding.
    Chunked,
    /// Everything until the receiver closes the connection.
    UntilClose,
}

/// The parts of a response head that framing and reuse depend on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Head {
    status: u16,
    framing: Framing,
    /// Whether the connection must close after this response.
    close: bool,
}

/// Runs one exchange on `socket`, opened or reused as needed.
async fn exchange_on(
    target: &RawTarget,
    socket: &mut Option<Socket>,
    body: usize,
    phase: &mut TimeoutPhase,
) -> Exchange {
    let head = match send_request(target, socket, body).await {
        Ok(head) => head,
        Err(failed) => {
            *socket = None;
            return failed;
        }
    };
    let Some(open) = socket.as_mut() else {
        return protocol_failure("the connection closed after the response headers");
    };

    *phase = TimeoutPhase::Body;
    let complete = match read_body(
        open,
        head.framing,
        target.max_response_body,
        &target.redactor,
    )
    .await
    {
        Ok(complete) => complete,
        Err(failed) => {
            *socket = None;
            return failed;
        }
    };
    // A connection is only reused when this response ended exactly where
    // the bytes read so far end; anything else would garble the next one.
    let keep =
        complete && !head.close && head.framing != Framing::UntilClose && open.buffer.is_empty();
    if keep {
        open.idle_since = Instant::now();
    } else {
        *socket = None;
    }
    Exchange::Responded {
        status: head.status,
    }
}

/// Sends request `body` and reads the final response head, on the open
/// connection if it is still usable and on a new one otherwise.
///
/// A receiver may close an idle connection at any time. A close that
/// arrived before the request is seen by `reusable`, and a reused
/// connection whose write fails never delivered the request, so in those
/// cases the request goes out on a new connection. Once the write
/// succeeded, the receiver may have read the request, so a connection that
/// then ends without a response counts as a failure: resending would hide
/// a receiver that drops requests and double the load it was given.
async fn send_request(
    target: &RawTarget,
    socket: &mut Option<Socket>,
    body: usize,
) -> Result<Head, Exchange> {
    let request = &target.requests[body % target.requests.len()];
    loop {
        let reused = match socket.as_mut() {
            Some(open) => reusable(open, target.idle_timeout).await,
            None => false,
        };
        if !reused {
            let stream = target
                .endpoint
                .connect()
                .await
                .map_err(|error| failure(&error, &target.redactor))?;
            *socket = Some(Socket {
                stream,
                buffer: BytesMut::with_capacity(READ_CHUNK),
                idle_since: Instant::now(),
            });
        }
        let Some(open) = socket.as_mut() else {
            return Err(protocol_failure(
                "the connection closed before the request was sent",
            ));
        };

        let mut received = false;
        if let Err(error) = open.stream.write_all(request).await {
            *socket = None;
            let failed = failure(&error, &target.redactor);
            if !reused {
                return Err(failed);
            }
            continue;
        }
        let result = read_head(open, &mut received, &target.redactor).await;
        if result.is_err() {
            *socket = None;
        }
        return result;
    }
}

/// Checks whether an idle connection can carry another request: not idle too
/// long, and nothing (end of stream, reset, stray bytes) waiting to be
/// read.
async fn reusable(socket: &mut Socket, idle_timeout: Duration) -> bool {
    if socket.idle_since.elapsed() >= idle_timeout || !socket.buffer.is_empty() {
        return false;
    }
    // Readiness is cached by tokio, so this costs no system call unless
    // the socket was reported readable since the last read.
    let stream = &socket.stream;
    let readable =
        std::future::poll_fn(|context| Poll::Ready(stream.poll_read_ready(context).is_ready()))
            .await;
    if !readable {
        return true;
    }
    // Readiness can be stale; a read that would block proves the
    // connection is still quiet.
    let mut probe = [0u8; 1];
    matches!(
        socket.stream.try_read(&mut probe),
        Err(error) if error.kind() == std::io::ErrorKind::WouldBlock
    )
}

/// Reads more bytes into the buffer; `Ok(0)` is the end of the stream.
async fn fill(socket: &mut Socket) -> std::io::Result<usize> {
    socket.buffer.reserve(READ_CHUNK);
    socket.stream.read_buf(&mut socket.buffer).await
}

/// Reads and parses the final response head, skipping informational
/// responses. `received` is set once any byte of a response arrives.
async fn read_head(
    socket: &mut Socket,
    received: &mut bool,
    redactor: &Redactor,
) -> Result<Head, Exchange> {
    loop {
        if !socket.buffer.is_empty() {
            match parse_head(&socket.buffer) {
                Ok(Some((head, length))) => {
                    socket.buffer.advance(length);
                    let informational = (100..200).contains(&head.status) && head.status != 101;
                    if informational {
                        continue;
                    }
                    return Ok(head);
                }
                Ok(None) => {}
                Err(detail) => return Err(protocol_failure(detail)),
            }
        }
        if socket.buffer.len() >= MAX_HEAD_BYTES {
            return Err(protocol_failure(format!(
                "the response head is larger than {} KiB",
                MAX_HEAD_BYTES / 1024
            )));
        }
        match fill(socket).await {
            Ok(0) => {
                return Err(Exchange::Failed {
                    kind: ConnectionErrorKind::Reset,
                    detail: "the connection closed before the response headers arrived".to_string(),
                });
            }
            Ok(_) => *received = true,
            Err(error) => return Err(failure(&error, redactor)),
        }
    }
}

/// Parses a response head from the start of `bytes`: the head and its
/// length, `None` when more bytes are needed, or why it is invalid.
fn parse_head(bytes: &[u8]) -> Result<Option<(Head, usize)>, String> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut response = httparse::Response::new(&mut headers);
    let length = match response.parse(bytes) {
        Ok(httparse::Status::Complete(length)) => length,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(error) => return Err(format!("invalid HTTP response: {error}")),
    };
    let status = response
        .code
        .ok_or_else(|| "invalid HTTP response: no status code".to_string())?;
    let http_10 = response.version == Some(0);

    let mut content_length: Option<u64> = None;
    let mut transfer_encoding: Option<bool> = None;
    let mut close = http_10;
    for header in response.headers.iter() {
        let value = std::str::from_utf8(header.value).unwrap_or("");
        if header.name.eq_ignore_ascii_case("content-length") {
            let parsed: u64 = value
                .trim()
                .parse()
                .map_err(|_| format!("invalid Content-Length \"{}\"", value.trim()))?;
            if content_length.is_some_and(|known| known != parsed) {
                return Err("conflicting Content-Length headers".to_string());
            }
            content_length = Some(parsed);
        } else if header.name.eq_ignore_ascii_case("transfer-encoding") {
            let last = value.rsplit(',').next().unwrap_or("").trim();
            transfer_encoding = Some(last.eq_ignore_ascii_case("chunked"));
        } else if header.name.eq_ignore_ascii_case("connection") {
            for token in value.split(',').map(str::trim) {
                if token.eq_ignore_ascii_case("close") {
                    close = true;
                } else if token.eq_ignore_ascii_case("keep-alive") && http_10 {
                    close = false;
                }
            }
        }
    }

    let framing = if (100..200).contains(&status) || status == 204 || status == 304 {
        Framing::Empty
    } else if let Some(chunked) = transfer_encoding {
        if chunked {
            Framing::Chunked
        } else {
            Framing::UntilClose
        }
    } else if let Some(length) = content_length {
        Framing::Length(length)
    } else {
        Framing::UntilClose
    };
    // 101 switches the connection to another protocol.
    let close = close || status == 101;
    Ok(Some((
        Head {
            status,
            framing,
            close,
        },
        length,
    )))
}

/// Reads the response body and throws it away. Returns whether it was
/// read to its end: `false` when it passed `cap` bytes and reading
/// stopped there.
async fn read_body(
    socket: &mut Socket,
    framing: Framing,
    cap: usize,
    redactor: &Redactor,
) -> Result<bool, Exchange> {
    let mut seen = 0usize;
    match framing {
        Framing::Empty => Ok(true),
        Framing::Length(length) => {
            let mut remaining = length;
            while remaining > 0 {
                if seen > cap {
                    return Ok(false);
                }
                if socket.buffer.is_empty() {
                    ensure_more(
                        socket,
                        "the connection closed before the response body ended",
                        redactor,
                    )
                    .await?;
                }
                let take = socket
                    .buffer
                    .len()
                    .min(usize::try_from(remaining).unwrap_or(usize::MAX));
                socket.buffer.advance(take);
                remaining -= take as u64;
                seen += take;
            }
            Ok(true)
        }
        Framing::UntilClose => loop {
            seen += socket.buffer.len();
            socket.buffer.clear();
            if seen > cap {
                return Ok(false);
            }
            match fill(socket).await {
                Ok(0) => return Ok(true),
                Ok(_) => {}
                Err(error) => return Err(failure(&error, redactor)),
            }
        },
        Framing::Chunked => read_chunked(socket, cap, redactor).await,
    }
}

/// Reads at least one more byte, or fails with `closed` at the end of the
/// stream.
async fn ensure_more(
    socket: &mut Socket,
    closed: &str,
    redactor: &Redactor,
) -> Result<(), Exchange> {
    match fill(socket).await {
        Ok(0) => Err(Exchange::Failed {
            kind: ConnectionErrorKind::Reset,
            detail: closed.to_string(),
        }),
        Ok(_) => Ok(()),
        Err(error) => Err(failure(&error, redactor)),
    }
}

/// Decodes a chunked body, counting its data against `cap`.
async fn read_chunked(
    socket: &mut Socket,
    cap: usize,
    redactor: &Redactor,
) -> Result<bool, Exchange> {
    const CLOSED: &str = "the connection closed inside a chunked response body";
    let mut seen = 0usize;
    loop {
        // The chunk size line.
        let size = loop {
            match httparse::parse_chunk_size(&socket.buffer) {
                Ok(httparse::Status::Complete((used, size))) => {
                    socket.buffer.advance(used);
                    break size;
                }
                Ok(httparse::Status::Partial) => {
                    if socket.buffer.len() >= MAX_HEAD_BYTES {
                        return Err(protocol_failure("a chunk size line is too long"));
                    }
                    ensure_more(socket, CLOSED, redactor).await?;
                }
                Err(_) => return Err(protocol_failure("invalid chunk size in a chunked body")),
            }
        };
        if size == 0 {
            return read_trailers(socket, redactor).await.map(|()| true);
        }

        // The chunk data and the line break after it.
        let mut remaining = size;
        while remaining > 0 {
            if seen > cap {
                return Ok(false);
            }
            if socket.buffer.is_empty() {
                ensure_more(socket, CLOSED, redactor).await?;
            }
            let take = socket
                .buffer
                .len()
                .min(usize::try_from(remaining).unwrap_or(usize::MAX));
            socket.buffer.advance(take);
            remaining -= take as u64;
            seen += take;
        }
        while socket.buffer.len() < 2 {
            ensure_more(socket, CLOSED, redactor).await?;
        }
        if &socket.buffer[..2] != b"\r\n" {
            return Err(protocol_failure("a chunk does not end with a line break"));
        }
        socket.buffer.advance(2);
    }
}

/// Skips the trailer section after the last chunk, up to its empty line.
async fn read_trailers(socket: &mut Socket, redactor: &Redactor) -> Result<(), Exchange> {
    const CLOSED: &str = "the connection closed inside the trailers of a chunked body";
    let mut skipped = 0usize;
    loop {
        match socket.buffer.windows(2).position(|pair| pair == b"\r\n") {
            Some(0) => {
                socket.buffer.advance(2);
                return Ok(());
            }
            Some(end) => {
                socket.buffer.advance(end + 2);
                skipped += end + 2;
            }
            None => {
                if skipped + socket.buffer.len() >= MAX_HEAD_BYTES {
                    return Err(protocol_failure(
                        "the trailers of a chunked body are too long",
                    ));
                }
                ensure_more(socket, CLOSED, redactor).await?;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(text: &str) -> Head {
        parse_head(text.as_bytes()).unwrap().unwrap().0
    }

    #[test]
    fn framing_follows_rfc_9112() {
        let cases = [
            (
                "HTTP/1.1 202 Accepted\r\ncontent-length: 12\r\n\r\n",
                Framing::Length(12),
            ),
            (
                "HTTP/1.1 204 No Content\r\ncontent-length: 5\r\n\r\n",
                Framing::Empty,
            ),
            ("HTTP/1.1 304 Not Modified\r\n\r\n", Framing::Empty),
            ("HTTP/1.1 100 Continue\r\n\r\n", Framing::Empty),
            (
                "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\ncontent-length: 3\r\n\r\n",
                Framing::Chunked,
            ),
            (
                "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n",
                Framing::UntilClose,
            ),
            ("HTTP/1.1 200 OK\r\n\r\n", Framing::UntilClose),
        ];
        for (text, framing) in cases {
            assert_eq!(head(text).framing, framing, "{text:?}");
        }
    }

    #[test]
    fn connection_close_rules() {
        assert!(!head("HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n").close);
        assert!(head("HTTP/1.1 200 OK\r\nConnection: Close\r\ncontent-length: 0\r\n\r\n").close);
        assert!(head("HTTP/1.0 200 OK\r\ncontent-length: 0\r\n\r\n").close);
        assert!(
            !head("HTTP/1.0 200 OK\r\nconnection: keep-alive\r\ncontent-length: 0\r\n\r\n").close
        );
        assert!(head("HTTP/1.1 101 Switching Protocols\r\n\r\n").close);
    }

    #[test]
    fn partial_and_invalid_heads() {
        assert_eq!(parse_head(b"HTTP/1.1 200 OK\r\ncontent-le"), Ok(None));
        let error = parse_head(b"NOT HTTP\r\n\r\n").unwrap_err();
        assert!(error.starts_with("invalid HTTP response"), "{error}");
        let error = parse_head(b"HTTP/1.1 200 OK\r\ncontent-length: ten\r\n\r\n").unwrap_err();
        assert!(error.contains("\"ten\""), "{error}");
        let error =
            parse_head(b"HTTP/1.1 200 OK\r\ncontent-length: 1\r\ncontent-length: 2\r\n\r\n")
                .unwrap_err();
        assert!(error.contains("conflicting"), "{error}");
    }

    #[test]
    fn request_is_one_buffer() {
        let endpoint = Endpoint {
            addrs: Vec::new(),
            authority: "127.0.0.1:8080".to_string(),
            path_and_query: "/hooks?Token=abc".to_string(),
        };
        let request = serialize_request(&endpoint, "application/json", b"{}");
        let text = std::str::from_utf8(&request).unwrap();
        assert!(text.starts_with("POST /hooks?Token=abc HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n"));
        assert!(text.contains("\r\nContent-Length: 2\r\n"));
        assert!(text.ends_with("\r\n\r\n{}"));
    }
}
