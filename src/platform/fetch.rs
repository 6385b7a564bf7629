//! Fetching issuer documents with the platform `fetch`, under the contract's limits: https only
//! (loopback http with `ALLOW_HTTP_LOOPBACK`), 5 s for the whole exchange, at most 3
//! redirects each checked like the first URL, body at most 256 KiB read as a bounded stream.

use std::time::Duration;

use futures_util::future::{select, Either};
use futures_util::StreamExt;
use worker::{
    AbortController, AbortSignal, Delay, Fetch, Method, Request, RequestInit, RequestRedirect,
};

use super::JsUrls;
use crate::ports::{FetchError, Fetched, KeySetFetcher};
use crate::ports::{FETCH_TIMEOUT_SECONDS, MAX_DOCUMENT_BYTES};
use crate::text::url::resolve_redirect;

/// Time allowed for one document, redirects and body included (the port's contract).
const FETCH_TIMEOUT: Duration = Duration::from_secs(FETCH_TIMEOUT_SECONDS);

/// Most redirects followed (the contract).
pub const MAX_REDIRECTS: usize = 3;

/// The platform's `fetch`, as a [`KeySetFetcher`].
pub struct WorkersFetcher {
    pub allow_http_loopback: bool,
    /// Subrequests made in this request (redirects included), for `Server-Timing`.
    pub subrequests: std::cell::Cell<u32>,
}

impl KeySetFetcher for WorkersFetcher {
    async fn fetch(&self, url: &str) -> Result<Fetched, FetchError> {
        let controller = AbortController::default();
        let counter = &self.subrequests;
        let signal = controller.signal();
        let work = std::pin::pin!(follow(url, &signal, self.allow_http_loopback, counter));
        let timeout = std::pin::pin!(Delay::from(FETCH_TIMEOUT));
        match select(work, timeout).await {
            Either::Left((result, _)) => result,
            Either::Right(_) => {
                controller.abort();
                Err(FetchError::Timeout)
            }
        }
    }
}

fn network(error: impl std::fmt::Display) -> FetchError {
    FetchError::Network(error.to_string())
}

async fn follow(
    url: &str,
    signal: &AbortSignal,
    allow_http_loopback: bool,
    subrequests: &std::cell::Cell<u32>,
) -> Result<Fetched, FetchError> {
    let mut current = url.to_owned();
    for hop in 0..=MAX_REDIRECTS {
        let mut init = RequestInit::new();
        init.with_method(Method::Get)
            .with_redirect(RequestRedirect::Manual);
        let request = Request::new_with_init(&current, &init).map_err(network)?;
        subrequests.set(subrequests.get() + 1);
        let mut response = Fetch::Request(request)
            .send_with_signal(signal)
            .await
            .map_err(network)?;
        let status = response.status_code();
        if matches!(status, 301 | 302 | 303 | 307 | 308) {
            if hop == MAX_REDIRECTS {
                return Err(FetchError::BadRedirect(format!(
                    "more than {MAX_REDIRECTS} redirects"
                )));
            }
            let location = response
                .headers()
                .get("location")
                .ok()
                .flatten()
                .ok_or_else(|| FetchError::BadRedirect("a redirect without Location".into()))?;
            // Resolved by the URL Standard, as fetch would, and held to the same rules as the
            // first URL: https, and no loopback, private or link-local IP literal.
            current = resolve_redirect(&current, &location, allow_http_loopback, &JsUrls)
                .map_err(FetchError::BadRedirect)?;
            continue;
        }
        let declared = response
            .headers()
            .get("content-length")
            .ok()
            .flatten()
            .and_then(|length| length.trim().parse::<usize>().ok());
        if declared.is_some_and(|length| length > MAX_DOCUMENT_BYTES) {
            return Err(FetchError::TooLarge);
        }
        let cache_control = response.headers().get("cache-control").ok().flatten();
        let mut body = Vec::new();
        let mut stream = response.stream().map_err(network)?;
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(network)?;
            if body.len() + chunk.len() > MAX_DOCUMENT_BYTES {
                return Err(FetchError::TooLarge);
            }
            body.extend_from_slice(&chunk);
        }
        return Ok(Fetched {
            status,
            cache_control,
            body,
        });
    }
    Err(FetchError::BadRedirect(format!(
        "more than {MAX_REDIRECTS} redirects"
    )))
}
