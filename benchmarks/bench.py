#!/usr/bin/env python3
"""Side-by-side benchmarks of web_background against plain Python / web.py.

Run from the repository root, with any python3 (one without web.py runs it
again with the repository's .venv, made as scripts/_venv.sh makes it if missing):

    python3 benchmarks/bench.py                  # all of them, default sizes (about 4 min on 2 cores)
    python3 benchmarks/bench.py --long           # about 3x the counts, and a bigger load (notes only)
    python3 benchmarks/bench.py capture poll     # only these, in the table's order
    python3 benchmarks/bench.py --list           # their names and what each measures

Every row is a ratio of two things measured in the same run, in alternating
rounds (A B, B A, A B, ...), so a shared, noisy machine affects both sides
alike.  Each side keeps its best round (the minimum time), which is the
least noisy estimate of what the code itself costs; the first-line,
watchers, isolation (p90s), process-start and capture-process rows keep
medians.  Medians are in the notes.  The cancel rows are the exception: an
absolute time (median) against an absolute target, no baseline, and so are
the history rows' per-job, expiry and idle-CPU figures.

A process that a benchmark starts (servers, rq workers, watchers) it stops by
its pid; one that ran process jobs stops web_background's fork server too
(``_harness.stop_fork_server``).  ``--child MODULE ARG...`` (not listed) is how
a benchmark starts a process of its own: it runs ``MODULE.child(ARG, ...)``.

One module per benchmark, benchmarks/bench_<name>.py (its docstring says what
it measures), run in the order of ``BENCHMARKS`` below: capture, poll, serve,
memory, capture-sqlite, capture-process, poll-other-process, watchers,
isolation, load (with ``--long`` only, unless named), first-line,
process-start, cancel, capture-redis, faults, history and terminal.  What they share is in
benchmarks/_harness.py.  The Redis benchmarks (``REDIS = True``) run against
one throw-away redis-server this script starts on 127.0.0.1 (a free port, no
persistence) before the first of them and stops at the end.

To add a benchmark: a module benchmarks/bench_<name>.py with a docstring and
``run(ctx)`` (ctx: ``_harness.Context``) returning a list of ``_harness.Row``
(its table rows and targets, in order; ``[]`` for notes only), optionally
``REDIS = True`` or ``LONG_ONLY = True`` (``--list`` reads them from the file,
importing nothing); then its module name in
``BENCHMARKS``.  Its name on the command line is ``<name>`` with ``-`` for
``_``.
"""

import argparse
import ast
import importlib
import importlib.util
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


def use_the_venv():
    """On a Python without web.py (a fresh clone's system python3), run this
    command again with the repository's .venv Python: the one the README's
    test command made, or one made as scripts/_venv.sh makes it (``.[bench]``)."""
    if importlib.util.find_spec("web") is not None:
        return
    python = os.path.join(ROOT, ".venv", "bin", "python")
    if os.environ.get("WB_BENCH_IN_VENV"):  # already re-run there: it lacks web.py too
        raise SystemExit("bench.py: web.py is not installed in %s (bash scripts/test.sh installs it)" % python)
    ready = subprocess.run([python, "-c", "import web"], capture_output=True).returncode == 0 if os.path.exists(
        python) else False
    if not ready:
        print("bench.py: making %s (as scripts/_venv.sh does) ..." % os.path.dirname(os.path.dirname(python)),
              file=sys.stderr)
        subprocess.run(["bash", "-c", 'source "$1" && install_package bench', "bench",
                        os.path.join(ROOT, "scripts", "_venv.sh")], check=True)
    os.environ["WB_BENCH_IN_VENV"] = "1"
    os.execv(python, [python, os.path.abspath(__file__)] + sys.argv[1:])


if __name__ == "__main__":
    use_the_venv()

import _harness  # noqa: E402  (after use_the_venv: it imports web.py)
import web  # noqa: E402

import web_background.maintenance  # noqa: E402
from web_background import DEFAULTS, configure  # noqa: E402

BENCHMARKS = [  # the benchmark modules, in the order they run (and their rows print)
    "bench_capture",
    "bench_poll",
    "bench_serve",
    "bench_memory",
    "bench_capture_sqlite",
    "bench_capture_process",
    "bench_poll_other_process",
    "bench_watchers",
    "bench_isolation",
    "bench_load",
    "bench_first_line",
    "bench_process_start",
    "bench_cancel",
    "bench_capture_redis",
    "bench_faults",
    "bench_history",
    "bench_terminal",
]


def bench_name(module):
    """A benchmark's name on the command line: bench_capture_sqlite -> capture-sqlite."""
    return module[len("bench_"):].replace("_", "-")


def normalize(name):
    """capture_sqlite, bench_capture_sqlite.py, capture-sqlite -> capture-sqlite."""
    return name.lower().replace("_", "-").removesuffix(".py").removeprefix("bench-")


def describe(module):
    """A benchmark's docstring's first paragraph and what it needs, read from
    its file (nothing imported: it works without the optional parts)."""
    with open(os.path.join(HERE, module + ".py"), encoding="utf-8") as f:
        source = f.read()
    tree = ast.parse(source)
    doc = " ".join((ast.get_docstring(tree) or "").split("\n\n")[0].split())
    flags = {t.id: getattr(node.value, "value", None) for node in tree.body if isinstance(node, ast.Assign)
             for t in node.targets if isinstance(t, ast.Name)}
    needs = []
    if flags.get("REDIS"):
        needs += ["redis-server", "redis"] + (["rq"] if "rq_command" in source else [])
    return doc, needs, bool(flags.get("LONG_ONLY"))


def missing(needs):
    """Which of these (commands and Python packages) this machine lacks."""
    return [n for n in needs if (shutil.which(n) is None if n == "redis-server" else
                                 importlib.util.find_spec(n) is None)]


def run_all(modules, ctx):
    """Run the modules in turn: the table's rows and the (label, met) of their
    targets; one redis-server for the Redis ones, stopped whatever happens."""
    rows, met = [], []
    tmp = redis_server = None
    try:
        for module in modules:
            if getattr(module, "REDIS", False) and tmp is None:
                tmp = tempfile.mkdtemp(prefix="wb-bench-redis-")
                redis_server = _harness.start_redis(tmp)
                ctx.redis_url = redis_server.url
            for row in module.run(ctx):
                if row.text is not None:
                    rows.append(row.text)
                if row.label is not None:
                    met.append((row.label, row.ok))
    finally:
        if tmp is not None:
            configure(**dict(DEFAULTS, store="memory://"))
            time.sleep(2 * web_background.maintenance.FLUSH_INTERVAL)  # old flusher threads see they are closed
            if redis_server is not None:
                redis_server.stop()
            shutil.rmtree(tmp, ignore_errors=True)
    return rows, met


def main(argv=None):
    names = [bench_name(m) for m in BENCHMARKS]
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        epilog=f"benchmarks, in the order they run: {', '.join(names)} (load only with --long, unless named)")
    parser.add_argument("names", nargs="*", metavar="NAME", help="run only these benchmarks (default: all)")
    parser.add_argument("--long", action="store_true", help="about 3x the counts (slower, steadier)")
    parser.add_argument("--list", action="store_true", help="list the benchmarks and what each measures")
    parser.add_argument("--serve", nargs=2, metavar=("PORT", "STORE"), help=argparse.SUPPRESS)
    parser.add_argument("--watch", nargs=3, metavar=("PORT", "TARGET", "COUNT"), help=argparse.SUPPRESS)
    parser.add_argument("--child", nargs="+", metavar=("MODULE", "ARG"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve:  # a server of the poll-other-process row
        _harness.serve(int(args.serve[0]), args.serve[1])
        return 0
    if args.watch:  # the watchers of the watchers row
        from bench_watchers import watch

        watch(int(args.watch[0]), args.watch[1], int(args.watch[2]))
        return 0
    if args.child:  # a process a benchmark starts: MODULE.child(ARG, ...)
        importlib.import_module(args.child[0]).child(*args.child[1:])
        return 0
    wanted = [normalize(n) for n in args.names]
    unknown = [n for n in wanted if n not in names]
    if unknown:
        parser.error(f"no benchmark {', '.join(unknown)} (there are: {', '.join(names)})")
    if args.list:
        for module in BENCHMARKS:
            name = bench_name(module)
            doc, needs, _ = describe(module)
            if needs:
                lacking = missing(needs)
                doc += " [needs %s%s]" % (", ".join(needs), "; missing here: " + ", ".join(lacking) if lacking else "")
            print(textwrap.fill(doc.removeprefix(name + ": "), 100, initial_indent=f"{name:<20} ",
                                subsequent_indent=" " * 21))
        return 0
    chosen = [m for m in BENCHMARKS if not wanted or bench_name(m) in wanted]
    if not wanted and not args.long:  # named, a LONG_ONLY benchmark runs anyway
        chosen = [m for m in chosen if not describe(m)[2]]
    lacking = {bench_name(m): missing(describe(m)[1]) for m in chosen}
    lacking = {name: what for name, what in lacking.items() if what}
    if lacking:
        raise SystemExit("bench.py: missing what these benchmarks need: %s (Python packages: pip install "
                         "'.[bench]'; redis-server: apt-get install redis-server)" % "; ".join(
                             "%s needs %s" % (name, ", ".join(what)) for name, what in lacking.items()))
    modules = [importlib.import_module(m) for m in chosen]
    scale = 3 if args.long else 1
    ctx = _harness.Context(scale, args.long, notes=[])
    if any(getattr(module, "REDIS", False) for module in modules):
        ctx.rq_command = _harness.redis_requirements()  # before anything runs: a missing redis-server fails at once

    load_start = _harness.load_average()  # a shared machine: other work skews both sides of a ratio less than its times
    t_start = time.perf_counter()
    rows, met = run_all(modules, ctx)

    print("| benchmark | ours | baseline | ratio | target |")
    print("|---|---|---|---|---|")
    for row in rows:
        print(row)
    print()
    for note in ctx.notes:
        print("- " + note)
    print("- python %s, web.py %s, rq %s, redis-py %s, %s, %d CPUs, load average %s at the start, %s at "
          "the end, total %.1f s" % (
              sys.version.split()[0], web.__version__, _harness.module_version("rq"),
              _harness.module_version("redis"), _harness.redis_server_version(), os.cpu_count() or 0, load_start,
              _harness.load_average(), time.perf_counter() - t_start))
    print()
    good = [n for n, ok in met if ok]
    bad = [n for n, ok in met if not ok]
    print("targets met: %d/%d (%s)%s" % (len(good), len(met), ", ".join(good) or "none",
                                        "; missed: " + ", ".join(bad) if bad else ""))
    return 0  # a report, not a gate: missed targets are in the last line


if __name__ == "__main__":
    sys.exit(main())
