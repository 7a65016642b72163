import os
import sys
import threading
import time

import pytest

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from web_background import DEFAULTS, configure  # noqa: E402
from web_background.jobs import _reset  # noqa: E402


def wait_for(predicate, timeout=10.0, interval=0.01):
    """Wait until predicate() is true; fail the test after timeout seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met within %ss" % timeout)
        time.sleep(interval)


STORES = ["memory", "sqlite", "redis"]
IN_CI = os.environ.get("CI", "").lower() == "true"


def needs(what, error):
    """A real part is missing: a failure in CI, a skip on a developer's machine."""
    if IN_CI:
        pytest.fail("%s is required in CI: %s" % (what, error))
    pytest.skip("%s is not available here: %s" % (what, error))


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory):
    """A real redis-server on 127.0.0.1 for the whole run."""
    from servers import RedisServer, free_port

    try:
        server = RedisServer(free_port(), tmp_path_factory.mktemp("redis")).start()
    except (FileNotFoundError, RuntimeError) as e:
        needs("redis-server", e)
    yield server
    server.stop()


def store_url(kind, tmp_path, redis_url=None):
    """A fresh, empty store of each kind the whole suite runs against."""
    if kind == "memory":
        return "memory://"
    if kind == "sqlite":
        return "sqlite:///%s" % (tmp_path / "jobs.db")
    if kind == "redis":
        import redis

        redis.Redis.from_url(redis_url).flushdb()
        return redis_url
    raise ValueError(kind)


@pytest.fixture(params=STORES, autouse=True)
def store_kind(request, tmp_path):
    """Every test runs once per store, starting with default settings and an empty store."""
    redis_url = request.getfixturevalue("redis_server").url if request.param == "redis" else None
    _reset()  # configure() keeps the jobs when given the same settings again
    configure(**dict(DEFAULTS, store=store_url(request.param, tmp_path, redis_url)))
    yield request.param
    _reset()
    configure(**dict(DEFAULTS, store="memory://"))


@pytest.fixture
def url_of_store(store_kind, tmp_path, request):
    """The URL of the store this test runs against (for other processes to share)."""
    from web_background.jobs import get_runner

    return get_runner().settings["store"]


@pytest.fixture
def gate():
    """An event a job can wait on; always released at the end of the test."""
    event = threading.Event()
    yield event
    event.set()


@pytest.fixture
def browser():
    """A headless Chromium for the test (see test_browser.chromium), closed after it."""
    import shutil

    from test_browser import chromium

    driver = chromium()
    yield driver
    driver.quit()
    shutil.rmtree(driver._wb_profile, ignore_errors=True)


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


def processes_running(marker):
    """Pids of the processes whose command line contains ``marker`` (a test's tmp path)."""
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open("/proc/%s/cmdline" % pid, "rb") as f:
                if marker.encode() in f.read():
                    found.append(int(pid))
        except OSError:
            pass
    return found
