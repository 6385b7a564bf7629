//! What an isolate keeps between requests: its configuration, parsed and checked once from
//! its vars and secrets, and its caches. No I/O here beyond the rate limiter handed in.

use super::auth::{authenticate, AdminToken};
use super::error::ApiError;
use super::Request;
use crate::config::settings::{Settings, SettingsError};
use crate::config::signing_keys::{SigningKeys, SigningKeysError};
use crate::exchange::key_sets::KeySets;
use crate::ports::Platform;

/// What an isolate keeps between requests: its configuration, parsed and checked once from its
/// vars and secrets, and its caches.
#[derive(Debug)]
pub struct Isolate {
    pub settings: Result<Settings, SettingsError>,
    pub signing_keys: Result<SigningKeys, SigningKeysError>,
    /// `None`: the admin API is disabled.
    pub admin_token: Option<AdminToken>,
    /// Issuer key sets and discovered JWKS URIs.
    pub key_sets: KeySets,
}

impl Isolate {
    pub(crate) fn settings(&self) -> Result<&Settings, ApiError> {
        self.settings.as_ref().map_err(|error| error.clone().into())
    }

    pub(crate) fn signing_keys(&self) -> Result<&SigningKeys, ApiError> {
        self.signing_keys.as_ref().map_err(ApiError::from)
    }

    /// Checks the admin credential (and, past the rate limit, refuses guessing).
    pub(crate) async fn authenticate<P: Platform>(
        &self,
        request: &Request,
        platform: &P,
    ) -> Result<(), ApiError> {
        authenticate(request, self.admin_token.as_ref(), platform.rate_limiter()).await
    }
}
