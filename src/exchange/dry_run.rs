//! The admin's dry run (`POST /v1/serviceaccounts/{id}/verify`): the exchange's own checks
//! against one named account, each with its verdict and detail; nothing is minted.
//!
//! It has no list of steps of its own: it walks [`BEFORE_SIGNATURE`] and [`AFTER_SIGNATURE`],
//! so a rule added to the policy shows here at once. Unlike the exchange it goes on after a
//! refusal wherever the next check can still be judged; the checks that need a verified token
//! are shown as not checked when the signature did not verify. The administrator also sees
//! what the anonymous client is not told (a rejection's detail).

use serde::Serialize;

use super::Exchange;
use crate::accounts::store::{AccountStore, StoreError};
use crate::accounts::Account;
use crate::jose::claims;
use crate::jose::jws;
use crate::jose::reason::Rejection;
use crate::policy::{Explain, AFTER_SIGNATURE, BEFORE_SIGNATURE};
use crate::ports::Platform;

/// The dry run's answer: `{"ok": bool, "checks": [{"check", "ok", "detail", "reason"?}]}`.
#[derive(Debug, Serialize)]
pub(crate) struct Verdict {
    pub ok: bool,
    pub checks: Vec<CheckVerdict>,
}

/// One check's verdict.
#[derive(Debug, Serialize)]
pub(crate) struct CheckVerdict {
    pub check: &'static str,
    pub ok: bool,
    pub detail: String,
    /// The contract's reason, when the check refused the token.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<&'static str>,
    /// True when the check could not be judged (it needs a verified signature).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub skipped: bool,
}

impl CheckVerdict {
    fn of(check: &'static str, result: Result<String, Rejection>) -> Self {
        match result {
            Ok(detail) => Self {
                check,
                ok: true,
                detail,
                reason: None,
                skipped: false,
            },
            Err(rejection) => Self {
                check,
                ok: false,
                detail: match &rejection.detail {
                    Some(detail) => format!("{}: {detail}", rejection.description),
                    None => rejection.description,
                },
                reason: Some(rejection.reason.as_str()),
                skipped: false,
            },
        }
    }

    fn skipped(check: &'static str) -> Self {
        Self {
            check,
            ok: false,
            detail: "not checked: the signature did not verify".into(),
            reason: None,
            skipped: true,
        }
    }
}

impl<P: Platform> Exchange<'_, P> {
    /// Every check of `token` against `account`.
    pub(crate) async fn dry_run(
        &self,
        account: &Account,
        token: &str,
    ) -> Result<Verdict, StoreError> {
        let mut checks = Vec::new();
        let parsed = jws::parse(token);
        checks.push(CheckVerdict::of(
            "format",
            parsed
                .as_ref()
                .map(|token| format!("a compact JWS signed {}", token.alg.name()))
                .map_err(Clone::clone),
        ));
        let Ok(token) = parsed else {
            return Ok(verdict(checks));
        };
        let identity = claims::identity(&token.claims);
        checks.push(CheckVerdict::of(
            "identity",
            identity
                .as_ref()
                .map(|id| format!("iss {:?}, sub {:?}", id.iss, id.sub))
                .map_err(Clone::clone),
        ));
        let Ok(identity) = identity else {
            return Ok(verdict(checks));
        };
        for check in BEFORE_SIGNATURE {
            checks.push(CheckVerdict::of(
                check.name,
                (check.run)(account, &identity, Explain::Yes),
            ));
        }
        let verified = self.verify_signature(account, &token, None).await;
        checks.push(CheckVerdict::of(
            "signature",
            verified.as_ref().map_err(Clone::clone).map(|token| {
                format!(
                    "{} signature verified with the issuer's key",
                    token.alg().name()
                )
            }),
        ));
        let Ok(verified) = verified else {
            checks.extend(
                AFTER_SIGNATURE
                    .iter()
                    .map(|check| CheckVerdict::skipped(check.name)),
            );
            return Ok(verdict(checks));
        };
        // As the exchange: the index matters only when the account is not for exactly this
        // subject. Storage that fails is the dry run's failure (503), not a silent "no such
        // account" that would let the enabled check pass where the exchange would not.
        let exact_account = if account.fields.subject.is_exactly(&identity.sub) {
            None
        } else {
            let entries = AccountStore::new(self.platform.accounts())
                .candidates(&identity.iss)
                .await?;
            self.exact_account(account, &identity, &entries).await?
        };
        let context = self.context(exact_account.as_ref(), Explain::Yes);
        for check in AFTER_SIGNATURE {
            let result = (check.run)(account, &verified, &identity, &context);
            checks.push(CheckVerdict::of(check.name, result));
        }
        Ok(verdict(checks))
    }
}

fn verdict(checks: Vec<CheckVerdict>) -> Verdict {
    Verdict {
        ok: checks.iter().all(|check| check.ok),
        checks,
    }
}
