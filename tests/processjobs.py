"""Jobs run by the process executor in the tests (a module the fork server imports)."""
import ctypes
import logging
import os
import signal
import subprocess
import sys
import threading
import time

import web

from web_background import Cancelled, background, progress


@background(executor="processes")
def returns(value):
    return {"value": value, "pid": os.getpid(), "ppid": os.getppid()}


@background(executor="processes")
def writes_everywhere():
    print("1 print")
    print("2 stderr", file=sys.stderr)
    os.write(1, b"3 os.write to fd 1\n")
    print("4 print")
    os.write(2, b"5 os.write to fd 2\n")
    logging.getLogger("jobs").warning("6 a log record")
    os.system("echo 7 os.system")
    subprocess.run(["sh", "-c", "echo 8 a child process; echo 9 its stderr >&2"])
    libc = ctypes.CDLL(None)
    libc.write(1, b"10 C-level write\n", 17)
    print("11 last")


@background(executor="processes")
def many_lines(n):
    for i in range(n):
        print("line %06d" % i)
    return n


@background(executor="processes")
def reports_progress():
    progress(1, 4, "a quarter")
    print("reported", flush=True)
    time.sleep(0.3)  # long enough for the report to travel while the job runs
    progress(3, 4, "three quarters")


@background(executor="processes")
def shows_ctx():
    print("ip=%s path=%s method=%s name=%s" % (web.ctx.ip, web.ctx.path, web.ctx.method, web.input(name="?").name))
    return sorted(k for k in ("env", "environ") if k in web.ctx and web.ctx[k].get("wsgi.input"))


@background(executor="processes")
def crashes(how):
    print("before the crash")
    sys.stdout.flush()
    if how == "os._exit":
        os._exit(3)
    os.kill(os.getpid(), getattr(signal, how))
    time.sleep(10)


@background(executor="processes")
def priority():
    return os.getpriority(os.PRIO_PROCESS, 0)


@background(executor="processes")
def sleeps(marker=None):
    print("sleeping", flush=True)
    try:
        time.sleep(60)
    finally:
        print("finally ran")
        if marker:
            open(marker, "w").close()


@background(executor="processes")
def refuses_to_stop(child_pidfile=None):
    """Swallows every Cancelled; its child (a sleep in a shell) goes with it when killed."""
    if child_pidfile:
        proc = subprocess.Popen(["sleep", "60"])
        with open(child_pidfile, "w") as f:
            f.write(str(proc.pid))
    print("stubborn", flush=True)
    for _ in range(600):
        try:
            time.sleep(0.1)
        except Cancelled:
            print("ignoring the cancel", flush=True)


@background(executor="processes")
def spins():
    print("spinning", flush=True)
    n = 0
    while True:  # pure Python, never writes
        n += 1


@background(executor="processes", timeout=0.5)
def sleeps_past_its_timeout():
    print("started", flush=True)
    try:
        time.sleep(60)
    finally:
        print("finally ran")


@background(executor="processes")
def waits_on_event():
    event = threading.Event()
    print("waiting", flush=True)
    event.wait(60)


def not_a_job():
    pass


@background(executor="processes")
def with_tqdm(n):
    from tqdm import tqdm

    for _ in tqdm(range(n), desc="crunching", mininterval=0):
        pass


@background(executor="processes", retries=2, retry_delay=0.05)
def fails_twice(counter_file):
    """Fails on its first two attempts (counted in a file: each attempt is a new process)."""
    with open(counter_file, "a+") as f:
        f.write("x")
        f.seek(0)
        tries = len(f.read())
    print("attempt", tries)
    if tries < 3:
        raise ConnectionError("passing network error")
    return tries
