//! Who may call the admin API: `ADMIN_TOKEN` (actor `admin`, role `admin`), the named
//! credentials of `ADMIN_TOKENS` (only their SHA-256 hashes are configured), and Cloudflare
//! Access (`ACCESS_TEAM_DOMAIN` + `ACCESS_AUD`), all checked once per isolate. No I/O here; the
//! Access assertion itself is verified by [`crate::exchange::access`].

use std::cell::{OnceCell, RefCell};

use serde::Deserialize;
use sha2::{Digest, Sha256};

use super::settings::SettingsError;

/// What a credential may do (the contract).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Everything.
    Admin,
    /// GET calls, the dry run, the audit trail.
    Reader,
    /// `/oauth2/introspect` only.
    Introspector,
}

/// A kind of call, as roles are granted them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Permission {
    /// Reading accounts, the catalogue and the audit trail; the dry run; the deep health check.
    Read,
    /// Creating, changing and deleting accounts.
    Write,
    /// `/oauth2/introspect`.
    Introspect,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Admin => "admin",
            Self::Reader => "reader",
            Self::Introspector => "introspector",
        }
    }

    pub fn allows(self, permission: Permission) -> bool {
        matches!(
            (self, permission),
            (Self::Admin, _)
                | (Self::Reader, Permission::Read)
                | (Self::Introspector, Permission::Introspect)
        )
    }
}

/// The actor name of `ADMIN_TOKEN`.
pub const ADMIN_ACTOR: &str = "admin";

/// Actor names no `ADMIN_TOKENS` entry may take: `ADMIN_TOKEN`'s, and the import's.
pub const RESERVED_ACTORS: &[&str] = &[ADMIN_ACTOR, "import"];

/// Longest credential name, in characters.
pub const MAX_NAME_CHARS: usize = 64;

/// Who called, as the audit trail names them, and what they may do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    pub name: String,
    pub role: Role,
}

/// One `ADMIN_TOKENS` entry.
#[derive(Clone, PartialEq, Eq)]
struct Named {
    name: String,
    role: Role,
    sha256: [u8; 32],
}

/// Cloudflare Access, when both of its vars are set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Access {
    /// `ACCESS_TEAM_DOMAIN`, e.g. `acme.cloudflareaccess.com`.
    pub team_domain: String,
    /// `ACCESS_AUD`: the application's audience tag.
    pub aud: String,
}

impl Access {
    /// The `iss` of the team's assertions.
    pub fn issuer(&self) -> String {
        format!("https://{}", self.team_domain)
    }

    /// Where the team's signing keys are published.
    pub fn certs_url(&self) -> String {
        format!("https://{}/cdn-cgi/access/certs", self.team_domain)
    }
}

/// Every way to be an administrator.
#[derive(Clone, Default)]
pub struct Admins {
    /// SHA-256 of `ADMIN_TOKEN`: compared as the named ones are.
    admin_token: Option<[u8; 32]>,
    named: Vec<Named>,
    pub access: Option<Access>,
}

impl std::fmt::Debug for Admins {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Admins")
            .field("admin_token", &self.admin_token.map(|_| "<redacted>"))
            .field(
                "named",
                &self
                    .named
                    .iter()
                    .map(|named| (&named.name, named.role))
                    .collect::<Vec<_>>(),
            )
            .field("access", &self.access)
            .finish()
    }
}

/// The raw secrets and vars; `None` (or empty) when unset.
#[derive(Clone, Default)]
pub struct AdminSecrets {
    pub admin_token: Option<String>,
    pub admin_tokens: Option<String>,
    pub access_team_domain: Option<String>,
    pub access_aud: Option<String>,
}

impl std::fmt::Debug for AdminSecrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Whether each is set, never the tokens.
        let set = |value: &Option<String>| value.as_ref().map(|_| "<set>");
        f.debug_struct("AdminSecrets")
            .field("admin_token", &set(&self.admin_token))
            .field("admin_tokens", &set(&self.admin_tokens))
            .field("access_team_domain", &self.access_team_domain)
            .field("access_aud", &self.access_aud)
            .finish()
    }
}

/// The admin secrets as an isolate holds them: checked on the first request that needs an
/// administrator, not when the isolate starts. The token path never needs them, so a cold
/// isolate's first exchange neither runs nor compiles the checks (docs/performance.md).
/// Once checked, the secrets themselves are dropped: only their hashes are kept, as
/// [`Admins`] keeps them.
#[derive(Default)]
pub struct LazyAdmins {
    secrets: RefCell<Option<AdminSecrets>>,
    checked: OnceCell<Result<Admins, SettingsError>>,
}

impl LazyAdmins {
    pub fn new(secrets: AdminSecrets) -> Self {
        Self {
            secrets: RefCell::new(Some(secrets)),
            checked: OnceCell::new(),
        }
    }

    /// The checked secrets ([`Admins::from_secrets`]), checked once.
    pub fn get(&self) -> &Result<Admins, SettingsError> {
        self.checked.get_or_init(|| {
            let secrets = self.secrets.take().unwrap_or_default();
            Admins::from_secrets(&secrets)
        })
    }
}

impl std::fmt::Debug for LazyAdmins {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The secrets themselves are never printed.
        f.debug_struct("LazyAdmins")
            .field("checked", &self.checked.get())
            .finish_non_exhaustive()
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Entry {
    name: String,
    role: Role,
    sha256: String,
}

impl Admins {
    /// Checks the secrets. A malformed `ADMIN_TOKENS` or a half-configured Access is an error
    /// naming the setting; the admin API then answers 500 saying so (the token path is not
    /// affected).
    pub fn from_secrets(secrets: &AdminSecrets) -> Result<Self, SettingsError> {
        let set = |value: &Option<String>| value.clone().filter(|value| !value.trim().is_empty());
        let admin_token = set(&secrets.admin_token).map(|token| digest(token.as_bytes()));
        let named = match set(&secrets.admin_tokens) {
            None => Vec::new(),
            Some(text) => parse_named(&text)?,
        };
        let access = match (set(&secrets.access_team_domain), set(&secrets.access_aud)) {
            (None, None) => None,
            (Some(team_domain), Some(aud)) => Some(Access {
                team_domain: check_team_domain(team_domain.trim())?,
                aud: aud.trim().to_owned(),
            }),
            (Some(_), None) => {
                return Err(misconfigured(
                    "ACCESS_AUD",
                    "must be set together with ACCESS_TEAM_DOMAIN".into(),
                ))
            }
            (None, Some(_)) => {
                return Err(misconfigured(
                    "ACCESS_TEAM_DOMAIN",
                    "must be set together with ACCESS_AUD".into(),
                ))
            }
        };
        Ok(Self {
            admin_token,
            named,
            access,
        })
    }

    /// Whether no credential at all is configured: the admin API is then disabled.
    pub fn is_empty(&self) -> bool {
        self.admin_token.is_none() && self.named.is_empty() && self.access.is_none()
    }

    /// Whether any token (as opposed to Access) is configured.
    pub fn has_tokens(&self) -> bool {
        self.admin_token.is_some() || !self.named.is_empty()
    }

    /// The caller a presented token belongs to. Every configured hash is compared, in constant
    /// time, whichever matches: the time taken says nothing about which one did, or how nearly.
    pub fn by_token(&self, presented: &str) -> Option<Caller> {
        let presented = digest(presented.as_bytes());
        let mut found = None;
        if let Some(hash) = &self.admin_token {
            if equal(hash, &presented) {
                found = Some(Caller {
                    name: ADMIN_ACTOR.to_owned(),
                    role: Role::Admin,
                });
            }
        }
        for named in &self.named {
            if equal(&named.sha256, &presented) && found.is_none() {
                found = Some(Caller {
                    name: named.name.clone(),
                    role: named.role,
                });
            }
        }
        found
    }
}

fn parse_named(text: &str) -> Result<Vec<Named>, SettingsError> {
    let bad = |problem: String| misconfigured("ADMIN_TOKENS", problem);
    let entries: Vec<Entry> = serde_json::from_str(text).map_err(|error| {
        bad(format!(
            "must be a JSON list of {{\"name\", \"role\", \"sha256\"}} objects: {error}"
        ))
    })?;
    let mut named: Vec<Named> = Vec::with_capacity(entries.len());
    for (index, entry) in entries.into_iter().enumerate() {
        let name = entry.name;
        let name_ok = !name.is_empty()
            && name.chars().count() <= MAX_NAME_CHARS
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "._@+-".contains(c));
        if !name_ok {
            return Err(bad(format!(
                "entry {index}: name must be 1-{MAX_NAME_CHARS} letters, digits or . _ @ + -"
            )));
        }
        if RESERVED_ACTORS.contains(&name.as_str()) {
            return Err(bad(format!("entry {index}: the name {name:?} is reserved")));
        }
        if named.iter().any(|other| other.name == name) {
            return Err(bad(format!(
                "entry {index}: the name {name:?} is used twice"
            )));
        }
        let sha256 = parse_hex(&entry.sha256).ok_or_else(|| {
            bad(format!("entry {index} ({name}): sha256 must be 64 hex digits, the SHA-256 of the token (npm run admin-token prints it)"))
        })?;
        if named.iter().any(|other| other.sha256 == sha256) {
            return Err(bad(format!(
                "entry {index} ({name}): the same token hash is listed twice"
            )));
        }
        named.push(Named {
            name,
            role: entry.role,
            sha256,
        });
    }
    Ok(named)
}

/// A host name only: what Access's team domain is (`acme.cloudflareaccess.com`).
fn check_team_domain(domain: &str) -> Result<String, SettingsError> {
    let domain = domain.to_ascii_lowercase();
    let ok = domain.contains('.')
        && domain.len() <= 253
        && domain.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        });
    if ok {
        Ok(domain)
    } else {
        Err(misconfigured(
            "ACCESS_TEAM_DOMAIN",
            "must be the team's host name only, e.g. acme.cloudflareaccess.com (no https://, no path)".into(),
        ))
    }
}

fn parse_hex(text: &str) -> Option<[u8; 32]> {
    let text = text.trim();
    if text.len() != 64 {
        return None;
    }
    let mut bytes = [0u8; 32];
    for (index, byte) in bytes.iter_mut().enumerate() {
        *byte = u8::from_str_radix(text.get(index * 2..index * 2 + 2)?, 16).ok()?;
    }
    Some(bytes)
}

fn digest(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

/// Compares every byte, whatever the first difference.
fn equal(a: &[u8; 32], b: &[u8; 32]) -> bool {
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn misconfigured(setting: &'static str, problem: String) -> SettingsError {
    SettingsError { setting, problem }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|byte| format!("{byte:02x}")).collect()
    }

    fn secrets(admin_tokens: &str) -> AdminSecrets {
        AdminSecrets {
            admin_token: Some("root-token".into()),
            admin_tokens: Some(admin_tokens.into()),
            ..AdminSecrets::default()
        }
    }

    #[test]
    fn each_token_is_its_named_caller_with_its_role() {
        let list = format!(
            r#"[{{"name": "ci-terraform", "role": "admin", "sha256": "{}"}},
                {{"name": "dashboards", "role": "reader", "sha256": "{}"}},
                {{"name": "api-gateway", "role": "introspector", "sha256": "{}"}}]"#,
            hex(&digest(b"tf-token")),
            hex(&digest(b"read-token")),
            hex(&digest(b"gw-token")).to_uppercase(),
        );
        let admins = Admins::from_secrets(&secrets(&list)).unwrap();
        let caller = |token: &str| {
            admins
                .by_token(token)
                .map(|caller| (caller.name, caller.role))
        };
        assert_eq!(caller("root-token"), Some(("admin".into(), Role::Admin)));
        assert_eq!(
            caller("tf-token"),
            Some(("ci-terraform".into(), Role::Admin))
        );
        assert_eq!(
            caller("read-token"),
            Some(("dashboards".into(), Role::Reader))
        );
        assert_eq!(
            caller("gw-token"),
            Some(("api-gateway".into(), Role::Introspector))
        );
        assert_eq!(caller("tf-token "), None);
        assert_eq!(caller(""), None);
        assert!(!format!("{admins:?}").contains(&hex(&digest(b"tf-token"))));
    }

    #[test]
    fn roles_allow_what_spec_says() {
        use Permission::*;
        assert!([Read, Write, Introspect]
            .iter()
            .all(|p| Role::Admin.allows(*p)));
        assert!(Role::Reader.allows(Read));
        assert!(!Role::Reader.allows(Write) && !Role::Reader.allows(Introspect));
        assert!(Role::Introspector.allows(Introspect));
        assert!(!Role::Introspector.allows(Read) && !Role::Introspector.allows(Write));
    }

    #[test]
    fn a_bad_list_names_the_setting_and_the_entry() {
        let hash = hex(&digest(b"x"));
        for (list, says) in [
            ("{}", "JSON list"),
            (
                r#"[{"name": "a", "role": "owner", "sha256": "00"}]"#,
                "JSON list",
            ),
            (
                &format!(r#"[{{"name": "a", "role": "admin", "sha256": "{hash}", "token": "x"}}]"#),
                "JSON list",
            ),
            (
                r#"[{"name": "a", "role": "admin", "sha256": "abc"}]"#,
                "64 hex digits",
            ),
            (
                &format!(r#"[{{"name": "admin", "role": "admin", "sha256": "{hash}"}}]"#),
                "reserved",
            ),
            (
                &format!(r#"[{{"name": "a b", "role": "admin", "sha256": "{hash}"}}]"#),
                "letters",
            ),
            (
                &format!(
                    r#"[{{"name": "a", "role": "admin", "sha256": "{hash}"}}, {{"name": "a", "role": "reader", "sha256": "{}"}}]"#,
                    hex(&digest(b"y"))
                ),
                "twice",
            ),
            (
                &format!(
                    r#"[{{"name": "a", "role": "admin", "sha256": "{hash}"}}, {{"name": "b", "role": "reader", "sha256": "{hash}"}}]"#
                ),
                "twice",
            ),
        ] {
            let error = Admins::from_secrets(&secrets(list)).unwrap_err();
            assert_eq!(error.setting, "ADMIN_TOKENS");
            assert!(error.problem.contains(says), "{list}: {}", error.problem);
        }
    }

    #[test]
    fn access_needs_both_vars_and_a_host_name() {
        let access = |team: &str, aud: &str| {
            Admins::from_secrets(&AdminSecrets {
                access_team_domain: Some(team.into()),
                access_aud: Some(aud.into()),
                ..AdminSecrets::default()
            })
        };
        let admins = access("Acme.cloudflareaccess.com", "tag").unwrap();
        let configured = admins.access.clone().unwrap();
        assert_eq!(
            configured.certs_url(),
            "https://acme.cloudflareaccess.com/cdn-cgi/access/certs"
        );
        assert_eq!(configured.issuer(), "https://acme.cloudflareaccess.com");
        assert!(!admins.is_empty() && !admins.has_tokens());
        assert_eq!(
            access("acme.cloudflareaccess.com", "").unwrap_err().setting,
            "ACCESS_AUD"
        );
        assert_eq!(access("", "tag").unwrap_err().setting, "ACCESS_TEAM_DOMAIN");
        assert_eq!(
            access("https://acme.cloudflareaccess.com", "tag")
                .unwrap_err()
                .setting,
            "ACCESS_TEAM_DOMAIN"
        );
        assert!(Admins::from_secrets(&AdminSecrets::default())
            .unwrap()
            .is_empty());
    }

    /// Neither the raw secrets nor a lazily checked set print a token, before or after the
    /// check.
    #[test]
    fn debug_output_never_shows_a_token() {
        let secrets = AdminSecrets {
            admin_token: Some("tf-token-0123456789abcdef".into()),
            admin_tokens: Some("not json, and secret-ish".into()),
            ..AdminSecrets::default()
        };
        assert!(!format!("{secrets:?}").contains("tf-token"));
        assert!(!format!("{secrets:?}").contains("secret-ish"));
        let lazy = LazyAdmins::new(secrets);
        assert!(!format!("{lazy:?}").contains("tf-token"));
        assert!(lazy.get().is_err(), "ADMIN_TOKENS is not JSON");
        let printed = format!("{lazy:?}");
        assert!(
            !printed.contains("tf-token") && !printed.contains("secret-ish"),
            "{printed}"
        );
    }
}
