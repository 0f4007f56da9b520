#!/usr/bin/env python3
"""hostile-upstream.py: a raw-socket HTTP/1.1 origin that answers with broken, hostile or borderline framing, for
corral's end-to-end tests of its upstream client (issue 10, sections 1, 3 and 4).

Usage: python3 tools/hostile-upstream.py --port N [--host 127.0.0.1]
Prints "ready <port>" on stdout (flushed) once listening; SIGTERM or SIGINT exits with status 0.

The answer is chosen by the second segment of the request path, /<anything>/<mode>[/...]: see MODES below (an unknown
mode, or a path with one segment, gets "ok"). Every answer that has a body says, when complete, "hello" (5 bytes), and
carries Cache-Control: max-age=600, so a cache that stores a broken answer serves it later as a hit. The "victim" mode
answers "victim <path>" the same way: a test asks it after a poisoning attempt and checks it never gets POISONED!.

Control endpoints (never counted), as tools/test-upstream.py has them, so tests/e2e/harness.c's helpers work:
GET /__count?path=/x, GET /__total, POST /__reset, GET /__health, and GET /__sent?path=/x: how many times a delayed
part of an answer for /x (the late bytes of head_late, n204_late, n304_late, cl_late) has been written.

Invariants:
  - standard library only; a thread per connection; requests on a connection are read and answered in order.
  - a request is counted (per path without the query, percent-decoded) as soon as its head has been read, before
    anything is sent.
  - binds to 127.0.0.1 unless --host says otherwise; every loop is bounded (sizes, counts, timeouts).
"""

import argparse
import json
import signal
import socket
import struct
import sys
import threading
import time
import urllib.parse

LOCK = threading.Lock()
COUNTS = {}
SENT = {}
TOTAL = [0]
BODY = b"hello"
CC = b"Cache-Control: max-age=600\r\n"
POISON = (b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nCache-Control: max-age=600\r\nContent-Length: 9\r\n\r\n"
          b"POISONED!")


def head(status_line, *lines):
    return status_line + b"\r\n" + CC + b"".join(l + b"\r\n" for l in lines) + b"\r\n"


def cl_answer(*lines, body=BODY):
    return head(b"HTTP/1.1 200 OK", b"Content-Type: text/plain", *lines) + body


def chunked(body):
    return b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body)


# mode -> list of actions: ("send", bytes), ("sleep", ms), ("sent",) (count a late part), ("fin",) (close),
# ("rst",) (close with a reset), ("endless", piece, total) (send piece repeatedly, then hang), ("hang",).
# Without a closing action the connection stays open for the next request.
MODES = {
    # well-formed, for comparison and for the "corral still serves" checks
    "ok": [("send", cl_answer(b"Content-Length: 5"))],
    "victim": None,  # built per request (the body names the path)
    # Transfer-Encoding
    "te_Chunked": [("send", head(b"HTTP/1.1 200 OK", b"Transfer-Encoding: Chunked") + chunked(BODY))],
    "te_gzip_chunked": [("send", head(b"HTTP/1.1 200 OK", b"Transfer-Encoding: gzip, chunked") + chunked(BODY)), ("fin",)],
    "te_chunked_x": [("send", head(b"HTTP/1.1 200 OK", b"Transfer-Encoding: Chunked , x") + chunked(BODY)), ("fin",)],
    "te_identity": [("send", head(b"HTTP/1.1 200 OK", b"Transfer-Encoding: identity") + BODY), ("fin",)],
    "te_twice": [("send", head(b"HTTP/1.1 200 OK", b"Transfer-Encoding: chunked", b"Transfer-Encoding: chunked") +
                  chunked(BODY)), ("fin",)],
    "te_empty": [("send", head(b"HTTP/1.1 200 OK", b"Transfer-Encoding: ") + BODY), ("fin",)],
    # Content-Length
    "cl_neg": [("send", cl_answer(b"Content-Length: -1")), ("fin",)],
    "cl_abc": [("send", cl_answer(b"Content-Length: abc")), ("fin",)],
    "cl_plus": [("send", cl_answer(b"Content-Length: +5")), ("fin",)],
    "cl_huge": [("send", cl_answer(b"Content-Length: 99999999999999999999999")), ("fin",)],
    "cl_empty": [("send", cl_answer(b"Content-Length: ")), ("fin",)],
    "cl_list_same": [("send", cl_answer(b"Content-Length: 5, 5"))],
    "cl_list_diff": [("send", cl_answer(b"Content-Length: 5, 6")), ("fin",)],
    "cl_lines_same": [("send", cl_answer(b"Content-Length: 5", b"Content-Length: 5"))],
    "cl_lines_diff": [("send", cl_answer(b"Content-Length: 5", b"Content-Length: 6")), ("fin",)],
    "cl_te": [("send", head(b"HTTP/1.1 200 OK", b"Content-Length: 5", b"Transfer-Encoding: chunked") + chunked(BODY)),
              ("fin",)],
    # status line
    "status_000": [("send", head(b"HTTP/1.1 000 Zero", b"Content-Length: 5") + BODY), ("fin",)],
    "status_099": [("send", head(b"HTTP/1.1 099 Low", b"Content-Length: 5") + BODY), ("fin",)],
    "status_600": [("send", head(b"HTTP/1.1 600 High", b"Content-Length: 5") + BODY), ("fin",)],
    "status_1000": [("send", head(b"HTTP/1.1 1000 Long", b"Content-Length: 5") + BODY), ("fin",)],
    "status_20": [("send", head(b"HTTP/1.1 20 Short", b"Content-Length: 5") + BODY), ("fin",)],
    "status_101": [("send", head(b"HTTP/1.1 101 Switching Protocols", b"Connection: upgrade", b"Upgrade: h2c") + BODY),
                   ("fin",)],
    "status_noreason_nosp": [("send", head(b"HTTP/1.1 200", b"Content-Length: 5") + BODY), ("fin",)],
    "version_2": [("send", head(b"HTTP/2.0 200 OK", b"Content-Length: 5") + BODY), ("fin",)],
    "reason_ctl": [("send", head(b"HTTP/1.1 200 O\x01K", b"Content-Length: 5") + BODY), ("fin",)],
    "interim_100": [("send", b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n" +
                     cl_answer(b"Content-Length: 5"))],
    "interim_many": [("send", b"HTTP/1.1 103 Early Hints\r\n\r\n" * 200 + cl_answer(b"Content-Length: 5")), ("fin",)],
    # the head itself
    "head_endless": [("send", b"HTTP/1.1 200 OK\r\n"), ("endless", b"X-Pad: " + b"a" * 1015 + b"\r\n", 4 << 20)],
    "obs_fold": [("send", cl_answer(b"X-Folded: a", b" b", b"Content-Length: 5")), ("fin",)],
    "bare_lf": [("send", b"HTTP/1.1 200 OK\nContent-Length: 5\n\nhello"), ("fin",)],
    "bare_lf_one": [("send", cl_answer(b"X-A: a\nX-B: b", b"Content-Length: 5")), ("fin",)],
    "bare_cr": [("send", cl_answer(b"X-A: a\rb", b"Content-Length: 5")), ("fin",)],
    "nul_value": [("send", cl_answer(b"X-A: a\x00b", b"Content-Length: 5")), ("fin",)],
    "ctl_value": [("send", cl_answer(b"X-A: a\x7fb", b"Content-Length: 5")), ("fin",)],
    "space_name": [("send", cl_answer(b"X A: b", b"Content-Length: 5")), ("fin",)],
    "space_colon": [("send", cl_answer(b"X-A : b", b"Content-Length: 5")), ("fin",)],
    "empty_name": [("send", cl_answer(b": b", b"Content-Length: 5")), ("fin",)],
    "no_colon": [("send", cl_answer(b"X-A b", b"Content-Length: 5")), ("fin",)],
    # truncated bodies: never complete, never stored
    "chunk_no_last": [("send", head(b"HTTP/1.1 200 OK", b"Transfer-Encoding: chunked") + b"5\r\nhello\r\n"),
                      ("fin",)],
    "chunk_mid": [("send", head(b"HTTP/1.1 200 OK", b"Transfer-Encoding: chunked") + b"a\r\nhello"), ("fin",)],
    "chunk_bad": [("send", head(b"HTTP/1.1 200 OK", b"Transfer-Encoding: chunked") + b"5\r\nhelloXX0\r\n\r\n"),
                  ("fin",)],
    "chunk_hex0x": [("send", head(b"HTTP/1.1 200 OK", b"Transfer-Encoding: chunked") + b"0x5\r\nhello\r\n0\r\n\r\n"),
                    ("fin",)],
    "chunk_rst": [("send", head(b"HTTP/1.1 200 OK", b"Transfer-Encoding: chunked") + b"5\r\nhello\r\n"), ("rst",)],
    "slow_chunk_no_last": [("sleep", 300), ("send", head(b"HTTP/1.1 200 OK", b"Transfer-Encoding: chunked") +
                                                  b"5\r\nhello\r\n"), ("fin",)],
    "cl_short": [("send", cl_answer(b"Content-Length: 100")), ("fin",)],
    "cl_short_rst": [("send", cl_answer(b"Content-Length: 100")), ("rst",)],
    "close_rst": [("send", head(b"HTTP/1.1 200 OK", b"Content-Type: text/plain") + BODY), ("sleep", 50), ("rst",)],
    # a close-delimited body ended by a clean FIN is complete (RFC 9112 6.3 rule 8): stored
    "close_fin": [("send", head(b"HTTP/1.1 200 OK", b"Content-Type: text/plain") + BODY), ("fin",)],
    "http10_fin": [("send", b"HTTP/1.0 200 OK\r\n" + CC + b"Content-Type: text/plain\r\n\r\n" + BODY), ("fin",)],
    # bytes after the end of an answer (poisoning attempts): the next request on the connection must never see them
    "cl_extra": [("send", cl_answer(b"Content-Length: 5") + POISON)],
    "chunk_extra": [("send", head(b"HTTP/1.1 200 OK", b"Transfer-Encoding: chunked") + chunked(BODY) + POISON)],
    # to a HEAD: a "body" that is itself a response, at once or a moment later
    "head_body": [("send", head(b"HTTP/1.1 200 OK", b"Content-Type: text/plain", b"Content-Length: %d" % len(POISON)) +
                   POISON)],
    "head_late": [("send", head(b"HTTP/1.1 200 OK", b"Content-Type: text/plain", b"Content-Length: %d" % len(POISON))),
                  ("sleep", 300), ("send", POISON), ("sent",)],
    "n204_body": [("send", head(b"HTTP/1.1 204 No Content") + POISON)],
    "n204_late": [("send", head(b"HTTP/1.1 204 No Content")), ("sleep", 300), ("send", POISON), ("sent",)],
    "n304_body": [("send", head(b"HTTP/1.1 304 Not Modified") + POISON)],
    "n304_late": [("send", head(b"HTTP/1.1 304 Not Modified")), ("sleep", 300), ("send", POISON), ("sent",)],
    "cl_late": [("send", cl_answer(b"Content-Length: 5")), ("sleep", 300), ("send", POISON), ("sent",)],
    "conn_close_extra": [("send", cl_answer(b"Content-Length: 5", b"Connection: close"))],
}


def count(path):
    with LOCK:
        COUNTS[path] = COUNTS.get(path, 0) + 1
        TOTAL[0] += 1


def json_answer(obj, status=200):
    body = json.dumps(obj).encode()
    return (b"HTTP/1.1 %d OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n" % (status, len(body)) +
            body)


def control(method, path, query):
    params = urllib.parse.parse_qs(query, keep_blank_values=True)
    p = urllib.parse.unquote(params["path"][-1]) if "path" in params else None
    with LOCK:
        if path == "/__health":
            return json_answer({"ok": True})
        if path == "/__count" and p is not None:
            return json_answer({"path": p, "count": COUNTS.get(p, 0)})
        if path == "/__sent" and p is not None:
            return json_answer({"path": p, "count": SENT.get(p, 0)})
        if path == "/__total":
            return json_answer({"count": TOTAL[0]})
        if path == "/__reset" and method == "POST":
            COUNTS.clear()
            SENT.clear()
            TOTAL[0] = 0
            return json_answer({"ok": True})
    return json_answer({"error": "unknown control endpoint"}, 404)


def read_request(sock, buf):
    """Returns (method, target, headers dict, rest of buf) or None at EOF. Bounded to 64 KiB heads."""
    while b"\r\n\r\n" not in buf:
        if len(buf) > 65536:
            return None
        data = sock.recv(65536)
        if not data:
            return None
        buf += data
    raw, _, buf = buf.partition(b"\r\n\r\n")
    lines = raw.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ")
    if len(parts) != 3:
        return None
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    length = int(headers.get("content-length", "0") or "0")
    while len(buf) < length:
        data = sock.recv(65536)
        if not data:
            return None
        buf += data
    return parts[0], parts[1], headers, buf[length:]


def reset(sock):
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


def serve(sock):
    buf = b""
    sock.settimeout(60)
    try:
        while True:
            req = read_request(sock, buf)
            if req is None:
                break
            method, target, headers, buf = req
            path, _, query = target.partition("?")
            path = urllib.parse.unquote(path)
            if path.startswith("/__"):
                sock.sendall(control(method, path, query))
                continue
            count(path)
            segs = path.split("/")
            mode = segs[2] if len(segs) > 2 and segs[2] in MODES else "ok"
            if mode == "victim":
                body = ("victim %s" % path).encode()
                actions = [("send", cl_answer(b"Content-Length: %d" % len(body), body=body))]
            else:
                actions = MODES[mode]
            closed = False
            for a in actions:
                if a[0] == "send":
                    sock.sendall(a[1])
                elif a[0] == "sleep":
                    time.sleep(a[1] / 1000.0)
                elif a[0] == "sent":
                    with LOCK:
                        SENT[path] = SENT.get(path, 0) + 1
                elif a[0] == "fin":
                    sock.shutdown(socket.SHUT_WR)
                    # wait for the peer to close (bounded by the timeout), so the FIN is not followed by a reset
                    while sock.recv(65536):
                        pass
                    closed = True
                elif a[0] == "rst":
                    reset(sock)
                    return
                elif a[0] == "endless":
                    sent = 0
                    while sent < a[2]:
                        sock.sendall(a[1])
                        sent += len(a[1])
                        time.sleep(0.001)
                    while sock.recv(65536):
                        pass
                    closed = True
            if closed or mode == "conn_close_extra":
                break
    except OSError:
        pass
    finally:
        try:
            sock.close()
        except OSError:
            pass


def main():
    ap = argparse.ArgumentParser(description="hostile HTTP/1.1 origin for corral's tests")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--host", default="127.0.0.1")
    args = ap.parse_args()
    ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        ls.bind((args.host, args.port))
    except OSError as e:
        print("bind failed: address in use (%s)" % e, flush=True)
        sys.exit(1)
    ls.listen(512)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    signal.signal(signal.SIGINT, lambda *_: sys.exit(0))
    print("ready %d" % ls.getsockname()[1], flush=True)
    while True:
        conn, _ = ls.accept()
        threading.Thread(target=serve, args=(conn,), daemon=True).start()


if __name__ == "__main__":
    try:
        main()
    except SystemExit:
        raise
    except KeyboardInterrupt:
        sys.exit(0)
