"""Imported first by _harness.py (so before web.py and web_background): puts
the repository root at the front of sys.path, so that the benchmarks measure
this checkout's web_background even when it is not installed
(``python3 benchmarks/bench.py`` puts only benchmarks/ on the path)."""

import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BENCH_DIR = os.path.join(ROOT, "benchmarks")  # the benchmark modules, and rqbench_jobs.py, the RQ jobs
sys.path.insert(0, ROOT)
