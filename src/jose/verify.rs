//! The signature check, and the type it gives: a [`VerifiedToken`] exists only once one of the
//! issuer's keys verified the token's signature, so a check that takes one cannot run before
//! the signature did ("policy after signature" is a rule of the types, as jwt-compact's
//! `UntrustedToken` / `Token`). The cryptography itself is the platform's (Web Crypto) behind
//! [`SignatureVerifier`]; this module checks the shape first. No I/O here beyond that trait.
#![allow(async_fn_in_trait)]

use serde_json::{Map, Value};

use super::alg::Alg;
use super::jws::UntrustedToken;
use super::keys::{check_signature_shape, IssuerKey};
use super::reason::{Reason, Rejection};

/// Why a signature could not be checked at all (as opposed to checked and found wrong).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct VerifyError(pub String);

/// Verifies a signature with one of an issuer's keys. The key has already been checked to fit
/// the algorithm, and the signature's shape to fit the key.
pub trait SignatureVerifier {
    async fn verify(
        &self,
        alg: Alg,
        key: &IssuerKey,
        signing_input: &[u8],
        signature: &[u8],
    ) -> Result<bool, VerifyError>;
}

/// A token whose signature one of its issuer's keys verified.
#[derive(Debug, Clone, Copy)]
pub struct VerifiedToken<'a> {
    token: &'a UntrustedToken,
}

impl VerifiedToken<'_> {
    /// The claims, now to be believed.
    pub fn claims(&self) -> &Map<String, Value> {
        &self.token.claims
    }

    pub fn alg(&self) -> Alg {
        self.token.alg
    }
}

/// Verifies `token` with the first of `keys` whose signature shape fits and whose signature
/// verifies. Every try is a verification the caller pays for: the caller bounds `keys`
/// ([`super::keys::select`]).
pub async fn verify<'a, V: SignatureVerifier + ?Sized>(
    token: &'a UntrustedToken,
    keys: &[&IssuerKey],
    verifier: &V,
) -> Result<VerifiedToken<'a>, Rejection> {
    let mut last = Rejection::new(Reason::BadSignature, "the signature does not verify");
    for key in keys {
        if let Err(rejection) = check_signature_shape(token.alg, key, &token.signature) {
            last = rejection;
            continue;
        }
        match verifier
            .verify(
                token.alg,
                key,
                token.signing_input.as_bytes(),
                &token.signature,
            )
            .await
        {
            Ok(true) => return Ok(VerifiedToken { token }),
            Ok(false) => {
                let kid = key
                    .kid
                    .as_deref()
                    .map(|kid| format!(" (kid {kid:?})"))
                    .unwrap_or_default();
                last = Rejection::new(
                    Reason::BadSignature,
                    format!(
                        "the {} signature does not verify with the issuer's key{kid}",
                        token.alg.name()
                    ),
                );
            }
            Err(error) => {
                last = Rejection::new(
                    Reason::KeyMismatch,
                    format!("the issuer's key cannot verify {}", token.alg.name()),
                )
                .with_detail(format!("Web Crypto refused the key: {error}"))
            }
        }
    }
    Err(last)
}
