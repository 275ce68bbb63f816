//! NITRO reply envelopes: `{"errorcode":0,"message":"Done","severity":"NONE","<resource>":[…]}`
//! on success, `{"errorcode":N,"message":"…","severity":"ERROR"}` with a 4xx/5xx status on
//! failure. Error codes are NetScaler's where one exists (see `docs/admin-api.md`).

use bytes::Bytes;
use http::{HeaderValue, Response, StatusCode, header};
use http_body_util::Full;
use serde_json::{Value, json};

use crate::writer::{ApplyError, EditError, MemberOpError};

/// NITRO error codes used by Ballast.
pub mod code {
    /// The named resource does not exist.
    pub const NO_SUCH_RESOURCE: u32 = 258;
    /// A resource with that name already exists.
    pub const RESOURCE_EXISTS: u32 = 273;
    /// A field is unknown, of the wrong type, out of range, or refers to something missing.
    pub const INVALID_ARGUMENT: u32 = 278;
    /// Wrong user name or password.
    pub const INVALID_CREDENTIALS: u32 = 354;
    /// No credentials, or a session that expired or was logged out.
    pub const NOT_LOGGED_IN: u32 = 444;
    /// The resource is still referenced (bound) elsewhere.
    pub const RESOURCE_IN_USE: u32 = 1500;
    /// The body is not valid JSON, or not in the `{"<resource>": {...}}` shape.
    pub const MALFORMED_REQUEST: u32 = 1501;
    /// The body is larger than the admin API accepts.
    pub const BODY_TOO_LARGE: u32 = 1502;
    /// No such resource type, or a verb the resource does not support.
    pub const UNKNOWN_RESOURCE: u32 = 1503;
    /// Saving the config failed.
    pub const SAVE_FAILED: u32 = 1504;
    /// The change could not be applied (e.g. a vserver cannot bind its address).
    pub const APPLY_FAILED: u32 = 1505;
    /// Too many failed logins from the client's address: locked out for a while.
    pub const LOGIN_LOCKED_OUT: u32 = 1506;
    /// As many login sessions as allowed are open already.
    pub const TOO_MANY_SESSIONS: u32 = 1507;
}

/// An error as NITRO reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NitroError {
    pub status: StatusCode,
    pub code: u32,
    pub message: String,
}

impl NitroError {
    pub fn new(status: StatusCode, code: u32, message: impl Into<String>) -> NitroError {
        NitroError {
            status,
            code,
            message: message.into(),
        }
    }

    pub fn invalid(message: impl Into<String>) -> NitroError {
        NitroError::new(StatusCode::BAD_REQUEST, code::INVALID_ARGUMENT, message)
    }

    pub fn not_found(message: impl Into<String>) -> NitroError {
        NitroError::new(StatusCode::NOT_FOUND, code::NO_SUCH_RESOURCE, message)
    }

    pub fn malformed(message: impl Into<String>) -> NitroError {
        NitroError::new(StatusCode::BAD_REQUEST, code::MALFORMED_REQUEST, message)
    }

    pub fn unknown(message: impl Into<String>) -> NitroError {
        NitroError::new(StatusCode::NOT_FOUND, code::UNKNOWN_RESOURCE, message)
    }

    pub fn method(message: impl Into<String>) -> NitroError {
        NitroError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            code::UNKNOWN_RESOURCE,
            message,
        )
    }

    pub fn into_response(self) -> Response<Full<Bytes>> {
        let body = json!({"errorcode": self.code, "message": self.message, "severity": "ERROR"});
        json_response(self.status, &body)
    }
}

impl From<EditError> for NitroError {
    fn from(error: EditError) -> NitroError {
        match error {
            EditError::NotFound(message) => NitroError::not_found(message),
            EditError::Exists(message) => {
                NitroError::new(StatusCode::CONFLICT, code::RESOURCE_EXISTS, message)
            }
            EditError::InUse(message) => {
                NitroError::new(StatusCode::CONFLICT, code::RESOURCE_IN_USE, message)
            }
            EditError::Rejected(message) => NitroError::invalid(message),
            EditError::Invalid(problems) => {
                let lines: Vec<String> =
                    problems.problems.iter().map(ToString::to_string).collect();
                NitroError::invalid(lines.join("; "))
            }
            EditError::Apply(apply) => NitroError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                code::APPLY_FAILED,
                apply.to_string(),
            ),
            EditError::Member(member) => NitroError::from(member),
        }
    }
}

impl From<MemberOpError> for NitroError {
    fn from(error: MemberOpError) -> NitroError {
        match error {
            MemberOpError::NoGroup(_) | MemberOpError::NotBound { .. } => {
                NitroError::not_found(error.to_string())
            }
            MemberOpError::AlreadyBound { .. } => NitroError::new(
                StatusCode::CONFLICT,
                code::RESOURCE_EXISTS,
                error.to_string(),
            ),
            MemberOpError::Invalid(invalid) => NitroError::from(EditError::Invalid(invalid)),
            MemberOpError::Apply(apply) => NitroError::from(EditError::Apply(apply)),
            MemberOpError::Stopped => NitroError::from(EditError::Apply(ApplyError::Stopped)),
        }
    }
}

/// `{"errorcode":0,"message":"Done","severity":"NONE"}`, plus `<key>: value` if given.
pub fn done(status: StatusCode, payload: Option<(&str, Value)>) -> Response<Full<Bytes>> {
    let mut body = json!({"errorcode": 0, "message": "Done", "severity": "NONE"});
    if let Some((key, value)) = payload {
        body[key] = value;
    }
    json_response(status, &body)
}

pub fn json_response(status: StatusCode, body: &Value) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body.to_string())));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}
