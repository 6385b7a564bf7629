//! The admin console at `/admin`: one static page, its script and its style, embedded in the
//! worker so it needs no other origin. It talks only to the admin API and the dry-run verify
//! endpoint, with the admin token the user types. No I/O here.

use crate::http::Response;

const INDEX_HTML: &str = include_str!("console/index.html");
const APP_JS: &str = include_str!("console/app.js");
const APP_CSS: &str = include_str!("console/app.css");

/// Nothing from other origins, no inline script or style, no framing.
const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
     connect-src 'self'; img-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'";

/// The console file at `path`, if it is one.
pub fn asset(path: &str) -> Option<Response> {
    let (body, content_type) = match path {
        "/admin" | "/admin/" => (INDEX_HTML, "text/html; charset=utf-8"),
        "/admin/app.js" => (APP_JS, "text/javascript; charset=utf-8"),
        "/admin/app.css" => (APP_CSS, "text/css; charset=utf-8"),
        _ => return None,
    };
    Some(Response {
        status: 200,
        headers: vec![
            ("content-type".into(), content_type.into()),
            (
                "content-security-policy".into(),
                CONTENT_SECURITY_POLICY.into(),
            ),
            ("x-content-type-options".into(), "nosniff".into()),
            ("referrer-policy".into(), "no-referrer".into()),
            ("cache-control".into(), "no-cache".into()),
        ],
        body: body.as_bytes().to_vec(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serves_the_page_and_its_assets_with_a_strict_policy() {
        for (path, kind) in [
            ("/admin", "text/html"),
            ("/admin/", "text/html"),
            ("/admin/app.js", "text/javascript"),
            ("/admin/app.css", "text/css"),
        ] {
            let response = asset(path).unwrap();
            assert!(
                response.header("content-type").unwrap().starts_with(kind),
                "{path}"
            );
            assert!(response
                .header("content-security-policy")
                .unwrap()
                .contains("default-src 'none'"));
        }
        assert!(asset("/admin/other.js").is_none());
        // Nothing loaded from another origin: every src, href, url() and fetch is same-origin.
        for text in [INDEX_HTML, APP_JS, APP_CSS] {
            for load in [
                "src=\"http",
                "href=\"http",
                "url(http",
                "url(\"http",
                "fetch(\"http",
                "fetch(`http",
                "import(\"http",
            ] {
                assert!(!text.contains(load), "{load} in a console file");
            }
        }
    }
}
