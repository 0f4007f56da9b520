#!/usr/bin/python3
"""h2-hpack-bomb.py: an HTTP/2 client that sends HPACK bombs, for corral's request-size tests. Each request's header
block puts one large header (--value-size bytes) in the HPACK dynamic table (literal with incremental indexing) and
then refers to it again and again at one byte per reference (indexed header field 62), until the block is
--block-size bytes long; it goes out as one HEADERS frame and as many CONTINUATION frames as needed (16384-byte
payloads). A decoder that keeps every reference holds about block-size x value-size bytes of header values.

Usage: python3 tools/h2-hpack-bomb.py --port N [--host 127.0.0.1] [--path /x] [--block-size 104000]
         [--value-size 4000] [--streams 4] [--rounds 1 | --duration S] [--settings-only]
  --streams K      K bombed requests per connection, all sent at once before anything is read
  --rounds R       R connections one after another (each with K streams)
  --duration S     instead of --rounds: new rounds until S seconds have passed
  --pause-ms M     wait M ms between rounds (0: back to back, as fast as the server takes them)
  --settings-only  send the preface, print the server's first SETTINGS and exit
Two plain (not bombed) modes share the output and use python3-h2's connection, flow control included:
  --body-size N    one POST of --path with an N-byte body (sent as the windows allow, until the stream ends)
  --concurrent K   K GETs of --path opened at once on one connection; also reports "elapsed_ms"
Output (one JSON line): {"settings": {"name": value, ...}, "sent": bytes, "statuses": {"431": n, ...},
  "resets": {"code": n}, "goaways": {"code": n}, "closed": n, "timeouts": n, "streams": n}
  Every stream of every round is counted once in statuses (a response), resets (RST_STREAM) or as ended by the
  connection (GOAWAY or close); the per-connection GOAWAY codes and closes are counted per round.
Exit: 0 when every round ended (every stream answered or reset, or the connection ended); 1 on a timeout.
Run it with Debian's /usr/bin/python3 (python3-h2: hpack, hyperframe); plain-TCP h2c prior knowledge, 127.0.0.1 only
by default.
"""

import argparse
import collections
import json
import socket
import struct
import sys
import time

import hpack

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
FRAME_DATA, FRAME_HEADERS, FRAME_RST, FRAME_SETTINGS, FRAME_PING, FRAME_GOAWAY, FRAME_CONT = 0, 1, 3, 4, 6, 7, 9
FLAG_END_STREAM, FLAG_ACK, FLAG_END_HEADERS = 0x1, 0x1, 0x4
MAX_PAYLOAD = 16384
SETTING_NAMES = {1: "header_table_size", 2: "enable_push", 3: "max_concurrent_streams", 4: "initial_window_size",
                 5: "max_frame_size", 6: "max_header_list_size"}


def frame(ftype, flags, stream_id, payload=b""):
    return struct.pack(">I", len(payload))[1:] + struct.pack(">BBI", ftype, flags, stream_id) + payload


def hpack_int(value, prefix_bits, first_byte):
    limit = (1 << prefix_bits) - 1
    if value < limit:
        return bytes([first_byte | value])
    out = [first_byte | limit]
    value -= limit
    while value >= 128:
        out.append(0x80 | (value & 0x7f))
        value >>= 7
    out.append(value)
    return bytes(out)


def hpack_string(s):
    return hpack_int(len(s), 7, 0) + s


def bomb_block(path, authority, block_size, value_size, first):
    """:method GET, :scheme http, :path and :authority (never indexed), then on the first request of a connection
    the large header with incremental indexing, then indexed references to it up to block_size bytes."""
    block = b"\x82\x86" + b"\x04" + hpack_string(path) + b"\x01" + hpack_string(authority)
    if first:
        block += b"\x40" + hpack_string(b"x-bomb") + hpack_string(b"b" * value_size)
    return block + b"\xbe" * max(0, block_size - len(block))


def header_frames(stream_id, block):
    out = [frame(FRAME_HEADERS, FLAG_END_STREAM | (FLAG_END_HEADERS if len(block) <= MAX_PAYLOAD else 0), stream_id,
                 block[:MAX_PAYLOAD])]
    for off in range(MAX_PAYLOAD, len(block), MAX_PAYLOAD):
        last = off + MAX_PAYLOAD >= len(block)
        out.append(frame(FRAME_CONT, FLAG_END_HEADERS if last else 0, stream_id, block[off:off + MAX_PAYLOAD]))
    return b"".join(out)


class Reader:
    def __init__(self, sock):
        self.sock = sock
        self.buf = b""

    def next_frame(self, deadline):
        while True:
            if len(self.buf) >= 9:
                length = struct.unpack(">I", b"\x00" + self.buf[:3])[0]
                if len(self.buf) >= 9 + length:
                    ftype, flags, sid = struct.unpack(">BBI", self.buf[3:9])
                    payload = self.buf[9:9 + length]
                    self.buf = self.buf[9 + length:]
                    return ftype, flags, sid & 0x7fffffff, payload
            left = deadline - time.monotonic()
            if left <= 0:
                raise socket.timeout()
            self.sock.settimeout(left)
            try:
                data = self.sock.recv(65536)
            except ConnectionResetError:
                data = b""
            if not data:
                return None
            self.buf += data


def parse_settings(payload):
    return {SETTING_NAMES.get(k, str(k)): v for k, v in (struct.unpack(">HI", payload[i:i + 6])
                                                           for i in range(0, len(payload) - 5, 6))}


def one_round(args, result):
    sock = socket.create_connection((args.host, args.port), timeout=10)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    reader = Reader(sock)
    decoder = hpack.Decoder()
    deadline = time.monotonic() + args.timeout
    out = PREFACE + frame(FRAME_SETTINGS, 0, 0)
    if args.settings_only:
        sock.sendall(out)
        while True:
            f = reader.next_frame(deadline)
            if f is None:
                return False
            if f[0] == FRAME_SETTINGS and not f[1] & FLAG_ACK:
                result["settings"] = parse_settings(f[3])
                sock.close()
                return True
    pending = set()
    for i in range(args.streams):
        sid = 1 + 2 * i
        out += header_frames(sid, bomb_block(args.path.encode(), args.authority.encode(), args.block_size,
                                             args.value_size, i == 0))
        pending.add(sid)
    try:
        sock.sendall(out)
    except (BrokenPipeError, ConnectionResetError):
        pass
    result["sent"] += len(out)
    result["streams"] += len(pending)
    try:
        while pending:
            f = reader.next_frame(deadline)
            if f is None:
                result["closed"] += 1
                result["ended_by_connection"] += len(pending)
                return True
            ftype, flags, sid, payload = f
            if ftype == FRAME_SETTINGS and not flags & FLAG_ACK:
                result["settings"] = parse_settings(payload)
                sock.sendall(frame(FRAME_SETTINGS, FLAG_ACK, 0))
            elif ftype == FRAME_PING and not flags & FLAG_ACK:
                sock.sendall(frame(FRAME_PING, FLAG_ACK, 0, payload))
            elif ftype == FRAME_HEADERS:
                data = payload
                if flags & 0x8:  # PADDED
                    data = data[1:len(data) - data[0]]
                if flags & 0x20:  # PRIORITY
                    data = data[5:]
                while not flags & FLAG_END_HEADERS:
                    c = reader.next_frame(deadline)
                    if c is None:
                        break
                    data += c[3]
                    flags |= c[1] & FLAG_END_HEADERS
                for n, v in decoder.decode(data, raw=True):
                    if n == b":status" and sid in pending:
                        result["statuses"][v.decode()] += 1
                        pending.discard(sid)
            elif ftype == FRAME_RST and sid in pending:
                result["resets"][str(struct.unpack(">I", payload[:4])[0])] += 1
                pending.discard(sid)
            elif ftype == FRAME_GOAWAY:
                result["goaways"][str(struct.unpack(">I", payload[4:8])[0])] += 1
                result["ended_by_connection"] += len(pending)
                return True
    except socket.timeout:
        result["timeouts"] += 1
        return False
    finally:
        sock.close()
    return True


def plain_round(args, result):
    """--body-size and --concurrent: ordinary requests through python3-h2's state machine."""
    import h2.config
    import h2.connection
    import h2.events
    sock = socket.create_connection((args.host, args.port), timeout=args.timeout)
    conn = h2.connection.H2Connection(config=h2.config.H2Configuration(client_side=True, header_encoding=None))
    conn.initiate_connection()
    started = time.monotonic()
    deadline = started + args.timeout
    body = b"u" * args.body_size if args.body_size else b""
    sent = {}
    count = args.concurrent if args.concurrent else 1
    for _ in range(count):
        sid = conn.get_next_available_stream_id()
        method = b"POST" if args.body_size else b"GET"
        headers = [(b":method", method), (b":scheme", b"http"), (b":path", args.path.encode()),
                   (b":authority", args.authority.encode())]
        if args.body_size:
            headers.append((b"content-length", str(len(body)).encode()))
        conn.send_headers(sid, headers, end_stream=not body)
        sent[sid] = 0
    pending = set(sent)
    result["streams"] += len(pending)

    def push_body():
        for sid in list(pending):
            while body and sent[sid] < len(body):
                n = min(conn.local_flow_control_window(sid), conn.max_outbound_frame_size, len(body) - sent[sid])
                if n <= 0:
                    break
                conn.send_data(sid, body[sent[sid]:sent[sid] + n], end_stream=sent[sid] + n == len(body))
                sent[sid] += n

    try:
        push_body()
        sock.sendall(conn.data_to_send())
        while pending:
            sock.settimeout(max(0.01, deadline - time.monotonic()))
            try:
                data = sock.recv(65536)
            except ConnectionResetError:
                data = b""
            if not data:
                result["closed"] += 1
                result["ended_by_connection"] += len(pending)
                break
            for ev in conn.receive_data(data):
                if isinstance(ev, h2.events.RemoteSettingsChanged):
                    result["settings"] = {SETTING_NAMES.get(int(k), str(k)): v.new_value
                                          for k, v in ev.changed_settings.items()}
                elif isinstance(ev, h2.events.ResponseReceived):
                    for n, v in ev.headers:
                        if n == b":status":
                            result["statuses"][v.decode()] += 1
                    pending.discard(ev.stream_id)
                elif isinstance(ev, h2.events.StreamReset) and ev.stream_id in pending:
                    result["resets"][str(int(ev.error_code))] += 1
                    pending.discard(ev.stream_id)
                elif isinstance(ev, h2.events.ConnectionTerminated):
                    result["goaways"][str(int(ev.error_code))] += 1
                    result["ended_by_connection"] += len(pending)
                    pending.clear()
                elif isinstance(ev, h2.events.DataReceived):
                    conn.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
            try:
                push_body()
            except Exception:  # the stream was reset while its body was still going out
                pass
            sock.sendall(conn.data_to_send())
    except socket.timeout:
        result["timeouts"] += 1
        return False
    except (BrokenPipeError, ConnectionResetError):
        result["closed"] += 1
    finally:
        result["sent"] += sum(sent.values())
        result["elapsed_ms"] = int((time.monotonic() - started) * 1000)
        sock.close()
    return True


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--path", default="/bomb")
    p.add_argument("--authority", default="localhost")
    p.add_argument("--block-size", type=int, default=104000)
    p.add_argument("--value-size", type=int, default=4000)
    p.add_argument("--streams", type=int, default=4)
    p.add_argument("--rounds", type=int, default=1)
    p.add_argument("--timeout", type=float, default=20.0)
    p.add_argument("--duration", type=float, default=0.0)
    p.add_argument("--pause-ms", type=float, default=0.0)
    p.add_argument("--settings-only", action="store_true")
    p.add_argument("--body-size", type=int, default=0)
    p.add_argument("--concurrent", type=int, default=0)
    args = p.parse_args()
    result = {"settings": {}, "sent": 0, "streams": 0, "statuses": collections.Counter(),
              "resets": collections.Counter(), "goaways": collections.Counter(), "closed": 0,
              "ended_by_connection": 0, "timeouts": 0}
    ok = True
    plain = args.body_size or args.concurrent
    rounds = 1 if args.settings_only or plain else args.rounds
    started = time.monotonic()
    done = 0
    while done < rounds or (args.duration and time.monotonic() - started < args.duration):
        try:
            ok = (plain_round if plain else one_round)(args, result) and ok
        except OSError as e:
            result["error"] = str(e)
            ok = False
        done += 1
        if plain or args.settings_only:
            break
        if args.pause_ms:
            time.sleep(args.pause_ms / 1000.0)
    result["rounds"] = done
    print(json.dumps(result, sort_keys=True))
    sys.stdout.flush()
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
