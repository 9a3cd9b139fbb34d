//! Rate limits: in-memory fixed windows keyed by string, timed by the app's clock (so tests step
//! time instead of sleeping).
//!
//! Two limiters per app: one per client address for every request, one per account or phone on
//! the sign-in and code endpoints. A window opens with a key's first request and lasts a minute;
//! the answer over the limit says when it closes (`Retry-After`). Limits are per process, which
//! is what a single server (or a community node) needs; behind a load balancer each process
//! counts its own share.
//!
//! The per-address check runs once per request: [`by_address`] is the middleware for the whole
//! router, and the request guards and public sign-in handlers call [`check_address`] as well,
//! which does nothing when the middleware has already counted the request.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Mutex;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::Extensions;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Duration, Utc};

use crate::app::App;

/// Keys kept before expired windows are swept out.
const SWEEP_AT: usize = 10_000;

/// Over the limit: try again after this many seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limited {
    pub retry_after_secs: u64,
}

#[derive(Debug, Clone, Copy)]
struct Window {
    start: DateTime<Utc>,
    count: u32,
}

/// Fixed windows of `window` length, one per key.
#[derive(Debug)]
pub struct RateLimiter {
    window: Duration,
    windows: Mutex<HashMap<String, Window>>,
}

impl RateLimiter {
    pub fn new(window: Duration) -> Self {
        Self {
            window,
            windows: Mutex::new(HashMap::new()),
        }
    }

    /// Count one request for `key` at `now`; refused when it would be more than `limit` in the
    /// key's current window. A limit of 0 means no limit.
    pub fn check(&self, key: &str, limit: u32, now: DateTime<Utc>) -> Result<(), Limited> {
        if limit == 0 {
            return Ok(());
        }
        let mut map = self.windows.lock().unwrap_or_else(|e| e.into_inner());
        if map.len() >= SWEEP_AT {
            let window = self.window;
            map.retain(|_, w| now < w.start + window);
        }
        let w = map.entry(key.to_owned()).or_insert(Window {
            start: now,
            count: 0,
        });
        if now >= w.start + self.window || now < w.start {
            *w = Window {
                start: now,
                count: 0,
            };
        }
        if w.count >= limit {
            let left = (w.start + self.window - now).num_milliseconds();
            // Round up: "retry after 0 seconds" would invite an immediate retry that fails.
            let secs = u64::try_from((left + 999) / 1000).unwrap_or(1).max(1);
            return Err(Limited {
                retry_after_secs: secs,
            });
        }
        w.count += 1;
        Ok(())
    }
}

/// The limiters of one app.
#[derive(Debug)]
pub struct RateLimits {
    pub by_address: RateLimiter,
    pub by_account: RateLimiter,
}

impl Default for RateLimits {
    fn default() -> Self {
        Self {
            by_address: RateLimiter::new(Duration::minutes(1)),
            by_account: RateLimiter::new(Duration::minutes(1)),
        }
    }
}

/// Marks a request whose address has been counted.
#[derive(Debug, Clone, Copy)]
struct AddressCounted;

/// The client address of a request, when the server was started with connect info.
pub fn client_addr(ext: &Extensions) -> Option<SocketAddr> {
    ext.get::<ConnectInfo<SocketAddr>>().map(|c| c.0)
}

/// Count the request against its client address, once per request.
pub fn check_address(app: &App, ext: &mut Extensions) -> Result<(), Limited> {
    if ext.get::<AddressCounted>().is_some() {
        return Ok(());
    }
    ext.insert(AddressCounted);
    let key = client_addr(ext).map_or_else(|| "unknown".to_owned(), |a| a.ip().to_string());
    app.limits.by_address.check(
        &key,
        app.config.server.rate_per_minute_per_address,
        app.clock.now(),
    )
}

/// Count a sign-in attempt against an account or phone key (`login:<username>`,
/// `code:<phone index>`).
pub fn check_account(app: &App, key: &str) -> Result<(), Limited> {
    app.limits.by_account.check(
        key,
        app.config.auth.rate_per_minute_per_account,
        app.clock.now(),
    )
}

/// Middleware: the per-address limit for every route.
pub async fn by_address(State(app): State<App>, mut req: Request, next: Next) -> Response {
    match check_address(&app, req.extensions_mut()) {
        Ok(()) => next.run(req).await,
        Err(l) => crate::http::guard::AuthError::from(l).into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(secs: i64) -> DateTime<Utc> {
        DateTime::<Utc>::from_timestamp(1_800_000_000 + secs, 0).unwrap_or_default()
    }

    #[test]
    fn fixed_window_per_key() {
        let l = RateLimiter::new(Duration::minutes(1));
        for _ in 0..3 {
            assert_eq!(l.check("a", 3, t(0)), Ok(()));
        }
        assert_eq!(
            l.check("a", 3, t(20)),
            Err(Limited {
                retry_after_secs: 40
            })
        );
        assert_eq!(l.check("b", 3, t(20)), Ok(()), "keys are independent");
        assert_eq!(l.check("a", 3, t(60)), Ok(()), "a new window opens");
        assert_eq!(l.check("a", 0, t(60)), Ok(()), "0 is no limit");
    }

    #[test]
    fn retry_after_rounds_up() {
        let l = RateLimiter::new(Duration::minutes(1));
        assert_eq!(l.check("a", 1, t(0)), Ok(()));
        let at = t(59) + Duration::milliseconds(500);
        assert_eq!(
            l.check("a", 1, at),
            Err(Limited {
                retry_after_secs: 1
            })
        );
    }
}
