//! [`ApiError`]: a CloudStack error answer (`errorcode` = HTTP status, `cserrorcode` = the
//! exception class code, `errortext`), with constructors for the cases the local cloud has,
//! worded like CloudStack words them.

use serde_json::{Value, json};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub errorcode: u16,
    pub cserrorcode: Option<i32>,
    pub errortext: String,
}

/// `ServerApiException` (parameter processing) has no more specific class.
const SERVER_API_EXCEPTION: i32 = 9999;

impl ApiError {
    pub fn new(errorcode: u16, cserrorcode: Option<i32>, errortext: impl Into<String>) -> Self {
        Self {
            errorcode,
            cserrorcode,
            errortext: errortext.into(),
        }
    }

    /// A wrong key, signature or expired request: 401 without `cserrorcode`, as CloudStack does.
    pub fn unauthorized() -> Self {
        Self::new(
            401,
            None,
            "unable to verify user credentials and/or request signature",
        )
    }

    pub fn no_command() -> Self {
        Self::new(400, None, "no command specified")
    }

    pub fn unsupported(command: &str) -> Self {
        Self::new(
            432,
            Some(SERVER_API_EXCEPTION),
            format!(
                "The given command '{command}' either does not exist, is not available for user, or not available from ip address"
            ),
        )
    }

    pub fn missing(command: &str, param: &str) -> Self {
        Self::new(
            431,
            Some(SERVER_API_EXCEPTION),
            format!(
                "Unable to execute API command {} due to missing parameter {param}",
                command.to_lowercase()
            ),
        )
    }

    pub fn bad_value(command: &str, param: &str, value: &str) -> Self {
        Self::new(
            431,
            Some(SERVER_API_EXCEPTION),
            format!(
                "Unable to execute API command {} due to invalid value. Invalid parameter {param} value={value} due to incorrect long value format, or entity does not exist or due to incorrect parameter annotation for the field in api cmd class.",
                command.to_lowercase()
            ),
        )
    }

    /// `InvalidParameterValueException`.
    pub fn invalid(text: impl Into<String>) -> Self {
        Self::new(431, Some(4350), text)
    }

    /// `PermissionDeniedException`.
    pub fn permission(text: impl Into<String>) -> Self {
        Self::new(531, Some(4365), text)
    }

    /// `InsufficientServerCapacityException`.
    pub fn capacity(text: impl Into<String>) -> Self {
        Self::new(533, Some(4335), text)
    }

    /// `InsufficientAddressCapacityException`.
    pub fn address_capacity(text: impl Into<String>) -> Self {
        Self::new(533, Some(4320), text)
    }

    /// `ResourceAllocationException`: a resource limit of the account is reached.
    pub fn resource_allocation(text: impl Into<String>) -> Self {
        Self::new(535, Some(4370), text)
    }

    /// `CloudRuntimeException`.
    pub fn internal(text: impl Into<String>) -> Self {
        Self::new(530, Some(4250), text)
    }

    /// `ConcurrentOperationException`.
    pub fn concurrent(text: impl Into<String>) -> Self {
        Self::new(530, Some(4300), text)
    }

    /// An injected error with `errorcode`, with the exception class CloudStack uses for it.
    pub fn injected(errorcode: u16) -> Self {
        let (cserrorcode, text) = match errorcode {
            429 => (4545, "There are too many api calls, please retry later"),
            431 => (4350, "Invalid parameter value (injected fault)"),
            531 => (4365, "Permission denied (injected fault)"),
            533 => (4335, "Insufficient capacity (injected fault)"),
            534 => (4380, "Resource unavailable (injected fault)"),
            _ => (
                4250,
                "Command failed due to Internal Server Error (injected fault)",
            ),
        };
        Self::new(errorcode, Some(cserrorcode), text)
    }

    /// The error object inside the envelope (and the `jobresult` of a failed job).
    pub fn body(&self) -> Value {
        let mut body = json!({
            "uuidList": [],
            "errorcode": self.errorcode,
            "errortext": self.errortext,
        });
        if let Some(code) = self.cserrorcode {
            body["cserrorcode"] = json!(code);
        }
        body
    }
}
