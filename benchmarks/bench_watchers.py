"""watchers: tests/apps.py under web.py's own server with a long job
(``/ticker``) running: the median latency of plain requests (``GET /plain``,
one after another, a new connection each) while 100 Server-Sent Events
clients watch that job (``bench.py --watch``, a process of its own: each
client reads until its stream ends and reconnects after the server's
``retry:`` pause with ``Last-Event-ID``, as an EventSource does) vs while none
do, in alternating blocks (medians)."""

import http.client
import json
import os
import signal
import statistics
import subprocess
import sys
import threading
import time
from urllib.parse import urlsplit

from _harness import BENCH_PY, Row, fmt_time, http_get, plain_latencies, ratio_row, tests_on_path

from web_background import DEFAULTS

WATCHERS = 100  # Server-Sent Events clients of one job
WATCH_MAX_SECONDS = 120.0  # a watcher process (--watch) exits by itself after this
WATCH_READY_SECONDS = 20.0  # at most this long for every watcher's first answer
WATCH_STAGGER = 0.01  # s between two watchers' first connects (100 clients arrive over 1 s, not at one instant)


def watch(port, target, count):
    """``bench.py --watch PORT TARGET COUNT`` (a process of its own, so that its
    threads do not share the measuring process's GIL): COUNT clients that watch
    ``target`` as the page's EventSource does: one http.client connection each,
    ``Accept: text/event-stream``, read until the stream ends, reconnect after
    the server's ``retry:`` pause with ``Last-Event-ID``, and stop at the
    ``end`` event.  The clients start WATCH_STAGGER s apart: 100 connects at
    one instant overflow the listen backlog of web.py's server (5) and wait for
    TCP SYN retries, 1 s, 3 s, 7 s, ...  Prints ``ready N`` once all have had an answer (N: how many
    had, after WATCH_READY_SECONDS at most); when stdin closes, closes every
    connection and prints one JSON line of counts."""
    timer = threading.Timer(WATCH_MAX_SECONDS, os._exit, (3,))  # never outlive a lost parent
    timer.daemon = True
    timer.start()
    import socket

    stop, ready, lock = threading.Event(), threading.Event(), threading.Lock()
    conns, answered = set(), set()
    counts = {"requests": 0, "held": 0, "events": 0, "errors": 0, "ended": 0, "statuses": {}}

    def client(i):
        last_id, retry = None, 3.0  # EventSource's own default until the server says
        stop.wait(i * WATCH_STAGGER)
        while not stop.is_set():
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            with lock:
                conns.add(conn)
            event = None
            try:
                conn.request("GET", target, headers=dict(
                    {"Accept": "text/event-stream"}, **({} if last_id is None else {"Last-Event-ID": last_id})))
                response = conn.getresponse()
                with lock:
                    counts["requests"] += 1
                    counts["statuses"][response.status] = counts["statuses"].get(response.status, 0) + 1
                    answered.add(i)
                    if len(answered) == count:
                        ready.set()
                for raw in response:
                    field, _, value = raw.decode("utf-8").rstrip("\n").partition(": ")
                    if field == "retry":
                        retry = int(value) / 1000
                        if retry < 2:  # the server gives a held stream 1000 ms, the others 2000
                            with lock:
                                counts["held"] += 1
                    elif field == "id":
                        last_id = value
                    elif field == "event":
                        event = value
                        with lock:
                            counts["events"] += 1
            except (OSError, http.client.HTTPException, ValueError):
                if not stop.is_set():
                    with lock:
                        counts["errors"] += 1
            finally:
                with lock:
                    conns.discard(conn)
                conn.close()
            if event == "end":  # the job ended: the page closes its EventSource
                with lock:
                    counts["ended"] += 1
                return
            stop.wait(retry)

    threads = [threading.Thread(target=client, args=(i,), daemon=True) for i in range(count)]
    for t in threads:
        t.start()
    ready.wait(WATCH_READY_SECONDS)
    print("ready %d" % len(answered), flush=True)
    sys.stdin.read()  # until the parent closes it
    stop.set()
    with lock:
        for conn in conns:
            try:
                conn.sock.shutdown(socket.SHUT_RDWR)
            except (AttributeError, OSError):
                pass
    for t in threads:
        t.join(5)
    counts["left running"] = sum(t.is_alive() for t in threads)
    print(json.dumps(counts), flush=True)


class Watchers:
    """A ``--watch`` process of ``count`` clients of ``target``, started and
    ready (every client answered once) when the constructor returns."""

    def __init__(self, port, target, count):
        self.began = time.perf_counter()
        self.proc = subprocess.Popen(
            [sys.executable, BENCH_PY, "--watch", str(port), target, str(count)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, start_new_session=True)
        t0 = time.perf_counter()
        line = self.proc.stdout.readline().split()  # within WATCH_READY_SECONDS, or the process died
        self.took = time.perf_counter() - t0
        self.answered = int(line[1]) if line[:1] == ["ready"] else 0

    def stop(self):
        """Close every watcher; their counts (a dict, with "seconds": how long they ran)."""
        try:
            out, _ = self.proc.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            out, _ = self.proc.communicate()
        lines = out.strip().splitlines()
        counts = json.loads(lines[-1]) if lines else {"errors": "no counts: exit %s" % self.proc.returncode}
        counts["seconds"] = time.perf_counter() - self.began
        return counts


def run(ctx):
    """Row 'watchers': GET /plain on tests/apps.py under web.py's own server
    while 100 SSE clients watch one running /ticker job vs while none do, in
    alternating blocks; a new job (cancelled after) for each round."""
    tests_on_path()
    from servers import apps_server, free_port

    scale, notes = ctx.scale, ctx.notes
    rounds = 3 if scale == 1 else 6
    block = 2.5  # seconds of plain requests per block
    took = {"with": [], "without": []}
    bad = {"with": 0, "without": 0}
    counts, ready, running = [], [], 0
    with apps_server(free_port()) as server:  # default settings: max_streams 4, stream_seconds 15
        plain_latencies(server.port, 0.3)  # warm-up
        for r in range(rounds):
            status, headers, body, _ = http_get(server.port, "/ticker")
            if status != 303:
                raise RuntimeError("starting /ticker -> %d %r" % (status, body[:200]))
            location = urlsplit(headers["Location"])
            target = "%s?%s" % (location.path, location.query)
            for side in ("without", "with") if r % 2 == 0 else ("with", "without"):
                watchers = Watchers(server.port, target, WATCHERS) if side == "with" else None
                try:
                    if watchers is not None:
                        ready.append((watchers.answered, watchers.took))
                        if watchers.answered < WATCHERS:
                            raise RuntimeError("only %d of %d watchers had an answer within %ss" % (
                                watchers.answered, WATCHERS, WATCH_READY_SECONDS))
                    got, failed = plain_latencies(server.port, block)
                finally:
                    if watchers is not None:
                        counts.append(watchers.stop())
                took[side] += got
                bad[side] += failed
                time.sleep(0.3)  # the held streams notice their closed connections
            status, _, body, _ = http_get(server.port, target + "&_format=json")
            running += status == 200 and json.loads(body)["status"] == "running"
            http_get(server.port, target + "&_action=cancel", method="POST", headers={"Accept": "application/json"})
    with_med, without_med = statistics.median(took["with"]), statistics.median(took["without"])

    def summary(side):
        xs = sorted(took[side])
        return "%d requests, median %s, p90 %s, max %s, %d not 200" % (
            len(xs), fmt_time(statistics.median(xs)), fmt_time(xs[int(len(xs) * 0.9)]), fmt_time(xs[-1]), bad[side])

    total = {key: sum(c.get(key, 0) for c in counts if isinstance(c.get(key, 0), int))
             for key in ("requests", "held", "events", "errors", "ended", "left running")}
    statuses = {}
    for c in counts:
        for code, n in c.get("statuses", {}).items():
            statuses[code] = statuses.get(code, 0) + n
    notes.append("watchers: tests/apps.py under web.py's own server (cheroot, 10 threads; max_streams=%d); %d "
                 "rounds, each a new /ticker job and a %s block of sequential GET /plain (new connection each, "
                 "10 ms apart) without watchers and one with %d SSE watchers (their own process; each reads "
                 "until the stream ends and reconnects after the server's retry: pause with Last-Event-ID, like "
                 "an EventSource), in alternating order; with: %s; without: %s; all %d watchers answered before "
                 "each with-block in %s (answered: %s; the watchers start %s apart, and that start is not "
                 "measured: web.py's server listens with a backlog of 5, so a burst of connects waits for TCP SYN "
                 "retries); watcher requests %d "
                 "(%.0f/s while they ran; statuses %s), %d of them held streams, %d events, %d errors, %d saw "
                 "the job end, %d left running; job still running at the end of %d/%d rounds" % (
                     DEFAULTS["max_streams"], rounds, fmt_time(block), WATCHERS, summary("with"),
                     summary("without"), WATCHERS, ", ".join(fmt_time(t) for _, t in ready),
                     ", ".join(str(n) for n, _ in ready), fmt_time(WATCH_STAGGER), total["requests"],
                     total["requests"] / sum(c["seconds"] for c in counts), statuses, total["held"], total["events"],
                     total["errors"], total["ended"], total["left running"], running, rounds))
    name = "plain request latency, %d SSE watchers of one job vs none (medians)" % WATCHERS
    return [Row("watchers", *ratio_row(name, with_med, without_med, "<=", 3.0))]
