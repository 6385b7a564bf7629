//! The HTTP shell over the domain: [`router`] (the route table and who may call what),
//! [`extract`] (each request's media type, size and parsing), one module per endpoint, and
//! [`error`] (the one error type, turned into a response in one place).
//!
//! Here too the plain request and response values the core routes on: the platform layer
//! converts the runtime's request into a [`Request`] and the core's [`Response`] back, so every
//! endpoint can be exercised by native tests without a runtime. No I/O here.

pub(crate) mod admin;
pub(crate) mod audit;
pub mod auth;
pub(crate) mod console;
pub(crate) mod discovery;
pub(crate) mod error;
pub(crate) mod extract;
pub(crate) mod health;
pub(crate) mod introspect;
pub mod isolate;
pub mod router;
pub(crate) mod token;
pub(crate) mod verify;

use serde::Serialize;

/// An HTTP method the router distinguishes. Anything else is [`Method::Other`] and gets a 405.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Get,
    Head,
    Post,
    Patch,
    Delete,
    Other,
}

impl Method {
    /// Parses a request method, case-sensitively as HTTP requires.
    pub fn parse(method: &str) -> Self {
        match method {
            "GET" => Self::Get,
            "HEAD" => Self::Head,
            "POST" => Self::Post,
            "PATCH" => Self::Patch,
            "DELETE" => Self::Delete,
            _ => Self::Other,
        }
    }

    /// The method's name on the wire, as used in an `Allow` header.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Get => "GET",
            Self::Head => "HEAD",
            Self::Post => "POST",
            Self::Patch => "PATCH",
            Self::Delete => "DELETE",
            Self::Other => "OTHER",
        }
    }
}

/// An incoming request, already read into memory by the platform layer.
#[derive(Debug, Clone)]
pub struct Request {
    pub method: Method,
    /// The request origin, `scheme://host[:port]`; the default `ISSUER`.
    pub origin: String,
    /// The URL path, percent-encoded as received.
    pub path: String,
    /// The raw query string without the `?`, if any.
    pub query: Option<String>,
    /// Header names lower-cased.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Request {
    /// A bodiless request; the builder the tests use.
    pub fn new(method: Method, origin: &str, path: &str) -> Self {
        Self {
            method,
            origin: origin.to_owned(),
            path: path.to_owned(),
            query: None,
            headers: Vec::new(),
            body: Vec::new(),
        }
    }

    /// The first value of a header, by case-insensitive name.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }

    /// The `Content-Type` without parameters, lower-cased (`application/json`).
    pub fn media_type(&self) -> Option<String> {
        self.header("content-type").map(|value| {
            value
                .split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase()
        })
    }

    /// Whether the body is, or is declared (`Content-Length`) to be, over `limit` bytes. The
    /// platform does not read a body declared too large, so both must be checked.
    pub fn body_exceeds(&self, limit: usize) -> bool {
        let declared = self
            .header("content-length")
            .and_then(|length| length.trim().parse::<u64>().ok());
        self.body.len() > limit || declared.is_some_and(|length| length > limit as u64)
    }
}

/// An outgoing response.
#[derive(Debug, Clone, PartialEq)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    /// A JSON response. Serialising our own plain data types cannot fail; if it ever did, the
    /// answer is still JSON.
    pub fn json(status: u16, body: &impl Serialize) -> Self {
        let body = serde_json::to_vec(body).unwrap_or_else(|_| {
            br#"{"error":"server_error","error_description":"response could not be serialised"}"#
                .to_vec()
        });
        Self::json_text(status, body)
    }

    /// A JSON response whose text is already written (a constant such as `/healthz`'s).
    pub fn json_text(status: u16, body: impl Into<Vec<u8>>) -> Self {
        Self {
            status,
            headers: vec![(
                "content-type".to_owned(),
                "application/json; charset=utf-8".to_owned(),
            )],
            body: body.into(),
        }
    }

    /// A response without a body, such as 204.
    pub fn empty(status: u16) -> Self {
        Self {
            status,
            headers: Vec::new(),
            body: Vec::new(),
        }
    }

    /// Adds a header.
    #[must_use]
    pub fn with_header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }

    /// The first value of a header, by case-insensitive name.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }
}
