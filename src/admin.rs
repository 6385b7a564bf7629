//! The admin API, `/v1/serviceaccounts`: authentication, request bodies, and the five calls.
//!
//! Every call needs `Authorization: Bearer <ADMIN_TOKEN>`; the comparison takes the same time
//! whatever the guess. Bodies are JSON objects of at most [`MAX_BODY_BYTES`]. Field rules live
//! in [`crate::accounts`], storage in [`crate::accounts::store`]. No I/O here beyond the
//! [`KeyValueStore`] handed in.

use base64ct::{Base64UrlUnpadded, Encoding};
use chrono::{DateTime, SecondsFormat};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use crate::accounts::store::{AccountStore, ListPosition, StoreError};
use crate::accounts::{
    check_field_names, is_account_id, merge_patch, validate, Account, FieldError, SubjectRule,
    AUTHENTICATION_TYPE,
};
use crate::error::ApiError;
use crate::form::{parse_form, FormError};
use crate::http::{Method, Request, Response};
use crate::json::parse_strict;
use crate::ports::{Clock, Entropy, KeyValueStore, UrlParser};
use crate::settings::Settings;

/// Largest request body, in bytes (SPEC.md). An account is well under 8 KiB.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// Deepest JSON nesting accepted in a body. An account nests two levels (`claims`); 32 is
/// SPEC.md's limit for tokens, used here too.
pub const MAX_JSON_DEPTH: usize = 32;

/// Page size of the list when `limit` is not given, and the largest allowed (SPEC.md).
pub const DEFAULT_LIST_LIMIT: u32 = 100;
pub const MAX_LIST_LIMIT: u32 = 1000;

/// Most bytes of accounts in one list page (SPEC.md): 1000 accounts of up to 64 KiB each would
/// be 64 MB, past a Workers isolate's 128 MB once copied to the response. A typical account is
/// ~500 bytes, so 4 MiB is ~8000 of them: the count is the limit in practice.
pub const MAX_LIST_PAGE_BYTES: usize = 4 * 1024 * 1024;

/// Where the admin API lives.
pub const COLLECTION_PATH: &str = "/v1/serviceaccounts";

/// `ADMIN_TOKEN`, kept out of `Debug` output.
#[derive(Clone)]
pub struct AdminToken(String);

impl AdminToken {
    /// `None` when the secret is unset or empty: the admin API is then disabled.
    pub fn from_secret(secret: Option<String>) -> Option<Self> {
        secret.filter(|token| !token.is_empty()).map(Self)
    }
}

impl std::fmt::Debug for AdminToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AdminToken(<redacted>)")
    }
}

/// Checks the admin credential against `ADMIN_TOKEN`: `Authorization: Bearer <token>`, or
/// Venafi's `tppl-api-key: <token>` header (what Venafi's Terraform provider and scripts send).
pub fn authenticate(request: &Request, admin_token: Option<&AdminToken>) -> Result<(), ApiError> {
    let Some(expected) = admin_token else {
        return Err(ApiError::Unauthorized {
            error: "unauthorized",
            description: "admin API disabled".into(),
        });
    };
    let bearer = request.header("authorization").and_then(|value| {
        let (scheme, token) = value.split_once(' ')?;
        scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
    });
    let presented = bearer
        .or_else(|| request.header("tppl-api-key").map(str::trim))
        .ok_or_else(|| ApiError::Unauthorized {
            error: "unauthorized",
            description:
                "send the admin token as Authorization: Bearer <token> or tppl-api-key: <token>"
                    .into(),
        })?;
    if constant_time_eq(presented.as_bytes(), expected.0.as_bytes()) {
        Ok(())
    } else {
        Err(ApiError::Unauthorized {
            error: "invalid_token",
            description: "the admin token is wrong".into(),
        })
    }
}

/// Equality whose time depends on neither the contents nor the lengths: both sides are hashed
/// to 32 bytes, and every byte of the digests is compared.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    let (a, b) = (Sha256::digest(a), Sha256::digest(b));
    a.iter()
        .zip(b.iter())
        .fold(0u8, |acc, (x, y)| acc | (x ^ y))
        == 0
}

/// The display names of the scopes edge-sts knows, as the console and Venafi show them. A scope
/// of a custom `SCOPES` catalogue is shown by its name.
pub const SCOPE_NAMES: &[(&str, &str)] = &[
    ("certificate-issuance", "cert-manager Enterprise Issuer"),
    ("api-integration", "Custom API Integration"),
    (
        "kubernetes-discovery-federated",
        "Kubernetes Discovery (federated)",
    ),
];

/// One entry of `GET /v1/serviceaccounts/scopes`, in Venafi's `ScopeDetails` shape (its
/// OpenAPI description, operation `get-v1-serviceaccountscopes`).
#[derive(Debug, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ScopeDetails<'a> {
    id: &'a str,
    readable_name: &'a str,
    authentication_type: &'static str,
    authentication_types: [&'static str; 1],
}

/// The `SCOPES` catalogue as Venafi lists it: a JSON array of `ScopeDetails`.
pub fn scope_catalogue(settings: &Settings) -> Vec<ScopeDetails<'_>> {
    settings
        .scopes
        .iter()
        .map(|id| ScopeDetails {
            id,
            readable_name: SCOPE_NAMES
                .iter()
                .find(|(scope, _)| scope == id)
                .map_or(id.as_str(), |(_, name)| name),
            authentication_type: AUTHENTICATION_TYPE,
            authentication_types: [AUTHENTICATION_TYPE],
        })
        .collect()
}

/// What the admin API needs from the world.
pub struct AdminServices<'a, K: KeyValueStore, C: Clock, E: Entropy> {
    pub settings: &'a Settings,
    pub urls: &'a dyn UrlParser,
    pub accounts: &'a K,
    pub clock: &'a C,
    pub entropy: &'a E,
}

/// The collection (`None`) or one account (`Some(id)`).
pub type Target<'p> = Option<&'p str>;

/// Methods of the collection and of one account.
pub const COLLECTION_METHODS: &[Method] = &[Method::Get, Method::Post];
pub const ITEM_METHODS: &[Method] = &[Method::Get, Method::Patch, Method::Delete];

/// Answers an authenticated admin call.
pub async fn handle<K: KeyValueStore, C: Clock, E: Entropy>(
    request: &Request,
    target: Target<'_>,
    services: &AdminServices<'_, K, C, E>,
) -> Result<Response, ApiError> {
    let store = AccountStore::new(services.accounts);
    match (target, request.method) {
        (None, Method::Get) => list(request, &store, services.settings).await,
        (None, Method::Post) => create(request, &store, services).await,
        (Some(id), Method::Get) => {
            let account = find(&store, id).await?;
            Ok(account_response(200, &account, services.settings))
        }
        (Some(id), Method::Patch) => patch(request, id, &store, services).await,
        (Some(id), Method::Delete) => {
            let account = find(&store, id).await?;
            store.delete(&account).await.map_err(store_error)?;
            Ok(Response::empty(204))
        }
        _ => Err(ApiError::MethodNotAllowed {
            allow: if target.is_none() {
                COLLECTION_METHODS
            } else {
                ITEM_METHODS
            },
        }),
    }
}

async fn list<K: KeyValueStore>(
    request: &Request,
    store: &AccountStore<'_, K>,
    settings: &Settings,
) -> Result<Response, ApiError> {
    let mut limit = DEFAULT_LIST_LIMIT;
    let mut from = ListPosition::default();
    let query = parse_form(request.query.as_deref().unwrap_or("").as_bytes()).map_err(|error| {
        let field = match &error {
            FormError::Repeated(name) => Some(name.as_str()),
            _ => None,
        };
        invalid(
            field,
            format!("the query string cannot be decoded: {error}"),
        )
    })?;
    for (name, value) in query.iter() {
        match name {
            "limit" => {
                limit = value
                    .parse::<u32>()
                    .ok()
                    .filter(|limit| (1..=MAX_LIST_LIMIT).contains(limit))
                    .ok_or_else(|| {
                        invalid(Some("limit"), format!("limit must be a whole number from 1 to {MAX_LIST_LIMIT}, not {value:?}"))
                    })?;
            }
            "cursor" => {
                from = Base64UrlUnpadded::decode_vec(value)
                    .ok()
                    .and_then(|bytes| serde_json::from_slice(&bytes).ok())
                    .ok_or_else(|| {
                        invalid(
                            Some("cursor"),
                            "cursor must be the cursor of a previous page's Link: rel=\"next\"",
                        )
                    })?;
            }
            other => {
                return Err(invalid(
                    Some(other),
                    format!("unknown query parameter {other:?}; use limit and cursor"),
                ));
            }
        }
    }
    let page = store
        .list(&from, limit, MAX_LIST_PAGE_BYTES)
        .await
        .map_err(store_error)?;
    // Written out as the stored texts are, not parsed and serialised again: a page may hold
    // up to 4 MiB of accounts, and it is held once. A JSON array, as Venafi's list is; the
    // next page is named by an RFC 8288 `Link` header.
    let mut body = Vec::with_capacity(page.accounts.iter().map(String::len).sum::<usize>() + 64);
    body.push(b'[');
    for (index, account) in page.accounts.iter().enumerate() {
        if index > 0 {
            body.push(b',');
        }
        body.extend_from_slice(&with_company_id(account, settings.tenant_id.as_deref()));
    }
    body.push(b']');
    let mut response = Response {
        status: 200,
        headers: vec![(
            "content-type".to_owned(),
            "application/json; charset=utf-8".to_owned(),
        )],
        body,
    };
    if let Some(next) = page.next {
        let cursor =
            Base64UrlUnpadded::encode_string(&serde_json::to_vec(&next).unwrap_or_default());
        response = response.with_header(
            "link",
            &format!("<{COLLECTION_PATH}?limit={limit}&cursor={cursor}>; rel=\"next\""),
        );
    }
    Ok(response)
}

async fn create<K: KeyValueStore, C: Clock, E: Entropy>(
    request: &Request,
    store: &AccountStore<'_, K>,
    services: &AdminServices<'_, K, C, E>,
) -> Result<Response, ApiError> {
    let body = json_body(request, false)?;
    check_field_names(&body).map_err(field_error)?;
    let fields = validate(&body, services.settings, services.urls).map_err(field_error)?;
    let id = new_account_id(services.entropy)?;
    let now = rfc3339(services.clock);
    let account = store.create(&id, fields, &now).await.map_err(store_error)?;
    Ok(account_response(201, &account, services.settings)
        .with_header("location", &format!("{COLLECTION_PATH}/{id}")))
}

async fn patch<K: KeyValueStore, C: Clock, E: Entropy>(
    request: &Request,
    id: &str,
    store: &AccountStore<'_, K>,
    services: &AdminServices<'_, K, C, E>,
) -> Result<Response, ApiError> {
    let patch = json_body(request, true)?;
    let account = find(store, id).await?;
    check_field_names(&patch).map_err(field_error)?;
    let mut merged = match serde_json::to_value(&account.fields) {
        Ok(Value::Object(fields)) => fields,
        _ => {
            return Err(ApiError::Internal {
                description: format!("account {id} could not be re-read"),
            })
        }
    };
    // Setting one subject rule (or key source) replaces the other, unless the patch names both.
    for (set, other) in [
        ("subject", "subjectPattern"),
        ("subjectPattern", "subject"),
        ("jwksURI", "jwks"),
        ("jwks", "jwksURI"),
    ] {
        if patch.get(set).is_some_and(|value| !value.is_null()) && !patch.contains_key(other) {
            merged.remove(other);
        }
    }
    merge_patch(&mut merged, &patch);
    let fields = validate(&merged, services.settings, services.urls).map_err(field_error)?;
    let updated = store
        .update(&account, fields, &rfc3339(services.clock))
        .await
        .map_err(store_error)?;
    // Venafi answers a PATCH 204 (its Terraform provider insists); RFC 7240's
    // `Prefer: return=representation` asks for the account instead, as the console does.
    if prefers_representation(request) {
        Ok(account_response(200, &updated, services.settings)
            .with_header("preference-applied", "return=representation"))
    } else {
        Ok(Response::empty(204).with_header("etag", &etag(&updated)))
    }
}

/// Whether the request's `Prefer` header asks for `return=representation` (RFC 7240).
fn prefers_representation(request: &Request) -> bool {
    request.header("prefer").is_some_and(|prefer| {
        prefer.split([',', ';']).any(|preference| {
            preference
                .trim()
                .eq_ignore_ascii_case("return=representation")
        })
    })
}

/// The account's entity tag: a digest of its stored form, so it changes with every write.
pub fn etag(account: &Account) -> String {
    let text = serde_json::to_string(account).unwrap_or_default();
    let digest = Sha256::digest(text.as_bytes());
    format!("\"{}\"", Base64UrlUnpadded::encode_string(&digest[..16]))
}

/// An account as the API shows it: its stored JSON with Venafi's read-only `companyId` (the
/// tenant) first, and its `ETag`.
fn account_response(status: u16, account: &Account, settings: &Settings) -> Response {
    let text = serde_json::to_string(account).unwrap_or_default();
    Response {
        status,
        headers: vec![(
            "content-type".to_owned(),
            "application/json; charset=utf-8".to_owned(),
        )],
        body: with_company_id(&text, settings.tenant_id.as_deref()),
    }
    .with_header("etag", &etag(account))
}

/// A stored account's JSON text (an object) with `"companyId"` spliced in as its first member:
/// no parse and serialise again per account of a 4 MiB list page.
fn with_company_id(account_json: &str, tenant_id: Option<&str>) -> Vec<u8> {
    match (tenant_id, account_json.strip_prefix('{')) {
        (Some(tenant), Some(rest)) => {
            let member = serde_json::to_string(tenant).unwrap_or_default();
            format!("{{\"companyId\":{member},{rest}").into_bytes()
        }
        _ => account_json.as_bytes().to_vec(),
    }
}

/// The account with this id, or a 404 (also for ids that are not UUIDs).
pub async fn find_account<K: KeyValueStore>(accounts: &K, id: &str) -> Result<Account, ApiError> {
    find(&AccountStore::new(accounts), id).await
}

async fn find<K: KeyValueStore>(
    store: &AccountStore<'_, K>,
    id: &str,
) -> Result<Account, ApiError> {
    let not_found = || ApiError::NoSuchResource {
        description: format!("there is no service account with id {id:?}"),
    };
    if !is_account_id(id) {
        return Err(not_found());
    }
    store
        .get(id)
        .await
        .map_err(store_error)?
        .ok_or_else(not_found)
}

/// The body as a JSON object, after the media type, size and syntax checks.
fn json_body(request: &Request, merge_patch_allowed: bool) -> Result<Map<String, Value>, ApiError> {
    if request.body_exceeds(MAX_BODY_BYTES) {
        return Err(ApiError::PayloadTooLarge {
            limit_bytes: MAX_BODY_BYTES,
        });
    }
    let media_type = request.media_type();
    let accepted = match media_type.as_deref() {
        Some("application/json") => true,
        Some("application/merge-patch+json") => merge_patch_allowed,
        _ => false,
    };
    if !accepted {
        return Err(ApiError::UnsupportedMediaType {
            expected: if merge_patch_allowed {
                "application/json or application/merge-patch+json"
            } else {
                "application/json"
            },
        });
    }
    match parse_strict(&request.body, MAX_JSON_DEPTH) {
        Ok(Value::Object(object)) => Ok(object),
        Ok(_) => Err(invalid(None, "the body must be a JSON object")),
        Err(error) => Err(invalid(
            None,
            format!("the body is not valid JSON: {error}"),
        )),
    }
}

/// A random (version 4) UUID, lower-case: the id of a new account.
fn new_account_id(entropy: &impl Entropy) -> Result<String, ApiError> {
    let mut bytes = [0u8; 16];
    entropy
        .fill(&mut bytes)
        .map_err(|error| ApiError::Unavailable {
            description: format!("no random bytes for a new id: {}", error.0),
        })?;
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    let hex: String = bytes.iter().map(|byte| format!("{byte:02x}")).collect();
    Ok(format!(
        "{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..]
    ))
}

/// The clock's time as RFC 3339 with milliseconds, UTC.
fn rfc3339(clock: &impl Clock) -> String {
    let millis = i64::try_from(clock.now_millis()).unwrap_or(i64::MAX);
    DateTime::from_timestamp_millis(millis)
        .unwrap_or_default()
        .to_rfc3339_opts(SecondsFormat::Millis, true)
}

fn invalid(field: Option<&str>, description: impl Into<String>) -> ApiError {
    ApiError::InvalidRequest {
        field: field.map(str::to_owned),
        description: description.into(),
    }
}

fn field_error(error: FieldError) -> ApiError {
    ApiError::InvalidRequest {
        field: error.field,
        description: error.message,
    }
}

fn store_error(error: StoreError) -> ApiError {
    match error {
        StoreError::Storage(error) => ApiError::Unavailable {
            description: format!("the account store is unavailable ({error}); try again"),
        },
        StoreError::Conflict { existing_id, rule } => {
            let (field, value) = match &rule {
                SubjectRule::Exact(subject) => ("subject", subject),
                SubjectRule::Pattern(pattern) => ("subjectPattern", pattern),
            };
            ApiError::Conflict {
                description: format!(
                    "service account {existing_id} already has this issuerURL and {field} {value:?}; each pair may belong to one account"
                ),
            }
        }
        StoreError::Corrupt { key } => ApiError::Internal {
            description: format!("the stored value {key} could not be read"),
        },
    }
}

#[cfg(test)]
mod tests;
