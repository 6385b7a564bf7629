//! The router: one function from a [`Request`] to a [`Response`], for every endpoint.
//!
//! The platform layer calls [`handle`] with the isolate's [`Config`] and its [`Services`];
//! native tests call it the same way with in-memory services, without a server. Errors flow up
//! as [`ApiError`] and become responses in one place. No I/O here beyond the services.

use serde_json::json;

use crate::admin::{
    self, AdminServices, AdminToken, COLLECTION_METHODS, COLLECTION_PATH, ITEM_METHODS,
};
use crate::discovery;
use crate::error::ApiError;
use crate::http::{Method, Request, Response};
use crate::ports::{Clock, Entropy, KeyValueStore};
use crate::settings::Settings;
use crate::signing_keys::{SigningKeys, SigningKeysError};

/// What an isolate parses once from its vars and secrets and keeps for every request.
#[derive(Debug)]
pub struct Config {
    pub settings: Result<Settings, ApiError>,
    pub signing_keys: Result<SigningKeys, SigningKeysError>,
    /// `None`: the admin API is disabled.
    pub admin_token: Option<AdminToken>,
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

/// The outside world, as the core sees it.
pub struct Services<'a, K: KeyValueStore, C: Clock, E: Entropy> {
    /// The `ACCOUNTS` namespace.
    pub accounts: &'a K,
    pub clock: &'a C,
    pub entropy: &'a E,
}

/// The endpoints.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Route<'p> {
    Health,
    Jwks,
    Metadata,
    /// `/v1/serviceaccounts` (`None`) or `/v1/serviceaccounts/{id}`.
    Accounts(Option<&'p str>),
}

const GET: &[Method] = &[Method::Get];

/// The route of `path` and the methods it takes.
fn route(path: &str) -> Option<(Route<'_>, &'static [Method])> {
    match path {
        "/healthz" => return Some((Route::Health, GET)),
        "/.well-known/jwks.json" => return Some((Route::Jwks, GET)),
        "/.well-known/openid-configuration" | "/.well-known/oauth-authorization-server" => {
            return Some((Route::Metadata, GET))
        }
        COLLECTION_PATH => return Some((Route::Accounts(None), COLLECTION_METHODS)),
        _ => {}
    }
    let id = path.strip_prefix(COLLECTION_PATH)?.strip_prefix('/')?;
    (!id.is_empty() && !id.contains('/')).then_some((Route::Accounts(Some(id)), ITEM_METHODS))
}

/// Answers one request. Never panics on any input; every error is a JSON body.
pub async fn handle<K: KeyValueStore, C: Clock, E: Entropy>(
    request: &Request,
    config: &Config,
    services: &Services<'_, K, C, E>,
) -> Response {
    dispatch(request, config, services)
        .await
        .unwrap_or_else(ApiError::into_response)
}

async fn dispatch<K: KeyValueStore, C: Clock, E: Entropy>(
    request: &Request,
    config: &Config,
    services: &Services<'_, K, C, E>,
) -> Result<Response, ApiError> {
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
        Route::Accounts(target) => {
            admin::authenticate(request, config.admin_token.as_ref())?;
            let admin_services = AdminServices {
                settings,
                accounts: services.accounts,
                clock: services.clock,
                entropy: services.entropy,
            };
            let response = admin::handle(request, target, &admin_services).await?;
            Ok(response.with_header("cache-control", "no-store"))
        }
    }
}
