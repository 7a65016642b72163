"""The examples do what their docstrings say."""
import os
import sys

import pytest

from conftest import wait_for

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "examples"))

pytestmark = pytest.mark.stores("memory")


def test_the_progress_example_shows_progress_and_cancels_from_its_page(monkeypatch):
    monkeypatch.setenv("EXAMPLE_DELAY", "0.02")
    import progress as example
    from web_background import threaddb

    response = example.app.request("/work?steps=500")
    job_id = response.headers["Location"].rsplit("_t=", 1)[1]
    wait_for(lambda: (threaddb[job_id].progress or {}).get("done", 0) >= 2)
    page = example.app.request("/work?_t=%s" % job_id).data.decode()
    assert '<progress id="bar"' in page and "Cancel" in page
    assert example.app.request("/work?_t=%s&_action=cancel" % job_id, method="POST",
                               headers={"Origin": "http://0.0.0.0:8080"}).status.startswith("303")
    assert threaddb[job_id].wait(10) and threaddb[job_id].status == "cancelled"
    assert job_id in example.app.request("/").data.decode()
    assert example.app.request("/work?steps=many").status.startswith("400")
