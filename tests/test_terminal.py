"""The terminal model of the job page (web_background/terminal.py): unit tests of
each rule, and properties checked against a character-by-character reference of
the spec."""
import html
import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from web_background.terminal import (PALETTE, PLAIN, Terminal, apply_sgr, classes, nearest_colour, palette_css,
                                     render)

pytestmark = pytest.mark.stores("memory")  # no store involved

ESC = "\x1b"
OUR_TAG = re.compile(r'</span>|<span class="ln">|<span class="a-[a-z0-9 -]+">')


def examples(n):
    return settings(max_examples=n, deadline=None, derandomize=True, database=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def shown(text, max_lines=100):
    """The text a terminal shows after ``text``."""
    return Terminal(max_lines).feed(text).text()


def runs(text):
    """Each line's (classes, text) runs."""
    return Terminal().feed(text).lines()


def strip_tags(markup):
    return html.unescape(re.sub(r"<[^>]*>", "", markup))


# -- the line buffer -------------------------------------------------------------------


def test_plain_text_is_shown_as_it_is():
    assert shown("hello\nworld") == "hello\nworld"


def test_a_newline_ends_the_line():
    assert Terminal().feed("a\nb\n").lines() == [[("", "a")], [("", "b")], []]


def test_a_carriage_return_goes_back_to_the_start_of_the_line_and_overwrites():
    assert shown("hello\rj") == "jello"


def test_a_progress_bar_redrawn_after_carriage_returns_is_one_line():
    bar = "".join("\r%4d%%|%-10s|" % (i * 10, "#" * i) for i in range(11))
    assert shown("start\n" + bar + "\ndone\n") == "start\n 100%|##########|\ndone\n"


def test_carriage_return_newline_is_a_plain_newline():
    assert shown("one\r\ntwo\r\n") == "one\ntwo\n"


def test_a_backspace_moves_back_one_column_and_never_before_the_start():
    assert shown("abc\b\bX") == "aXc"
    assert shown("a\b\b\b\bZ") == "Z"


def test_a_backspace_does_not_go_back_to_the_previous_line():
    assert shown("ab\n\bc") == "ab\nc"


def test_a_shorter_redraw_leaves_the_end_of_the_longer_line():
    assert shown("long line\rshort") == "shortline"


def test_other_control_characters_are_dropped_and_tabs_kept():
    assert shown("a\x00b\x07c\x7fd\x85e\x9bf\tg") == "abcdef\tg"


def test_one_code_point_is_one_column():
    assert shown("\U0001F600b\bX") == "\U0001F600X"


# -- escape sequences ---------------------------------------------------------------------


def test_sgr_colours_become_classes():
    assert runs("a\x1b[31mred\x1b[0mb") == [[("", "a"), ("a-fg-1", "red"), ("", "b")]]


@pytest.mark.parametrize("params, names", [
    ("31", "a-fg-1"), ("91", "a-fg-9"), ("44", "a-bg-4"), ("104", "a-bg-12"), ("38;5;196", "a-fg-196"),
    ("48;5;21", "a-bg-21"), ("38:5:196", "a-fg-196"), ("1", "a-b"), ("3", "a-i"), ("4", "a-u"), ("4:3", "a-u"),
    ("1;3;4;31;42", "a-fg-1 a-bg-2 a-b a-i a-u"), ("", ""), ("0", ""), ("31;0", ""), ("31;39", ""),
    ("42;49", ""), ("1;22", ""), ("3;23", ""), ("4;24", ""), ("4:0", ""), ("2;5;7;8;9", ""), ("38;5;256", ""),
    ("38;5", ""), ("38;2;1;2", ""), ("38;1;31", "a-fg-1"), ("58;5;1;31", "a-fg-1"),
    ("99999999999999999999;31", "a-fg-1"),
])
def test_sgr_parameters_set_these_classes(params, names):
    assert classes(apply_sgr(PLAIN, params)) == names


def test_truecolour_becomes_the_nearest_of_the_256_colours():
    assert classes(apply_sgr(PLAIN, "38;2;255;0;0")) == "a-fg-196"
    assert classes(apply_sgr(PLAIN, "48;2;0;0;255")) == "a-bg-21"
    assert classes(apply_sgr(PLAIN, "38:2::255:135:0")) == "a-fg-208"
    assert classes(apply_sgr(PLAIN, "38:2:255:135:0")) == "a-fg-208"
    assert classes(apply_sgr(PLAIN, "38;2;128;128;128")) == "a-fg-244"  # a grey is nearer than the cube
    assert classes(apply_sgr(PLAIN, "38;2;300;0;0")) == ""


def test_nearest_colour_is_the_palette_entry_at_the_least_distance():
    def rgb(i):
        return [int(PALETTE[i][k:k + 2], 16) for k in (1, 3, 5)]

    for colour in [(0, 0, 0), (255, 255, 255), (1, 2, 3), (100, 200, 50), (115, 115, 115), (250, 10, 128)]:
        best = min(sum((a - b) ** 2 for a, b in zip(rgb(i), colour)) for i in range(16, 256))
        assert sum((a - b) ** 2 for a, b in zip(rgb(nearest_colour(*colour)), colour)) == best


def test_the_style_carries_over_lines_until_reset():
    assert runs("\x1b[32mone\ntwo\x1b[0m\nthree") == [[("a-fg-2", "one")], [("a-fg-2", "two")], [("", "three")]]


def test_an_overwrite_takes_the_style_of_the_new_text():
    assert runs("abc\r\x1b[31mX") == [[("a-fg-1", "X"), ("", "bc")]]


@pytest.mark.parametrize("sequence", [
    "\x1b[2K", "\x1b[K", "\x1b[1;1H", "\x1b[2J", "\x1b[?25l", "\x1b[5A", "\x1b[>4;1m", "\x1b[1 m",
    "\x1b]0;a title\x07", "\x1b]8;;http://evil/\x1b\\", "\x1b]8;;javascript:alert(1)\x07", "\x1bP1$r\x1b\\",
    "\x1b_apc\x1b\\", "\x1b^pm\x07", "\x1bXsos\x1b\\", "\x1b(B", "\x1b7", "\x1b8", "\x1b=", "\x1bc", "\x1b\\",
])
def test_other_escape_sequences_are_dropped(sequence):
    assert runs("a" + sequence + "b") == [[("", "ab")]]


def test_an_osc_8_link_leaves_only_its_text():
    assert shown("\x1b]8;;http://evil/\x1b\\click\x1b]8;;\x1b\\ here") == "click here"


def test_a_newline_ends_an_unterminated_escape_string():
    assert shown("a\x1b]0;title\nb") == "a\nb"


def test_an_escape_cut_short_by_another_character_is_dropped_and_the_character_kept():
    assert shown("a\x1b[12\x01b") == "ab"
    assert shown("a\x1b[12\x1b[31mb") == "ab"
    assert shown("a\x1b\x01b") == "ab"


def test_an_escape_split_between_two_pieces_is_read_as_one():
    term = Terminal().feed("a\x1b[3").feed("1mred")
    assert term.lines() == [[("", "a"), ("a-fg-1", "red")]]
    term = Terminal().feed("a\x1b]8;;http://ev").feed("il/\x1b").feed("\\click")
    assert term.text() == "aclick"


def test_a_carriage_return_ending_one_piece_rewrites_the_line_with_the_next():
    assert Terminal().feed(" 10%|#\r").feed(" 20%|##").text() == " 20%|##"


def test_a_lone_escape_at_the_end_waits_for_the_next_piece():
    term = Terminal().feed("a\x1b")
    assert term.text() == "a"
    assert term.feed("[1mb").lines() == [[("", "a"), ("a-b", "b")]]


# -- the HTML ---------------------------------------------------------------------------------


def test_html_is_a_span_per_line_with_styled_spans_and_no_style_attributes():
    markup = Terminal().feed("a\x1b[31m<red>\x1b[0m\n&").html()
    assert markup == ('<span class="ln">a<span class="a-fg-1">&lt;red&gt;</span>\n</span>'
                      '<span class="ln">&amp;</span>')


def test_html_of_nothing_is_one_empty_line():
    assert Terminal().html() == '<span class="ln"></span>'


def test_the_palette_css_has_a_rule_for_each_of_the_256_colours_fg_and_bg():
    css = palette_css()
    for i in range(256):
        assert ".a-fg-%d{color:#" % i in css and ".a-bg-%d{background-color:#" % i in css
    assert css.count("{") == 512


# -- the newest lines only -----------------------------------------------------------------


def test_only_the_newest_lines_are_kept_and_the_others_counted():
    term = Terminal(max_lines=3).feed("".join("%d\n" % i for i in range(10)))
    assert term.text() == "8\n9\n" and term.hidden == 8


def test_render_skips_what_it_would_drop_but_keeps_the_style_it_leaves():
    text = "\x1b[31m" + "".join("%d\n" % i for i in range(10)) + "end"
    term = render(text, max_lines=3)
    assert term.lines() == [[("a-fg-1", "8")], [("a-fg-1", "9")], [("a-fg-1", "end")]]
    assert term.hidden == 8


def test_a_terminal_of_one_line_keeps_only_the_cursors_line():
    term = Terminal(max_lines=1).feed("a\nb\nc")
    assert term.text() == "c" and term.hidden == 2


def test_a_million_characters_render_in_well_under_a_second():
    import time

    text = "".join("\x1b[31mline %05d\x1b[0m %s\n" % (i, "x" * 30) for i in range(20000))
    started = time.perf_counter()
    term = render(text)
    html_ = term.html()
    assert time.perf_counter() - started < 1.0
    assert term.hidden == 20000 - 1999 and html_.count('<span class="ln">') == 2000


# -- resuming elsewhere (the page's script goes on from the server's rendering) -------------


def test_resume_brings_a_fresh_terminal_to_the_same_line_cursor_and_style():
    term = Terminal().feed("old\n\x1b[1mbold\x1b[0m plain text\r\x1b[32mgr\x1b[38;2")
    resumed = Terminal().feed(term.resume())
    assert resumed.lines() == term.lines()[-1:]
    term.feed(";255;0;0mX\n")
    resumed.feed(";255;0;0mX\n")
    assert resumed.lines() == term.lines()[-2:]


# -- properties ----------------------------------------------------------------------------------

PIECES = ["a", "b", "Z", " ", "\u00e9", "\U0001F600", "<", ">", "&", '"', "'", "\t", "\n", "\r", "\b", "\r\n",
          ESC, "[", "]", "\\", "\x07", "m", ";", ":", "0", "1", "2", "3", "4", "5", "8", "9", "?", "(", "P", "_",
          "\x00", "\x01", "\x7f", "\x9b", "\x85", "\x1b[31m", "\x1b[0m", "\x1b[1;4;38;5;200m", "\x1b[38;2;10;200;30m",
          "\x1b[48:2::1:2:3m", "\x1b]8;;http://evil/\x1b\\", "\x1b]0;title\x07", "\x1b[2K", "\x1b[3A", "\x1bP",
          "<script>alert(1)</script>", "<img src=x onerror=alert(1)>", "<a href='http://evil/'>x</a>"]
outputs = st.lists(st.one_of(st.sampled_from(PIECES), st.text(max_size=4)), max_size=40).map("".join)
plain_outputs = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters=[chr(c) for c in range(32)
                                                                                          if c not in (9, 10)]
                                      + [chr(c) for c in range(0x7f, 0xa0)]))


def reference(text):
    """The spec, one character at a time: each line's cells as (character, classes)."""
    lines, cells, col, style, state, params = [], [], 0, PLAIN, "ground", ""
    i = 0
    while i < len(text):
        ch = text[i]
        again = False
        if state == "ground":
            if ch == ESC:
                state = "esc"
            elif ch == "\n":
                lines.append(cells)
                cells, col = [], 0
            elif ch == "\r":
                col = 0
            elif ch == "\b":
                col = max(0, col - 1)
            elif ch == "\t" or not (ord(ch) < 32 or 0x7f <= ord(ch) <= 0x9f):
                cell = (ch, classes(style))
                if col < len(cells):
                    cells[col] = cell
                else:
                    cells.append(cell)
                col += 1
        elif state in ("esc", "esc-intermediate"):
            if state == "esc" and ch == "[":
                state, params = "csi", ""
            elif state == "esc" and ch in "]PX^_":
                state = "string"
            elif " " <= ch <= "/":
                state = "esc-intermediate"
            elif "0" <= ch <= "~":
                state = "ground"
            else:
                state, again = "ground", True
        elif state == "csi":
            if " " <= ch <= "?":
                params += ch
            elif "@" <= ch <= "~":
                state = "ground"
                if ch == "m" and re.fullmatch(r"[0-9;:]*", params):
                    style = apply_sgr(style, params)
            else:
                state, again = "ground", True
        elif state == "string":
            if ch == "\x07":
                state = "ground"
            elif ch == ESC:
                state = "string-esc"
            elif ch == "\n":
                state, again = "ground", True
        elif state == "string-esc":
            if ch == "\\":
                state = "ground"
            else:
                state, again = "esc", True
        if not again:
            i += 1
    return lines + [cells]


def cells_of(term):
    return [[(ch, names) for names, text in line for ch in text] for line in term.lines()]


@given(outputs)
@examples(400)
def test_the_renderer_follows_the_spec_character_by_character(text):
    assert cells_of(Terminal(max_lines=10 ** 6).feed(text)) == reference(text)


@given(outputs, st.lists(st.integers(0, 200), max_size=6))
@examples(300)
def test_pieces_render_as_the_whole_wherever_the_output_is_split(text, cuts):
    whole = Terminal(max_lines=4).feed(text)
    pieces = Terminal(max_lines=4)
    last = 0
    for cut in sorted(set(c for c in cuts if c <= len(text))) + [len(text)]:
        pieces.feed(text[last:cut])
        last = cut
    assert pieces.lines() == whole.lines() and pieces.hidden == whole.hidden
    assert pieces.html() == whole.html()


@given(outputs, st.integers(1, 5))
@examples(300)
def test_render_is_the_same_as_feeding_everything(text, max_lines):
    fed = Terminal(max_lines).feed(text)
    rendered = render(text, max_lines)
    assert rendered.lines() == fed.lines() and rendered.hidden == fed.hidden
    assert rendered.resume() == fed.resume()


@given(outputs, outputs)
@examples(300)
def test_resume_then_more_output_is_the_same_as_the_whole_output(before, after):
    term = Terminal().feed(before)
    resumed = Terminal().feed(term.resume())
    assert "\n" not in term.resume()
    term.feed(after)
    resumed.feed(after)
    assert resumed.lines() == term.lines()[len(term.lines()) - len(resumed.lines()):]


@given(outputs)
@examples(400)
def test_html_holds_no_tag_but_its_own_and_no_escape_character(text):
    markup = Terminal().feed(text).html()
    assert all(OUR_TAG.fullmatch(tag) for tag in re.findall(r"<[^>]*>", markup)), markup
    assert "style=" not in markup and "<a" not in markup
    visible = strip_tags(markup)
    assert ESC not in visible and not re.search(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]", visible)
    for tag in re.findall(r"<[^>]*>", text):  # markup from the output is text, never a tag
        assert tag not in re.findall(r"<[^>]*>", markup) or OUR_TAG.fullmatch(tag)


@given(plain_outputs)
@examples(300)
def test_plain_text_without_control_characters_renders_to_itself_escaped(text):
    markup = Terminal(max_lines=10 ** 6).feed(text).html()
    lines = text.split("\n")
    assert markup == "".join('<span class="ln">%s\n</span>' % html.escape(line) for line in lines[:-1]) + \
        '<span class="ln">%s</span>' % html.escape(lines[-1])
    assert strip_tags(markup) == text
