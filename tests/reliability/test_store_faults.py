"""Store trouble never fails a job: a real full disk (a small tmpfs) under the
SQLite store, a real Redis server stopped and restarted.  What the store
refuses waits in memory (up to ``max_output``) and is written once it is back;
polls answer what the store can still read."""
import errno
import json
import os
import subprocess

import pytest

from web_background import configure
from web_background.jobs import _reset

import apps
import faultjobs
from conftest import needs, wait_for
from servers import RedisServer, free_port

LINES = ["line %03d" % i for i in range(70)]
JOBS = {"threads": faultjobs.outage_in_a_thread, "processes": faultjobs.outage_in_a_process}


@pytest.fixture
def small_disk(tmp_path):
    """A 1 MB tmpfs; ``fill()`` fills it to the last byte, ``free()`` frees it."""
    disk = tmp_path / "disk"
    disk.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(disk)],
                          capture_output=True, text=True)
    if done.returncode != 0:
        needs("mounting a tmpfs (as root)", done.stderr.strip())
    filler = disk / "filler"

    class Disk:
        path = disk

        def fill(self):
            fd = os.open(filler, os.O_WRONLY | os.O_CREAT | os.O_APPEND)
            try:
                for size in (1 << 16, 4096, 512, 1):  # down to the last byte
                    for _ in range(1 << 12):
                        try:
                            os.write(fd, b"\0" * size)
                        except OSError as e:
                            assert e.errno == errno.ENOSPC
                            break
            finally:
                os.close(fd)

        def free(self):
            filler.unlink()

    yield Disk()
    _reset()  # closes the store's connections on the disk
    subprocess.run(["umount", "-l", str(disk)], check=True)


@pytest.fixture
def gate(tmp_path):
    """Files a job waits on (see faultjobs._through_an_outage); all open at the end."""
    path = tmp_path / "gates"
    path.mkdir()
    yield path
    for name in ("full", "freed"):
        (path / name).touch()


def poll(job):
    response = apps.app.request("/?_t=%s&_format=json" % job.id)
    assert b"Traceback" not in response.data
    return response.status, (json.loads(response.data) if response.status.startswith("200") else None)


@pytest.mark.stores("memory")
@pytest.mark.parametrize("executor", ["threads", "processes"])
@pytest.mark.parametrize("flush", [True, False], ids=["flush=True", "buffered"])
def test_a_full_disk_under_sqlite_loses_no_line_and_polls_read_on(small_disk, gate, executor, flush, caplog):
    configure(store="sqlite:///%s" % (small_disk.path / "jobs.db"))
    job = JOBS[executor](str(gate), flush)
    wait_for(lambda: "line 009" in job.output)
    small_disk.fill()
    (gate / "full").touch()
    wait_for(lambda: (gate / "printed").exists())
    wait_for(lambda: "could not write its output yet" in caplog.text)  # the disk refused it
    for _ in range(5):
        status, body = poll(job)
        assert status == "200 OK" and body["status"] == "running"
        assert body["output"].startswith("line 000\n")
    small_disk.free()
    (gate / "freed").touch()
    assert job.wait(15) and job.status == "done", job.error
    assert job.output.splitlines() == LINES and job.result == 70


@pytest.fixture
def own_redis(tmp_path):
    """A Redis server of this test's own that keeps its data across a restart."""
    port, workdir = free_port(), tmp_path / "redis"
    workdir.mkdir()

    def start():
        server = RedisServer(port, workdir)
        server.argv[server.argv.index("--appendonly") + 1] = "yes"
        server.argv += ["--appendfsync", "always"]
        return server.start()

    servers = [start()]

    class Redis:
        url = servers[0].url

        def stop(self):
            servers[-1].stop()

        def restart(self):
            servers.append(start())

    yield Redis()
    _reset()
    servers[-1].stop()


@pytest.mark.stores("memory")
@pytest.mark.parametrize("executor", ["threads", "processes"])
def test_redis_stopped_and_restarted_loses_no_line_of_a_job_that_flushes(own_redis, gate, executor, caplog):
    configure(store=own_redis.url)
    job = JOBS[executor](str(gate), True)
    wait_for(lambda: "line 009" in job.output)
    own_redis.stop()
    (gate / "full").touch()
    wait_for(lambda: (gate / "printed").exists())
    wait_for(lambda: "could not write its output yet" in caplog.text)
    status, _ = poll(job)
    assert status.startswith("503")  # it cannot read: the one case for a 503
    own_redis.restart()
    (gate / "freed").touch()
    assert job.wait(15) and job.status == "done", job.error
    assert job.output.splitlines() == LINES and job.result == 70
