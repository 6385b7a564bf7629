//! `GET /v1/audit`: the audit trail, newest first, filtered by `account`, `actor` and `since`,
//! `limit` events a page (default 100, at most 1000), the next page named by an RFC 8288
//! `Link: <…>; rel="next"`. Events are written only by the registry, with the change they
//! record; nothing here or anywhere else changes or deletes one. No I/O here beyond the
//! platform.

use super::admin::send;
use super::error::ApiError;
use super::extract::{FromRequest, Query};
use super::{Request, Response};
use crate::accounts::is_account_id;
use crate::config::admins::Caller;
use crate::ports::Platform;
use crate::registry::store::AuditQuery;
use crate::registry::{Command, Reply};
use crate::text::form::encode_component;
use crate::text::time::normalise_rfc3339;

/// Where the trail is read.
pub const AUDIT_PATH: &str = "/v1/audit";

/// Events per page when `limit` is not given, and the most allowed.
pub const DEFAULT_AUDIT_LIMIT: u32 = 100;
pub const MAX_AUDIT_LIMIT: u32 = 1000;

/// Longest `actor` filter, in bytes: an email address is at most 320.
const MAX_ACTOR_BYTES: usize = 320;

/// Answers `GET /v1/audit` for `caller`.
pub(crate) async fn answer<P: Platform>(
    request: &Request,
    platform: &P,
    caller: &Caller,
) -> Result<Response, ApiError> {
    let query = audit_query(request)?;
    let answer = send(
        platform,
        caller,
        request,
        Command::Audit {
            query: query.clone(),
        },
    )
    .await?;
    let Reply::Events {
        events,
        next_before,
    } = answer.reply
    else {
        return Err(ApiError::Internal {
            description: "the registry did not answer with events".into(),
        });
    };
    let mut response = Response::json(200, &events).with_header("cache-control", "no-store");
    if let Some(before) = next_before {
        let mut link = format!("{AUDIT_PATH}?limit={}", query.limit);
        for (name, value) in [
            ("account", &query.account),
            ("actor", &query.actor),
            ("since", &query.since),
        ] {
            if let Some(value) = value {
                link.push_str(&format!("&{name}={}", encode_component(value)));
            }
        }
        link.push_str(&format!("&cursor={before}"));
        response = response.with_header("link", &format!("<{link}>; rel=\"next\""));
    }
    Ok(response)
}

fn audit_query(request: &Request) -> Result<AuditQuery, ApiError> {
    let invalid = |field: &str, description: String| ApiError::InvalidRequest {
        field: Some(field.to_owned()),
        description,
    };
    let mut query = AuditQuery {
        limit: DEFAULT_AUDIT_LIMIT,
        ..AuditQuery::default()
    };
    let Query(parameters) = Query::from_request(request)?;
    for (name, value) in parameters.iter() {
        match name {
            "account" if is_account_id(value) => query.account = Some(value.to_owned()),
            "account" => {
                return Err(invalid(name, format!("account must be a service account id, not {value:?}")))
            }
            "actor" if !value.is_empty() && value.len() <= MAX_ACTOR_BYTES => {
                query.actor = Some(value.to_owned());
            }
            "actor" => {
                return Err(invalid(
                    name,
                    format!("actor must be a credential name or an email address (1-{MAX_ACTOR_BYTES} bytes)"),
                ))
            }
            "since" => {
                query.since = Some(normalise_rfc3339(value).ok_or_else(|| {
                    invalid(name, format!("since must be an RFC 3339 time such as 2026-11-23T12:00:00Z, not {value:?}"))
                })?);
            }
            "limit" => {
                query.limit = value
                    .parse::<u32>()
                    .ok()
                    .filter(|limit| (1..=MAX_AUDIT_LIMIT).contains(limit))
                    .ok_or_else(|| {
                        invalid(name, format!("limit must be a whole number from 1 to {MAX_AUDIT_LIMIT}, not {value:?}"))
                    })?;
            }
            "cursor" => {
                query.before = Some(value.parse::<u64>().ok().filter(|id| *id > 0).ok_or_else(|| {
                    invalid(name, "cursor must be the cursor of a previous page's Link: rel=\"next\"".into())
                })?);
            }
            other => {
                return Err(invalid(
                    other,
                    format!("unknown query parameter {other:?}; use account, actor, since, limit and cursor"),
                ))
            }
        }
    }
    Ok(query)
}
