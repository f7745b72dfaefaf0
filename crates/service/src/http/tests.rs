use axum::body::Body;
use http::{Request, StatusCode};
use http_body_util::BodyExt;
use tower::ServiceExt;

use super::*;

fn app() -> (Router, HttpState) {
    let state = HttpState::new(Readiness::default(), Metrics::new());
    (router(state.clone(), Router::new()), state)
}

async fn get(router: &Router, path: &str) -> (StatusCode, http::HeaderMap, String) {
    let resp = router
        .clone()
        .oneshot(Request::get(path).body(Body::empty()).unwrap())
        .await
        .unwrap();
    let status = resp.status();
    let headers = resp.headers().clone();
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    (status, headers, String::from_utf8(body.to_vec()).unwrap())
}

#[tokio::test]
async fn healthz_answers_while_the_process_lives() {
    let (router, _) = app();
    let (status, headers, body) = get(&router, "/healthz").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, "ok\n");
    assert!(
        headers.contains_key("x-request-id"),
        "request id is propagated"
    );
}

#[tokio::test]
async fn readyz_is_503_until_the_service_reports_ready() {
    let (router, state) = app();
    let (status, _, body) = get(&router, "/readyz").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(body.contains("not ready"));
    state.readiness.set(true);
    assert_eq!(get(&router, "/readyz").await.0, StatusCode::OK);
    state.readiness.set(false);
    assert_eq!(
        get(&router, "/readyz").await.0,
        StatusCode::SERVICE_UNAVAILABLE
    );
}

#[tokio::test]
async fn metrics_expose_build_info_process_and_http_families() {
    let (router, _) = app();
    get(&router, "/healthz").await;
    get(&router, "/no/such/route").await;
    let (status, headers, body) = get(&router, "/metrics").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        headers[http::header::CONTENT_TYPE],
        "text/plain; version=0.0.4; charset=utf-8"
    );
    // Snapshot of the metric families (names, help, types): values vary per run.
    let families: Vec<&str> = body.lines().filter(|l| l.starts_with("# ")).collect();
    insta::assert_snapshot!(families.join("\n"));
    assert!(body.contains(&format!(
        "teleport_mattermost_build_info{{git_ref=\"{}\",rustc=\"{}\",version=\"{}\"}} 1",
        crate::version::GIT_REF.unwrap_or(""),
        crate::version::RUSTC,
        crate::version::VERSION
    )));
    assert!(body.contains(
        "teleport_mattermost_http_requests_total{method=\"GET\",route=\"/healthz\",status=\"200\"} 1"
    ));
    // Unmatched paths share one label value, so scanners cannot inflate cardinality.
    assert!(body.contains("route=\"unmatched\",status=\"404\""));
    assert!(body.contains("process_resident_memory_bytes"));
    assert!(body.contains("process_open_fds"));
}

#[tokio::test]
async fn bodies_over_the_limit_are_refused() {
    let (_, state) = app();
    let extra = Router::new().route(
        "/echo",
        axum::routing::post(|b: axum::body::Bytes| async move { b.len().to_string() }),
    );
    let router = router(state, extra);
    let big = vec![b'x'; BODY_LIMIT + 1];
    let resp = router
        .clone()
        .oneshot(Request::post("/echo").body(Body::from(big)).unwrap())
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::PAYLOAD_TOO_LARGE);
    let resp = router
        .oneshot(Request::post("/echo").body(Body::from("small")).unwrap())
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
}
