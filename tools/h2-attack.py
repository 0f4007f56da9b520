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
Run it with Debian's /usr/bin/python3, which has python3-h2 (h2, hpack, hyperframe); prior-knowledge h2c over plain TCP, 127.0.0.1 only by default.
"""

import argparse
import codecs
import json
import socket
import sys

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


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--h", nargs=2, action="append", default=[], metavar=("NAME", "VALUE"))
    ap.add_argument("--then", default=None)
    args = ap.parse_args()
    try:
        out, rc = run(args)
    except (OSError, h2.exceptions.H2Error) as e:
        print(json.dumps({"error": str(e)}))
        return 1
    print(json.dumps(out))
    return rc


if __name__ == "__main__":
    sys.exit(main())
