//! The insides that `tests/fuzz.rs` drives directly, for the `testing` feature: the modules
//! themselves stay private to the crate, and fuzzing sees only these entry points.

use serde_json::Value;

use super::memory::{MemorySigner, WhatwgUrls};
use super::platform::MemoryPlatform;
use crate::accounts::{check_field_names, validate};
use crate::config::admins::{AdminSecrets, LazyAdmins};
use crate::config::settings::{Settings, Vars};
use crate::config::signing_keys::SigningKeys;
use crate::exchange::key_sets::KeySets;
use crate::http::isolate::Isolate;
use crate::jose::alg::Alg;
use crate::jose::keys::{misfit, parse_key_set, select, MAX_KEYS};
use crate::text::form::parse_form;
use crate::text::json::parse_strict;

/// An isolate with the default vars, these `SIGNING_KEYS` and this admin token.
pub fn isolate(signing_keys: &str, admin_token: &str) -> Isolate {
    Isolate {
        settings: Settings::from_vars(&Vars::default(), &WhatwgUrls),
        signing_keys: SigningKeys::parse(signing_keys),
        admins: LazyAdmins::new(AdminSecrets {
            admin_token: Some(admin_token.to_owned()),
            ..AdminSecrets::default()
        }),
        key_sets: KeySets::default(),
    }
}

/// A platform in memory whose signer holds the first of these `SIGNING_KEYS`.
pub fn platform(signing_keys: &str) -> MemoryPlatform {
    let keys = SigningKeys::parse(signing_keys).expect("a test key set");
    MemoryPlatform {
        signer: Some(MemorySigner::new(keys.active()).expect("a P-256 key")),
        ..MemoryPlatform::default()
    }
}

/// An account body through the JSON parser and the field rules: whether it is accepted.
pub fn account_body(body: &[u8]) -> bool {
    let settings = Settings::from_vars(&Vars::default(), &WhatwgUrls).expect("default vars");
    match parse_strict(body, crate::text::json::MAX_DEPTH) {
        Ok(Value::Object(object)) => check_field_names(&object)
            .and_then(|()| validate(&object, &settings, &WhatwgUrls))
            .is_ok(),
        _ => false,
    }
}

/// A form through the decoder: whether it decodes.
pub fn form(body: &[u8]) -> bool {
    parse_form(body).is_ok()
}

/// A JWKS through the parser and every key selection: how many keys it kept (`None`: not a
/// usable set). At most [`MAX_KEYS`].
pub fn key_set(body: &[u8]) -> Option<usize> {
    let set = parse_key_set(body).ok()?;
    for alg in Alg::ALL {
        for key in &set.keys {
            let _ = misfit(key, alg);
        }
        let _ = select(&set, alg, None);
        let _ = select(&set, alg, Some("a"));
    }
    assert!(set.keys.len() <= MAX_KEYS);
    Some(set.keys.len())
}
