"""The words of the job page, the live view and the dashboard, in the reader's
language: gettext catalogs under ``locale/<language>/LC_MESSAGES/web_background.mo``
(English is the messages themselves), chosen per request from ``Accept-Language``
or fixed by ``configure(language=...)``.  A language is added by adding a catalog."""

import functools
import gettext as _gettext
import os
import re
from typing import Dict, List, Optional, Tuple

import web

DOMAIN = "web_background"
LOCALE_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "locale")
SOURCE_LANGUAGE = "en"
_TAG = re.compile(r"[A-Za-z]{1,8}(?:[-_][A-Za-z0-9]{1,8})*\Z")
_CTX_KEY = "web_background_language"  # (Accept-Language, fixed) -> language, cached for the request

_fixed: Dict[str, Optional[str]] = {"language": None}


@functools.lru_cache(maxsize=1)
def languages() -> Tuple[str, ...]:
    """The languages there are catalogs for, English first (e.g. ``("en", "zh_CN")``)."""
    found = []
    if os.path.isdir(LOCALE_DIR):
        for name in sorted(os.listdir(LOCALE_DIR)):
            if os.path.isfile(os.path.join(LOCALE_DIR, name, "LC_MESSAGES", DOMAIN + ".mo")):
                found.append(name)
    return (SOURCE_LANGUAGE,) + tuple(n for n in found if n != SOURCE_LANGUAGE)


def check_language(language: Optional[str]) -> Optional[str]:
    """``language`` if it is None or "auto" (chosen per request) or one there is a
    catalog for, else a ValueError."""
    if language not in (None, "auto") and language not in languages():
        raise ValueError("language must be \"auto\" or one of %s, not %r" % (", ".join(languages()), language))
    return language


def fix(language: Optional[str]) -> None:
    """Use ``language`` for every request (None: each request's ``Accept-Language``)."""
    _fixed["language"] = None if check_language(language) == "auto" else language


def _normal(tag: str) -> str:
    return tag.replace("-", "_").lower()


def choose(accept: Optional[str]) -> str:
    """The language an ``Accept-Language`` header asks for most that there is a
    catalog for: an exact match (``zh-CN``), else the same primary language
    (``zh``, ``zh-SG``); English when nothing matches."""
    by_normal = {_normal(lang): lang for lang in languages()}
    wanted: List[Tuple[float, int, str]] = []
    for i, part in enumerate((accept or "").split(",")[:32]):
        tag, _, params = part.strip().partition(";")
        tag, q = tag.strip(), 1.0
        for param in params.split(";"):
            name, _, value = param.strip().partition("=")
            if name.strip().lower() == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        if q > 0 and _TAG.match(tag):
            wanted.append((-q, i, _normal(tag)))
    for _, _, tag in sorted(wanted):
        if tag in by_normal:
            return by_normal[tag]
        primary = tag.split("_", 1)[0]
        for normal, lang in by_normal.items():
            if normal.split("_", 1)[0] == primary:
                return lang
    return SOURCE_LANGUAGE


@functools.lru_cache(maxsize=None)
def translations(language: str) -> _gettext.NullTranslations:
    """The catalog of ``language`` (English: the messages as they are)."""
    if language == SOURCE_LANGUAGE:
        return _gettext.NullTranslations()
    return _gettext.translation(DOMAIN, LOCALE_DIR, languages=[language])


def language() -> str:
    """The language of the current request's words (English outside a request)."""
    if _fixed["language"] is not None:
        return _fixed["language"]
    env = web.ctx.get("env")
    if env is None:
        return SOURCE_LANGUAGE
    accept = env.get("HTTP_ACCEPT_LANGUAGE")
    cached = web.ctx.get(_CTX_KEY)
    if cached is not None and cached[0] == accept:
        return cached[1]
    chosen = choose(accept)
    web.ctx[_CTX_KEY] = (accept, chosen)
    return chosen


def html_lang(lang: Optional[str] = None) -> str:
    """The language as an HTML ``lang`` attribute gives it (``zh-CN``)."""
    return (lang or language()).replace("_", "-")


def gettext(message: str) -> str:
    """``message`` in the current request's language."""
    return translations(language()).gettext(message)


def ngettext(singular: str, plural: str, n: int) -> str:
    """The form of ``singular``/``plural`` for ``n`` in the current request's language."""
    return translations(language()).ngettext(singular, plural, n)
