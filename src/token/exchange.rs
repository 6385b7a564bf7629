//! The exchange pipeline: a workload's JWT in, a minted access token out (or why not).
//!
//! No clock and no I/O of its own: the time arrives in [`Exchange::now`], the world through the
//! traits of [`crate::ports`].

use base64ct::{Base64UrlUnpadded, Encoding};
use serde_json::{json, Value};

use super::claims::{self, Identity};
use super::jws::{self, Jws};
use super::key_sets::{KeySets, Sources};
use super::keys::{self, check_signature_shape, IssuerKey};
use super::reason::{reject, Reason, Rejection};
use crate::accounts::store::AccountStore;
use crate::accounts::{is_account_id, Account, SubjectRule};
use crate::ports::{Entropy, KeySetFetcher, KeyValueStore, SignatureVerifier, Signer, UrlParser};
use crate::settings::Settings;

/// Lifetime of a minted access token, in seconds: 15 minutes, whatever the incoming token's
/// own lifetime (SPEC.md and the seed).
pub const ACCESS_TOKEN_SECONDS: i64 = 900;

/// Random bytes in a minted token's `jti`: 128 bits (a UUIDv4 has only 122).
pub const JTI_BYTES: usize = 16;

/// The claim of a minted token that records, for audit, which workload token it was
/// exchanged for: `{"iss": …, "sub": …, "jti": …}` of the incoming token.
pub const FEDERATED_CLAIM: &str = "federated";

/// What an exchange needs from the world.
pub struct Exchange<'a, K, J, F, V, S, E> {
    pub settings: &'a Settings,
    /// `iss` and `aud` of minted tokens.
    pub issuer: &'a str,
    /// The `ACCOUNTS` namespace.
    pub accounts: &'a K,
    /// The `JWKS_CACHE` namespace.
    pub jwks_cache: &'a J,
    /// The isolate's key-set cache.
    pub key_sets: &'a KeySets,
    pub fetcher: &'a F,
    /// The WHATWG URL parser that `fetch` uses (for discovered `jwks_uri`s).
    pub urls: &'a dyn UrlParser,
    pub verifier: &'a V,
    /// The active signing key; `None` when `SIGNING_KEYS` is unusable (then nothing is minted).
    pub signer: Option<&'a S>,
    pub entropy: &'a E,
    /// Seconds since the epoch.
    pub now: i64,
}

/// What the client asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRequest {
    /// The workload's JWT.
    pub assertion: String,
    /// Space-separated scopes; `None`: all of the account's.
    pub scope: Option<String>,
    /// An account id: then only that account is tried.
    pub client_id: Option<String>,
}

/// A minted access token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Issued {
    pub access_token: String,
    pub scope: String,
    pub account_id: String,
}

/// Why an exchange failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExchangeError {
    /// The token was judged and refused.
    Rejected(Rejection),
    /// KV failed; the client may retry.
    Storage(String),
    /// Signing the access token failed.
    Signing(String),
}

impl From<Rejection> for ExchangeError {
    fn from(rejection: Rejection) -> Self {
        Self::Rejected(rejection)
    }
}

/// The outcome, with what is known of the token for the log line.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    pub result: Result<Issued, ExchangeError>,
    pub identity: Option<Identity>,
    pub account_id: Option<String>,
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
    /// Runs the pipeline:
    /// 1. parse: size, three canonical base64url parts, strict JSON, `alg` allow-list, refused
    ///    header members ([`jws::parse`]);
    /// 2. identity: `iss`, `sub` (and `jti`) of the unverified token, to find the account;
    /// 3. account: `client_id`'s (whose issuer must be `iss`), or the one whose issuer is `iss`
    ///    and whose subject rule matches `sub` (exact first, then patterns);
    /// 4. key set: the account's `jwksURI` or its issuer's discovered one, from cache or fetched;
    /// 5. key: by `kid` (refetching once on an unknown `kid`), fitting `alg`;
    /// 6. signature;
    /// 7. times: required claims, leeway, `exp − iat` ≤ 2 h;
    /// 8. policy: audience, subject, `claims`;
    /// 9. enabled: the account, and any disabled account for exactly this (`iss`, `sub`),
    ///    which blocks the subject whatever `client_id` names;
    /// 10. scope;
    /// 11. mint.
    pub async fn run(&self, request: &TokenRequest) -> Outcome {
        let mut outcome = Outcome {
            result: Err(ExchangeError::Storage(String::new())),
            identity: None,
            account_id: None,
        };
        outcome.result = self.pipeline(request, &mut outcome).await;
        outcome
    }

    async fn pipeline(
        &self,
        request: &TokenRequest,
        outcome: &mut Outcome,
    ) -> Result<Issued, ExchangeError> {
        let token = jws::parse(&request.assertion)?;
        let identity = claims::identity(&token.claims)?;
        outcome.identity = Some(identity.clone());
        let account = self
            .find_account(&identity, request.client_id.as_deref())
            .await?;
        outcome.account_id = Some(account.id.clone());
        self.verify_signature(&account, &token).await?;
        claims::check_times(&token.claims, self.now, self.settings.clock_skew_seconds)?;
        claims::check_policy(&account.fields, &token.claims, &identity.sub)?;
        check_enabled(&account)?;
        self.check_subject_not_blocked(&account, &identity).await?;
        let scope = grant_scope(&account, request.scope.as_deref())?;
        let access_token = self.mint(&account, &scope, &identity).await?;
        Ok(Issued {
            access_token,
            scope,
            account_id: account.id,
        })
    }

    /// Step 3. Descriptions echo only the token's own values: the signature is not checked yet.
    pub async fn find_account(
        &self,
        identity: &Identity,
        client_id: Option<&str>,
    ) -> Result<Account, ExchangeError> {
        let store = AccountStore::cached(self.accounts);
        let Identity { iss, sub, .. } = identity;
        if let Some(client_id) = client_id {
            // Not even the shape of an account id: no lookup (a long one is no valid KV key).
            if !is_account_id(client_id) {
                let shown: String = client_id.chars().take(64).collect();
                return Err(no_account(format!(
                    "client_id {shown:?} is not a service account id"
                )));
            }
            let account = match store.get(client_id).await {
                Ok(Some(account)) => account,
                Ok(None) => {
                    return Err(no_account(format!(
                        "client_id {client_id:?} is not a service account"
                    )))
                }
                Err(error) => return Err(storage(error)),
            };
            claims::check_issuer(&account.id, &account.fields, iss)?;
            return Ok(account);
        }
        let entries = store.candidates(iss).await.map_err(storage)?;
        let mut exact = Vec::new();
        let mut patterns = Vec::new();
        for entry in entries.iter().filter(|entry| entry.subject.matches(sub)) {
            // The index only names candidates; the record decides.
            let Some(account) = store.get(&entry.id).await.map_err(storage)? else {
                continue;
            };
            if account.fields.issuer_url != *iss || !account.fields.subject.matches(sub) {
                continue;
            }
            match account.fields.subject {
                SubjectRule::Exact(_) => exact.push(account),
                SubjectRule::Pattern(_) => patterns.push(account),
            }
        }
        // An exact subject wins outright; ambiguity arises only among patterns.
        let mut matches = if exact.is_empty() { patterns } else { exact };
        match matches.len() {
            0 => Err(no_account(format!(
                "no service account has issuer {iss:?} and a subject rule matching {sub:?}"
            ))),
            1 => Ok(matches.swap_remove(0)),
            n => {
                // Other accounts' ids are configuration: they go to the log, not to the client.
                let ids: Vec<&str> = matches.iter().map(|account| account.id.as_str()).collect();
                Err(Rejection::new(
                    Reason::AmbiguousAccount,
                    format!("{n} service accounts match issuer {iss:?} and subject {sub:?}; send client_id to choose one"),
                )
                .with_detail(format!("the matching accounts: {}", ids.join(", ")))
                .into())
            }
        }
    }

    /// Steps 4–6.
    pub async fn verify_signature(&self, account: &Account, token: &Jws) -> Result<(), Rejection> {
        let sources = Sources {
            fetcher: self.fetcher,
            cache: self.jwks_cache,
            urls: self.urls,
            allow_http_loopback: self.settings.allow_http_loopback,
        };
        if let Some(jwks) = &account.fields.jwks {
            // An inline set is the account's own: nothing to fetch, nothing to refetch.
            let set = self.key_sets.inline(jwks)?;
            let candidates = keys::select(&set, token.alg, token.kid.as_deref())?;
            return self.check_with(candidates, token).await;
        }
        let url = self
            .key_sets
            .jwks_url(
                &account.fields.issuer_url,
                account.fields.jwks_uri.as_deref(),
                &sources,
                self.now,
            )
            .await?;
        let set = self.key_sets.key_set(&url, &sources, self.now).await?;
        match keys::select(&set, token.alg, token.kid.as_deref()) {
            Ok(candidates) => self.check_with(candidates, token).await,
            Err(rejection) if rejection.reason == Reason::UnknownKey => {
                // Perhaps the issuer rotated: refetch once (at most every 30 s per URL). If that
                // fails while a set is cached, the key is simply unknown.
                let Ok(Some(fresh)) = self.key_sets.refetch(&url, &sources, self.now).await else {
                    return Err(rejection);
                };
                let candidates = keys::select(&fresh, token.alg, token.kid.as_deref())?;
                self.check_with(candidates, token).await
            }
            Err(rejection) => Err(rejection),
        }
    }

    /// Step 6, over the keys that `kid` and `alg` select.
    async fn check_with(&self, candidates: Vec<&IssuerKey>, token: &Jws) -> Result<(), Rejection> {
        let mut last = Rejection::new(Reason::BadSignature, "the signature does not verify");
        for key in candidates {
            if let Err(rejection) = check_signature_shape(token.alg, key, &token.signature) {
                last = rejection;
                continue;
            }
            match self
                .verifier
                .verify(
                    token.alg,
                    key,
                    token.signing_input.as_bytes(),
                    &token.signature,
                )
                .await
            {
                Ok(true) => return Ok(()),
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
                    .with_detail(format!("Web Crypto refused the key: {}", error.0))
                }
            }
        }
        Err(last)
    }

    /// Step 11: an RFC 9068 access token, signed ES256 with the active key.
    async fn mint(
        &self,
        account: &Account,
        scope: &str,
        identity: &Identity,
    ) -> Result<String, ExchangeError> {
        let mut jti = [0u8; JTI_BYTES];
        self.entropy.fill(&mut jti).map_err(|error| {
            ExchangeError::Signing(format!("no random bytes for jti: {}", error.0))
        })?;
        let signer = self
            .signer
            .ok_or_else(|| ExchangeError::Signing("SIGNING_KEYS has no usable key".into()))?;
        let header = json!({"alg": "ES256", "typ": "at+jwt", "kid": signer.kid()});
        let claims = json!({
            "iss": self.issuer,
            "sub": account.id,
            "aud": self.issuer,
            "client_id": account.id,
            "scope": scope,
            "iat": self.now,
            "exp": self.now + ACCESS_TOKEN_SECONDS,
            "jti": Base64UrlUnpadded::encode_string(&jti),
            FEDERATED_CLAIM: {"iss": identity.iss, "sub": identity.sub, "jti": identity.jti},
        });
        let signing_input = format!("{}.{}", encode_json(&header), encode_json(&claims));
        let signature = signer
            .sign(signing_input.as_bytes())
            .await
            .map_err(|error| ExchangeError::Signing(error.0))?;
        Ok(format!(
            "{signing_input}.{}",
            Base64UrlUnpadded::encode_string(&signature)
        ))
    }
}

fn encode_json(value: &Value) -> String {
    Base64UrlUnpadded::encode_string(value.to_string().as_bytes())
}

fn no_account(description: String) -> ExchangeError {
    Rejection::new(Reason::NoMatchingAccount, description).into()
}

fn storage(error: crate::accounts::store::StoreError) -> ExchangeError {
    ExchangeError::Storage(error.to_string())
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
    /// Step 9, second half: an account for exactly this (`iss`, `sub`) that is disabled blocks
    /// the subject, even when `client_id` named another account whose pattern matches it (an
    /// administrator who disabled `repo:acme/legacy` meant that workload). Only a `client_id`
    /// can choose past the exact account, so only then is there anything to look up.
    async fn check_subject_not_blocked(
        &self,
        account: &Account,
        identity: &Identity,
    ) -> Result<(), ExchangeError> {
        if account.fields.subject == SubjectRule::Exact(identity.sub.clone()) {
            return Ok(());
        }
        let store = AccountStore::cached(self.accounts);
        let rule = SubjectRule::Exact(identity.sub.clone());
        let entries = store.candidates(&identity.iss).await.map_err(storage)?;
        for entry in entries.iter().filter(|entry| entry.subject == rule) {
            let Some(exact) = store.get(&entry.id).await.map_err(storage)? else {
                continue;
            };
            if exact.fields.issuer_url == identity.iss
                && exact.fields.subject == rule
                && !exact.fields.enabled
            {
                return Err(Rejection::new(
                    Reason::AccountDisabled,
                    format!(
                        "service account {} for exactly sub {:?} is disabled, which blocks this subject whatever client_id names",
                        exact.id, identity.sub
                    ),
                )
                .into());
            }
        }
        Ok(())
    }
}

/// Step 9: a disabled account exchanges nothing.
pub fn check_enabled(account: &Account) -> Result<(), Rejection> {
    if account.fields.enabled {
        return Ok(());
    }
    reject(
        Reason::AccountDisabled,
        format!("service account {} is disabled", account.id),
    )
}

/// Step 10: the requested scopes, each one the account's; none requested, or an Entra-style
/// `<resource>/.default` among them: all of them.
pub fn grant_scope(account: &Account, requested: Option<&str>) -> Result<String, Rejection> {
    let requested: Vec<&str> = requested
        .unwrap_or("")
        .split(' ')
        .filter(|scope| !scope.is_empty())
        .collect();
    // Entra clients always ask for `<resource>/.default`: "whatever this client was granted".
    if requested.is_empty() || requested.iter().any(|scope| scope.ends_with("/.default")) {
        return Ok(account.fields.scopes.join(" "));
    }
    let mut granted: Vec<&str> = Vec::new();
    for scope in requested {
        if !account.fields.scopes.iter().any(|allowed| allowed == scope) {
            return reject(
                Reason::ScopeNotAllowed,
                format!(
                    "scope {scope:?} is not allowed for service account {}; it has: {}",
                    account.id,
                    account.fields.scopes.join(" ")
                ),
            );
        }
        if !granted.contains(&scope) {
            granted.push(scope);
        }
    }
    Ok(granted.join(" "))
}

#[cfg(test)]
mod tests;
