//! The one error type of the HTTP surface, and the one place it becomes a response.
//!
//! Handlers return `Result<Response, ApiError>`; [`ApiError::into_response`] maps each variant to
//! its status, its OAuth-style `error` code and a description that says exactly what was wrong.
//! No I/O here.

use serde::Serialize;

use crate::accounts::store::StoreError;
use crate::config::settings::SettingsError;
use crate::config::signing_keys::SigningKeysError;
use crate::http::{Method, Response};
use crate::jose::reason::Reason;
use crate::registry::RegistryError;
use crate::text::charset::description_charset;

/// Seconds a client should wait before retrying after a 503: long enough for a KV or network
/// blip to pass, short enough for a CI job to retry within its own timeout.
pub const RETRY_AFTER_SECONDS: u32 = 5;

/// Seconds a client over its rate limit should wait: the longest period a Workers Rate
/// Limiting binding counts over (10 or 60 s), so a retry after it finds a new period.
pub const RATE_LIMIT_RETRY_AFTER_SECONDS: u32 = 60;

/// Everything that can go wrong while answering a request.
#[derive(Debug, Clone, PartialEq)]
pub enum ApiError {
    /// No endpoint lives at this path.
    NotFound { path: String },
    /// The path names a resource that does not exist (e.g. an unknown account id).
    NoSuchResource { description: String },
    /// The path exists but not for this method; `allow` lists the methods it takes.
    MethodNotAllowed { allow: &'static [Method] },
    /// The caller did not prove it may use this endpoint. `error` is the RFC 6750 code
    /// (`invalid_token` when a wrong token was sent, else a plain `unauthorized`).
    Unauthorized {
        error: &'static str,
        description: String,
    },
    /// The caller is known, but its role does not allow this call.
    Forbidden { description: String },
    /// `If-Match` named another version than the current one.
    PreconditionFailed { description: String },
    /// The body is not of a media type the endpoint takes.
    UnsupportedMediaType { expected: &'static [&'static str] },
    /// The body is larger than the endpoint takes.
    PayloadTooLarge { limit_bytes: usize },
    /// The request is malformed; `field` names the part at fault (`None`: the body as a whole).
    InvalidRequest {
        field: Option<String>,
        description: String,
    },
    /// The request conflicts with stored state (a duplicate account).
    Conflict { description: String },
    /// A dependency (KV) failed; the client may retry.
    Unavailable { description: String },
    /// The client (by IP) is over its rate limit: 429 `slow_down`, as RFC 8628 names it.
    RateLimited { description: String },
    /// A setting of the deployment (a var or secret) is missing or invalid. This is the
    /// operator's mistake, never the client's, so it is a 500 that names the setting and the
    /// problem — and never the setting's value, which may be a secret.
    Misconfigured {
        setting: &'static str,
        problem: String,
    },
    /// Something that should not happen (stored data that cannot be read back).
    Internal { description: String },
    /// An RFC 6749 §5.2 token-endpoint error: `error` is the OAuth code, `reason` the contract's
    /// stable reason when a token was judged. A 503 carries `Retry-After`.
    OAuth {
        status: u16,
        error: &'static str,
        reason: Option<Reason>,
        description: String,
    },
}

/// One entry of Venafi's `errors` array: `{"code": 1006, "message": "…", "args": []}` (its
/// OpenAPI description's error schema), which Venafi's own clients (vcert, its Terraform
/// provider) print when a call fails.
#[derive(Debug, Serialize)]
struct VenafiError<'a> {
    code: u32,
    message: &'a str,
    args: [(); 0],
}

/// The JSON body of every error response.
#[derive(Debug, Serialize)]
struct ErrorBody<'a> {
    error: &'a str,
    error_description: &'a str,
    /// Present (possibly `null`) on 400s from field validation, as the contract requires.
    #[serde(skip_serializing_if = "Option::is_none")]
    field: Option<Option<&'a str>>,
    /// The contract's stable reason, on token-endpoint errors that judged a token.
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<&'a str>,
    /// The same error in Venafi's shape.
    errors: [VenafiError<'a>; 1],
}

impl ApiError {
    /// The HTTP status of this error.
    pub fn status(&self) -> u16 {
        match self {
            Self::NotFound { .. } | Self::NoSuchResource { .. } => 404,
            Self::MethodNotAllowed { .. } => 405,
            Self::Unauthorized { .. } => 401,
            Self::Forbidden { .. } => 403,
            Self::PreconditionFailed { .. } => 412,
            Self::UnsupportedMediaType { .. } => 415,
            Self::PayloadTooLarge { .. } => 413,
            Self::InvalidRequest { .. } => 400,
            Self::Conflict { .. } => 409,
            Self::Unavailable { .. } => 503,
            Self::RateLimited { .. } => 429,
            Self::Misconfigured { .. } | Self::Internal { .. } => 500,
            Self::OAuth { status, .. } => *status,
        }
    }

    /// The machine-readable `error` code.
    pub fn code(&self) -> &'static str {
        match self {
            Self::NotFound { .. } | Self::NoSuchResource { .. } => "not_found",
            Self::MethodNotAllowed { .. } => "method_not_allowed",
            Self::Unauthorized { error, .. } => error,
            Self::Forbidden { .. } => "forbidden",
            Self::PreconditionFailed { .. } => "precondition_failed",
            Self::UnsupportedMediaType { .. }
            | Self::PayloadTooLarge { .. }
            | Self::InvalidRequest { .. } => "invalid_request",
            Self::Conflict { .. } => "conflict",
            Self::Unavailable { .. } => "temporarily_unavailable",
            Self::RateLimited { .. } => "slow_down",
            Self::Misconfigured { .. } | Self::Internal { .. } => "server_error",
            Self::OAuth { error, .. } => error,
        }
    }

    /// The numeric `code` of Venafi's `errors` array: a judged token's [`Reason::code`]
    /// (1001–1022), otherwise one per kind of error from 1100 on. Fixed forever, documented in
    /// the README and the OpenAPI description.
    pub fn venafi_code(&self) -> u32 {
        match self {
            Self::OAuth {
                reason: Some(reason),
                ..
            } => reason.code(),
            Self::OAuth { error, .. } => match *error {
                "invalid_request" => 1100,
                "unsupported_grant_type" => 1101,
                "temporarily_unavailable" => 1104,
                _ => 1105,
            },
            Self::InvalidRequest { .. } => 1100,
            Self::RateLimited { .. } => 1103,
            Self::Unavailable { .. } => 1104,
            Self::Misconfigured { .. } | Self::Internal { .. } => 1105,
            Self::NotFound { .. } | Self::NoSuchResource { .. } => 1106,
            Self::MethodNotAllowed { .. } => 1107,
            Self::Unauthorized { .. } => 1108,
            Self::Forbidden { .. } => 1109,
            Self::PreconditionFailed { .. } => 1111,
            Self::Conflict { .. } => 1110,
            Self::UnsupportedMediaType { .. } => 1112,
            Self::PayloadTooLarge { .. } => 1113,
        }
    }

    /// What went wrong, in words.
    pub fn description(&self) -> String {
        match self {
            Self::NotFound { path } => format!("there is no endpoint at {path}"),
            Self::MethodNotAllowed { allow } => {
                format!("this endpoint accepts only {}", allow_header(allow))
            }
            Self::UnsupportedMediaType { expected } => {
                format!(
                    "the body must be sent with Content-Type: {}",
                    expected.join(" or ")
                )
            }
            Self::PayloadTooLarge { limit_bytes } => {
                format!("the body is larger than {limit_bytes} bytes")
            }
            Self::NoSuchResource { description }
            | Self::Unauthorized { description, .. }
            | Self::Forbidden { description }
            | Self::PreconditionFailed { description }
            | Self::InvalidRequest { description, .. }
            | Self::Conflict { description }
            | Self::Unavailable { description }
            | Self::RateLimited { description }
            | Self::Internal { description }
            | Self::OAuth { description, .. } => description.clone(),
            Self::Misconfigured { setting, problem } => {
                format!("the server is misconfigured: {setting} {problem}")
            }
        }
    }

    /// The response for this error: status, JSON body and any headers the status requires.
    pub fn into_response(self) -> Response {
        let description = self.description();
        let field = match &self {
            Self::InvalidRequest { field, .. } => Some(field.as_deref()),
            _ => None,
        };
        let reason = match &self {
            Self::OAuth { reason, .. } => reason.map(Reason::as_str),
            _ => None,
        };
        // RFC 6749 §5.2's character set, for every error alike: no OAuth client chokes on it.
        let description = description_charset(&description);
        let response = Response::json(
            self.status(),
            &ErrorBody {
                error: self.code(),
                error_description: &description,
                field,
                reason,
                errors: [VenafiError {
                    code: self.venafi_code(),
                    message: &description,
                    args: [],
                }],
            },
        );
        match self {
            Self::MethodNotAllowed { allow } => response.with_header("allow", &allow_header(allow)),
            Self::Unauthorized { error, .. } => {
                let challenge = if error == "invalid_token" {
                    r#"Bearer realm="edge-sts", error="invalid_token""#
                } else {
                    r#"Bearer realm="edge-sts""#
                };
                response.with_header("www-authenticate", challenge)
            }
            Self::Unavailable { .. } | Self::OAuth { status: 503, .. } => {
                response.with_header("retry-after", &RETRY_AFTER_SECONDS.to_string())
            }
            Self::RateLimited { .. } => {
                response.with_header("retry-after", &RATE_LIMIT_RETRY_AFTER_SECONDS.to_string())
            }
            _ => response,
        }
    }
}

impl From<RegistryError> for ApiError {
    fn from(error: RegistryError) -> Self {
        let description = error.to_string();
        match error {
            RegistryError::Invalid { field, .. } => Self::InvalidRequest { field, description },
            RegistryError::NotFound { .. } => Self::NoSuchResource { description },
            RegistryError::Conflict { .. } => Self::Conflict { description },
            RegistryError::Stale { .. } => Self::PreconditionFailed { description },
            RegistryError::Unavailable(_) => Self::Unavailable { description },
        }
    }
}

/// A failed read of the accounts: KV's failure may pass (503, retry); a record that cannot be
/// read will not (500, the operator's to mend).
impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> Self {
        let description = format!("the accounts could not be read: {error}");
        match error {
            StoreError::Storage(_) => Self::Unavailable { description },
            StoreError::Corrupt { .. } => Self::Internal { description },
        }
    }
}

impl From<SettingsError> for ApiError {
    fn from(error: SettingsError) -> Self {
        Self::Misconfigured {
            setting: error.setting,
            problem: error.problem,
        }
    }
}

impl From<&SigningKeysError> for ApiError {
    fn from(error: &SigningKeysError) -> Self {
        Self::Misconfigured {
            setting: "SIGNING_KEYS",
            problem: error.to_string(),
        }
    }
}

fn allow_header(allow: &[Method]) -> String {
    allow
        .iter()
        .map(|method| method.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}
