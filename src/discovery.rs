//! RFC 8414 authorization server metadata, served at both `/.well-known/openid-configuration`
//! and `/.well-known/oauth-authorization-server`. No I/O here.
//!
//! edge-sts has no authorization endpoint and issues no ID tokens, so the OpenID-only fields
//! are absent; clients that read either path find the token, JWKS and introspection URLs.

use serde::Serialize;

use crate::settings::Settings;

/// The grant types of SPEC.md's three request forms.
pub const GRANT_TYPES: &[&str] = &[
    "client_credentials",
    "urn:ietf:params:oauth:grant-type:token-exchange",
    "urn:ietf:params:oauth:grant-type:jwt-bearer",
];

/// The JWS algorithms accepted on a workload's token (SPEC.md, validation step 2).
pub const ACCEPTED_ALGS: &[&str] = &[
    "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA",
];

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
    token_endpoint_auth_signing_alg_values_supported: &'static [&'static str],
    introspection_endpoint_auth_methods_supported: [&'static str; 1],
}

/// The metadata of this deployment, whose `iss` is `issuer`.
pub fn metadata<'a>(settings: &'a Settings, issuer: &'a str) -> Metadata<'a> {
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
        token_endpoint_auth_signing_alg_values_supported: ACCEPTED_ALGS,
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
    token_endpoint_auth_signing_alg_values_supported: &'static [&'static str],
    tenant_id: &'a str,
}

/// The Entra-compatible metadata of this deployment's tenant.
pub fn tenant_metadata<'a>(settings: &'a Settings, issuer: &'a str) -> TenantMetadata<'a> {
    let base = issuer.trim_end_matches('/');
    let tenant = settings.tenant_id.as_deref().unwrap_or_default();
    TenantMetadata {
        issuer,
        token_endpoint: format!("{base}/{tenant}/oauth2/v2.0/token"),
        authorization_endpoint: format!("{base}/{tenant}/oauth2/v2.0/authorize"),
        jwks_uri: format!("{base}/.well-known/jwks.json"),
        introspection_endpoint: format!("{base}/oauth2/introspect"),
        grant_types_supported: ["client_credentials"],
        scopes_supported: &settings.scopes,
        response_types_supported: [],
        token_endpoint_auth_methods_supported: ["private_key_jwt"],
        token_endpoint_auth_signing_alg_values_supported: ACCEPTED_ALGS,
        tenant_id: tenant,
    }
}
