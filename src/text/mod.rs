//! Text at the edge of the service: strict JSON, form decoding, WHATWG URLs and their rules,
//! globs, and the character rules of names and error descriptions. Pure functions of their
//! input: no I/O, no clock, nothing above this module.

pub(crate) mod charset;
pub(crate) mod form;
pub(crate) mod glob;
pub(crate) mod json;
pub(crate) mod time;
pub(crate) mod url;
