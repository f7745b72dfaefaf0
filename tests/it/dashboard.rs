//! The Grafana dashboard (`deploy/grafana/teleport-mattermost.json`) and the Prometheus alerts
//! (`deploy/prometheus/alerts.yaml`) query only metrics the service exports: a running service
//! is driven through every path that creates a labelled series (a post, a 429 retried, a review
//! from chat, a refused callback), `/metrics` is scraped over HTTP, and every metric name the
//! panels and rules reference must be in it. A renamed or removed metric fails here instead of
//! leaving an empty panel or an alert that can never fire.

use std::collections::BTreeSet;
use std::path::Path;

use serde_json::{Value, json};
use teleport_mattermost_sim::mattermost::RouteFilter;
use teleport_mattermost_sim::teleport::fixtures::{REQUESTER, REVIEWER1};

use crate::harness::{WAIT, World};
use crate::review::{answer, raw_click, request, root_with_buttons, slash};

const DASHBOARD: &str = "deploy/grafana/teleport-mattermost.json";
const ALERTS: &str = "deploy/prometheus/alerts.yaml";
/// Series a histogram family `name` exposes besides its `# TYPE` name.
const HISTOGRAM_SUFFIXES: [&str; 3] = ["_bucket", "_sum", "_count"];

#[tokio::test]
async fn every_metric_the_dashboard_and_the_alerts_query_is_exported() {
    let w = World::start().await;
    // The first post is answered 500 once, so the retry family has a series (a 429 is not a
    // retry: it is counted as throttling).
    w.mm.faults()
        .fail_next_on(RouteFilter::new("POST", "/api/v4/posts"), 1, 500);
    let svc = w.review_service().await;
    let id = request(&w, REQUESTER, 1);
    let post = root_with_buttons(&w, &id).await;
    let text = answer(&slash(&w, &svc, REVIEWER1, &format!("approve {id}")).await);
    assert_eq!(
        w.tp.review_audit().len(),
        1,
        "the review went through: {text}"
    );
    let (status, _) = raw_click(&svc, &w, &post, REVIEWER1, json!({"request_id": id})).await;
    assert_eq!(status, 401, "an unsigned click is refused");
    w.data_when(&id, |d| d.reviews_count == 1).await;

    let scraped = reqwest::Client::new()
        .get(format!("http://{}/metrics", svc.addr))
        .timeout(WAIT)
        .send()
        .await
        .expect("/metrics answers")
        .text()
        .await
        .unwrap();
    let exported = exported_names(&scraped);
    assert!(
        exported.contains("teleport_mattermost_mattermost_retries_total"),
        "the scenario did not produce a retry: {scraped}"
    );

    let mut missing = Vec::new();
    let mut queried = BTreeSet::new();
    for (place, expr) in dashboard_queries(&read(DASHBOARD)) {
        let names = metric_names(&expr);
        if !place.starts_with("variable") {
            assert!(!names.is_empty(), "{place} queries no metric: {expr}");
        }
        for name in names {
            if !exported.contains(&name) {
                missing.push(format!("{DASHBOARD}: {place} queries {name}"));
            }
            queried.insert(name);
        }
    }
    for (line, text) in read(ALERTS).lines().enumerate() {
        if text.trim_start().starts_with('#') {
            continue;
        }
        for name in metric_names(text) {
            if !exported.contains(&name) {
                missing.push(format!("{ALERTS}:{}: {name}", line + 1));
            }
            queried.insert(name);
        }
    }
    assert!(
        missing.is_empty(),
        "queried but not exported by the service:\n  {}\nexported: {exported:#?}",
        missing.join("\n  ")
    );
    // The pictures cover what operators look at first.
    for family in [
        "teleport_mattermost_watch_up",
        "teleport_mattermost_events_total",
        "teleport_mattermost_posts_total",
        "teleport_mattermost_event_duration_seconds_bucket",
        "teleport_mattermost_cas_conflicts_total",
        "teleport_mattermost_mattermost_retries_total",
        "teleport_mattermost_reviews_total",
        "teleport_mattermost_callbacks_refused_total",
    ] {
        assert!(queried.contains(family), "nothing queries {family}");
    }
    svc.stop().await.unwrap();
}

fn read(path: &str) -> String {
    let full = Path::new(env!("CARGO_MANIFEST_DIR")).join(path);
    std::fs::read_to_string(&full).unwrap_or_else(|e| panic!("{}: {e}", full.display()))
}

/// Every series name a scrape can hold: each `# TYPE` family, and for a histogram (or
/// summary) the `_bucket`/`_sum`/`_count` series it is queried by.
fn exported_names(scrape: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for line in scrape.lines() {
        let mut words = line.split_whitespace();
        if let (Some("#"), Some("TYPE"), Some(name), Some(kind)) =
            (words.next(), words.next(), words.next(), words.next())
        {
            if matches!(kind, "histogram" | "summary") {
                for suffix in HISTOGRAM_SUFFIXES {
                    names.insert(format!("{name}{suffix}"));
                }
            }
            names.insert(name.to_string());
        }
    }
    names
}

/// (where, PromQL) for every panel target and every query variable of a Grafana dashboard,
/// rows' nested panels included.
fn dashboard_queries(json_text: &str) -> Vec<(String, String)> {
    let dash: Value = serde_json::from_str(json_text).expect("the dashboard is JSON");
    let mut out = Vec::new();
    let mut panels: Vec<&Value> = dash["panels"].as_array().expect("panels").iter().collect();
    while let Some(p) = panels.pop() {
        if let Some(nested) = p["panels"].as_array() {
            panels.extend(nested);
        }
        if p["type"] == "row" {
            continue;
        }
        let title = p["title"].as_str().unwrap_or("?");
        let targets = p["targets"].as_array().map(Vec::as_slice).unwrap_or(&[]);
        assert!(!targets.is_empty(), "panel {title:?} has no query");
        for t in targets {
            let expr = t["expr"].as_str().unwrap_or_default();
            out.push((format!("panel {title:?}"), expr.to_string()));
        }
    }
    for v in dash["templating"]["list"].as_array().into_iter().flatten() {
        if v["type"] == "query" {
            let q = v["query"]["query"].as_str().or(v["query"].as_str());
            out.push((
                format!("variable {}", v["name"]),
                q.unwrap_or_default().to_string(),
            ));
        }
    }
    out
}

/// The metric names a PromQL expression (or any text) mentions: identifiers of the service's
/// own families and of the process collector. Label values are quoted and never match.
fn metric_names(text: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let mut rest = text;
    while !rest.is_empty() {
        let start = rest
            .find(|c: char| c.is_ascii_alphanumeric() || c == '_' || c == ':' || c == '"')
            .unwrap_or(rest.len());
        rest = &rest[start..];
        if let Some(quoted) = rest.strip_prefix('"') {
            // Skip a string literal (label values, legend text).
            rest = quoted.find('"').map_or("", |end| &quoted[end + 1..]);
            continue;
        }
        let end = rest
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
            .unwrap_or(rest.len());
        let word = &rest[..end];
        if word.starts_with("teleport_mattermost_") || word.starts_with("process_") {
            names.insert(word.to_string());
        }
        rest = &rest[end..];
    }
    names
}

#[test]
fn metric_names_skip_label_values_and_functions() {
    let names = metric_names(
        r#"histogram_quantile(0.95, sum by (le) (rate(teleport_mattermost_x_bucket{job=~"teleport_mattermost_y", a!="b"}[5m]))) / process_open_fds"#,
    );
    let names: Vec<String> = names.into_iter().collect();
    assert_eq!(names, ["process_open_fds", "teleport_mattermost_x_bucket"]);
    let scrape = "# HELP h x\n# TYPE h histogram\nh_bucket{le=\"1\"} 0\n# TYPE c counter\nc 1\n";
    let names: Vec<String> = exported_names(scrape).into_iter().collect();
    assert_eq!(names, ["c", "h", "h_bucket", "h_count", "h_sum"]);
}
