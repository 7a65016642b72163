"""History at scale: what lists jobs reads a page through the store's page query,
pruning happens in the maintenance thread a slice at a time, and running jobs
cost one batched heartbeat and one batched cancel check per process; on every store."""
import contextlib
import io
import json
import threading
import time

import web

import web_background
from conftest import wait_for
from web_background import background, cli, configure, threaddb
from web_background import maintenance
from web_background.jobs import get_runner
from web_background.stores import PRUNE_SLICE

MAINTENANCE = "web_background-flusher"  # the maintenance thread's name
DASHBOARD = web.application(("/jobs", web_background.dashboard(allow=lambda: True)), {}, autoreload=False)


@background
def quick(n=0):
    return n


@background
def waiting(gate):
    """Silent until the gate opens, in bytecode often enough for a cancel to land."""
    deadline = time.monotonic() + 30
    while not gate.is_set() and time.monotonic() < deadline:
        time.sleep(0.01)


def finished_records(n, finished, name="report"):
    """``n`` finished jobs written straight into the store (as a long history would be)."""
    store, base = get_runner().store, time.time() - 100
    for i in range(n):
        store.create({"id": "old%05d" % i, "status": "done", "name": name, "created": base + i * 1e-3,
                      "started": base, "finished": finished, "progress": None, "result": None, "error": None,
                      "cancel": False, "heartbeat": None})


def no_reading_every_job(monkeypatch):
    def every_job(*args, **kwargs):
        raise AssertionError("read every job")

    monkeypatch.setattr(get_runner().store, "ids", every_job)


def cli_list(*extra):
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert cli.main(["--store", get_runner().settings["store"], "list"] + list(extra)) == 0
    return [line.split()[0] for line in out.getvalue().splitlines()[1:]]


def test_the_dashboard_reads_one_page_through_the_page_query(monkeypatch):
    finished_records(120, time.time())
    no_reading_every_job(monkeypatch)
    view = json.loads(DASHBOARD.request("/jobs/?_format=json&page=2").data)
    assert [r["id"] for r in view["jobs"]] == ["old%05d" % i for i in range(69, 19, -1)]
    assert view["total"] == view["matching"] == 120 and view["counts"]["done"] == 120 and view["pages"] == 3


def test_the_cli_list_streams_every_job_newest_first_with_the_filters_in_the_store(monkeypatch):
    finished_records(1200, time.time())
    get_runner().store.update("old00007", status="failed")
    no_reading_every_job(monkeypatch)
    listed = cli_list()
    assert listed == ["old%05d" % i for i in range(1199, -1, -1)]  # more than two batches
    assert cli_list("--status", "failed") == ["old00007"]
    assert cli_list("--name", "REPO", "--status", "failed") == ["old00007"] and cli_list("--name", "nope") == []


def test_threaddb_iterates_and_counts_through_the_page_query(monkeypatch):
    finished_records(600, time.time())
    no_reading_every_job(monkeypatch)
    assert list(threaddb)[:2] == ["old00599", "old00598"] and len(threaddb) == 600 == len(list(threaddb))


def test_start_never_prunes_the_maintenance_thread_does_a_slice_at_a_time(monkeypatch):
    configure(ttl=5)
    finished_records(PRUNE_SLICE * 2 + 10, time.time() - 60)  # all past ttl
    store, calls = get_runner().store, []
    prune = store.prune

    def recorded(*args, **kwargs):
        calls.append((threading.current_thread().name, kwargs.get("limit", PRUNE_SLICE)))
        return prune(*args, **kwargs)

    monkeypatch.setattr(store, "prune", recorded)
    job = quick()
    assert job.wait(10)
    wait_for(lambda: store.page(limit=0).counts["done"] == 1, timeout=10)  # only the new job is left
    assert len(calls) >= 3 and {name for name, _ in calls} == {MAINTENANCE}
    assert all(limit == PRUNE_SLICE for _, limit in calls)


def test_max_jobs_bounds_finished_jobs_only(gate):
    configure(max_jobs=2, workers=4)
    running = [waiting(gate) for _ in range(2)]
    done = []
    for i in range(4):  # one after another: the oldest finished go first
        done.append(quick(i))
        assert done[-1].wait(10)
    wait_for(lambda: get_runner().store.page(limit=0).counts["done"] == 2, timeout=10)
    assert set(threaddb) == {j.id for j in running} | {j.id for j in done[2:]}
    gate.set()


def test_running_jobs_get_one_batched_heartbeat_a_second_and_no_per_job_write(monkeypatch, gate):
    store, beats, writes = get_runner().store, [], []
    beat, update = store.beat, store.update

    def batched(ids, now):
        beats.append(sorted(ids))
        return beat(ids, now)

    def single(job_id, **fields):
        if threading.current_thread().name == MAINTENANCE:
            writes.append(fields)
        return update(job_id, **fields)

    monkeypatch.setattr(store, "beat", batched)
    monkeypatch.setattr(store, "update", single)
    jobs = [waiting(gate) for _ in range(5)]
    wait_for(lambda: all(j.status == "running" for j in jobs))
    beats.clear()
    wait_for(lambda: len(beats) >= 2, timeout=5)
    assert beats[-1] == sorted(j.id for j in jobs)
    assert not any("heartbeat" in w for w in writes)
    assert all(store.get(j.id)["heartbeat"] > time.time() - 2 for j in jobs)


def test_a_cancel_made_elsewhere_is_found_by_one_batched_check_per_tick(monkeypatch, gate):
    store, checks, reads = get_runner().store, [], []
    cancel_requested, get = store.cancel_requested, store.get

    def batched(ids):
        checks.append(sorted(ids))
        return cancel_requested(ids)

    def single(job_id):
        if threading.current_thread().name == MAINTENANCE:
            reads.append(job_id)
        return get(job_id)

    monkeypatch.setattr(store, "cancel_requested", batched)
    monkeypatch.setattr(store, "get", single)
    jobs = [waiting(gate) for _ in range(5)]
    wait_for(lambda: all(j.status == "running" for j in jobs))
    store.update(jobs[2].id, cancel=True)  # as another process's cancel() writes it
    assert jobs[2].wait(5) and jobs[2].status == "cancelled"
    assert sorted(j.id for j in jobs) in checks and reads == []


def test_the_maintenance_thread_sleeps_while_its_jobs_are_silent(monkeypatch, gate):
    configure(workers=20)
    jobs = [waiting(gate) for _ in range(20)]
    wait_for(lambda: all(j.status == "running" for j in jobs))
    wakes = []
    pause = maintenance._pause

    def counted(*args):
        wakes.append(time.monotonic())
        return pause(*args)

    monkeypatch.setattr(maintenance, "_pause", counted)
    time.sleep(1.0)  # what is measured: how often the thread wakes in a second
    assert 5 <= len(wakes) <= 15  # every FLUSH_INTERVAL (0.1 s), not every 10 ms


def test_output_after_a_silent_spell_is_in_the_store_within_a_check(gate):
    """Read from the store itself: a read through the job (``job.output``) flushes first."""
    line = threading.Event()
    store = get_runner().store

    @background
    def later():
        print("first")
        line.wait(10)
        print("after a while")
        gate.wait(10)

    job = later()
    wait_for(lambda: "first" in store.read(job.id)[0])
    time.sleep(0.3)  # silent for three checks
    line.set()
    t0 = time.monotonic()
    wait_for(lambda: "after a while" in store.read(job.id)[0], timeout=5, interval=0.005)
    assert time.monotonic() - t0 < 0.3
    gate.set()
