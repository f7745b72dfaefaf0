//! The fault switchboard (fail the next N calls, fail a share of calls with a seeded RNG, slow
//! answers down) and Mattermost's optional rate limiter (a token bucket with `X-RateLimit-*`
//! headers and a plain-text 429).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::{Method, StatusCode};
use axum::response::Response;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tokio::time::Instant;

use super::errors::{ApiError, limit_exceeded};

/// Which requests a fault applies to: a method (or any) and a path prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteFilter {
    pub method: Option<Method>,
    pub path_prefix: String,
}

impl RouteFilter {
    /// `RouteFilter::new("POST", "/api/v4/posts")`.
    pub fn new(method: &str, path_prefix: &str) -> Self {
        Self {
            method: Method::from_bytes(method.as_bytes()).ok(),
            path_prefix: path_prefix.into(),
        }
    }

    pub fn any_method(path_prefix: &str) -> Self {
        Self {
            method: None,
            path_prefix: path_prefix.into(),
        }
    }

    fn matches(&self, method: &Method, path: &str) -> bool {
        self.method.as_ref().is_none_or(|m| m == method) && path.starts_with(&self.path_prefix)
    }
}

/// What a rule does to a request it matches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// Answer with this status before the request is processed: a 5xx with an AppError body,
    /// a 429 like the rate limiter's (`Retry-After: 1`).
    Status(u16),
    /// A 429 asking to wait this many seconds.
    RateLimited { retry_after_secs: u64 },
    /// Process the request, then hold the answer back this long (a slow server or network: a
    /// client that times out meanwhile still changed the state).
    Delay(Duration),
}

struct Rule {
    route: Option<RouteFilter>,
    /// `None`: forever.
    remaining: Option<u32>,
    fault: Fault,
}

struct ErrorRate {
    probability: f64,
    status: u16,
    rng: StdRng,
}

/// Mattermost's limiter: `per_sec` tokens a second, at most `max_burst` stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    pub per_sec: u32,
    pub max_burst: u32,
}

struct Bucket {
    limit: RateLimit,
    tokens: f64,
    last: Instant,
}

#[derive(Default)]
struct State {
    rules: Vec<Rule>,
    latency: Duration,
    error_rate: Option<ErrorRate>,
    bucket: Option<Bucket>,
}

/// The switchboard; cheap to clone, shared with the running simulator.
#[derive(Clone, Default)]
pub struct Faults {
    state: Arc<Mutex<State>>,
}

/// What to do with one request.
pub(crate) struct Decision {
    pub reject: Option<Response>,
    pub delay: Duration,
    /// Rate-limit headers for an accepted request: (limit, remaining, reset seconds).
    pub rate_headers: Option<(u64, u64, u64)>,
}

impl Faults {
    fn with<T>(&self, f: impl FnOnce(&mut State) -> T) -> T {
        f(&mut self.state.lock().expect("fault state poisoned"))
    }

    fn push(&self, route: Option<RouteFilter>, remaining: Option<u32>, fault: Fault) {
        self.with(|s| {
            s.rules.push(Rule {
                route,
                remaining,
                fault,
            })
        });
    }

    /// The next `n` requests (any route) get `status`.
    pub fn fail_next(&self, n: u32, status: u16) {
        self.push(None, Some(n), Fault::Status(status));
    }

    /// The next `n` requests matching `route` get `status`.
    pub fn fail_next_on(&self, route: RouteFilter, n: u32, status: u16) {
        self.push(Some(route), Some(n), Fault::Status(status));
    }

    /// Every request matching `route` (or all) gets `status` until [`Faults::clear`].
    pub fn fail_always(&self, route: Option<RouteFilter>, status: u16) {
        self.push(route, None, Fault::Status(status));
    }

    /// The next `n` matching requests get a 429 asking to wait `retry_after_secs`.
    pub fn rate_limit_next(&self, route: Option<RouteFilter>, n: u32, retry_after_secs: u64) {
        self.push(route, Some(n), Fault::RateLimited { retry_after_secs });
    }

    /// The next `n` matching requests are answered `delay` late (after being processed).
    pub fn delay_next(&self, route: Option<RouteFilter>, n: u32, delay: Duration) {
        self.push(route, Some(n), Fault::Delay(delay));
    }

    /// Every answer is `latency` late.
    pub fn set_latency(&self, latency: Duration) {
        self.with(|s| s.latency = latency);
    }

    /// `percent` % of requests (drawn from an RNG seeded with `seed`) get `status`.
    pub fn set_error_rate(&self, percent: f64, status: u16, seed: u64) {
        self.with(|s| {
            s.error_rate = Some(ErrorRate {
                probability: (percent / 100.0).clamp(0.0, 1.0),
                status,
                rng: StdRng::seed_from_u64(seed),
            })
        });
    }

    /// Turns the rate limiter on (or off with `None`), with a full bucket.
    pub fn set_rate_limit(&self, limit: Option<RateLimit>) {
        self.with(|s| {
            s.bucket = limit.map(|limit| Bucket {
                limit,
                tokens: f64::from(limit.max_burst),
                last: Instant::now(),
            })
        });
    }

    /// Removes every rule, latency and error rate (the rate limiter stays as configured).
    pub fn clear(&self) {
        self.with(|s| {
            s.rules.clear();
            s.latency = Duration::ZERO;
            s.error_rate = None;
        });
    }

    pub(crate) fn decide(&self, method: &Method, path: &str) -> Decision {
        self.with(|s| {
            let mut decision = Decision {
                reject: None,
                delay: s.latency,
                rate_headers: None,
            };
            let rule = s.rules.iter_mut().find(|r| {
                r.remaining != Some(0) && r.route.as_ref().is_none_or(|f| f.matches(method, path))
            });
            if let Some(rule) = rule {
                if let Some(n) = rule.remaining.as_mut() {
                    *n -= 1;
                }
                match rule.fault {
                    Fault::Status(status) => decision.reject = Some(fault_response(status)),
                    Fault::RateLimited { retry_after_secs } => {
                        decision.reject =
                            Some(limit_exceeded(10, retry_after_secs, retry_after_secs))
                    }
                    Fault::Delay(d) => decision.delay += d,
                }
                s.rules.retain(|r| r.remaining != Some(0));
                if decision.reject.is_some() {
                    return decision;
                }
            }
            if let Some(rate) = s.error_rate.as_mut()
                && rate.rng.random::<f64>() < rate.probability
            {
                decision.reject = Some(fault_response(rate.status));
                return decision;
            }
            if let Some(bucket) = s.bucket.as_mut() {
                match bucket.take(Instant::now()) {
                    Ok(headers) => decision.rate_headers = Some(headers),
                    Err((limit, reset, retry_after)) => {
                        decision.reject = Some(limit_exceeded(limit, reset, retry_after))
                    }
                }
            }
            decision
        })
    }
}

impl Bucket {
    /// Ok: (limit, remaining, reset seconds); Err: (limit, reset, retry-after seconds).
    fn take(&mut self, now: Instant) -> Result<(u64, u64, u64), (u64, u64, u64)> {
        let rate = f64::from(self.limit.per_sec.max(1));
        let burst = f64::from(self.limit.max_burst.max(1));
        let elapsed = now.duration_since(self.last).as_secs_f64();
        self.tokens = (self.tokens + elapsed * rate).min(burst);
        self.last = now;
        let reset = |tokens: f64| ((burst - tokens) / rate).ceil() as u64;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            Ok((burst as u64, self.tokens.floor() as u64, reset(self.tokens)))
        } else {
            let retry_after = ((1.0 - self.tokens) / rate).ceil().max(1.0) as u64;
            Err((burst as u64, reset(self.tokens), retry_after))
        }
    }
}

fn fault_response(status: u16) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    if status == StatusCode::TOO_MANY_REQUESTS {
        return limit_exceeded(10, 1, 1);
    }
    axum::response::IntoResponse::into_response(ApiError::new(
        status,
        "app.sim.injected_fault.app_error",
        "We encountered an error (injected by the simulator's fault switchboard).",
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_apply_to_matching_routes_for_the_given_count() {
        let f = Faults::default();
        f.fail_next_on(RouteFilter::new("POST", "/api/v4/posts"), 2, 503);
        let get = f.decide(&Method::GET, "/api/v4/posts/x");
        assert!(get.reject.is_none());
        for _ in 0..2 {
            let r = f.decide(&Method::POST, "/api/v4/posts").reject.unwrap();
            assert_eq!(r.status(), 503);
        }
        assert!(f.decide(&Method::POST, "/api/v4/posts").reject.is_none());
    }

    #[test]
    fn a_seeded_error_rate_is_reproducible() {
        let run = || {
            let f = Faults::default();
            f.set_error_rate(10.0, 500, 42);
            (0..1000)
                .filter(|_| f.decide(&Method::GET, "/").reject.is_some())
                .count()
        };
        let n = run();
        assert_eq!(n, run());
        assert!((50..150).contains(&n), "{n}");
    }

    #[tokio::test(start_paused = true)]
    async fn the_rate_limiter_refuses_past_the_burst_and_refills() {
        let f = Faults::default();
        f.set_rate_limit(Some(RateLimit {
            per_sec: 10,
            max_burst: 2,
        }));
        assert_eq!(f.decide(&Method::GET, "/").rate_headers, Some((2, 1, 1)));
        assert!(f.decide(&Method::GET, "/").reject.is_none());
        let refused = f.decide(&Method::GET, "/").reject.unwrap();
        assert_eq!(refused.status(), 429);
        assert_eq!(refused.headers()["retry-after"], "1");
        tokio::time::advance(Duration::from_millis(150)).await;
        assert!(f.decide(&Method::GET, "/").reject.is_none());
    }
}
