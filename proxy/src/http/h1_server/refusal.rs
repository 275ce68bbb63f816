//! Requests refused before any exchange: why, the status and the one-line reason the client
//! reads, and how each is counted.

use http::StatusCode;

use crate::h1::framing::FramingError;
use crate::h1::head::{HeadError, Version};
use crate::h1::response::{self, ResponseBody as Framing};
use crate::http::error::ExchangeError;

/// Why a request was refused before any exchange.
#[derive(Debug, Clone, Copy)]
pub enum Refusal {
    Head(HeadError),
    Framing(FramingError),
    Timeout,
}

impl Refusal {
    pub fn status(self) -> StatusCode {
        match self {
            Refusal::Head(error) => error.status(),
            Refusal::Framing(error) => error.status(),
            Refusal::Timeout => StatusCode::REQUEST_TIMEOUT,
        }
    }

    /// How it counts in `ballast_vserver_errors_total`.
    pub fn failure(self) -> ExchangeError {
        match self {
            Refusal::Head(
                HeadError::HeadTooLarge | HeadError::TooManyHeaders | HeadError::RequestLineTooLong,
            ) => ExchangeError::HeadTooLarge,
            Refusal::Framing(FramingError::UnsupportedTransferCoding) => {
                ExchangeError::UnsupportedTransferCoding
            }
            Refusal::Head(_) | Refusal::Framing(_) | Refusal::Timeout => {
                ExchangeError::MalformedHead
            }
        }
    }

    pub fn reason(self) -> String {
        match self {
            Refusal::Head(error) => error.to_string(),
            Refusal::Framing(error) => error.to_string(),
            Refusal::Timeout => "the request head did not arrive in time".to_owned(),
        }
    }
}

/// A short response that Ballast makes itself, closing the connection.
pub fn write_refusal(out: &mut Vec<u8>, version: Version, status: StatusCode, reason: &str) {
    let text = format!("{reason}\n");
    let fields = [(&b"content-type"[..], &b"text/plain; charset=utf-8"[..])];
    let body = Framing::Length(text.len() as u64);
    if response::write_head(out, version, status, fields, body, false).is_ok() {
        out.extend_from_slice(text.as_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_refusal_has_its_status_and_its_counter() {
        let cases = [
            (
                Refusal::Head(HeadError::ObsFold),
                400,
                ExchangeError::MalformedHead,
            ),
            (
                Refusal::Head(HeadError::HeadTooLarge),
                431,
                ExchangeError::HeadTooLarge,
            ),
            (
                Refusal::Head(HeadError::RequestLineTooLong),
                414,
                ExchangeError::HeadTooLarge,
            ),
            (
                Refusal::Head(HeadError::UnsupportedVersion),
                505,
                ExchangeError::MalformedHead,
            ),
            (
                Refusal::Framing(FramingError::UnsupportedTransferCoding),
                501,
                ExchangeError::UnsupportedTransferCoding,
            ),
            (
                Refusal::Framing(FramingError::ContentLengthAndTransferEncoding),
                400,
                ExchangeError::MalformedHead,
            ),
            (
                Refusal::Framing(FramingError::UnsupportedExpectation),
                417,
                ExchangeError::MalformedHead,
            ),
            (Refusal::Timeout, 408, ExchangeError::MalformedHead),
        ];
        for (refusal, status, failure) in cases {
            assert_eq!(refusal.status().as_u16(), status, "{refusal:?}");
            assert_eq!(refusal.failure(), failure, "{refusal:?}");
        }
    }

    #[test]
    fn a_refusal_says_why_and_closes() {
        let refusal = Refusal::Framing(FramingError::ContentLengthAndTransferEncoding);
        let mut out = Vec::new();
        write_refusal(
            &mut out,
            Version::Http11,
            refusal.status(),
            &refusal.reason(),
        );
        let text = String::from_utf8(out).expect("text");
        let body = "both Content-Length and Transfer-Encoding\n";
        assert!(text.starts_with("HTTP/1.1 400 Bad Request\r\n"), "{text}");
        assert!(
            text.contains(&format!("content-length: {}\r\n", body.len())),
            "{text}"
        );
        assert!(text.contains("connection: close\r\n"), "{text}");
        assert!(text.ends_with(&format!("\r\n\r\n{body}")), "{text}");
    }
}
