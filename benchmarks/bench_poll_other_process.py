"""poll-other-process: two real web.py servers (``bench.py --serve``) on one
SQLite file; a job runs in server A, printing a timestamped line every 10 ms;
a tailing ``_format=json&_offset=<last end>`` poll answered by B vs the same
poll answered by A, one new connection per request, in alternating blocks.
The notes add the visibility latency: B alone polling every ~5 ms, how long
after a line was printed in A the first poll of B that shows it came back
(its own target, "visibility": at most 250 ms)."""

import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from urllib.parse import urlsplit

from _harness import (
    BENCH_PY,
    TICK_MAX_SECONDS,
    Row,
    alternate,
    fmt_time,
    http_get,
    ratio_row,
    tests_on_path,
)


class Tail:
    """One client following a job's output on one server, as a page's script would."""

    def __init__(self, port, job_id):
        self.port, self.job_id = port, job_id
        self.offset = 0
        self.text = []  # every chunk received, in order
        self.seen = []  # (client time the poll came back, index of the last complete line so far)
        self.lines = 0
        self.status = None

    def poll(self):
        status, _, body, took = http_get(
            self.port, "/tick?_t=%s&_format=json&_offset=%d" % (self.job_id, self.offset))
        back = time.time()
        if status != 200:
            raise RuntimeError("poll on port %d -> %d %r" % (self.port, status, body[:200]))
        answer = json.loads(body)
        if answer["cut"] or (answer["output"] and answer["offset"] != self.offset + len(answer["output"])):
            raise RuntimeError("poll from %d gave a gap: %r" % (self.offset, answer))
        self.offset, self.status = answer["offset"], answer["status"]
        if answer["output"]:
            self.text.append(answer["output"])
            self.lines += answer["output"].count("\n")
            self.seen.append((back, self.lines))
        return took

    def printed(self):
        """[(index, printed at)] of every complete line received; checks they are consecutive."""
        got = []
        for k, line in enumerate("".join(self.text).split("\n")[:self.lines]):
            i, t = line.split()
            if int(i) != k:
                raise RuntimeError("line %d of the output is %r" % (k, line))
            got.append(float(t))
        return got


def run(ctx):
    tests_on_path()
    from servers import Server, free_port

    scale, notes = ctx.scale, ctx.notes
    polls = 300 * scale
    blocks = 6 if scale == 1 else 10
    watch = 3.0 * scale  # seconds of B-only polling for the visibility latency
    pace = 0.005  # seconds between those polls
    tick = 0.01  # the job prints a line every tick seconds
    tmp = tempfile.mkdtemp(prefix="wb-bench-")
    store = "sqlite:///%s" % os.path.join(tmp, "jobs.db")
    servers = []
    try:
        for _ in range(2):
            port = free_port()
            servers.append(Server([sys.executable, BENCH_PY, "--serve", str(port), store], port).start())
        a, b = servers
        seconds = min(TICK_MAX_SECONDS, 30.0 * scale)  # far more than the polls below take
        status, headers, body, _ = http_get(a.port, "/tick?seconds=%s&delay=%s" % (seconds, tick))
        if status != 303:
            raise RuntimeError("starting the job on A -> %d %r" % (status, body[:200]))
        job_id = dict(p.split("=", 1) for p in urlsplit(headers["Location"]).query.split("&"))["_t"]
        tail_a, tail_b = Tail(a.port, job_id), Tail(b.port, job_id)
        t_started = time.monotonic()
        for _ in range(200):  # wait (at most ~2 s) until B sees output: both sides poll a live job
            tail_b.poll()
            if tail_b.lines:
                break
            time.sleep(0.01)
        else:
            raise RuntimeError("B never saw the job's output")
        for _ in range(10):  # warm-up: each server's pool threads and their SQLite connections
            tail_a.poll()
            tail_b.poll()
        n = polls // blocks
        t_b, t_a = alternate(blocks, lambda: sum(tail_b.poll() for _ in range(n)) / n,
                             lambda: sum(tail_a.poll() for _ in range(n)) / n)

        # visibility: only B polls, so what it sees was written by A's flusher thread
        watch_start = time.time()
        mark = len(tail_b.seen)
        t_end = time.monotonic() + watch
        while time.monotonic() < t_end:
            tail_b.poll()
            time.sleep(pace)
        if tail_b.status != "running" or time.monotonic() - t_started > seconds - 1:
            raise RuntimeError("the job was no longer running (%s) while measured" % tail_b.status)
        status, _, body, _ = http_get(a.port, "/stop?id=%s" % job_id)
        if status != 200:
            raise RuntimeError("cancel -> %d %r" % (status, body[:200]))
        for _ in range(500):  # at most ~5 s for the cancel to land and be visible to B
            tail_b.poll()
            if tail_b.status != "running":
                break
            time.sleep(0.01)
        tail_a.poll()
        final_b, final_a = tail_b.status, tail_a.status

        printed_b, printed_a = tail_b.printed(), tail_a.printed()
        if printed_a[:len(printed_b)] != printed_b[:len(printed_a)]:
            raise RuntimeError("A and B served different output")
        latencies = []
        last = tail_b.seen[mark - 1][1] if mark else 0
        for back, upto in tail_b.seen[mark:]:
            for k in range(last, upto):
                if printed_b[k] >= watch_start + 0.2:  # not the backlog from before the watch
                    latencies.append(back - printed_b[k])
            last = upto
    finally:
        for server in servers:
            server.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    if not latencies:
        raise RuntimeError("no line was printed during the visibility watch")
    a_best, b_best = min(t_a), min(t_b)
    lat_med, lat_max = statistics.median(latencies), max(latencies)
    notes.append("poll by another process, SQLite: %d tailing json polls each in %d alternating blocks, "
                 "new connection each; per poll by B (other process) best %s, median %s; by A (job's "
                 "process) best %s, median %s; B ended at offset %d, A at %d; job status after cancel: "
                 "B %s, A %s" % (
                     polls, blocks, fmt_time(b_best), fmt_time(statistics.median(t_b)), fmt_time(a_best),
                     fmt_time(statistics.median(t_a)), tail_b.offset, tail_a.offset, final_b, final_a))
    notes.append("visibility in another process (SQLite): %d lines printed by A every %s while only B "
                 "polled (every ~%s + the poll) for %s; printed -> first B poll back with it: median %s, "
                 "max %s (goal <= 250 ms: %s)" % (
                     len(latencies), fmt_time(tick), fmt_time(pace), fmt_time(watch), fmt_time(lat_med),
                     fmt_time(lat_max), "met" if lat_max <= 0.25 else "MISSED"))
    row = ratio_row("poll by another process, SQLite (B/A)", b_best, a_best, "<=", 2.0)
    return [Row("poll-other-process", *row), Row("visibility", None, lat_max <= 0.25)]
