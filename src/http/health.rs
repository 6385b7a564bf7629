//! `GET /healthz?deep=1` (an admin credential of any role but `introspector`): besides being
//! able to mint, whether the read model keeps up with the registry. 200 when nothing waits to
//! be written into `ACCOUNTS`; 503 with what waits, since when, and the last failure when the
//! projection lags. No I/O here beyond the platform.

use serde_json::json;

use super::admin::send;
use super::error::ApiError;
use super::extract::{FromRequest, Query};
use super::{Request, Response};
use crate::config::admins::Caller;
use crate::ports::Platform;
use crate::registry::{Command, Reply};

/// Whether the request asks for the deep check (`deep=1` or `deep=true`).
pub(crate) fn wants_deep(request: &Request) -> Result<bool, ApiError> {
    let Query(query) = Query::from_request(request)?;
    Ok(matches!(query.get("deep"), Some("1" | "true")))
}

/// The deep check.
pub(crate) async fn deep<P: Platform>(
    request: &Request,
    platform: &P,
    caller: &Caller,
) -> Result<Response, ApiError> {
    let answer = send(platform, caller, request, Command::Status).await?;
    let Reply::Status {
        pending,
        oldest_pending_at,
        last_error,
    } = answer.reply
    else {
        return Err(ApiError::Internal {
            description: "the registry did not answer with its status".into(),
        });
    };
    let lagging = pending > 0;
    let body = json!({
        "status": if lagging { "lagging" } else { "ok" },
        "projection": {
            "pending": pending,
            "oldestPendingAt": oldest_pending_at,
            "lastError": last_error,
        },
    });
    Ok(Response::json(if lagging { 503 } else { 200 }, &body)
        .with_header("cache-control", "no-store"))
}
