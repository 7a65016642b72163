"""The package's gettext catalogs: list the messages its code shows, and compile
each ``.po`` into the ``.mo`` that ships beside it, as CPython's
Tools/i18n/msgfmt.py does (same parser rules, same file layout).

    python scripts/catalogs.py          # writes locale/web_background.pot and every .mo

Add a language: copy web_background/locale/web_background.pot to
web_background/locale/<ll_CC>/LC_MESSAGES/web_background.po, translate it, run this.
"""
import array
import ast
import glob
import os
import re
import struct
import sys
from typing import Dict, List, Tuple

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PACKAGE = os.path.join(ROOT, "web_background")
LOCALE = os.path.join(PACKAGE, "locale")
POT = os.path.join(LOCALE, "web_background.pot")

_STRING = r'"((?:[^"\\]|\\.)*)"'
# what the package's code says to a reader: _("..."), ngettext("...", "...", n), and the
# bodies of its error answers (responses.error translates them)
_CALLS = [re.compile(r"\b_\(\s*" + _STRING),
          re.compile(r"\bngettext\(\s*" + _STRING + r"\s*,\s*" + _STRING),
          re.compile(r"\berror\(\s*" + _STRING + r"\s*,\s*" + _STRING),
          re.compile(r"\b_bad\(\s*" + _STRING)]

Message = Tuple[str, ...]  # (msgid,) or (msgid, msgid_plural)


def extract() -> List[Message]:
    """Every message the package's modules show, in the order first found."""
    found: List[Message] = []
    for path in sorted(glob.glob(os.path.join(PACKAGE, "*.py"))):
        with open(path, encoding="utf-8") as f:
            source = f.read()
        hits = []
        for kind, pattern in enumerate(_CALLS):
            for m in pattern.finditer(source):
                groups = [ast.literal_eval('"%s"' % g) for g in m.groups()]
                message = tuple(groups[1:]) if kind == 2 else tuple(groups)
                hits.append((m.start(), message))
        for _, message in sorted(hits):
            if message not in found:
                found.append(message)
    return found


def _quote(text: str) -> str:
    return '"%s"' % text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\t", "\\t")


def template(messages: List[Message]) -> str:
    """The .pot file of ``messages``: what a translator starts from."""
    out = ['# Messages of web_background (the job page, the live view, the dashboard).',
           '# Made by scripts/catalogs.py; copy to locale/<ll_CC>/LC_MESSAGES/web_background.po.',
           'msgid ""', 'msgstr ""', _quote("Content-Type: text/plain; charset=UTF-8\n"), ""]
    for message in messages:
        out.append("msgid " + _quote(message[0]))
        if len(message) == 2:
            out += ["msgid_plural " + _quote(message[1]), 'msgstr[0] ""', 'msgstr[1] ""']
        else:
            out.append('msgstr ""')
        out.append("")
    return "\n".join(out)


def parse_po(path: str) -> Dict[bytes, bytes]:
    """The translations of a .po file as msgfmt.py reads them: msgid (``msgid\\0plural``
    for plurals) -> msgstr (the forms joined by ``\\0``); fuzzy entries are left out."""
    messages: Dict[bytes, bytes] = {}
    section = None
    fuzzy = False
    msgid = msgstr = b""
    is_plural = False

    def add() -> None:
        if not fuzzy and msgstr and msgstr.strip(b"\0"):
            messages[msgid] = msgstr

    with open(path, "rb") as f:
        lines = f.read().decode("utf-8").splitlines()
    for number, line in enumerate(lines, 1):
        if line.startswith("#") and section == "str":
            add()
            section, fuzzy = None, False
        if line.startswith("#,") and "fuzzy" in line:
            fuzzy = True
        if line.startswith("#"):
            continue
        if line.startswith("msgid ") or line.startswith("msgctxt "):
            if section == "str":
                add()
                fuzzy = False
            if line.startswith("msgctxt "):
                raise ValueError("%s:%d: msgctxt is not used by this package" % (path, number))
            section, is_plural, msgid, msgstr = "id", False, b"", b""
            line = line[6:]
        elif line.startswith("msgid_plural"):
            section, is_plural = "id", True
            msgid += b"\0"
            line = line[12:]
        elif line.startswith("msgstr"):
            section = "str"
            line = line[6:]
            if line.startswith("["):
                if not is_plural:
                    raise ValueError("%s:%d: plural msgstr without msgid_plural" % (path, number))
                line = line.split("]", 1)[1]
                if msgstr:
                    msgstr += b"\0"
            elif is_plural:
                raise ValueError("%s:%d: msgid_plural without msgstr[N]" % (path, number))
        line = line.strip()
        if not line:
            continue
        value = ast.literal_eval(line).encode("utf-8")
        if section == "id":
            msgid += value
        elif section == "str":
            msgstr += value
        else:
            raise ValueError("%s:%d: a string outside msgid and msgstr" % (path, number))
    if section == "str":
        add()
    return messages


def make_mo(messages: Dict[bytes, bytes]) -> bytes:
    """The GNU .mo file of ``messages`` (the layout msgfmt.py writes: no hash table)."""
    keys = sorted(messages)
    ids = strs = b""
    offsets = []
    for key in keys:
        offsets.append((len(ids), len(key), len(strs), len(messages[key])))
        ids += key + b"\0"
        strs += messages[key] + b"\0"
    keystart = 7 * 4 + 16 * len(keys)
    valuestart = keystart + len(ids)
    koffsets: List[int] = []
    voffsets: List[int] = []
    for o1, l1, o2, l2 in offsets:
        koffsets += [l1, o1 + keystart]
        voffsets += [l2, o2 + valuestart]
    header = struct.pack("Iiiiiii", 0x950412DE, 0, len(keys), 7 * 4, 7 * 4 + len(keys) * 8, 0, 0)
    return header + array.array("i", koffsets + voffsets).tobytes() + ids + strs


def sources() -> List[str]:
    """Every .po catalog shipped in the package."""
    return sorted(glob.glob(os.path.join(LOCALE, "*", "LC_MESSAGES", "*.po")))


def main() -> None:
    with open(POT, "w", encoding="utf-8") as f:
        f.write(template(extract()))
    for po in sources():
        with open(po[:-3] + ".mo", "wb") as f:
            f.write(make_mo(parse_po(po)))
        print("compiled", os.path.relpath(po, ROOT), file=sys.stderr)


if __name__ == "__main__":
    main()
