"""Jobs in a SQLite file, shared by every process on the machine and kept
across restarts.

One connection per thread and process, opened on first use (never carried
across a fork); WAL mode and a busy timeout so that concurrent writers wait
instead of failing with "database is locked".
"""

import json
import os
import sqlite3
import threading
import time
from typing import Any, Dict, Iterable, List, Optional, Sequence, Set, Tuple

from . import FINISHED, PRUNE_SLICE, Page, Store, StoreError, count_statuses, jsonable, names_matching, owner_key

# name, owner and cancel are copies of the record's, as columns for the page query
_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    id TEXT PRIMARY KEY,
    status TEXT NOT NULL,
    created REAL NOT NULL,
    finished REAL,
    "end" INTEGER NOT NULL DEFAULT 0,
    cut INTEGER NOT NULL DEFAULT 0,
    record TEXT NOT NULL,
    name TEXT,
    owner TEXT,
    cancel INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS keys (
    key TEXT PRIMARY KEY,
    job_id TEXT NOT NULL REFERENCES jobs (id) ON DELETE CASCADE
);
CREATE TABLE IF NOT EXISTS output (
    job_id TEXT NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    start INTEGER NOT NULL,
    text TEXT NOT NULL,
    PRIMARY KEY (job_id, start)
) WITHOUT ROWID;
"""
_INDEXES = """
CREATE INDEX IF NOT EXISTS jobs_finished ON jobs (finished) WHERE finished IS NOT NULL;
CREATE INDEX IF NOT EXISTS jobs_created ON jobs (created, id);
CREATE INDEX IF NOT EXISTS jobs_status ON jobs (status, created, id);
CREATE INDEX IF NOT EXISTS jobs_owner ON jobs (owner, status, created, id) WHERE owner IS NOT NULL;
CREATE INDEX IF NOT EXISTS jobs_owner_created ON jobs (owner, created, id) WHERE owner IS NOT NULL;
CREATE INDEX IF NOT EXISTS keys_job ON keys (job_id);
"""
_COLUMNS = {"name": "TEXT", "owner": "TEXT", "cancel": "INTEGER NOT NULL DEFAULT 0"}
_FINISHED_SQL = "(%s)" % ", ".join("'%s'" % s for s in sorted(FINISHED))
# finished jobs oldest first through jobs_finished ("+": not through jobs_status, which would sort them all)
_DONE = "finished IS NOT NULL AND +status IN %s" % _FINISHED_SQL
_BATCH = 500  # ids bound in one statement


def _match(name: Optional[str], needle: str) -> bool:
    return bool(names_matching([name or ""], needle))


def _add_columns(conn: sqlite3.Connection) -> None:
    """A database made by an older version gets the page query's columns, filled from its records."""
    have = {row[1] for row in conn.execute("PRAGMA table_info(jobs)")}
    missing = [c for c in _COLUMNS if c not in have]
    if not missing:
        return
    conn.execute("BEGIN IMMEDIATE")
    for column in missing:
        conn.execute("ALTER TABLE jobs ADD COLUMN %s %s" % (column, _COLUMNS[column]))
    for job_id, raw in conn.execute("SELECT id, record FROM jobs").fetchall():
        try:
            record = json.loads(raw)
        except ValueError:
            continue  # get() reports it
        conn.execute("UPDATE jobs SET name = ?, owner = ?, cancel = ? WHERE id = ?",
                     (_name(record), owner_key(record.get("owner")), int(bool(record.get("cancel"))), job_id))
    conn.execute("COMMIT")


def _name(record: Dict[str, Any]) -> str:
    return str(record.get("name") or "")


class SQLiteStore(Store):
    """A store in the SQLite file at ``path`` (created with its tables if missing)."""

    def __init__(self, path: str, max_output: int = 1_000_000, create: bool = True) -> None:
        self.path = os.path.abspath(path)
        self.max_output = max_output
        if not create and not os.path.exists(self.path):
            raise StoreError("no SQLite job database at %s" % self.path)
        self._local = threading.local()
        try:
            if create:
                _create_private(self.path)
            conn = sqlite3.connect(self.path, timeout=10, isolation_level=None)
            try:
                conn.executescript(_SCHEMA)
                _add_columns(conn)
                conn.executescript(_INDEXES)
                conn.execute("PRAGMA journal_mode=WAL")
            finally:
                conn.close()  # this process's real connections open lazily
        except (sqlite3.Error, OSError) as e:
            raise StoreError("cannot use %s as a SQLite job database: %s" % (self.path, e)) from None

    def _conn(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None or self._local.pid != os.getpid():
            conn = sqlite3.connect(self.path, timeout=10, isolation_level=None)
            conn.execute("PRAGMA busy_timeout=10000")
            conn.execute("PRAGMA foreign_keys=ON")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.create_function("wb_match", 2, _match, deterministic=True)
            self._local.conn, self._local.pid = conn, os.getpid()
        return conn

    def _tx(self, write: bool = True) -> "_Transaction":
        return _Transaction(self, write)

    def _query(self, sql: str, args: Tuple[Any, ...] = ()) -> List[Tuple[Any, ...]]:
        try:
            return self._conn().execute(sql, args).fetchall()
        except sqlite3.Error as e:
            raise StoreError("%s: %s" % (self.path, e)) from None

    def _create(self, record: Dict[str, Any]) -> None:
        with self._tx() as c:
            c.execute("INSERT INTO jobs (id, status, created, finished, record, name, owner, cancel) "
                      "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                      (record["id"], record["status"], record["created"], record.get("finished"),
                       json.dumps({k: jsonable(v) for k, v in record.items()}), _name(record),
                       owner_key(record.get("owner")), int(bool(record.get("cancel")))))

    def get(self, job_id: str) -> Optional[Dict[str, Any]]:
        rows = self._query('SELECT record, "end", cut, id FROM jobs WHERE id = ?', (job_id,))
        return self._record(rows[0]) if rows else None

    def _record(self, row: Tuple[Any, ...]) -> Dict[str, Any]:
        """A record from its row: ``(record, end, cut, id)``."""
        job_id = row[3]
        try:
            record = json.loads(row[0])
            if not isinstance(record, dict) or record.get("id") != job_id or "status" not in record:
                raise ValueError("not a job record")
        except ValueError as e:
            raise StoreError("job %s: corrupt record in %s (%s)" % (job_id, self.path, e)) from None
        record["end"], record["cut"] = row[1], row[2]
        return record

    def _update(self, job_id: str, **fields: Any) -> None:
        with self._tx() as c:
            row = c.execute("SELECT record FROM jobs WHERE id = ?", (job_id,)).fetchone()
            if row is None:
                return
            try:
                record = json.loads(row[0])
            except ValueError:
                raise StoreError("job %s: corrupt record in %s" % (job_id, self.path)) from None
            record.update({k: jsonable(v) for k, v in fields.items()})
            c.execute("UPDATE jobs SET status = ?, finished = ?, cancel = ?, owner = ?, record = ? WHERE id = ?",
                      (record["status"], record.get("finished"), int(bool(record.get("cancel"))),
                       owner_key(record.get("owner")), json.dumps(record), job_id))

    def _append(self, job_id: str, text: str, skipped: int = 0) -> None:
        if not (text or skipped):
            return
        with self._tx() as c:
            row = c.execute('SELECT "end", cut FROM jobs WHERE id = ?', (job_id,)).fetchone()
            if row is None:
                return
            end, cut = row
            if skipped:
                c.execute("DELETE FROM output WHERE job_id = ?", (job_id,))
                end = cut = end + skipped
            c.execute("INSERT INTO output (job_id, start, text) VALUES (?, ?, ?)", (job_id, end, text))
            end += len(text)
            new_cut = max(cut, end - self.max_output)
            if new_cut > cut:
                # cut in Python: SQLite's length() and substr() stop at the first NUL of a TEXT
                for start, old in c.execute("SELECT start, text FROM output WHERE job_id = ? AND start < ?",
                                            (job_id, new_cut)).fetchall():
                    c.execute("DELETE FROM output WHERE job_id = ? AND start = ?", (job_id, start))
                    if start + len(old) > new_cut:
                        c.execute("INSERT INTO output (job_id, start, text) VALUES (?, ?, ?)",
                                  (job_id, new_cut, old[new_cut - start:]))
            c.execute('UPDATE jobs SET "end" = ?, cut = ? WHERE id = ?', (end, new_cut, job_id))

    def read(self, job_id: str, offset: int = 0) -> Optional[Tuple[str, int, int]]:
        with self._tx(write=False) as c:
            row = c.execute('SELECT "end", cut FROM jobs WHERE id = ?', (job_id,)).fetchone()
            if row is None:
                return None
            end, cut = row
            start = max(offset, cut)
            if start >= end:
                return "", end, cut
            chunks = c.execute(
                "SELECT start, text FROM output WHERE job_id = ? AND start >= "
                "(SELECT max(start) FROM output WHERE job_id = ? AND start <= ?) ORDER BY start",
                (job_id, job_id, start)).fetchall()
        if not chunks:
            return "", end, cut
        first_start, first = chunks[0]
        texts = [first[start - first_start:]] + [t for _, t in chunks[1:]]
        return "".join(texts), end, cut

    def claim(self, key: str, job_id: str) -> Optional[str]:
        with self._tx() as c:
            row = c.execute("SELECT j.id, j.status FROM keys k JOIN jobs j ON j.id = k.job_id WHERE k.key = ?",
                            (key,)).fetchone()
            if row is not None and row[1] not in FINISHED and row[0] != job_id:
                return str(row[0])
            c.execute("INSERT OR REPLACE INTO keys (key, job_id) VALUES (?, ?)", (key, job_id))
            return None

    def ids(self) -> List[str]:
        return [r[0] for r in self._query("SELECT id FROM jobs ORDER BY created")]

    def delete(self, job_id: str) -> None:
        with self._tx() as c:
            c.execute("DELETE FROM jobs WHERE id = ?", (job_id,))

    def page(self, status: Optional[str] = None, name: Optional[str] = None, owner: Optional[str] = None,
             limit: int = 50, offset: int = 0, before: Optional[Tuple[float, str]] = None,
             count: bool = True, fields: Optional[Sequence[str]] = None) -> Page:
        where, args = [], []  # type: List[str], List[Any]
        if owner is not None:
            where.append("owner = ?")
            args.append(owner)
        scope, scope_args = list(where), list(args)
        if status is not None:
            where.append("status = ?")
            args.append(status)
        if name is not None:
            where.append("wb_match(name, ?)")
            args.append(name)
        if before is not None:
            where.append("(created, id) < (?, ?)")
            args.extend(before)
        cond = " WHERE " + " AND ".join(where) if where else ""
        with self._tx(write=False) as c:
            rows = c.execute('SELECT record, "end", cut, id FROM jobs%s ORDER BY created DESC, id DESC '
                             "LIMIT ? OFFSET ?" % cond, args + [limit, offset]).fetchall()
            counts: Dict[str, int] = {}
            matching = None
            if count:
                counts = count_statuses(())
                scope_cond = " WHERE " + " AND ".join(scope) if scope else ""
                for got, n in c.execute("SELECT status, count(*) FROM jobs%s GROUP BY status" % scope_cond,
                                        scope_args):
                    counts[got] = n
                matching = c.execute("SELECT count(*) FROM jobs%s" % cond, args).fetchone()[0]
        return Page([self._record(row) for row in rows], counts, matching)

    def prune(self, ttl: float, max_jobs: int, now: Optional[float] = None, limit: int = PRUNE_SLICE) -> int:
        now = time.time() if now is None else now
        with self._tx() as c:
            dropped = c.execute("DELETE FROM jobs WHERE id IN (SELECT id FROM jobs WHERE %s AND finished <= ? "
                                "ORDER BY finished LIMIT ?)" % _DONE, (now - ttl, limit)).rowcount
            if dropped < limit:
                finished = c.execute("SELECT count(*) FROM jobs WHERE status IN %s" % _FINISHED_SQL).fetchone()[0]
                over = finished - max_jobs
                if over > 0:
                    dropped += c.execute(
                        "DELETE FROM jobs WHERE id IN (SELECT id FROM jobs WHERE %s ORDER BY finished LIMIT ?)"
                        % _DONE, (min(over, limit - dropped),)).rowcount
        return dropped

    def beat(self, job_ids: Iterable[str], now: float) -> None:
        ids = list(job_ids)
        with self._tx() as c:
            for i in range(0, len(ids), _BATCH):
                chunk = ids[i:i + _BATCH]
                c.execute("UPDATE jobs SET record = json_set(record, '$.heartbeat', ?) WHERE id IN (%s)"
                          % ",".join("?" * len(chunk)), [now] + chunk)

    def cancel_requested(self, job_ids: Iterable[str]) -> Set[str]:
        ids, found = list(job_ids), set()
        for i in range(0, len(ids), _BATCH):
            chunk = ids[i:i + _BATCH]
            found.update(r[0] for r in self._query("SELECT id FROM jobs WHERE cancel = 1 AND id IN (%s)"
                                                   % ",".join("?" * len(chunk)), tuple(chunk)))
        return found


def _create_private(path: str) -> None:
    """Create a missing database file readable and writable by its owner only
    (SQLite creates its -wal and -shm with the same mode); an existing file is
    left as it is."""
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    except FileExistsError:
        pass


class _Transaction:
    """``with store._tx() as c``: one BEGIN IMMEDIATE ... COMMIT, errors as StoreError."""

    def __init__(self, store: SQLiteStore, write: bool = True) -> None:
        self.store, self.write = store, write

    def __enter__(self) -> sqlite3.Connection:
        try:
            self.conn = self.store._conn()
            self.conn.execute("BEGIN IMMEDIATE" if self.write else "BEGIN")
        except sqlite3.Error as e:
            raise StoreError("%s: %s" % (self.store.path, e)) from None
        return self.conn

    def __exit__(self, kind: Any, exc: Any, tb: Any) -> None:
        try:
            self.conn.execute("COMMIT" if kind is None else "ROLLBACK")
        except sqlite3.Error as e:
            if kind is None:
                raise StoreError("%s: %s" % (self.store.path, e)) from None
        if kind is not None and issubclass(kind, sqlite3.Error):
            raise StoreError("%s: %s" % (self.store.path, exc)) from None
