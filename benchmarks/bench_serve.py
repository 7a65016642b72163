"""serve: ``?_t=<id>&_format=text`` of a finished 1 KB job vs a plain web.py
handler returning the same 1 KB string (in-process, web.py's ``app.request``)."""

from _harness import (
    KB_TEXT,
    Row,
    alternate,
    finished_job,
    fmt_time,
    per_call,
    ratio_row,
    request,
    write_text,
)

from web_background import DEFAULTS, configure


def run(ctx):
    requests = 2000 * ctx.scale
    blocks = 10
    configure(**dict(DEFAULTS, store="memory://"))
    job = finished_job(write_text, KB_TEXT)
    url_job = "/job?_t=%s&_format=text" % job.id
    got_job, got_plain = request(url_job).data, request("/plain").data
    if got_job != got_plain or got_job != KB_TEXT.encode():
        raise RuntimeError("job served %r..., plain %r..." % (got_job[:40], got_plain[:40]))
    n = requests // blocks
    t_job, t_plain = alternate(blocks, lambda: per_call(lambda: request(url_job), n),
                               lambda: per_call(lambda: request("/plain"), n))
    a, b = min(t_job), min(t_plain)
    ctx.notes.append("serve: %d requests of each in %d alternating blocks; best per request %s (job text) "
                     "vs %s (plain handler)" % (requests, blocks, fmt_time(a), fmt_time(b)))
    return [Row("serve", *ratio_row("serve 1 KB job text vs plain handler", a, b, "<=", 1.5))]
