"""The store contract: every store keeps records, output and retention the same way."""
import time
import uuid

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from web_background.stores import StoreError, open_store
from web_background.stores.sqlite import SQLiteStore



@pytest.fixture
def store(url_of_store):
    return open_store(url_of_store, max_output=50)


def record(job_id, status="queued", **fields):
    rec = {"id": job_id, "status": status, "created": time.time(), "started": None, "finished": None,
           "progress": None, "result": None, "error": None, "cancel": False}
    rec.update(fields)
    return rec


def test_a_created_record_reads_back_with_empty_output(store):
    store.create(record("a", name="f"))
    got = store.get("a")
    assert got["status"] == "queued" and got["name"] == "f" and got["end"] == 0 and got["cut"] == 0
    assert store.read("a", 0) == ("", 0, 0)
    assert store.get("missing") is None and store.read("missing", 0) is None


def test_update_sets_fields(store):
    store.create(record("a"))
    store.update("a", status="done", result={"n": [1, 2]}, progress={"done": 1, "total": 2, "message": None})
    got = store.get("a")
    assert got["status"] == "done" and got["result"] == {"n": [1, 2]}
    assert got["progress"] == {"done": 1, "total": 2, "message": None}


def test_appends_read_back_from_any_absolute_offset(store):
    store.create(record("a"))
    for chunk in ("hello ", "big ", "world\n"):
        store.append("a", chunk)
    full = "hello big world\n"
    for offset in range(len(full) + 3):
        assert store.read("a", offset) == (full[offset:], len(full), 0)


def test_the_cap_keeps_the_newest_output_and_offsets_stay_absolute(store):
    store.create(record("a"))
    full = "".join("%04d\n" % i for i in range(40))  # 200 characters
    for i in range(0, 200, 15):
        store.append("a", full[i:i + 15])
    text, end, cut = store.read("a", 0)
    assert (text, end, cut) == (full[-50:], 200, 150)
    assert store.read("a", 170) == (full[170:], 200, 150)
    store.append("a", "x" * 120)  # one append larger than the cap
    assert store.read("a", 0) == ("x" * 50, 320, 270)


def test_expire_drops_old_finished_jobs_and_never_running_ones(store):
    now = time.time()
    store.create(record("old", status="done", finished=now - 100))
    store.create(record("new", status="done", finished=now))
    store.create(record("run", status="running", created=now - 1000))
    store.append("old", "some output")
    assert store.expire(ttl=10, max_jobs=100, now=now) == 1
    assert sorted(store.ids()) == ["new", "run"]
    assert store.read("old", 0) is None


def test_expire_drops_the_oldest_finished_past_max_jobs_finished_ones(store):
    now = time.time()
    for i in range(5):
        store.create(record("d%d" % i, status="done", finished=now - 10 + i))
    store.create(record("q", status="queued"))
    store.create(record("r", status="running"))
    store.expire(ttl=1000, max_jobs=3, now=now)
    assert sorted(store.ids()) == ["d2", "d3", "d4", "q", "r"]  # queued and running jobs do not count


def test_a_prune_slice_drops_at_most_its_limit_oldest_first(store):
    now = time.time()
    for i in range(7):
        store.create(record("d%d" % i, status="done", finished=now - (100 if i < 4 else 5) + i))
    assert store.prune(ttl=10, max_jobs=100, now=now, limit=3) == 3
    assert sorted(store.ids()) == ["d3", "d4", "d5", "d6"]
    assert store.prune(ttl=10, max_jobs=2, now=now, limit=3) == 2  # past ttl, then past max_jobs
    assert store.prune(ttl=10, max_jobs=2, now=now, limit=3) == 0
    assert sorted(store.ids()) == ["d5", "d6"]


def test_pruning_a_job_frees_its_key(store):
    store.create(record("k1", key="nightly"))
    assert store.claim("nightly", "k1") is None
    store.update("k1", status="done", finished=time.time() - 100)
    assert store.prune(ttl=10, max_jobs=100) == 1
    store.create(record("k2", status="running", key="nightly"))
    assert store.claim("nightly", "k2") is None
    store.create(record("k3", key="nightly"))
    assert store.claim("nightly", "k3") == "k2"
    if hasattr(store, "client"):  # Redis: no wb:key:* entry outlives its job
        store.update("k2", status="done", finished=time.time() - 100)
        store.delete("k3")
        store.prune(ttl=10, max_jobs=100)
        assert store.client.keys("wb:key:*") == [] and set(store.client.keys("wb:*")) <= {b"wb:version"}


def test_delete_removes_the_record_and_its_output(store):
    store.create(record("a"))
    store.append("a", "text")
    store.delete("a")
    assert store.get("a") is None and store.ids() == []


@pytest.mark.stores("sqlite")
def test_sqlite_store_keeps_jobs_across_reopening(tmp_path):
    path = str(tmp_path / "jobs.db")
    first = SQLiteStore(path)
    first.create(record("a", status="done", finished=time.time(), result=object()))
    first.append("a", "kept\n")
    again = SQLiteStore(path)
    assert again.read("a", 0)[0] == "kept\n"
    assert again.get("a")["result"].startswith("<object object at")


@pytest.mark.stores("sqlite")
def test_sqlite_store_refuses_a_file_that_is_not_a_database(tmp_path):
    bad = tmp_path / "notadb.db"
    bad.write_bytes(b"this is not a SQLite database, just text" * 100)
    with pytest.raises(StoreError, match="cannot use"):
        SQLiteStore(str(bad))
    with pytest.raises(StoreError, match="no SQLite job database"):
        SQLiteStore(str(tmp_path / "missing.db"), create=False)


@pytest.mark.stores("sqlite")
def test_sqlite_store_reports_a_corrupt_row_as_a_store_error(tmp_path):
    import sqlite3
    path = str(tmp_path / "jobs.db")
    s = SQLiteStore(path)
    s.create(record("a"))
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE jobs SET record = '{not json' WHERE id = 'a'")
    with pytest.raises(StoreError, match="corrupt record"):
        s.get("a")


def test_skipped_characters_count_in_offsets_and_cut_all_older_output(store):
    store.create(record("a"))
    store.append("a", "old output\n")
    store.append("a", "y" * 50, skipped=1000)
    assert store.read("a", 0) == ("y" * 50, 1061, 1011)
    store.append("a", "z")
    assert store.read("a", 1060) == ("yz", 1062, 1012)


# Full Unicode: lone surrogates (category Cs), NUL and every other control, \r, astral characters.
_ANY_CHARACTER = st.characters(codec=None, exclude_categories=())
_CHUNKS = st.lists(st.one_of(st.text(_ANY_CHARACTER, max_size=12), st.sampled_from(["\x00", "\ud800", "\r", "\U0001f600", "\udcff\x00"])),
                   min_size=1, max_size=12)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(chunks=_CHUNKS, max_output=st.integers(min_value=1, max_value=25))
def test_every_character_is_kept_and_every_read_from_every_offset_is_the_expected_tail(store, chunks, max_output):
    store.max_output = max_output
    job_id = "p" + uuid.uuid4().hex
    store.create(record(job_id))
    for chunk in chunks:
        store.append(job_id, chunk)
    # a lone surrogate is kept as U+FFFD, one character for one; everything else exactly
    written = "".join(chunks)
    expected = "".join("\ufffd" if "\ud800" <= c <= "\udfff" else c for c in written)
    end = len(expected)
    cut = max(0, end - max_output)
    assert store.get(job_id)["end"] == end and store.get(job_id)["cut"] == cut
    for offset in range(end + 2):
        assert store.read(job_id, offset) == (expected[max(offset, cut):], end, cut)
    store.delete(job_id)


def test_a_lone_surrogate_in_a_record_field_reads_back_as_a_replacement_character(store):
    store.create(record("s", name="f\ud800"))
    store.update("s", error="bad \udcff name", progress={"done": 1, "total": 2, "message": "\ud800!"})
    got = store.get("s")
    assert got["name"] == "f\ufffd" and got["error"] == "bad \ufffd name"
    assert got["progress"]["message"] == "\ufffd!"


def test_a_key_is_held_by_its_queued_or_running_job_until_it_ends(store):
    store.create(record("k1"))
    assert store.claim("key", "k1") is None
    store.create(record("k2"))
    assert store.claim("key", "k2") == "k1"
    store.update("k1", status="running")
    assert store.claim("key", "k2") == "k1"
    store.update("k1", status="done", finished=time.time())
    assert store.claim("key", "k2") is None  # ended: the next job takes the key
    store.create(record("k3"))
    assert store.claim("key", "k3") == "k2"
    store.delete("k2")
    assert store.claim("key", "k3") is None  # a dropped holder holds nothing


# -- the page query: every store answers it alike, from its own indexes ----------------

def _make_history(store, n=30):
    """``n`` jobs, one a millisecond apart: statuses, owners and names in turn."""
    statuses = ["queued", "running", "done", "failed", "cancelled", "interrupted"]
    names = ["report", "Nightly_Report%", "send mail", "r\u00e9sum\u00e9 'x' \"y\" \\ :*?[]"]
    owners = [None, "alice", "b:o{b}*", 7]
    base = time.time() - 1000
    made = []
    for i in range(n):
        status = statuses[i % len(statuses)]
        rec = record("j%03d" % i, status=status, created=base + i / 1000, name=names[i % len(names)],
                     owner=owners[i % len(owners)],
                     finished=base + 1 if status not in ("queued", "running") else None)
        store.create(rec)
        made.append(rec)
    return made


def _expected(made, status=None, name=None, owner=None):
    rows = [r for r in made if (owner is None or (r["owner"] is not None and str(r["owner"]) == owner))
            and (status is None or r["status"] == status)
            and (name is None or name.casefold() in r["name"].casefold())]
    return [r["id"] for r in sorted(rows, key=lambda r: (r["created"], r["id"]), reverse=True)]


def test_a_page_lists_jobs_newest_first_with_counts_per_status(store):
    made = _make_history(store)
    page = store.page(limit=10)
    assert [r["id"] for r in page.jobs] == _expected(made)[:10]
    assert page.jobs[0]["end"] == 0 and page.jobs[0]["name"] == made[-1]["name"]
    statuses = ("queued", "running", "done", "failed", "cancelled", "interrupted")
    assert page.matching == 30 and page.counts == {s: 5 for s in statuses}
    assert [r["id"] for r in store.page(limit=10, offset=25).jobs] == _expected(made)[25:]


@pytest.mark.parametrize("status,name,owner", [
    ("failed", None, None), (None, "report", None), (None, "REPORT%", None), (None, "'x' \"y\" \\ :*?[]", None),
    (None, "\u00c9SUM", None), (None, None, "alice"), (None, None, "b:o{b}*"), (None, None, "7"),
    ("done", "report", "alice"), ("running", None, "alice"), (None, "no such name", None), ("queued", "%", None),
])
def test_a_page_filters_by_status_name_and_owner_alike_on_every_store(store, status, name, owner):
    made = _make_history(store)
    expected = _expected(made, status, name, owner)
    page = store.page(status=status, name=name, owner=owner, limit=4)
    assert [r["id"] for r in page.jobs] == expected[:4]
    assert page.matching == len(expected)
    mine = [r for r in made if owner is None or (r["owner"] is not None and str(r["owner"]) == owner)]
    assert page.counts == {s: sum(1 for r in mine if r["status"] == s) for s in page.counts}
    assert sum(page.counts.values()) == len(mine)


def test_a_page_follows_status_changes_and_deletes(store):
    made = _make_history(store, 12)
    store.update("j000", status="running", started=time.time())
    store.update("j000", status="done", finished=time.time())
    store.delete("j011")
    assert [r["id"] for r in store.page(status="done", owner=None).jobs][-1] == "j000"
    assert "j000" not in [r["id"] for r in store.page(status="queued").jobs]
    assert store.page(status="done").matching == 3 and store.page().matching == 11
    assert "j011" not in [r["id"] for r in store.page(limit=50).jobs]
    assert store.page(owner="alice").counts["done"] == sum(
        1 for r in made if r["owner"] == "alice" and r["status"] == "done")


def test_paging_by_position_of_the_last_job_stays_exact_while_jobs_are_created_and_expire(store):
    base = time.time() - 1000
    ids = ["j%03d" % i for i in range(40)]
    for i, job_id in enumerate(ids):
        store.create(record(job_id, status="running", created=base + i / 1000, name="n"))
    for job_id in ids[:6]:  # the six oldest have ended long ago
        store.update(job_id, status="done", finished=time.time() - 100)
    seen, before = [], None
    for i in range(100):
        page = store.page(limit=7, before=before, count=False)
        if not page.jobs:
            break
        seen += [r["id"] for r in page.jobs]
        last = page.jobs[-1]
        before = (last["created"], last["id"])
        store.create(record("new%d" % i, created=time.time()))  # newer than anything listed: not in this walk
        if i == 1:
            assert store.prune(ttl=10, max_jobs=1000) == 6  # the oldest six go while paging
    assert seen == ids[:5:-1]  # newest first, never a job twice, every job retained throughout, none dropped


def test_jobs_with_the_same_created_time_page_by_id(store):
    t = time.time()
    for job_id in ("b", "a", "c"):
        store.create(record(job_id, created=t))
    store.create(record("z", created=t - 1))
    first = store.page(limit=2, count=False).jobs
    assert [r["id"] for r in first] == ["c", "b"]
    rest = store.page(limit=5, before=(t, "b"), count=False).jobs
    assert [r["id"] for r in rest] == ["a", "z"]


def test_heartbeats_and_cancel_checks_are_batched_over_many_jobs(store):
    for i in range(5):
        store.create(record("h%d" % i, status="running"))
    store.update("h3", cancel=True)
    store.beat(["h0", "h1", "h2", "h3", "h4", "gone"], 12345.5)
    assert [store.get("h%d" % i)["heartbeat"] for i in range(5)] == [12345.5] * 5
    assert store.get("gone") is None  # a beat does not make a record
    assert store.cancel_requested(["h0", "h3", "h4", "gone"]) == {"h3"}
    store.update("h3", status="cancelled", finished=time.time())
    assert store.cancel_requested(["h3"]) in (set(), {"h3"})  # an ended job is no running job's business


def test_an_owner_given_after_creation_is_in_the_owners_page(store):
    store.create(record("a", name="f"))
    store.update("a", owner="ada")
    assert [r["id"] for r in store.page(owner="ada").jobs] == ["a"]
    store.update("a", status="done", finished=time.time())
    page = store.page(owner="ada", status="done")
    assert [r["id"] for r in page.jobs] == ["a"] and page.counts["done"] == 1 and page.counts["queued"] == 0
    store.update("a", owner=None)
    assert store.page(owner="ada").jobs == [] and store.page(owner="ada").counts["done"] == 0


def test_a_page_of_some_fields_has_at_least_those_and_its_order_fields(store):
    store.create(record("a", name="f", progress={"done": 1, "total": 2, "message": None}, owner="o"))
    store.append("a", "out")
    (got,) = store.page(fields=("name", "progress")).jobs
    assert got["name"] == "f" and got["progress"]["done"] == 1
    assert got["id"] == "a" and got["status"] == "queued" and got["created"] > 0 and got["finished"] is None


@pytest.mark.stores("sqlite")
def test_a_sqlite_database_of_the_previous_version_gets_the_page_querys_columns(tmp_path):
    import json
    import sqlite3
    path = str(tmp_path / "old.db")
    with sqlite3.connect(path) as conn:  # the schema before the page query: no name, owner, cancel columns
        conn.executescript("""
            CREATE TABLE jobs (id TEXT PRIMARY KEY, status TEXT NOT NULL, created REAL NOT NULL, finished REAL,
                "end" INTEGER NOT NULL DEFAULT 0, cut INTEGER NOT NULL DEFAULT 0, record TEXT NOT NULL);
            CREATE TABLE keys (key TEXT PRIMARY KEY, job_id TEXT NOT NULL REFERENCES jobs (id) ON DELETE CASCADE);
            CREATE TABLE output (job_id TEXT NOT NULL REFERENCES jobs (id) ON DELETE CASCADE, start INTEGER NOT NULL,
                text TEXT NOT NULL, PRIMARY KEY (job_id, start)) WITHOUT ROWID;""")
        old = record("old", status="running", name="Nightly report", owner="ada", cancel=True)
        conn.execute("INSERT INTO jobs (id, status, created, record) VALUES (?, ?, ?, ?)",
                     ("old", "running", old["created"], json.dumps(old)))
    store = SQLiteStore(path)
    page = store.page(owner="ada", name="nightly")
    assert [r["id"] for r in page.jobs] == ["old"] and page.counts["running"] == 1
    assert store.cancel_requested(["old"]) == {"old"}


@pytest.mark.stores("redis")
def test_redis_jobs_of_the_previous_version_are_indexed_at_the_first_prune(store):
    import json
    old = record("old", status="done", name="Nightly report", owner="ada", finished=time.time(), key="nightly")
    pipe = store.client.pipeline()  # what the version before the page query wrote: a hash and two indexes
    pipe.hset("wb:{old}", mapping=dict({k: json.dumps(v) for k, v in old.items()}, end=0, cut=0, n=0))
    pipe.zadd("wb:ids", {"old": old["created"]})
    pipe.zadd("wb:finished", {"old": old["finished"]})
    pipe.set("wb:key:nightly", "old")
    pipe.execute()
    assert store.page(owner="ada").jobs == []
    assert store.prune(ttl=3600, max_jobs=100) == 0
    page = store.page(owner="ada", name="nightly")
    assert [r["id"] for r in page.jobs] == ["old"] and page.counts["done"] == 1
    assert store.prune(ttl=0, max_jobs=100) == 1
    assert store.client.keys("wb:key:*") == [] and store.page().matching == 0
