//! The workload's token as JOSE sees it (the contract "Validating the incoming JWT", steps 1–5):
//! the compact JWS and its header, the accepted algorithms and the keys they need, JWK Sets,
//! the claims every token must carry and the time rules, and the stable `reason` list.
//! Nothing here knows about accounts: their checks are [`crate::policy`]. No I/O, no clock.

pub(crate) mod alg;
pub(crate) mod claims;
pub(crate) mod jws;
pub(crate) mod keys;
pub(crate) mod reason;
pub(crate) mod verify;
