//! The admin's dry run (`POST /v1/serviceaccounts/{id}/verify`): every check of the pipeline
//! against one named account, each with its verdict and detail; nothing is minted.
//!
//! Unlike the token endpoint it goes on after a failed check wherever the next one can still
//! be judged, so an administrator sees every problem of a token at once.

use serde_json::{json, Value};

use super::claims;
use super::exchange::{check_enabled, Exchange};
use super::jws;
use super::reason::Rejection;
use crate::accounts::Account;
use crate::ports::{Entropy, KeySetFetcher, KeyValueStore, SignatureVerifier, Signer};

fn check(name: &str, result: Result<String, Rejection>) -> Value {
    match result {
        Ok(detail) => json!({"check": name, "ok": true, "detail": detail}),
        // The administrator sees what the anonymous client is not told, too.
        Err(rejection) => {
            let detail = match &rejection.detail {
                Some(detail) => format!("{}: {detail}", rejection.description),
                None => rejection.description,
            };
            json!({"check": name, "ok": false, "reason": rejection.reason.as_str(), "detail": detail})
        }
    }
}

impl<K, J, F, V, S, E> Exchange<'_, K, J, F, V, S, E>
where
    K: KeyValueStore,
    J: KeyValueStore,
    F: KeySetFetcher,
    V: SignatureVerifier,
    S: Signer,
    E: Entropy,
{
    /// `{"ok": bool, "checks": [{"check", "ok", "detail", "reason"?}]}` for `token` against `account`.
    pub async fn dry_run(&self, account: &Account, token: &str) -> Value {
        let mut checks = Vec::new();
        let parsed = jws::parse(token);
        checks.push(check(
            "format",
            parsed
                .as_ref()
                .map(|jws| format!("a compact JWS signed {}", jws.alg.name()))
                .map_err(Clone::clone),
        ));
        let Ok(token) = parsed else {
            return verdict(checks);
        };
        let identity = claims::identity(&token.claims);
        checks.push(check(
            "identity",
            identity
                .as_ref()
                .map(|id| format!("iss {:?}, sub {:?}", id.iss, id.sub))
                .map_err(Clone::clone),
        ));
        let Ok(identity) = identity else {
            return verdict(checks);
        };

        let fields = &account.fields;
        checks.push(check(
            "issuer",
            claims::check_issuer(&account.id, fields, &identity.iss)
                .map(|()| format!("iss is the account's issuerURL {:?}", fields.issuer_url)),
        ));
        let signature = self.verify_signature(account, &token).await.map(|()| {
            format!(
                "{} signature verified with the issuer's key",
                token.alg.name()
            )
        });
        checks.push(check("signature", signature));
        checks.push(check(
            "time",
            claims::check_times(&token.claims, self.now, self.settings.clock_skew_seconds).map(
                |times| {
                    format!(
                        "valid now; lifetime {} s (at most 7200)",
                        times.exp - times.iat
                    )
                },
            ),
        ));
        checks.push(check(
            "audience",
            claims::check_audience(fields, &token.claims)
                .map(|()| format!("aud contains {:?}", fields.audience)),
        ));
        checks.push(check(
            "subject",
            claims::check_subject(fields, &identity.sub)
                .map(|()| format!("sub {:?} matches", identity.sub)),
        ));
        checks.push(check(
            "claims",
            claims::check_claim_rules(fields, &token.claims).map(|matched| {
                if matched.is_empty() {
                    "the account has no claim rules".to_owned()
                } else {
                    matched.join("; ")
                }
            }),
        ));
        checks.push(check(
            "enabled",
            check_enabled(account).map(|()| "the account is enabled".to_owned()),
        ));
        verdict(checks)
    }
}

fn verdict(checks: Vec<Value>) -> Value {
    let ok = checks.iter().all(|check| check["ok"] == true);
    json!({ "ok": ok, "checks": checks })
}
