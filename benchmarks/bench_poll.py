"""poll: ``?_t=<id>&_format=json&_offset=<end>`` of a finished job holding
50 MB of output vs the same poll of a 1 KB job (in-process, web.py's
``app.request``)."""

import json
import sys
import time

from _harness import (
    Row,
    alternate,
    finished_job,
    fmt_time,
    job_end,
    per_call,
    ratio_row,
    request,
)

from web_background import DEFAULTS, background, configure


@background
def emit(total, line_len=100):
    """Write ``total`` characters of output as lines of ``line_len``."""
    line = "x" * (line_len - 1) + "\n"
    for _ in range(total // line_len):
        sys.stdout.write(line)
    rest = total % line_len
    if rest:
        sys.stdout.write("y" * rest)


def run(ctx):
    big, small = 50_000_000, 1_000
    polls = 2000 * ctx.scale
    blocks = 10
    configure(**dict(DEFAULTS, store="memory://", max_output=60_000_000))
    t0 = time.perf_counter()
    big_job = finished_job(emit, big)
    t_big_job = time.perf_counter() - t0
    small_job = finished_job(emit, small)
    big_end, small_end = job_end(big_job.id), job_end(small_job.id)
    if (big_end, small_end) != (big, small):
        raise RuntimeError("ends %r, expected %r" % ((big_end, small_end), (big, small)))
    url_big = "/job?_t=%s&_format=json&_offset=%d" % (big_job.id, big_end)
    url_small = "/job?_t=%s&_format=json&_offset=%d" % (small_job.id, small_end)
    for url, end in ((url_big, big_end), (url_small, small_end)):
        body = json.loads(request(url).data)
        if body["output"] != "" or body["offset"] != end or body["status"] != "done":
            raise RuntimeError("unexpected poll answer %r" % (body,))
    n = polls // blocks
    t_big, t_small = alternate(blocks, lambda: per_call(lambda: request(url_big), n),
                               lambda: per_call(lambda: request(url_small), n))
    a, b = min(t_big), min(t_small)
    ctx.notes.append("poll: %d polls of each in %d alternating blocks; best per poll %s (50 MB) vs %s (1 KB); "
                     "the 50 MB job took %s to write" % (polls, blocks, fmt_time(a), fmt_time(b),
                                                          fmt_time(t_big_job)))
    del big_job
    configure(**dict(DEFAULTS, store="memory://"))  # drop the 50 MB
    return [Row("poll", *ratio_row("poll json at end, 50 MB vs 1 KB job", a, b, "<=", 1.5))]
