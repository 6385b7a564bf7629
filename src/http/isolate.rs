//! What an isolate keeps between requests: its configuration, parsed and checked once from
//! its vars and secrets, and its caches. No I/O here.

use super::error::ApiError;
use crate::config::admins::{Admins, LazyAdmins};
use crate::config::settings::{Settings, SettingsError};
use crate::config::signing_keys::{SigningKeys, SigningKeysError};
use crate::exchange::key_sets::KeySets;

/// What an isolate keeps between requests: its configuration, parsed and checked once from its
/// vars and secrets, and its caches.
#[derive(Debug)]
pub struct Isolate {
    pub settings: Result<Settings, SettingsError>,
    pub signing_keys: Result<SigningKeys, SigningKeysError>,
    /// Who may call the admin API (none configured: it is disabled), checked on first use.
    pub admins: LazyAdmins,
    /// Issuer key sets and discovered JWKS URIs (and the Access team's keys).
    pub key_sets: KeySets,
}

impl Isolate {
    pub(crate) fn settings(&self) -> Result<&Settings, ApiError> {
        self.settings.as_ref().map_err(|error| error.clone().into())
    }

    pub(crate) fn signing_keys(&self) -> Result<&SigningKeys, ApiError> {
        self.signing_keys.as_ref().map_err(ApiError::from)
    }

    pub(crate) fn admins(&self) -> Result<&Admins, ApiError> {
        self.admins
            .get()
            .as_ref()
            .map_err(|error| error.clone().into())
    }
}
