#!/usr/bin/python3
"""soak.py: `make soak`: SOAK_S seconds (default 600) of mixed traffic and abusive clients against a normal corral
build, then a verdict on three goals (issue 11):

  1. no request error beyond the injected ones: every request of tools/soak/soak_load (hits, misses, 304s, Vary
     variants, writes, admin purges, a pass route, upstream faults, client aborts, the hostile upstream's modes) got
     the outcome its kind must get;
  2. no crash: both corrals are alive at the end and exit 0 on SIGTERM (a clean drain);
  3. RSS flat after warm-up (the first quarter of the run, at least 30 s): every sample at most cache.memory x 1.1 +
     32 MiB, and the last sample within 8 MiB of the first one after warm-up.

Usage: /usr/bin/python3 tools/soak/soak.py --corral build/corral --load build/soak_load [--seconds 600] [--keep]
       [--concurrency 48] [--abusers all|none|rapid-reset,malformed,garbage,slow-reader,slowloris]
(Debian's python3 has python3-h2, which the rapid-reset abuser needs.)
Processes: tools/test-upstream.py behind corral A (the one measured: cache.memory 64 MiB, 2 threads), and
tools/hostile-upstream.py behind corral B (corral has one upstream per process, so the hostile origin gets its own,
also measured), soak_load against both, and these abusers from 127.0.0.2 (so a per-address guard never counts them
against the load's 127.0.0.1): rapid reset (HEADERS + RST_STREAM bursts), malformed HTTP/2 frames, raw-socket garbage
and smuggling-shaped HTTP/1.1, slow readers of large pass and cached answers, and slowloris heads (HTTP/1.1 and
HTTP/2). Their requests have no expected outcome beyond "corral survives and keeps serving everyone else".
Prints RSS (and the store's bytes) every 30 s. Exit status 0 when every goal is met, 1 otherwise, 2 on a setup error.

Invariants: everything binds 127.0.0.1 (abusers connect from 127.0.0.2); every child is started here and stopped by
PID; every loop is bounded by the deadline; temp files in one directory, removed unless --keep.
"""

import argparse
import os
import random
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MIB = 1 << 20
CACHE_MEMORY_MIB = 64
HOSTILE_CACHE_MIB = 16
ABUSE_SRC = "127.0.0.2"
PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"

MAIN_YAML = """threads: 2
listen:
  - address: 127.0.0.1:{port}
upstream:
  url: http://127.0.0.1:{up}
  max_connections: 128
  connect_timeout: 1s
  timeout: 2s
  queue_timeout: 10s
admin:
  address: 127.0.0.1:{admin}
cache:
  memory: {mem}MiB
routes:
  - match: {{ prefix: /c }}
    ttl: 120s
  - match: {{ prefix: /v }}
    ttl: 120s
  - match: {{ prefix: /f }}
    ttl: 60s
  - match: {{ prefix: /p }}
    cache: false
"""

HOSTILE_YAML = """threads: 1
listen:
  - address: 127.0.0.1:{port}
upstream:
  url: http://127.0.0.1:{up}
  max_connections: 16
  timeout: 5s
admin:
  address: 127.0.0.1:{admin}
cache:
  memory: {mem}MiB
limits:
  upstream_header_size: 8KiB
routes:
  - match: {{ prefix: /pass }}
    cache: false
  - match: {{ prefix: /cache }}
    ttl: 60s
"""

CHILDREN = []
STOP = threading.Event()
ABUSE = {}
ABUSE_LOCK = threading.Lock()


def log(msg):
    print("soak: " + msg, flush=True)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def wait_port(port, timeout):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return True
        except OSError:
            time.sleep(0.05)
    return False


def spawn(argv, logpath):
    out = open(logpath, "wb")
    p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, cwd=ROOT)
    out.close()
    CHILDREN.append(p)
    return p


def stop(p, timeout=15):
    """SIGTERM by PID; returns the exit status (negative: killed by that signal), None when it was not running."""
    if p.poll() is not None:
        return None
    p.send_signal(signal.SIGTERM)
    try:
        return p.wait(timeout)
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait()
        return "ignored SIGTERM for %d s (killed)" % timeout


def rss_bytes(pid):
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def metric(admin_port, name):
    try:
        with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % admin_port, timeout=5) as r:
            for line in r.read().decode("utf-8", "replace").splitlines():
                if line.startswith(name + " ") or line.startswith(name + "{"):
                    return float(line.rsplit(" ", 1)[1])
    except OSError:
        pass
    return None


def count(name, n=1):
    with ABUSE_LOCK:
        ABUSE[name] = ABUSE.get(name, 0) + n


def abuser_socket(port, timeout=5):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(timeout)
    s.bind((ABUSE_SRC, 0))
    s.connect(("127.0.0.1", port))
    return s


def drain(s, limit_s):
    """Reads until EOF, an error or limit_s; returns the bytes read (counted, not kept)."""
    n = 0
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline and not STOP.is_set():
        try:
            s.settimeout(max(0.05, min(1.0, deadline - time.monotonic())))
            b = s.recv(65536)
        except socket.timeout:
            continue
        except OSError:
            break
        if not b:
            break
        n += len(b)
    return n


def frame(ftype, flags, stream, payload):
    return struct.pack(">I", len(payload))[1:] + bytes([ftype, flags]) + struct.pack(">I", stream) + payload


def abuse_loop(name, port, once, pause):
    while not STOP.is_set():
        try:
            once(port)
            count(name)
        except OSError:
            count(name + " (connect/io error)")
        except Exception as e:  # an abuser's own bug must not end the soak silently
            count("%s (%s)" % (name, type(e).__name__))
        STOP.wait(pause)


def rapid_reset(port):
    import h2.config
    import h2.connection
    s = abuser_socket(port)
    conn = h2.connection.H2Connection(config=h2.config.H2Configuration(client_side=True))
    conn.initiate_connection()
    s.sendall(conn.data_to_send())
    for _ in range(150):  # below the guard's 200 per connection per 10 s; many connections do the rest
        sid = conn.get_next_available_stream_id()
        conn.send_headers(sid, [(":method", "GET"), (":scheme", "http"), (":authority", "127.0.0.1:%d" % port),
                                (":path", "/c/rr/%d?size=20000" % random.randrange(10 ** 9))], end_stream=True)
        conn.reset_stream(sid)
    s.sendall(conn.data_to_send())
    drain(s, 0.5)
    s.close()


MALFORMED = [
    lambda: b"".join(frame(0xfa, 0, 0, b"x" * 2) for _ in range(100)),        # unknown frame types
    lambda: frame(0x0, 0, 0, b"data on stream 0"),                            # DATA on stream 0
    lambda: frame(0x1, 0x5, 1, b"\xff\xff\xff\xff\xff\xff\xff\x7f"),           # HEADERS, garbage HPACK
    lambda: frame(0x1, 0x5, 2, b"\x82\x86\x84"),                               # HEADERS on an even stream
    lambda: frame(0x4, 0, 0, b"\x00\x04\xff\xff\xff\xff"),                     # SETTINGS window over 2^31-1
    lambda: frame(0x4, 0, 0, b"\x00\x01\x00"),                                 # SETTINGS, bad length
    lambda: frame(0x8, 0, 0, b"\x00\x00\x00\x00"),                             # WINDOW_UPDATE of 0
    lambda: frame(0x0, 0, 1, b"x" * 100),                                      # DATA on an idle stream
    lambda: struct.pack(">I", 1 << 20)[1:] + b"\x00\x00\x00\x00\x00\x01" + b"x" * 1000,  # over max frame size
    lambda: frame(0x9, 0x4, 1, b"\x82"),                                       # CONTINUATION without HEADERS
    lambda: frame(0x1, 0x0, 1, b"\x82\x86\x84") + b"".join(frame(0x9, 0, 1, b"\x41\x01a") for _ in range(200)),
]


def malformed_frames(port):
    s = abuser_socket(port)
    s.sendall(PREFACE + frame(0x4, 0, 0, b"") + random.choice(MALFORMED)())
    drain(s, 2)
    s.close()


H1_BAD = [
    b"GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    b"GET /c/x HTTP/1.1\r\nHost: a\r\n X-Fold: b\r\n\r\n",
    b"POST /c/x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0x5\r\nhello\r\n0\r\n\r\n",
    b"GET http://evil/ HTTP/1.1\r\nHost: a\r\n\r\n",
    b"GET /c/x HTTP/1.1\nHost: a\n\n",
    b"GET /c/x HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
    b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + b"\x00" * 64,
]


def garbage_h1(port):
    s = abuser_socket(port)
    if random.random() < 0.5:
        s.sendall(random.choice(H1_BAD))
    else:
        s.sendall(bytes(random.randrange(256) for _ in range(random.randrange(1, 4000))))
    drain(s, 2)
    s.close()


def slow_reader(port):
    s = abuser_socket(port, timeout=10)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    path = random.choice(["/p/slow/%d?size=8000000", "/c/cold/slow%d?size=6000000"]) % random.randrange(10 ** 9)
    s.sendall(b"GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n" % path.encode())
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and not STOP.is_set():
        try:
            if not s.recv(1024):
                break
        except OSError:
            break
        time.sleep(0.1)
    s.close()


def slowloris(port):
    s = abuser_socket(port, timeout=1)
    if random.random() < 0.5:
        data = b"GET /c/slowloris HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Pad: " + b"a" * 60
    else:
        s.sendall(PREFACE + frame(0x4, 0, 0, b""))
        data = frame(0x1, 0x5, 1, b"\x82\x86\x84" + b"\x41\x09127.0.0.1" + b"\x40\x01x\x01y" * 20)
    deadline = time.monotonic() + 30
    for b in data:
        if time.monotonic() > deadline or STOP.is_set():
            break
        try:
            s.sendall(bytes([b]))
            s.recv(65536)  # corral closing it (or answering) ends this one
            break
        except socket.timeout:
            continue
        except OSError:
            break
    s.close()


# name: (what it does, function, how many at once, pause between rounds in s)
ABUSERS = {
    "rapid-reset": ("rapid reset burst", rapid_reset, 1, 1.0),
    "malformed": ("malformed h2 frames", malformed_frames, 1, 0.5),
    "garbage": ("h1 garbage", garbage_h1, 1, 0.2),
    "slow-reader": ("slow reader", slow_reader, 4, 1.0),
    "slowloris": ("slowloris", slowloris, 8, 0.5),
}


def start_abusers(port, which):
    names = list(ABUSERS) if which == "all" else [] if which == "none" else which.split(",")
    threads = []
    for key in names:
        name, fn, n, pause = ABUSERS[key]
        for _ in range(n):
            t = threading.Thread(target=abuse_loop, args=(name, port, fn, pause), daemon=True)
            t.start()
            threads.append(t)
    return threads


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--corral", default=os.path.join(ROOT, "build/corral"))
    ap.add_argument("--load", default=os.path.join(ROOT, "build/soak_load"))
    ap.add_argument("--seconds", type=float, default=600)
    ap.add_argument("--concurrency", type=int, default=48)
    ap.add_argument("--keep", action="store_true")
    ap.add_argument("--abusers", default="all", help="all, none, or a comma list of: " + ", ".join(ABUSERS))
    args = ap.parse_args()
    # SIGTERM (or SIGINT) ends the soak through the finally below, which stops every child by PID
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(1))
    if args.abusers not in ("all", "none") and any(n not in ABUSERS for n in args.abusers.split(",")):
        ap.error("--abusers: all, none, or a comma list of " + ", ".join(ABUSERS))
    interval = 30
    tmp = tempfile.mkdtemp(prefix="corral-soak.")
    failures = []
    try:
        up_port, hup_port = free_port(), free_port()
        up = spawn([sys.executable, "tools/test-upstream.py", "--port", str(up_port)], os.path.join(tmp, "upstream.log"))
        hup = spawn([sys.executable, "tools/hostile-upstream.py", "--port", str(hup_port)],
                    os.path.join(tmp, "hostile-upstream.log"))
        if not wait_port(up_port, 10) or not wait_port(hup_port, 10):
            log("an upstream did not start; logs in " + tmp)
            args.keep = True
            return 2
        corrals = {}
        for name, yaml, upstream_port, mem in (("A", MAIN_YAML, up_port, CACHE_MEMORY_MIB),
                                               ("B", HOSTILE_YAML, hup_port, HOSTILE_CACHE_MIB)):
            port, admin = free_port(), free_port()
            conf = os.path.join(tmp, "corral-%s.yaml" % name)
            with open(conf, "w") as f:
                f.write(yaml.format(port=port, admin=admin, up=upstream_port, mem=mem))
            p = spawn([os.path.abspath(args.corral), "-c", conf], os.path.join(tmp, "corral-%s.log" % name))
            if not wait_port(port, 10):
                log("corral %s did not start; its log: %s" % (name, os.path.join(tmp, "corral-%s.log" % name)))
                args.keep = True
                return 2
            corrals[name] = {"proc": p, "port": port, "admin": admin, "mem": mem, "rss": []}
        a, b = corrals["A"], corrals["B"]
        log("corral A pid %d (cache.memory %d MiB, test upstream), corral B pid %d (cache.memory %d MiB, hostile "
            "upstream); %.0f s, %d transfers in flight, abusers from %s" %
            (a["proc"].pid, a["mem"], b["proc"].pid, b["mem"], args.seconds, args.concurrency, ABUSE_SRC))
        load = subprocess.Popen([os.path.abspath(args.load), "--port", str(a["port"]), "--admin-port", str(a["admin"]),
                                 "--hostile-port", str(b["port"]), "--seconds", str(args.seconds),
                                 "--concurrency", str(args.concurrency), "--report", str(interval),
                                 "--seed", str(int(time.time()))], cwd=ROOT, stdout=subprocess.PIPE)
        CHILDREN.append(load)
        load_total = []

        def relay():  # soak_load's lines as they come; its "total" row says how many answers were unexpected
            for raw in load.stdout:
                line = raw.decode("utf-8", "replace").rstrip("\n")
                print(line, flush=True)
                words = line.split()
                if len(words) >= 5 and words[1] == "total":
                    load_total[:] = [int(words[2]), int(words[4])]

        relay_thread = threading.Thread(target=relay, daemon=True)
        relay_thread.start()
        abusers = start_abusers(a["port"], args.abusers)
        start = time.monotonic()
        next_sample = start
        while load.poll() is None:
            now = time.monotonic()
            if now >= next_sample:
                parts = []
                for name, c in corrals.items():
                    r = rss_bytes(c["proc"].pid)
                    c["rss"].append((now - start, r))
                    store = metric(c["admin"], "corral_store_bytes")
                    parts.append("%s RSS %s MiB (store %s MiB)" % (
                        name, "%.1f" % (r / MIB) if r is not None else "gone",
                        "%.1f" % (store / MIB) if store is not None else "?"))
                log("t=%4.0fs %s" % (now - start, ", ".join(parts)))
                next_sample += interval
            time.sleep(0.2)
        load_rc = load.returncode
        relay_thread.join(10)
        STOP.set()
        for t in abusers:
            t.join(35)
        with ABUSE_LOCK:
            for name in sorted(ABUSE):
                log("abuser %-40s %6d" % (name, ABUSE[name]))
        errors = load_total[1] if load_total else None
        log("requests: %s; request errors beyond the injected ones: %s" %
            (load_total[0] if load_total else "?", errors if errors is not None else "? (soak_load exit %d)" % load_rc))
        if load_rc != 0 or errors != 0:
            failures.append("request errors beyond the injected ones: %s (soak_load exit %d)" % (errors, load_rc))
        # still serving everyone else after all that
        for name, c, path in (("A", a, "/c/final-check?size=10"), ("B", b, "/cache/ok/final-check")):
            try:
                with urllib.request.urlopen("http://127.0.0.1:%d%s" % (c["port"], path), timeout=10) as r:
                    if r.status != 200:
                        failures.append("corral %s answered %d to a final normal GET" % (name, r.status))
            except OSError as e:
                failures.append("corral %s did not answer a final normal GET: %s" % (name, e))
        crashes = 0
        for name, c in corrals.items():
            st = c["proc"].poll()
            if st is not None:
                crashes += 1
                failures.append("corral %s died during the soak (status %d)" % (name, st))
                continue
            st = stop(c["proc"])
            if st != 0:
                crashes += 1
                failures.append("corral %s did not exit 0 on SIGTERM: %s" % (name, st))
            logsize = os.path.getsize(os.path.join(tmp, "corral-%s.log" % name))
            log("corral %s exit status %s; its log %d bytes" % (name, st, logsize))
        log("crashes: %d" % crashes)
        warm = max(30.0, args.seconds / 4)
        for name, c in corrals.items():
            bound = c["mem"] * MIB * 1.1 + 32 * MIB
            after = [(t, r) for t, r in c["rss"] if t >= warm and r is not None]
            if not after:
                log("corral %s: no RSS sample after warm-up (%.0f s)" % (name, warm))
                continue
            peak = max(r for _, r in after)
            growth = after[-1][1] - after[0][1]
            ok = peak <= bound and growth <= 8 * MIB
            log("corral %s RSS after warm-up: first %.1f MiB, last %.1f MiB (growth %+.1f MiB), peak %.1f MiB; bound "
                "%.1f MiB: %s" % (name, after[0][1] / MIB, after[-1][1] / MIB, growth / MIB, peak / MIB, bound / MIB,
                                  "ok" if ok else "MISSED"))
            if not ok:
                failures.append("corral %s RSS not flat within its bound" % name)
        for f in failures:
            log("GOAL MISSED: " + f)
        log("verdict: %s" % ("all goals met" if not failures else "%d goal(s) missed" % len(failures)))
        if failures:
            args.keep = True
            log("logs kept in " + tmp)
        return 1 if failures else 0
    finally:
        STOP.set()
        for p in CHILDREN:
            if p.poll() is None:
                stop(p, 5)
        if not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
