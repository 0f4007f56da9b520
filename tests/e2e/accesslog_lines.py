#!/usr/bin/env python3
"""accesslog_lines.py FILE: checks every access-log line of FILE (the lines that start with '{'; others are the
error log's) and prints one tab-separated summary per line, for tests/e2e/test_accesslog.c:

    L <request_id> <status> <route> <cache> <upstream: null|num> <bytes> <json of path> <total_time>

A line that is not valid JSON, or whose keys are not exactly the documented ones in order, prints
"BAD <repr>"; the test fails on any BAD. Never trusts the line: it is read as bytes and decoded strictly."""
import json
import sys

KEYS = ["time", "method", "path", "status", "route", "cache", "cache_status", "bytes", "total_time",
        "upstream_time", "request_id"]

with open(sys.argv[1], "rb") as f:
    data = f.read()
for raw in data.split(b"\n"):
    if not raw.startswith(b"{"):
        continue
    try:
        d = json.loads(raw.decode("utf-8", "strict"))
        assert list(d.keys()) == KEYS, "keys %r" % list(d.keys())
        assert isinstance(d["status"], int) and isinstance(d["bytes"], int)
        assert isinstance(d["total_time"], float) and d["total_time"] >= 0
        assert d["upstream_time"] is None or (isinstance(d["upstream_time"], float) and d["upstream_time"] >= 0)
        assert len(d["time"]) == 24 and d["time"].endswith("Z") and d["time"][10] == "T"
    except Exception as e:  # noqa: BLE001 - any failure is reported to the test
        print("BAD %r %s" % (raw[:300], e))
        continue
    print("L\t%s\t%d\t%s\t%s\t%s\t%d\t%s\t%f" % (d["request_id"], d["status"], d["route"], d["cache"],
                                                 "null" if d["upstream_time"] is None else "num", d["bytes"],
                                                 json.dumps(d["path"]), d["total_time"]))
