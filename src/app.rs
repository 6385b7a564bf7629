//! The router: one function from a [`Request`] to a [`Response`], for every endpoint.
//!
//! The platform layer calls [`handle`] with the isolate's [`Config`]; native tests call it the
//! same way, without a server. Errors flow up as [`ApiError`] and become responses in one place.
//! No I/O here.

use serde_json::json;

use crate::discovery;
use crate::error::ApiError;
use crate::http::{Method, Request, Response};
use crate::settings::Settings;
use crate::signing_keys::{SigningKeys, SigningKeysError};

/// What an isolate parses once from its vars and secrets and keeps for every request.
#[derive(Debug)]
pub struct Config {
    pub settings: Result<Settings, ApiError>,
    pub signing_keys: Result<SigningKeys, SigningKeysError>,
}

impl Config {
    fn settings(&self) -> Result<&Settings, ApiError> {
        self.settings.as_ref().map_err(Clone::clone)
    }

    fn signing_keys(&self) -> Result<&SigningKeys, ApiError> {
        self.signing_keys
            .as_ref()
            .map_err(|problem| ApiError::Misconfigured {
                setting: "SIGNING_KEYS",
                problem: problem.to_string(),
            })
    }
}

/// The endpoints, each with the methods it takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Route {
    Health,
    Jwks,
    Metadata,
}

const GET: &[Method] = &[Method::Get];

fn route(path: &str) -> Option<(Route, &'static [Method])> {
    match path {
        "/healthz" => Some((Route::Health, GET)),
        "/.well-known/jwks.json" => Some((Route::Jwks, GET)),
        "/.well-known/openid-configuration" | "/.well-known/oauth-authorization-server" => {
            Some((Route::Metadata, GET))
        }
        _ => None,
    }
}

/// Answers one request. Never panics on any input; every error is a JSON body.
pub async fn handle(request: &Request, config: &Config) -> Response {
    dispatch(request, config)
        .await
        .unwrap_or_else(ApiError::into_response)
}

async fn dispatch(request: &Request, config: &Config) -> Result<Response, ApiError> {
    let (route, allow) = route(&request.path).ok_or_else(|| ApiError::NotFound {
        path: request.path.clone(),
    })?;
    if !allow.contains(&request.method) {
        return Err(ApiError::MethodNotAllowed { allow });
    }
    let settings = config.settings()?;
    match route {
        Route::Health => {
            // Healthy means able to mint: the keys must be usable too.
            config.signing_keys()?;
            Ok(Response::json(200, &json!({ "status": "ok" }))
                .with_header("cache-control", "no-store"))
        }
        Route::Jwks => {
            let keys = config.signing_keys()?;
            // Verifiers may cache for five minutes; rotation publishes a key well before it signs.
            Ok(Response::json(200, &keys.public_jwks())
                .with_header("cache-control", "public, max-age=300"))
        }
        Route::Metadata => Ok(
            Response::json(200, &discovery::metadata(settings, &request.origin))
                .with_header("cache-control", "public, max-age=3600"),
        ),
    }
}
