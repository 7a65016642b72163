"""The terminal model of the job page (web_background/terminal.py): unit tests of
each rule, and properties checked against a character-by-character reference of
the spec."""
import html
import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from web_background.terminal import (HEIGHT, PALETTE, PLAIN, WIDTH, Terminal, apply_sgr, classes, nearest_colour,
                                     palette_css, render)

pytestmark = pytest.mark.stores("memory")  # no store involved

ESC = "\x1b"
OUR_TAG = re.compile(r'</span>|<span class="ln">|<span class="a-[a-z0-9 -]+">')


def examples(n):
    return settings(max_examples=n, deadline=None, derandomize=True, database=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def shown(text, max_lines=100, width=None, height=None):
    """The text a terminal shows after ``text``."""
    return Terminal(max_lines, width, height).feed(text).text()


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


def test_other_control_characters_are_dropped():
    assert shown("a\x00b\x07c\x7fd\x85e\x9bf\x0bg\x0ch") == "abcdefgh"


def test_one_code_point_is_one_column():
    assert shown("\U0001F600b\bX") == "\U0001F600X"


# -- the cursor and the screen -------------------------------------------------------------


def test_a_tab_goes_to_the_next_multiple_of_8_and_keeps_what_it_passes():
    assert shown("a\tb\n12345678\tc\nabcdefghij\r\tX") == "a       b\n12345678        c\nabcdefghXj"


def test_a_tab_stops_at_the_last_column():
    assert shown("abc\t\t\tX", width=10, height=3) == "abc      X"


def test_cursor_up_and_down_move_between_rows_in_the_same_column():
    assert shown("one\ntwo\nthree\x1b[2AX\x1b[BY") == "one  X\ntwo   Y\nthree"


def test_cursor_forward_and_back_move_within_the_row():
    assert shown("abcdef\r\x1b[3CX\x1b[2DY") == "abYXef"
    assert shown("ab\x1b[4Cc") == "ab    c"  # the cells passed over are blanks


def test_cursor_next_and_previous_line_go_to_column_0():
    assert shown("abc\ndef\x1b[FX\x1b[EY") == "Xbc\nYef"


def test_cursor_to_column_row_and_position_count_from_1():
    assert shown("abcdef\x1b[3GX") == "abXdef"
    assert shown("a\nb\nc\x1b[1dX") == "aX\nb\nc"
    assert shown("a\nb\nc\x1b[2;3HX\x1b[fY\x1b[;2fZ") == "YZ\nb X\nc"


def test_cursor_moves_stop_at_the_edges_of_the_screen():
    assert shown("a\x1b[99AX\x1b[99DY", width=10, height=3) == "YX"
    assert shown("a\x1b[99BX\x1b[99CY", width=10, height=3) == "a\n\n X" + " " * 7 + "Y"
    assert shown("\x1b[99;99HZ", width=10, height=3) == "\n\n" + " " * 9 + "Z"


def test_a_huge_parameter_is_clamped_not_a_huge_row():
    assert shown("\x1b[99999999999999CX") == " " * (WIDTH - 1) + "X"


def test_erase_in_line_to_the_end_to_the_cursor_and_all_of_it():
    assert shown("Done: 3000 files found so far\r\x1b[KDone: 3000 files") == "Done: 3000 files"
    assert shown("abcdef\x1b[3G\x1b[1K") == "   def"
    assert shown("abcdef\x1b[3G\x1b[2KX") == "  X"
    assert shown("abcdef\r\x1b[0K") == ""


def test_a_pip_style_redraw_erases_the_longer_tail():
    assert shown("eta 0:00:01\r\x1b[2Keta 0:00:0") == "eta 0:00:0"


def test_erase_in_display_below_above_and_all_keeps_the_cursor():
    assert shown("a\nbcd\ne\x1b[2;2H\x1b[J") == "a\nb\n"
    assert shown("a\nbcd\ne\x1b[2;2H\x1b[1JX") == "\n Xd\ne"
    assert shown("a\nbcd\ne\x1b[2;2H\x1b[2JX") == "\n X\n"


def test_save_and_restore_the_cursor_and_its_style_both_ways():
    assert runs("\x1b[31m\x1b7a\nb\x1b[0m\x1b8X") == [[("a-fg-1", "X")], [("a-fg-1", "b")]]
    assert shown("ab\x1b[scd\nef\x1b[uX") == "abXd\nef"
    assert shown("ab\x1b8X") == "Xb"  # nothing saved: the top left


def test_a_docker_pull_like_block_updates_each_layer_in_place():
    layers = ["a1", "b2", "c3"]
    text = "".join("%s: Waiting\n" % layer for layer in layers)
    for i, layer in enumerate(layers):
        up = len(layers) - i
        text += "\x1b[%dA\x1b[2K\r%s: Pull complete\x1b[%dB\r" % (up, layer, up)
    text += "\x1b7Status: downloading\x1b8\x1b[1GStatus: done\x1b[K\n"
    assert shown(text) == "a1: Pull complete\nb2: Pull complete\nc3: Pull complete\nStatus: done\n"


def test_nested_bars_redrawn_with_cursor_up_stay_two_rows():
    text = ""
    for outer in range(3):
        for inner in range(5):
            text += "\router %d/3\n\rinner %d/5\x1b[A" % (outer, inner)
        text += "\n\r" + " " * 10 + "\r\x1b[A"  # the inner bar clears itself (leave=False)
    text += "\router 3/3\n"
    assert shown(text) == "outer 3/3\n" + " " * 10


def test_rows_that_scroll_off_the_screen_cannot_be_changed_any_more():
    term = Terminal(width=10, height=3).feed("1\n2\n3\n4\r\x1b[9AX")
    assert term.text() == "1\nX\n3\n4"  # row 2 is the screen's top now


def test_the_last_column_wraps_to_the_next_row_only_when_more_comes():
    assert shown("abcdefghij", width=10, height=3) == "abcdefghij"
    assert shown("abcdefghijk", width=10, height=3) == "abcdefghij\nk"
    assert shown("abcdefghij\rX", width=10, height=3) == "Xbcdefghij"
    assert shown("abcdefghij\x1b[DX", width=10, height=3) == "abcdefghXj"


def test_a_newline_at_the_bottom_scrolls_the_screen_into_the_history():
    term = Terminal(width=10, height=3).feed("".join("%d\n" % i for i in range(6)))
    assert term.text() == "0\n1\n2\n3\n4\n5\n" and term.hidden == 0
    assert term.state()["rows"] == [[("", "4")], [("", "5")], []]


def test_an_apt_style_status_row_stays_apart_from_the_scrolling_text():
    rows = 5
    text = "\n\x1b7\x1b[0;%dr\x1b8\x1b[1A" % (rows - 1)
    for i in range(8):
        text += "Unpacking p%d ...\n" % i
        text += "\x1b7\x1b[%d;0f\x1b[42m\x1b[30mProgress: [%3d%%]\x1b[49m\x1b[39m\x1b8" % (rows, i * 12)
    term = Terminal(width=40, height=rows).feed(text)
    lines = term.text().split("\n")
    assert lines[-1] == "Progress: [ 84%]"
    assert [line for line in lines[:-1] if line] == ["Unpacking p%d ..." % i for i in range(8)]
    assert term.lines()[-1] == [("a-fg-0 a-bg-2", "Progress: [ 84%]")]


def test_a_scroll_region_away_from_the_top_drops_what_scrolls_out_of_it():
    term = Terminal(width=10, height=4).feed("head\n\x1b[2;3r\x1b[2;1Ha\nb\nc\nd")
    assert term.text() == "head\nc\nd" and term.hidden == 0


def test_a_region_of_one_row_is_refused():
    assert shown("a\nb\x1b[2;2rX") == "a\nbX"


def test_reverse_video_and_strike_through_are_kept():
    assert runs("\x1b[7mrev\x1b[27m \x1b[9mgone\x1b[29m") == [[("a-r", "rev"), ("", " "), ("a-s", "gone")]]


# -- escape sequences ---------------------------------------------------------------------


def test_sgr_colours_become_classes():
    assert runs("a\x1b[31mred\x1b[0mb") == [[("", "a"), ("a-fg-1", "red"), ("", "b")]]


@pytest.mark.parametrize("params, names", [
    ("31", "a-fg-1"), ("91", "a-fg-9"), ("44", "a-bg-4"), ("104", "a-bg-12"), ("38;5;196", "a-fg-196"),
    ("48;5;21", "a-bg-21"), ("38:5:196", "a-fg-196"), ("1", "a-b"), ("3", "a-i"), ("4", "a-u"), ("4:3", "a-u"),
    ("1;3;4;31;42", "a-fg-1 a-bg-2 a-b a-i a-u"), ("", ""), ("0", ""), ("31;0", ""), ("31;39", ""),
    ("42;49", ""), ("1;22", ""), ("3;23", ""), ("4;24", ""), ("4:0", ""), ("2;5;8", ""), ("38;5;256", ""),
    ("38;5", ""), ("38;2;1;2", ""), ("38;1;31", "a-fg-1"), ("58;5;1;31", "a-fg-1"), ("9", "a-s"), ("7", "a-r"),
    ("9;29", ""), ("7;27", ""), ("7;31", "a-bg-1 a-r"), ("7;31;42", "a-fg-2 a-bg-1 a-r"), ("1;7;9", "a-b a-s a-r"),
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
    "\x1b[?25l", "\x1b[?1049h", "\x1b[>4;1m", "\x1b[1 m", "\x1b[?2K", "\x1b[1;1 H", "\x1b[5L", "\x1b[3M",
    "\x1b[2P", "\x1b[4X", "\x1b[2@", "\x1b[6n", "\x1b[3S", "\x1b[1s", "\x1b[:u",
    "\x1b]0;a title\x07", "\x1b]8;;http://evil/\x1b\\", "\x1b]8;;javascript:alert(1)\x07", "\x1bP1$r\x1b\\",
    "\x1b_apc\x1b\\", "\x1b^pm\x07", "\x1bXsos\x1b\\", "\x1b(B", "\x1b#8", "\x1b=", "\x1bc", "\x1bM", "\x1bD",
    "\x1b\\",
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


def test_a_million_characters_render_within_a_second():
    import time

    text = "".join("\x1b[31mline %05d\x1b[0m %s\n" % (i, "x" * 30) for i in range(20000))
    started = time.perf_counter()
    term = render(text)
    html_ = term.html()
    assert time.perf_counter() - started < 1.0
    assert term.hidden == 20000 - 1999 and html_.count('<span class="ln">') == 2000


# -- resuming elsewhere (the page's script goes on from the server's rendering) -------------


def test_state_brings_a_fresh_terminal_to_the_same_screen_cursor_region_saved_cursor_and_style():
    term = Terminal(width=20, height=5).feed("old\n\x1b[1mbold\x1b[0m plain\x1b[2;4r\x1b[3;2H\x1b[7m\x1b7\x1b[0m"
                                             "\x1b[Hx\x1b[32mgr\x1b[38;2")
    resumed = Terminal.restore(term.state())
    assert resumed.lines() == term.lines() and resumed.state() == term.state()
    more = ";255;0;0mX\x1b8saved\n\n\n\nscrolled in the region\n"
    assert resumed.feed(more).lines() == term.feed(more).lines()


def test_state_is_json():
    import json

    state = Terminal(width=30, height=3).feed("a\x1b[31m\nb\x1b7\x1b[2;3r\x1b[").state()
    assert json.loads(json.dumps(state)) == json.loads(json.dumps(Terminal.restore(state).state()))


# -- properties ----------------------------------------------------------------------------------

CURSOR_PIECES = ["\x1b[A", "\x1b[2B", "\x1b[C", "\x1b[3D", "\x1b[E", "\x1b[2F", "\x1b[5G", "\x1b[2d", "\x1b[2;3H",
                 "\x1b[H", "\x1b[;4f", "\x1b[K", "\x1b[1K", "\x1b[2K", "\x1b[J", "\x1b[1J", "\x1b[2J", "\x1b7", "\x1b8",
                 "\x1b[s", "\x1b[u", "\x1b[2;3r", "\x1b[r", "\x1b[1;2r", "\x1b[0;9r", "\x1b[7m", "\x1b[9m", "\x1b[27m",
                 "\x1b[?25l", "\x1b[99999999999C", "\x1b[0;0H", "\x1b[3;1s", "\x1b[9A", "\x1b[9B", "\x1b[99d"]
PIECES = ["a", "b", "Z", " ", "\u00e9", "\U0001F600", "<", ">", "&", '"', "'", "\t", "\n", "\r", "\b", "\r\n",
          ESC, "[", "]", "\\", "\x07", "m", ";", ":", "0", "1", "2", "3", "4", "5", "7", "8", "9", "?", "(", "P",
          "_", "A", "H", "K", "r", "s", "u",
          "\x00", "\x01", "\x7f", "\x9b", "\x85", "\x1b[31m", "\x1b[0m", "\x1b[1;4;38;5;200m", "\x1b[38;2;10;200;30m",
          "\x1b[48:2::1:2:3m", "\x1b]8;;http://evil/\x1b\\", "\x1b]0;title\x07", "\x1b[3A", "\x1bP",
          "<script>alert(1)</script>", "<img src=x onerror=alert(1)>", "<a href='http://evil/'>x</a>"] + CURSOR_PIECES
outputs = st.lists(st.one_of(st.sampled_from(PIECES), st.text(max_size=4)), max_size=40).map("".join)
sizes = st.sampled_from([(None, None), (10, 4), (8, 2), (12, 3)])
plain_outputs = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters=[chr(c) for c in range(32)
                                                                                          if c != 10]
                                      + [chr(c) for c in range(0x7f, 0xa0)]))


class Reference:
    """The spec, one character at a time, cell by cell (a second reading of
    terminal.py's docstring, written apart from it)."""

    def __init__(self, width=None, height=None):
        self.w, self.h = width or WIDTH, height or HEIGHT
        self.history, self.rows = [], [[]]
        self.y = self.x = 0
        self.top, self.bottom = 0, self.h - 1
        self.saved, self.style = None, PLAIN

    def lines(self):
        return self.history + self.rows

    def row_at(self, y):
        self.y = y
        while len(self.rows) <= y:
            self.rows.append([])

    def newline(self):
        if self.y == self.bottom:
            gone = self.rows.pop(self.top)
            if self.top == 0:
                self.history.append(gone)
            self.rows.insert(self.bottom, [])
        elif self.y < self.h - 1:
            self.row_at(self.y + 1)

    def put(self, ch):
        if self.x == self.w:
            self.newline()
            self.x = 0
        row = self.rows[self.y]
        while len(row) < self.x:
            row.append((" ", ""))
        if self.x < len(row):
            row[self.x] = (ch, classes(self.style))
        else:
            row.append((ch, classes(self.style)))
        self.x += 1

    def erase_row(self, row, how):
        """0: the cells from the cursor on go; 1: the cells up to the cursor are
        blanks (all of the row: it is empty); 2: the row is empty."""
        if how == 0:
            row[:] = row[:self.x]
        elif how == 1:
            row[:] = [(" ", "")] * (self.x + 1) + row[self.x + 1:] if self.x + 1 < len(row) else []
        else:
            row.clear()

    def csi(self, params, final):
        if final == "m":
            if re.fullmatch(r"[0-9;:]*", params):
                self.style = apply_sgr(self.style, params)
            return
        if not re.fullmatch(r"[0-9;]*", params):
            return
        nums = [min(int(f), 10 ** 8) if f else 0 for f in params.split(";")]
        n = nums[0] or 1
        second = (nums[1] if len(nums) > 1 else 0) or None
        last_col, last_row = self.w - 1, self.h - 1
        if final in "AF":
            self.row_at(max(self.y - n, self.top if self.y >= self.top else 0))
        elif final in "BE":
            self.row_at(min(self.y + n, self.bottom if self.y <= self.bottom else last_row))
        elif final == "C":
            self.x = min(self.x + n, last_col)
        elif final == "D":
            self.x = max(min(self.x, last_col) - n, 0)
        elif final == "G":
            self.x = min(n - 1, last_col)
        elif final == "d":
            self.row_at(min(n - 1, last_row))
        elif final in "Hf":
            self.row_at(min(n - 1, last_row))
            self.x = min((second or 1) - 1, last_col)
        elif final == "K" and nums[0] in (0, 1, 2):
            self.erase_row(self.rows[self.y], nums[0])
        elif final == "J" and nums[0] in (0, 1, 2, 3):
            for i, row in enumerate(self.rows):
                if nums[0] >= 2 or (nums[0] == 0 and i > self.y) or (nums[0] == 1 and i < self.y):
                    row.clear()
            if nums[0] < 2:
                self.erase_row(self.rows[self.y], nums[0])
        elif final == "r":
            top, bottom = min(n, self.h), min(second or self.h, self.h)
            if top < bottom:
                self.top, self.bottom = top - 1, bottom - 1
                self.row_at(0)
                self.x = 0
        elif final in "su" and params == "":
            self.esc(final.replace("s", "7").replace("u", "8"))
        if final in "EF":
            self.x = 0

    def esc(self, final):
        if final == "7":
            self.saved = (self.y, self.x, self.style)
        elif final == "8":
            if self.saved is None:
                self.row_at(0)
                self.x = 0
            else:
                self.row_at(self.saved[0])
                self.x, self.style = self.saved[1], self.saved[2]


def reference(text, width=None, height=None):
    """Each row's cells as (character, classes) after ``text``, by the spec."""
    screen = Reference(width, height)
    state, params, intermediate = "ground", "", False
    i = 0
    while i < len(text):
        ch = text[i]
        again = False
        if state == "ground":
            if ch == ESC:
                state, intermediate = "esc", False
            elif ch == "\n":
                screen.newline()
                screen.x = 0
            elif ch == "\r":
                screen.x = 0
            elif ch == "\b":
                screen.x = max(0, min(screen.x, screen.w - 1) - 1)
            elif ch == "\t":
                screen.x = min((screen.x // 8 + 1) * 8, screen.w - 1)
            elif not (ord(ch) < 32 or 0x7f <= ord(ch) <= 0x9f):
                screen.put(ch)
        elif state == "esc":
            if not intermediate and ch == "[":
                state, params = "csi", ""
            elif not intermediate and ch in "]PX^_":
                state = "string"
            elif " " <= ch <= "/":
                intermediate = True
            elif "0" <= ch <= "~":
                state = "ground"
                if not intermediate:
                    screen.esc(ch)
            else:
                state, again = "ground", True
        elif state == "csi":
            if " " <= ch <= "?":
                params += ch
            elif "@" <= ch <= "~":
                state = "ground"
                screen.csi(params, ch)
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
                state, intermediate, again = "esc", False, True
        if not again:
            i += 1
    return screen.lines()


def cells_of(term):
    return [[(ch, names) for names, text in line for ch in text] for line in term.lines()]


@given(outputs, sizes)
@examples(600)
def test_the_renderer_follows_the_spec_character_by_character(text, size):
    assert cells_of(Terminal(10 ** 6, *size).feed(text)) == reference(text, *size)


@given(outputs, st.lists(st.integers(0, 200), max_size=6), sizes)
@examples(300)
def test_pieces_render_as_the_whole_wherever_the_output_is_split(text, cuts, size):
    whole = Terminal(4, *size).feed(text)
    pieces = Terminal(4, *size)
    last = 0
    for cut in sorted(set(c for c in cuts if c <= len(text))) + [len(text)]:
        pieces.feed(text[last:cut])
        last = cut
    assert pieces.lines() == whole.lines() and pieces.hidden == whole.hidden
    assert pieces.html() == whole.html() and pieces.state() == whole.state()


@given(outputs, st.integers(1, 5), sizes)
@examples(300)
def test_only_the_newest_rows_are_shown_and_the_rest_counted(text, max_lines, size):
    everything = Terminal(10 ** 6, *size).feed(text).lines()
    term = Terminal(max_lines, *size).feed(text)
    assert term.lines() == everything[-max_lines:] and term.hidden == len(everything) - len(term.lines())


LINE_PIECES = ["a", "bc", " ", "\t", "\n", "\n", "\n", "\r", "\b", "\x1b[31m", "\x1b[0m", "\x1b[1;7m", "\x1b[3",
               "\x00", "\U0001F600", "x" * 9, "\x1b[A", "\x1b7", "\x1b]0;t\x07"]
line_outputs = st.lists(st.sampled_from(LINE_PIECES), max_size=60).map("".join)


@given(st.one_of(outputs, line_outputs), st.integers(1, 8), sizes)
@examples(400)
def test_render_is_the_same_as_feeding_everything(text, max_lines, size):
    fed = Terminal(max_lines, *size).feed(text)
    rendered = render(text, max_lines, *size)
    assert rendered.lines() == fed.lines() and rendered.hidden == fed.hidden
    assert rendered.state() == fed.state()


@given(st.lists(st.sampled_from(LINE_PIECES[:-3] + ["\n"] * 6), min_size=20, max_size=80).map("".join),
       st.integers(3, 8),
       st.sampled_from([(10, 2), (8, 2), (12, 3), (30, 2)]))
@examples(300)
def test_render_of_lines_that_never_move_up_is_the_same_as_feeding_everything(text, max_lines, size):
    fed = Terminal(max_lines, *size).feed(text)
    rendered = render(text, max_lines, *size)
    assert rendered.lines() == fed.lines() and rendered.hidden == fed.hidden
    assert rendered.state() == fed.state()


@given(outputs, outputs, sizes)
@examples(300)
def test_a_terminal_restored_from_the_state_then_fed_more_shows_the_same(before, after, size):
    term = Terminal(10 ** 6, *size).feed(before)
    resumed = Terminal.restore(term.state(), 10 ** 6)
    term.feed(after)
    resumed.feed(after)
    assert resumed.lines() == term.lines()[len(term.lines()) - len(resumed.lines()):]
    assert resumed.state() == term.state()


@given(outputs, sizes)
@examples(400)
def test_html_holds_no_tag_but_its_own_and_no_escape_character(text, size):
    markup = Terminal(100, *size).feed(text).html()
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


def test_the_newest_100_rows_stay_editable_and_older_ones_do_not():
    text = "".join("row %d\n" % i for i in range(150)) + "\r"
    term = Terminal().feed(text + "\x1b[99AX")
    assert term.text().split("\n")[51] == "Xow 51"  # 99 rows above the cursor's: the screen's top row
    term = Terminal().feed(text + "\x1b[100AX")
    assert term.text().split("\n")[51] == "Xow 51" and "Xow 50" not in term.text()


def test_a_tty_jobs_whole_screen_stays_editable():
    term = render("".join("row %d\n" % i for i in range(60)) + "\x1b[H\x1b[2KTOP", width=120, height=40)
    assert term.text().split("\n")[20:22] == ["row 20", "TOP"]  # rows 21-60 are the screen
