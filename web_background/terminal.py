"""A job's output as a terminal shows it, rendered to HTML for the job page.

The specification (``static/terminal.js`` implements the same for the live
page; ``escapes.py`` is the parser half, this module the screen):

- A screen of ``width`` columns by ``height`` rows (a ``tty`` job: its
  ``tty_size``; any other job: ``WIDTH`` by ``HEIGHT``) sits at the bottom of a
  page of rows. A row that scrolls off the top of the screen joins the history
  above it and never changes again; the screen's rows stay editable. The page
  shows the history and the screen's rows down to the lowest the cursor has
  been on (a fresh screen: one empty row). Only the newest ``max_lines`` rows
  are kept; ``hidden`` counts the rows dropped above them.
- A cell holds one code point and a style; a row holds at most ``width``
  cells; a cell skipped over (the cursor moved past the row's end) is a plain
  blank. The cursor is a row ``y`` (0 to ``height - 1``) and a column ``x``
  (0 to ``width``: ``width`` means the last column was just written, and the
  next character first goes to the start of the next row).
- A printable character (not a C0 or C1 control) goes into the cell under
  the cursor, with the current style, and moves it one column on.
- ``\\n`` goes down a row, scrolling the scroll region when at its bottom row
  (its top row joins the history when the region starts at the screen's top,
  else is gone; a blank row comes in at its bottom), and back to column 0 (as
  a terminal's ``onlcr`` makes it). ``\\r`` goes to column 0; ``\\b`` one column
  back; ``\\t`` to the next multiple of 8, at most the last column (``\\b`` and
  ``\\t`` from past the last column count from the last column). Every other
  control character is dropped.
- Escape sequences, exactly: ESC ``[``, then characters 0x20-0x3F, then a
  final 0x40-0x7E; ESC ``]``, ``P``, ``X``, ``^`` or ``_`` and a string ended
  by BEL or ESC ``\\`` (or cut short by a newline, or an ESC that starts
  another sequence); ESC, characters 0x20-0x2F, a final 0x30-0x7E. A
  character that fits none of these ends the sequence (dropped) and is then
  read as usual.
- Of these, only ESC ``7`` / ESC ``8`` (save / restore the cursor and style;
  a restore with nothing saved goes to the top left) and these CSI sequences,
  with parameters of digits and ``;`` only (``n`` is the first, empty or 0
  meaning 1), do anything; every other one is dropped:
  ``A``/``B`` n rows up/down (stopping at the scroll region's top/bottom row
  when the cursor is inside it, else at the screen's edge), ``C``/``D`` n
  columns right/left (within the row; from past the last column counting from
  the last), ``E``/``F`` as ``B``/``A`` and to column 0, ``G`` to column n,
  ``d`` to row n, ``H`` and ``f`` to row n, column m (each at most the last);
  ``K`` erases from the cursor to the end of the row (0), from the start to
  the cursor (1) or the whole row (2); ``J`` erases from the cursor to the end
  of the screen (0), from its start to the cursor (1) or the whole screen (2,
  3); erased cells are plain blanks, and the cursor stays; ``r`` sets the
  scroll region to rows n to m (1 to ``height`` by default; when n < m) and
  goes to the top left; ``s``/``u`` (no parameters) are ESC 7/8;
  ``m`` (SGR; ``:`` allowed too) sets the style of what follows.
- SGR parameters, exactly: empty is 0; 0 resets; 1, 3, 4, 7, 9 set bold,
  italic, underline, reverse video, strike-through, 22, 23, 24, 27, 29 clear
  them; 30-37 and 90-97 (40-47, 100-107) are colours 0-15 of the foreground
  (background), 39 (49) its default; 38 (48) then ``5;N`` is colour N, then
  ``2;R;G;B`` truecolour (as the nearest of colours 16-255), then anything
  else takes that one value; 58 (underline colour) is read the same way and
  ignored; ``38:5:N``, ``38:2:[id]:R:G:B`` and ``4:N`` (N 0: no underline) as
  well; a value out of range (or of more than 8 digits) sets nothing; every
  other code is ignored.
- A style is a set of CSS classes (``a-fg-N``, ``a-bg-N``, ``a-b``, ``a-i``,
  ``a-u``, ``a-s``, ``a-r``: see ``escapes.classes``), never a ``style``
  attribute; text is always escaped, so nothing in the output becomes markup
  or a link.

Escape sequences may be split across two ``feed`` calls: the unfinished end
waits for the next call. ``state()`` is the screen (its rows, cursor, scroll
region, saved cursor, style and unfinished escape) as JSON-able values; the
page hands it to its script, which goes on from there with what the job
writes next (``Terminal.restore`` does the same here).
"""

import html
from collections import deque
from typing import Any, Deque, Dict, List, Optional, Tuple

from .escapes import (CURSOR_PARAMS, ESCAPES, PALETTE, PLAIN, SGR_PARAMS, TOKEN, Style, apply_sgr,  # noqa: F401
                      classes, complete, cursor_numbers, nearest_colour, palette_css)

MAX_LINES = 2000  # rows a page shows at most (the newest)
WIDTH = 1000  # columns of the screen of a job without a tty (long lines wrap at this width)
HEIGHT = 100  # rows of the screen of a job without a tty: the newest rows that stay editable

Segments = List[Tuple[str, str]]  # (classes, text) runs of one row
Row = List[List[str]]  # [characters, their classes]: one row of cells


def _segments(row: Row) -> Segments:
    chars, styles = row
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


def _blank() -> Row:
    return [[], []]


class Terminal:
    """A screen over a page of rows, fed a job's output in as many pieces as it comes."""

    def __init__(self, max_lines: int = MAX_LINES, width: Optional[int] = None, height: Optional[int] = None) -> None:
        if max_lines < 1:
            raise ValueError("max_lines must be at least 1")
        self.max_lines = max_lines
        self.width, self.height = width or WIDTH, height or HEIGHT
        if self.width < 2 or self.height < 2:
            raise ValueError("a screen has at least 2 columns and 2 rows")
        self._history: Deque[Row] = deque(maxlen=max_lines)
        self._scrolled = 0  # rows that ever joined the history
        self._rows: List[Row] = [_blank()]  # the screen's rows down to the lowest the cursor has been on
        self._y = self._x = 0
        self._top, self._bottom = 0, self.height - 1  # the scroll region
        self._saved: Optional[Tuple[int, int, Style]] = None
        self._style: Style = PLAIN
        self._classes = ""
        self._pending = ""

    # -- feeding ----------------------------------------------------------------------

    def feed(self, text: str) -> "Terminal":
        """Take the next piece of output."""
        if self._pending:
            text, self._pending = self._pending + text, ""
        pos = 0
        for m in TOKEN.finditer(text):
            start = m.start()
            if start > pos:
                self._write(text[pos:start])
            token, pos = m.group(), m.end()
            if token[0] == "\x1b":
                if pos == len(text) and not complete(token):
                    # wait for the rest; a string's content is dropped anyway
                    self._pending = token[:2] if token[1:2] in ("]", "P", "X", "^", "_") else token
                elif token[1:2] == "[":
                    self._csi(token[2:-1], token[-1])
                elif token == "\x1b7":
                    self._save()
                elif token == "\x1b8":
                    self._restore()
            elif token == "\n":
                self._index()
                self._x = 0
            elif token == "\r":
                self._x = 0
            elif token == "\b":
                self._x = max(0, min(self._x, self.width - 1) - 1)
            elif token == "\t":
                self._x = min((self._x // 8 + 1) * 8, self.width - 1)
        if pos < len(text):
            self._write(text[pos:])
        return self

    def _write(self, run: str) -> None:
        width, names = self.width, self._classes
        while run:
            if self._x >= width:
                self._index()
                self._x = 0
            x = self._x
            n = min(len(run), width - x)
            chars, styles = self._rows[self._y]
            if x > len(chars):
                gap = x - len(chars)
                chars.extend(" " * gap)
                styles.extend([""] * gap)
            if n == len(run):
                chars[x:x + n] = run
                run = ""
            else:
                chars[x:x + n] = run[:n]
                run = run[n:]
            styles[x:x + n] = [names] * n
            self._x = x + n

    def _go_to_row(self, y: int) -> None:
        self._y = y
        rows = self._rows
        while len(rows) <= y:
            rows.append(_blank())

    def _index(self) -> None:
        """Down a row, scrolling the region when at its bottom."""
        y = self._y
        if y == self._bottom:
            if self._top == 0:
                self._history.append(self._rows.pop(0))
                self._scrolled += 1
            else:
                self._rows.pop(self._top)
            self._rows.insert(self._bottom, _blank())
        elif y < self.height - 1:
            self._go_to_row(y + 1)

    def _csi(self, params: str, final: str) -> None:
        if final == "m":
            if SGR_PARAMS.match(params):
                self._set_style(apply_sgr(self._style, params))
            return
        if final not in "ABCDEFGdHfJKrsu" or not CURSOR_PARAMS.match(params):
            return
        numbers = cursor_numbers(params)
        n = numbers[0] or 1
        y, x, width, height = self._y, self._x, self.width, self.height
        if final in "AF":
            self._go_to_row(max(y - n, self._top if y >= self._top else 0))
        elif final in "BE":
            self._go_to_row(min(y + n, self._bottom if y <= self._bottom else height - 1))
        elif final == "C":
            self._x = min(x + n, width - 1)
        elif final == "D":
            self._x = max(min(x, width - 1) - n, 0)
        elif final == "G":
            self._x = min(n, width) - 1
        elif final == "d":
            self._go_to_row(min(n, height) - 1)
        elif final in "Hf":
            column = numbers[1] if len(numbers) > 1 else 0
            self._go_to_row(min(n, height) - 1)
            self._x = min(column or 1, width) - 1
        elif final == "K":
            self._erase_in_row(self._rows[y], numbers[0], x)
        elif final == "J":
            how = numbers[0]
            if how in (0, 1):
                for row in (self._rows[y + 1:] if how == 0 else self._rows[:y]):
                    row[0].clear()
                    row[1].clear()
                self._erase_in_row(self._rows[y], how, x)
            elif how in (2, 3):
                for row in self._rows:
                    row[0].clear()
                    row[1].clear()
        elif final == "r":
            bottom = numbers[1] if len(numbers) > 1 and numbers[1] else height
            top, bottom = min(n, height), min(bottom, height)
            if top < bottom:
                self._top, self._bottom = top - 1, bottom - 1
                self._go_to_row(0)
                self._x = 0
        elif params == "":
            (self._save if final == "s" else self._restore)()
        if final in "EF":
            self._x = 0

    @staticmethod
    def _erase_in_row(row: Row, how: int, x: int) -> None:
        chars, styles = row
        if how == 0:
            del chars[x:], styles[x:]
        elif how == 1:
            if x >= len(chars) - 1:
                chars.clear()
                styles.clear()
            else:
                chars[:x + 1] = " " * (x + 1)
                styles[:x + 1] = [""] * (x + 1)
        elif how == 2:
            chars.clear()
            styles.clear()

    def _save(self) -> None:
        self._saved = (self._y, self._x, self._style)

    def _restore(self) -> None:
        if self._saved is None:
            self._go_to_row(0)
            self._x = 0
            return
        y, self._x, style = self._saved
        self._go_to_row(y)
        self._set_style(style)

    def _set_style(self, style: Style) -> None:
        self._style = style
        self._classes = classes(style)

    # -- what it shows --------------------------------------------------------------

    def _shown(self) -> List[Row]:
        rows = self._rows
        if len(rows) >= self.max_lines:
            return rows[len(rows) - self.max_lines:]
        history = self._history
        keep = self.max_lines - len(rows)
        if len(history) > keep:
            return [history[i] for i in range(len(history) - keep, len(history))] + rows
        return list(history) + rows

    @property
    def hidden(self) -> int:
        """Rows dropped above the ones shown."""
        return self._scrolled + len(self._rows) - len(self._shown())

    def lines(self) -> List[Segments]:
        """The rows shown, each as (classes, text) runs; the screen's rows last."""
        return [_segments(row) for row in self._shown()]

    def html(self) -> str:
        """The rows shown as HTML: a ``<span class="ln">`` each, styled runs in
        ``<span class="...">``; every row but the last ends with its newline."""
        shown = self._shown()
        last = len(shown) - 1
        return "".join([_line_html(_segments(row), i < last) for i, row in enumerate(shown)])

    def text(self) -> str:
        """The rows shown as plain text."""
        return "\n".join("".join(row[0]) for row in self._shown())

    def state(self) -> Dict[str, Any]:
        """The screen as JSON-able values: what a fresh terminal needs to go on
        from here (``Terminal.restore``, and the page's script)."""
        saved = None if self._saved is None else [self._saved[0], self._saved[1], list(self._saved[2])]
        return {"width": self.width, "height": self.height, "rows": [_segments(row) for row in self._rows],
                "y": self._y, "x": self._x, "top": self._top, "bottom": self._bottom, "saved": saved,
                "style": list(self._style), "pending": self._pending}

    @classmethod
    def restore(cls, state: Dict[str, Any], max_lines: int = MAX_LINES) -> "Terminal":
        """A terminal whose screen is ``state`` (from ``state()``), with no history."""
        term = cls(max_lines, state["width"], state["height"])
        term._rows = [[[ch for _, text in runs for ch in text], [names for names, text in runs for _ in text]]
                      for runs in state["rows"]]
        term._y, term._x, term._top, term._bottom = state["y"], state["x"], state["top"], state["bottom"]
        saved = state["saved"]
        term._saved = None if saved is None else (saved[0], saved[1], tuple(saved[2]))  # type: ignore[assignment]
        term._set_style(tuple(state["style"]))  # type: ignore[arg-type]
        term._pending = state["pending"]
        return term


def render(text: str, max_lines: int = MAX_LINES, width: Optional[int] = None,
           height: Optional[int] = None) -> Terminal:
    """A terminal fed all of ``text``: the same as ``Terminal(max_lines, width, height).feed(text)``,
    but when nothing can move the cursor up (no escape but SGR) and no line that
    would be dropped wraps, those lines are only read for the style they leave."""
    term = Terminal(max_lines, width, height)
    keep = max_lines - 1
    if keep < term.height or text.count("\n") <= keep:
        return term.feed(text)
    cut = len(text)
    for _ in range(keep + 1):
        cut = text.rfind("\n", 0, cut)
    style, sgr_only = PLAIN, True
    for m in ESCAPES.finditer(text):
        token = m.group()
        if not (token[1:2] == "[" and token[-1] == "m" and SGR_PARAMS.match(token[2:-1])):
            sgr_only = False
            break
        if m.start() < cut:
            style = apply_sgr(style, token[2:-1])
    before = text[:cut]
    # a line of the dropped part is one row: it cannot wrap (each character, a tab at most 8, within the width)
    if not sgr_only or (len(before) + 7 * before.count("\t") > term.width and
                        max(len(line) + 7 * line.count("\t") for line in before.split("\n")) > term.width):
        return term.feed(text)
    term._set_style(style)
    term._scrolled = before.count("\n") + 1  # those rows and the one the cut ends
    return term.feed(text[cut + 1:])
