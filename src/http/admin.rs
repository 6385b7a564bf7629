//! The admin API, `/v1/serviceaccounts`, in Venafi's shape: create, list, read, change,
//! delete, and the scope catalogue. Who may call it is [`super::auth`]'s; every call is a
//! command of the account registry ([`crate::registry`]), which keeps the accounts, checks
//! their fields and records who changed what. No I/O here beyond the platform.

use base64ct::{Base64UrlUnpadded, Encoding};

use super::error::ApiError;
use super::extract::{FromRequest, JsonObject, MergePatch, Query};
use super::{Method, Request, Response};
use crate::accounts::{is_account_id, Account, AUTHENTICATION_TYPE};
use crate::config::admins::Caller;
use crate::config::settings::Settings;
use crate::ports::{Entropy, KeyValueStore, Platform};
use crate::registry::{self, etag, Answer, Command, Envelope, Reply};

/// Where the admin API lives.
pub const COLLECTION_PATH: &str = "/v1/serviceaccounts";

/// Page size of the list when `limit` is not given, and the largest allowed (the contract).
pub const DEFAULT_LIST_LIMIT: u32 = 100;
pub const MAX_LIST_LIMIT: u32 = 1000;

/// Most bytes of accounts in one list page (the contract): 1000 accounts of up to 64 KiB each would
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

/// Answers an admin call on accounts from `caller` (already authorised for it): each is one
/// command of the account registry.
pub(crate) async fn answer<P: Platform>(
    request: &Request,
    target: Target<'_>,
    settings: &Settings,
    platform: &P,
    caller: &Caller,
) -> Result<Response, ApiError> {
    let command = match (target, request.method) {
        (None, Method::Get) => list_command(request, settings)?,
        (None, Method::Post) => {
            let JsonObject(body) = JsonObject::from_request(request)?;
            Command::Create { body }
        }
        (Some(id), method) => {
            if !is_account_id(id) {
                return Err(not_found(id));
            }
            let id = id.to_owned();
            let if_match = request.header("if-match").map(str::to_owned);
            match method {
                Method::Get => Command::Get { id },
                Method::Patch => {
                    let MergePatch(patch) = MergePatch::from_request(request)?;
                    Command::Patch {
                        id,
                        patch,
                        if_match,
                    }
                }
                Method::Delete => Command::Delete { id, if_match },
                // The router answers 405 before: only these methods reach here.
                other => return Err(unexpected(other)),
            }
        }
        (None, other) => return Err(unexpected(other)),
    };
    let answer = send(platform, caller, request, command.clone()).await?;
    match (answer.reply, &command) {
        (Reply::Account { account, version }, Command::Create { .. }) => {
            Ok(account_response(201, &account, version, settings)
                .with_header("location", &format!("{COLLECTION_PATH}/{}", account.id)))
        }
        (Reply::Account { account, version }, Command::Patch { .. }) => {
            // Venafi answers a PATCH 204 (its Terraform provider insists); RFC 7240's
            // `Prefer: return=representation` asks for the account instead, as the console does.
            if prefers_representation(request) {
                Ok(account_response(200, &account, version, settings)
                    .with_header("preference-applied", "return=representation"))
            } else {
                Ok(Response::empty(204).with_header("etag", &etag(version)))
            }
        }
        (Reply::Account { account, version }, _) => {
            Ok(account_response(200, &account, version, settings))
        }
        (Reply::Deleted, _) => Ok(Response::empty(204)),
        (
            Reply::Accounts {
                accounts,
                next_after,
            },
            Command::List { limit, .. },
        ) => Ok(list_response(&accounts, next_after, *limit, settings)),
        (reply, _) => Err(ApiError::Internal {
            description: format!("the registry answered {reply:?} to {command:?}"),
        }),
    }
}

/// Sends `command` to the registry as `caller`, and makes what it changed visible at once to
/// this isolate's token path.
pub(crate) async fn send<P: Platform>(
    platform: &P,
    caller: &Caller,
    request: &Request,
    command: Command,
) -> Result<Answer, ApiError> {
    let envelope = Envelope {
        command,
        actor: caller.name.clone(),
        request_id: request_id(request, platform.entropy()),
    };
    let answer = registry::call(platform.registry(), &envelope).await?;
    for entry in &answer.projected {
        platform
            .accounts()
            .remember(&entry.key, entry.value.as_deref());
    }
    Ok(answer)
}

/// The request's id for the audit trail: Cloudflare's `cf-ray`, or one made up where there is
/// none (local development).
pub(crate) fn request_id(request: &Request, entropy: &impl Entropy) -> String {
    if let Some(ray) = request.header("cf-ray") {
        return ray.chars().take(64).collect();
    }
    let mut bytes = [0u8; 8];
    let _ = entropy.fill(&mut bytes);
    let hex: String = bytes.iter().map(|byte| format!("{byte:02x}")).collect();
    format!("local-{hex}")
}

fn list_command(request: &Request, settings: &Settings) -> Result<Command, ApiError> {
    let mut limit = DEFAULT_LIST_LIMIT;
    let mut after = None;
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
                let id = Base64UrlUnpadded::decode_vec(value)
                    .ok()
                    .and_then(|bytes| String::from_utf8(bytes).ok())
                    .filter(|id| is_account_id(id))
                    .ok_or_else(|| {
                        invalid(
                            Some("cursor"),
                            "cursor must be the cursor of a previous page's Link: rel=\"next\"",
                        )
                    })?;
                after = Some(id);
            }
            other => {
                return Err(invalid(
                    Some(other),
                    format!("unknown query parameter {other:?}; use limit and cursor"),
                ));
            }
        }
    }
    Ok(Command::List {
        after,
        limit,
        max_bytes: MAX_LIST_PAGE_BYTES,
        // `"companyId":"…",` and a comma between accounts.
        overhead: with_company_id("{}", settings.tenant_id.as_deref()).len() + 1,
    })
}

fn list_response(
    accounts: &[String],
    next_after: Option<String>,
    limit: u32,
    settings: &Settings,
) -> Response {
    // Written out as the stored texts are, not parsed and serialised again: a page may hold
    // up to 4 MiB of accounts, and it is held once. A JSON array, as Venafi's list is; the
    // next page is named by an RFC 8288 `Link` header.
    let mut body = Vec::with_capacity(accounts.iter().map(String::len).sum::<usize>() + 64);
    body.push(b'[');
    for (index, account) in accounts.iter().enumerate() {
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
    if let Some(after) = next_after {
        let cursor = Base64UrlUnpadded::encode_string(after.as_bytes());
        response = response.with_header(
            "link",
            &format!("<{COLLECTION_PATH}?limit={limit}&cursor={cursor}>; rel=\"next\""),
        );
    }
    response
}

fn unexpected(method: Method) -> ApiError {
    ApiError::Internal {
        description: format!("{} reached the admin API", method.as_str()),
    }
}

fn not_found(id: &str) -> ApiError {
    ApiError::NoSuchResource {
        description: format!("there is no service account with id {id:?}"),
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

/// An account as the API shows it: its stored JSON with Venafi's read-only `companyId` (the
/// tenant) first, and its `ETag` (the registry's version of it).
fn account_response(status: u16, account: &Account, version: u64, settings: &Settings) -> Response {
    let text = serde_json::to_string(account).unwrap_or_default();
    Response {
        status,
        headers: vec![(
            "content-type".to_owned(),
            "application/json; charset=utf-8".to_owned(),
        )],
        body: with_company_id(&text, settings.tenant_id.as_deref()),
    }
    .with_header("etag", &etag(version))
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

fn invalid(field: Option<&str>, description: impl Into<String>) -> ApiError {
    ApiError::InvalidRequest {
        field: field.map(str::to_owned),
        description: description.into(),
    }
}

#[cfg(test)]
mod tests;
