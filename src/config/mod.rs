//! The deployment's configuration, checked once per isolate: the vars ([`settings`]) and the
//! `SIGNING_KEYS` secret ([`signing_keys`]). A bad value is the operator's mistake and is said
//! in words naming the setting, never its value. No I/O here.

pub(crate) mod admins;
pub(crate) mod settings;
pub(crate) mod signing_keys;
