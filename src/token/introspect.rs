//! RFC 7662 introspection of edge-sts's own access tokens. A token is active only if it is an
//! `at+jwt` signed by one of `SIGNING_KEYS`, issued by this `ISSUER`, unexpired, and its
//! account still exists and is enabled. Anything else is `{"active": false}`, without saying
//! why (RFC 7662 §2.2). No I/O here beyond the traits handed in.

use serde_json::{json, Value};

use super::alg::Alg;
use super::jws;
use super::keys::{check_signature_shape, parse_key_set};
use crate::accounts::store::AccountStore;
use crate::ports::{KeyValueStore, SignatureVerifier};
use crate::signing_keys::SigningKeys;

/// Whether `token` is active, and its claims if so.
pub async fn introspect<K: KeyValueStore, V: SignatureVerifier>(
    token: &str,
    signing_keys: &SigningKeys,
    issuer: &str,
    accounts: &K,
    verifier: &V,
    now: i64,
) -> Value {
    active_claims(token, signing_keys, issuer, accounts, verifier, now)
        .await
        .unwrap_or_else(|| json!({ "active": false }))
}

async fn active_claims<K: KeyValueStore, V: SignatureVerifier>(
    token: &str,
    signing_keys: &SigningKeys,
    issuer: &str,
    accounts: &K,
    verifier: &V,
    now: i64,
) -> Option<Value> {
    let parsed = jws::parse(token).ok()?;
    if parsed.alg != Alg::Es256 || parsed.typ.as_deref() != Some("at+jwt") {
        return None;
    }
    let published = parse_key_set(signing_keys.public_jwks().to_string().as_bytes()).ok()?;
    let kid = parsed.kid.as_deref()?;
    let key = published
        .keys
        .iter()
        .find(|key| key.kid.as_deref() == Some(kid))?;
    check_signature_shape(Alg::Es256, key, &parsed.signature).ok()?;
    if !verifier
        .verify(
            Alg::Es256,
            key,
            parsed.signing_input.as_bytes(),
            &parsed.signature,
        )
        .await
        .ok()?
    {
        return None;
    }
    let claims = &parsed.claims;
    if claims.get("iss")?.as_str()? != issuer || claims.get("exp")?.as_i64()? <= now {
        return None;
    }
    let account_id = claims.get("client_id")?.as_str()?;
    let account = AccountStore::cached(accounts)
        .get(account_id)
        .await
        .ok()??;
    if !account.fields.enabled {
        return None;
    }
    let mut answer = json!({ "active": true, "token_type": "Bearer" });
    for name in [
        "scope",
        "client_id",
        "sub",
        "iss",
        "aud",
        "exp",
        "iat",
        "jti",
    ] {
        if let Some(value) = claims.get(name) {
            answer[name] = value.clone();
        }
    }
    Some(answer)
}
