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


STORES = ["memory", "sqlite"]


def store_url(kind, tmp_path):
    """A fresh, empty store of each kind the whole suite runs against."""
    if kind == "memory":
        return "memory://"
    if kind == "sqlite":
        return "sqlite:///%s" % (tmp_path / "jobs.db")
    raise ValueError(kind)


@pytest.fixture(params=STORES, autouse=True)
def store_kind(request, tmp_path):
    """Every test runs once per store, starting with default settings and an empty store."""
    configure(**dict(DEFAULTS, store=store_url(request.param, tmp_path)))
    yield request.param
    configure(**dict(DEFAULTS, store="memory://"))


@pytest.fixture
def gate():
    """An event a job can wait on; always released at the end of the test."""
    event = threading.Event()
    yield event
    event.set()


def pytest_configure(config):
    config.addinivalue_line("markers", "stores(*kinds): run this test only with these stores")


def pytest_collection_modifyitems(config, items):
    """Tests marked ``@pytest.mark.stores("sqlite")`` run only with those stores."""
    keep, drop = [], []
    for item in items:
        marker = item.get_closest_marker("stores")
        kind = getattr(getattr(item, "callspec", None), "params", {}).get("store_kind")
        (drop if marker and kind not in marker.args else keep).append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep
