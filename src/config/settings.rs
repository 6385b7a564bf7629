//! The deployment's settings: the contract's vars, read from their raw strings and checked once.
//!
//! A bad value is the operator's mistake; it is a [`SettingsError`] naming the
//! variable, so the worker answers a JSON 500 that says what to fix instead of guessing.
//! No I/O here: the platform layer reads the vars and hands them over as [`Vars`].

use crate::ports::UrlParser;
use crate::text::url::normalize_url;

/// The scope catalogue when `SCOPES` is unset: the seed's "cert-manager Enterprise Issuer" and
/// "Custom API Integration".
pub const DEFAULT_SCOPES: &[&str] = &["certificate-issuance", "api-integration"];

/// `CLOCK_SKEW_SECONDS` when unset, as the contract fixes.
pub const DEFAULT_CLOCK_SKEW_SECONDS: u64 = 60;

/// Largest `CLOCK_SKEW_SECONDS` accepted: 10 minutes. More would let an expired workload token
/// through for longer than the 15-minute access token it buys, which is surely a typo.
pub const MAX_CLOCK_SKEW_SECONDS: u64 = 600;

/// A var that is missing or wrong: the setting's name and the problem, never its value (which
/// may be a secret). Shown as a JSON 500, the operator's to fix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{setting} {problem}")]
pub struct SettingsError {
    pub setting: &'static str,
    pub problem: String,
}

/// The vars as the platform found them; `None` when unset.
#[derive(Debug, Clone, Default)]
pub struct Vars {
    pub issuer: Option<String>,
    pub tenant_id: Option<String>,
    pub scopes: Option<String>,
    pub clock_skew_seconds: Option<String>,
    pub allow_http_loopback: Option<String>,
}

/// The checked settings.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    /// `iss` of minted tokens; `None`: unset, which only local development allows
    /// ([`Settings::issuer_for`]).
    pub issuer: Option<String>,
    /// The tenant id of the Venafi-compatible token path; `None` disables that path.
    pub tenant_id: Option<String>,
    /// The scope catalogue, in the configured order.
    pub scopes: Vec<String>,
    pub clock_skew_seconds: u64,
    pub allow_http_loopback: bool,
}

impl Settings {
    /// Checks every var. Empty strings count as unset, since that is how a blank var in
    /// `wrangler.toml` or the dashboard arrives.
    pub fn from_vars(vars: &Vars, urls: &dyn UrlParser) -> Result<Self, SettingsError> {
        let allow_http_loopback = match set(&vars.allow_http_loopback) {
            None | Some("false") => false,
            Some("true") => true,
            Some(other) => {
                return Err(misconfigured(
                    "ALLOW_HTTP_LOOPBACK",
                    format!("must be \"true\" or \"false\", not {other:?}"),
                ))
            }
        };
        let issuer = set(&vars.issuer)
            .map(|issuer| {
                normalize_url(issuer, allow_http_loopback, urls).map_err(|problem| {
                    misconfigured(
                        "ISSUER",
                        format!("must be an absolute https:// URL: {problem}"),
                    )
                })
            })
            .transpose()?;
        let clock_skew_seconds = match set(&vars.clock_skew_seconds) {
            None => DEFAULT_CLOCK_SKEW_SECONDS,
            Some(raw) => match raw.parse::<u64>() {
                Ok(seconds) if seconds <= MAX_CLOCK_SKEW_SECONDS => seconds,
                _ => {
                    return Err(misconfigured(
                        "CLOCK_SKEW_SECONDS",
                        format!("must be a whole number of seconds from 0 to {MAX_CLOCK_SKEW_SECONDS}, not {raw:?}"),
                    ))
                }
            },
        };
        let scopes = match set(&vars.scopes) {
            None => DEFAULT_SCOPES
                .iter()
                .map(|&scope| scope.to_owned())
                .collect(),
            Some(raw) => parse_scopes(raw)?,
        };
        let tenant_id = set(&vars.tenant_id).map(str::to_owned);
        Ok(Self {
            issuer,
            tenant_id,
            scopes,
            clock_skew_seconds,
            allow_http_loopback,
        })
    }

    /// The `iss` (and `aud`) of tokens minted for a request that arrived at `origin`: `ISSUER`.
    /// Never the request's own origin in production, where the `Host` header is the client's
    /// to choose; only with `ALLOW_HTTP_LOOPBACK` (local development) does an unset `ISSUER`
    /// fall back to it.
    pub fn issuer_for<'a>(&'a self, origin: &'a str) -> Result<&'a str, SettingsError> {
        match (&self.issuer, self.allow_http_loopback) {
            (Some(issuer), _) => Ok(issuer),
            (None, true) => Ok(origin),
            (None, false) => Err(misconfigured(
                "ISSUER",
                "is not set; set it to the URL clients reach this service at, e.g. https://sts.example.com (only ALLOW_HTTP_LOOPBACK=true, for local development, lets it default to the request's origin)".into(),
            )),
        }
    }
}

/// Parses the comma-separated catalogue. Each entry must be an RFC 6749 §3.3 scope-token
/// (printable ASCII without space, `"` or `\`), and appear once.
fn parse_scopes(raw: &str) -> Result<Vec<String>, SettingsError> {
    let mut scopes: Vec<String> = Vec::new();
    for entry in raw.split(',').map(str::trim) {
        let valid = !entry.is_empty()
            && entry
                .bytes()
                .all(|b| b == 0x21 || (0x23..=0x5b).contains(&b) || (0x5d..=0x7e).contains(&b));
        if !valid {
            return Err(misconfigured(
                "SCOPES",
                format!("must be a comma-separated list of scope names (printable ASCII, no spaces, quotes or backslashes); {entry:?} is not one"),
            ));
        }
        if scopes.iter().any(|scope| scope == entry) {
            return Err(misconfigured("SCOPES", format!("lists {entry:?} twice")));
        }
        scopes.push(entry.to_owned());
    }
    Ok(scopes)
}

fn set(var: &Option<String>) -> Option<&str> {
    var.as_deref().filter(|value| !value.is_empty())
}

fn misconfigured(setting: &'static str, problem: String) -> SettingsError {
    SettingsError { setting, problem }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::memory::WhatwgUrls;

    #[test]
    fn defaults_when_nothing_is_set() {
        let settings = Settings::from_vars(&Vars::default(), &WhatwgUrls).unwrap();
        assert_eq!(settings.issuer, None);
        assert_eq!(settings.tenant_id, None);
        assert_eq!(settings.scopes, ["certificate-issuance", "api-integration"]);
        assert_eq!(settings.clock_skew_seconds, 60);
        assert!(!settings.allow_http_loopback);
    }

    /// The `Host` header must not choose the minted `iss`: without `ISSUER`, only local
    /// development (`ALLOW_HTTP_LOOPBACK=true`) falls back to the request's origin.
    #[test]
    fn issuer_is_required_unless_developing_locally() {
        let production = Settings::from_vars(&Vars::default(), &WhatwgUrls).unwrap();
        match production.issuer_for("http://api.victim.example") {
            Err(SettingsError { setting, .. }) => assert_eq!(setting, "ISSUER"),
            other => panic!("{other:?}"),
        }
        let local = Settings::from_vars(
            &Vars {
                allow_http_loopback: Some("true".into()),
                ..Vars::default()
            },
            &WhatwgUrls,
        )
        .unwrap();
        assert_eq!(
            local.issuer_for("http://127.0.0.1:8787"),
            Ok("http://127.0.0.1:8787")
        );
    }

    #[test]
    fn reads_every_var() {
        let vars = Vars {
            issuer: Some("https://STS.example.com".into()),
            tenant_id: Some("acme".into()),
            scopes: Some(" a , b:read ".into()),
            clock_skew_seconds: Some("0".into()),
            allow_http_loopback: Some("true".into()),
        };
        let settings = Settings::from_vars(&vars, &WhatwgUrls).unwrap();
        assert_eq!(settings.issuer.as_deref(), Some("https://sts.example.com"));
        assert_eq!(
            settings.issuer_for("http://ignored"),
            Ok("https://sts.example.com")
        );
        assert_eq!(settings.tenant_id.as_deref(), Some("acme"));
        assert_eq!(settings.scopes, ["a", "b:read"]);
        assert_eq!(settings.clock_skew_seconds, 0);
        assert!(settings.allow_http_loopback);
    }

    #[test]
    fn empty_strings_count_as_unset() {
        let vars = Vars {
            issuer: Some(String::new()),
            tenant_id: Some(String::new()),
            scopes: Some(String::new()),
            clock_skew_seconds: Some(String::new()),
            allow_http_loopback: Some(String::new()),
        };
        assert_eq!(
            Settings::from_vars(&vars, &WhatwgUrls),
            Settings::from_vars(&Vars::default(), &WhatwgUrls)
        );
    }

    #[test]
    fn each_bad_var_is_named() {
        let cases: [(Vars, &str); 8] = [
            (
                Vars {
                    allow_http_loopback: Some("yes".into()),
                    ..Vars::default()
                },
                "ALLOW_HTTP_LOOPBACK",
            ),
            (
                Vars {
                    issuer: Some("sts.example.com".into()),
                    ..Vars::default()
                },
                "ISSUER",
            ),
            (
                Vars {
                    issuer: Some("http://127.0.0.1:8787".into()),
                    ..Vars::default()
                },
                "ISSUER",
            ),
            (
                Vars {
                    clock_skew_seconds: Some("-1".into()),
                    ..Vars::default()
                },
                "CLOCK_SKEW_SECONDS",
            ),
            (
                Vars {
                    clock_skew_seconds: Some("601".into()),
                    ..Vars::default()
                },
                "CLOCK_SKEW_SECONDS",
            ),
            (
                Vars {
                    scopes: Some("a,,b".into()),
                    ..Vars::default()
                },
                "SCOPES",
            ),
            (
                Vars {
                    scopes: Some("a b".into()),
                    ..Vars::default()
                },
                "SCOPES",
            ),
            (
                Vars {
                    scopes: Some("a,a".into()),
                    ..Vars::default()
                },
                "SCOPES",
            ),
        ];
        for (vars, named) in cases {
            match Settings::from_vars(&vars, &WhatwgUrls) {
                Err(SettingsError { setting, .. }) => assert_eq!(setting, named),
                other => panic!("{vars:?} gave {other:?}"),
            }
        }
    }
}
