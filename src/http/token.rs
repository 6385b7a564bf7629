//! The token endpoint (`/oauth2/token`, and the Venafi and Entra paths): the three request
//! forms of the contract in, an RFC 6749 answer out, and one log line per request whatever happens.
//! The pipeline itself is [`crate::exchange`]. No I/O here beyond the platform.

use serde::Serialize;

use super::auth::client_ip;
use super::error::ApiError;
use super::extract::{FormBody, FromRequest};
use super::isolate::Isolate;
use super::{Request, Response};
use crate::exchange::{Exchange, ExchangeError, Outcome, TokenRequest, ACCESS_TOKEN_SECONDS};
use crate::jose::reason::Reason;
use crate::ports::{EventLog, Platform, RateLimiter, TokenEvent};

/// Answers a token request, and logs one line for it.
pub(crate) async fn answer<P: Platform>(
    request: &Request,
    isolate: &Isolate,
    platform: &P,
    issuer: Result<&str, ApiError>,
    now: i64,
) -> Response {
    if let Some(limiter) = platform.rate_limiter() {
        if !limiter
            .allow(&format!("token:{}", client_ip(request)))
            .await
        {
            let error = ApiError::RateLimited {
                description: "too many token requests from this address; slow down and try again after Retry-After seconds".into(),
            };
            return refused(platform, None, error);
        }
    }
    let (form, token_request) = match parse_token_request(request) {
        Ok(parsed) => parsed,
        Err(error) => return refused(platform, None, error),
    };
    let ready = isolate
        .signing_keys()
        .and(issuer)
        .and_then(|issuer| Ok((isolate.settings()?, issuer)));
    let (settings, issuer) = match ready {
        Ok(ready) => ready,
        Err(error) => return refused(platform, Some(form), error),
    };
    let exchange = Exchange {
        platform,
        settings,
        key_sets: &isolate.key_sets,
        issuer,
        now,
    };
    let outcome = exchange.run(&token_request).await;
    let (response, error) = match &outcome.result {
        Ok(issued) => (
            success(
                &issued.access_token,
                answered_scope(token_request.scope.as_deref(), &issued.scope),
            ),
            None,
        ),
        Err(failure) => refusal(form, failure),
    };
    platform.log().record(log_event(
        Some(form),
        Some(&outcome),
        response.status,
        error.as_ref(),
    ));
    response
}

/// The answer to a request refused before its exchange began, logged. Out of line, as the
/// rare branches of a first request's functions are: V8 compiles a function whole.
#[cold]
#[inline(never)]
fn refused<P: Platform>(platform: &P, form: Option<GrantForm>, error: ApiError) -> Response {
    platform
        .log()
        .record(log_event(form, None, error.status(), Some(&error)));
    error.into_response()
}

/// The answer to a refused exchange, and the error it says, for the log line. Out of line.
#[cold]
#[inline(never)]
fn refusal(form: GrantForm, failure: &ExchangeError) -> (Response, Option<ApiError>) {
    let error = error_for(form, failure);
    (error.clone().into_response(), Some(error))
}

pub const GRANT_CLIENT_CREDENTIALS: &str = "client_credentials";
pub const GRANT_TOKEN_EXCHANGE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
pub const GRANT_JWT_BEARER: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";
pub const ASSERTION_TYPE_JWT_BEARER: &str =
    "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
pub const TOKEN_TYPE_JWT: &str = "urn:ietf:params:oauth:token-type:jwt";
pub const TOKEN_TYPE_ID_TOKEN: &str = "urn:ietf:params:oauth:token-type:id_token";
pub const TOKEN_TYPE_ACCESS_TOKEN: &str = "urn:ietf:params:oauth:token-type:access_token";

/// Which of the contract's three request forms a request uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GrantForm {
    /// Entra / Venafi: `client_credentials` with a `client_assertion`. Refusals are
    /// `invalid_client`, 401.
    ClientAssertion,
    /// RFC 8693 token exchange.
    TokenExchange,
    /// RFC 7523 §2.1 JWT bearer grant.
    JwtBearer,
}

impl GrantForm {
    fn name(self) -> &'static str {
        match self {
            Self::ClientAssertion => "client_assertion",
            Self::TokenExchange => "token_exchange",
            Self::JwtBearer => "jwt_bearer",
        }
    }
}

fn invalid_request(description: impl Into<String>) -> ApiError {
    ApiError::OAuth {
        status: 400,
        error: "invalid_request",
        reason: None,
        description: description.into(),
    }
}

/// Reads a token request: body limits, form encoding, no repeated parameter, the grant's
/// required parameters. Unknown parameters are ignored, as RFC 6749 §3.2 requires.
pub fn parse_token_request(request: &Request) -> Result<(GrantForm, TokenRequest), ApiError> {
    // RFC 6749 answers every malformed token request 400 invalid_request (a body that is not a
    // form included, where other endpoints say 415); a body too large is still 413.
    let FormBody(form) = FormBody::from_request(request).map_err(not_a_token_form)?;
    let get = |name: &str| form.get(name);
    let required = |name: &str| -> Result<&str, ApiError> {
        get(name)
            .filter(|value| !value.is_empty())
            .ok_or_else(|| missing_parameter(name))
    };
    let grant_type = required("grant_type")?;
    let (form, assertion) = match grant_type {
        GRANT_CLIENT_CREDENTIALS => {
            let assertion_type = required("client_assertion_type")?;
            if assertion_type != ASSERTION_TYPE_JWT_BEARER {
                return Err(not_one_of(
                    "client_assertion_type",
                    &[ASSERTION_TYPE_JWT_BEARER],
                    assertion_type,
                ));
            }
            (GrantForm::ClientAssertion, required("client_assertion")?)
        }
        GRANT_TOKEN_EXCHANGE => {
            let token_type = required("subject_token_type")?;
            if token_type != TOKEN_TYPE_JWT && token_type != TOKEN_TYPE_ID_TOKEN {
                return Err(not_one_of(
                    "subject_token_type",
                    &[TOKEN_TYPE_JWT, TOKEN_TYPE_ID_TOKEN],
                    token_type,
                ));
            }
            if let Some(requested) = get("requested_token_type") {
                if requested != TOKEN_TYPE_ACCESS_TOKEN {
                    return Err(not_one_of(
                        "requested_token_type",
                        &[TOKEN_TYPE_ACCESS_TOKEN],
                        requested,
                    ));
                }
            }
            if get("actor_token").is_some() {
                return Err(invalid_request("actor_token (delegation) is not supported"));
            }
            (GrantForm::TokenExchange, required("subject_token")?)
        }
        GRANT_JWT_BEARER => (GrantForm::JwtBearer, required("assertion")?),
        other => return Err(unsupported_grant(other)),
    };
    let client_id = get("client_id")
        .filter(|id| !id.is_empty())
        .map(str::to_owned);
    Ok((
        form,
        TokenRequest {
            // A token read from a file often ends in a newline, which clients (google-auth's
            // file source among them) send along: whitespace around a JWT is not part of it.
            assertion: assertion
                .trim_matches(|c: char| c.is_ascii_whitespace())
                .to_owned(),
            scope: get("scope").map(str::to_owned),
            client_id,
        },
    ))
}

// The refusals of a malformed token request, out of line: V8 compiles a function whole on its
// first call, and a well-formed request needs none of them.

/// A body that is not a form: 400 `invalid_request` (RFC 6749), except one too large (413).
#[cold]
#[inline(never)]
fn not_a_token_form(error: ApiError) -> ApiError {
    match error {
        ApiError::PayloadTooLarge { .. } => error,
        ApiError::UnsupportedMediaType { .. } => invalid_request(
            "the body must be form-encoded (Content-Type: application/x-www-form-urlencoded)",
        ),
        other => invalid_request(other.description()),
    }
}

#[cold]
#[inline(never)]
fn missing_parameter(name: &str) -> ApiError {
    invalid_request(format!("parameter {name} is required"))
}

/// Parameter `name` is `given`, none of `wanted`.
#[cold]
#[inline(never)]
fn not_one_of(name: &str, wanted: &[&str], given: &str) -> ApiError {
    invalid_request(format!(
        "{name} must be {}, not {given:?}",
        wanted.join(" or ")
    ))
}

#[cold]
#[inline(never)]
fn unsupported_grant(grant_type: &str) -> ApiError {
    ApiError::OAuth {
        status: 400,
        error: "unsupported_grant_type",
        reason: None,
        description: format!(
            "grant_type {grant_type:?} is not supported; use {GRANT_CLIENT_CREDENTIALS}, {GRANT_TOKEN_EXCHANGE} or {GRANT_JWT_BEARER}"
        ),
    }
}

/// The one place an exchange failure becomes an OAuth error.
pub fn error_for(form: GrantForm, error: &ExchangeError) -> ApiError {
    match error {
        ExchangeError::Rejected(rejection) => {
            // Every reason listed: a new one must be given its OAuth error here, not a default.
            let (status, code) = match rejection.reason {
                Reason::JwksUnavailable | Reason::JwksInvalid => (503, "temporarily_unavailable"),
                Reason::ScopeNotAllowed => (400, "invalid_scope"),
                Reason::MalformedToken
                | Reason::TokenTooLarge
                | Reason::UnsupportedAlgorithm
                | Reason::UnknownKey
                | Reason::KeyMismatch
                | Reason::BadSignature
                | Reason::TokenExpired
                | Reason::TokenNotYetValid
                | Reason::IssuedInFuture
                | Reason::LifetimeTooLong
                | Reason::MissingClaim
                | Reason::InvalidClaim
                | Reason::IssuerMismatch
                | Reason::AudienceMismatch
                | Reason::SubjectMismatch
                | Reason::ClaimMismatch
                | Reason::NoMatchingAccount
                | Reason::AmbiguousAccount
                | Reason::AccountDisabled => match form {
                    // RFC 6749 §5.2: a client that authenticated with an assertion is the
                    // client refused; the grant forms' token is the grant refused.
                    GrantForm::ClientAssertion => (401, "invalid_client"),
                    GrantForm::TokenExchange | GrantForm::JwtBearer => (400, "invalid_grant"),
                },
            };
            ApiError::OAuth {
                status,
                error: code,
                reason: Some(rejection.reason),
                description: rejection.description.clone(),
            }
        }
        // What failed inside is for the log line (`detail`), not for an anonymous client.
        ExchangeError::Storage(_) => ApiError::OAuth {
            status: 503,
            error: "temporarily_unavailable",
            reason: None,
            description: "the account store is unavailable; try again".into(),
        },
        ExchangeError::Corrupt(_) => ApiError::OAuth {
            status: 500,
            error: "server_error",
            reason: None,
            description:
                "a stored service account could not be read; the operator's log says which".into(),
        },
        ExchangeError::Signing(_) => ApiError::OAuth {
            status: 500,
            error: "server_error",
            reason: None,
            description: "the access token could not be signed; the operator's log says why".into(),
        },
    }
}

/// The `scope` member of the answer: the scopes granted — except for an Entra-style request of
/// `<resource>/.default`, which is answered with the request itself, as Entra does. (MSAL files
/// the token in its cache under the answered scope and looks it up under the requested one.)
/// The token's own `scope` claim always lists the scopes granted.
pub fn answered_scope<'a>(requested: Option<&'a str>, granted: &'a str) -> &'a str {
    match requested {
        Some(requested)
            if requested
                .split(' ')
                .any(|scope| scope.ends_with("/.default")) =>
        {
            requested
        }
        _ => granted,
    }
}

/// The 200 answer.
pub fn success(access_token: &str, scope: &str) -> Response {
    let answer = TokenAnswer {
        access_token,
        expires_in: ACCESS_TOKEN_SECONDS,
        issued_token_type: TOKEN_TYPE_ACCESS_TOKEN,
        scope,
        token_type: "Bearer",
    };
    Response::json(200, &answer)
        .with_header("cache-control", "no-store")
        .with_header("pragma", "no-cache")
}

/// The 200 answer's body (RFC 6749 §5.1, RFC 8693 §2.2.1), its members in alphabetical order.
/// Written from a struct rather than built as a JSON object, whose member-by-member building
/// every new isolate's first exchange would compile.
#[derive(Serialize)]
struct TokenAnswer<'a> {
    access_token: &'a str,
    expires_in: i64,
    issued_token_type: &'static str,
    scope: &'a str,
    token_type: &'static str,
}

/// Longest claim value written to a log line, in characters: enough for any real `sub`,
/// bounded so a hostile token cannot flood the logs.
pub const MAX_LOGGED_CLAIM_CHARS: usize = 256;

/// Longest `detail` written to a log line, in characters: a URL of 600 and an issuer's answer.
pub const MAX_LOGGED_DETAIL_CHARS: usize = 1024;

fn clip_chars(text: &str, max_chars: usize) -> String {
    text.chars().take(max_chars).collect()
}

/// The structured log line of one token request: outcome, reason, account, the incoming
/// token's `iss`/`sub`/`jti` (never the token itself) and the status.
pub fn log_event(
    form: Option<GrantForm>,
    outcome: Option<&Outcome>,
    status: u16,
    error: Option<&ApiError>,
) -> TokenEvent {
    let clip = |text: &str| {
        text.chars()
            .take(MAX_LOGGED_CLAIM_CHARS)
            .collect::<String>()
    };
    let identity = outcome.and_then(|outcome| outcome.identity.as_ref());
    let reason = error.and_then(|error| match error {
        ApiError::OAuth { reason, .. } => reason.map(Reason::as_str),
        _ => None,
    });
    // What the client was not told: configured values, URLs, what an issuer or KV answered.
    let detail = outcome.and_then(|outcome| match &outcome.result {
        Ok(_) => None,
        Err(ExchangeError::Rejected(rejection)) => rejection.detail.clone(),
        Err(
            ExchangeError::Storage(why) | ExchangeError::Corrupt(why) | ExchangeError::Signing(why),
        ) => Some(why.clone()),
    });
    TokenEvent {
        account: outcome.and_then(|outcome| outcome.account_id.clone()),
        detail: detail.map(|detail| clip_chars(&detail, MAX_LOGGED_DETAIL_CHARS)),
        error: error.map(ApiError::code),
        event: "token_request",
        form: form.map(GrantForm::name),
        iss: identity.map(|identity| clip(&identity.iss)),
        jti: identity.and_then(|identity| identity.jti.as_deref().map(clip)),
        latency_ms: None,
        outcome: if status == 200 { "issued" } else { "refused" },
        reason,
        status,
        sub: identity.map(|identity| clip(&identity.sub)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::Method;

    fn form(body: &str) -> Request {
        let mut request = Request::new(Method::Post, "http://sts.test", "/oauth2/token");
        request.headers.push((
            "content-type".into(),
            "application/x-www-form-urlencoded".into(),
        ));
        request.body = body.as_bytes().to_vec();
        request
    }

    fn error_code(body: &str) -> (u16, String, String) {
        let error = parse_token_request(&form(body)).unwrap_err();
        let description = error.description();
        (error.status(), error.code().to_owned(), description)
    }

    #[test]
    fn reads_the_three_forms() {
        let cases = [
            (format!("grant_type=client_credentials&client_assertion_type={}&client_assertion=T&scope=a+b&client_id=c", ASSERTION_TYPE_JWT_BEARER.replace(':', "%3A")), GrantForm::ClientAssertion),
            (format!("grant_type={GRANT_TOKEN_EXCHANGE}&subject_token=T&subject_token_type={TOKEN_TYPE_JWT}&scope=a+b&client_id=c"), GrantForm::TokenExchange),
            (format!("grant_type={GRANT_TOKEN_EXCHANGE}&subject_token=T&subject_token_type={TOKEN_TYPE_ID_TOKEN}&requested_token_type={TOKEN_TYPE_ACCESS_TOKEN}&scope=a%20b&client_id=c"), GrantForm::TokenExchange),
            (format!("grant_type={GRANT_JWT_BEARER}&assertion=T&scope=a+b&client_id=c&unknown=ignored"), GrantForm::JwtBearer),
        ];
        for (body, expected) in cases {
            let (form_kind, request) = parse_token_request(&form(&body)).unwrap();
            assert_eq!(form_kind, expected, "{body}");
            assert_eq!(request.assertion, "T");
            assert_eq!(request.scope.as_deref(), Some("a b"));
            assert_eq!(request.client_id.as_deref(), Some("c"));
        }
    }

    #[test]
    fn whitespace_around_the_token_is_not_part_of_it() {
        let body = format!("grant_type={GRANT_JWT_BEARER}&assertion=%20a.b.c%0A");
        let (_, request) = parse_token_request(&form(&body)).unwrap();
        assert_eq!(request.assertion, "a.b.c");
    }

    #[test]
    fn request_shape_errors_are_invalid_request_without_a_reason() {
        let cases = [
            "",
            "grant_type=",
            "assertion=T",
            "grant_type=client_credentials&client_assertion=T",
            "grant_type=client_credentials&client_assertion_type=urn:x&client_assertion=T",
            "grant_type=client_credentials&client_assertion_type=urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            "grant_type=urn:ietf:params:oauth:grant-type:token-exchange&subject_token=T",
            "grant_type=urn:ietf:params:oauth:grant-type:token-exchange&subject_token=T&subject_token_type=urn:ietf:params:oauth:token-type:saml2",
            "grant_type=urn:ietf:params:oauth:grant-type:token-exchange&subject_token=T&subject_token_type=urn:ietf:params:oauth:token-type:jwt&requested_token_type=urn:ietf:params:oauth:token-type:refresh_token",
            "grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer",
            "grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer&assertion=T&assertion=U",
            "grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer&assertion=T&scope=a&scope=b",
            "grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer&assertion=%zz",
        ];
        for body in cases {
            let (status, code, _) = error_code(body);
            assert_eq!((status, code.as_str()), (400, "invalid_request"), "{body}");
        }
    }

    /// MSAL files a token under the scope the answer names and looks it up under the one it
    /// asked for: a `.default` request is answered with itself.
    #[test]
    fn a_default_scope_request_is_answered_with_itself() {
        let granted = "certificate-issuance api-integration";
        assert_eq!(
            answered_scope(Some("api://x/.default"), granted),
            "api://x/.default"
        );
        assert_eq!(
            answered_scope(Some("certificate-issuance"), "certificate-issuance"),
            "certificate-issuance"
        );
        assert_eq!(answered_scope(None, granted), granted);
    }

    #[test]
    fn more_than_32_parameters_are_invalid_request() {
        let padding: String = (0..30).map(|i| format!("&x{i}=")).collect();
        let body = format!("grant_type={GRANT_JWT_BEARER}&assertion=T{padding}");
        assert!(parse_token_request(&form(&body)).is_ok(), "32 parameters");
        let (status, code, description) = error_code(&format!("{body}&one=more"));
        assert_eq!((status, code.as_str()), (400, "invalid_request"));
        assert!(
            description.contains("more than 32 parameters"),
            "{description}"
        );
    }

    #[test]
    fn an_unknown_grant_type_is_unsupported_grant_type() {
        for grant in ["password", "authorization_code", "refresh_token", "urn:x"] {
            let (status, code, description) =
                error_code(&format!("grant_type={grant}&assertion=T"));
            assert_eq!((status, code.as_str()), (400, "unsupported_grant_type"));
            assert!(description.contains(grant));
        }
    }

    #[test]
    fn a_body_that_is_not_a_form_is_invalid_request_and_a_huge_one_413() {
        let mut json = form("{}");
        json.headers = vec![("content-type".into(), "application/json".into())];
        assert_eq!(parse_token_request(&json).unwrap_err().status(), 400);
        let mut none = form("grant_type=x");
        none.headers.clear();
        assert_eq!(parse_token_request(&none).unwrap_err().status(), 400);
        let big = form(&format!(
            "grant_type={GRANT_JWT_BEARER}&assertion={}",
            "a".repeat(super::super::extract::MAX_BODY_BYTES)
        ));
        assert_eq!(parse_token_request(&big).unwrap_err().status(), 413);
    }

    #[test]
    fn judged_tokens_map_by_form_and_reason() {
        use crate::jose::reason::Rejection;
        let rejected = |reason| ExchangeError::Rejected(Rejection::new(reason, "why"));
        let cases = [
            (
                GrantForm::ClientAssertion,
                Reason::BadSignature,
                401,
                "invalid_client",
            ),
            (
                GrantForm::TokenExchange,
                Reason::BadSignature,
                400,
                "invalid_grant",
            ),
            (
                GrantForm::JwtBearer,
                Reason::TokenExpired,
                400,
                "invalid_grant",
            ),
            (
                GrantForm::ClientAssertion,
                Reason::ScopeNotAllowed,
                400,
                "invalid_scope",
            ),
            (
                GrantForm::JwtBearer,
                Reason::JwksUnavailable,
                503,
                "temporarily_unavailable",
            ),
            (
                GrantForm::ClientAssertion,
                Reason::JwksInvalid,
                503,
                "temporarily_unavailable",
            ),
        ];
        for (form, reason, status, code) in cases {
            let error = error_for(form, &rejected(reason));
            assert_eq!(
                (error.status(), error.code()),
                (status, code),
                "{form:?} {}",
                reason.as_str()
            );
            let response = error.into_response();
            let body: serde_json::Value = serde_json::from_slice(&response.body).unwrap();
            assert_eq!(body["reason"], reason.as_str());
            assert_eq!(response.header("retry-after").is_some(), status == 503);
        }
    }

    /// Reads `text` as JSON, and holds it to be written as a JSON object of its members would
    /// be: in alphabetical order at every level.
    fn reads_back(text: &str) -> serde_json::Value {
        let value: serde_json::Value = serde_json::from_str(text).unwrap();
        assert_eq!(value.to_string(), text);
        value
    }

    /// The 200 body: the RFC 6749 members, in alphabetical order.
    #[test]
    fn the_answer_is_written_in_alphabetical_order() {
        let response = success("the-token", "api-integration");
        let body = reads_back(std::str::from_utf8(&response.body).unwrap());
        assert_eq!(
            body,
            serde_json::json!({
                "access_token": "the-token",
                "expires_in": 900,
                "issued_token_type": TOKEN_TYPE_ACCESS_TOKEN,
                "scope": "api-integration",
                "token_type": "Bearer",
            })
        );
    }

    /// The log line: its members in alphabetical order, what is not known as `null`, and a
    /// latency only once the platform has set one.
    #[test]
    fn the_log_line_is_written_in_alphabetical_order_with_nulls() {
        let error = invalid_request("no assertion");
        let mut event = log_event(Some(GrantForm::JwtBearer), None, 400, Some(&error));
        let line = reads_back(&serde_json::to_string(&event).unwrap());
        assert_eq!(line.get("latency_ms"), None);
        for member in ["account", "detail", "iss", "jti", "reason", "sub"] {
            assert_eq!(line.get(member), Some(&serde_json::Value::Null), "{member}");
        }
        assert_eq!(
            (
                &line["event"],
                &line["outcome"],
                &line["error"],
                &line["form"]
            ),
            (
                &"token_request".into(),
                &"refused".into(),
                &"invalid_request".into(),
                &"jwt_bearer".into()
            )
        );
        event.latency_ms = Some(7);
        let line = reads_back(&serde_json::to_string(&event).unwrap());
        assert_eq!(line["latency_ms"], 7);
    }
}
