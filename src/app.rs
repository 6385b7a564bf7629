//! The router: one function from a [`Request`] to a [`Response`], for every endpoint.
//!
//! The platform layer calls [`handle`] with the isolate's [`Config`] and its [`Services`];
//! native tests call it the same way with in-memory services, without a server. Errors flow up
//! as [`ApiError`] and become responses in one place. No I/O here beyond the services.

use std::future::Future;
use std::pin::Pin;

use serde_json::{json, Value};

use crate::admin::{
    self, AdminServices, AdminToken, COLLECTION_METHODS, COLLECTION_PATH, ITEM_METHODS,
};
use crate::console;
use crate::discovery;
use crate::error::ApiError;
use crate::form::parse_form;
use crate::http::{Method, Request, Response};
use crate::json::parse_strict;
use crate::ports::{
    Clock, Entropy, EventLog, KeySetFetcher, KeyValueStore, RateLimiter, SignatureVerifier, Signer,
    UrlParser,
};
use crate::settings::Settings;
use crate::signing_keys::{SigningKeys, SigningKeysError};
use crate::token::endpoint::{self, parse_token_request};
use crate::token::exchange::Exchange;
use crate::token::introspect::introspect;
use crate::token::key_sets::KeySets;

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
pub struct Services<'a, K, J, F, V, S, E, C, L, R> {
    /// The `ACCOUNTS` namespace.
    pub accounts: &'a K,
    /// The `JWKS_CACHE` namespace.
    pub jwks_cache: &'a J,
    /// The isolate's key-set cache.
    pub key_sets: &'a KeySets,
    pub fetcher: &'a F,
    /// The WHATWG URL parser that `fetch` uses.
    pub urls: &'a dyn UrlParser,
    pub verifier: &'a V,
    /// The active signing key; `None` when `SIGNING_KEYS` is unusable.
    pub signer: Option<&'a S>,
    pub entropy: &'a E,
    pub clock: &'a C,
    pub log: &'a L,
    /// `TOKEN_RATE_LIMIT`, when bound.
    pub rate_limiter: Option<&'a R>,
}

/// The endpoints.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Route<'p> {
    Health,
    Jwks,
    Metadata,
    /// `/oauth2/token`, or the Venafi or Entra path with its tenant id.
    Token {
        tenant: Option<&'p str>,
    },
    /// Entra-compatible discovery: `/{tenant}[/v2.0]/.well-known/openid-configuration`.
    TenantMetadata(&'p str),
    /// Entra's `/{tenant}/oauth2/v2.0/authorize`, which MSAL insists is named: a JSON 400.
    Authorize(&'p str),
    Introspect,
    /// `/v1/serviceaccounts` (`None`) or `/v1/serviceaccounts/{id}`.
    Accounts(Option<&'p str>),
    /// `/v1/serviceaccounts/{id}/verify`.
    Verify(&'p str),
    /// `/v1/serviceaccounts/scopes`: the scope catalogue, in Venafi's shape.
    Scopes,
    /// The admin console's page and assets.
    Console,
}

const GET: &[Method] = &[Method::Get];
const POST: &[Method] = &[Method::Post];
const GET_POST: &[Method] = &[Method::Get, Method::Post];

/// The route of `path` and the methods it takes.
fn route(path: &str) -> Option<(Route<'_>, &'static [Method])> {
    match path {
        "/healthz" => return Some((Route::Health, GET)),
        "/.well-known/jwks.json" => return Some((Route::Jwks, GET)),
        "/.well-known/openid-configuration" | "/.well-known/oauth-authorization-server" => {
            return Some((Route::Metadata, GET))
        }
        "/oauth2/token" => return Some((Route::Token { tenant: None }, POST)),
        "/oauth2/introspect" => return Some((Route::Introspect, POST)),
        "/admin" | "/admin/" | "/admin/app.js" | "/admin/app.css" => {
            return Some((Route::Console, GET))
        }
        COLLECTION_PATH => return Some((Route::Accounts(None), COLLECTION_METHODS)),
        "/v1/serviceaccounts/scopes" => return Some((Route::Scopes, GET)),
        _ => {}
    }
    if let Some(tenant) = path
        .strip_prefix("/v1/oauth2/v2.0/")
        .and_then(|rest| rest.strip_suffix("/token"))
        .filter(|tenant| !tenant.is_empty() && !tenant.contains('/'))
    {
        return Some((
            Route::Token {
                tenant: Some(tenant),
            },
            POST,
        ));
    }
    // Entra's shapes: the tenant first, then what Microsoft's clients append to an authority.
    if let Some((tenant, rest)) = path
        .strip_prefix('/')
        .and_then(|path| path.split_once('/'))
        .filter(|(tenant, _)| !tenant.is_empty())
    {
        match rest {
            "oauth2/v2.0/token" => {
                return Some((
                    Route::Token {
                        tenant: Some(tenant),
                    },
                    POST,
                ))
            }
            "v2.0/.well-known/openid-configuration" | ".well-known/openid-configuration" => {
                return Some((Route::TenantMetadata(tenant), GET))
            }
            "oauth2/v2.0/authorize" => return Some((Route::Authorize(tenant), GET_POST)),
            _ => {}
        }
    }
    let rest = path.strip_prefix(COLLECTION_PATH)?.strip_prefix('/')?;
    match rest.split_once('/') {
        None if !rest.is_empty() => Some((Route::Accounts(Some(rest)), ITEM_METHODS)),
        Some((id, "verify")) if !id.is_empty() => Some((Route::Verify(id), POST)),
        _ => None,
    }
}

/// Answers one request. Never panics on any input; every error is a JSON body.
pub async fn handle<K, J, F, V, S, E, C, L, R>(
    request: &Request,
    config: &Config,
    services: &Services<'_, K, J, F, V, S, E, C, L, R>,
) -> Response
where
    K: KeyValueStore,
    J: KeyValueStore,
    F: KeySetFetcher,
    V: SignatureVerifier,
    S: Signer,
    E: Entropy,
    C: Clock,
    L: EventLog,
    R: RateLimiter,
{
    dispatch(request, config, services)
        .await
        .unwrap_or_else(ApiError::into_response)
}

async fn dispatch<'a, K, J, F, V, S, E, C, L, R>(
    request: &'a Request,
    config: &'a Config,
    services: &'a Services<'a, K, J, F, V, S, E, C, L, R>,
) -> Result<Response, ApiError>
where
    K: KeyValueStore,
    J: KeyValueStore,
    F: KeySetFetcher,
    V: SignatureVerifier,
    S: Signer,
    E: Entropy,
    C: Clock,
    L: EventLog,
    R: RateLimiter,
{
    let (route, allow) = route(&request.path).ok_or_else(|| ApiError::NotFound {
        path: request.path.clone(),
    })?;
    if let Route::Token {
        tenant: Some(tenant),
    }
    | Route::TenantMetadata(tenant)
    | Route::Authorize(tenant) = route
    {
        // The Venafi- and Entra-compatible paths exist only for the configured tenant. Its case
        // does not matter: MSAL lower-cases the whole authority URL.
        let configured = config
            .settings
            .as_ref()
            .ok()
            .and_then(|settings| settings.tenant_id.as_deref());
        if !configured.is_some_and(|configured| configured.eq_ignore_ascii_case(tenant)) {
            return Err(ApiError::NotFound {
                path: request.path.clone(),
            });
        }
    }
    if !allow.contains(&request.method) {
        return Err(ApiError::MethodNotAllowed { allow });
    }
    let settings = config.settings()?;
    let now = (services.clock.now_millis() / 1000) as i64;
    let issuer = settings.issuer_for(&request.origin);
    let exchange = |issuer: &'a str| Exchange {
        settings,
        issuer,
        accounts: services.accounts,
        jwks_cache: services.jwks_cache,
        key_sets: services.key_sets,
        fetcher: services.fetcher,
        urls: services.urls,
        verifier: services.verifier,
        signer: services.signer,
        entropy: services.entropy,
        now,
    };
    match route {
        Route::Health => {
            // Healthy means able to mint: the issuer must be set and the keys usable too.
            issuer?;
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
        Route::Metadata => Ok(Response::json(200, &discovery::metadata(settings, issuer?))
            .with_header("cache-control", "public, max-age=3600")),
        Route::TenantMetadata(_) => Ok(Response::json(
            200,
            &discovery::tenant_metadata(settings, issuer?),
        )
        .with_header("cache-control", "public, max-age=3600")),
        Route::Authorize(_) => Err(ApiError::InvalidRequest {
            field: None,
            description: "edge-sts has no authorization endpoint: it serves only the client credentials grant with a client assertion (a workload's own JWT) at the token endpoint".into(),
        }),
        Route::Token { .. } => Ok(compiled_apart(token(
            request,
            config,
            issuer.map(exchange),
            services.log,
            services.rate_limiter,
        ))
        .await),
        Route::Console => console::asset(&request.path).ok_or_else(|| ApiError::NotFound {
            path: request.path.clone(),
        }),
        Route::Introspect => {
            authenticate(request, config, services.rate_limiter).await?;
            let keys = config.signing_keys()?;
            let token = single_form_value(request, "token")?;
            let issuer = issuer?;
            let answer = compiled_apart(introspect(
                &token,
                keys,
                issuer,
                services.accounts,
                services.verifier,
                now,
            ))
            .await;
            Ok(Response::json(200, &answer).with_header("cache-control", "no-store"))
        }
        Route::Verify(id) => {
            authenticate(request, config, services.rate_limiter).await?;
            let answer = compiled_apart(async {
                let account = admin::find_account(services.accounts, id).await?;
                let token = json_token(request)?;
                // The dry run mints nothing, so it needs no ISSUER.
                let exchange = exchange(issuer.unwrap_or_default());
                Ok::<_, ApiError>(exchange.dry_run(&account, &token).await)
            })
            .await?;
            Ok(Response::json(200, &answer).with_header("cache-control", "no-store"))
        }
        Route::Scopes => {
            authenticate(request, config, services.rate_limiter).await?;
            Ok(Response::json(200, &admin::scope_catalogue(settings))
                .with_header("cache-control", "no-store"))
        }
        Route::Accounts(target) => {
            authenticate(request, config, services.rate_limiter).await?;
            let admin_services = AdminServices {
                settings,
                urls: services.urls,
                accounts: services.accounts,
                clock: services.clock,
                entropy: services.entropy,
            };
            let response = compiled_apart(admin::handle(request, target, &admin_services)).await?;
            Ok(response.with_header("cache-control", "no-store"))
        }
    }
}

/// `future` behind a pointer, so that its state machine is a function of its own instead of
/// being inlined into the router's. The router's state machine is then small, and V8, which
/// compiles each wasm function on its first call, compiles each route's code only when that
/// route is first used: a cold isolate's first answer comes that much sooner (docs/performance.md).
fn compiled_apart<'a, T>(
    future: impl Future<Output = T> + 'a,
) -> Pin<Box<dyn Future<Output = T> + 'a>> {
    Box::pin(future)
}

/// The token endpoint: parse, exchange, answer, and log one line whatever happens.
async fn token<K, J, F, V, S, E, L, R>(
    request: &Request,
    config: &Config,
    exchange: Result<Exchange<'_, K, J, F, V, S, E>, ApiError>,
    log: &L,
    rate_limiter: Option<&R>,
) -> Response
where
    K: KeyValueStore,
    J: KeyValueStore,
    F: KeySetFetcher,
    V: SignatureVerifier,
    S: Signer,
    E: Entropy,
    L: EventLog,
    R: RateLimiter,
{
    if let Some(limiter) = rate_limiter {
        if !limiter
            .allow(&format!("token:{}", client_ip(request)))
            .await
        {
            let error = ApiError::RateLimited {
                description: "too many token requests from this address; slow down and try again after Retry-After seconds".into(),
            };
            log.record(endpoint::log_event(
                None,
                None,
                error.status(),
                Some(&error),
            ));
            return error.into_response();
        }
    }
    let (form, token_request) = match parse_token_request(request) {
        Ok(parsed) => parsed,
        Err(error) => {
            log.record(endpoint::log_event(
                None,
                None,
                error.status(),
                Some(&error),
            ));
            return error.into_response();
        }
    };
    let exchange = match config.signing_keys().and(exchange) {
        Ok(exchange) => exchange,
        Err(error) => {
            log.record(endpoint::log_event(
                Some(form),
                None,
                error.status(),
                Some(&error),
            ));
            return error.into_response();
        }
    };
    let outcome = exchange.run(&token_request).await;
    let (response, error) = match &outcome.result {
        Ok(issued) => (
            endpoint::success(
                &issued.access_token,
                endpoint::answered_scope(token_request.scope.as_deref(), &issued.scope),
            ),
            None,
        ),
        Err(failure) => {
            let error = endpoint::error_for(form, failure);
            (error.clone().into_response(), Some(error))
        }
    };
    log.record(endpoint::log_event(
        Some(form),
        Some(&outcome),
        response.status,
        error.as_ref(),
    ));
    response
}

/// The caller's address as Cloudflare's edge states it (`CF-Connecting-IP`, which a client
/// cannot set); `unknown` where nothing states it (a local test without the header).
fn client_ip(request: &Request) -> &str {
    request.header("cf-connecting-ip").unwrap_or("unknown")
}

/// Checks the admin credential. A failed attempt counts against the caller's address in
/// `TOKEN_RATE_LIMIT`, when bound: past the limit, guessing is answered 429, not 401.
async fn authenticate<R: RateLimiter>(
    request: &Request,
    config: &Config,
    rate_limiter: Option<&R>,
) -> Result<(), ApiError> {
    let Err(error) = admin::authenticate(request, config.admin_token.as_ref()) else {
        return Ok(());
    };
    if let Some(limiter) = rate_limiter {
        if !limiter
            .allow(&format!("admin-auth:{}", client_ip(request)))
            .await
        {
            return Err(ApiError::RateLimited {
                description: "too many failed admin authentications from this address; slow down and try again after Retry-After seconds".into(),
            });
        }
    }
    Err(error)
}

/// The one value of `name` in a form body (introspection's `token`).
fn single_form_value(request: &Request, name: &str) -> Result<String, ApiError> {
    let invalid = |description: String| ApiError::InvalidRequest {
        field: Some(name.to_owned()),
        description,
    };
    if request.media_type().as_deref() != Some("application/x-www-form-urlencoded") {
        return Err(ApiError::UnsupportedMediaType {
            expected: "application/x-www-form-urlencoded",
        });
    }
    if request.body_exceeds(endpoint::MAX_FORM_BYTES) {
        return Err(ApiError::PayloadTooLarge {
            limit_bytes: endpoint::MAX_FORM_BYTES,
        });
    }
    let form = parse_form(&request.body)
        .map_err(|error| invalid(format!("the form cannot be decoded: {error}")))?;
    match form.get(name) {
        Some(value) if !value.is_empty() => Ok(value.to_owned()),
        _ => Err(invalid(format!("{name} is required"))),
    }
}

/// The `token` member of a JSON body (the dry run's).
fn json_token(request: &Request) -> Result<String, ApiError> {
    if request.media_type().as_deref() != Some("application/json") {
        return Err(ApiError::UnsupportedMediaType {
            expected: "application/json",
        });
    }
    if request.body_exceeds(admin::MAX_BODY_BYTES) {
        return Err(ApiError::PayloadTooLarge {
            limit_bytes: admin::MAX_BODY_BYTES,
        });
    }
    let invalid = |field: Option<&str>, description: &str| ApiError::InvalidRequest {
        field: field.map(str::to_owned),
        description: description.to_owned(),
    };
    match parse_strict(&request.body, admin::MAX_JSON_DEPTH) {
        Ok(Value::Object(body)) => match (body.get("token"), body.len()) {
            (Some(Value::String(token)), 1) if !token.is_empty() => Ok(token.clone()),
            (Some(_), 1) => Err(invalid(
                Some("token"),
                "token must be a non-empty string (the JWT to test)",
            )),
            (None, _) => Err(invalid(Some("token"), "token is required")),
            _ => Err(invalid(
                None,
                "the body may only hold {\"token\": \"<JWT>\"}",
            )),
        },
        Ok(_) => Err(invalid(
            None,
            "the body must be a JSON object {\"token\": \"<JWT>\"}",
        )),
        Err(error) => Err(invalid(
            None,
            &format!("the body is not valid JSON: {error}"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::memory::{
        block_on, CountingEntropy, FixedClock, MemoryFetcher, MemoryLog, MemoryRateLimiter,
        MemorySigner, MemoryStore, WhatwgUrls,
    };
    use crate::native_crypto::RustCryptoVerifier;
    use crate::settings::Vars;

    /// A token request through the router: one log line, with the SPEC's fields and without
    /// the token or any part of it.
    #[test]
    fn each_token_request_logs_one_line_without_the_token() {
        let config = Config {
            settings: Settings::from_vars(&Vars::default(), &WhatwgUrls),
            signing_keys: Err(SigningKeysError::Missing),
            admin_token: None,
        };
        let (kv, log, key_sets) = (MemoryStore::new(), MemoryLog::default(), KeySets::new());
        let services = Services {
            accounts: &kv,
            jwks_cache: &kv,
            key_sets: &key_sets,
            fetcher: &MemoryFetcher::new(),
            urls: &WhatwgUrls,
            verifier: &RustCryptoVerifier,
            signer: None::<&MemorySigner>,
            entropy: &CountingEntropy::default(),
            clock: &FixedClock::at_seconds(1_795_435_200),
            log: &log,
            rate_limiter: None::<&MemoryRateLimiter>,
        };
        // A token whose payload names iss/sub but whose signature part is recognisable.
        let token = "eyJhbGciOiJFUzI1NiJ9.eyJpc3MiOiJodHRwczovL2lkcCIsInN1YiI6InMifQ.U0lHTkFUVVJFLVNFQ1JFVA";
        for body in [
            format!("grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer&assertion={token}"),
            "grant_type=password".into(),
        ] {
            let mut request = Request::new(Method::Post, "https://sts.test", "/oauth2/token");
            request.headers.push((
                "content-type".into(),
                "application/x-www-form-urlencoded".into(),
            ));
            request.body = body.into_bytes();
            block_on(handle(&request, &config, &services));
        }
        let lines = log.lines();
        assert_eq!(lines.len(), 2, "one line per request");
        for line in &lines {
            for field in [
                "event", "outcome", "status", "reason", "account", "iss", "sub", "jti",
            ] {
                assert!(line.get(field).is_some(), "{field} in {line}");
            }
            let text = line.to_string();
            assert!(
                !text.contains("U0lHTkFUVVJF") && !text.contains("eyJ"),
                "no token in {text}"
            );
        }
        assert_eq!(lines[1]["error"], "unsupported_grant_type");
    }
}
