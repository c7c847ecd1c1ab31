//! The JWKS refresher: keeps [`Jwt`]'s key set in step with `auth.jwt_jwks_url`.

use super::jwt::Jwt;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// Fetches the JWKS at `url` at start, every `every`, and when a token names an unknown key id
/// (at most every 10 s), until `shutdown`.
pub async fn jwks_refresher(
    jwt: Arc<Jwt>,
    url: String,
    every: Duration,
    shutdown: CancellationToken,
) {
    let every = every.max(Duration::from_secs(10));
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap_or_default();
    loop {
        let last = Instant::now();
        let fetched = async {
            let text = http
                .get(&url)
                .send()
                .await
                .and_then(|r| r.error_for_status())
                .map_err(|e| e.to_string())?
                .text()
                .await
                .map_err(|e| e.to_string())?;
            jwt.set_jwks(&text)
        }
        .await;
        match fetched {
            Ok(n) => tracing::info!(keys = n, %url, "JWKS loaded"),
            Err(e) => tracing::warn!(error = %e, %url, "fetching the JWKS"),
        }
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = jwt.unknown_kid.notified() => {
                // At most one fetch every ten seconds, however many unknown key ids arrive; the
                // wait ends at shutdown too.
                let floor = Duration::from_secs(10);
                if let Some(wait) = floor.checked_sub(last.elapsed()) {
                    tokio::select! {
                        _ = tokio::time::sleep(wait) => {}
                        _ = shutdown.cancelled() => return,
                    }
                }
            }
            _ = shutdown.cancelled() => return,
        }
    }
}
