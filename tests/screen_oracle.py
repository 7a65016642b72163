"""A terminal emulator as the oracle of the page's screen: pyte (selectel/pyte)
fed a job's output, and the page's rows, both as rows of (character, style)
cells to compare cell by cell."""
import html.parser

import pyte
from pyte import graphics

from web_background.terminal import HEIGHT, WIDTH

DEFAULT = (None, None, False, False, False, False, False)  # fg, bg, bold, italic, underline, strike, reverse


def _pyte_colour(value):
    """A pyte colour ("default", a name, or hex) as a hex string of pyte's palette, or None."""
    if value == "default":
        return None
    for table, base in ((graphics.FG_ANSI, 30), (graphics.FG_AIXTERM, 82), (graphics.BG_ANSI, 40),
                        (graphics.BG_AIXTERM, 92)):
        for code, name in table.items():
            if name == value and code not in (39, 49):
                return graphics.FG_BG_256[code - base]
    return value


def _our_colour(index):
    return None if index is None else graphics.FG_BG_256[int(index)]


def pyte_rows(output, width=WIDTH, height=HEIGHT):
    """The rows a terminal of ``width`` x ``height`` shows after ``output`` (its
    history, then its screen): each a list of (character, style) cells.

    The page's newline also returns to column 0 (a terminal's ``onlcr``): pyte's
    LNM mode; xterm reads ``CSI s``/``CSI u`` as ESC 7/ESC 8, which pyte lacks."""
    screen = pyte.HistoryScreen(width, height, history=100000)
    screen.set_mode(pyte.modes.LNM)
    pyte.Stream(screen).feed(output.replace("\x1b[s", "\x1b7").replace("\x1b[u", "\x1b8"))
    lines = list(screen.history.top) + [screen.buffer[y] for y in range(height)]
    rows = []
    for line in lines:
        row = []
        for x in range(width):
            c = line[x]
            row.append((c.data, (_pyte_colour(c.fg), _pyte_colour(c.bg), c.bold, c.italics, c.underscore,
                                 c.strikethrough, c.reverse)))
        rows.append(row)
    return trimmed(rows)


def style_of(names):
    """The style a page's classes stand for (reverse video un-swapped)."""
    fg = bg = None
    flags = dict.fromkeys(("a-b", "a-i", "a-u", "a-s", "a-r"), False)
    for name in names.split():
        if name.startswith("a-fg-"):
            fg = name[5:]
        elif name.startswith("a-bg-"):
            bg = name[5:]
        else:
            flags[name] = True
    if flags["a-r"]:
        fg, bg = bg, fg
    return (_our_colour(fg), _our_colour(bg), flags["a-b"], flags["a-i"], flags["a-u"], flags["a-s"], flags["a-r"])


class _Rows(html.parser.HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.rows, self.classes = [], []

    def handle_starttag(self, tag, attrs):
        names = dict(attrs).get("class", "")
        if names == "ln":
            self.rows.append([])
        self.classes.append(names)

    def handle_endtag(self, tag):
        self.classes.pop()

    def handle_data(self, data):
        names = self.classes[-1] if self.classes and self.classes[-1] != "ln" else ""
        self.rows[-1].extend((ch, names) for ch in data if ch != "\n")


def page_rows(markup):
    """The rows of the page's ``#output`` (its inner HTML) as (character, style) cells."""
    parser = _Rows()
    parser.feed(markup)
    return trimmed([[(ch, style_of(names)) for ch, names in row] for row in parser.rows])


def trimmed(rows):
    """Rows without their trailing plain blanks, and without empty rows at the end."""
    out = []
    for row in rows:
        row = list(row)
        while row and row[-1] == (" ", DEFAULT):
            row.pop()
        out.append(row)
    while out and not out[-1]:
        out.pop()
    return out


def text_of(rows):
    return ["".join(ch for ch, _ in row) for row in rows]


def assert_same(page, oracle):
    """Line by line, then cell style by cell style: the page shows what the terminal shows."""
    assert text_of(page) == text_of(oracle)
    for y, (ours, theirs) in enumerate(zip(page, oracle)):
        for x, (a, b) in enumerate(zip(ours, theirs)):
            assert a == b, "row %d column %d: page %r, terminal %r" % (y, x, a, b)
