"""The words of the job page, the live view and the dashboard in the reader's language
(English, Simplified Chinese), from the gettext catalogs shipped in the package."""
import gettext
import json
import os
import sys

import pytest
import web

import web_background
from web_background import background, backgrounder, configure, i18n

from servers import ROOT

sys.path.insert(0, os.path.join(ROOT, "scripts"))
import catalogs  # noqa: E402

pytestmark = pytest.mark.stores("memory")  # the words do not depend on the store

ZH = {"HTTP_ACCEPT_LANGUAGE": "zh-CN,zh;q=0.9,en;q=0.8"}


@background
def says_hello():
    print("hello")


class hello:
    @backgrounder
    def GET(self):
        says_hello()


app = web.application(("/hello", "hello", "/jobs", web_background.dashboard(allow=lambda: True)), globals(),
                      autoreload=False)


def finished_job():
    response = app.request("/hello")
    job_id = response.headers["Location"].rsplit("_t=", 1)[1]
    assert web_background.threaddb[job_id].wait(10)
    return job_id


def page(path, **env):
    return app.request(path, env=env).data.decode()


@pytest.mark.parametrize("accept, language", [
    ("zh-CN,zh;q=0.9,en;q=0.8", "zh_CN"), ("zh", "zh_CN"), ("zh-Hans-CN", "zh_CN"), ("ZH-cn", "zh_CN"),
    ("en-US,en;q=0.9", "en"), ("fr-FR, zh;q=0.5", "zh_CN"), ("en;q=0.9, zh-CN;q=0.8", "en"),
    ("zh-CN;q=0", "en"), ("fr, de", "en"), ("", "en"), (None, "en"), ("*", "en"), ("zh-CN;q=x, en", "en"),
    ("\x00\ud800;;;,,,=", "en"), ("a" * 10000, "en"),
])
def test_the_language_is_the_one_accept_language_asks_for_most_that_there_is_a_catalog_for(accept, language):
    assert i18n.choose(accept) == language


def test_the_job_page_is_in_chinese_for_accept_language_zh_cn():
    text = page("/hello?_t=" + finished_job(), **ZH)
    assert '<html lang="zh-CN">' in text
    for words in ("状态：", "已完成", "已用时间：", "取消", "任务失败。"):
        assert words in text, words
    assert "Status:" not in text and ">done<" not in text


def test_the_job_page_is_in_english_otherwise():
    job_id = finished_job()
    for env in ({}, {"HTTP_ACCEPT_LANGUAGE": "fr-FR,fr;q=0.9"}):
        text = page("/hello?_t=" + job_id, **env)
        assert '<html lang="en">' in text and "Status:" in text and ">done<" in text and "状态" not in text


def test_the_scripts_words_come_with_the_page():
    text = page("/hello?_t=" + finished_job(), **ZH)
    import html
    import re

    words = json.loads(html.unescape(re.search(r'data-words="([^"]*)"', text).group(1)))
    assert words["status"]["running"] == "运行中" and words["cancelling"] == "正在取消…"
    assert words["hidden"][1] % "1,234" == "前面 1,234 行未显示"


def test_configure_language_fixes_the_language_whatever_the_browser_asks():
    job_id = finished_job()
    configure(language="zh_CN")
    assert "状态：" in page("/hello?_t=" + job_id, HTTP_ACCEPT_LANGUAGE="en")
    configure(language="auto")
    assert "Status:" in page("/hello?_t=" + job_id, HTTP_ACCEPT_LANGUAGE="en")
    with pytest.raises(ValueError):
        configure(language="xx_YY")


def test_the_json_keeps_its_english_field_names_and_status_values():
    job_id = finished_job()
    reply = json.loads(page("/hello?_t=%s&_format=json" % job_id, **ZH))
    assert reply["status"] == "done" and {"id", "status", "output", "progress", "offset"} <= set(reply)
    listing = json.loads(page("/jobs/?_format=json", **ZH))
    assert listing["jobs"][0]["status"] == "done" and "counts" in listing and "done" in listing["counts"]


def test_the_packages_error_answers_are_in_chinese_too():
    assert page("/hello?_t=nosuchjob", **ZH) == "没有这个任务。\n"
    assert page("/hello?_t=nosuchjob") == "No such job.\n"
    assert page("/hello?_t=%s&_format=bogus" % finished_job(), **ZH).startswith("_format 必须是以下之一：")
    assert page("/jobs/?page=0", **ZH) == "page 必须是大于等于 1 的整数。\n"


def test_the_dashboard_is_in_chinese_for_accept_language_zh_cn():
    finished_job()
    text = page("/jobs/", **ZH)
    for words in ("<title>任务</title>", "个运行中", "筛选", "清除已结束的任务", "<th>状态</th>", "<th>最后一行</th>",
                  "已完成", "重试", "第 1 页，共 1 页"):
        assert words in text, words
    shown = text.split("<main", 1)[1].split("</main>", 1)[0]
    assert "Purge" not in shown and "Last line" not in shown and "Status" not in shown


# -- the catalogs --------------------------------------------------------------------------


def test_every_message_the_package_shows_is_in_the_template_and_translated_in_every_catalog():
    messages = catalogs.extract()
    assert ("No such job.",) in messages and ("Cancel",) in messages and len(messages) > 40
    with open(catalogs.POT, encoding="utf-8") as f:
        assert f.read() == catalogs.template(messages), "run python scripts/catalogs.py"
    assert catalogs.sources(), "no catalog"
    for po in catalogs.sources():
        translated = catalogs.parse_po(po)
        missing = [m for m in messages if "\0".join(m).encode() not in translated]
        assert not missing, (po, missing)


def test_the_shipped_mo_files_are_the_po_files_compiled():
    for po in catalogs.sources():
        with open(po[:-3] + ".mo", "rb") as f:
            shipped = f.read()
        assert shipped == catalogs.make_mo(catalogs.parse_po(po)), "run python scripts/catalogs.py"
        # and gettext reads them as the .po says
        with open(po[:-3] + ".mo", "rb") as f:
            catalog = gettext.GNUTranslations(f)
        assert catalog.gettext("Cancel") == "取消"
        assert catalog.ngettext("%s earlier line not shown", "%s earlier lines not shown", 7) == "前面 %s 行未显示"


def test_a_language_is_found_by_its_catalog():
    assert i18n.languages() == ("en", "zh_CN")
    assert os.path.isfile(os.path.join(i18n.LOCALE_DIR, "zh_CN", "LC_MESSAGES", "web_background.po"))


@background
def writes_a_lot():
    print("x" * 299)


def test_the_cut_notice_is_in_the_readers_language_on_the_page_and_english_in_the_output():
    configure(max_output=100)
    job = writes_a_lot()
    assert job.wait(10)
    assert "[... 前面 200 个字符已截去 ...]" in page("/hello?_t=" + job.id, **ZH)
    assert json.loads(page("/hello?_t=%s&_format=json" % job.id, **ZH))["output"].startswith(
        "[... 200 earlier characters cut ...]\n")
    assert "[... 200 earlier characters cut ...]" in page("/hello?_t=" + job.id)
