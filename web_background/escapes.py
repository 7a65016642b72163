"""The parser half of the page's terminal (``terminal.py`` is the screen): how a
job's output splits into text, control characters and escape sequences, what
an SGR sequence does to the style, the palette and the style's CSS classes.

``static/terminal.js`` implements the very same; ``terminal.py``'s docstring is
the specification of both.  Nothing here keeps state.
"""

import re
from functools import lru_cache
from typing import List, Optional, Tuple

# One token: an escape sequence (CSI; a string: OSC, DCS, SOS, PM, APC, ended by
# BEL or ST, or cut short by ESC or a newline; ESC, intermediates and a final),
# complete or not, or one control character (tab included). Text between tokens
# is printable.
_ESCAPE = r"\x1b(?:\[[ -?]*[@-~]?|[\]PX^_][^\x07\x1b\n]*(?:\x07|\x1b\\)?|[ -/]*[0-~]?)"
TOKEN = re.compile(_ESCAPE + r"|[\x00-\x1f\x7f-\x9f]")
ESCAPES = re.compile(_ESCAPE)
SGR_PARAMS = re.compile(r"[0-9;:]*\Z")
CURSOR_PARAMS = re.compile(r"[0-9;]*\Z")
BIG = 10 ** 8  # a cursor parameter of more than 8 digits counts as this much (every move is clamped anyway)

# The xterm palette: 0-15 chosen to read well on the page's dark background,
# 16-231 a 6x6x6 cube, 232-255 greys.
_BASE = ["#000000", "#cd3131", "#0dbc79", "#e5e510", "#2472c8", "#bc3fbc", "#11a8cd", "#e5e5e5",
         "#666666", "#f14c4c", "#23d18b", "#f5f543", "#3b8eea", "#d670d6", "#29b8db", "#ffffff"]
_LEVELS = (0, 95, 135, 175, 215, 255)
PALETTE: List[str] = _BASE + ["#%02x%02x%02x" % (_LEVELS[i // 36], _LEVELS[i // 6 % 6], _LEVELS[i % 6])
                              for i in range(216)] + ["#%02x%02x%02x" % ((8 + 10 * i,) * 3) for i in range(24)]

# fg, bg, bold, italic, underline, reverse, strike-through
Style = Tuple[Optional[int], Optional[int], bool, bool, bool, bool, bool]
PLAIN: Style = (None, None, False, False, False, False, False)


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


@lru_cache(maxsize=1024)  # pure, and output repeats its few styles a great many times
def classes(style: Style) -> str:
    """The CSS classes of a style ("" for the plain one). Reverse video swaps the
    colour classes and adds ``a-r`` (the default colours swapped, which the
    colour classes override)."""
    fg, bg, bold, italic, underline, reverse, strike = style
    if reverse:
        fg, bg = bg, fg
    names = []
    if fg is not None:
        names.append("a-fg-%d" % fg)
    if bg is not None:
        names.append("a-bg-%d" % bg)
    for on, name in ((bold, "a-b"), (italic, "a-i"), (underline, "a-u"), (strike, "a-s"), (reverse, "a-r")):
        if on:
            names.append(name)
    return " ".join(names)


def _number(field: str) -> int:
    """An SGR parameter's value: empty is 0; more than 8 digits (or not digits) is no valid value."""
    if not field:
        return 0
    return int(field) if len(field) <= 8 and field.isascii() and field.isdigit() else -1


def cursor_numbers(params: str) -> List[int]:
    """The numbers of a cursor sequence's parameters (only digits and ``;``): empty is 0."""
    return [(int(f) if len(f) <= 8 else BIG) if f else 0 for f in params.split(";")]


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


_FLAGS = {1: (2, True), 3: (3, True), 4: (4, True), 7: (5, True), 9: (6, True),
          22: (2, False), 23: (3, False), 24: (4, False), 27: (5, False), 29: (6, False)}


@lru_cache(maxsize=4096)
def apply_sgr(style: Style, params: str) -> Style:
    """The style after ``ESC [ params m``."""
    new = list(style)
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
                if sub[0] in (38, 48) and colour is not None:
                    new[sub[0] == 48] = colour
            elif sub[0] == 4:
                new[4] = sub[1] != 0
            continue
        code = _number(field)
        if code == 0:
            new = list(PLAIN)
        elif code in _FLAGS:
            index, on = _FLAGS[code]
            new[index] = on
        elif 30 <= code <= 37:
            new[0] = code - 30
        elif 90 <= code <= 97:
            new[0] = code - 90 + 8
        elif code == 39:
            new[0] = None
        elif 40 <= code <= 47:
            new[1] = code - 40
        elif 100 <= code <= 107:
            new[1] = code - 100 + 8
        elif code == 49:
            new[1] = None
        elif code in (38, 48, 58):
            taken, colour = _colour([_number(v) for v in fields[i:i + 4]])
            i += taken
            if colour is not None and code != 58:
                new[code == 48] = colour
    return tuple(new)  # type: ignore[return-value]


def complete(token: str) -> bool:
    """Whether an escape sequence that reaches the end of the text is finished."""
    if len(token) < 2:
        return False
    if token[1] == "[":
        return len(token) > 2 and "@" <= token[-1] <= "~"
    if token[1] in "]PX^_":
        return token.endswith("\x07") or (len(token) > 3 and token.endswith("\x1b\\"))
    return "0" <= token[-1] <= "~"
