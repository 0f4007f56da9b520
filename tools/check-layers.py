#!/usr/bin/env python3
"""check-layers.py: fails when corral's code breaks its layering (`make test` runs it; README "Code map").

Rules, for every file under sidecar/ and include/corral/:
  - a file in folder F includes "corral/G/..." only when G is F or a folder below it in
    core -> conf -> http -> cache -> tier -> fill -> {serve, admin} -> server -> main; serve and admin never include each other;
  - a private header ("name.h", no folder) is only included from the folder it sits in;
  - a file over 600 lines says why near its top, in a line starting " * Over 600 lines:".
Prints every violation as file:line and exits 1 when there is one. `--self-test` first checks, on small trees in a
temporary directory, that each rule fires on a file that breaks it and stays quiet on one that keeps it.
"""
import os
import re
import sys

ORDER = {"core": 0, "conf": 1, "http": 2, "cache": 3, "tier": 4, "fill": 5, "serve": 6, "admin": 6, "server": 7, "main": 8}
MAX_LINES = 600
INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"')


def folder_of(path):
    parts = path.split("/")
    if parts[0] == "sidecar":
        return "main" if len(parts) == 2 else parts[1]
    return parts[2]  # include/corral/<folder>/<name>.h


def check_file(path, problems):
    src = folder_of(path)
    if src not in ORDER:
        problems.append(f"{path}: folder '{src}' is not in the layer order")
        return
    with open(path, encoding="utf-8") as f:
        lines = f.read().split("\n")
    for no, line in enumerate(lines, 1):
        m = INCLUDE.match(line)
        if not m:
            continue
        target = m.group(1)
        if target.startswith("corral/"):
            parts = target.split("/")
            if len(parts) != 3 or parts[1] not in ORDER:
                problems.append(f"{path}:{no}: '{target}' is not corral/<folder>/<name>.h")
                continue
            dst = parts[1]
            if ORDER[dst] > ORDER[src]:
                problems.append(f"{path}:{no}: {src}/ includes {target}, a layer above it")
            elif ORDER[dst] == ORDER[src] and dst != src:
                problems.append(f"{path}:{no}: {src}/ includes {target}; serve and admin never include each other")
        elif "/" not in target:
            here = os.path.join(os.path.dirname(path), target)
            if not os.path.exists(here) and target != "khash.h":
                problems.append(f"{path}:{no}: private header '{target}' is not beside the file")
        else:
            problems.append(f"{path}:{no}: '{target}' reaches across folders by a relative path")
    if len(lines) > MAX_LINES and not any(l.startswith(" * Over 600 lines:") for l in lines[:40]):
        problems.append(f"{path}: {len(lines)} lines, and its top comment gives no ' * Over 600 lines:' reason")


def scan(root):
    here = os.getcwd()
    os.chdir(root)
    problems = []
    try:
        for top in ("sidecar", "include/corral"):
            for d, _, files in os.walk(top):
                for name in sorted(files):
                    if name.endswith((".c", ".h")):
                        check_file(os.path.join(d, name), problems)
    finally:
        os.chdir(here)
    return problems


def self_test():
    """Each case: files to write, and a piece of text the report must contain (None: no problem at all)."""
    import tempfile
    ok_c = '#include "corral/core/common.h"\n#include "local.h"\n'
    long_c = "/*\n * x.c\n */\n" + "int x;\n" * 700
    cases = [
        ({"sidecar/cache/a.c": ok_c, "sidecar/cache/local.h": ""}, None),
        ({"sidecar/cache/a.c": '#include "corral/fill/flight.h"\n'}, "a layer above it"),
        ({"include/corral/http/h.h": '#include "corral/cache/object.h"\n'}, "a layer above it"),
        ({"sidecar/serve/a.c": '#include "corral/admin/admin.h"\n'}, "never include each other"),
        ({"sidecar/admin/a.c": '#include "corral/serve/handler.h"\n'}, "never include each other"),
        ({"sidecar/fill/a.c": '#include "corral/flight.h"\n'}, "is not corral/<folder>/<name>.h"),
        ({"sidecar/fill/a.c": '#include "missing.h"\n'}, "is not beside the file"),
        ({"sidecar/fill/a.c": '#include "../cache/store_internal.h"\n'}, "relative path"),
        ({"sidecar/extra/a.c": ""}, "is not in the layer order"),
        ({"sidecar/http/a.c": long_c}, "Over 600 lines"),
        ({"sidecar/http/a.c": long_c.replace(" * x.c", " * x.c\n * Over 600 lines: a reason.")}, None),
        ({"sidecar/main.c": '#include "corral/server/server.h"\n'}, None),
    ]
    failed = 0
    for files, expect in cases:
        with tempfile.TemporaryDirectory() as root:
            for path, text in files.items():
                os.makedirs(os.path.join(root, os.path.dirname(path)), exist_ok=True)
                with open(os.path.join(root, path), "w", encoding="utf-8") as f:
                    f.write(text)
            report = "\n".join(scan(root))
            good = (report == "") if expect is None else (expect in report)
            if not good:
                failed += 1
                print(f"check-layers self-test: {sorted(files)} expected {expect!r}, got {report!r}")
    if failed:
        print(f"check-layers self-test: {failed} case(s) failed", file=sys.stderr)
        return 1
    print(f"check-layers self-test: {len(cases)} cases behave")
    return 0


def main():
    args = sys.argv[1:]
    if args and args[0] == "--self-test":
        if self_test() != 0:
            return 1
        args = args[1:]
    problems = scan(args[0] if args else ".")
    for p in sorted(problems):
        print(p)
    if problems:
        print(f"check-layers: {len(problems)} problem(s)", file=sys.stderr)
        return 1
    print("check-layers: layering holds")
    return 0


if __name__ == "__main__":
    sys.exit(main())
