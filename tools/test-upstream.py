#!/usr/bin/env python3
"""test-upstream.py: a scriptable HTTP/1.1 origin server for corral's end-to-end tests and demos.

Usage: python3 tools/test-upstream.py --port N [--host 127.0.0.1] [--verbose]
Prints "ready <port>" on stdout (flushed) once listening; SIGTERM or SIGINT exits with status 0.

Behaviour of a request whose path does not start with /__ comes from its query parameters, merged with (and
overridden key by key by) per-path settings made with POST /__set:
  status=N  cc=  delay=ms  body_delay=ms  size=N  ctype=  vary=  etag=  lm=  expires=  age=  date=  pragma=
  setcookie=1  hdr=Name:Value (repeatable)  hdr304=Name:Value (repeatable, only on a 304)  location=
  content_location=  chunked=1  version=
  interim=CODE (repeatable: an interim 1xx response, not 101, with X-Interim and Link, before the final one)
  interim_bad=1 (then a malformed interim 103)
  gzip=1 (gzip the body and send Content-Encoding: gzip, whatever Accept-Encoding says)
  random=1 (with size=N: N pseudo-random letters and digits, the same for the same path, which compress slowly)
  stream=1 (with size=N, not random: the filler body is made and written in 64 KiB pieces, waiting for each to drain,
    so a body of any size costs the upstream no memory; with Content-Length, or chunked=1)
  bomb=N (a gzip bomb: the body is the gzip of N zero bytes, about N/1030 bytes, made once per N and kept (about
    0.2 s for 400 MB), sent with Content-Encoding: gzip; ctype still applies)
  fail=reset|garbage|truncate|hang
  ranges=1 (a GET with one Range `bytes=F-L`, `bytes=F-` or `bytes=-N` that overlaps the body is answered 206 with
    that slice and Content-Range; any other Range gets the whole 200). A 206 asked for with status=206 is sent as
    given: add its Content-Range with hdr=
  loadlat=ms (adds ms to delay for every counted request being served at once, this one included: an origin whose
    latency grows with its concurrency, for the load-shedding tests)
The default body is JSON describing the request (path, target, method, n, version, headers, body_len). All JSON is
written by json.dumps with its default separators (", " and ": "), so tests may look for '"n": 3' verbatim.

Control endpoints (never counted or logged): GET /__count?path=/x, GET /__total, GET /__log[?path=/x],
POST /__reset, POST /__set?path=/x (body: a query string; empty clears), GET /__health,
GET /__latency ({"count": N, "p50": ms, "p99": ms, "max": ms}, whole ms, of the counted requests served since the last
/__latency or /__reset, which it clears: the origin's own service time, from head parsed to answer written),
GET /__concurrency ({"current": N, "max": M}: counted requests being served now, and the most served at once
since start or the last /__reset).

Invariants:
  - standard library only; one asyncio task per connection, requests on a connection are served in order
    (keep-alive and pipelining work); HTTP/1.0 clients get close-delimited exchanges unless they ask for keep-alive.
  - a path's key for counting, logging and /__set is its percent-decoded path without the query; the `path`
    parameter of the control endpoints is decoded the same way, so "/a%20b" and "/a b" name the same key.
  - every non-control request increments its path's counter and the total exactly once, as soon as its head has
    been parsed (before any delay or failure), and is appended to a log bounded to the last 10,000 requests.
  - the concurrency gauge counts a request from the moment its head has been parsed until its response has been
    written (or it failed); /__reset lowers "max" to "current", so requests still in flight stay counted.
  - header values taken from parameters never contain CR or LF (they are stripped), so framing stays valid
    unless a fail= mode asks otherwise.
  - binds to 127.0.0.1 unless --host says otherwise.
"""

import argparse
import asyncio
import collections
import datetime
import email.utils
import gzip
import json
import random
import signal
import socket
import struct
import sys
import time
import urllib.parse
from http import HTTPStatus

MAX_HEAD = 1 << 20
MAX_LOG = 10000
FILLER = b'{"seq":0,"filler":"abcdefghijklmnopqrstuvwxyz0123456789","more":[1,2,3,4,5,6,7,8,9]}\n'
NO_BODY_STATUSES = (204, 304)


class BadRequest(Exception):
    def __init__(self, status, reason):
        super().__init__(reason)
        self.status = status


class State:
    def __init__(self):
        self.counts = collections.Counter()
        self.total = 0
        self.log = collections.deque(maxlen=MAX_LOG)
        self.overrides = {}
        self.current = 0
        self.max_current = 0
        self.latencies = collections.deque(maxlen=MAX_LOG)  # ms from head parsed to answer written

    def reset(self):
        self.counts.clear()
        self.total = 0
        self.log.clear()
        self.overrides.clear()
        self.max_current = self.current
        self.latencies.clear()


STATE = State()
VERBOSE = False


def path_key(path):
    return urllib.parse.unquote(path)


def split_target(target):
    """Returns (path, query) of a request target in origin or absolute form."""
    if target.startswith("http://") or target.startswith("https://"):
        rest = target.split("://", 1)[1]
        slash = rest.find("/")
        target = rest[slash:] if slash >= 0 else "/"
    path, _, query = target.partition("?")
    return path, query


def parse_query(query):
    """Returns {name: [values...]} for a query string (blank values kept)."""
    out = {}
    for name, value in urllib.parse.parse_qsl(query, keep_blank_values=True):
        out.setdefault(name, []).append(value)
    return out


def clean(value):
    return value.replace("\r", "").replace("\n", "")


def reason_of(status):
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Status %d" % status


def parse_date(value):
    try:
        d = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if d is None:
        return None
    if d.tzinfo is None:
        d = d.replace(tzinfo=datetime.timezone.utc)
    return d


def opaque_tag(tag):
    tag = tag.strip()
    return tag[2:] if tag.startswith("W/") else tag


def etag_matches(configured, if_none_match):
    want = opaque_tag(configured)
    for token in if_none_match.split(","):
        token = token.strip()
        if token == "*" or (token and opaque_tag(token) == want):
            return True
    return False


def sized_body(n):
    reps = n // len(FILLER) + 1
    return (FILLER * reps)[:n]


BOMBS = {}


def bomb_body(n):
    """The gzip member of n zero bytes, kept per n. Made without deflating n bytes: each MiB of zeros is deflated once
    from a fresh raw stream and full-flushed (so it refers to nothing before it), and that block repeats; only the
    CRC-32 runs over all n bytes."""
    if n not in BOMBS:
        import zlib

        def raw_block(size):
            comp = zlib.compressobj(9, zlib.DEFLATED, -15)
            return comp.compress(bytes(size)) + comp.flush(zlib.Z_FULL_FLUSH)

        step = 1 << 20
        zeros = bytes(step)
        whole, rest = divmod(n, step)
        crc = 0
        for _ in range(whole):
            crc = zlib.crc32(zeros, crc)
        crc = zlib.crc32(bytes(rest), crc)
        parts = [b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff", raw_block(step) * whole]
        if rest:
            parts.append(raw_block(rest))
        parts.append(b"\x03\x00")  # an empty final block (fixed Huffman)
        parts.append(struct.pack("<II", crc, n & 0xFFFFFFFF))
        BOMBS[n] = b"".join(parts)
    return BOMBS[n]


STREAM_PIECE = 65536


async def write_streamed(writer, head, n, chunked):
    """Writes head, then n bytes of the filler body in STREAM_PIECE pieces (chunked: one chunk each), draining each."""
    writer.write(head)
    unit = FILLER * (STREAM_PIECE // len(FILLER) + 2)
    sent = 0
    while sent < n:
        step = min(STREAM_PIECE, n - sent)
        off = sent % len(FILLER)
        piece = unit[off:off + step]
        writer.write(b"%x\r\n" % step + piece + b"\r\n" if chunked else piece)
        sent += step
        await writer.drain()
    if chunked:
        writer.write(b"0\r\n\r\n")
    await writer.drain()


def random_body(n, seed):
    return bytes(random.Random(seed).choices(b"abcdefghijklmnopqrstuvwxyz0123456789", k=n))


class Request:
    __slots__ = ("method", "target", "version", "headers", "body_len")

    def __init__(self, method, target, version, headers):
        self.method = method
        self.target = target
        self.version = version
        self.headers = headers          # list of (name, value) in arrival order
        self.body_len = 0

    def header(self, name):
        vals = [v for (k, v) in self.headers if k.lower() == name]
        return ", ".join(vals) if vals else None

    def header_dict(self):
        d = {}
        for k, v in self.headers:
            k = k.lower()
            d[k] = d[k] + ", " + v if k in d else v
        return d


async def read_head(reader):
    """Returns a Request, or None on a clean EOF between requests."""
    while True:
        try:
            raw = await reader.readuntil(b"\r\n\r\n")
        except asyncio.IncompleteReadError as e:
            if not e.partial.strip():
                return None
            raise BadRequest(400, "truncated request head")
        except asyncio.LimitOverrunError:
            raise BadRequest(431, "request head too large")
        raw = raw.lstrip(b"\r\n")
        if raw:
            break
    lines = raw.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ")
    if len(parts) != 3 or not parts[2].startswith("HTTP/1.") or not parts[0] or not parts[1]:
        raise BadRequest(400, "bad request line")
    headers = []
    for line in lines[1:]:
        if not line:
            continue
        name, sep, value = line.partition(":")
        if not sep or not name or name != name.strip():
            raise BadRequest(400, "bad header line")
        headers.append((name, value.strip(" \t")))
    return Request(parts[0], parts[1], parts[2], headers)


async def read_body(reader, writer, req, keep=None):
    """Reads the request body (Content-Length or chunked), sets req.body_len, appends the bytes to keep if given."""
    te = req.header("transfer-encoding")
    cl = req.header("content-length")
    chunked = te is not None and te.lower().split(",")[-1].strip() == "chunked"
    if te is not None and not chunked:
        raise BadRequest(400, "unsupported transfer-encoding")
    if not chunked and cl is None:
        return
    if not chunked:
        try:
            remaining = int(cl.split(",")[0].strip())
        except ValueError:
            raise BadRequest(400, "bad content-length")
        if remaining < 0:
            raise BadRequest(400, "bad content-length")
    expect = req.header("expect")
    if expect is not None and expect.lower() == "100-continue":
        writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
    total = 0
    if chunked:
        while True:
            line = await reader.readuntil(b"\r\n")
            try:
                size = int(line.split(b";", 1)[0].strip(), 16)
            except ValueError:
                raise BadRequest(400, "bad chunk size")
            if size < 0:
                raise BadRequest(400, "bad chunk size")
            if size == 0:
                while (await reader.readuntil(b"\r\n")) != b"\r\n":
                    pass
                break
            data = await reader.readexactly(size)
            if keep is not None:
                keep += data
            if await reader.readexactly(2) != b"\r\n":
                raise BadRequest(400, "bad chunk terminator")
            total += size
    else:
        while remaining > 0:
            data = await reader.read(min(remaining, 1 << 16))
            if not data:
                raise asyncio.IncompleteReadError(b"", remaining)
            if keep is not None:
                keep += data
            remaining -= len(data)
            total += len(data)
    req.body_len = total


def single_range(value, length):
    """(first, last) of one satisfiable byte range in a Range value, else None."""
    if value is None or not value.startswith("bytes=") or "," in value or length == 0:
        return None
    first, sep, last = value[6:].strip().partition("-")
    if not sep or not (first.isdigit() or last.isdigit()):
        return None
    if not first:
        n = int(last)
        return (max(0, length - n), length - 1) if n > 0 else None
    if last and not last.isdigit():
        return None
    a, b = int(first), (int(last) if last else length - 1)
    if b < a or a >= length:
        return None
    return a, min(b, length - 1)


def build_head(status, headers):
    out = ["HTTP/1.1 %d %s\r\n" % (status, reason_of(status))]
    for name, value in headers:
        out.append("%s: %s\r\n" % (name, value))
    out.append("\r\n")
    return "".join(out).encode("latin-1", "replace")


def json_response(obj, status=200):
    body = json.dumps(obj).encode("utf-8")
    return status, [("Content-Type", "application/json"), ("Cache-Control", "no-store")], body


def control(req, path, query, body):
    params = parse_query(query)

    def param_path():
        vals = params.get("path")
        return path_key(vals[-1]) if vals else None

    if path == "/__health":
        return json_response({"ok": True})
    if path == "/__count":
        p = param_path()
        if p is None:
            return json_response({"error": "path parameter required"}, 400)
        return json_response({"path": p, "count": STATE.counts.get(p, 0)})
    if path == "/__total":
        return json_response({"count": STATE.total})
    if path == "/__latency":
        lat = sorted(STATE.latencies)
        STATE.latencies.clear()

        def pct(q):
            return int(round(lat[min(len(lat) - 1, int(q * len(lat)))])) if lat else 0

        return json_response({"count": len(lat), "p50": pct(0.5), "p99": pct(0.99), "max": pct(1.0)})
    if path == "/__concurrency":
        return json_response({"current": STATE.current, "max": STATE.max_current})
    if path == "/__log":
        p = param_path()
        entries = [{"method": e[1], "target": e[2], "headers": e[3]} for e in STATE.log if p is None or e[0] == p]
        return json_response(entries)
    if path == "/__reset":
        if req.method != "POST":
            return json_response({"error": "use POST"}, 405)
        STATE.reset()
        return json_response({"ok": True})
    if path == "/__set":
        if req.method != "POST":
            return json_response({"error": "use POST"}, 405)
        p = param_path()
        if p is None:
            return json_response({"error": "path parameter required"}, 400)
        text = body.decode("utf-8", "replace").strip()
        if text:
            STATE.overrides[p] = parse_query(text)
        else:
            STATE.overrides.pop(p, None)
        return json_response({"ok": True, "path": p, "settings": STATE.overrides.get(p, {})})
    return json_response({"error": "unknown control endpoint"}, 404)


def abort_with_reset(writer):
    sock = writer.get_extra_info("socket")
    if sock is not None:
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        except OSError:
            pass
    writer.transport.abort()


def chunked_body(body):
    step = 4096
    out = [b"%x\r\n" % len(body[i:i + step]) + body[i:i + step] + b"\r\n" for i in range(0, len(body), step)]
    return b"".join(out) + b"0\r\n\r\n"


async def serve_one(reader, writer, req, keep_alive):
    """Answers one counted request. Returns False when the connection must be closed."""
    STATE.current += 1
    STATE.max_current = max(STATE.max_current, STATE.current)
    started = time.monotonic()
    try:
        return await serve_counted(reader, writer, req, keep_alive)
    finally:
        STATE.current -= 1
        STATE.latencies.append((time.monotonic() - started) * 1000.0)


async def serve_counted(reader, writer, req, keep_alive):
    """serve_one's body: the request is counted in the concurrency gauge while this runs."""
    path, query = split_target(req.target)
    key = path_key(path)
    STATE.counts[key] += 1
    STATE.total += 1
    n = STATE.counts[key]
    STATE.log.append((key, req.method, req.target, req.header_dict()))

    await read_body(reader, writer, req)

    settings = parse_query(query)
    settings.update(STATE.overrides.get(key, {}))

    def get(name, default=None):
        vals = settings.get(name)
        return clean(vals[-1]) if vals else default

    def get_int(name, default):
        try:
            return int(get(name, default))
        except (TypeError, ValueError):
            return default

    delay = get_int("delay", 0)
    # loadlat=ms: each request being served now (this one included) adds ms: latency grows with concurrency
    delay += get_int("loadlat", 0) * STATE.current
    if delay > 0:
        await asyncio.sleep(delay / 1000.0)

    fail = get("fail")
    if fail == "reset":
        abort_with_reset(writer)
        return False
    if fail == "garbage":
        writer.write(b"\x00\x01\x02 this is not HTTP \xff\xfe\r\n\r\n")
        await writer.drain()
        return False
    if fail == "hang":
        while await reader.read(65536):
            pass
        return False

    status = get_int("status", 200)
    version = get("version", "")
    size = get("size")
    streamed = None
    if get("bomb") is not None:
        # zlib and crc32 release the GIL: other connections are served meanwhile
        body = await asyncio.get_running_loop().run_in_executor(None, bomb_body, max(0, get_int("bomb", 0)))
    elif size is not None and get("stream") == "1" and get("random") != "1":
        streamed = max(0, get_int("size", 0))
        body = b""
    elif size is not None:
        try:
            body = random_body(max(0, int(size)), key) if get("random") == "1" else sized_body(max(0, int(size)))
        except ValueError:
            body = b""
    else:
        body = json.dumps({
            "path": path, "target": req.target, "method": req.method, "n": n, "version": version,
            "headers": req.header_dict(), "body_len": req.body_len,
        }).encode("utf-8")

    etag = get("etag")
    lm = get("lm")
    if req.method in ("GET", "HEAD") and 200 <= status < 300:
        inm = req.header("if-none-match")
        ims = req.header("if-modified-since")
        not_modified = False
        if inm is not None:
            not_modified = etag is not None and etag_matches(etag, inm)
        elif ims is not None and lm is not None:
            a, b = parse_date(ims), parse_date(lm)
            not_modified = a is not None and b is not None and a >= b
        if not_modified:
            status = 304

    content_range = None
    if get("ranges") == "1" and req.method == "GET" and status == 200 and streamed is None and get("gzip") != "1":
        sliced = single_range(req.header("range"), len(body))
        if sliced is not None:
            status = 206
            content_range = "bytes %d-%d/%d" % (sliced[0], sliced[1], len(body))
            body = body[sliced[0]:sliced[1] + 1]

    headers = [("Date", get("date") or email.utils.formatdate(usegmt=True))]
    if content_range is not None:
        headers.append(("Content-Range", content_range))
    if status != 304:
        headers.append(("Content-Type", get("ctype", "application/json")))
    for param, name in (("cc", "Cache-Control"), ("vary", "Vary"), ("etag", "ETag"), ("lm", "Last-Modified"),
                        ("expires", "Expires"), ("age", "Age"), ("pragma", "Pragma"), ("location", "Location"),
                        ("content_location", "Content-Location")):
        value = get(param)
        if value is not None:
            headers.append((name, value))
    for extra in settings.get("hdr" if status != 304 else "hdr304", []):
        name, sep, value = clean(extra).partition(":")
        if sep and name.strip():
            headers.append((name.strip(), value.strip()))
    if status != 304 and get("setcookie") == "1":
        headers.append(("Set-Cookie", "a=b"))

    has_body = status >= 200 and status not in NO_BODY_STATUSES
    if not has_body:
        body = b""
    if has_body and get("bomb") is not None:
        headers.append(("Content-Encoding", "gzip"))
    elif has_body and status != 304 and get("gzip") == "1" and streamed is None:
        # an upstream that compresses by itself, whatever the request's Accept-Encoding says
        body = gzip.compress(body, mtime=0)
        headers.append(("Content-Encoding", "gzip"))
    chunked = has_body and get("chunked") == "1" and req.version == "HTTP/1.1"
    if fail == "truncate":
        headers.append(("Content-Length", str(len(body) + 1000)))
        keep_alive = False
    elif chunked:
        headers.append(("Transfer-Encoding", "chunked"))
    elif has_body:
        headers.append(("Content-Length", str(len(body) if streamed is None else streamed)))
    if not keep_alive:
        headers.append(("Connection", "close"))
    elif req.version == "HTTP/1.0":
        headers.append(("Connection", "keep-alive"))

    # interim responses before the final head: interim=CODE (repeatable; 1xx but 101), interim_bad=1 (a malformed one)
    interim = b"".join(b"HTTP/1.1 %d Interim\r\nX-Interim: %d\r\nLink: </i.css>; rel=preload\r\n\r\n" % (int(c), int(c))
                       for c in map(clean, settings.get("interim", [])) if c.isdigit() and 100 <= int(c) <= 199 and int(c) != 101)
    if get("interim_bad") == "1":
        interim += b"HTTP/1.1 103 Early Hints\r\nnot a header line\r\n\r\n"
    head = interim + build_head(status, headers)
    if req.method == "HEAD" or not has_body:
        writer.write(head)
        await writer.drain()
        return keep_alive
    body_delay = get_int("body_delay", 0)
    if body_delay > 0:
        writer.write(head)
        await writer.drain()
        await asyncio.sleep(body_delay / 1000.0)
        head = b""
    if streamed is not None and fail != "truncate":
        await write_streamed(writer, head, streamed, chunked)
        return keep_alive
    if fail == "truncate":
        writer.write(head + body)
        await writer.drain()
        return False
    # head and body in one write, as a fast origin sends a small response: one segment, one wake-up of the reader
    writer.write(head + (chunked_body(body) if chunked else body))
    await writer.drain()
    return keep_alive


def wants_keep_alive(req):
    conn = (req.header("connection") or "").lower()
    tokens = [t.strip() for t in conn.split(",")]
    if req.version == "HTTP/1.0":
        return "keep-alive" in tokens
    return "close" not in tokens


async def handle(reader, writer):
    try:
        while True:
            try:
                req = await read_head(reader)
                if req is None:
                    break
                keep_alive = wants_keep_alive(req)
                path, query = split_target(req.target)
                if VERBOSE:
                    print("%s %s" % (req.method, req.target), file=sys.stderr, flush=True)
                if path.startswith("/__"):
                    body_bytes = bytearray()
                    await read_body(reader, writer, req, body_bytes)
                    status, headers, body = control(req, path, query, bytes(body_bytes))
                    headers.append(("Content-Length", str(len(body))))
                    if not keep_alive:
                        headers.append(("Connection", "close"))
                    writer.write(build_head(status, headers) + (b"" if req.method == "HEAD" else body))
                    await writer.drain()
                else:
                    keep_alive = await serve_one(reader, writer, req, keep_alive)
                if not keep_alive:
                    break
            except BadRequest as e:
                body = ("%s\n" % e).encode()
                writer.write(build_head(e.status, [("Content-Type", "text/plain"), ("Content-Length", str(len(body))),
                                                   ("Connection", "close")]) + body)
                await writer.drain()
                break
    except (ConnectionError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, OSError):
        pass
    finally:
        try:
            writer.close()
        except Exception:
            pass


async def main():
    global VERBOSE
    ap = argparse.ArgumentParser(description="scriptable HTTP/1.1 test origin for corral")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--verbose", "-v", action="store_true", help="log each request line to stderr")
    args = ap.parse_args()
    VERBOSE = args.verbose

    tasks = set()

    async def on_connect(reader, writer):
        task = asyncio.current_task()
        tasks.add(task)
        try:
            await handle(reader, writer)
        except asyncio.CancelledError:
            pass  # shutting down; finishing normally keeps asyncio from logging the cancellation
        finally:
            tasks.discard(task)

    server = await asyncio.start_server(on_connect, args.host, args.port, backlog=4096, limit=MAX_HEAD,
                                        reuse_address=True)
    port = server.sockets[0].getsockname()[1]
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    print("ready %d" % port, flush=True)
    await stop.wait()
    server.close()
    for task in list(tasks):
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    await server.wait_closed()


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        pass
    sys.exit(0)
