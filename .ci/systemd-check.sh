#!/usr/bin/env bash
# Validates deploy/systemd/teleport-mattermost.service:
#   1. `systemd-analyze verify` (syntax, known directives, executables present) in a scratch
#      root holding the unit, the static binary and /bin/kill;
#   2. `systemd-analyze security --offline` exposure at most 2.0;
#   3. the unit's own command lines against the real binary, as a non-root user in an empty
#      root and a private network namespace: ExecStart starts it and /healthz answers,
#      ExecReload (SIGHUP) leaves it running, SIGTERM (systemd's stop) ends it with exit 0
#      within TimeoutStopSec (upstream's unit passed a --pid-file flag its binary lacked and its
#      SIGHUP killed the plugin);
#   4. under strace during that run: every system call is allowed by the unit's
#      SystemCallFilter, every socket family by RestrictAddressFamilies, and no mapping is
#      made writable+executable or executable later (MemoryDenyWriteExecute).
# Not run here: systemd itself starting the unit (no systemd as PID 1 on this machine), so the
# user, directories and sandboxing are applied by our emulation, not by systemd.
set -euo pipefail
cd "$(dirname "$0")/.."

UNIT=deploy/systemd/teleport-mattermost.service
STATIC_BIN=${STATIC_BIN:-${CARGO_TARGET_DIR:-target}/x86_64-unknown-linux-gnu/debug/teleport-mattermost}
SERVICE_UID=61000 # stands for the teleport-mattermost system user

fail() {
    echo "✘ systemd-check: $*" >&2
    exit 1
}

for tool in systemd-analyze strace; do
    if ! command -v "$tool" >/dev/null 2>&1; then
        echo "installing $tool from Debian"
        pkg=$tool
        [[ "$tool" == systemd-analyze ]] && pkg=systemd
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$pkg" >/dev/null ||
            fail "cannot install $pkg"
    fi
done
# Always (incremental): a binary left from an older build must not be the one tested.
if [[ -z "${STATIC_BIN_PREBUILT:-}" ]]; then
    .ci/static-binary.sh build
fi

WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

unit_values() { # KEY -> every value of KEY in the unit, one per line
    sed -n "s/^$1=//p" "$UNIT"
}

echo "== systemd: systemd-analyze verify"
SDROOT="$WORK/sdroot"
mkdir -p "$SDROOT/usr/lib/systemd" "$SDROOT/etc/systemd/system"
cp -a /usr/lib/systemd/system "$SDROOT/usr/lib/systemd/"
exec_path=$(unit_values ExecStart | awk '{print $1}')
install -D -m 0755 "$STATIC_BIN" "$SDROOT$exec_path"
reload_path=$(unit_values ExecReload | awk '{print $1}')
install -D -m 0755 "$reload_path" "$SDROOT$reload_path"
cp "$UNIT" "$SDROOT/etc/systemd/system/"
name=$(basename "$UNIT")
if ! out=$(systemd-analyze verify --root="$SDROOT" "$name" 2>&1) || [[ -n "$out" ]]; then
    fail "systemd-analyze verify: ${out:-non-zero exit}"
fi
echo "✔ systemd-analyze verify $name: no complaint"

echo "== systemd: systemd-analyze security --offline"
systemd-analyze security --offline=true --threshold=20 --root="$SDROOT" "$name" >"$WORK/security.txt" 2>&1 ||
    { cat "$WORK/security.txt"; fail "exposure above 2.0"; }
echo "✔ $(grep -o 'Overall exposure level.*' "$WORK/security.txt")"

echo "== systemd: unit directives"
expect() { # KEY VALUE
    local got
    got=$(unit_values "$1" | tail -1)
    [[ "$got" == "$2" ]] || fail "$1=$got, expected $1=$2"
}
expect Type exec
expect ExecStart "/usr/local/bin/teleport-mattermost start --config /etc/teleport-mattermost.toml"
expect ExecReload '/bin/kill -HUP $MAINPID'
expect Restart on-failure
grep -q -- '--pid-file\|^PIDFile=' "$UNIT" && fail "the unit refers to a pid file the binary does not write"
[[ -z "$(unit_values KillSignal)" ]] || fail "KillSignal is set: the binary stops gracefully on SIGTERM"
stop_timeout=$(unit_values TimeoutStopSec | tail -1)
((stop_timeout > 15)) || fail "TimeoutStopSec=$stop_timeout leaves no room for the 15 s drain"
nofile=$(unit_values LimitNOFILE | tail -1)
[[ "$nofile" =~ ^[0-9]+$ ]] && ((nofile >= 8192)) ||
    fail "LimitNOFILE=${nofile:-(unset)}: systemd's default soft limit of 1024 lets idle clients exhaust the descriptors"
echo "✔ Type=exec, ExecStart, ExecReload=SIGHUP, Restart=on-failure, no pid file, TimeoutStopSec=$stop_timeout > 15 s shutdown deadline, LimitNOFILE=$nofile"

echo "== systemd: the unit's command lines against the real binary (under strace)"
ROOT="$WORK/root"
read -ra START <<<"$(unit_values ExecStart)"
config=""
for ((i = 1; i < ${#START[@]}; i++)); do
    [[ "${START[$i]}" == "--config" ]] && config=${START[$((i + 1))]}
done
install -D -m 0755 "$STATIC_BIN" "$ROOT${START[0]}"
install -D -m 0644 /etc/ssl/certs/ca-certificates.crt "$ROOT/etc/ssl/certs/ca-certificates.crt"
install -D -m 0640 -g "$SERVICE_UID" deploy/examples/auth_id "$ROOT/var/lib/teleport/plugins/mattermost/auth_id"
printf 'unit-check-token\n' | install -D -m 0640 -g "$SERVICE_UID" /dev/stdin "$ROOT/var/lib/teleport/plugins/mattermost/mattermost_token"
install -D -m 0640 -g "$SERVICE_UID" /dev/stdin "$ROOT$config" <<'EOF'
[teleport]
addr = "127.0.0.1:3025"
identity = "/var/lib/teleport/plugins/mattermost/auth_id"
refresh_identity = true

[mattermost]
url = "http://127.0.0.1:8065"
token = "/var/lib/teleport/plugins/mattermost/mattermost_token"

[role_to_recipients]
"*" = ["team/access-requests"]
EOF
RELOAD=$(unit_values ExecReload)
# systemd (PID 1) sets LimitNOFILE as soft and hard limit; this check may run without the right
# to raise its own hard limit (no CAP_SYS_RESOURCE), so it applies at most that.
hard=$(ulimit -Hn)
applied=$nofile
[[ "$hard" != unlimited ]] && ((hard < nofile)) && applied=$hard
[[ "$applied" == "$nofile" ]] || echo "! this machine's hard file limit is $hard: the run applies LimitNOFILE as $applied"
export ROOT WORK SERVICE_UID RELOAD stop_timeout applied
unshare --net bash -c '
    set -euo pipefail
    ip link set lo up
    # LimitNOFILE, applied as systemd does (soft and hard), before the service starts.
    prlimit --nofile="$applied:$applied" strace -f -qq -o "$WORK/strace.log" \
        chroot --userspec="$SERVICE_UID:$SERVICE_UID" "$ROOT" "$@" >"$WORK/service.log" 2>&1 &
    pid=$!
    # Whatever happens below, neither strace nor the service outlives this check.
    trap "kill -KILL \$(pgrep -P $pid) $pid 2>/dev/null; true" EXIT
    for _ in $(seq 100); do
        curl -fsS -m 1 http://127.0.0.1:8081/healthz >/dev/null 2>&1 && break
        kill -0 "$pid" 2>/dev/null || { cat "$WORK/service.log"; echo "ExecStart exited early"; exit 1; }
        sleep 0.1
    done
    curl -fsS -m 2 http://127.0.0.1:8081/healthz >/dev/null || { cat "$WORK/service.log"; echo "no /healthz"; exit 1; }
    curl -sS -m 2 -o /dev/null http://127.0.0.1:8081/readyz
    curl -fsS -m 2 http://127.0.0.1:8081/metrics >/dev/null
    # ExecReload, as systemd runs it: $MAINPID is the service process (strace execs chroot,
    # which execs the binary, so they share one pid: the child of strace).
    mainpid=$(pgrep -P "$pid" | head -1)
    # The limit the service runs with (its own /proc is not mounted in the empty root, so it is
    # read from outside; in production /metrics shows it as process_max_fds).
    limits=$(grep "^Max open files" "/proc/$mainpid/limits")
    [[ $(awk "{print \$4, \$5}" <<<"$limits") == "$applied $applied" ]] ||
        { echo "the service does not run with the file limit $applied: $limits"; exit 1; }
    ${RELOAD//\$MAINPID/$mainpid}
    sleep 0.5
    kill -0 "$mainpid" 2>/dev/null || { cat "$WORK/service.log"; echo "ExecReload (SIGHUP) killed the service"; exit 1; }
    curl -fsS -m 2 http://127.0.0.1:8081/healthz >/dev/null || { echo "/healthz failed after reload"; exit 1; }
    t0=$SECONDS
    kill -TERM "$mainpid"
    rc=0
    wait "$pid" || rc=$?
    trap - EXIT
    (( SECONDS - t0 <= stop_timeout )) || { echo "stop took $((SECONDS - t0)) s"; exit 1; }
    [[ $rc -eq 0 ]] || { cat "$WORK/service.log"; echo "exit code $rc after SIGTERM"; exit 1; }
    echo "✔ ExecStart ran as uid $SERVICE_UID with file limit $applied (soft and hard), /healthz 200; ExecReload (SIGHUP): still serving; SIGTERM: exit 0 in $((SECONDS - t0)) s (TimeoutStopSec=$stop_timeout)"
' _ "${START[@]}" || fail "running the unit's command lines"
grep -q "SIGHUP received" "$WORK/service.log" || fail "the service did not log the SIGHUP reload"

systemd-analyze syscall-filter >"$WORK/groups.txt" 2>/dev/null || true
python3 - "$UNIT" "$WORK/strace.log" "$WORK/groups.txt" "${START[0]}" <<'EOF'
import re, sys

unit_path, log_path, groups_path, exe = sys.argv[1:]
unit = {}
for line in open(unit_path):
    line = line.strip()
    if line and not line.startswith(("#", ";", "[")) and "=" in line:
        k, v = line.split("=", 1)
        unit.setdefault(k, []).append(v)

groups, cur = {}, None
for line in open(groups_path):
    if line.startswith("@"):
        cur = groups.setdefault(line.strip(), [])
    elif cur is not None and line.strip() and not line.strip().startswith("#"):
        cur.append(line.strip())

def expand(items):
    out = set()
    for i in items:
        out |= expand(groups[i]) if i.startswith("@") else {i}
    return out

allowed, denied = set(), set()
for v in unit["SystemCallFilter"]:
    if v.startswith("~"):
        denied |= expand(v[1:].split())
    else:
        allowed |= expand(v.split())
allowed -= denied
families = set(unit["RestrictAddressFamilies"][-1].split())

started, used, problems = False, {}, []
# "PID name(args) = ret", or split around a thread switch: "PID name(args <unfinished ...>"
# then "PID <... name resumed>) = ret" (counted once, at its unfinished half).
line_re = re.compile(r"^(\d+)\s+([a-z0-9_]+)\((.*)")
for line in open(log_path):
    if not started:
        if f'execve("{exe}"' in line and "= 0" in line:
            started = True
        continue
    m = line_re.match(line)
    if not m:
        continue
    name, args = m.group(2), m.group(3)
    used[name] = used.get(name, 0) + 1
    if name == "socket":
        fam = args.split(",")[0].strip()
        if fam not in families:
            problems.append(f"socket({fam}) is outside RestrictAddressFamilies: {line.strip()}")
    if name == "mmap" and "PROT_WRITE" in args and "PROT_EXEC" in args:
        problems.append(f"writable+executable mapping (MemoryDenyWriteExecute): {line.strip()}")
    if name in ("mprotect", "pkey_mprotect") and "PROT_EXEC" in args:
        problems.append(f"mprotect to executable (MemoryDenyWriteExecute): {line.strip()}")
if not started:
    sys.exit(f"✘ systemd-check: strace never saw {exe} start")
for name in sorted(used):
    if name not in allowed:
        problems.append(f"system call {name} (x{used[name]}) is not allowed by SystemCallFilter")
if problems:
    print("\n".join(f"✘ {p}" for p in problems))
    sys.exit(1)
print(f"✔ strace: {len(used)} distinct system calls ({sum(used.values())} calls), all inside "
      f"SystemCallFilter ({len(allowed)} allowed); socket families within {' '.join(sorted(families))}; "
      "no W+X memory")
EOF
echo "✔ systemd-check: unit verified, hardened and run"
