import os
import sys
import threading
import time

import pytest

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import web_background  # noqa: E402
from web_background import DEFAULTS, configure  # noqa: E402


def wait_for(predicate, timeout=10.0, interval=0.01):
    """Wait until predicate() is true; fail the test after timeout seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met within %ss" % timeout)
        time.sleep(interval)


@pytest.fixture(autouse=True)
def fresh_runtime():
    """Every test starts with default settings and an empty memory store."""
    configure(**dict(DEFAULTS, store="memory://"))
    yield
    configure(**dict(DEFAULTS, store="memory://"))


@pytest.fixture
def gate():
    """An event a job can wait on; always released at the end of the test."""
    event = threading.Event()
    yield event
    event.set()
