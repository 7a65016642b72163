"""The operator's view: ``python -m web_background --store URL COMMAND``.

list [--status S] [--name N], show ID, tail ID (follow a running job until it
ends), cancel ID, retry ID (the same call as a new job), purge.
"""

import argparse
import datetime
import os
import sys
import time
from typing import List, Optional

from .jobs import get_runner, configure, retry
from .maintenance import FLUSH_INTERVAL
from .stores import FINISHED, JobStatus, StoreError, redact


def _when(t: Optional[float]) -> str:
    return datetime.datetime.fromtimestamp(t).strftime("%Y-%m-%d %H:%M:%S") if t else "-"


def _progress(p: Optional[dict]) -> str:
    if not p:
        return "-"
    done = "%g/%g" % (p["done"], p["total"]) if p.get("total") else "%g" % p["done"]
    return done + (" " + p["message"] if p.get("message") else "")


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m web_background", description=__doc__.split("\n")[0])
    parser.add_argument("--store", default=os.environ.get("WEB_BACKGROUND_STORE"),
                        help="store URL, e.g. sqlite:////var/lib/app/jobs.db (default: $WEB_BACKGROUND_STORE)")
    commands = parser.add_subparsers(dest="command", required=True)
    listing = commands.add_parser("list", help="list retained jobs")
    listing.add_argument("--status", choices=[s.value for s in JobStatus], help="only jobs in this status")
    listing.add_argument("--name", help="only jobs whose function name contains NAME (any case)")
    for name, text in (("show", "a job's record and output"), ("tail", "follow a job's output until it ends"),
                       ("cancel", "ask a job to stop"),
                       ("retry", "start a new job with an ended job's function and arguments")):
        sub = commands.add_parser(name, help=text)
        sub.add_argument("id")
    commands.choices["tail"].add_argument("--timeout", type=float, default=None, help="give up after SECONDS")
    commands.choices["retry"].add_argument("--timeout", type=float, default=None,
                                           help="give up following it after SECONDS")
    commands.add_parser("purge", help="drop every finished job now")
    args = parser.parse_args(argv)
    if not args.store:
        parser.error("--store URL is required (or set WEB_BACKGROUND_STORE)")
    if args.store.startswith("sqlite:///") and not os.path.exists(args.store[len("sqlite:///"):]):
        print("error: no job database at %s" % args.store[len("sqlite:///"):], file=sys.stderr)
        return 2
    try:
        configure(store=args.store)
        return _COMMANDS[args.command](args)
    except (StoreError, ValueError) as e:
        print("error: %s" % redact(str(e)), file=sys.stderr)  # a store URL may hold a password
        return 2
    except KeyboardInterrupt:
        return 130


_LISTED = ("name", "progress")  # what list shows, besides id, status and created


def _list(args: argparse.Namespace) -> int:
    """Newest first, streamed: the store filters and reads a batch of jobs at a time."""
    runner = get_runner()
    out = sys.stdout
    out.write("%-24s %-11s %-19s %-30s %s\n" % ("ID", "STATUS", "CREATED", "NAME", "PROGRESS"))
    rows = runner.store.walk(args.status, args.name, ttl=runner.settings["ttl"], fields=_LISTED)
    for n, r in enumerate(rows, 1):
        if r["status"] not in FINISHED:  # its process may have died: record() says so
            r = runner.record(r["id"]) or r
        out.write("%-24s %-11s %-19s %-30s %s\n" % (
            r["id"], r["status"], _when(r["created"]), (r.get("name") or "")[:30], _progress(r.get("progress"))))
        if n % 500 == 0:
            out.flush()
    out.flush()
    return 0


def _record_or_fail(job_id: str) -> Optional[dict]:
    record = get_runner().record(job_id)
    if record is None:
        print("error: no such job: %s" % job_id, file=sys.stderr)
    return record


def _show(args: argparse.Namespace) -> int:
    r = _record_or_fail(args.id)
    if r is None:
        return 1
    for key in ("id", "name", "status", "runner"):
        print("%-9s %s" % (key + ":", r.get(key)))
    for key in ("created", "started", "finished"):
        print("%-9s %s" % (key + ":", _when(r.get(key))))
    print("%-9s %s" % ("progress:", _progress(r.get("progress"))))
    print("%-9s %r" % ("result:", r.get("result")))
    if r.get("error"):
        print("error:\n" + r["error"].rstrip())
    text, _, cut = get_runner().store.read(args.id, 0) or ("", 0, 0)
    print("output (%d characters%s):" % (r["end"], ", %d cut" % cut if cut else ""))
    sys.stdout.write(text)
    return 0


def _retry(args: argparse.Namespace) -> int:
    """A job of RQ is enqueued for the workers; a job of this process's executor
    (threads, processes) runs here, and is followed to its end like ``tail``."""
    try:
        job = retry(args.id)
    except LookupError:
        print("error: no such job: %s" % args.id, file=sys.stderr)
        return 1
    print("retried %s as %s" % (args.id, job.id), file=sys.stderr)
    print(job.id, flush=True)
    record = get_runner().record(job.id)
    if record is not None and get_runner().executor(record.get("executor")).local:
        args.id = job.id
        return _tail(args)
    return 0


def _tail(args: argparse.Namespace) -> int:
    runner = get_runner()
    deadline = None if args.timeout is None else time.monotonic() + args.timeout
    offset = 0
    while True:
        record = _record_or_fail(args.id)
        if record is None:
            return 1
        got = runner.store.read(args.id, offset)
        if got:
            sys.stdout.write(got[0])
            sys.stdout.flush()
            offset = got[1]
        if record["status"] in FINISHED:
            print("[job %s]" % record["status"], file=sys.stderr)
            return 0 if record["status"] == "done" else 1
        if deadline is not None and time.monotonic() > deadline:
            return 3
        time.sleep(FLUSH_INTERVAL * 2)


def _cancel(args: argparse.Namespace) -> int:
    if _record_or_fail(args.id) is None:
        return 1
    if not get_runner().cancel(args.id):
        print("job %s has already ended" % args.id, file=sys.stderr)
        return 1
    print("cancel requested for %s" % args.id)
    return 0


def _purge(args: argparse.Namespace) -> int:
    dropped = get_runner().store.expire(ttl=0, max_jobs=sys.maxsize)
    print("dropped %d finished jobs" % dropped)
    return 0


_COMMANDS = {"list": _list, "show": _show, "tail": _tail, "cancel": _cancel, "retry": _retry, "purge": _purge}
