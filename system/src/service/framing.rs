//! Envelopes for the rejections hyper makes itself.
//!
//! When a request cannot be parsed (a header value with a control byte, a malformed request
//! line, a header section or URI too long), hyper answers before any service sees the
//! request: a bare `400`, `414` or `431` with an empty body and no request id, then closes
//! the connection. Hyper has no hook for that answer, so [`EnvelopeIo`] wraps each accepted
//! connection and rewrites exactly that response on its way out into the documented
//! envelope with a fresh request id. Every other byte passes through untouched. The
//! service's own error responses always carry an envelope body, so an empty-bodied error
//! response on the wire can only be hyper's.
//!
//! [`EnvelopeListener`] applies it to every connection an axum listener accepts.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use crate::api::{ErrorBody, ErrorEnvelope};
use crate::seed::IdGen;

/// A connection whose parse-error responses from hyper go out in the error envelope.
#[derive(Debug)]
pub struct EnvelopeIo<T> {
    inner: T,
    ids: Arc<IdGen>,
    rewrite: Option<Rewrite>,
}

/// A rewritten response on its way out.
#[derive(Debug)]
struct Rewrite {
    bytes: Vec<u8>,
    written: usize,
    /// How many of hyper's bytes the rewrite stands for (reported written when it is done).
    replaces: usize,
}

impl<T> EnvelopeIo<T> {
    /// Wraps `inner`; request ids of rewritten responses come from `ids`.
    pub fn new(inner: T, ids: Arc<IdGen>) -> Self {
        EnvelopeIo {
            inner,
            ids,
            rewrite: None,
        }
    }
}

/// The envelope code and message of hyper's automatic answer with `status`.
fn parse_error(status: u16) -> Option<(&'static str, &'static str)> {
    match status {
        400 => Some((
            "malformed_request",
            "the request is not valid HTTP/1.1: its request line or a header is malformed (header values may not contain control characters)",
        )),
        414 => Some(("uri_too_long", "the request URI is too long")),
        431 => Some((
            "headers_too_large",
            "the request's header section is too large",
        )),
        _ => None,
    }
}

/// If `head` is exactly hyper's automatic answer to an unparseable request (a status line
/// with 400, 414 or 431, `content-length: 0`, no content type, nothing after the head),
/// the same answer with the envelope as its body and `request_id` in `X-Request-Id`.
#[must_use]
pub fn envelope_parse_error(head: &[u8], request_id: impl FnOnce() -> String) -> Option<Vec<u8>> {
    let text = std::str::from_utf8(head).ok()?;
    let head_end = text.find("\r\n\r\n")?;
    if head_end + 4 != text.len() || !text.starts_with("HTTP/1.") {
        return None;
    }
    let mut lines = text[..head_end].split("\r\n");
    let status_line = lines.next()?;
    let status: u16 = status_line.get(9..12)?.parse().ok()?;
    let (code, message) = parse_error(status)?;
    let headers: Vec<&str> = lines.collect();
    let lower = |line: &&str| line.to_ascii_lowercase();
    if !headers.iter().any(|h| lower(h) == "content-length: 0")
        || headers
            .iter()
            .any(|h| lower(h).starts_with("content-type:"))
    {
        return None;
    }
    let request_id = request_id();
    let body = serde_json::to_vec(&ErrorEnvelope {
        error: ErrorBody {
            code: code.to_string(),
            message: message.to_string(),
            details: Vec::new(),
            request_id: request_id.clone(),
        },
    })
    .expect("envelope serialises");
    let mut out = format!("{status_line}\r\n");
    for header in headers {
        let name = lower(&header);
        if !name.starts_with("content-length:") && !name.starts_with("connection:") {
            out.push_str(header);
            out.push_str("\r\n");
        }
    }
    out.push_str(&format!(
        "content-type: application/json\r\nx-request-id: {request_id}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
        body.len()
    ));
    let mut bytes = out.into_bytes();
    bytes.extend_from_slice(&body);
    Some(bytes)
}

impl<T: AsyncRead + Unpin> AsyncRead for EnvelopeIo<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_read(cx, buf)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for EnvelopeIo<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if this.rewrite.is_none() {
            let ids = &this.ids;
            match envelope_parse_error(buf, || ids.next("req")) {
                Some(bytes) => {
                    this.rewrite = Some(Rewrite {
                        bytes,
                        written: 0,
                        replaces: buf.len(),
                    });
                }
                None => return Pin::new(&mut this.inner).poll_write(cx, buf),
            }
        }
        let rewrite = this.rewrite.as_mut().expect("set above");
        while rewrite.written < rewrite.bytes.len() {
            let written = ready!(
                Pin::new(&mut this.inner).poll_write(cx, &rewrite.bytes[rewrite.written..])
            )?;
            if written == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            rewrite.written += written;
        }
        let replaces = rewrite.replaces;
        this.rewrite = None;
        Poll::Ready(Ok(replaces))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }

    /// Writes arrive one buffer at a time (hyper then flattens a response into one), so a
    /// parse-error answer is seen whole.
    fn is_write_vectored(&self) -> bool {
        false
    }
}

/// An axum listener whose connections are [`EnvelopeIo`]s.
#[derive(Debug)]
pub struct EnvelopeListener<L> {
    inner: L,
    ids: Arc<IdGen>,
}

impl<L> EnvelopeListener<L> {
    /// Wraps `inner`; request ids of rewritten responses come from `ids`.
    pub fn new(inner: L, ids: Arc<IdGen>) -> Self {
        EnvelopeListener { inner, ids }
    }
}

impl<L: axum::serve::Listener> axum::serve::Listener for EnvelopeListener<L> {
    type Io = EnvelopeIo<L::Io>;
    type Addr = L::Addr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        let (io, address) = self.inner.accept().await;
        (EnvelopeIo::new(io, self.ids.clone()), address)
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        self.inner.local_addr()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hyper_parse_errors_get_the_envelope_and_a_request_id() {
        // Proves hyper's automatic answers (as hyper writes them: status line, content
        // length 0, maybe a date) become the same status with a JSON envelope body, a
        // request id header equal to the body's, and the connection closed.
        let head = b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\ndate: Thu, 01 Jan 2026 00:00:00 GMT\r\n\r\n";
        let out = envelope_parse_error(head, || "req_1".to_string()).expect("rewritten");
        let text = String::from_utf8(out).unwrap();
        let (head, body) = text.split_once("\r\n\r\n").unwrap();
        assert!(head.starts_with("HTTP/1.1 400 Bad Request\r\n"), "{head}");
        assert!(head.contains("date: Thu, 01 Jan 2026 00:00:00 GMT"));
        assert!(head.contains("content-type: application/json"));
        assert!(head.contains("x-request-id: req_1"));
        assert!(head.contains("connection: close"));
        assert!(head.contains(&format!("content-length: {}", body.len())));
        let envelope: ErrorEnvelope = serde_json::from_str(body).unwrap();
        assert_eq!(envelope.error.code, "malformed_request");
        assert_eq!(envelope.error.request_id, "req_1");
        for (status, code) in [
            ("431 Request Header Fields Too Large", "headers_too_large"),
            ("414 URI Too Long", "uri_too_long"),
        ] {
            let head = format!("HTTP/1.1 {status}\r\ncontent-length: 0\r\n\r\n");
            let out = envelope_parse_error(head.as_bytes(), || "r".into()).unwrap();
            assert!(String::from_utf8(out).unwrap().contains(code), "{status}");
        }
    }

    #[test]
    fn every_other_write_passes_through() {
        // Proves nothing but an empty-bodied 400/414/431 head is touched: a response with a
        // body, a JSON error, another status, a head split from its body, and arbitrary
        // bytes are all left alone.
        for bytes in [
            &b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n"[..],
            b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n",
            b"HTTP/1.1 400 Bad Request\r\ncontent-type: application/json\r\ncontent-length: 0\r\n\r\n",
            b"HTTP/1.1 400 Bad Request\r\ncontent-length: 2\r\n\r\n{}",
            b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n",
            b"{\"error\":1}",
            b"\xff\xfe",
        ] {
            assert!(
                envelope_parse_error(bytes, || unreachable!("no id drawn")).is_none(),
                "{}",
                String::from_utf8_lossy(bytes)
            );
        }
    }
}
