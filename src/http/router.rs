//! The router: the route table, who may call each route, and the hand-off to its endpoint.
//!
//! The platform layer calls [`handle`] with the isolate's [`Isolate`] and its [`Platform`];
//! native tests call it the same way with the in-memory platform, without a server (axum's
//! "a function builds the whole app"). Errors flow up as [`ApiError`] and become responses in
//! one place. No I/O here beyond the platform.

use super::admin::COLLECTION_PATH;
use super::audit::AUDIT_PATH;
use super::auth::authorize;
use super::error::ApiError;
use super::{admin, audit, console, discovery, health, introspect, token, verify};
use super::{Method, Request, Response};
use crate::apart::compiled_apart;
use crate::config::admins::Permission;
use crate::config::settings::Settings;
use crate::ports::{Clock, Platform};

pub use super::isolate::Isolate;

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
    /// `/v1/serviceaccounts/scopes`: the scope catalogue, in Venafi's shape.
    Scopes,
    /// `/v1/serviceaccounts/{id}/verify`.
    Verify(&'p str),
    /// `/v1/audit`: the audit trail.
    Audit,
    /// The admin console's page and assets.
    Console,
    /// `/openapi.json`: the OpenAPI description.
    OpenApi,
}

const GET: &[Method] = &[Method::Get];
const POST: &[Method] = &[Method::Post];
const GET_POST: &[Method] = &[Method::Get, Method::Post];
const COLLECTION_METHODS: &[Method] = &[Method::Get, Method::Post];
const ITEM_METHODS: &[Method] = &[Method::Get, Method::Patch, Method::Delete];

/// The route of `path` and the methods it takes.
fn route(path: &str) -> Option<(Route<'_>, &'static [Method])> {
    match path {
        "/healthz" => return Some((Route::Health, GET)),
        "/openapi.json" => return Some((Route::OpenApi, GET)),
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
        AUDIT_PATH => return Some((Route::Audit, GET)),
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
    if let Some(rest) = path
        .strip_prefix(COLLECTION_PATH)
        .and_then(|rest| rest.strip_prefix('/'))
    {
        return match rest.split_once('/') {
            None if !rest.is_empty() => Some((Route::Accounts(Some(rest)), ITEM_METHODS)),
            Some((id, "verify")) if !id.is_empty() => Some((Route::Verify(id), POST)),
            _ => None,
        };
    }
    // Entra's shapes: the tenant first, then what Microsoft's clients append to an authority.
    let (tenant, rest) = path.strip_prefix('/')?.split_once('/')?;
    if tenant.is_empty() {
        return None;
    }
    match rest {
        "oauth2/v2.0/token" => Some((
            Route::Token {
                tenant: Some(tenant),
            },
            POST,
        )),
        "v2.0/.well-known/openid-configuration" | ".well-known/openid-configuration" => {
            Some((Route::TenantMetadata(tenant), GET))
        }
        "oauth2/v2.0/authorize" => Some((Route::Authorize(tenant), GET_POST)),
        _ => None,
    }
}

/// Answers one request. Never panics on any input; every error is a JSON body.
pub async fn handle<P: Platform>(request: &Request, isolate: &Isolate, platform: &P) -> Response {
    dispatch(request, isolate, platform)
        .await
        .unwrap_or_else(ApiError::into_response)
}

async fn dispatch<P: Platform>(
    request: &Request,
    isolate: &Isolate,
    platform: &P,
) -> Result<Response, ApiError> {
    let not_found = || ApiError::NotFound {
        path: request.path.clone(),
    };
    let (route, allow) = route(&request.path).ok_or_else(not_found)?;
    if let Route::Token {
        tenant: Some(tenant),
    }
    | Route::TenantMetadata(tenant)
    | Route::Authorize(tenant) = route
    {
        // The Venafi- and Entra-compatible paths exist only for the configured tenant. Its case
        // does not matter: MSAL lower-cases the whole authority URL.
        let configured = isolate
            .settings
            .as_ref()
            .ok()
            .and_then(|settings| settings.tenant_id.as_deref());
        if !configured.is_some_and(|configured| configured.eq_ignore_ascii_case(tenant)) {
            return Err(not_found());
        }
    }
    if !allow.contains(&request.method) {
        return Err(ApiError::MethodNotAllowed { allow });
    }
    let settings = isolate.settings()?;
    let issuer = settings.issuer_for(&request.origin).map_err(ApiError::from);
    let now = (platform.clock().now_millis() / 1000) as i64;
    // Who is calling (a token, or a Cloudflare Access assertion verified like a workload's
    // token) is a function of its own, not inlined at every admin route.
    let admin = |permission| compiled_apart(authorize(request, permission, isolate, platform, now));
    match route {
        Route::Health => {
            // The deep check is an administrator's: who asks is settled first.
            let deep = match health::wants_deep(request)? {
                true => Some(admin(Permission::Read).await?),
                false => None,
            };
            // Healthy means able to mint: the issuer must be set and the keys usable too.
            issuer?;
            isolate.signing_keys()?;
            if let Some(caller) = deep {
                return compiled_apart(health::deep(request, platform, &caller, now)).await;
            }
            // Written out: the answer a monitor polls, and often a new isolate's first, needs
            // no serialiser.
            Ok(Response::json_text(200, r#"{"status":"ok"}"#)
                .with_header("cache-control", "no-store"))
        }
        Route::Token { .. } => {
            Ok(compiled_apart(token::answer(request, isolate, platform, issuer, now)).await)
        }
        // The others apart: a new isolate's first request is most often a monitor's /healthz
        // or a workload's token request, and V8 compiles this function whole when it first
        // runs, the arms of every other route included.
        route => {
            let other = answer_other(route, request, isolate, platform, settings, issuer, now);
            compiled_apart(other).await
        }
    }
}

/// Every route but `/healthz` and the token endpoints, its method allowed, with what
/// [`dispatch`] settled: the settings, `iss` of minted tokens (or why there is none) and the
/// time in seconds since the epoch.
async fn answer_other<P: Platform>(
    route: Route<'_>,
    request: &Request,
    isolate: &Isolate,
    platform: &P,
    settings: &Settings,
    issuer: Result<&str, ApiError>,
    now: i64,
) -> Result<Response, ApiError> {
    debug_assert!(
        !matches!(route, Route::Health | Route::Token { .. }),
        "dispatch answers {route:?} itself"
    );
    let admin = |permission| compiled_apart(authorize(request, permission, isolate, platform, now));
    match route {
        Route::OpenApi => Ok(discovery::openapi()),
        Route::Jwks => {
            let keys = isolate.signing_keys()?;
            // Verifiers may cache for five minutes; rotation publishes a key well before it signs.
            Ok(Response::json(200, &keys.public_jwks())
                .with_header("cache-control", "public, max-age=300"))
        }
        Route::Metadata => Ok(discovery::metadata(settings, issuer?)),
        Route::TenantMetadata(_) => Ok(discovery::tenant_metadata(settings, issuer?)),
        Route::Authorize(_) => Err(discovery::no_authorization_endpoint()),
        Route::Console => console::asset(&request.path).ok_or_else(|| ApiError::NotFound {
            path: request.path.clone(),
        }),
        Route::Introspect => {
            admin(Permission::Introspect).await?;
            let keys = isolate.signing_keys()?;
            compiled_apart(introspect::answer(request, keys, issuer?, platform, now)).await
        }
        Route::Verify(id) => {
            let caller = admin(Permission::Read).await?;
            compiled_apart(verify::answer(request, id, isolate, platform, &caller, now)).await
        }
        Route::Scopes => {
            admin(Permission::Read).await?;
            Ok(admin::scopes(settings))
        }
        Route::Audit => {
            let caller = admin(Permission::Read).await?;
            compiled_apart(audit::answer(request, platform, &caller)).await
        }
        Route::Accounts(target) => {
            let permission = match request.method {
                Method::Get => Permission::Read,
                _ => Permission::Write,
            };
            let caller = admin(permission).await?;
            let response =
                compiled_apart(admin::answer(request, target, settings, platform, &caller)).await?;
            Ok(response.with_header("cache-control", "no-store"))
        }
        // Answered by `dispatch` itself; never here.
        Route::Health | Route::Token { .. } => Err(ApiError::NotFound {
            path: request.path.clone(),
        }),
    }
}

#[cfg(test)]
mod tests;
