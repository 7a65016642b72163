"""A job's output as a terminal shows it, rendered to HTML for the job page.

The model (``static/job.js`` implements the same one for the live view):

- The screen is a list of lines and a cursor column on the last one.
- ``\\n`` ends the line (whatever escape sequence was under way ends with it);
  ``\\r`` moves the cursor to column 0; ``\\b`` moves it back one column (never
  before 0); so ``"\\r\\n"`` is a plain newline and a progress bar redrawn
  after ``\\r`` is one line updated in place.
- Every other character (tab included) overwrites the cell under the cursor,
  or is appended at the end of the line, and moves the cursor one column on;
  one code point is one column.
- Other control characters (C0 and C1) are dropped.
- SGR escapes (``ESC [ ... m``) set the style of what follows: the 16 and 256
  colours and truecolour (as the nearest of colours 16-255), foreground and
  background, bold, italic and underline. Every other escape sequence (cursor
  moves, erase, OSC titles and OSC 8 links, DCS, ...) is dropped.
- Escape sequences, exactly: ESC ``[``, then characters 0x20-0x3F, then a
  final 0x40-0x7E (an SGR when the final is ``m`` and the rest only digits,
  ``;`` and ``:``); ESC ``]``, ``P``, ``X``, ``^`` or ``_`` and a string
  ended by BEL or ESC ``\\`` (or cut short by a newline, or an ESC that
  starts another sequence); ESC, characters 0x20-0x2F, a final 0x30-0x7E.
  A character that fits none of these ends the sequence (dropped) and is then
  read as usual: a newline, an ESC starting the next sequence, a letter.
- SGR parameters, exactly: empty is 0; 0 resets; 1, 3, 4 set bold, italic,
  underline, 22, 23, 24 clear them; 30-37 and 90-97 (40-47, 100-107) are
  colours 0-15 of the foreground (background), 39 (49) its default;
  38 (48) then ``5;N`` is colour N, then ``2;R;G;B`` truecolour, then anything
  else takes that one value; 58 (underline colour) is read the same way and
  ignored; ``38:5:N``, ``38:2:[id]:R:G:B`` and ``4:N`` (N 0: no underline) as
  well; a value out of range (or of more than 8 digits) sets nothing; every
  other code is ignored.
- A style is a set of CSS classes (``a-fg-N``, ``a-bg-N``, ``a-b``, ``a-i``,
  ``a-u``), never a ``style`` attribute; text is always escaped, so nothing
  in the output becomes markup or a link.
- Only the newest ``max_lines`` lines are kept (the cursor's line counts);
  ``hidden`` counts the lines dropped above them.

Escape sequences may be split across two ``feed`` calls: the unfinished end
waits for the next call. ``resume()`` is text that brings a fresh terminal to
this one's line, cursor, style and unfinished escape: the page hands it to
its script, which goes on from there with what the job writes next.
"""

import html
import re
from collections import deque
from typing import Deque, List, Optional, Tuple

MAX_LINES = 2000  # lines a page shows at most (the newest)

# One token: an escape sequence (CSI; a string: OSC, DCS, SOS, PM, APC, ended by
# BEL or ST, or cut short by ESC or a newline; ESC, intermediates and a final),
# complete or not, or one control character. Text between tokens is printable.
_ESCAPE = r"\x1b(?:\[[ -?]*[@-~]?|[\]PX^_][^\x07\x1b\n]*(?:\x07|\x1b\\)?|[ -/]*[0-~]?)"
_TOKEN = re.compile(_ESCAPE + r"|[\x00-\x08\x0a-\x1f\x7f-\x9f]")
_ESCAPES = re.compile(_ESCAPE)
_SGR_PARAMS = re.compile(r"[0-9;:]*\Z")

# The xterm palette: 0-15 chosen to read well on the page's dark background,
# 16-231 a 6x6x6 cube, 232-255 greys.
_BASE = ["#000000", "#cd3131", "#0dbc79", "#e5e510", "#2472c8", "#bc3fbc", "#11a8cd", "#e5e5e5",
         "#666666", "#f14c4c", "#23d18b", "#f5f543", "#3b8eea", "#d670d6", "#29b8db", "#ffffff"]
_LEVELS = (0, 95, 135, 175, 215, 255)
PALETTE: List[str] = _BASE + ["#%02x%02x%02x" % (_LEVELS[i // 36], _LEVELS[i // 6 % 6], _LEVELS[i % 6])
                              for i in range(216)] + ["#%02x%02x%02x" % ((8 + 10 * i,) * 3) for i in range(24)]

Style = Tuple[Optional[int], Optional[int], bool, bool, bool]  # fg, bg, bold, italic, underline
PLAIN: Style = (None, None, False, False, False)
Segments = List[Tuple[str, str]]  # (classes, text) runs of one line


def nearest_colour(r: int, g: int, b: int) -> int:
    """The colour of 16-255 nearest to ``(r, g, b)`` (squared distance; the cube
    wins a tie with the greys, and the lower level a tie between two levels)."""
    def level(v: int) -> int:
        best = 0
        for i, lv in enumerate(_LEVELS):
            if abs(v - lv) < abs(v - _LEVELS[best]):
                best = i
        return best

    ri, gi, bi = level(r), level(g), level(b)
    cube = (_LEVELS[ri] - r) ** 2 + (_LEVELS[gi] - g) ** 2 + (_LEVELS[bi] - b) ** 2
    grey, grey_distance = 0, -1
    for i in range(24):
        v = 8 + 10 * i
        d = (v - r) ** 2 + (v - g) ** 2 + (v - b) ** 2
        if grey_distance < 0 or d < grey_distance:
            grey, grey_distance = i, d
    return 232 + grey if grey_distance < cube else 16 + 36 * ri + 6 * gi + bi


def palette_css() -> str:
    """The CSS rules of the 256 colour classes, foreground and background."""
    return "".join(".a-fg-%d{color:%s}.a-bg-%d{background-color:%s}\n" % (i, c, i, c)
                   for i, c in enumerate(PALETTE))


def classes(style: Style) -> str:
    """The CSS classes of a style ("" for the plain one)."""
    fg, bg, bold, italic, underline = style
    names = []
    if fg is not None:
        names.append("a-fg-%d" % fg)
    if bg is not None:
        names.append("a-bg-%d" % bg)
    if bold:
        names.append("a-b")
    if italic:
        names.append("a-i")
    if underline:
        names.append("a-u")
    return " ".join(names)


def _number(field: str) -> int:
    """A parameter's value: empty is 0; more than 8 digits (or not digits) is no valid value."""
    if not field:
        return 0
    return int(field) if len(field) <= 8 and field.isascii() and field.isdigit() else -1


def _colour(values: List[int]) -> Tuple[int, Optional[int]]:
    """(how many values a 38/48/58 colour took after its code, the colour or None)."""
    if not values:
        return 0, None
    if values[0] == 5:
        if len(values) < 2:
            return 1, None
        return 2, values[1] if 0 <= values[1] <= 255 else None
    if values[0] == 2:
        if len(values) < 4:
            return len(values), None
        r, g, b = values[1:4]
        return 4, nearest_colour(r, g, b) if all(0 <= v <= 255 for v in (r, g, b)) else None
    return 1, None


def apply_sgr(style: Style, params: str) -> Style:
    """The style after ``ESC [ params m``."""
    fg, bg, bold, italic, underline = style
    fields = params.split(";")
    i = 0
    while i < len(fields):
        field = fields[i]
        i += 1
        if ":" in field:  # 38:5:N, 38:2:[space]:R:G:B, 4:N (underline styles)
            sub = [_number(v) for v in field.split(":")]
            if sub[0] in (38, 48, 58):
                rgb = sub[1:2] == [2] and len(sub) >= 6
                _, colour = _colour([2] + sub[3:6] if rgb else sub[1:])
                if sub[0] == 38:
                    fg = colour if colour is not None else fg
                elif sub[0] == 48:
                    bg = colour if colour is not None else bg
            elif sub[0] == 4:
                underline = sub[1] != 0
            continue
        code = _number(field)
        if code == 0:
            fg, bg, bold, italic, underline = PLAIN
        elif code == 1:
            bold = True
        elif code == 3:
            italic = True
        elif code == 4:
            underline = True
        elif code == 22:
            bold = False
        elif code == 23:
            italic = False
        elif code == 24:
            underline = False
        elif 30 <= code <= 37:
            fg = code - 30
        elif 90 <= code <= 97:
            fg = code - 90 + 8
        elif code == 39:
            fg = None
        elif 40 <= code <= 47:
            bg = code - 40
        elif 100 <= code <= 107:
            bg = code - 100 + 8
        elif code == 49:
            bg = None
        elif code in (38, 48, 58):
            taken, colour = _colour([_number(v) for v in fields[i:i + 4]])
            i += taken
            if colour is not None and code == 38:
                fg = colour
            elif colour is not None and code == 48:
                bg = colour
    return fg, bg, bold, italic, underline


def _sgr_of(names: str) -> str:
    """The SGR escape that sets exactly the style of these classes."""
    codes = ["0"]
    for name in names.split():
        if name.startswith("a-fg-"):
            codes.append("38;5;" + name[5:])
        elif name.startswith("a-bg-"):
            codes.append("48;5;" + name[5:])
        else:
            codes.append({"a-b": "1", "a-i": "3", "a-u": "4"}[name])
    return "\x1b[%sm" % ";".join(codes)


def _complete(token: str) -> bool:
    """Whether an escape sequence that reaches the end of the text is finished."""
    if len(token) < 2:
        return False
    if token[1] == "[":
        return len(token) > 2 and "@" <= token[-1] <= "~"
    if token[1] in "]PX^_":
        return token.endswith("\x07") or (len(token) > 3 and token.endswith("\x1b\\"))
    return "0" <= token[-1] <= "~"


def _segments(chars: List[str], styles: List[str]) -> Segments:
    if not chars:
        return []
    if styles.count(styles[0]) == len(styles):
        return [(styles[0], "".join(chars))]
    out: Segments = []
    start = 0
    for i in range(1, len(chars) + 1):
        if i == len(chars) or styles[i] != styles[start]:
            out.append((styles[start], "".join(chars[start:i])))
            start = i
    return out


def _line_html(segments: Segments, ended: bool) -> str:
    body = "".join(html.escape(text) if not names else '<span class="%s">%s</span>' % (names, html.escape(text))
                   for names, text in segments)
    return '<span class="ln">%s%s</span>' % (body, "\n" if ended else "")


class Terminal:
    """Lines, a cursor and a style, fed a job's output in as many pieces as it comes."""

    def __init__(self, max_lines: int = MAX_LINES) -> None:
        if max_lines < 1:
            raise ValueError("max_lines must be at least 1")
        self.max_lines = max_lines
        self.hidden = 0  # lines dropped above the ones kept
        self._done: Deque[Tuple[List[str], List[str]]] = deque(maxlen=max_lines - 1)
        self._chars: List[str] = []
        self._styles: List[str] = []
        self._col = 0
        self._style: Style = PLAIN
        self._classes = ""
        self._pending = ""

    def feed(self, text: str) -> "Terminal":
        """Take the next piece of output."""
        if self._pending:
            text, self._pending = self._pending + text, ""
        pos = 0
        for m in _TOKEN.finditer(text):
            start = m.start()
            if start > pos:
                self._write(text[pos:start])
            token, pos = m.group(), m.end()
            if token == "\n":
                self._newline()
            elif token == "\r":
                self._col = 0
            elif token == "\b":
                self._col = max(0, self._col - 1)
            elif token[0] == "\x1b":
                if pos == len(text) and not _complete(token):
                    # wait for the rest; a string's content is dropped anyway
                    self._pending = token[:2] if token[1:2] in ("]", "P", "X", "^", "_") else token
                elif token[1:2] == "[" and token[-1] == "m" and _SGR_PARAMS.match(token[2:-1]):
                    self._set_style(apply_sgr(self._style, token[2:-1]))
        if pos < len(text):
            self._write(text[pos:])
        return self

    def _set_style(self, style: Style) -> None:
        self._style = style
        self._classes = classes(style)

    def _write(self, run: str) -> None:
        chars, col, n = self._chars, self._col, len(run)
        if col == len(chars):
            chars.extend(run)
            self._styles.extend([self._classes] * n)
        else:
            chars[col:col + n] = run
            self._styles[col:col + n] = [self._classes] * n
        self._col = col + n

    def _newline(self) -> None:
        if len(self._done) == self._done.maxlen:
            self.hidden += 1
        if self._done.maxlen:
            self._done.append((self._chars, self._styles))
        self._chars, self._styles, self._col = [], [], 0

    # -- what it shows --------------------------------------------------------------

    def lines(self) -> List[Segments]:
        """The kept lines, each as (classes, text) runs; the last is the cursor's line."""
        return [_segments(c, s) for c, s in self._done] + [_segments(self._chars, self._styles)]

    def html(self) -> str:
        """The kept lines as HTML: a ``<span class="ln">`` each, styled runs in
        ``<span class="...">``; every line but the last ends with its newline."""
        return "".join([_line_html(_segments(c, s), True) for c, s in self._done]
                       + [_line_html(_segments(self._chars, self._styles), False)])

    def text(self) -> str:
        """The kept lines as plain text."""
        return "".join("".join(c) + "\n" for c, _ in self._done) + "".join(self._chars)

    def resume(self) -> str:
        """Text that brings a fresh terminal to this one's last line, cursor,
        style and unfinished escape sequence."""
        parts = [_sgr_of(names) + text for names, text in _segments(self._chars, self._styles)]
        parts.append("\b" * (len(self._chars) - self._col))
        parts.append(_sgr_of(self._classes) + self._pending)
        return "".join(parts)


def render(text: str, max_lines: int = MAX_LINES) -> Terminal:
    """A terminal fed all of ``text``: the same as ``Terminal(max_lines).feed(text)``,
    but lines that would be dropped are only read for the style they leave behind."""
    term = Terminal(max_lines)
    keep = max_lines - 1
    newlines = text.count("\n")
    if newlines > keep:
        # after a newline nothing carries over but the style
        cut = len(text)
        for _ in range(keep + 1):
            cut = text.rfind("\n", 0, cut)
        style = PLAIN
        for m in _ESCAPES.finditer(text, 0, cut):
            token = m.group()
            if token[1:2] == "[" and token[-1] == "m" and _SGR_PARAMS.match(token[2:-1]):
                style = apply_sgr(style, token[2:-1])
        term._set_style(style)
        term.hidden = newlines - keep
        text = text[cut + 1:]
    return term.feed(text)
