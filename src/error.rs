//! The one error type of the HTTP surface, and the one place it becomes a response.
//!
//! Handlers return `Result<Response, ApiError>`; [`ApiError::into_response`] maps each variant to
//! its status, its OAuth-style `error` code and a description that says exactly what was wrong.
//! No I/O here.

use serde::Serialize;

use crate::http::{Method, Response};

/// Everything that can go wrong while answering a request.
#[derive(Debug, Clone, PartialEq)]
pub enum ApiError {
    /// No endpoint lives at this path.
    NotFound { path: String },
    /// The path exists but not for this method; `allow` lists the methods it takes.
    MethodNotAllowed { allow: &'static [Method] },
    /// A setting of the deployment (a var or secret) is missing or invalid. This is the
    /// operator's mistake, never the client's, so it is a 500 that names the setting and the
    /// problem — and never the setting's value, which may be a secret.
    Misconfigured {
        setting: &'static str,
        problem: String,
    },
}

/// The JSON body of every error response.
#[derive(Debug, Serialize)]
struct ErrorBody<'a> {
    error: &'a str,
    error_description: &'a str,
}

impl ApiError {
    /// The HTTP status of this error.
    pub fn status(&self) -> u16 {
        match self {
            Self::NotFound { .. } => 404,
            Self::MethodNotAllowed { .. } => 405,
            Self::Misconfigured { .. } => 500,
        }
    }

    /// The machine-readable `error` code.
    pub fn code(&self) -> &'static str {
        match self {
            Self::NotFound { .. } => "not_found",
            Self::MethodNotAllowed { .. } => "method_not_allowed",
            Self::Misconfigured { .. } => "server_error",
        }
    }

    /// What went wrong, in words.
    pub fn description(&self) -> String {
        match self {
            Self::NotFound { path } => format!("there is no endpoint at {path}"),
            Self::MethodNotAllowed { allow } => {
                format!("this endpoint accepts only {}", allow_header(allow))
            }
            Self::Misconfigured { setting, problem } => {
                format!("the server is misconfigured: {setting} {problem}")
            }
        }
    }

    /// The response for this error: status, JSON body and any headers the status requires.
    pub fn into_response(self) -> Response {
        let description = self.description();
        let response = Response::json(
            self.status(),
            &ErrorBody {
                error: self.code(),
                error_description: &description,
            },
        );
        match self {
            Self::MethodNotAllowed { allow } => response.with_header("allow", &allow_header(allow)),
            _ => response,
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
