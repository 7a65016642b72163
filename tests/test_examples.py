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


def test_the_site_example_lays_out_its_job_pages_embeds_live_views_and_guards_its_dashboard(monkeypatch):
    monkeypatch.setenv("EXAMPLE_DELAY", "0.01")
    import importlib.util

    path = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "examples", "site", "app.py")
    spec = importlib.util.spec_from_file_location("site_example", path)  # not "app": examples/cluster has one
    example = sys.modules["site_example"] = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)
    from web_background import threaddb

    response = example.app.request("/export?rows=3")
    job_id = response.headers["Location"].rsplit("_t=", 1)[1]
    page = example.app.request("/export?_t=%s" % job_id).data.decode()
    assert '<header class="site-header">' in page and '<main id="job" class="wb-job"' in page
    assert page.count('<header class="site-header">') == 1  # render.layout, laid out once
    assert threaddb[job_id].wait(10) and threaddb[job_id].status == "done"
    response = example.app.request("/report?rows=2", method="POST")
    ids = response.headers["Location"].rsplit("jobs=", 1)[1].split(",")
    report = example.app.request("/report?jobs=" + ",".join(ids)).data.decode()
    assert report.count('class="wb-job"') == 2 and all('data-url="/report?_t=%s"' % i in report for i in ids)
    assert example.app.request("/jobs/").status.startswith("403")  # not an admin
    cookie = example.app.request("/login", method="POST").headers["Set-Cookie"].split(";", 1)[0]
    listing = example.app.request("/jobs/", headers={"Cookie": cookie})
    assert listing.status == "200 OK" and '<header class="site-header">' in listing.data.decode()
    assert all(threaddb[i].wait(10) for i in ids)
