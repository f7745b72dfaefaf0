#!/usr/bin/env bash
# Checks the monitoring files with Prometheus' own tool (promtool, from Debian's `prometheus`
# package):
#   1. `promtool check rules` on deploy/prometheus/alerts.yaml (syntax, PromQL, templates);
#   2. `promtool test rules` on deploy/prometheus/alerts.test.yaml (each alert fires on the
#      series it is meant for and stays quiet on a healthy service);
#   3. `promtool check metrics` on a live /metrics: the service from `teleport-mattermost demo
#      --keep-running` (the simulators and the real service, after the demo's story has posted,
#      reviewed and expired requests, so the labelled families have samples).
# That the dashboard and the rules query only exported names is the integration test
# `dashboard` (cargo test --test it dashboard).
set -euo pipefail
cd "$(dirname "$0")/.."

fail() {
    echo "✘ promtool-check: $*" >&2
    exit 1
}

if ! command -v promtool >/dev/null 2>&1; then
    echo "installing prometheus (promtool) from Debian"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus >/dev/null ||
        fail "cannot install prometheus"
fi
echo "promtool: $(promtool --version 2>&1 | head -1)"

echo "== promtool check rules"
promtool check rules deploy/prometheus/alerts.yaml || fail "deploy/prometheus/alerts.yaml"

echo "== promtool test rules"
promtool test rules deploy/prometheus/alerts.test.yaml || fail "deploy/prometheus/alerts.test.yaml"

echo "== promtool check metrics on a live /metrics (teleport-mattermost demo --keep-running)"
cargo build --locked --quiet --bin teleport-mattermost
BIN=${CARGO_TARGET_DIR:-target}/debug/teleport-mattermost
WORK=$(mktemp -d)
"$BIN" demo --keep-running >"$WORK/demo.log" 2>&1 &
demo=$!
cleanup() {
    kill -INT "$demo" 2>/dev/null || true
    wait "$demo" 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT
url=""
for _ in $(seq 600); do
    # "  service     http://127.0.0.1:PORT  (/healthz, /readyz, /metrics)", once the story is told.
    url=$(sed -n 's#^ *service  *\(http://[^ ]*\) .*/metrics.*#\1#p' "$WORK/demo.log" | head -1)
    [[ -n "$url" ]] && break
    kill -0 "$demo" 2>/dev/null || { cat "$WORK/demo.log"; fail "the demo ended before it was ready"; }
    sleep 0.1
done
[[ -n "$url" ]] || { cat "$WORK/demo.log"; fail "the demo printed no service address within 60 s"; }
curl -fsS -m 5 "$url/metrics" >"$WORK/metrics.txt" || fail "GET $url/metrics"
families=$(grep -c '^# TYPE ' "$WORK/metrics.txt")
if ! promtool check metrics <"$WORK/metrics.txt" >"$WORK/promtool.log" 2>&1; then
    cat "$WORK/promtool.log"
    fail "promtool check metrics found problems in $url/metrics"
fi
echo "✔ promtool check metrics: $url/metrics, $families families, no problem"
echo "✔ promtool-check: rules checked and tested, live metrics linted"
