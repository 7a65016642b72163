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


def test_expire_drops_the_oldest_finished_past_max_jobs(store):
    now = time.time()
    for i in range(5):
        store.create(record("d%d" % i, status="done", finished=now - 10 + i))
    store.create(record("q", status="queued"))
    store.expire(ttl=1000, max_jobs=3, now=now)
    assert sorted(store.ids()) == ["d3", "d4", "q"]


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
