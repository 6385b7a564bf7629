//! Extractors: each owns one kind of request preamble — media type, size limit, parsing — so no
//! endpoint repeats it (axum's `FromRequest`). An extractor's refusal is already the HTTP
//! answer: 415, 413, or a 400 naming what is wrong. No I/O here.

use serde_json::{Map, Value};

use super::error::ApiError;
use super::Request;
use crate::text::form::{parse_form, Form, FormError};
use crate::text::json::parse_strict;

/// Largest body of any endpoint, in bytes (the contract). An account is well under 8 KiB, a token
/// request under 20 KiB.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// Deepest JSON nesting accepted in a body: the contract's limit for tokens, used here too (an
/// account with an inline `jwks` nests four levels: body, jwks, keys, key). Stored records are
/// read to the same depth, so anything written through the API reads back.
pub const MAX_JSON_DEPTH: usize = crate::text::json::MAX_DEPTH;

/// Something read out of a request, or the answer that refuses it.
pub(crate) trait FromRequest: Sized {
    fn from_request(request: &Request) -> Result<Self, ApiError>;
}

/// An `application/x-www-form-urlencoded` body: ≤ 64 KiB, ≤ 32 parameters, none twice.
pub(crate) struct FormBody(pub Form);

impl FromRequest for FormBody {
    fn from_request(request: &Request) -> Result<Self, ApiError> {
        require_size(request)?;
        require_media_type(request, &["application/x-www-form-urlencoded"])?;
        parse_form(&request.body)
            .map(Self)
            .map_err(|error| form_error(error, "the form"))
    }
}

/// The query string, decoded by the same rules as a form.
pub(crate) struct Query(pub Form);

impl FromRequest for Query {
    fn from_request(request: &Request) -> Result<Self, ApiError> {
        parse_form(request.query.as_deref().unwrap_or("").as_bytes())
            .map(Self)
            .map_err(|error| form_error(error, "the query string"))
    }
}

/// A JSON object body (`application/json`): ≤ 64 KiB, strict (no duplicate member names,
/// nesting ≤ 32).
pub(crate) struct JsonObject(pub Map<String, Value>);

impl FromRequest for JsonObject {
    fn from_request(request: &Request) -> Result<Self, ApiError> {
        json_object(request, &["application/json"]).map(Self)
    }
}

/// An RFC 7396 JSON merge patch: as [`JsonObject`], also as `application/merge-patch+json`.
pub(crate) struct MergePatch(pub Map<String, Value>);

impl FromRequest for MergePatch {
    fn from_request(request: &Request) -> Result<Self, ApiError> {
        json_object(
            request,
            &["application/json", "application/merge-patch+json"],
        )
        .map(Self)
    }
}

fn json_object(
    request: &Request,
    media_types: &'static [&'static str],
) -> Result<Map<String, Value>, ApiError> {
    require_size(request)?;
    require_media_type(request, media_types)?;
    match parse_strict(&request.body, MAX_JSON_DEPTH) {
        Ok(Value::Object(object)) => Ok(object),
        Ok(_) => Err(ApiError::InvalidRequest {
            field: None,
            description: "the body must be a JSON object".into(),
        }),
        Err(error) => Err(ApiError::InvalidRequest {
            field: None,
            description: format!("the body is not valid JSON: {error}"),
        }),
    }
}

fn require_media_type(
    request: &Request,
    accepted: &'static [&'static str],
) -> Result<(), ApiError> {
    match request.media_type() {
        Some(media_type) if accepted.contains(&media_type.as_str()) => Ok(()),
        _ => Err(ApiError::UnsupportedMediaType { expected: accepted }),
    }
}

fn require_size(request: &Request) -> Result<(), ApiError> {
    if request.body_exceeds(MAX_BODY_BYTES) {
        return Err(ApiError::PayloadTooLarge {
            limit_bytes: MAX_BODY_BYTES,
        });
    }
    Ok(())
}

/// A form that cannot be decoded: a repeated parameter names itself.
fn form_error(error: FormError, what: &str) -> ApiError {
    let field = match &error {
        FormError::Repeated(name) => Some(name.clone()),
        _ => None,
    };
    ApiError::InvalidRequest {
        field,
        description: format!("{what} cannot be decoded: {error}"),
    }
}
