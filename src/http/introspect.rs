//! `POST /oauth2/introspect`: RFC 7662 introspection of edge-sts's own access tokens. A token is
//! active only if it is an `at+jwt` signed by one of `SIGNING_KEYS`, issued by this `ISSUER`,
//! unexpired, and its account still exists and is enabled; its `scope` is then what was minted
//! and the account still has. Anything else is `{"active": false}`, without saying why (RFC 7662
//! §2.2) — except that accounts which cannot be read is 503, not `active: false`: a resource
//! server must not turn away every valid token because KV failed for a moment. No I/O here
//! beyond the platform.

use serde_json::{json, Map, Value};

use super::error::ApiError;
use super::extract::{FormBody, FromRequest};
use super::{Request, Response};
use crate::accounts::store::AccountStore;
use crate::accounts::Account;
use crate::config::signing_keys::SigningKeys;
use crate::jose::alg::Alg;
use crate::jose::jws;
use crate::jose::keys::key_set_of;
use crate::jose::verify::verify;
use crate::ports::Platform;

/// Answers the introspection of the form's `token`.
pub(crate) async fn answer<P: Platform>(
    request: &Request,
    signing_keys: &SigningKeys,
    issuer: &str,
    platform: &P,
    now: i64,
) -> Result<Response, ApiError> {
    let FormBody(form) = FormBody::from_request(request)?;
    let token = form
        .get("token")
        .filter(|token| !token.is_empty())
        .ok_or_else(|| ApiError::InvalidRequest {
            field: Some("token".into()),
            description: "token is required".into(),
        })?;
    let inactive = || json!({ "active": false });
    let answer = match verified_claims(token, signing_keys, issuer, platform, now).await {
        None => inactive(),
        Some(claims) => {
            let Some(account_id) = claims.get("client_id").and_then(Value::as_str) else {
                return Ok(
                    Response::json(200, &inactive()).with_header("cache-control", "no-store")
                );
            };
            let account = AccountStore::new(platform.accounts())
                .get(account_id)
                .await?;
            account
                .and_then(|account| active(&claims, &account))
                .unwrap_or_else(inactive)
        }
    };
    Ok(Response::json(200, &answer).with_header("cache-control", "no-store"))
}

/// The claims of `token` if it is one of ours, signed, issued here and unexpired.
async fn verified_claims<P: Platform>(
    token: &str,
    signing_keys: &SigningKeys,
    issuer: &str,
    platform: &P,
    now: i64,
) -> Option<Map<String, Value>> {
    let parsed = jws::parse(token).ok()?;
    if parsed.alg != Alg::Es256 || parsed.typ.as_deref() != Some("at+jwt") {
        return None;
    }
    let published = key_set_of(&signing_keys.public_jwks()).ok()?;
    let kid = parsed.kid.as_deref()?;
    let key = published
        .keys
        .iter()
        .find(|key| key.kid.as_deref() == Some(kid))?;
    let verified = verify(&parsed, &[key], platform.verifier()).await.ok()?;
    let claims = verified.claims();
    if claims.get("iss")?.as_str()? != issuer || claims.get("exp")?.as_i64()? <= now {
        return None;
    }
    Some(claims.clone())
}

/// The introspection answer of verified `claims` whose account is `account`: `None` when the
/// account is disabled.
fn active(claims: &Map<String, Value>, account: &Account) -> Option<Value> {
    if !account.fields.enabled {
        return None;
    }
    let mut answer = json!({ "active": true, "token_type": "Bearer" });
    for name in ["client_id", "sub", "iss", "aud", "exp", "iat", "jti"] {
        if let Some(value) = claims.get(name) {
            answer[name] = value.clone();
        }
    }
    // What was minted and the account still has: a scope taken away since is not active.
    let scope: Vec<&str> = claims
        .get("scope")?
        .as_str()?
        .split(' ')
        .filter(|scope| account.fields.scopes.iter().any(|kept| kept == scope))
        .collect();
    answer["scope"] = json!(scope.join(" "));
    Some(answer)
}
