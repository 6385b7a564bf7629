//! Who is calling an admin endpoint, and whether their role allows the call.
//!
//! A credential is a token, sent as `Authorization: Bearer <token>` or Venafi's
//! `tppl-api-key: <token>` and compared in constant time against `ADMIN_TOKEN` and the hashes
//! of `ADMIN_TOKENS` ([`crate::config::admins`]), or a Cloudflare Access assertion in
//! `Cf-Access-Jwt-Assertion` ([`crate::exchange::access`]). Unknown: 401. Known, but the role
//! does not allow the call: 403. A failed attempt counts against the caller's address in
//! `TOKEN_RATE_LIMIT`, when bound. No I/O here beyond the platform handed in.

use super::error::ApiError;
use super::isolate::Isolate;
use super::Request;
use crate::config::admins::{Caller, Permission, Role};
use crate::exchange::access::verify_assertion;
use crate::exchange::key_sets::Sources;
use crate::jose::reason::Reason;
use crate::ports::{Platform, RateLimiter};

/// The header Cloudflare Access puts its assertion in.
pub const ACCESS_HEADER: &str = "cf-access-jwt-assertion";

/// The caller's address as Cloudflare's edge states it (`CF-Connecting-IP`, which a client
/// cannot set); `unknown` where nothing states it (a local test without the header).
pub(crate) fn client_ip(request: &Request) -> &str {
    request.header("cf-connecting-ip").unwrap_or("unknown")
}

/// Who is calling, and whether they may make a call needing `permission`. Past the rate limit,
/// a failed authentication is answered 429, not 401.
pub(crate) async fn authorize<P: Platform>(
    request: &Request,
    permission: Permission,
    isolate: &Isolate,
    platform: &P,
    now: i64,
) -> Result<Caller, ApiError> {
    let caller = match identify(request, isolate, platform, now).await {
        Ok(caller) => caller,
        Err(error) => return Err(slow_down(request, platform.rate_limiter(), error).await),
    };
    if caller.role.allows(permission) {
        Ok(caller)
    } else {
        Err(ApiError::Forbidden {
            description: format!(
                "{} has the role {}, which may not {}",
                caller.name,
                caller.role.as_str(),
                match permission {
                    Permission::Read => "read accounts or the audit trail",
                    Permission::Write => "create, change or delete accounts",
                    Permission::Introspect => "introspect tokens",
                }
            ),
        })
    }
}

async fn identify<P: Platform>(
    request: &Request,
    isolate: &Isolate,
    platform: &P,
    now: i64,
) -> Result<Caller, ApiError> {
    let admins = isolate.admins()?;
    if admins.is_empty() {
        return Err(ApiError::Unauthorized {
            error: "unauthorized",
            description: "admin API disabled".into(),
        });
    }
    let bearer = request.header("authorization").and_then(|value| {
        let (scheme, token) = value.split_once(' ')?;
        scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
    });
    let token = bearer.or_else(|| request.header("tppl-api-key").map(str::trim));
    if let Some(token) = token {
        return admins
            .by_token(token)
            .ok_or_else(|| ApiError::Unauthorized {
                error: "invalid_token",
                description: "the admin token is wrong".into(),
            });
    }
    if let (Some(access), Some(assertion)) = (&admins.access, request.header(ACCESS_HEADER)) {
        let settings = isolate.settings()?;
        let sources = Sources {
            platform,
            allow_http_loopback: settings.allow_http_loopback,
        };
        let name = verify_assertion(
            assertion,
            access,
            &isolate.key_sets,
            &sources,
            settings.clock_skew_seconds,
            now,
        )
        .await
        .map_err(|rejection| match rejection.reason {
            // Access's certificates could not be had: Cloudflare's outage, not the caller's
            // fault, and no failed sign-in to count.
            Reason::JwksUnavailable | Reason::JwksInvalid => ApiError::Unavailable {
                description: format!(
                    "Cloudflare Access's signing keys could not be had to check the assertion: {}",
                    rejection.description
                ),
            },
            _ => ApiError::Unauthorized {
                error: "invalid_token",
                description: format!(
                    "the Cloudflare Access assertion is not valid: {}",
                    rejection.description
                ),
            },
        })?;
        return Ok(Caller {
            name,
            role: Role::Admin,
        });
    }
    let how = match (admins.has_tokens(), admins.access.is_some()) {
        (true, true) => "send an admin token as Authorization: Bearer <token> or tppl-api-key: <token>, or sign in through Cloudflare Access",
        (false, true) => "sign in through Cloudflare Access (the request carries no Cf-Access-Jwt-Assertion)",
        _ => "send the admin token as Authorization: Bearer <token> or tppl-api-key: <token>",
    };
    Err(ApiError::Unauthorized {
        error: "unauthorized",
        description: how.into(),
    })
}

/// A failed authentication: past the rate limit, 429 instead.
async fn slow_down<R: RateLimiter>(
    request: &Request,
    rate_limiter: Option<&R>,
    error: ApiError,
) -> ApiError {
    if !matches!(error, ApiError::Unauthorized { .. }) {
        return error;
    }
    if let Some(limiter) = rate_limiter {
        if !limiter
            .allow(&format!("admin-auth:{}", client_ip(request)))
            .await
        {
            return ApiError::RateLimited {
                description: "too many failed admin authentications from this address; slow down and try again after Retry-After seconds".into(),
            };
        }
    }
    error
}
