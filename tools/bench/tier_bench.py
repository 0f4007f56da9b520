#!/usr/bin/env python3
"""tier_bench.py: the `tier` section of make bench (tools/bench/run.sh --only tier): corral's shared memcached tier
(L2) between pods. bench.py calls bench_tier(); it also runs alone, starting everything it needs itself:

    python3 tools/bench/tier_bench.py [--corral build/corral] [--quick] [--json FILE]

Set-up (all on 127.0.0.1, free ports, files in a temp dir): 3 memcached (-t 1 -m 64), 3 corrals A, B, C (threads: 1,
256 MiB, the tier on the three memcached in one order, every tier.* key at its default, one cached route for /) and
the test upstream (tools/test-upstream.py). The corrals are pinned to the servers' CPU (1); the upstream, the
memcached (corral's backends, like the upstream) and every client (h2load, this script's own http.client loop) to
the other (0). Every client sends the same authority (tier.test): it is part of the cache key.

  1. L2 hit vs L1 hit: N keys (5000; --quick 1000) of a 2 KB JSON object filled through A (until A's
     corral_tier_l2_sets_total rose by N), then requested once each at B, all L2 hits (B's corral_tier_l2_hits_total
     rises by N, the upstream sees none), then once more at B, all L1 hits. h2load -c 1 -m 10 -i URI-list (h2load
     starts every client at the head of the list: one client of 10 streams requests each key once); req/s, and
     mean, p50, p99, max latency from h2load --log-file.
  2. Cross-pod stampede: 100 clients at each of the 3 corrals at once (three h2load -c 100 -n 100 -m 1), one cold
     key whose upstream answer takes 200 ms: upstream fetches (/__count), client latency mean and max pooled over the
     300 requests, and the pods' lease counters. 3 rounds, a fresh key each.
  3. Invalidation delay A -> B: per purge i (1000; --quick 200), B is made to hold /inv/i in L1 (two GETs, the second
     a `corral; hit`), then POST /v1/purge {"keys": [path]} goes to A's admin port and B is polled (keep-alive
     http.client, back to back) until it stops answering a hit. The delay runs from just before the purge request to
     the send of the first poll answered with a non-hit (B applied the purge before serving that poll and after the
     previous one: an upper bound, at most one poll round trip late; the non-hit's own refill is not counted).
     p50, p90, p99, max; B's own corral_tier_invalidation_delay_seconds figures beside them.
  4. L1 hits with memcached frozen: a fourth corral N, the same but without a tier, is the baseline. 200 keys are
     filled at A and at N; then h2load -c 8 -m 8 sends 20000 L1 hits (--quick 5000) per round, 8 rounds at each,
     alternating which goes first; then all three memcached get SIGSTOP and the rounds are run again (SIGCONT after).
     The p99 of each round from h2load's log; per round, A's p99 over N's of the same round (the two run back to
     back), and the median of those ratios (the issue's goal: <= 1.2 x with memcached frozen); also the ratio of the
     rounds' median p99s, A's open breakers and failed memcached calls.

Cleanup: every process started here is stopped by PID (TERM, then KILL after 12 s) in a finally block, on SIGTERM
too; the children also get PR_SET_PDEATHSIG (SIGKILL), so none outlives this process. A benchmark, not a test: it
asserts nothing but reports (problem()) what does not behave as described. Standard library only.
"""

import argparse
import ctypes
import http.client
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
AUTHORITY = "tier.test"
OBJ_QUERY = "size=2048&ctype=application/json&cc=public,max-age=600"
STAMPEDE_CLIENTS = 100   # per corral
STAMPEDE_ROUNDS = int(os.environ.get("TIER_STAMPEDE_ROUNDS", "3"))  # more rounds: a check of the lease's races
STAMPEDE_DELAY_MS = 200
POLL_LIMIT_S = 2.0       # section 3: a purge not seen by B within this is reported, not waited for
_LIBC = ctypes.CDLL(None, use_errno=True)
PR_SET_PDEATHSIG = 1


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Procs:
    """The processes this section started, stopped by PID in stop_all()."""

    def __init__(self, work):
        self.work = work
        self.procs = []  # [(name, Popen)]
        self.parent = os.getpid()

    def start(self, name, cpu, argv, log_name=None):
        parent = self.parent

        def child():
            os.sched_setaffinity(0, {int(cpu)})
            _LIBC.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
            if os.getppid() != parent:
                os._exit(127)

        with open(os.path.join(self.work, (log_name or name) + ".out"), "wb") as out:
            p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                 preexec_fn=child, cwd=ROOT)
        self.procs.append((name, p))
        return p

    def stop_all(self):
        live = [p for _, p in self.procs if p.poll() is None]
        for p in live:
            p.send_signal(signal.SIGTERM)
        deadline = time.time() + 12  # corral drains open requests for up to 10 s
        for p in live:
            try:
                p.wait(timeout=max(0.1, deadline - time.time()))
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(timeout=5)
        self.procs = []


def _wait_until(what, ok, proc, timeout=10.0):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError("%s exited during start-up (status %s)" % (what, proc.returncode))
        try:
            if ok():
                return
        except OSError:
            pass
        time.sleep(0.05)
    raise RuntimeError("%s did not come up within %.0f s" % (what, timeout))


def _tcp_ok(port):
    with socket.create_connection(("127.0.0.1", port), timeout=1):
        return True


def _http_ok(url):
    with urllib.request.urlopen(url, timeout=1) as r:
        return r.status == 200


CORRAL_YAML = """threads: 1
listen:
  - address: 127.0.0.1:{port}
upstream:
  url: http://127.0.0.1:{up}
  max_connections: 64
admin:
  address: 127.0.0.1:{admin}
cache:
  memory: 256MiB
tier:
  memcached:
    servers: [{servers}]
routes:
  - match: {{ prefix: / }}
    cache: true
"""


class Env:
    """3 memcached, the upstream, corrals A, B, C."""

    def __init__(self, procs, work, corral_bin, cpu_server, cpu_client):
        self.procs, self.work = procs, work
        self.up = _free_port()
        upstream = [sys.executable, os.path.join(ROOT, "tools/test-upstream.py"), "--port", str(self.up)]
        self.upstream = procs.start("tier-upstream", cpu_client, upstream)
        self.mc = []
        for i in range(3):
            port = _free_port()
            argv = ["memcached", "-l", "127.0.0.1", "-p", str(port), "-U", "0", "-t", "1", "-m", "64"]
            if os.geteuid() == 0:
                argv += ["-u", "root"]
            self.mc.append((port, procs.start("tier-mc%d" % i, cpu_client, argv)))
        _wait_until("the test upstream", lambda: _http_ok("http://127.0.0.1:%d/__health" % self.up), self.upstream)
        for port, p in self.mc:
            _wait_until("memcached on %d" % port, lambda: _tcp_ok(port), p)
        servers = ", ".join('"127.0.0.1:%d"' % port for port, _ in self.mc)
        self.corrals = []
        for name in ("A", "B", "C"):
            port, admin = _free_port(), _free_port()
            conf = os.path.join(work, "tier-%s.yaml" % name)
            with open(conf, "w") as f:
                f.write(CORRAL_YAML.format(port=port, up=self.up, admin=admin, servers=servers))
            p = procs.start("tier-corral-" + name, cpu_server, [corral_bin, "-c", conf])
            self.corrals.append({"name": name, "port": port, "admin": admin, "proc": p})
        # N: the same corral without a tier, the baseline of section 4
        port, admin = _free_port(), _free_port()
        conf = os.path.join(work, "tier-N.yaml")
        with open(conf, "w") as f:
            f.write(re.sub(r"tier:\n  memcached:\n    servers: \[[^]]*\]\n", "",
                           CORRAL_YAML.format(port=port, up=self.up, admin=admin, servers=servers)))
        p = procs.start("tier-corral-N", cpu_server, [corral_bin, "-c", conf])
        self.baseline = {"name": "N", "port": port, "admin": admin, "proc": p}
        for c in self.corrals + [self.baseline]:
            _wait_until("corral " + c["name"], lambda: _http_ok("http://127.0.0.1:%d/healthz" % c["admin"]), c["proc"])
        if "tier_l2_hits_total" in self.metrics("N") or "corral_tier_l2_hits_total" in self.metrics("N"):
            raise RuntimeError("corral N was meant to run without a tier")

    def corral(self, name):
        return next(c for c in self.corrals + [self.baseline] if c["name"] == name)

    def metrics(self, name):
        with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % self.corral(name)["admin"], timeout=10) as r:
            text = r.read().decode()
        out = {}
        for line in text.splitlines():
            if line.startswith("#") or "{" in line:
                continue
            parts = line.split()
            if len(parts) == 2:
                try:
                    out[parts[0]] = float(parts[1])
                except ValueError:
                    pass
        return out

    def metric(self, name, key):
        return self.metrics(name).get("corral_" + key, 0.0)

    def up_get(self, path):
        with urllib.request.urlopen("http://127.0.0.1:%d%s" % (self.up, path), timeout=10) as r:
            return json.loads(r.read().decode())

    def up_count(self, path):
        return self.up_get("/__count?path=" + urllib.parse.quote(path, safe=""))["count"]

    def up_total(self):
        return self.up_get("/__total")["count"]


# ---------------------------------------------------------------------------------------------------------- h2load

def parse_h2load(out):
    """req/s and the count of 2xx answers from h2load's summary."""
    m, s = re.search(r"finished in [\d.]+\w+, ([\d.]+) req/s", out), re.search(r"status codes: (\d+) 2xx", out)
    return {"rps": float(m.group(1)) if m else None, "2xx": int(s.group(1)) if s else None}


def read_log(path):
    """[(start_us, status, duration_us)] from h2load --log-file."""
    if not os.path.exists(path):
        return []
    with open(path) as f:
        return [tuple(int(x) for x in line.split()[:3]) for line in f if len(line.split()) >= 3]


def pct(sorted_vals, p):
    """Nearest-rank percentile of an ascending list."""
    if not sorted_vals:
        return None
    k = max(0, min(len(sorted_vals) - 1, int(-(-p * len(sorted_vals) // 100)) - 1))
    return sorted_vals[k]


def lat_stats(durs):
    d = sorted(durs)
    if not d:
        return {"n": 0, "mean": None, "p50": None, "p90": None, "p99": None, "max": None}
    return {"n": len(d), "mean": sum(d) / len(d), "p50": pct(d, 50), "p90": pct(d, 90), "p99": pct(d, 99), "max": d[-1]}


class Runner:
    def __init__(self, env, procs, work, cpu_client, problem):
        self.env, self.procs, self.work, self.cpu, self.problem = env, procs, work, cpu_client, problem
        self.seq = 0

    def h2load(self, args, uris=None):
        """Starts h2load (pinned to the clients' CPU); returns (Popen, log file, output file)."""
        self.seq += 1
        base = os.path.join(self.work, "tier-h2load-%d" % self.seq)
        if uris is not None:
            with open(base + ".uris", "w") as f:
                f.write("\n".join(uris) + "\n")
            args = args + ["-i", base + ".uris"]
        argv = ["h2load", "-t", "1", "-H", ":authority: " + AUTHORITY, "--log-file", base + ".log"] + args
        p = self.procs.start("h2load", self.cpu, argv, log_name=os.path.basename(base))
        return p, base + ".log", base + ".out"

    def finish(self, started, timeout=120):
        p, logf, outf = started
        try:
            p.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
            self.problem("tier: h2load did not finish within %d s (killed)" % timeout)
        out = open(outf, errors="replace").read()
        return parse_h2load(out), read_log(logf), out

    def run(self, args, uris=None):
        return self.finish(self.h2load(args, uris))


# ---------------------------------------------------------------------------------------------------------- 1. L2 vs L1

def section_hits(r, run_id, n):
    env = r.env
    a, b = env.corral("A"), env.corral("B")
    paths = ["/tier/%s/obj/%d" % (run_id, i) for i in range(n)]
    uris_a = ["http://127.0.0.1:%d%s?%s" % (a["port"], p, OBJ_QUERY) for p in paths]
    uris_b = ["http://127.0.0.1:%d%s?%s" % (b["port"], p, OBJ_QUERY) for p in paths]
    res = {"keys": n, "client": "h2load -c 1 -m 10 (h2c), one request per key"}

    total0, sets0 = env.up_total(), env.metric("A", "tier_l2_sets_total")
    st, _, out = r.run(["-c", "1", "-m", "10", "-n", str(n)], uris_a)
    if st.get("2xx") != n:
        r.problem("tier fill through A: %s of %d answers were 2xx: %s" % (st.get("2xx"), n, out.strip()[-300:]))
    deadline = time.time() + 20
    while env.metric("A", "tier_l2_sets_total") - sets0 < n and time.time() < deadline:
        time.sleep(0.05)
    res["fill_rps"] = st.get("rps")
    res["fill_l2_sets"] = int(env.metric("A", "tier_l2_sets_total") - sets0)
    res["fill_upstream_fetches"] = env.up_total() - total0
    if res["fill_l2_sets"] < n:
        r.problem("tier fill: A wrote %d of %d objects to L2 within 20 s (set errors: %d)" % (
            res["fill_l2_sets"], n, env.metric("A", "tier_l2_set_errors_total")))

    for phase, want in (("l2", "tier_l2_hits_total"), ("l1", "cache_hits_total")):
        m0, total0 = env.metrics("B"), env.up_total()
        st, rows, out = r.run(["-c", "1", "-m", "10", "-n", str(n)], uris_b)
        m1 = env.metrics("B")
        d = {k: int(m1.get("corral_" + k, 0) - m0.get("corral_" + k, 0))
             for k in ("tier_l2_hits_total", "tier_l2_misses_total", "cache_hits_total")}
        ph = {"rps": st.get("rps"), "ok_2xx": st.get("2xx"), "upstream_fetches": env.up_total() - total0,
              "b_metrics_delta": d, "latency_us": lat_stats([x[2] for x in rows if x[1] == 200])}
        res[phase] = ph
        if st.get("2xx") != n:
            r.problem("tier %s pass at B: %s of %d answers were 2xx: %s" % (
                phase, st.get("2xx"), n, out.strip()[-300:]))
        if d[want] != n:
            r.problem("tier %s pass at B: B's %s rose by %d, not %d" % (phase, want, d[want], n))
        if phase == "l1" and d["tier_l2_hits_total"]:
            r.problem("tier l1 pass at B: %d requests still went to L2" % d["tier_l2_hits_total"])
        if ph["upstream_fetches"]:
            r.problem("tier %s pass at B: the upstream was asked %d times" % (phase, ph["upstream_fetches"]))
    l1, l2 = res["l1"], res["l2"]
    res["l1_over_l2_rps"] = l1["rps"] / l2["rps"] if l1["rps"] and l2["rps"] else None
    res["l2_over_l1_p50"] = (l2["latency_us"]["p50"] / l1["latency_us"]["p50"]
                             if l1["latency_us"]["p50"] and l2["latency_us"]["p50"] else None)
    return res


# ---------------------------------------------------------------------------------------------------------- 2. stampede

POD_KEYS = ("tier_leases_taken_total", "tier_lease_waits_total", "tier_lease_served_total", "tier_lease_gave_up_total",
            "tier_l2_hits_total", "tier_l2_misses_total", "tier_l2_errors_total", "tier_values_refused_total")


def section_stampede(r, run_id):
    env = r.env
    rounds = []
    for rnd in range(STAMPEDE_ROUNDS):
        path = "/tier/%s/stampede/%d" % (run_id, rnd)
        q = "delay=%d&cc=public,max-age=600" % STAMPEDE_DELAY_MS
        m0 = {c["name"]: env.metrics(c["name"]) for c in env.corrals}
        started = [r.h2load(["-c", str(STAMPEDE_CLIENTS), "-n", str(STAMPEDE_CLIENTS), "-m", "1"],
                            ["http://127.0.0.1:%d%s?%s" % (c["port"], path, q)]) for c in env.corrals]
        fin = [r.finish(s, timeout=60) for s in started]
        rows = [x for _, rws, _ in fin for x in rws]
        ok = sum(1 for x in rows if x[1] == 200)
        lat = lat_stats([x[2] / 1000.0 for x in rows if x[1] == 200])
        per_pod = {}
        for c, (_, rws, _) in zip(env.corrals, fin):
            m1 = env.metrics(c["name"])
            per_pod[c["name"]] = {"mean_ms": lat_stats([x[2] / 1000.0 for x in rws if x[1] == 200])["mean"],
                                  **{k: int(m1.get("corral_" + k, 0) - m0[c["name"]].get("corral_" + k, 0))
                                     for k in POD_KEYS}}
        starts = [x[0] for x in rows]
        res = {"key": path, "clients": len(env.corrals) * STAMPEDE_CLIENTS, "ok_200": ok, "fetches": env.up_count(path),
               "latency_ms": lat, "send_spread_ms": (max(starts) - min(starts)) / 1000.0 if starts else None,
               "pods": per_pod}
        rounds.append(res)
        if ok != res["clients"]:
            r.problem("tier stampede round %d: %d of %d requests got a 200" % (rnd + 1, ok, res["clients"]))
        if res["fetches"] != 1:
            r.problem("tier stampede round %d: the upstream was asked %d times (expected 1)" % (
                rnd + 1, res["fetches"]))
    return {"rounds": rounds, "upstream_delay_ms": STAMPEDE_DELAY_MS,
            "client": "three h2load -c %d -n %d -m 1 started together, one per corral" % (
                STAMPEDE_CLIENTS, STAMPEDE_CLIENTS)}


# ---------------------------------------------------------------------------------------------- 3. invalidation

def _get(conn, target):
    conn.request("GET", target, headers={"Host": AUTHORITY})
    resp = conn.getresponse()
    resp.read()
    return resp.status, resp.getheader("cache-status", "")


def _is_hit(cache_status):
    return cache_status.replace(" ", "").startswith("corral;hit")


def section_invalidation(r, run_id, n):
    env = r.env
    a, b = env.corral("A"), env.corral("B")
    old_aff = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {int(r.cpu)})  # this loop is the client: on the clients' CPU
    cb = http.client.HTTPConnection("127.0.0.1", b["port"], timeout=5)
    ca = http.client.HTTPConnection("127.0.0.1", a["admin"], timeout=5)
    delays, polls, purge_ms, missed, not_held = [], [], [], 0, 0
    m0 = env.metrics("B")
    deadline_all = time.time() + 90
    try:
        for i in range(n):
            if time.time() > deadline_all:
                r.problem("tier invalidation: stopped after %d of %d purges (90 s budget)" % (i, n))
                break
            path = "/tier/%s/inv/%d" % (run_id, i)
            target = path + "?cc=public,max-age=600"
            _get(cb, target)
            st, cs = _get(cb, target)
            if st != 200 or not _is_hit(cs):
                not_held += 1
                continue
            body = json.dumps({"keys": [path]})
            t0 = time.perf_counter()
            ca.request("POST", "/v1/purge", body=body, headers={"Content-Type": "application/json"})
            pr = ca.getresponse()
            pr.read()
            purge_ms.append((time.perf_counter() - t0) * 1000.0)
            if pr.status != 200:
                r.problem("tier invalidation: purge %d answered %d" % (i, pr.status))
                break
            k = 0
            while True:
                ts = time.perf_counter()
                st, cs = _get(cb, target)
                k += 1
                if not _is_hit(cs):
                    delays.append((ts - t0) * 1000.0)
                    polls.append(k)
                    break
                if ts - t0 > POLL_LIMIT_S:
                    missed += 1
                    break
    finally:
        cb.close()
        ca.close()
        os.sched_setaffinity(0, old_aff)
    m1 = env.metrics("B")
    applied, dsum, gaps = (m1.get("corral_tier_" + k, 0) - m0.get("corral_tier_" + k, 0) for k in (
        "invalidations_applied_total", "invalidation_delay_seconds_sum", "invalidation_gaps_total"))
    res = {"purges": n, "measured": len(delays), "not_seen_within_s": POLL_LIMIT_S, "not_seen": missed,
           "not_held_in_l1": not_held, "delay_ms": lat_stats(delays), "purge_request_ms": lat_stats(purge_ms),
           "polls_per_purge_mean": sum(polls) / len(polls) if polls else None,
           "b_applied": int(applied), "b_delay_ms_mean": dsum * 1000.0 / applied if applied else None,
           "b_delay_ms_max": m1.get("corral_tier_invalidation_delay_max_seconds", 0) * 1000.0, "b_gaps": int(gaps)}
    if missed:
        r.problem("tier invalidation: %d purges at A were not seen by B within %.0f s" % (missed, POLL_LIMIT_S))
    if not_held:
        r.problem("tier invalidation: B did not hold the object in L1 (second GET not a hit) %d times" % not_held)
    if gaps:
        r.problem("tier invalidation: B logged %d invalidation log gaps (dropped its L1)" % gaps)
    return res


# ---------------------------------------------------------------------------------------------------------- report

# ---------------------------------------------------------------------------------------------- 4. frozen memcached

FROZEN_KEYS = 200
FROZEN_ROUNDS = 8        # per phase, alternating which corral goes first
FROZEN_REQUESTS = 20000  # per round


def section_frozen(r, run_id, quick):
    """L1 hits at A (tier on) with its three memcached frozen by SIGSTOP, against N (no tier), side by side."""
    env = r.env
    a, nt = env.corral("A"), env.corral("N")
    paths = ["/tier/%s/frozen/%d" % (run_id, i) for i in range(FROZEN_KEYS)]
    nreq = FROZEN_REQUESTS // 4 if quick else FROZEN_REQUESTS

    def uris(c):
        return ["http://127.0.0.1:%d%s?%s" % (c["port"], p, OBJ_QUERY) for p in paths]

    for c in (a, nt):  # fill both L1s (A also writes L2), then wait for A's L2 writes so none is pending later
        sets0 = env.metric("A", "tier_l2_sets_total")
        st, _, out = r.run(["-c", "1", "-m", "10", "-n", str(FROZEN_KEYS)], uris(c))
        if st.get("2xx") != FROZEN_KEYS:
            r.problem("tier frozen: fill at %s: %s of %d answers were 2xx" % (c["name"], st.get("2xx"), FROZEN_KEYS))
    deadline = time.time() + 10
    while env.metric("A", "tier_l2_sets_total") - sets0 < FROZEN_KEYS and time.time() < deadline:
        time.sleep(0.05)

    def phase(label):
        runs = {"A": [], "N": []}
        for rnd in range(FROZEN_ROUNDS):
            order = (("N", nt), ("A", a)) if rnd % 2 == 0 else (("A", a), ("N", nt))
            for name, c in order:
                hits0 = env.metric(name, "cache_hits_total")
                st, rows, out = r.run(["-c", "8", "-m", "8", "-n", str(nreq)], uris(c))
                hits = int(env.metric(name, "cache_hits_total") - hits0)
                if st.get("2xx") != nreq or hits != nreq:
                    r.problem("tier frozen (%s): %s round %d: %s of %d answers 2xx, %d hits" % (
                        label, name, rnd + 1, st.get("2xx"), nreq, hits))
                runs[name].append({"rps": st.get("rps"),
                                   "latency_us": lat_stats([x[2] for x in rows if x[1] == 200])})
        out = {}
        for name in ("A", "N"):
            p99s = sorted(x["latency_us"]["p99"] for x in runs[name] if x["latency_us"]["p99"] is not None)
            rps = [x["rps"] for x in runs[name] if x["rps"]]
            out[name] = {"rounds": runs[name], "p99_median_us": pct(p99s, 50),
                         "rps_mean": sum(rps) / len(rps) if rps else None}
        pa, pn = out["A"]["p99_median_us"], out["N"]["p99_median_us"]
        out["p99_ratio_of_medians"] = pa / pn if pa and pn else None
        # each round's A and N ran back to back, under the same load from the rest of the machine: their ratio is
        # the steadier figure on a shared machine; the median over the rounds is the one reported
        pairs = sorted(x["latency_us"]["p99"] / y["latency_us"]["p99"] for x, y in zip(runs["A"], runs["N"])
                       if x["latency_us"]["p99"] and y["latency_us"]["p99"])
        out["p99_ratio"] = (pairs[(len(pairs) - 1) // 2] + pairs[len(pairs) // 2]) / 2 if pairs else None
        out["p99_pair_ratios"] = [round(v, 3) for v in pairs]
        return out

    res = {"keys": FROZEN_KEYS, "rounds": FROZEN_ROUNDS, "requests": nreq,
           "client": "h2load -c 8 -m 8, L1 hits over %d keys" % FROZEN_KEYS}
    res["up"] = phase("memcached up")
    fails0 = env.metric("A", "tier_memcached_failures_total")
    for _, p in env.mc:
        p.send_signal(signal.SIGSTOP)
    try:
        time.sleep(0.5)  # the invalidation poll meets the frozen servers and the breakers open
        res["frozen"] = phase("memcached frozen")
        res["breaker_open_servers"] = int(env.metric("A", "tier_breaker_open_servers"))
        res["memcached_failures"] = int(env.metric("A", "tier_memcached_failures_total") - fails0)
    finally:
        for _, p in env.mc:
            p.send_signal(signal.SIGCONT)
    # a hit asks no memcached: only the invalidation log's server (polled every 10 ms) meets the freeze
    if res["breaker_open_servers"] < 1:
        r.problem("tier frozen: no breaker open at A while memcached was frozen")
    ratio = res["frozen"]["p99_ratio"]
    if ratio is None or ratio > 1.2:
        r.problem("tier frozen: A's L1-hit p99 with memcached frozen is %s x N's (goal <= 1.2x)" % _f(ratio, "%.2f"))
    return res


def _f(v, spec="%.0f"):
    return spec % v if v is not None else "-"


def report(res, log):
    h, inv, f1 = res["hits"], res["invalidation"], lambda v: _f(v, "%.1f")

    def line(label, *cols):
        log("  %-58s" % label + "".join(" %9s" % c for c in cols))
    log("\n  tier results (corral; 3 memcached, 3 pods of threads: 1 on CPU %s)" % res["cpu_server"])
    line("measure", "req/s", "mean", "p50", "p99", "max")
    log("  " + "-" * 108)
    for ph, lab in (("l2", "L2 hit at B, %d keys filled via A (us)" % h["keys"]),
                    ("l1", "L1 hit at B, the same keys (us)")):
        lat = h[ph]["latency_us"]
        line(lab, _f(h[ph]["rps"]), _f(lat["mean"]), _f(lat["p50"]), _f(lat["p99"]), _f(lat["max"]))
    line("L1 / L2 req/s; L2 / L1 latency at p50", _f(h["l1_over_l2_rps"], "%.2fx"), "",
         _f(h["l2_over_l1_p50"], "%.2fx"))
    line("", "fetches", "mean", "p50", "p99", "max")
    for i, rd in enumerate(res["stampede"]["rounds"]):
        lat = rd["latency_ms"]
        line("stampede %d: %d clients over 3 pods, 200 ms upstream (ms)" % (i + 1, rd["clients"]), rd["fetches"],
             f1(lat["mean"]), f1(lat["p50"]), f1(lat["p99"]), f1(lat["max"]))
    d = inv["delay_ms"]
    line("", "purges", "p50", "p90", "p99", "max")
    line("invalidation A -> B, purge to B's first non-hit (ms)", inv["measured"], f1(d["p50"]), f1(d["p90"]),
         f1(d["p99"]), f1(d["max"]))
    log("  (B's own measure, publisher's clock to applied: mean %s ms, max %s ms over %d entries; the purge request "
        "itself took %s ms at p50; %.1f polls per purge)" % (
            f1(inv["b_delay_ms_mean"]), _f(inv["b_delay_ms_max"]), inv["b_applied"],
            _f(inv["purge_request_ms"]["p50"], "%.2f"), inv["polls_per_purge_mean"] or 0))


def table_rows(res):
    """Rows for bench.py's table (corral's column only)."""
    h, inv = res["hits"], res["invalidation"]["delay_ms"]
    rounds = res["stampede"]["rounds"]
    rows = []

    def row(key, label, unit, v, text=""):
        rows.append({"workload": "tier-" + key, "label": label, "unit": unit, "values": {"corral": v},
                     "better": "higher" if unit == "req/s" else "lower", "detail": {}, "baseline_text": text})
    row("l2-rps", "tier: L2 hit at another pod (req/s)", "req/s", h["l2"]["rps"],
        "%d keys, h2load -c 1 -m 10" % h["keys"])
    row("l1-rps", "tier: L1 hit, the same keys (req/s)", "req/s", h["l1"]["rps"],
        "L1 / L2: %s" % _f(h["l1_over_l2_rps"], "%.2fx"))
    for ph in ("l2", "l1"):
        lat = h[ph]["latency_us"]
        row(ph + "-p50", "tier: %s hit p50 (us)" % ph.upper(), "us", lat["p50"], "p99 %s us" % _f(lat["p99"]))
    if rounds:
        row("stampede-fetches", "tier: 300 clients / 3 pods: fetches (max)", "count", max(r["fetches"] for r in rounds),
            "per round: %s" % ", ".join(str(r["fetches"]) for r in rounds))
        means = [r["latency_ms"]["mean"] for r in rounds if r["latency_ms"]["mean"] is not None]
        maxes = [r["latency_ms"]["max"] for r in rounds if r["latency_ms"]["max"] is not None]
        row("stampede-mean", "tier: 300 / 3 pods: mean latency (ms)", "ms", sum(means) / len(means) if means else None,
            "%d rounds, upstream 200 ms" % len(rounds))
        row("stampede-max", "tier: 300 / 3 pods: max latency (ms)", "ms", max(maxes) if maxes else None)
    fr = res.get("frozen")
    if fr:
        row("frozen-p99-ratio", "tier: L1-hit p99, memcached frozen / no tier", "x", fr["frozen"]["p99_ratio"],
            "A %s us, N %s us" % (_f(fr["frozen"]["A"]["p99_median_us"]), _f(fr["frozen"]["N"]["p99_median_us"])))
    for k in ("p50", "p99", "max"):
        row("inval-" + k, "tier: invalidation A -> B %s (ms)" % k, "ms", inv[k],
            "%d purges" % res["invalidation"]["measured"] if k == "p50" else "")
    return rows


def bench_tier(results, log=print, problem=None, quick=False, work=None, corral_bin=None, cpu_server="1",
               cpu_client="0"):
    """Runs the three measurements; appends table rows to results; returns the details (for the JSON)."""
    problems = []
    if problem is None:
        def problem(msg):
            problems.append(msg)
            log("  PROBLEM: " + msg)
    n_keys, n_purges = (1000, 200) if quick else (5000, 1000)
    run_id = "%x" % int(time.time() * 1000)
    log("\n== tier: the shared memcached tier: 3 memcached, 3 corrals (threads: 1, on CPU %s), tier.* defaults; "
        "upstream, memcached and clients on CPU %s; authority %s" % (cpu_server, cpu_client, AUTHORITY))
    for tool in ("memcached", "h2load"):
        if shutil.which(tool) is None:
            problem("tier: %s is missing (tools/install-deps.sh): section skipped" % tool)
            return {}
    own_dir = None
    if work is None:
        work = own_dir = tempfile.mkdtemp(prefix="corral-tierbench.")
    work = os.path.join(work, "tier")
    os.makedirs(work, exist_ok=True)
    corral_bin = os.path.abspath(corral_bin or os.path.join(ROOT, "build/corral"))
    # a private copy: a relink of build/corral during the run must not change what is measured
    shutil.copy2(corral_bin, os.path.join(work, "corral-bin"))
    procs = Procs(work)
    old_term = signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    res = {"keys": n_keys, "purges": n_purges, "cpu_server": cpu_server, "cpu_client": cpu_client}
    started = time.time()
    try:
        env = Env(procs, work, os.path.join(work, "corral-bin"), cpu_server, cpu_client)
        r = Runner(env, procs, work, cpu_client, problem)
        log("  1. L2 hit vs L1 hit: %d keys filled via A, then twice at B" % n_keys)
        res["hits"] = section_hits(r, run_id, n_keys)
        log("     fill at A (misses: upstream, L1, L2 write): %s req/s, %d upstream fetches, %d L2 sets" % (
            _f(res["hits"]["fill_rps"]), res["hits"]["fill_upstream_fetches"], res["hits"]["fill_l2_sets"]))
        for ph in ("l2", "l1"):
            p = res["hits"][ph]
            log("     %s at B: %s req/s, mean %s us, p50 %s us, p99 %s us, max %s us; B's metrics rose by %s" % (
                ph.upper(), _f(p["rps"]), _f(p["latency_us"]["mean"]), _f(p["latency_us"]["p50"]),
                _f(p["latency_us"]["p99"]), _f(p["latency_us"]["max"]), p["b_metrics_delta"]))
        log("  2. cross-pod stampede: %d rounds of 3 x %d clients on a cold key" % (STAMPEDE_ROUNDS, STAMPEDE_CLIENTS))
        res["stampede"] = section_stampede(r, run_id)
        for i, rd in enumerate(res["stampede"]["rounds"]):
            log("     round %d: fetches=%d ok=%d/%d mean=%s max=%s ms, sends spread over %s ms; pods: %s" % (
                i + 1, rd["fetches"], rd["ok_200"], rd["clients"], _f(rd["latency_ms"]["mean"], "%.1f"),
                _f(rd["latency_ms"]["max"], "%.1f"), _f(rd["send_spread_ms"], "%.1f"),
                "; ".join("%s mean %s ms leases %d waits %d served %d gave_up %d errors %d refused %d" % (
                    k, _f(v["mean_ms"], "%.1f"), v["tier_leases_taken_total"], v["tier_lease_waits_total"],
                    v["tier_lease_served_total"], v["tier_lease_gave_up_total"], v["tier_l2_errors_total"],
                    v["tier_values_refused_total"]) for k, v in rd["pods"].items())))
        log("  3. invalidation delay A -> B: %d purges" % n_purges)
        res["invalidation"] = section_invalidation(r, run_id, n_purges)
        log("  4. L1 hits with memcached frozen (SIGSTOP): A (tier on) against N (no tier), %d rounds each, "
            "alternating" % FROZEN_ROUNDS)
        res["frozen"] = section_frozen(r, run_id, quick)
        fr = res["frozen"]
        for ph in ("up", "frozen"):
            log("     memcached %s: p99 A / N per round, median %s x (rounds: %s); median p99 A %s us, N %s us; "
                "req/s A %s, N %s" % (
                    ph, _f(fr[ph]["p99_ratio"], "%.2f"), fr[ph]["p99_pair_ratios"], _f(fr[ph]["A"]["p99_median_us"]),
                    _f(fr[ph]["N"]["p99_median_us"]), _f(fr[ph]["A"]["rps_mean"]), _f(fr[ph]["N"]["rps_mean"])))
        log("     while frozen: %d of 3 breakers open at A, %d memcached calls failed" % (
            fr["breaker_open_servers"], fr["memcached_failures"]))
        dead = [c["name"] for c in env.corrals + [env.baseline] if c["proc"].poll() is not None]
        if dead:
            problem("tier: corral %s died during the section" % ", ".join(dead))
        report(res, log)
        results.extend(table_rows(res))
    except (RuntimeError, OSError, http.client.HTTPException, KeyError) as e:
        problem("tier: section aborted: %s: %s" % (type(e).__name__, e))
    finally:
        procs.stop_all()
        signal.signal(signal.SIGTERM, old_term)
        for name in ("A", "B", "C", "N"):  # anything a corral logged above info is worth a look
            try:
                lines = open(os.path.join(work, "tier-corral-%s.out" % name), errors="replace").read().splitlines()
            except OSError:
                continue
            # section 4 freezes memcached: the breakers' warnings are expected there
            odd = [l for l in lines if "[info]" not in l and "breaker open" not in l and not l.startswith("{\"time\":")]
            if odd:
                problem("tier: corral %s logged %d line(s) above info level; first: %s" % (
                    name, len(odd), " | ".join(odd[:3])[:400]))
        if own_dir is not None and os.environ.get("BENCH_KEEP", "0") != "1":
            shutil.rmtree(own_dir, ignore_errors=True)
    res["elapsed_s"] = round(time.time() - started, 1)
    log("  tier section took %.0f s" % res["elapsed_s"])
    if problems:
        res["problems"] = problems
    return res


def main():
    ap = argparse.ArgumentParser(description="corral's shared-tier benchmark (the tier section of make bench)")
    ap.add_argument("--corral", default=os.path.join(ROOT, "build/corral"))
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--json", help="write the details as JSON to this file")
    args = ap.parse_args()
    rows, cpu_server = [], "1" if (os.cpu_count() or 1) >= 2 else "0"
    res = bench_tier(rows, quick=args.quick, corral_bin=args.corral, cpu_server=cpu_server, cpu_client="0")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"tier": res, "table": rows}, f, indent=2)
    return 1 if res.get("problems") else 0


if __name__ == "__main__":
    sys.exit(main())
