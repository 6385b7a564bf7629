//! `POST /v1/serviceaccounts/{id}/verify`: the admin's dry run of a token against one account,
//! every check with its verdict, nothing minted. The checks are the exchange's own
//! ([`crate::exchange::dry_run`]). No I/O here beyond the platform.

use serde_json::Value;

use super::admin::send;
use super::error::ApiError;
use super::extract::{FromRequest, JsonObject};
use super::isolate::Isolate;
use super::{Request, Response};
use crate::accounts::is_account_id;
use crate::config::admins::Caller;
use crate::exchange::Exchange;
use crate::ports::Platform;
use crate::registry::{Command, Reply};

/// Answers the dry run of the body's `{"token": "<JWT>"}` against account `id`.
pub(crate) async fn answer<P: Platform>(
    request: &Request,
    id: &str,
    isolate: &Isolate,
    platform: &P,
    caller: &Caller,
    now: i64,
) -> Result<Response, ApiError> {
    let not_found = || ApiError::NoSuchResource {
        description: format!("there is no service account with id {id:?}"),
    };
    if !is_account_id(id) {
        return Err(not_found());
    }
    let JsonObject(body) = JsonObject::from_request(request)?;
    let invalid = |field: Option<&str>, description: &str| ApiError::InvalidRequest {
        field: field.map(str::to_owned),
        description: description.to_owned(),
    };
    let token = match (body.get("token"), body.len()) {
        (Some(Value::String(token)), 1) if !token.is_empty() => token,
        (Some(_), 1) => {
            return Err(invalid(
                Some("token"),
                "token must be a non-empty string (the JWT to test)",
            ))
        }
        (None, _) => return Err(invalid(Some("token"), "token is required")),
        _ => {
            return Err(invalid(
                None,
                "the body may only hold {\"token\": \"<JWT>\"}",
            ))
        }
    };
    // The account as the registry has it now: the dry run of an account just written tests
    // what was written, wherever KV has got to.
    let command = Command::Get { id: id.to_owned() };
    let Reply::Account { account, .. } = send(platform, caller, request, command).await?.reply
    else {
        return Err(not_found());
    };
    let exchange = Exchange {
        platform,
        settings: isolate.settings()?,
        key_sets: &isolate.key_sets,
        // The dry run mints nothing, so it needs no ISSUER.
        issuer: "",
        now,
    };
    let verdict = exchange.dry_run(&account, token).await?;
    Ok(Response::json(200, &verdict).with_header("cache-control", "no-store"))
}
