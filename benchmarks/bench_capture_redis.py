"""capture-redis: the capture row (100k lines) with ``configure(store=<redis url>)``,
on the runner's throw-away redis-server; no target (reported)."""

from _harness import Row, ratio_row
from bench_capture import capture_rounds

REDIS = True  # run with ctx.redis_url


def run(ctx):
    n = 100_000 * ctx.scale
    a, b = capture_rounds(ctx.redis_url, "Redis", n, 7 if ctx.scale == 1 else 15, ctx.notes)
    return [Row(None, *ratio_row("capture %dk lines, Redis store" % (n // 1000), a, b, "report", None))]
