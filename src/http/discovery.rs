//! Discovery: RFC 8414 authorization server metadata, served at both
//! `/.well-known/openid-configuration` and `/.well-known/oauth-authorization-server`, and the
//! Entra-compatible document of the tenant. No I/O here.
//!
//! edge-sts has no authorization endpoint and issues no ID tokens, so the OpenID-only fields
//! are absent; clients that read either path find the token, JWKS and introspection URLs.

use serde::Serialize;

use super::error::ApiError;
use super::token::{GRANT_CLIENT_CREDENTIALS, GRANT_JWT_BEARER, GRANT_TOKEN_EXCHANGE};
use super::Response;
use crate::config::settings::Settings;
use crate::jose::alg::Alg;

/// How long a client may keep the metadata: it changes only with a new deployment.
const METADATA_CACHE_CONTROL: &str = "public, max-age=3600";

/// The contract: an OpenAPI 3.1 description of every endpoint, kept in the repository
/// (`docs/openapi.json`) and served as is. The end-to-end suite checks every response it
/// receives against it.
const OPENAPI: &str = include_str!("../../docs/openapi.json");

/// `GET /openapi.json`.
pub(crate) fn openapi() -> Response {
    Response {
        status: 200,
        headers: vec![(
            "content-type".to_owned(),
            "application/json; charset=utf-8".to_owned(),
        )],
        body: OPENAPI.as_bytes().to_vec(),
    }
    .with_header("cache-control", METADATA_CACHE_CONTROL)
}

/// The grant types of the contract's three request forms, as the token endpoint names them.
const GRANT_TYPES: &[&str] = &[
    GRANT_CLIENT_CREDENTIALS,
    GRANT_TOKEN_EXCHANGE,
    GRANT_JWT_BEARER,
];

/// The JWS algorithms accepted on a workload's token, as the parser accepts them.
fn accepted_algs() -> [&'static str; Alg::ALL.len()] {
    Alg::ALL.map(Alg::name)
}

/// The metadata document.
#[derive(Debug, Serialize)]
pub struct Metadata<'a> {
    issuer: &'a str,
    token_endpoint: String,
    jwks_uri: String,
    introspection_endpoint: String,
    grant_types_supported: &'static [&'static str],
    scopes_supported: &'a [String],
    /// No authorization endpoint, so no response types; RFC 8414 requires the member.
    response_types_supported: [&'static str; 0],
    /// Form 1 authenticates the client by its assertion; forms 2 and 3 carry none.
    token_endpoint_auth_methods_supported: [&'static str; 2],
    token_endpoint_auth_signing_alg_values_supported: [&'static str; Alg::ALL.len()],
    introspection_endpoint_auth_methods_supported: [&'static str; 1],
}

/// The metadata of this deployment, whose `iss` is `issuer`.
pub(crate) fn metadata(settings: &Settings, issuer: &str) -> Response {
    Response::json(200, &metadata_document(settings, issuer))
        .with_header("cache-control", METADATA_CACHE_CONTROL)
}

fn metadata_document<'a>(settings: &'a Settings, issuer: &'a str) -> Metadata<'a> {
    let base = issuer.trim_end_matches('/');
    Metadata {
        issuer,
        token_endpoint: format!("{base}/oauth2/token"),
        jwks_uri: format!("{base}/.well-known/jwks.json"),
        introspection_endpoint: format!("{base}/oauth2/introspect"),
        grant_types_supported: GRANT_TYPES,
        scopes_supported: &settings.scopes,
        response_types_supported: [],
        token_endpoint_auth_methods_supported: ["private_key_jwt", "none"],
        token_endpoint_auth_signing_alg_values_supported: accepted_algs(),
        // The admin token, as a bearer token.
        introspection_endpoint_auth_methods_supported: ["bearer"],
    }
}

/// The Entra-compatible metadata at `/{TENANT_ID}[/v2.0]/.well-known/openid-configuration`,
/// what MSAL and azure-identity read when their authority is `{ISSUER}/{TENANT_ID}`. MSAL
/// requires `issuer`, `token_endpoint`, `jwks_uri` and `authorization_endpoint` (the last
/// answers a JSON 400: edge-sts only serves client credentials), and that `issuer` has the
/// authority's scheme, host and port — so `ISSUER` must be where clients reach edge-sts.
#[derive(Debug, Serialize)]
pub struct TenantMetadata<'a> {
    issuer: &'a str,
    token_endpoint: String,
    authorization_endpoint: String,
    jwks_uri: String,
    introspection_endpoint: String,
    grant_types_supported: [&'static str; 1],
    scopes_supported: &'a [String],
    response_types_supported: [&'static str; 0],
    token_endpoint_auth_methods_supported: [&'static str; 1],
    token_endpoint_auth_signing_alg_values_supported: [&'static str; Alg::ALL.len()],
    tenant_id: &'a str,
}

/// The Entra-compatible metadata of this deployment's tenant.
pub(crate) fn tenant_metadata(settings: &Settings, issuer: &str) -> Response {
    Response::json(200, &tenant_metadata_document(settings, issuer))
        .with_header("cache-control", METADATA_CACHE_CONTROL)
}

/// What Entra's authorization endpoint answers here: a JSON 400 saying why there is none.
pub(crate) fn no_authorization_endpoint() -> ApiError {
    ApiError::InvalidRequest {
        field: None,
        description: "edge-sts has no authorization endpoint: it serves only the client credentials grant with a client assertion (a workload's own JWT) at the token endpoint".into(),
    }
}

fn tenant_metadata_document<'a>(settings: &'a Settings, issuer: &'a str) -> TenantMetadata<'a> {
    let base = issuer.trim_end_matches('/');
    let tenant = settings.tenant_id.as_deref().unwrap_or_default();
    TenantMetadata {
        issuer,
        token_endpoint: format!("{base}/{tenant}/oauth2/v2.0/token"),
        authorization_endpoint: format!("{base}/{tenant}/oauth2/v2.0/authorize"),
        jwks_uri: format!("{base}/.well-known/jwks.json"),
        introspection_endpoint: format!("{base}/oauth2/introspect"),
        grant_types_supported: [GRANT_CLIENT_CREDENTIALS],
        scopes_supported: &settings.scopes,
        response_types_supported: [],
        token_endpoint_auth_methods_supported: ["private_key_jwt"],
        token_endpoint_auth_signing_alg_values_supported: accepted_algs(),
        tenant_id: tenant,
    }
}
