//! `GET /healthz?deep=1` (an admin credential of any role but `introspector`): besides being
//! able to mint, whether the read model keeps up with the registry. 503 `lagging` when the last
//! write into `ACCOUNTS` failed, or a change has waited longer than [`LAG_GRACE_SECONDS`];
//! 200 otherwise, with what waits (a change being written right now is not lag: a monitor
//! polling during an admin's burst of writes must not page anyone). No I/O here beyond the
//! platform; the time is passed in.

use serde_json::json;

use super::admin::send;
use super::error::ApiError;
use super::extract::{FromRequest, Query};
use super::{Request, Response};
use crate::config::admins::Caller;
use crate::ports::Platform;
use crate::registry::{Command, Reply};
use crate::text::time::unix_seconds;

/// How long a change may wait to be written into `ACCOUNTS` before it counts as lag: the
/// projection's own 10 s timeout, and its first retries (2 s, 4 s, 8 s).
pub const LAG_GRACE_SECONDS: i64 = 30;

/// Whether the request asks for the deep check (`deep=1` or `deep=true`).
pub(crate) fn wants_deep(request: &Request) -> Result<bool, ApiError> {
    // The plain check, a monitor's, has no query to parse.
    if request.query.as_deref().is_none_or(str::is_empty) {
        return Ok(false);
    }
    let Query(query) = Query::from_request(request)?;
    Ok(matches!(query.get("deep"), Some("1" | "true")))
}

/// The deep check.
pub(crate) async fn deep<P: Platform>(
    request: &Request,
    platform: &P,
    caller: &Caller,
    now: i64,
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
    let lagging = is_lagging(last_error.as_deref(), oldest_pending_at.as_deref(), now);
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

/// Lag: the last write into `ACCOUNTS` failed, or the oldest waiting change (queued at
/// `oldest_pending_at`; a timestamp that cannot be read counts as old) waited longer than
/// [`LAG_GRACE_SECONDS`] by `now`.
fn is_lagging(last_error: Option<&str>, oldest_pending_at: Option<&str>, now: i64) -> bool {
    let waited_too_long = oldest_pending_at
        .is_some_and(|at| unix_seconds(at).is_none_or(|at| now - at > LAG_GRACE_SECONDS));
    last_error.is_some() || waited_too_long
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 2026-11-23T12:00:00Z
    const QUEUED: &str = "2026-11-23T12:00:00.000Z";
    const QUEUED_AT: i64 = 1_795_435_200;

    #[test]
    fn nothing_waiting_is_no_lag() {
        assert!(!is_lagging(None, None, QUEUED_AT));
    }

    #[test]
    fn a_change_being_written_is_no_lag_within_the_grace() {
        assert!(!is_lagging(
            None,
            Some(QUEUED),
            QUEUED_AT + LAG_GRACE_SECONDS
        ));
    }

    #[test]
    fn a_change_waiting_past_the_grace_is_lag() {
        assert!(is_lagging(
            None,
            Some(QUEUED),
            QUEUED_AT + LAG_GRACE_SECONDS + 1
        ));
    }

    #[test]
    fn a_failed_write_is_lag_at_once() {
        assert!(is_lagging(Some("KV is down"), Some(QUEUED), QUEUED_AT));
    }

    #[test]
    fn an_unreadable_queue_time_counts_as_old() {
        assert!(is_lagging(None, Some("soon"), QUEUED_AT));
    }
}
