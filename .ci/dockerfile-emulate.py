#!/usr/bin/env python3
"""Runs a Dockerfile's build on this machine the way `docker build` would, minus containers
(there is no Docker engine here): the Dockerfile is parsed with Docker's own parser (the
`dockerfile` package wraps buildkit's Go parser), the context is filtered by .dockerignore,
COPY keeps the files' modification times as Docker does, and RUN goes through /bin/sh -c in
the stage's WORKDIR with its ENV, on this machine's toolchain standing in for the build image.
The last stage is assembled as a directory (its COPY --from files) and described in JSON:

  dockerfile-emulate.py --out DIR [--env KEY=VALUE ...]
  -> prints {"root": DIR/image, "user": ..., "expose": [...], "entrypoint": [...], "cmd": [...], "env": {...}}

RUN steps must use paths relative to WORKDIR (the emulation maps WORKDIR, not the whole
file system); an absolute path in a RUN step is refused.
"""

import argparse
import json
import os
import re
import shutil
import subprocess
import sys

import dockerfile

KNOWN = {"FROM", "ARG", "ENV", "WORKDIR", "COPY", "RUN", "LABEL", "USER", "EXPOSE",
         "ENTRYPOINT", "CMD", "ADD", "VOLUME", "STOPSIGNAL", "HEALTHCHECK", "SHELL", "ONBUILD"}
SUPPORTED_BUILD = {"FROM", "ARG", "ENV", "WORKDIR", "COPY", "RUN"}
SUPPORTED_FINAL = {"FROM", "ARG", "ENV", "LABEL", "COPY", "USER", "EXPOSE", "ENTRYPOINT", "CMD"}


def die(msg):
    print(f"✘ dockerfile-emulate: {msg}", file=sys.stderr)
    sys.exit(1)


def log(msg):
    print(msg, file=sys.stderr, flush=True)


# --- .dockerignore, with Docker's rules: patterns relative to the context root, `*` and `?`
# within one path segment, `**` across segments, a pattern also excludes everything below a
# matching directory, `!` re-includes, the last matching pattern wins.

def pattern_regex(pat):
    pat = os.path.normpath(pat.strip().lstrip("/"))
    out, i = "", 0
    while i < len(pat):
        if pat.startswith("**", i):
            out += ".*"
            i += 2
            if pat.startswith("/", i):
                i += 1
        elif pat[i] == "*":
            out += "[^/]*"
            i += 1
        elif pat[i] == "?":
            out += "[^/]"
            i += 1
        else:
            out += re.escape(pat[i])
            i += 1
    return re.compile(f"^{out}(/.*)?$")


def load_ignore(context):
    rules = []
    path = os.path.join(context, ".dockerignore")
    if os.path.exists(path):
        for line in open(path, encoding="utf-8"):
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            negate = line.startswith("!")
            rules.append((negate, pattern_regex(line[1:] if negate else line), line))
    return rules


def ignored(rel, rules):
    out = False
    for negate, rx, _ in rules:
        if rx.match(rel):
            out = not negate
    return out


def context_files(context, rules):
    files = []
    for dirpath, dirnames, filenames in os.walk(context):
        rel_dir = os.path.relpath(dirpath, context)
        keep = []
        for d in dirnames:
            rel = os.path.normpath(os.path.join(rel_dir, d))
            # Prune an ignored directory unless an exception could re-include something in it.
            if ignored(rel, rules) and not any(n and raw[1:].startswith(rel + "/") for n, _, raw in rules):
                continue
            keep.append(d)
        dirnames[:] = keep
        for f in filenames:
            rel = os.path.normpath(os.path.join(rel_dir, f))
            if not ignored(rel, rules):
                files.append(rel)
    return sorted(files)


def copy_file(src, dst):
    os.makedirs(os.path.dirname(dst), exist_ok=True)
    shutil.copy2(src, dst, follow_symlinks=False)  # keeps mtime, as Docker's COPY does


def do_copy(args, context, files, dest_root, workdir, stages, flags):
    *srcs, dest = args
    src_root = context
    from_stage = next((f.split("=", 1)[1] for f in flags if f.startswith("--from=")), None)
    if from_stage:
        if from_stage not in stages:
            die(f"COPY --from={from_stage}: no such stage")
        src_root = stages[from_stage]
    dest_abs = dest if dest.startswith("/") else os.path.join(workdir, dest)
    into_dir = dest.endswith("/") or dest in (".", "./") or len(srcs) > 1
    for src in srcs:
        if from_stage:
            path = os.path.join(src_root, src.lstrip("/"))
            if not os.path.exists(path):
                die(f"COPY --from={from_stage} {src}: the build stage did not produce it")
            target = os.path.join(dest_abs, os.path.basename(src)) if into_dir else dest_abs
            copy_file(path, dest_root + target)
            continue
        src = os.path.normpath(src)
        if src == ".":
            chosen = files
        else:
            chosen = [f for f in files if f == src or f.startswith(src + "/")]
            if not chosen:
                die(f"COPY {src}: not in the build context (missing, or excluded by .dockerignore)")
        for f in chosen:
            if src == ".":
                target = os.path.join(dest_abs, f)
            elif f == src:
                target = os.path.join(dest_abs, os.path.basename(f)) if into_dir else dest_abs
            else:
                target = os.path.join(dest_abs, os.path.relpath(f, src))
            copy_file(os.path.join(context, f), dest_root + target)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dockerfile", default="Dockerfile")
    ap.add_argument("--context", default=".")
    ap.add_argument("--out", required=True)
    ap.add_argument("--env", action="append", default=[], help="KEY=VALUE set for every RUN (after ENV)")
    a = ap.parse_args()

    commands = dockerfile.parse_file(a.dockerfile)
    for c in commands:
        if c.cmd.upper() not in KNOWN:
            die(f"line {c.start_line}: unknown instruction {c.cmd}")
    stages_cmds = []
    for c in commands:
        if c.cmd.upper() == "FROM":
            stages_cmds.append([])
        if stages_cmds:
            stages_cmds[-1].append(c)
    if len(stages_cmds) < 2:
        die("expected a build stage and a runtime stage")

    context = os.path.abspath(a.context)
    rules = load_ignore(context)
    files = context_files(context, rules)
    log(f"context: {len(files)} files after .dockerignore")
    overrides = dict(kv.split("=", 1) for kv in a.env)
    stages = {}
    for n, cmds in enumerate(stages_cmds):
        final = n == len(stages_cmds) - 1
        frm = cmds[0].value
        name = frm[2] if len(frm) == 3 and frm[1].upper() == "AS" else str(n)
        root = os.path.join(a.out, "image" if final else f"stage-{name}")
        os.makedirs(root)
        workdir, env, image = "/", {}, {"user": "0", "expose": [], "entrypoint": [], "cmd": []}
        for c in cmds[1:]:
            cmd = c.cmd.upper()
            allowed = SUPPORTED_FINAL if final else SUPPORTED_BUILD
            if cmd not in allowed:
                die(f"line {c.start_line}: {cmd} in stage {name} is not emulated")
            if cmd == "ARG":
                continue  # defaults only matter to FROM and LABEL here
            if cmd == "ENV":
                env.update(dict(zip(c.value[::2], c.value[1::2])))
            elif cmd == "WORKDIR":
                workdir = os.path.join(workdir, c.value[0])
                os.makedirs(root + workdir, exist_ok=True)
            elif cmd == "COPY":
                do_copy(list(c.value), context, files, root, workdir, stages, c.flags)
            elif cmd == "RUN":
                script = c.value[0]
                if c.json:
                    die(f"line {c.start_line}: exec-form RUN is not emulated")
                if re.search(r"(^|[\s;&|>])/(?!dev/null)", script):
                    die(f"line {c.start_line}: RUN uses an absolute path; keep RUN steps relative to WORKDIR")
                log(f"RUN (line {c.start_line}) in {workdir}: {' '.join(script.split())}")
                run_env = dict(os.environ)
                run_env.update(env)
                run_env.update(overrides)
                r = subprocess.run(["/bin/sh", "-c", script], cwd=root + workdir, env=run_env,
                                   stdout=sys.stderr, stderr=sys.stderr)
                if r.returncode != 0:
                    die(f"line {c.start_line}: RUN failed with exit code {r.returncode}")
            elif cmd == "USER":
                image["user"] = c.value[0]
            elif cmd == "EXPOSE":
                image["expose"] += list(c.value)
            elif cmd in ("ENTRYPOINT", "CMD"):
                if not c.json:
                    die(f"line {c.start_line}: {cmd} must use the exec (JSON) form")
                image[cmd.lower()] = list(c.value)
        stages[name] = root
        if final:
            image.update(root=root, env=env)
            print(json.dumps(image))


if __name__ == "__main__":
    main()
