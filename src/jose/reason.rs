//! Why a workload's token was refused: the contract's stable `reason` list, and a rejection with
//! its words. No I/O here.

/// The stable machine-readable reasons of the contract. Clients may switch on these.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Reason {
    MalformedToken,
    TokenTooLarge,
    UnsupportedAlgorithm,
    UnknownKey,
    KeyMismatch,
    BadSignature,
    TokenExpired,
    TokenNotYetValid,
    IssuedInFuture,
    LifetimeTooLong,
    MissingClaim,
    InvalidClaim,
    IssuerMismatch,
    AudienceMismatch,
    SubjectMismatch,
    ClaimMismatch,
    NoMatchingAccount,
    AmbiguousAccount,
    AccountDisabled,
    ScopeNotAllowed,
    JwksUnavailable,
    JwksInvalid,
}

impl Reason {
    /// The wire form.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::MalformedToken => "malformed_token",
            Self::TokenTooLarge => "token_too_large",
            Self::UnsupportedAlgorithm => "unsupported_algorithm",
            Self::UnknownKey => "unknown_key",
            Self::KeyMismatch => "key_mismatch",
            Self::BadSignature => "bad_signature",
            Self::TokenExpired => "token_expired",
            Self::TokenNotYetValid => "token_not_yet_valid",
            Self::IssuedInFuture => "issued_in_future",
            Self::LifetimeTooLong => "lifetime_too_long",
            Self::MissingClaim => "missing_claim",
            Self::InvalidClaim => "invalid_claim",
            Self::IssuerMismatch => "issuer_mismatch",
            Self::AudienceMismatch => "audience_mismatch",
            Self::SubjectMismatch => "subject_mismatch",
            Self::ClaimMismatch => "claim_mismatch",
            Self::NoMatchingAccount => "no_matching_account",
            Self::AmbiguousAccount => "ambiguous_account",
            Self::AccountDisabled => "account_disabled",
            Self::ScopeNotAllowed => "scope_not_allowed",
            Self::JwksUnavailable => "jwks_unavailable",
            Self::JwksInvalid => "jwks_invalid",
        }
    }
}

impl Reason {
    /// The numeric `code` of this reason in Venafi's `errors` array (documented in the README
    /// and the OpenAPI description): 1001 onwards in the contract's order. Fixed forever: clients
    /// may switch on them. (Errors without a reason have theirs in `ApiError::venafi_code`.)
    pub fn code(self) -> u32 {
        match self {
            Self::MalformedToken => 1001,
            Self::TokenTooLarge => 1002,
            Self::UnsupportedAlgorithm => 1003,
            Self::UnknownKey => 1004,
            Self::KeyMismatch => 1005,
            Self::BadSignature => 1006,
            Self::TokenExpired => 1007,
            Self::TokenNotYetValid => 1008,
            Self::IssuedInFuture => 1009,
            Self::LifetimeTooLong => 1010,
            Self::MissingClaim => 1011,
            Self::InvalidClaim => 1012,
            Self::IssuerMismatch => 1013,
            Self::AudienceMismatch => 1014,
            Self::SubjectMismatch => 1015,
            Self::ClaimMismatch => 1016,
            Self::NoMatchingAccount => 1017,
            Self::AmbiguousAccount => 1018,
            Self::AccountDisabled => 1019,
            Self::ScopeNotAllowed => 1020,
            Self::JwksUnavailable => 1021,
            Self::JwksInvalid => 1022,
        }
    }
}

/// A token judged and refused: the reason, and exactly what failed in words.
///
/// Two audiences: `description` is what the client is told, and until the signature has
/// verified it may repeat only the token's own values (the contract) — anyone can send a token.
/// `detail` is what only the operator sees, in the log line and the admin's dry run: the
/// account's configured values, URLs, what an issuer answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    pub reason: Reason,
    pub description: String,
    pub detail: Option<String>,
}

impl Rejection {
    pub fn new(reason: Reason, description: impl Into<String>) -> Self {
        Self {
            reason,
            description: description.into(),
            detail: None,
        }
    }

    /// Adds what only the operator may see.
    #[must_use]
    pub fn with_detail(mut self, detail: impl Into<String>) -> Self {
        self.detail = Some(detail.into());
        self
    }
}

/// Shorthand for `Err(Rejection::new(..))`.
pub fn reject<T>(reason: Reason, description: impl Into<String>) -> Result<T, Rejection> {
    Err(Rejection::new(reason, description))
}

/// [`reject`], its description written by `describe`, out of line: the check that refuses
/// holds only the call, not the formatting. V8 compiles a wasm function whole when it is
/// first called, and every new isolate's first exchange calls every check.
#[cold]
#[inline(never)]
pub fn reject_with<T>(reason: Reason, describe: impl FnOnce() -> String) -> Result<T, Rejection> {
    Err(Rejection::new(reason, describe()))
}
