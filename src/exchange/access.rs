//! An administrator's Cloudflare Access assertion (`Cf-Access-Jwt-Assertion`), verified with the
//! same machinery as a workload's token: the strict parser, the team's key set fetched and
//! cached by [`KeySets`] from `https://{team}/cdn-cgi/access/certs`, the signature before any
//! claim is believed. Then `iss` must be the team, `aud` hold `ACCESS_AUD`, and the times hold.
//! The actor is the `email` claim (a user), or `common_name` (an Access service token).
//!
//! Access sessions last hours, so the 2-hour lifetime rule of workload tokens does not apply
//! here; `exp` and `nbf` are checked with the deployment's clock leeway.

use serde_json::Value;

use super::key_sets::{KeySets, Sources};
use crate::config::admins::Access;
use crate::jose::claims::audiences;
use crate::jose::jws;
use crate::jose::reason::{Reason, Rejection};
use crate::ports::Platform;

/// The actor an assertion names, once verified.
pub(crate) async fn verify_assertion<P: Platform>(
    assertion: &str,
    access: &Access,
    key_sets: &KeySets,
    sources: &Sources<'_, P>,
    leeway: u64,
    now: i64,
) -> Result<String, Rejection> {
    let token = jws::parse(assertion)?;
    // Access rotates its keys every six weeks: an unknown `kid` refetches once, as for an issuer.
    let verified = key_sets
        .verify_with(&token, &access.certs_url(), sources, now, None)
        .await?;
    let claims = verified.claims();
    if claims.get("iss").and_then(Value::as_str) != Some(access.issuer().as_str()) {
        return Err(Rejection::new(
            Reason::IssuerMismatch,
            format!("the assertion was not issued by {}", access.issuer()),
        ));
    }
    if !audiences(claims)?.contains(&access.aud.as_str()) {
        return Err(Rejection::new(
            Reason::AudienceMismatch,
            "the assertion is for another Access application (its aud is not ACCESS_AUD)",
        ));
    }
    let time = |name: &str| claims.get(name).and_then(Value::as_f64);
    let (now, leeway) = (now as f64, leeway as f64);
    match time("exp") {
        None => {
            return Err(Rejection::new(
                Reason::MissingClaim,
                "the assertion has no exp",
            ))
        }
        Some(exp) if exp <= now - leeway => {
            return Err(Rejection::new(
                Reason::TokenExpired,
                "the Access session has expired; sign in again",
            ))
        }
        Some(_) => {}
    }
    if time("nbf").is_some_and(|nbf| nbf > now + leeway) {
        return Err(Rejection::new(
            Reason::TokenNotYetValid,
            "the assertion is not valid yet",
        ));
    }
    ["email", "common_name"]
        .iter()
        .find_map(|name| {
            claims
                .get(*name)
                .and_then(Value::as_str)
                .filter(|value| !value.is_empty())
        })
        .map(str::to_owned)
        .ok_or_else(|| {
            Rejection::new(
                Reason::MissingClaim,
                "the assertion names no email (or service token common_name)",
            )
        })
}
