//! Who may call the admin API, introspection and the dry run: the admin credential, sent as
//! `Authorization: Bearer <token>` or Venafi's `tppl-api-key: <token>`, compared in constant
//! time. A failed attempt counts against the caller's address in `TOKEN_RATE_LIMIT`, when bound.
//! No I/O here beyond the rate limiter handed in.

use sha2::{Digest, Sha256};

use super::error::ApiError;
use super::Request;
use crate::ports::RateLimiter;

/// `ADMIN_TOKEN`, kept out of `Debug` output.
#[derive(Clone)]
pub struct AdminToken(String);

impl AdminToken {
    /// `None` when the secret is unset or empty: the admin API is then disabled.
    pub fn from_secret(secret: Option<String>) -> Option<Self> {
        secret.filter(|token| !token.is_empty()).map(Self)
    }
}

impl std::fmt::Debug for AdminToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AdminToken(<redacted>)")
    }
}

/// The caller's address as Cloudflare's edge states it (`CF-Connecting-IP`, which a client
/// cannot set); `unknown` where nothing states it (a local test without the header).
pub(crate) fn client_ip(request: &Request) -> &str {
    request.header("cf-connecting-ip").unwrap_or("unknown")
}

/// Checks the admin credential. Past the rate limit, a failed attempt is answered 429, not 401.
pub(crate) async fn authenticate<R: RateLimiter>(
    request: &Request,
    admin_token: Option<&AdminToken>,
    rate_limiter: Option<&R>,
) -> Result<(), ApiError> {
    let Err(error) = check_credential(request, admin_token) else {
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

fn check_credential(request: &Request, admin_token: Option<&AdminToken>) -> Result<(), ApiError> {
    let Some(expected) = admin_token else {
        return Err(ApiError::Unauthorized {
            error: "unauthorized",
            description: "admin API disabled".into(),
        });
    };
    let bearer = request.header("authorization").and_then(|value| {
        let (scheme, token) = value.split_once(' ')?;
        scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
    });
    let presented = bearer
        .or_else(|| request.header("tppl-api-key").map(str::trim))
        .ok_or_else(|| ApiError::Unauthorized {
            error: "unauthorized",
            description:
                "send the admin token as Authorization: Bearer <token> or tppl-api-key: <token>"
                    .into(),
        })?;
    if constant_time_eq(presented.as_bytes(), expected.0.as_bytes()) {
        Ok(())
    } else {
        Err(ApiError::Unauthorized {
            error: "invalid_token",
            description: "the admin token is wrong".into(),
        })
    }
}

/// Equality whose time depends on neither the contents nor the lengths: both sides are hashed
/// to 32 bytes, and every byte of the digests is compared.
pub(crate) fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    let (a, b) = (Sha256::digest(a), Sha256::digest(b));
    a.iter()
        .zip(b.iter())
        .fold(0u8, |acc, (x, y)| acc | (x ^ y))
        == 0
}
