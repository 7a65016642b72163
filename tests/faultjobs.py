"""Jobs the fault tests run (a module the fork server imports): each waits on a
file to appear, so that a test decides when it goes on; every wait is bounded."""
import os
import sys
import threading
import time

from web_background import Cancelled, background


def wait_for_file(path, seconds=60.0):
    deadline = time.monotonic() + seconds
    while not os.path.exists(path) and time.monotonic() < deadline:
        time.sleep(0.01)


@background(executor="processes")
def waits_for(path, then="done"):
    """Prints its pid, waits until ``path`` exists, prints ``then``."""
    print("pid %d" % os.getpid(), flush=True)
    wait_for_file(path)
    print(then)
    return then


@background(executor="processes")
def returns_big(size):
    return b"r" * size


class NoPickle:
    def __init__(self):
        self.lock = threading.Lock()  # a lock does not pickle

    def __repr__(self):
        return "<NoPickle, but a repr>"


class NoRepr(NoPickle):
    def __repr__(self):
        raise ValueError("no repr either")


@background(executor="processes")
def returns_unpicklable(with_repr):
    print("returning")
    return NoPickle() if with_repr else NoRepr()


@background(executor="processes")
def catches_cancel(path):
    """Catches Cancelled to clean up, then returns."""
    print("pid %d" % os.getpid(), flush=True)
    try:
        wait_for_file(path)
    except Cancelled:
        print("cleaning up")
        return "cleaned"
    return "not cancelled"


@background
def thread_catches_cancel():
    try:
        for _ in range(6000):
            print("working", flush=True)
            time.sleep(0.01)
    except Cancelled:
        print("cleaning up")
        return "cleaned"
    return "not cancelled"


@background(executor="processes")
def prints_lines(n, pause=0.0, flush=False):
    for i in range(n):
        print("line %05d" % i, flush=flush)
        if pause:
            time.sleep(pause)
    return n


@background(executor="processes")
def prints_megabytes(megabytes):
    line = "x" * 1023
    for _ in range(megabytes * 1024):
        print(line)
    sys.stdout.flush()
    return megabytes


@background(executor="processes", timeout=1)
def waits_with_a_timeout(path):
    wait_for_file(path)


def _through_an_outage(gates, flush):
    """Prints 10 lines, waits for ``gates/full``; prints 50 more (the store refuses
    them), says so in ``gates/printed``, waits for ``gates/freed``; prints 10 more."""
    for i in range(10):
        print("line %03d" % i, flush=flush)
    wait_for_file(os.path.join(gates, "full"))
    for i in range(10, 60):
        print("line %03d" % i, flush=flush)
        time.sleep(0.005)
    open(os.path.join(gates, "printed"), "w").close()
    wait_for_file(os.path.join(gates, "freed"))
    for i in range(60, 70):
        print("line %03d" % i, flush=flush)
    return 70


@background
def outage_in_a_thread(gates, flush):
    return _through_an_outage(gates, flush)


@background(executor="processes")
def outage_in_a_process(gates, flush):
    return _through_an_outage(gates, flush)


def _counts(counter):
    """Prints numbered lines; after each, its number goes into the file ``counter``."""
    fd = os.open(counter, os.O_WRONLY | os.O_CREAT)
    for i in range(60000):
        print("line %06d" % i)
        os.pwrite(fd, b"%06d" % i, 0)
        time.sleep(0.001)


@background
def counts_in_a_thread(counter):
    _counts(counter)


@background(executor="processes")
def counts_in_a_process(counter):
    _counts(counter)

