//! The fault switchboard (fail the next N calls, fail a share of calls with a seeded RNG, slow
//! answers down) and the switch of Mattermost's optional rate limiter (`ratelimit.rs`).

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::Response;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tokio::time::Instant;

use super::errors::{ApiError, limit_exceeded};
use super::ratelimit::{Limiter, RateLimit, Verdict};

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

#[derive(Default)]
struct State {
    rules: Vec<Rule>,
    latency: Duration,
    error_rate: Option<ErrorRate>,
    limiter: Option<Limiter>,
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

    /// Turns Mattermost's rate limiter on (`RateLimit::default()` is the server's default
    /// limit) or off with `None`; every client starts with its full allowance.
    pub fn set_rate_limit(&self, limit: Option<RateLimit>) {
        self.with(|s| s.limiter = limit.map(Limiter::new));
    }

    /// The rate limiter's verdict on a request (`None` while it is off). The server checks it
    /// before anything else, so a refused request never reaches the fault rules.
    pub(crate) fn rate_limit(
        &self,
        remote: Option<SocketAddr>,
        headers: &HeaderMap,
        query: &str,
    ) -> Option<Verdict> {
        self.with(|s| {
            let limiter = s.limiter.as_mut()?;
            let key = limiter.key(remote, headers, query);
            Some(limiter.check(&key, Instant::now()))
        })
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
                        decision.reject = Some(limit_exceeded(&Verdict::injected(retry_after_secs)))
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
            decision
        })
    }
}

fn fault_response(status: u16) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    if status == StatusCode::TOO_MANY_REQUESTS {
        return limit_exceeded(&Verdict::injected(1));
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
}
