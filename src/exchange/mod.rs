//! The exchange pipeline: a workload's JWT in, a minted access token out (or why not).
//!
//! | module | what |
//! |---|---|
//! | here | [`Exchange::run`]: the pipeline, finding the account, the signature, minting |
//! | [`key_sets`] | issuer key sets and discovery, cached in the isolate and in `JWKS_CACHE` |
//! | [`dry_run`] | the admin's dry run: the same checks, every verdict shown |
//!
//! No clock and no I/O of its own: the time arrives in [`Exchange::now`], the world through the
//! [`Platform`].

pub(crate) mod access;
pub(crate) mod dry_run;
pub(crate) mod key_sets;

use base64ct::{Base64UrlUnpadded, Encoding};
use futures_util::future::join;
use serde::Serialize;

use crate::accounts::store::{AccountStore, IndexEntry, StoreError};
use crate::accounts::{is_account_id, Account, SubjectRule};
use crate::apart::compiled_apart;
use crate::config::settings::Settings;
use crate::jose::claims::{self, Identity};
use crate::jose::jws::{self, UntrustedToken};
use crate::jose::keys;
use crate::jose::reason::{Reason, Rejection};
use crate::jose::verify::{verify, VerifiedToken};
use crate::policy::{self, Context, Explain, AFTER_SIGNATURE, BEFORE_SIGNATURE};
use crate::ports::{Entropy, Platform, Signer};
use key_sets::{KeySets, ReadAhead, Sources};

/// Lifetime of a minted access token, in seconds: 15 minutes, whatever the incoming token's
/// own lifetime (the contract and the seed).
pub const ACCESS_TOKEN_SECONDS: i64 = 900;

/// Random bytes in a minted token's `jti`: 128 bits (a UUIDv4 has only 122).
pub const JTI_BYTES: usize = 16;

/// One exchange (or dry run): the world, the deployment's settings, the isolate's key sets,
/// and the request's time.
pub(crate) struct Exchange<'a, P: Platform> {
    pub platform: &'a P,
    pub settings: &'a Settings,
    pub key_sets: &'a KeySets,
    /// `iss` and `aud` of minted tokens.
    pub issuer: &'a str,
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
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExchangeError {
    /// The token was judged and refused.
    #[error("{}", .0.description)]
    Rejected(Rejection),
    /// KV failed; the client may retry.
    #[error("the account store failed: {0}")]
    Storage(String),
    /// A stored account could not be read back (a bug or a hand edit): retrying cannot help.
    #[error("{0}")]
    Corrupt(String),
    /// Signing the access token failed.
    #[error("signing failed: {0}")]
    Signing(String),
}

impl From<Rejection> for ExchangeError {
    fn from(rejection: Rejection) -> Self {
        Self::Rejected(rejection)
    }
}

impl From<StoreError> for ExchangeError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::Storage(_) => Self::Storage(error.to_string()),
            StoreError::Corrupt { .. } => Self::Corrupt(error.to_string()),
        }
    }
}

/// What step 3 found.
struct Found {
    account: Account,
    /// When `client_id` chose an account that is not for exactly the token's (`iss`, `sub`):
    /// the account that is, if any (the enabled check hears of it).
    exact: Option<Account>,
    /// The key set's `JWKS_CACHE` entry, read together with the records.
    ahead: Option<ReadAhead>,
}

/// The outcome, with what is known of the token for the log line.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    pub result: Result<Issued, ExchangeError>,
    pub identity: Option<Identity>,
    pub account_id: Option<String>,
}

impl<P: Platform> Exchange<'_, P> {
    /// Runs the pipeline, one `?` per step:
    /// 1. parse: size, three canonical base64url parts, strict JSON, `alg` allow-list, refused
    ///    header members ([`jws::parse`]);
    /// 2. identity: `iss`, `sub` (and `jti`) of the unverified token, to find the account;
    /// 3. account: `client_id`'s, or the one whose issuer is `iss` and whose subject rule matches
    ///    `sub` (exact first, then patterns): the issuer's index, then the candidates' records
    ///    in one read, while the key set's cache entry is read too (so a cold isolate waits on
    ///    storage twice before the signature, not once per read);
    /// 4. [`BEFORE_SIGNATURE`]: the account's issuer is the token's;
    /// 5. signature: the key set (the account's `jwks`, its `jwksURI`, or its issuer's
    ///    discovered one, cached or fetched), the key by `kid` (refetching once on an unknown
    ///    one), then the signature itself, which makes the token a [`VerifiedToken`];
    /// 6. [`AFTER_SIGNATURE`]: times, audience, subject, `claims`, enabled (with the account for
    ///    exactly this `iss` and `sub`, which blocks the subject when disabled);
    /// 7. scope;
    /// 8. mint.
    pub async fn run(&self, request: &TokenRequest) -> Outcome {
        let (mut identity, mut account_id) = (None, None);
        let result = self.pipeline(request, &mut identity, &mut account_id).await;
        Outcome {
            result,
            identity,
            account_id,
        }
    }

    /// The steps; what is learnt of the token and its account on the way goes into `seen_*`,
    /// for the log line of a refusal too.
    async fn pipeline(
        &self,
        request: &TokenRequest,
        seen_identity: &mut Option<Identity>,
        seen_account: &mut Option<String>,
    ) -> Result<Issued, ExchangeError> {
        let token = jws::parse(&request.assertion)?;
        let identity = claims::identity(&token.claims)?;
        *seen_identity = Some(identity.clone());
        let Found {
            account,
            exact,
            ahead,
        } = self
            .find_account(&identity, request.client_id.as_deref())
            .await?;
        *seen_account = Some(account.id.clone());
        for check in BEFORE_SIGNATURE {
            (check.run)(&account, &identity, Explain::No)?;
        }
        let verified = self.verify_signature(&account, &token, ahead).await?;
        let context = self.context(exact.as_ref(), Explain::No);
        for check in AFTER_SIGNATURE {
            (check.run)(&account, &verified, &identity, &context)?;
        }
        let scope = policy::grant_scope(&account, request.scope.as_deref())?;
        let access_token = self.mint(&account, &scope, &identity).await?;
        Ok(Issued {
            access_token,
            scope,
            account_id: account.id,
        })
    }

    fn context<'c>(&self, exact_account: Option<&'c Account>, explain: Explain) -> Context<'c> {
        Context {
            now: self.now,
            leeway: self.settings.clock_skew_seconds,
            exact_account,
            explain,
        }
    }

    /// Step 3, in two waits on storage at most. First wait: with `client_id`, its record and the
    /// issuer's index; without, the index. Second wait: with `client_id`, the account for
    /// exactly (`iss`, `sub`); without, the candidates' records; both with the key set's cache
    /// entry (the account's or likely account's `jwksURI`'s, or its issuer's discovered key
    /// set). Descriptions echo only the token's own values: the signature is not checked yet.
    async fn find_account(
        &self,
        identity: &Identity,
        client_id: Option<&str>,
    ) -> Result<Found, ExchangeError> {
        // Each lookup compiled apart: a client sends `client_id` always or never, so a cold
        // isolate compiles only the one it uses.
        match client_id {
            Some(client_id) => compiled_apart(self.find_by_client_id(identity, client_id)).await,
            None => compiled_apart(self.find_by_index(identity)).await,
        }
    }

    /// The account `client_id` names (and the exact account for the token's subject, if
    /// another), with the key set read ahead.
    async fn find_by_client_id(
        &self,
        identity: &Identity,
        client_id: &str,
    ) -> Result<Found, ExchangeError> {
        let store = AccountStore::new(self.platform.accounts());
        let Identity { iss, sub, .. } = identity;
        // Not even the shape of an account id: no lookup (a long one is no valid KV key).
        if !is_account_id(client_id) {
            let shown: String = client_id.chars().take(64).collect();
            return Err(no_account(format!(
                "client_id {shown:?} is not a service account id"
            )));
        }
        let (record, entries) = join(store.get(client_id), store.candidates(iss)).await;
        let account = record?.ok_or_else(|| {
            no_account(format!("client_id {client_id:?} is not a service account"))
        })?;
        // The index matters only when the account is for this issuer but not for exactly this
        // subject: a token from another issuer is refused for that before any other question.
        let entries = if account.fields.issuer_url != *iss || account.fields.subject.is_exactly(sub)
        {
            Vec::new()
        } else {
            entries?
        };
        // No key set to read ahead for an account of another issuer: it is refused for that.
        let fields = &account.fields;
        let ahead = async {
            if fields.issuer_url != *iss {
                return None;
            }
            let (uri, inline) = (fields.jwks_uri.as_deref(), fields.jwks.is_some());
            self.read_ahead(iss, uri, inline).await
        };
        let (exact, ahead) = join(self.exact_account(&account, identity, &entries), ahead).await;
        Ok(Found {
            account,
            exact: exact?,
            ahead,
        })
    }

    /// The one account the issuer's index and the records find for the token's subject (an
    /// exact subject before a pattern), with the key set read ahead.
    async fn find_by_index(&self, identity: &Identity) -> Result<Found, ExchangeError> {
        let store = AccountStore::new(self.platform.accounts());
        let Identity { iss, sub, .. } = identity;
        let entries = store.candidates(iss).await?;
        let matching: Vec<&IndexEntry> = entries
            .iter()
            .filter(|entry| entry.subject.matches(sub))
            .collect();
        let candidates: Vec<&str> = matching.iter().map(|entry| entry.id.as_str()).collect();
        // The key set the likely account uses (an exact subject before a pattern).
        let likely = matching
            .iter()
            .min_by_key(|entry| !entry.subject.is_exactly(sub));
        let ahead = async {
            let entry = likely?;
            self.read_ahead(iss, entry.jwks_uri.as_deref(), entry.inline_jwks)
                .await
        };
        let (records, ahead) = join(store.get_many(&candidates), ahead).await;
        let mut exact = Vec::new();
        let mut patterns = Vec::new();
        // The index only names candidates; the record decides.
        for account in records?.into_iter().flatten() {
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
            // An exact account is chosen whenever there is one: none other to hear of.
            1 => Ok(Found {
                account: matches.swap_remove(0),
                exact: None,
                ahead,
            }),
            _ => Err(not_one(&matches, identity)),
        }
    }

    /// Where key sets come from: the platform's fetch and `JWKS_CACHE`.
    fn sources(&self) -> Sources<'_, P> {
        Sources {
            platform: self.platform,
            allow_http_loopback: self.settings.allow_http_loopback,
        }
    }

    /// The `JWKS_CACHE` entry an account's key set will be read from, read now: its
    /// `jwksURI`'s, or else its issuer's discovered key set; none for keys held inline, or
    /// when the isolate holds the set fresh.
    async fn read_ahead(
        &self,
        issuer_url: &str,
        jwks_uri: Option<&str>,
        inline_jwks: bool,
    ) -> Option<ReadAhead> {
        let (key_sets, platform, now) = (self.key_sets, self.platform, self.now);
        match jwks_uri {
            Some(url) => key_sets.read_ahead(url, platform, now).await,
            None if !inline_jwks => {
                key_sets
                    .read_ahead_discovered(issuer_url, platform, now)
                    .await
            }
            None => None,
        }
    }

    /// Step 5: the account's key set (its cache entry perhaps read `ahead`), the key, the
    /// signature.
    async fn verify_signature<'t>(
        &self,
        account: &Account,
        token: &'t UntrustedToken,
        ahead: Option<ReadAhead>,
    ) -> Result<VerifiedToken<'t>, Rejection> {
        let verifier = self.platform.verifier();
        let kid = token.kid.as_deref();
        if let Some(jwks) = &account.fields.jwks {
            // An inline set is the account's own: nothing to fetch, nothing to refetch.
            let set = self.key_sets.inline(jwks)?;
            let keys = keys::select(&set, token.alg, kid)?;
            return compiled_apart(verify(token, &keys, verifier)).await;
        }
        let sources = self.sources();
        let key_sets = self.key_sets;
        match &account.fields.jwks_uri {
            Some(url) => {
                key_sets
                    .verify_with(token, url, &sources, self.now, ahead)
                    .await
            }
            // Apart: an account that names its JWKS URL never compiles discovery.
            None => {
                let issuer_url = &account.fields.issuer_url;
                let verify =
                    key_sets.verify_discovered(token, issuer_url, &sources, self.now, ahead);
                compiled_apart(verify).await
            }
        }
    }

    /// The account for exactly the token's (`iss`, `sub`), when `account` is another (a
    /// `client_id` chose a pattern account), found through the issuer's index `entries` (one
    /// read, none when there is no such entry): the enabled check hears of it.
    async fn exact_account(
        &self,
        account: &Account,
        identity: &Identity,
        entries: &[IndexEntry],
    ) -> Result<Option<Account>, StoreError> {
        let ids: Vec<&str> = entries
            .iter()
            .filter(|entry| entry.subject.is_exactly(&identity.sub) && entry.id != account.id)
            .map(|entry| entry.id.as_str())
            .collect();
        let records = AccountStore::new(self.platform.accounts())
            .get_many(&ids)
            .await?;
        // The index only names candidates; the record decides.
        Ok(records.into_iter().flatten().find(|exact| {
            exact.fields.issuer_url == identity.iss
                && exact.fields.subject.is_exactly(&identity.sub)
        }))
    }

    /// Step 8: an RFC 9068 access token, signed ES256 with the active key.
    async fn mint(
        &self,
        account: &Account,
        scope: &str,
        identity: &Identity,
    ) -> Result<String, ExchangeError> {
        let mut jti = [0u8; JTI_BYTES];
        self.platform
            .entropy()
            .fill(&mut jti)
            .map_err(|error| signing_failed(|| format!("no random bytes for jti: {error}")))?;
        let signer = self
            .platform
            .signer()
            .ok_or_else(|| signing_failed(|| "SIGNING_KEYS has no usable key".into()))?;
        let header = AccessTokenHeader {
            alg: "ES256",
            kid: signer.kid(),
            typ: "at+jwt",
        };
        let claims = AccessTokenClaims {
            aud: self.issuer,
            client_id: &account.id,
            exp: self.now + ACCESS_TOKEN_SECONDS,
            federated: FederatedClaim {
                iss: &identity.iss,
                jti: identity.jti.as_deref(),
                sub: &identity.sub,
            },
            iat: self.now,
            iss: self.issuer,
            jti: Base64UrlUnpadded::encode_string(&jti),
            scope,
            sub: &account.id,
        };
        let signing_input = format!("{}.{}", encode_json(&header), encode_json(&claims));
        let signature = signer
            .sign(signing_input.as_bytes())
            .await
            .map_err(|error| signing_failed(|| error.to_string()))?;
        Ok(format!(
            "{signing_input}.{}",
            Base64UrlUnpadded::encode_string(&signature)
        ))
    }
}

/// The access token's JOSE header.
#[derive(Serialize)]
struct AccessTokenHeader<'a> {
    alg: &'static str,
    kid: &'a str,
    typ: &'static str,
}

/// The access token's claims (RFC 9068), each member in the order written: alphabetical, as a
/// JSON object of them was. Written from a struct, not built as a `Value`: the code that builds
/// an object member by member would be compiled by every new isolate's first exchange.
#[derive(Serialize)]
struct AccessTokenClaims<'a> {
    aud: &'a str,
    client_id: &'a str,
    exp: i64,
    /// For audit, which workload token this one was exchanged for: `{"iss": …, "jti": …,
    /// "sub": …}` of the incoming token.
    federated: FederatedClaim<'a>,
    iat: i64,
    iss: &'a str,
    jti: String,
    scope: &'a str,
    sub: &'a str,
}

#[derive(Serialize)]
struct FederatedClaim<'a> {
    iss: &'a str,
    jti: Option<&'a str>,
    sub: &'a str,
}

fn encode_json(value: &impl Serialize) -> String {
    // `to_vec`, as responses are written: `to_string` (Display) would bring a second copy of
    // the JSON writer onto every exchange's path.
    Base64UrlUnpadded::encode_string(&serde_json::to_vec(value).unwrap_or_default())
}

/// The refusal when not exactly one account `matches` the token's issuer and subject. Out of
/// line, as the refusals of the exchange's own steps are: V8 compiles a function whole.
#[cold]
#[inline(never)]
fn not_one(matches: &[Account], identity: &Identity) -> ExchangeError {
    let Identity { iss, sub, .. } = identity;
    if matches.is_empty() {
        return no_account(format!(
            "no service account has issuer {iss:?} and a subject rule matching {sub:?}"
        ));
    }
    // Other accounts' ids are configuration: they go to the log, not to the client.
    let ids: Vec<&str> = matches.iter().map(|account| account.id.as_str()).collect();
    Rejection::new(
        Reason::AmbiguousAccount,
        format!(
            "{} service accounts match issuer {iss:?} and subject {sub:?}; send client_id to choose one",
            matches.len()
        ),
    )
    .with_detail(format!("the matching accounts: {}", ids.join(", ")))
    .into()
}

/// A minting failure, described out of line.
#[cold]
#[inline(never)]
fn signing_failed(describe: impl FnOnce() -> String) -> ExchangeError {
    ExchangeError::Signing(describe())
}

fn no_account(description: String) -> ExchangeError {
    Rejection::new(Reason::NoMatchingAccount, description).into()
}

#[cfg(test)]
mod tests;
