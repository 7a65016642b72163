"""Memory: 100,000 jobs through their whole life leave nothing behind."""
import gc
import json
import os
import time
import tracemalloc

import pytest

from web_background import background, configure, threaddb

from servers import ROOT

pytestmark = pytest.mark.stores("memory")
JOBS = 100_000


@background
def tiny(i):
    print("job %d" % i)


def run(total, batch=500):
    for start in range(0, total, batch):
        jobs = [tiny(i) for i in range(start, start + batch)]
        for job in jobs:
            assert job.wait(30)
    time.sleep(0.1)  # past the ttl
    assert len(threaddb) == 0  # reading threaddb expires what is due
    gc.collect()


def rss_mb():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 1e6


def test_a_hundred_thousand_jobs_leave_memory_where_it_was_and_threaddb_empty():
    configure(ttl=0.05, queue_limit=1000)
    run(JOBS // 2)  # warm up: threads, caches, the allocator's high-water mark
    rss_before = rss_mb()
    began = time.monotonic()
    run(JOBS)
    elapsed = time.monotonic() - began
    rss_after = rss_mb()
    tracemalloc.start()  # and, exactly, what Python objects are left (a shorter run: tracing is slow)
    try:
        before = tracemalloc.get_traced_memory()[0]
        run(JOBS // 5)
        after = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    report = {"jobs": JOBS, "seconds": round(elapsed, 1), "jobs_per_s": round(JOBS / elapsed),
              "rss_delta_mb": round(rss_after - rss_before, 2),
              "python_heap_delta_mb_after_%d_more" % (JOBS // 5): round((after - before) / 1e6, 3),
              "left_in_threaddb": len(threaddb)}
    os.makedirs(os.path.join(ROOT, "artifacts"), exist_ok=True)
    with open(os.path.join(ROOT, "artifacts", "reliability-memory.json"), "w") as f:
        json.dump(report, f)
    print("\nmemory:", json.dumps(report))
    assert report["left_in_threaddb"] == 0
    assert report["rss_delta_mb"] < 5.0
    assert (after - before) / 1e6 < 1.0
