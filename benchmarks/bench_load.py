"""load (--long only, unless named): tests/reliability/test_load.py's load,
bigger: 1000 jobs of 40 lines on the memory store under web.py's own server,
followed by 16 clients (jobs started/s, polls/s, 5xx, lost lines); notes
only, no row."""

from _harness import tests_on_path

LONG_ONLY = True  # run by default only with --long

LOAD_JOBS, LOAD_LINES, LOAD_CLIENTS = 1000, 40, 16
LOAD_SECONDS = 240.0  # the clients stop following jobs after this


def run(ctx):
    """tests/reliability/test_load.py's load, bigger (notes only): LOAD_JOBS jobs of
    LOAD_LINES numbered lines started at once over HTTP on the memory store under
    web.py's own server (that test's server and settings), followed to their end
    by LOAD_CLIENTS clients while another sends plain requests."""
    tests_on_path()
    import test_load

    notes = ctx.notes
    with test_load.server_for("memory", "memory://") as server:
        r = test_load.run_load(server, LOAD_JOBS, LOAD_LINES, LOAD_CLIENTS, LOAD_SECONDS)
    notes.append("load (--long; tests/reliability/test_load.py's, bigger): %d jobs of %d lines, memory store, "
                 "web.py's own server, %d clients, %.1f s: %.0f jobs started/s, %.0f polls/s, %d requests "
                 "(statuses %s), %d 5xx, %d jobs not done or not exactly their lines (the reliability "
                 "test's bar, 0 5xx and nothing lost: %s)" % (
                     r["jobs"], r["lines_per_job"], r["clients"], r["seconds"], r["jobs_started_per_s"],
                     r["polls_per_s"], r["requests"], dict(sorted(r["statuses"].items())), r["server_errors"],
                     r["lost_or_wrong_jobs"],
                     "met" if r["server_errors"] == 0 and r["lost_or_wrong_jobs"] == 0 else "MISSED"))
    return []  # notes only
