"""The benchmark command works as the README writes it: from any python3, and
``--list`` without the optional parts (a benchmark that needs one says which)."""
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BENCH = os.path.join(ROOT, "benchmarks", "bench.py")
WITHOUT_REDIS_AND_RQ = ("import runpy, sys; sys.modules['rq'] = sys.modules['redis'] = None; "
                        "sys.path.insert(0, %r); sys.argv = [%r] + sys.argv[1:]; "
                        "runpy.run_path(%r, run_name='__main__')" % (os.path.dirname(BENCH), BENCH, BENCH))

pytestmark = pytest.mark.stores("memory")  # once, whatever the store


def run(*argv):
    return subprocess.run(list(argv), cwd=ROOT, capture_output=True, text=True, timeout=120)


def test_bench_py_run_by_a_python_without_web_py_runs_again_in_the_repositorys_venv():
    done = run(sys.executable, "-S", BENCH, "--list")  # -S: this Python sees none of the venv's packages
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("capture ") and "history " in done.stdout


def test_the_list_works_without_redis_and_rq_and_names_what_each_benchmark_needs():
    done = run(sys.executable, "-c", WITHOUT_REDIS_AND_RQ, "--list")
    assert done.returncode == 0, done.stderr
    cancel = done.stdout.split("\ncancel ", 1)[1].split("\ncapture-redis ", 1)[0]
    assert "[needs redis-server, redis, rq; missing here: redis, rq]" in " ".join(cancel.split())
    assert "poll " in done.stdout and "history " in done.stdout


def test_a_benchmark_whose_parts_are_missing_names_them_instead_of_failing_on_an_import():
    done = run(sys.executable, "-c", WITHOUT_REDIS_AND_RQ, "cancel")
    assert done.returncode != 0 and "Traceback" not in done.stderr
    assert "cancel needs redis, rq" in done.stderr and "pip install" in done.stderr
