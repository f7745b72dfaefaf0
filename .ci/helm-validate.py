#!/usr/bin/env python3
"""Checks one `helm template` rendering of the teleport-mattermost chart against the values it
was rendered from, then (with --binary) runs the pod it describes the way a kubelet would: the
rendered ConfigMap and Secrets written out as volume files with their modes and fsGroup, the
container's command, env and user, in an otherwise empty root file system and a private network
namespace, probed on the ports and paths the Deployment declares.

Usage: helm-validate.py RENDERED.yaml --values CHART/values.yaml [--values OVERRIDES.yaml]
                        [--binary STATIC_BINARY] [--expect-check-failure TEXT]
Prints one line per check; exits 1 on the first failure.
"""

import argparse
import base64
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import tomllib
import urllib.error
import urllib.request

import yaml

IDENTITY_FIXTURE = "deploy/examples/auth_id"


def fail(msg):
    print(f"✘ {msg}", flush=True)
    sys.exit(1)


def ok(msg):
    print(f"✔ {msg}", flush=True)


def need(cond, msg):
    if not cond:
        fail(msg)
    ok(msg)


def merge(base, over):
    """Helm's values merge: maps merge key by key, anything else replaces."""
    out = dict(base)
    for k, v in (over or {}).items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = merge(out[k], v)
        else:
            out[k] = v
    return out


def load_values(paths):
    values = {}
    for p in paths:
        with open(p, encoding="utf-8") as f:
            values = merge(values, yaml.safe_load(f) or {})
    return values


def load_manifests(path):
    with open(path, encoding="utf-8") as f:
        docs = [d for d in yaml.safe_load_all(f) if d]
    by_kind = {}
    for d in docs:
        need("kind" in d and "apiVersion" in d and d.get("metadata", {}).get("name"),
             f"document {d.get('kind', '?')} has apiVersion, kind and metadata.name")
        by_kind.setdefault(d["kind"], []).append(d)
    return by_kind


def one(by_kind, kind):
    docs = by_kind.get(kind, [])
    need(len(docs) == 1, f"exactly one {kind} is rendered")
    return docs[0]


def subset(small, big):
    return all(big.get(k) == v for k, v in small.items())


class Pod:
    """The facts of the rendered Deployment that the checks and the emulation share."""

    def __init__(self, deployment):
        self.spec = deployment["spec"]["template"]["spec"]
        self.labels = deployment["spec"]["template"]["metadata"]["labels"]
        self.annotations = deployment["spec"]["template"]["metadata"].get("annotations") or {}
        containers = self.spec["containers"]
        need(len(containers) == 1, "the pod has one container")
        self.c = containers[0]
        self.argv = list(self.c.get("command") or []) + list(self.c.get("args") or [])
        self.volumes = {v["name"]: v for v in self.spec.get("volumes", [])}
        self.mounts = self.c.get("volumeMounts", [])
        self.env = {e["name"]: e.get("value") for e in self.c.get("env", [])}
        self.ports = {p["name"]: p["containerPort"] for p in self.c.get("ports", [])}
        psc = self.spec.get("securityContext") or {}
        csc = self.c.get("securityContext") or {}
        self.uid = csc.get("runAsUser", psc.get("runAsUser"))
        self.gid = csc.get("runAsGroup", psc.get("runAsGroup", self.uid))
        self.fs_group = psc.get("fsGroup")
        self.psc, self.csc = psc, csc

    def config_path(self):
        for flag in ("--config", "-c"):
            if flag in self.argv:
                return self.argv[self.argv.index(flag) + 1]
        fail(f"the container command passes no --config: {self.argv}")

    def mount_for(self, path):
        """(mount, file name inside the volume) serving `path`, or (None, None)."""
        for m in self.mounts:
            mp = m["mountPath"].rstrip("/")
            if m.get("subPath") and path == mp:
                return m, m["subPath"]
            if not m.get("subPath") and path.startswith(mp + "/"):
                return m, path[len(mp) + 1:]
        return None, None

    def port(self, ref):
        return self.ports[ref] if isinstance(ref, str) else ref


def secret_files(volume, secrets):
    """The files a secret or configMap volume shows: {relative path: bytes}."""
    items = (volume.get("secret") or volume.get("configMap") or {}).get("items")
    data = secrets(volume)
    if items:
        return {i["path"]: data[i["key"]] for i in items}
    return dict(data)


def check_rendering(by_kind, values):
    v = values
    fullname_cm = one(by_kind, "ConfigMap")
    dep = one(by_kind, "Deployment")
    svc = one(by_kind, "Service")
    pod = Pod(dep)

    # --- the TOML the service reads
    data = fullname_cm["data"]
    key = next(iter(data))
    toml_text = data[key]
    try:
        cfg = tomllib.loads(toml_text)
    except tomllib.TOMLDecodeError as e:
        fail(f"the rendered config is not valid TOML: {e}\n{toml_text}")
    ok("the rendered config parses as TOML")
    for section in ("teleport", "mattermost", "log", "http", "review"):
        need(section in cfg, f"[{section}] is present")
    t, mm = cfg["teleport"], cfg["mattermost"]
    need(t["addr"] == v["teleport"]["address"], f"teleport.addr = {t['addr']!r} (values teleport.address)")
    need(t.get("refresh_identity") is True, "teleport.refresh_identity = true")
    need(mm["url"] == v["mattermost"]["url"], f"mattermost.url = {mm['url']!r}")
    need(mm.get("recipients", []) == v["mattermost"]["recipients"],
         f"mattermost.recipients = {mm.get('recipients', [])!r} (values mattermost.recipients, quoting intact)")
    need(cfg.get("role_to_recipients", {}) == v["roleToRecipients"],
         f"role_to_recipients has {len(cfg.get('role_to_recipients', {}))} role(s), names and recipients intact")
    need(cfg["log"]["output"] == v["log"]["output"] and cfg["log"]["severity"] == v["log"]["severity"],
         f"[log] output={cfg['log']['output']!r} severity={cfg['log']['severity']!r}")
    listen = cfg["http"]["listen_addr"]
    listen_port = int(listen.rsplit(":", 1)[1])
    need(cfg["review"]["enabled"] == v["review"]["enabled"], f"review.enabled = {cfg['review']['enabled']}")
    if v["review"]["enabled"]:
        need(cfg["http"].get("public_addr") == v["review"]["publicAddr"], "http.public_addr = review.publicAddr")
        need(cfg["review"]["require_reason"] == v["review"]["requireReason"], "review.require_reason follows values")
    need(cfg["http"]["callback_allowed_sources"] == v["http"]["callbackAllowedSources"],
         "http.callback_allowed_sources follows values")

    # --- every path in the TOML is served by the right mount
    cmd_config = pod.config_path()
    m, name = pod.mount_for(cmd_config)
    need(m is not None and "configMap" in pod.volumes[m["name"]] and name == key,
         f"--config {cmd_config} is the ConfigMap's key {key!r}")
    m, name = pod.mount_for(t["identity"])
    need(m is not None, f"teleport.identity {t['identity']} is inside a mount")
    vol = pod.volumes[m["name"]]
    need(vol.get("secret", {}).get("secretName") == v["teleport"]["identitySecretName"]
         and name == v["teleport"]["identitySecretPath"],
         f"the identity path is key {name!r} of Secret {v['teleport']['identitySecretName']!r}")
    need(not m.get("subPath"), "the identity Secret is mounted as a directory (renewals reach the pod)")
    m, name = pod.mount_for(mm["token"])
    need(m is not None, f"mattermost.token {mm['token']} is a mounted file")
    vol = pod.volumes[m["name"]]
    token_secret = v["mattermost"]["tokenFromSecret"] or f"{dep['metadata']['name']}-secret"
    need(m["name"] == v["secretVolumeName"] and vol["secret"]["secretName"] == token_secret
         and name == v["mattermost"]["tokenSecretPath"],
         f"the token file is key {name!r} of Secret {token_secret!r} in volume {m['name']!r}")
    secrets = by_kind.get("Secret", [])
    if v["mattermost"]["tokenFromSecret"]:
        need(not secrets, "no Secret is created when mattermost.tokenFromSecret is set")
    else:
        s = one(by_kind, "Secret")
        need(s["metadata"]["name"] == token_secret
             and base64.b64decode(s["data"][name]).decode() == v["mattermost"]["token"],
             f"Secret {token_secret} holds mattermost.token under {name!r}")
    if v["review"]["enabled"]:
        for tkey, vkey in (("signing_secret", "signingSecretKey"), ("command_token", "commandTokenKey")):
            if tkey not in cfg["review"]:
                need(not v["review"][vkey], f"review.{tkey} is absent only when {vkey} is empty")
                continue
            m, name = pod.mount_for(cfg["review"][tkey])
            vol = pod.volumes[m["name"]] if m else {}
            items = {i["path"]: i["key"] for i in vol.get("secret", {}).get("items", [])}
            need(vol.get("secret", {}).get("secretName") == v["review"]["existingSecret"]
                 and items.get(name) == v["review"][vkey],
                 f"review.{tkey} is key {v['review'][vkey]!r} of Secret {v['review']['existingSecret']!r}")

    # --- ports, probes, metrics
    need(pod.ports.get("http") == listen_port, f"container port 'http' = {listen_port} = [http] listen_addr port")
    need(pod.c["livenessProbe"]["httpGet"]["path"] == "/healthz", "liveness probe: GET /healthz")
    need(pod.c["readinessProbe"]["httpGet"]["path"] == "/readyz", "readiness probe: GET /readyz")
    for probe in ("livenessProbe", "readinessProbe"):
        need(pod.port(pod.c[probe]["httpGet"]["port"]) == listen_port, f"{probe} targets port {listen_port}")
    sp = svc["spec"]["ports"][0]
    need(sp["name"] == "http" and pod.port(sp["targetPort"]) == listen_port, "Service port 'http' targets the listener")
    need(subset(svc["spec"]["selector"], pod.labels), "Service selector matches the pod labels")
    if v["metrics"]["scrapeAnnotations"]:
        need(pod.annotations.get("prometheus.io/scrape") == "true"
             and int(pod.annotations["prometheus.io/port"]) == listen_port
             and pod.annotations["prometheus.io/path"] == "/metrics",
             "Prometheus scrape annotations point at /metrics on the listener")
    sms = by_kind.get("ServiceMonitor", [])
    need(bool(sms) == bool(v["serviceMonitor"]["enabled"]), f"ServiceMonitor rendered: {bool(sms)}")
    for sm in sms:
        ep = sm["spec"]["endpoints"][0]
        need(ep["port"] == "http" and ep["path"] == "/metrics"
             and subset(sm["spec"]["selector"]["matchLabels"], svc["metadata"]["labels"]),
             "ServiceMonitor selects the Service and scrapes http /metrics")

    prs = by_kind.get("PrometheusRule", [])
    need(bool(prs) == bool(v["prometheusRule"]["enabled"]), f"PrometheusRule rendered: {bool(prs)}")
    for pr in prs:
        need(subset(v["prometheusRule"]["labels"], pr["metadata"]["labels"])
             and pr["spec"]["groups"] and all(g["rules"] for g in pr["spec"]["groups"]),
             f"PrometheusRule has prometheusRule.labels and {sum(len(g['rules']) for g in pr['spec']['groups'])} rules")

    # --- replicas and disruption budget
    replicas = dep["spec"]["replicas"]
    need(replicas == v["replicaCount"], f"replicas = {replicas}")
    pdbs = by_kind.get("PodDisruptionBudget", [])
    want_pdb = v["podDisruptionBudget"]["enabled"] and replicas > 1
    need(bool(pdbs) == bool(want_pdb), f"PodDisruptionBudget rendered: {bool(pdbs)}")
    for pdb in pdbs:
        need(pdb["spec"]["minAvailable"] == v["podDisruptionBudget"]["minAvailable"]
             and subset(pdb["spec"]["selector"]["matchLabels"], pod.labels),
             f"PodDisruptionBudget minAvailable {pdb['spec']['minAvailable']} selects the pods")
    need(subset(dep["spec"]["selector"]["matchLabels"], pod.labels), "Deployment selector matches its pods")

    # --- hardening and environment
    csc = pod.csc
    need(csc.get("readOnlyRootFilesystem") is True, "readOnlyRootFilesystem")
    need(csc.get("allowPrivilegeEscalation") is False, "allowPrivilegeEscalation: false")
    need(csc.get("capabilities", {}).get("drop") == ["ALL"], "capabilities drop ALL")
    need(pod.uid == 65532 and (csc.get("runAsNonRoot") or pod.psc.get("runAsNonRoot")), "runs as non-root 65532")
    need((csc.get("seccompProfile") or pod.psc.get("seccompProfile", {})).get("type") == "RuntimeDefault",
         "seccomp RuntimeDefault")
    need(pod.spec.get("automountServiceAccountToken") is False, "no service account token mounted")
    need(pod.env.get("TELEPORT_PLUGIN_FAIL_FAST") == str(v["failFast"]).lower(),
         f"TELEPORT_PLUGIN_FAIL_FAST={pod.env.get('TELEPORT_PLUGIN_FAIL_FAST')}")
    # The service's shutdown deadline is 15 s: the kubelet must not kill it first.
    grace = pod.spec.get("terminationGracePeriodSeconds", 30)
    need(grace > 15, f"terminationGracePeriodSeconds {grace} > the service's 15 s shutdown deadline")
    need(len(pod.annotations.get("checksum/config", "")) == 64, "checksum/config annotation rolls pods on config change")
    for name, vol in pod.volumes.items():
        if "secret" in vol:
            mode = vol["secret"].get("defaultMode", 0o644)
            need(mode & 0o007 == 0, f"volume {name}: secret files are not world-readable (mode {mode:o})")
    return pod, by_kind


# ----------------------------------------------------------------------------------------------
# Emulation of the kubelet and the container runtime.

def fixture_secret(values, volume):
    """Data of Secrets the chart expects to exist (the user creates them)."""
    name = volume["secret"]["secretName"]
    v = values
    if name == v["teleport"]["identitySecretName"]:
        with open(IDENTITY_FIXTURE, "rb") as f:
            return {v["teleport"]["identitySecretPath"]: f.read()}
    if name == v["mattermost"]["tokenFromSecret"]:
        return {v["mattermost"]["tokenSecretPath"]: b"fixture-mattermost-token\n"}
    if name == v["review"]["existingSecret"]:
        return {v["review"]["signingSecretKey"]: b"0123456789abcdef" * 4 + b"\n",
                v["review"]["commandTokenKey"] or "unused": b"fixturecommandtoken1234567\n"}
    fail(f"no fixture for Secret {name!r}")


def write_volume(root, pod, mount, files, mode):
    """Writes a volume as the kubelet does: files in a timestamped dir behind ..data symlinks,
    group-owned by fsGroup with the read-only mask 0440 added; a subPath mounts one file."""
    target = root + mount["mountPath"]
    gid = pod.fs_group if pod.fs_group is not None else 0
    if pod.fs_group is not None:
        mode |= 0o440
    if mount.get("subPath"):
        os.makedirs(os.path.dirname(target), exist_ok=True)
        with open(target, "wb") as f:
            f.write(files[mount["subPath"]])
        os.chown(target, 0, gid)
        os.chmod(target, mode)
        return
    stamp = os.path.join(target, "..2026_01_01_00_00_00.000000001")
    os.makedirs(stamp)
    for rel, content in files.items():
        path = os.path.join(stamp, rel)
        with open(path, "wb") as f:
            f.write(content)
        os.chown(path, 0, gid)
        os.chmod(path, mode)
        os.symlink(os.path.join("..data", rel), os.path.join(target, rel))
    os.symlink(os.path.basename(stamp), os.path.join(target, "..data"))
    for d in (target, stamp):
        os.chown(d, 0, gid)
        os.chmod(d, 0o2755 if pod.fs_group is not None else 0o755)


def build_root(pod, by_kind, values, binary, root):
    exe = pod.argv[0]
    os.makedirs(os.path.dirname(root + exe))
    shutil.copy2(binary, root + exe)
    os.makedirs(root + "/etc/ssl/certs")
    shutil.copy2("/etc/ssl/certs/ca-certificates.crt", root + "/etc/ssl/certs/ca-certificates.crt")
    configmaps = {c["metadata"]["name"]: c for c in by_kind.get("ConfigMap", [])}
    secrets = {s["metadata"]["name"]: s for s in by_kind.get("Secret", [])}

    def data_of(volume):
        if "configMap" in volume:
            return {k: s.encode() for k, s in configmaps[volume["configMap"]["name"]]["data"].items()}
        name = volume["secret"]["secretName"]
        if name in secrets:
            return {k: base64.b64decode(s) for k, s in secrets[name]["data"].items()}
        return fixture_secret(values, volume)

    for m in pod.mounts:
        vol = pod.volumes[m["name"]]
        src = vol.get("configMap") or vol.get("secret")
        mode = src.get("defaultMode", 0o644)
        write_volume(root, pod, m, secret_files(vol, data_of), mode)


def run_as(pod, root):
    chroot = shutil.which("chroot")
    groups = [str(pod.fs_group)] if pod.fs_group is not None else []
    return [chroot, f"--userspec={pod.uid}:{pod.gid}"] + (
        [f"--groups={','.join(groups)}"] if groups else []) + [root]


def http_get(url):
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(url, timeout=2) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def inner(spec):
    """Runs inside the private network namespace: start the container, probe it, stop it."""
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
    env = {k: v for k, v in spec["env"].items() if v is not None}
    env["PATH"] = "/usr/local/bin:/usr/bin:/bin"
    log = open(spec["log"], "wb")
    proc = subprocess.Popen(spec["cmd"], env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        probe_container(spec, proc)
    finally:
        if proc.poll() is None:  # a failed check never leaves the container running
            proc.kill()
            proc.wait()


def probe_container(spec, proc):
    def show_log():
        with open(spec["log"], encoding="utf-8", errors="replace") as f:
            return f.read()[-3000:]

    base = f"http://127.0.0.1:{spec['port']}"
    deadline = time.monotonic() + 10
    while True:
        if proc.poll() is not None:
            fail(f"the container exited ({proc.returncode}) before answering its liveness probe:\n{show_log()}")
        try:
            status, _ = http_get(base + spec["liveness"])
            if status == 200:
                break
        except OSError:
            pass
        if time.monotonic() > deadline:
            proc.kill()
            fail(f"no answer on the liveness probe {spec['liveness']} within 10 s:\n{show_log()}")
        time.sleep(0.1)
    ok(f"liveness probe GET {spec['liveness']} on port {spec['port']}: 200")
    status, body = http_get(base + spec["readiness"])
    need(status in (200, 503), f"readiness probe GET {spec['readiness']}: {status} (503 until the Teleport watch is up)")
    status, body = http_get(f"http://127.0.0.1:{spec['metrics_port']}{spec['metrics_path']}")
    need(status == 200 and "# TYPE " in body, f"metrics GET {spec['metrics_path']}: 200, Prometheus text")
    t0 = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    try:
        rc = proc.wait(timeout=spec["grace"])
    except subprocess.TimeoutExpired:
        proc.kill()
        fail(f"still running {spec['grace']} s after SIGTERM (terminationGracePeriodSeconds)")
    need(rc == 0, f"SIGTERM: exit {rc} after {time.monotonic() - t0:.1f} s (grace {spec['grace']} s)")


def emulate(pod, by_kind, values, binary, expect_check_failure):
    if os.geteuid() != 0 or not shutil.which("chroot") or not shutil.which("unshare"):
        print("! pod emulation skipped: needs root, chroot and unshare", flush=True)
        return
    with tempfile.TemporaryDirectory() as tmp:
        root = os.path.join(tmp, "root")
        build_root(pod, by_kind, values, binary, root)
        ok(f"pod root laid out: {len(pod.mounts)} volume mounts, files group {pod.fs_group}, user {pod.uid}:{pod.gid}")
        config = pod.config_path()
        env = {k: v for k, v in pod.env.items() if v is not None}
        check = subprocess.run(run_as(pod, root) + [pod.argv[0], "check", "--offline", "--config", config],
                               env=env, capture_output=True, text=True)
        out = (check.stdout + check.stderr).strip()
        if expect_check_failure:
            need(check.returncode != 0 and expect_check_failure in out,
                 f"`check` in the pod fails as expected ({expect_check_failure!r})")
            print("  " + out.replace("\n", "\n  "))
            return
        if check.returncode != 0:
            fail(f"`teleport-mattermost check` in the pod refuses the rendered config:\n{out}")
        ok(f"`check` in the pod as {pod.uid}: {out.splitlines()[0]}")
        probe = pod.c["livenessProbe"]["httpGet"]
        spec = {
            "cmd": run_as(pod, root) + pod.argv,
            "env": env,
            "log": os.path.join(tmp, "container.log"),
            "port": pod.port(probe["port"]),
            "liveness": probe["path"],
            "readiness": pod.c["readinessProbe"]["httpGet"]["path"],
            "metrics_port": int(pod.annotations.get("prometheus.io/port", pod.port("http"))),
            "metrics_path": pod.annotations.get("prometheus.io/path", "/metrics"),
            "grace": pod.spec.get("terminationGracePeriodSeconds", 30),
        }
        r = subprocess.run(["unshare", "--net", sys.executable, __file__, "--inner", json.dumps(spec)])
        if r.returncode != 0:
            sys.exit(1)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("rendered", nargs="?")
    ap.add_argument("--values", action="append", default=[])
    ap.add_argument("--binary")
    ap.add_argument("--expect-check-failure")
    ap.add_argument("--inner")
    a = ap.parse_args()
    if a.inner:
        inner(json.loads(a.inner))
        return
    values = load_values(a.values)
    by_kind = load_manifests(a.rendered)
    if a.expect_check_failure:
        pod = Pod(one(by_kind, "Deployment"))
    else:
        pod, by_kind = check_rendering(by_kind, values)
    if a.binary:
        emulate(pod, by_kind, values, a.binary, a.expect_check_failure)


if __name__ == "__main__":
    main()
