#!/usr/bin/env python3
"""bench.py: the workload driver behind tools/bench/run.sh (which starts and stops every server and passes their
ports in BENCH_* environment variables). Standard library only.

Workloads, in this order, each against corral, nginx and Varnish in turn (a peer whose start failed is left out):
  hit-*       cache-hit throughput of a 2 KB JSON object (h2load -c 50 -m 10 -D 5 over h2c, wrk -t1 -c50 -d5s over
              HTTP/1.1), identity and compressed; best of 2 rounds, the servers' order rotated between rounds (this
              machine is shared, and one round can be hit by someone else's build). Before each run a curl with the same
              protocol and Accept-Encoding records the status, Content-Encoding, body size and cache header actually
              served; the load tool's own byte counts give the mean body size it received.
  miss, pass  sequential HTTP/1.1 requests (h2load --h1 -c 1 -m 1 with a URI list) with a fast upstream, direct and
              through each proxy, 2 interleaved rounds pooled: p50 and p99, what each proxy adds at p50 over the
              direct run of the same placement, and each proxy's own CPU time per request (all its processes and
              threads, from /proc/PID/task/TID/schedstat). miss: a fresh cacheable key per request (looked up,
              fetched, stored); pass: a route each proxy passes through uncached. Two placements (see placements()):
              1cpu puts proxy, client and upstream on one CPU (no cross-CPU wake-ups: what the proxy's own work
              adds); split keeps the proxy on the servers' CPU and client and upstream on the other (four crossings
              per proxied request, none direct), with direct-xcpu (the client on the other CPU) to show what
              crossing costs. The test upstream is moved between CPUs for this (sched_setaffinity), then moved back.
  stampede-N  N clients (h2load -c N -n N -m 1, one request each) on a cold key whose upstream answer takes 200 ms:
              upstream fetches (the test upstream's /__count) and per-request latency (h2load --log-file). Last,
              since Varnish takes a while to reap the threads 5000 clients made it start.
  tier        corral's shared memcached tier between pods (tools/bench/tier_bench.py, which starts and stops its own
              memcached, corrals and upstream): L2 hit vs L1 hit, a stampede spread over 3 pods, invalidation delay.
              Before the stampede section, for the same reason as the latency section.
--quick: 2 s runs, one round, no 5000-client stampede (a smoke run of the script itself).
--only hit,stampede,latency,tier: run only these sections (default: all).
Ratios are corral / peer: above 1 is better for corral on req/s, below 1 is better on latencies and fetch counts.
"""

import argparse
import datetime
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request

import tier_bench

ENV = os.environ
WORK = ENV["BENCH_WORK"]
UP = "127.0.0.1:%s" % ENV["BENCH_UP_PORT"]
CPU_CLIENT = ENV.get("BENCH_CPU_CLIENT", "0")
QUICK = ENV.get("BENCH_QUICK", "0") == "1"
HIT_SECONDS = 2 if QUICK else 5
HIT_ROUNDS = 1 if QUICK else 2
STAMPEDE_SIZES = [500] if QUICK else [500, 5000]
LAT_SAMPLES = 500 if QUICK else 1000   # per round
LAT_ROUNDS = 1 if QUICK else 2         # targets interleaved, samples pooled over the rounds
LAT_WARMUP = 100                       # per round, dropped
RUN_ID = "%x" % int(time.time() * 1000)

SERVERS = {
    "corral": {"h1": "127.0.0.1:%s" % ENV["BENCH_CORRAL_PORT"], "h2": "127.0.0.1:%s" % ENV["BENCH_CORRAL_PORT"],
               "status": "ok"},
    "nginx": {"h1": "127.0.0.1:%s" % ENV.get("BENCH_NGINX_H1_PORT", "0"),
              "h2": "127.0.0.1:%s" % ENV.get("BENCH_NGINX_H2_PORT", "0"), "status": ENV.get("BENCH_NGINX_STATUS", "missing")},
    "varnish": {"h1": "127.0.0.1:%s" % ENV.get("BENCH_VARNISH_PORT", "0"),
                "h2": "127.0.0.1:%s" % ENV.get("BENCH_VARNISH_PORT", "0"), "status": ENV.get("BENCH_VARNISH_STATUS", "missing")},
}
if ENV.get("BENCH_CORRAL_RL_PORT"):
    # the same corral config with a rate limit on the hit route (applies_to: all, a rate never reached): the hit
    # rounds only, for the limiter's cost (issue 16: at most 2% of hit throughput)
    SERVERS["corral-rl"] = {"h1": "127.0.0.1:%s" % ENV["BENCH_CORRAL_RL_PORT"],
                            "h2": "127.0.0.1:%s" % ENV["BENCH_CORRAL_RL_PORT"], "status": "ok"}
ORDER = ["corral", "nginx", "varnish"]
PEERS = ["nginx", "varnish"]
PIDS = dict(p.split("=", 1) for p in ENV.get("BENCH_PIDS", "").split(",") if "=" in p)

NOTES = []     # free-text findings printed at the end and written to the JSON
PROBLEMS = []  # things that went wrong (server died, errors, not served from cache)


def log(msg):
    print(msg, flush=True)


def note(msg):
    NOTES.append(msg)
    log("  note: " + msg)


def problem(msg):
    PROBLEMS.append(msg)
    log("  PROBLEM: " + msg)


def alive(name):
    pid = PIDS.get(name)
    if pid is None:
        return False
    try:
        os.kill(int(pid), 0)
    except OSError:
        return False
    # a zombie counts as dead
    try:
        with open("/proc/%s/status" % pid) as f:
            for line in f:
                if line.startswith("State:"):
                    return "Z" not in line.split()[1]
    except OSError:
        return False
    return True


def active():
    return [s for s in ORDER if SERVERS[s]["status"] == "ok"]


def check_alive(context):
    for s in active():
        if not alive(s):
            SERVERS[s]["status"] = "died"
            problem("%s died during %s (see its log)" % (s, context))


def upstream_get(path):
    with urllib.request.urlopen("http://%s%s" % (UP, path), timeout=10) as r:
        return json.loads(r.read().decode())


def upstream_count(path):
    return upstream_get("/__count?path=" + urllib.parse.quote(path, safe=""))["count"]


def pinned(cmd, cpu=None):
    return ["taskset", "-c", cpu or CPU_CLIENT] + cmd


def run(cmd, timeout=120):
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=timeout)
    return p.returncode, p.stdout.decode("utf-8", "replace")


# ---------------------------------------------------------------------------------------------------------- probing

CACHE_HEADERS = ("cache-status", "x-cache-status", "x-cache", "age", "x-varnish")


def curl_probe(url, h2, accept_encoding=None):
    """One request with curl; returns {status, encoding, body_bytes, cache: {...}} as served."""
    with tempfile.NamedTemporaryFile(dir=WORK) as hdr, tempfile.NamedTemporaryFile(dir=WORK) as body:
        cmd = ["curl", "-s", "-m", "10", "-D", hdr.name, "-o", body.name]
        cmd += ["--http2-prior-knowledge"] if h2 else ["--http1.1"]
        if accept_encoding:
            cmd += ["-H", "accept-encoding: " + accept_encoding]
        cmd.append(url)
        rc, out = run(cmd, timeout=20)
        head = open(hdr.name, "rb").read().decode("latin-1")
        size = os.path.getsize(body.name)
    res = {"rc": rc, "status": None, "encoding": "identity", "body_bytes": size, "cache": {}}
    for line in head.split("\r\n"):
        if line.startswith("HTTP/"):
            parts = line.split()
            res["status"] = int(parts[1]) if len(parts) > 1 else None
            res["cache"] = {}
            res["encoding"] = "identity"
        elif ":" in line:
            k, v = line.split(":", 1)
            k = k.strip().lower()
            if k == "content-encoding":
                res["encoding"] = v.strip()
            elif k in CACHE_HEADERS:
                res["cache"][k] = v.strip()
    return res


def is_hit(server, probe):
    c = probe["cache"]
    if server.startswith("corral"):
        return c.get("cache-status", "").replace(" ", "").startswith("corral;hit")
    if server == "nginx":
        return c.get("x-cache-status", "") == "HIT"
    if server == "varnish":
        return c.get("x-cache", "") == "HIT"
    return False


def cache_header(server, probe):
    c = probe["cache"]
    key = {"corral": "cache-status", "corral-rl": "cache-status", "nginx": "x-cache-status", "varnish": "x-cache"}.get(server)
    if key is None:
        return "(no cache: static buffer)"
    v = c.get(key, "-")
    if "age" in c:
        v += "; age=" + c["age"]
    return v


# ---------------------------------------------------------------------------------------------------------- parsers

def parse_h2load(out):
    r = {}
    m = re.search(r"finished in ([\d.]+)(\w+), ([\d.]+) req/s", out)
    if m:
        r["rps"] = float(m.group(3))
    m = re.search(r"requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, (\d+) failed, (\d+) errored, (\d+) timeout", out)
    if m:
        r.update(total=int(m.group(1)), done=int(m.group(3)), succeeded=int(m.group(4)), failed=int(m.group(5)),
                 errored=int(m.group(6)), timeout=int(m.group(7)))
    m = re.search(r"status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx", out)
    if m:
        r["status"] = {"2xx": int(m.group(1)), "3xx": int(m.group(2)), "4xx": int(m.group(3)), "5xx": int(m.group(4))}
    m = re.search(r"traffic: .*?\((\d+)\) total, .*?\((\d+)\) headers.*?, .*?\((\d+)\) data", out)
    if m:
        r["bytes_total"], r["bytes_headers"], r["bytes_data"] = int(m.group(1)), int(m.group(2)), int(m.group(3))
    return r


def wrk_bytes(num, unit):
    mult = {"B": 1, "KB": 1024, "MB": 1024 ** 2, "GB": 1024 ** 3}
    return float(num) * mult.get(unit, 1)


def parse_wrk(out):
    r = {}
    m = re.search(r"Requests/sec:\s+([\d.]+)", out)
    if m:
        r["rps"] = float(m.group(1))
    m = re.search(r"(\d+) requests in [\d.]+\w+, ([\d.]+)(\w+) read", out)
    if m:
        r["done"] = int(m.group(1))
        r["bytes_total"] = wrk_bytes(m.group(2), m.group(3))
    m = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    r["non2xx"] = int(m.group(1)) if m else 0
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    r["socket_errors"] = sum(int(x) for x in m.groups()) if m else 0
    return r


def percentile(sorted_vals, p):
    """Nearest-rank percentile of an ascending list."""
    if not sorted_vals:
        return None
    k = max(0, min(len(sorted_vals) - 1, int(-(-p * len(sorted_vals) // 100)) - 1))
    return sorted_vals[k]


def read_h2load_log(path):
    """Returns [(start_us, status, duration_us)] from h2load --log-file."""
    rows = []
    with open(path) as f:
        for line in f:
            parts = line.split()
            if len(parts) >= 3:
                rows.append((int(parts[0]), int(parts[1]), int(parts[2])))
    return rows


# ---------------------------------------------------------------------------------------------------------- workloads

HIT_QUERY = "size=2048&ctype=application/json&cc=public,max-age=3600"
HIT_WORKLOADS = [
    # name, protocol, accept-encoding, label
    ("hit-h2c-identity", "h2", None, "h2c identity (req/s)"),
    ("hit-h2c-br-gzip", "h2", "br, gzip", "h2c br, gzip (req/s)"),
    ("hit-h1-identity", "h1", None, "h1 identity (req/s)"),
    ("hit-h1-gzip", "h1", "gzip", "h1 gzip (req/s)"),
]


def hit_path(server):
    return "/bench/%s/%s/item" % (RUN_ID, server)


def hit_url(server, proto):
    return "http://%s%s?%s" % (SERVERS[server][proto], hit_path(server), HIT_QUERY)


def hit_run(s, name, proto, ae, label, cache=True):
    """One load-tool run against server s (cache=False: the bare libh2o ceiling, no cache to check). Returns (rps or
    None, detail dict)."""
    url = hit_url(s, proto)
    probe = curl_probe(url, proto == "h2", ae)
    if proto == "h2":
        cmd = ["h2load", "-c", "50", "-m", "10", "-t", "1", "-D", str(HIT_SECONDS)]
        if ae:
            cmd += ["-H", "accept-encoding: " + ae]
        rc, out = run(pinned(cmd + [url]), timeout=HIT_SECONDS + 60)
        r = parse_h2load(out)
        n = r.get("done") or 0
        body_mean = r["bytes_data"] / n if n and "bytes_data" in r else None
        errors = (r.get("failed", 0) + r.get("errored", 0) + r.get("timeout", 0)) if r else None
        non2xx = sum(v for k, v in r.get("status", {}).items() if k != "2xx")
    else:
        cmd = ["wrk", "-t1", "-c50", "-d%ds" % HIT_SECONDS]
        if ae:
            cmd += ["-H", "Accept-Encoding: " + ae]
        rc, out = run(pinned(cmd + [url]), timeout=HIT_SECONDS + 60)
        r = parse_wrk(out)
        n = r.get("done") or 0
        body_mean = r["bytes_total"] / n if n and "bytes_total" in r else None  # includes headers
        errors = r.get("socket_errors")
        non2xx = r.get("non2xx", 0)
    rps = r.get("rps")
    if not alive(s):
        rps = None  # whatever the tool counted, the server did not survive the run
    detail = {"served_encoding": probe["encoding"], "status": probe["status"], "probe_body_bytes": probe["body_bytes"],
              "cache_header": cache_header(s, probe), "hit": is_hit(s, probe), "mean_bytes_per_response": body_mean,
              "bytes_measure": "body" if proto == "h2" else "head+body (wrk, rounded)",
              "errors": errors, "non2xx": non2xx, "tool_rc": rc}
    log("  %-8s %-13s %9s req/s   served %-8s %5s B  %-32s load-tool mean %s B/resp%s" % (
        s, label.split(" (")[0], "%.0f" % rps if rps else "?", probe["encoding"], probe["body_bytes"],
        cache_header(s, probe), "%.0f" % body_mean if body_mean else "?",
        ("  errors=%s non2xx=%s" % (errors, non2xx)) if (errors or non2xx) else ""))
    if rps is None:
        problem("%s %s: no result from the load tool (rc %s): %s" % (s, name, rc, out.strip()[-300:]))
    if errors or non2xx:
        problem("%s %s: %s errors, %s non-2xx responses" % (s, name, errors, non2xx))
    if cache and not is_hit(s, probe):
        problem("%s %s: probe was not a cache hit (%s)" % (s, name, cache_header(s, probe)))
    if ae and probe["encoding"] == "identity":
        note("%s %s: served identity although the client accepts %s" % (s, name, ae))
    check_alive(name)
    return rps, detail


BARE = {"proc": None}


def bare_start():
    """Starts tools/bench/bare_h2o (BENCH_BARE_BIN) pinned like the servers, serving the hit object's own body: the
    libh2o ceiling, measured in the same rounds as the servers. Returns True when it answers."""
    binary = ENV.get("BENCH_BARE_BIN")
    if not binary or not os.access(binary, os.X_OK):
        note("the bare libh2o server is not built (make bench builds it): no ceiling column")
        return False
    path = "/bench/%s/bare/body?%s" % (RUN_ID, HIT_QUERY)
    with urllib.request.urlopen("http://%s%s" % (UP, path), timeout=10) as r:
        body = r.read()
    body_file = os.path.join(WORK, "bare-body")
    with open(body_file, "wb") as f:
        f.write(body)
    port = ENV["BENCH_BARE_PORT"]
    out = open(os.path.join(WORK, "bare.out"), "w")
    BARE["proc"] = subprocess.Popen(pinned([binary, port, body_file, "application/json"], ENV.get("BENCH_CPU_SERVER", "1")),
                                    stdout=out, stderr=subprocess.STDOUT)
    SERVERS["bare"] = {"h1": "127.0.0.1:%s" % port, "h2": "127.0.0.1:%s" % port, "status": "ok"}
    PIDS["bare"] = str(BARE["proc"].pid)
    for _ in range(100):
        if curl_probe(hit_url("bare", "h1"), False)["status"] == 200:
            return True
        time.sleep(0.05)
    problem("the bare libh2o server did not come up (see bare.out)")
    bare_stop()
    return False


def bare_stop():
    p = BARE["proc"]
    if p is not None:
        p.terminate()
        try:
            p.wait(5)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
        BARE["proc"] = None


def bench_hits(results):
    try:
        with_bare = bare_start()
        return bench_hits_rounds(results, with_bare)
    finally:
        bare_stop()


def bench_hits_rounds(results, with_bare):
    log("\n== 1. cache-hit throughput, 2 KB JSON (h2load -c 50 -m 10 -D %d -t 1; wrk -t1 -c50 -d%ds); best of %d rounds, "
        "servers in rotated order each round; \"bare\" is the libh2o ceiling (tools/bench/bare_h2o.c: the same body and "
        "codings from a static buffer)" % (HIT_SECONDS, HIT_SECONDS, HIT_ROUNDS))
    extra = ["corral-rl"] if "corral-rl" in SERVERS and SERVERS["corral-rl"]["status"] == "ok" else []
    for s in active() + extra:
        # prime: the first request fills the cache; the second must be a hit
        curl_probe(hit_url(s, "h1"), False)
        p = curl_probe(hit_url(s, "h1"), False)
        if not is_hit(s, p):
            problem("%s: second request for the hit object was not a hit (%s, status %s)" % (s, cache_header(s, p), p["status"]))
    check_alive("priming the hit objects")
    for name, proto, ae, label in HIT_WORKLOADS:
        row = {"workload": name, "label": label, "unit": "req/s", "better": "higher", "values": {}, "detail": {},
               "rounds": {}}
        for rnd in range(HIT_ROUNDS):
            order = active() + extra + (["bare"] if with_bare else [])
            order = order[rnd % len(order):] + order[:rnd % len(order)] if order else order
            for s in order:
                rps, detail = hit_run(s, name, proto, ae, label, cache=s != "bare")
                row["rounds"].setdefault(s, []).append(rps)
                best = row["values"].get(s)
                if s not in row["detail"] or (rps is not None and (best is None or rps > best)):
                    row["values"][s] = rps
                    row["detail"][s] = detail
        for s in row["rounds"]:
            if any(v is None for v in row["rounds"][s]):
                row["values"][s] = None  # a failed round voids the best
        results.append(row)
    # every peer must have fetched its hit object exactly once for all four workloads
    log("  upstream fetches of each server's hit object over all four workloads (1 = every request was a hit):")
    counts = {}
    for s in ORDER + extra:
        if SERVERS[s]["status"] in ("ok", "died"):
            counts[s] = upstream_count(hit_path(s))
            log("    %-8s %d" % (s, counts[s]))
            if counts[s] != 1:
                problem("%s: the hit object was fetched %d times from the upstream (expected 1)" % (s, counts[s]))
    return counts


def stampede_one(s, n):
    path = "/stampede/%s/%s/%d" % (RUN_ID, s, n)
    url = "http://%s%s?delay=200&size=2048&ctype=application/json&cc=public,max-age=3600" % (SERVERS[s]["h2"], path)
    logf = os.path.join(WORK, "stampede-%s-%d.log" % (s, n))
    cmd = ["h2load", "-c", str(n), "-n", str(n), "-m", "1", "-t", "1", "--log-file", logf, url]
    t0 = time.time()
    rc, out = run(pinned(cmd), timeout=120)
    wall = time.time() - t0
    r = parse_h2load(out)
    rows = read_h2load_log(logf) if os.path.exists(logf) else []
    durs = sorted(d / 1000.0 for (_, st, d) in rows if st == 200)
    starts = sorted(st0 for (st0, _, _) in rows)
    fetches = upstream_count(path)
    res = {
        "clients": n, "fetches": fetches, "completed_200": len(durs), "logged": len(rows),
        "non200": sum(1 for (_, st, _) in rows if st != 200), "failed": r.get("failed"), "errored": r.get("errored"),
        "timeout": r.get("timeout"),
        "min_ms": durs[0] if durs else None, "mean_ms": sum(durs) / len(durs) if durs else None,
        "p50_ms": percentile(durs, 50), "p99_ms": percentile(durs, 99), "max_ms": durs[-1] if durs else None,
        "send_spread_ms": (starts[-1] - starts[0]) / 1000.0 if starts else None,
        "wall_s": round(wall, 2), "tool_rc": rc,
    }
    # how many requests were sent before the first response could have arrived (200 ms after the first send)
    if starts:
        res["sent_within_200ms"] = sum(1 for x in starts if x - starts[0] < 200000)
        # when the last client had its answer, counted from the first request sent
        res["all_done_ms"] = (max(st0 + d for (st0, _, d) in rows) - starts[0]) / 1000.0
    if not rows:
        res["tool_output"] = out.strip()[-500:]
    return res


def bench_stampede(results):
    log("\n== 3. stampede: N clients at once on a cold key, upstream answers in 200 ms (h2load -c N -n N -m 1 -t 1 --log-file)")
    detail = {}
    for n in STAMPEDE_SIZES:
        rows = {k: {"workload": "stampede-%d" % n, "label": "stampede %d: %s" % (n, lab), "unit": u, "better": "lower",
                    "values": {}, "detail": {}}
                for k, lab, u in (("fetches", "upstream fetches", "count"), ("min_ms", "min latency (ms)", "ms"),
                                  ("mean_ms", "mean latency (ms)", "ms"), ("p99_ms", "p99 latency (ms)", "ms"),
                                  ("max_ms", "max latency (ms)", "ms"))}
        for s in active():
            res = stampede_one(s, n)
            detail.setdefault(str(n), {})[s] = res
            for k in rows:
                rows[k]["values"][s] = res[k]
            f = lambda v: "%.1f" % v if v is not None else "?"
            log("  %-8s N=%-5d fetches=%-3s ok=%d/%d min=%s mean=%s p50=%s p99=%s max=%s ms  (sends spread over %s ms, "
                "%s sent in the first 200 ms, all answered %s ms after the first send)" % (
                s, n, res["fetches"], res["completed_200"], n, f(res["min_ms"]), f(res["mean_ms"]), f(res["p50_ms"]),
                f(res["p99_ms"]), f(res["max_ms"]), f(res["send_spread_ms"]), res.get("sent_within_200ms", "?"),
                f(res.get("all_done_ms"))))
            if res["completed_200"] != n:
                problem("%s stampede %d: only %d of %d requests got a 200 (non-200 %d, failed %s, errored %s, timeout %s)%s" % (
                    s, n, res["completed_200"], n, res["non200"], res["failed"], res["errored"], res["timeout"],
                    (": " + res["tool_output"]) if "tool_output" in res else ""))
            if res["fetches"] != 1:
                problem("%s stampede %d: the upstream was asked %d times for the cold key (expected 1)" % (s, n, res["fetches"]))
            check_alive("stampede %d" % n)
        results.extend(rows.values())
    return detail


def tree_pids(pid):
    """pid and all its descendants (nginx's workers, varnishd's child), from /proc."""
    children = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % d) as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        children.setdefault(ppid, []).append(int(d))
    out, todo = [], [int(pid)]
    while todo:
        p = todo.pop()
        out.append(p)
        todo += children.get(p, [])
    return out


def cpu_ns(pid):
    """On-CPU time (ns) of every thread of pid and its descendants so far (/proc/PID/task/TID/schedstat, field 1)."""
    total = 0
    for p in tree_pids(pid):
        try:
            tids = os.listdir("/proc/%d/task" % p)
        except OSError:
            continue
        for tid in tids:
            try:
                with open("/proc/%d/task/%s/schedstat" % (p, tid)) as f:
                    total += int(f.read().split()[0])
            except (OSError, ValueError, IndexError):
                pass
    return total


def pin_upstream(cpu):
    """Moves every thread of the test upstream to one CPU (the placements of the miss and pass section)."""
    pid = PIDS.get("upstream")
    if pid is None:
        return False
    for tid in os.listdir("/proc/%s/task" % pid):
        try:
            os.sched_setaffinity(int(tid), {int(cpu)})
        except OSError:
            return False
    return True


def latency_run(target, urls, cpu=None, measure_pid=None):
    """Sequential HTTP/1.1 requests over one keep-alive connection. Returns sorted per-request durations in us, the
    non-200 count, the tool's rc and output, and the on-CPU time (us) per request of measure_pid's process tree."""
    with tempfile.NamedTemporaryFile("w", dir=WORK, delete=False, suffix=".uris") as f:
        f.write("\n".join(urls) + "\n")
        uris = f.name
    logf = uris + ".log"
    cmd = ["h2load", "--h1", "-c", "1", "-m", "1", "-t", "1", "-n", str(len(urls)), "-i", uris, "--log-file", logf]
    cpu0 = cpu_ns(measure_pid) if measure_pid else None
    rc, out = run(pinned(cmd, cpu), timeout=300)
    cpu_us = (cpu_ns(measure_pid) - cpu0) / 1000.0 / len(urls) if measure_pid else None
    rows = read_h2load_log(logf) if os.path.exists(logf) else []
    bad = sum(1 for (_, st, _) in rows if st != 200)
    durs = [d for (_, st, d) in rows[LAT_WARMUP:] if st == 200]
    return sorted(durs), bad, rc, out, cpu_us


# Where each party of the miss and pass section runs. "1cpu": proxy, client and upstream share the servers' CPU, so
# no request crosses CPUs and what a proxy adds is its own work (its CPU time, and the two extra context switches a
# hop costs).
# "split": the servers' CPU for the proxy, the other for client and upstream, as in the rest of the bench; a proxied
# request then crosses CPUs four times (client -> proxy -> upstream -> proxy -> client) and the direct one none;
# direct-xcpu (client on the servers' CPU, two crossings) shows what crossing costs on this machine.
def placements():
    cs, cc = ENV.get("BENCH_CPU_SERVER", CPU_CLIENT), CPU_CLIENT
    out = [{"name": "1cpu", "label": "all on CPU %s" % cs, "client": cs, "upstream": cs,
            "baselines": [("direct", cs)]}]
    if cs != cc:
        out.append({"name": "split", "label": "proxy on CPU %s" % cs, "client": cc, "upstream": cc,
                    "baselines": [("direct", cc), ("direct-xcpu", cs)]})
    return out


def bench_latency(results):
    log("\n== 2. miss and pass overhead: sequential HTTP/1.1 requests over one connection (h2load --h1 -c 1 -m 1), "
        "%d rounds of %d (+%d warm-up dropped), targets and placements interleaved, samples pooled" % (
            LAT_ROUNDS, LAT_SAMPLES, LAT_WARMUP))
    places = placements()
    for pl in places:
        log("  placement %-5s: %s; client and upstream on CPU %s" % (pl["name"], pl["label"], pl["client"]))
    detail = {}
    total = LAT_SAMPLES + LAT_WARMUP
    for mode in ("miss", "pass"):
        d = detail.setdefault(mode, {})
        pooled, counts, cpus = {}, {}, {}
        for rnd in range(LAT_ROUNDS):
            for pl in (places if rnd % 2 == 0 else places[::-1]):
                if not pin_upstream(pl["upstream"]):
                    problem("could not pin the test upstream to CPU %s: placement %s is not what it says" % (
                        pl["upstream"], pl["name"]))
                servers = active()
                servers = servers[rnd % len(servers):] + servers[:rnd % len(servers)] if servers else servers
                targets = [(name, UP, cpu, PIDS.get("upstream")) for name, cpu in pl["baselines"]]
                targets += [(s, SERVERS[s]["h1"], pl["client"], PIDS.get(s)) for s in servers]
                for name, addr, cpu, pid in targets:
                    if name in SERVERS and SERVERS[name]["status"] != "ok":
                        continue
                    base = "/%s/%s/%s/%s/%d/obj" % (mode, RUN_ID, pl["name"], name, rnd)
                    if mode == "miss":
                        qs = "size=2048&ctype=application/json&cc=public,max-age=600&i=%d"
                    else:
                        qs = "size=2048&ctype=application/json&cc=no-store&i=%d"
                    urls = ["http://%s%s?%s" % (addr, base, qs % i) for i in range(total)]
                    durs, bad, rc, out, cpu_us = latency_run(name, urls, cpu, pid)
                    key = (pl["name"], name)
                    pooled.setdefault(key, []).extend(durs)
                    c = counts.setdefault(key, [0, 0, 0])  # non-200, upstream fetched, requested
                    c[0] += bad
                    c[1] += upstream_count(base)
                    c[2] += total
                    if cpu_us is not None:
                        cpus.setdefault(key, []).append(cpu_us)
                    if not durs:
                        problem("%s %s %s: no latency samples (rc %s): %s" % (mode, pl["name"], name, rc, out.strip()[-300:]))
                    if name in SERVERS:
                        check_alive(mode)
        pin_upstream(CPU_CLIENT)
        for pl in places:
            dp = d.setdefault(pl["name"], {})
            for (plname, name), durs in sorted(pooled.items()):
                if plname != pl["name"]:
                    continue
                durs = sorted(durs)
                bad, fetched, requested = counts[(plname, name)]
                c = cpus.get((plname, name))
                res = {"samples": len(durs), "non200": bad, "p50_us": percentile(durs, 50), "p99_us": percentile(durs, 99),
                       "mean_us": sum(durs) / len(durs) if durs else None, "upstream_fetches": fetched,
                       "requests": requested, "cpu_us_per_request": sum(c) / len(c) if c else None,
                       "cpu_what": "the upstream's" if name.startswith("direct") else "the proxy's (all its processes and threads)"}
                dp[name] = res
                log("  %-4s %-5s %-11s p50=%s us  p99=%s us  mean=%s us  cpu/req=%s us  (samples %d, non-200 %d, upstream saw %d of %d)" % (
                    mode, pl["name"], name, res["p50_us"], res["p99_us"], "%.0f" % res["mean_us"] if durs else "?",
                    "%.1f" % res["cpu_us_per_request"] if c else "?", len(durs), bad, fetched, requested))
                if bad:
                    problem("%s %s %s: %d non-200 answers" % (mode, pl["name"], name, bad))
                if fetched != requested:
                    problem("%s %s %s: the upstream saw %d of %d requests (each should reach it once)" % (
                        mode, pl["name"], name, fetched, requested))
            direct = dp.get("direct", {})
            for s in active():
                if s in dp:
                    p50 = dp[s]["p50_us"]
                    dp[s]["added_p50_us"] = p50 - direct["p50_us"] if p50 is not None and direct.get("p50_us") is not None else None
            rows = [("p50", "%s p50, %s (us)", "p50_us"), ("added_p50", "%s added at p50, %s (us)", "added_p50_us"),
                    ("p99", "%s p99, %s (us)", "p99_us"), ("cpu", "%s CPU per request, %s (us)", "cpu_us_per_request")]
            for k, lab, field in rows:
                row = {"workload": "%s-%s-%s" % (mode, pl["name"], k), "label": lab % (mode, pl["label"]),
                       "unit": "us", "better": "lower", "values": {s: dp[s].get(field) for s in active() if s in dp},
                       "detail": {}, "placement": pl["name"]}
                if k == "cpu":
                    row["baseline_text"] = "the upstream's own: %s us" % fmt(direct.get(field), "us")
                else:
                    row["baseline_text"] = "direct: %s us" % fmt(direct.get(field if k != "added_p50" else "p50_us"), "us")
                    if "direct-xcpu" in dp:
                        row["baseline_text"] += ", client on the other CPU: %s us" % fmt(
                            dp["direct-xcpu"].get(field if k != "added_p50" else "p50_us"), "us")
                results.append(row)
    return detail


# ---------------------------------------------------------------------------------------------------------- report

def ratio(row, peer):  # peer: nginx, varnish or bare
    c, p = row["values"].get("corral"), row["values"].get(peer)
    if c is None or p is None or p == 0:
        return None
    if row["workload"].endswith("added_p50") and (p <= 0 or c < 0):
        return None  # a difference near zero makes a ratio meaningless
    return c / p


def fmt(v, unit):
    if v is None:
        return "-"
    if unit == "req/s":
        return "%.0f" % v
    if unit == "count":
        return "%d" % v
    if unit == "us":
        return "%.0f" % v
    return "%.1f" % v


def print_table(results, hit_counts):
    log("\n== results (ratios are corral / peer: higher is better for corral on req/s, lower on latency and fetches)")
    head = "%-44s %10s %10s %10s %10s %9s %9s %7s  %s" % ("workload", "corral", "nginx", "varnish", "bare h2o", "c/nginx",
                                                          "c/varnish", "c/bare", "served encoding c / n / v / b")
    log(head)
    log("-" * len(head))
    for r in results:
        enc = ""
        if r["detail"]:
            enc = " / ".join(r["detail"].get(s, {}).get("served_encoding", "-") for s in ORDER + ["bare"] if s in SERVERS)
        if r.get("baseline_text"):
            enc = r["baseline_text"]
        rn, rv, rb = ratio(r, "nginx"), ratio(r, "varnish"), ratio(r, "bare")
        r["ratio"] = {"nginx": rn, "varnish": rv, "bare": rb}
        log("%-44s %10s %10s %10s %10s %9s %9s %7s  %s" % (
            r["label"], fmt(r["values"].get("corral"), r["unit"]), fmt(r["values"].get("nginx"), r["unit"]),
            fmt(r["values"].get("varnish"), r["unit"]), fmt(r["values"].get("bare"), r["unit"]),
            "%.2fx" % rn if rn is not None else "-", "%.2fx" % rv if rv is not None else "-",
            "%.2f" % rb if rb is not None else "-", enc))
    rl = [r for r in results if r["values"].get("corral-rl") is not None and r["values"].get("corral")]
    if rl:
        log("\nrate limiter on the hit route (rate_limit: applies_to: all, never over): corral-rl / corral, best of the rounds")
        for r in rl:
            r["ratio"]["corral-rl"] = r["values"]["corral-rl"] / r["values"]["corral"]
            log("  %-44s %10s %10s  %.3f" % (r["label"], fmt(r["values"]["corral"], r["unit"]),
                                            fmt(r["values"]["corral-rl"], r["unit"]), r["ratio"]["corral-rl"]))


def versions():
    v = {}
    for name, cmd in (("corral", [ENV.get("BENCH_CORRAL_BIN", "build/corral"), "--version"]), ("nginx", ["nginx", "-v"]),
                      ("varnish", ["varnishd", "-V"]), ("h2load", ["h2load", "--version"]), ("wrk", ["wrk", "-v"])):
        try:
            _, out = run(cmd, timeout=10)
            v[name] = out.strip().splitlines()[0] if out.strip() else "?"
        except (OSError, subprocess.TimeoutExpired):
            v[name] = "not installed"
    try:
        _, head = run(["git", "rev-parse", "--short", "HEAD"], timeout=10)
        _, dirty = run(["git", "status", "--porcelain", "--", "sidecar", "include"], timeout=10)
        v["corral_tree"] = head.strip() + (" + uncommitted changes in sidecar/ or include/" if dirty.strip() else "")
    except (OSError, subprocess.TimeoutExpired):
        pass
    return v


def machine():
    model = "?"
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"nproc": os.cpu_count(), "cpu_model": model, "kernel": platform.release(),
            "server_cpu": ENV.get("BENCH_CPU_SERVER"), "client_cpu": CPU_CLIENT}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--json", help="write the table and details as JSON to this file")
    ap.add_argument("--only", default="hit,stampede,latency,tier",
                    help="comma-separated sections to run: hit,stampede,latency,tier")
    args = ap.parse_args()
    only = set(args.only.split(","))
    if not only <= {"hit", "stampede", "latency", "tier"}:
        ap.error("--only takes hit, stampede, latency and tier")

    started = time.time()
    m, v = machine(), versions()
    log("corral bench  %s  nproc=%s  %s" % (datetime.datetime.now().isoformat(timespec="seconds"), m["nproc"], m["cpu_model"]))
    for k in ORDER + ["corral_tree", "h2load", "wrk"]:
        log("  %-8s %s%s" % (k, v.get(k), "" if k not in SERVERS or SERVERS[k]["status"] == "ok" else "  [%s: not benchmarked]" % SERVERS[k]["status"]))
    for s in ORDER:
        if SERVERS[s]["status"] != "ok":
            problem("%s is %s: its column is empty" % (s, SERVERS[s]["status"]))
    log("  servers pinned to CPU %s, load generators and the test upstream to CPU %s" % (m["server_cpu"], m["client_cpu"]))
    m["loadavg_start"] = open("/proc/loadavg").read().strip()
    log("  /proc/loadavg at start: %s (anything else running on this machine skews every figure)" % m["loadavg_start"])

    results = []
    hit_counts = bench_hits(results) if "hit" in only else {}
    # latency and tier before the stampede: after 5000 clients Varnish reaps thousands of idle threads for a while,
    # which doubled its CPU per miss and pass when measured then (and shares CPU 1 with the tier section's corrals)
    latency = bench_latency(results) if "latency" in only else {}
    tier = tier_bench.bench_tier(results, log=log, problem=problem, quick=QUICK, work=WORK,
                                 corral_bin=ENV.get("BENCH_CORRAL_BIN"), cpu_server=ENV.get("BENCH_CPU_SERVER", "1"),
                                 cpu_client=CPU_CLIENT) if "tier" in only else {}
    stampede = bench_stampede(results) if "stampede" in only else {}
    print_table(results, hit_counts)

    # anything corral logged above [info] (errors, warnings, assertion failures) is worth a look
    try:
        lines = open(os.path.join(WORK, "corral.out"), errors="replace").read().splitlines()
    except OSError:
        lines = []
    # (access-log lines are JSON objects on the same stdout: not log messages)
    odd = [l for l in lines if "[info]" not in l and not l.startswith('{"time":')]
    if odd:
        problem("corral logged %d line(s) above info level; first ones: %s" % (len(odd), " | ".join(odd[:5])[:600]))

    log("\nchecks:")
    for s in ORDER:
        if s in hit_counts:
            log("  %-8s served the hit workloads from its cache: %s (upstream fetched its hit object %d time%s)" % (
                s, "yes" if hit_counts[s] == 1 else "NO", hit_counts[s], "" if hit_counts[s] == 1 else "s"))
    if PROBLEMS:
        log("problems (%d):" % len(PROBLEMS))
        for p in PROBLEMS:
            log("  - " + p)
    else:
        log("  no problems seen")
    elapsed = time.time() - started
    m["loadavg_end"] = open("/proc/loadavg").read().strip()
    log("/proc/loadavg at the end: %s" % m["loadavg_end"])
    log("bench took %.0f s" % elapsed)

    if args.json:
        doc = {"date": datetime.datetime.now().isoformat(timespec="seconds"), "machine": m, "versions": v,
               "servers": {s: SERVERS[s]["status"] for s in ORDER}, "run_id": RUN_ID,
               "settings": {"sections": sorted(only), "hit_seconds": HIT_SECONDS, "hit_rounds": HIT_ROUNDS, "latency_rounds": LAT_ROUNDS,
                            "stampede_clients": STAMPEDE_SIZES,
                            "latency_samples": LAT_SAMPLES, "latency_warmup": LAT_WARMUP},
               "table": results, "hit_object_upstream_fetches": hit_counts, "stampede": stampede,
               "miss_pass": latency, "tier": tier, "notes": NOTES, "problems": PROBLEMS, "elapsed_s": round(elapsed, 1)}
        with open(args.json, "w") as f:
            json.dump(doc, f, indent=2)
        log("wrote %s" % args.json)


if __name__ == "__main__":
    main()
