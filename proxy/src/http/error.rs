//! Every way an HTTP exchange can end without a member's response, and what follows from it.
//!
//! One [`ExchangeError`] says which [`Side`] failed and what kind of failure it was, and from
//! that alone follow: the status the client gets, the short body it reads (which never names a
//! member: addresses go to the log), whether the request may go to another member
//! ([`Retry`]), and the `ballast_vserver_errors_total{side,kind}` series it counts in. Only
//! member-side failures count against a member.

use http::{HeaderValue, StatusCode, Version, header};

use super::body::ResponseBody;
pub use crate::error::Side;

/// Why an exchange ended without a member's response.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ExchangeError {
    /// The request line or headers are not HTTP (hyper answers `400` itself).
    MalformedHead,
    /// The client's body broke its own framing (a bad chunk size, a bad chunk end).
    MalformedBody,
    /// The client's body ended before its `Content-Length` or final chunk.
    IncompleteBody,
    /// The client's body stalled for longer than `clientbodytimeout`.
    BodyTimeout,
    /// No `Host`, two of them, or one that is no valid host.
    BadHost,
    /// A transfer coding other than `chunked` (`gzip, chunked`).
    UnsupportedTransferCoding,
    /// `CONNECT`: Ballast is no forward proxy.
    MethodNotAllowed,
    /// The request line and headers exceed `maxheaderlen` (counted here, or by hyper's read
    /// buffer, which answers `431` itself).
    HeadTooLarge,
    /// Every member tried refused the connection or did not accept it in time.
    ConnectFailed,
    /// The member closed the connection or broke the protocol before its response head.
    NoResponse,
    /// The member sent no response head within `svrtimeout` of having the whole request.
    ResponseTimeout,
    /// No member of the servicegroup is eligible (UP, enabled, not draining, not busy).
    NoMemberAvailable,
    /// Ballast could not open a socket to a member: it is out of file descriptors or memory.
    LocalResources,
    /// The vserver has no servicegroup bound, or was removed while the request was read.
    NotConfigured,
    /// Every eligible member is at the servicegroup's `maxclient` and `maxsurgequeue` wait
    /// already.
    SurgeQueueFull,
    /// The request waited `surgequeuetimeout` in the surge queue without a member coming free.
    SurgeQueueTimeout,
    /// A csvserver: no policy matched the request, and there is no `defaultlbvserver`.
    NoSwitchMatch,
    /// The TLS handshake with the member (an `SSL` servicegroup) failed: its certificate did
    /// not verify, it refused Ballast's, or it does not speak TLS. Nothing was sent.
    TlsHandshake,
}

/// Whether a failed request may go to another member.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retry {
    /// Nothing reached the member: another member can take the request as it is.
    AnotherMember,
    /// The request reached the member: only a copy that is safe to send twice (idempotent,
    /// without a body) may go again, once, after a reused keep-alive connection closed under it.
    IfReplayable,
    /// Trying again cannot help, or could do the request's work twice.
    Never,
}

impl ExchangeError {
    /// Every kind, in the order of [`ExchangeError::index`].
    pub const ALL: [ExchangeError; 18] = [
        ExchangeError::MalformedHead,
        ExchangeError::MalformedBody,
        ExchangeError::IncompleteBody,
        ExchangeError::BodyTimeout,
        ExchangeError::BadHost,
        ExchangeError::UnsupportedTransferCoding,
        ExchangeError::MethodNotAllowed,
        ExchangeError::HeadTooLarge,
        ExchangeError::ConnectFailed,
        ExchangeError::NoResponse,
        ExchangeError::ResponseTimeout,
        ExchangeError::NoMemberAvailable,
        ExchangeError::LocalResources,
        ExchangeError::NotConfigured,
        ExchangeError::SurgeQueueFull,
        ExchangeError::SurgeQueueTimeout,
        ExchangeError::NoSwitchMatch,
        ExchangeError::TlsHandshake,
    ];

    /// The position in [`ExchangeError::ALL`], for arrays of counters.
    pub fn index(self) -> usize {
        self as usize
    }

    pub fn side(self) -> Side {
        use ExchangeError::*;
        match self {
            MalformedHead
            | MalformedBody
            | IncompleteBody
            | BodyTimeout
            | BadHost
            | UnsupportedTransferCoding
            | MethodNotAllowed
            | HeadTooLarge
            | NoSwitchMatch => Side::Client,
            ConnectFailed | TlsHandshake | NoResponse | ResponseTimeout | NoMemberAvailable => {
                Side::Member
            }
            LocalResources | NotConfigured | SurgeQueueFull | SurgeQueueTimeout => Side::Ballast,
        }
    }

    /// The `kind` label of `ballast_vserver_errors_total`.
    pub fn kind(self) -> &'static str {
        use ExchangeError::*;
        match self {
            MalformedHead => "malformed_head",
            MalformedBody => "malformed_body",
            IncompleteBody => "incomplete_body",
            BodyTimeout => "body_timeout",
            BadHost => "bad_host",
            UnsupportedTransferCoding => "transfer_coding",
            MethodNotAllowed => "method",
            HeadTooLarge => "head_too_large",
            ConnectFailed => "connect",
            TlsHandshake => "tls_handshake",
            NoResponse => "no_response",
            ResponseTimeout => "timeout",
            NoMemberAvailable => "unavailable",
            LocalResources => "local_resources",
            NotConfigured => "not_configured",
            SurgeQueueFull => "surge_queue_full",
            SurgeQueueTimeout => "surge_queue_timeout",
            NoSwitchMatch => "no_switch_match",
        }
    }

    pub fn status(self) -> StatusCode {
        use ExchangeError::*;
        match self {
            MalformedHead | MalformedBody | IncompleteBody | BadHost => StatusCode::BAD_REQUEST,
            BodyTimeout => StatusCode::REQUEST_TIMEOUT,
            UnsupportedTransferCoding => StatusCode::NOT_IMPLEMENTED,
            MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            NoSwitchMatch => StatusCode::NOT_FOUND,
            HeadTooLarge => StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            NoResponse | TlsHandshake => StatusCode::BAD_GATEWAY,
            ResponseTimeout => StatusCode::GATEWAY_TIMEOUT,
            ConnectFailed | NoMemberAvailable | LocalResources | NotConfigured | SurgeQueueFull
            | SurgeQueueTimeout => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    pub fn retry(self) -> Retry {
        match self {
            ExchangeError::ConnectFailed | ExchangeError::TlsHandshake => Retry::AnotherMember,
            ExchangeError::NoResponse => Retry::IfReplayable,
            _ => Retry::Never,
        }
    }

    /// What the client reads after the status line: what went wrong on its side, or a generic
    /// line that names no member, servicegroup or address.
    pub fn client_message(self) -> &'static str {
        use ExchangeError::*;
        match self {
            MalformedHead => "the request line or headers are malformed",
            MalformedBody => "the request body is malformed (bad chunked framing)",
            IncompleteBody => "the request body ended before its announced length",
            BodyTimeout => "the request body stalled for longer than the server allows",
            BadHost => "the request needs exactly one valid Host header",
            UnsupportedTransferCoding => "transfer codings other than chunked are not supported",
            MethodNotAllowed => "CONNECT is not supported",
            HeadTooLarge => "the request line and headers are larger than the server allows",
            ConnectFailed => "no server could be reached; try again later",
            TlsHandshake => "the server could not be reached securely",
            NoResponse => "the server failed before responding",
            ResponseTimeout => "the server did not respond in time",
            NoMemberAvailable => "no server is available to take the request; try again later",
            LocalResources => "the proxy is short of resources; try again later",
            NotConfigured => "no server is configured to take the request",
            SurgeQueueFull => {
                "every server is busy and too many requests are waiting; try again later"
            }
            SurgeQueueTimeout => {
                "every server stayed busy for as long as a request may wait; try again later"
            }
            NoSwitchMatch => "nothing is configured to serve this request",
        }
    }

    /// The response Ballast sends for this error. After a client-side error the rest of the
    /// request may be unread, so an HTTP/1 connection is closed after it.
    pub fn response(self, version: Version) -> http::Response<ResponseBody> {
        let status = self.status();
        let text = format!("{status}: {}\n", self.client_message());
        let mut response = http::Response::new(ResponseBody::message(text));
        *response.status_mut() = status;
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; charset=utf-8"),
        );
        if self == ExchangeError::MethodNotAllowed {
            headers.insert(
                header::ALLOW,
                HeaderValue::from_static("GET, HEAD, POST, PUT, DELETE, OPTIONS, PATCH, TRACE"),
            );
        }
        if self.side() == Side::Client && version < Version::HTTP_2 {
            headers.insert(header::CONNECTION, HeaderValue::from_static("close"));
        }
        // The access log names the failure as its termination reason.
        response.extensions_mut().insert(self);
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_lists_every_kind_at_its_index() {
        for (i, error) in ExchangeError::ALL.iter().enumerate() {
            assert_eq!(error.index(), i, "{error:?}");
        }
    }

    #[test]
    fn client_errors_are_4xx_or_501_and_never_retried() {
        for error in ExchangeError::ALL {
            if error.side() == Side::Client {
                let status = error.status();
                assert!(
                    status.is_client_error() || status == StatusCode::NOT_IMPLEMENTED,
                    "{error:?}: {status}"
                );
                assert_eq!(error.retry(), Retry::Never, "{error:?}");
            } else {
                assert!(error.status().is_server_error(), "{error:?}");
            }
        }
    }

    #[test]
    fn bodies_name_the_status_and_close_http1_after_client_errors() {
        let response = ExchangeError::MalformedBody.response(Version::HTTP_11);
        assert_eq!(response.status(), StatusCode::BAD_REQUEST);
        assert_eq!(response.headers()[header::CONNECTION], "close");
        let response = ExchangeError::MalformedBody.response(Version::HTTP_2);
        assert!(!response.headers().contains_key(header::CONNECTION));
        let response = ExchangeError::NoResponse.response(Version::HTTP_11);
        assert!(!response.headers().contains_key(header::CONNECTION));
        assert!(
            ExchangeError::MethodNotAllowed
                .response(Version::HTTP_11)
                .headers()
                .contains_key(header::ALLOW)
        );
    }
}
