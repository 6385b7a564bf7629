//! The admin API, `/v1/serviceaccounts`, in Venafi's shape: create, list, read, change,
//! delete, and the scope catalogue. Who may call it is [`super::auth`]'s; what an account's
//! fields may hold is [`crate::accounts`]'; where it is kept, [`crate::accounts::store`].
//! No I/O here beyond the platform.

use base64ct::{Base64UrlUnpadded, Encoding};
use chrono::{DateTime, SecondsFormat};
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::error::ApiError;
use super::extract::{FromRequest, JsonObject, MergePatch, Query};
use super::{Method, Request, Response};
use crate::accounts::store::{AccountStore, ListPosition, StoreError};
use crate::accounts::{
    check_field_names, is_account_id, merge_patch, validate, Account, FieldError,
    AUTHENTICATION_TYPE,
};
use crate::config::settings::Settings;
use crate::ports::{Clock, Entropy, KeyValueStore, Platform};

/// Where the admin API lives.
pub const COLLECTION_PATH: &str = "/v1/serviceaccounts";

/// Page size of the list when `limit` is not given, and the largest allowed (SPEC.md).
pub const DEFAULT_LIST_LIMIT: u32 = 100;
pub const MAX_LIST_LIMIT: u32 = 1000;

/// Most bytes of accounts in one list page (SPEC.md): 1000 accounts of up to 64 KiB each would
/// be 64 MB, past a Workers isolate's 128 MB once copied to the response. A typical account is
/// ~500 bytes, so 4 MiB is ~8000 of them: the count is the limit in practice.
pub const MAX_LIST_PAGE_BYTES: usize = 4 * 1024 * 1024;

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

/// `GET /v1/serviceaccounts/scopes`: the `SCOPES` catalogue as Venafi lists it, a JSON array
/// of `ScopeDetails`.
pub(crate) fn scopes(settings: &Settings) -> Response {
    Response::json(200, &scope_catalogue(settings)).with_header("cache-control", "no-store")
}

fn scope_catalogue(settings: &Settings) -> Vec<ScopeDetails<'_>> {
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

/// The collection (`None`) or one account (`Some(id)`).
pub type Target<'p> = Option<&'p str>;

/// Answers an authenticated admin call.
pub(crate) async fn answer<P: Platform>(
    request: &Request,
    target: Target<'_>,
    settings: &Settings,
    platform: &P,
) -> Result<Response, ApiError> {
    let store = AccountStore::new(platform.accounts());
    match (target, request.method) {
        (None, Method::Get) => list(request, &store, settings).await,
        (None, Method::Post) => create(request, &store, settings, platform).await,
        (Some(id), Method::Get) => {
            let account = find(&store, id).await?;
            Ok(account_response(200, &account, settings))
        }
        (Some(id), Method::Patch) => patch(request, id, &store, settings, platform).await,
        (Some(id), Method::Delete) => {
            let account = find(&store, id).await?;
            store.delete(&account).await.map_err(store_error)?;
            Ok(Response::empty(204))
        }
        // The router answers 405 before: only these methods reach here.
        (_, method) => Err(ApiError::Internal {
            description: format!("{} reached the admin API", method.as_str()),
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
    let Query(query) = Query::from_request(request)?;
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

async fn create<P: Platform>(
    request: &Request,
    store: &AccountStore<'_, P::Accounts>,
    settings: &Settings,
    platform: &P,
) -> Result<Response, ApiError> {
    let JsonObject(body) = JsonObject::from_request(request)?;
    check_field_names(&body).map_err(field_error)?;
    let fields = validate(&body, settings, platform.urls()).map_err(field_error)?;
    let id = new_account_id(platform.entropy())?;
    let now = rfc3339(platform.clock());
    let account = store.create(&id, fields, &now).await.map_err(store_error)?;
    Ok(account_response(201, &account, settings)
        .with_header("location", &format!("{COLLECTION_PATH}/{id}")))
}

async fn patch<P: Platform>(
    request: &Request,
    id: &str,
    store: &AccountStore<'_, P::Accounts>,
    settings: &Settings,
    platform: &P,
) -> Result<Response, ApiError> {
    let MergePatch(patch) = MergePatch::from_request(request)?;
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
    let fields = validate(&merged, settings, platform.urls()).map_err(field_error)?;
    let updated = store
        .update(&account, fields, &rfc3339(platform.clock()))
        .await
        .map_err(store_error)?;
    // Venafi answers a PATCH 204 (its Terraform provider insists); RFC 7240's
    // `Prefer: return=representation` asks for the account instead, as the console does.
    if prefers_representation(request) {
        Ok(account_response(200, &updated, settings)
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

/// The account with this id, read from the store itself (not a cache), or a 404 (also for ids
/// that are not UUIDs).
pub(crate) async fn find_account<K: KeyValueStore>(
    accounts: &K,
    id: &str,
) -> Result<Account, ApiError> {
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

/// A random (version 4) UUID, lower-case: the id of a new account.
fn new_account_id(entropy: &impl Entropy) -> Result<String, ApiError> {
    let mut bytes = [0u8; 16];
    entropy
        .fill(&mut bytes)
        .map_err(|error| ApiError::Unavailable {
            description: format!("no random bytes for a new id: {error}"),
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
            let (field, value) = rule.field();
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
