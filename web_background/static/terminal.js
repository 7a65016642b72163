/* The terminal model of the job page (web_background/responses.py inlines it,
   with its nonce, before job.js): the same screen as web_background/terminal.py,
   whose docstring is the specification (escapes.py is its parser half).

   window.webBackgroundTerminal(maxLines, width, height) is fed output with
   feed(text); take() hands the page what changed since the last take: the rows
   that joined the history, the screen's rows (each with a dirty flag and the
   element the page keeps on it, row.el), and the rows whose elements must go.
   The model never touches the document: terminal_view.js draws one into a
   <pre> of rows, live. */
(function () {
  "use strict";

  var TOKEN = /\x1b(?:\[[ -?]*[@-~]?|[\]PX^_][^\x07\x1b\n]*(?:\x07|\x1b\\)?|[ -\/]*[0-~]?)|[\x00-\x1f\x7f-\x9f]/g;
  var SGR_PARAMS = /^[0-9;:]*$/;
  var CURSOR_PARAMS = /^[0-9;]*$/;
  var DIGITS = /^[0-9]+$/;
  var BIG = 100000000;
  var WIDTH = 1000, HEIGHT = 100;  // the screen of a job without a tty (terminal.py's WIDTH, HEIGHT)
  var LEVELS = [0, 95, 135, 175, 215, 255];
  var PLAIN = [null, null, false, false, false, false, false];  // fg, bg, bold, italic, underline, reverse, strike
  var FLAGS = {1: [2, true], 3: [3, true], 4: [4, true], 7: [5, true], 9: [6, true],
               22: [2, false], 23: [3, false], 24: [4, false], 27: [5, false], 29: [6, false]};

  function nearestColour(r, g, b) {
    function level(v) {
      var best = 0;
      for (var i = 0; i < LEVELS.length; i++) {
        if (Math.abs(v - LEVELS[i]) < Math.abs(v - LEVELS[best])) { best = i; }
      }
      return best;
    }
    var ri = level(r), gi = level(g), bi = level(b);
    var cube = Math.pow(LEVELS[ri] - r, 2) + Math.pow(LEVELS[gi] - g, 2) + Math.pow(LEVELS[bi] - b, 2);
    var grey = 0, greyDistance = -1;
    for (var i = 0; i < 24; i++) {
      var v = 8 + 10 * i, d = Math.pow(v - r, 2) + Math.pow(v - g, 2) + Math.pow(v - b, 2);
      if (greyDistance < 0 || d < greyDistance) { grey = i; greyDistance = d; }
    }
    return greyDistance < cube ? 232 + grey : 16 + 36 * ri + 6 * gi + bi;
  }

  function classesOf(style) {
    var fg = style[5] ? style[1] : style[0], bg = style[5] ? style[0] : style[1], names = [];
    if (fg !== null) { names.push("a-fg-" + fg); }
    if (bg !== null) { names.push("a-bg-" + bg); }
    if (style[2]) { names.push("a-b"); }
    if (style[3]) { names.push("a-i"); }
    if (style[4]) { names.push("a-u"); }
    if (style[6]) { names.push("a-s"); }
    if (style[5]) { names.push("a-r"); }
    return names.join(" ");
  }

  function number(field) {
    if (field === "") { return 0; }
    return field.length <= 8 && DIGITS.test(field) ? parseInt(field, 10) : -1;
  }

  function cursorNumbers(params) {
    return params.split(";").map(function (f) { return f === "" ? 0 : f.length <= 8 ? parseInt(f, 10) : BIG; });
  }

  // [how many values a 38/48/58 colour took after its code, the colour or null]
  function colour(values) {
    if (!values.length) { return [0, null]; }
    if (values[0] === 5) {
      if (values.length < 2) { return [1, null]; }
      return [2, values[1] >= 0 && values[1] <= 255 ? values[1] : null];
    }
    if (values[0] === 2) {
      if (values.length < 4) { return [values.length, null]; }
      var rgb = values.slice(1, 4), ok = rgb.every(function (v) { return v >= 0 && v <= 255; });
      return [4, ok ? nearestColour(rgb[0], rgb[1], rgb[2]) : null];
    }
    return [1, null];
  }

  function applySgr(style, params) {
    var s = style.slice(), fields = params.split(";"), i = 0, found;
    while (i < fields.length) {
      var field = fields[i];
      i += 1;
      if (field.indexOf(":") >= 0) {  // 38:5:N, 38:2:[space]:R:G:B, 4:N (underline styles)
        var sub = field.split(":").map(number);
        if (sub[0] === 38 || sub[0] === 48 || sub[0] === 58) {
          var rgb = sub[1] === 2 && sub.length >= 6;
          found = colour(rgb ? [2].concat(sub.slice(3, 6)) : sub.slice(1))[1];
          if (sub[0] !== 58 && found !== null) { s[sub[0] === 48 ? 1 : 0] = found; }
        } else if (sub[0] === 4) {
          s[4] = sub[1] !== 0;
        }
        continue;
      }
      var code = number(field);
      if (code === 0) { s = PLAIN.slice(); }
      else if (FLAGS.hasOwnProperty(code)) { s[FLAGS[code][0]] = FLAGS[code][1]; }
      else if (code >= 30 && code <= 37) { s[0] = code - 30; }
      else if (code >= 90 && code <= 97) { s[0] = code - 90 + 8; }
      else if (code === 39) { s[0] = null; }
      else if (code >= 40 && code <= 47) { s[1] = code - 40; }
      else if (code >= 100 && code <= 107) { s[1] = code - 100 + 8; }
      else if (code === 49) { s[1] = null; }
      else if (code === 38 || code === 48 || code === 58) {
        var taken = colour(fields.slice(i, i + 4).map(number));
        i += taken[0];
        if (code !== 58 && taken[1] !== null) { s[code === 48 ? 1 : 0] = taken[1]; }
      }
    }
    return s;
  }

  function complete(token) {
    var last = token.charAt(token.length - 1), kind = token.charAt(1);
    if (token.length < 2) { return false; }
    if (kind === "[") { return token.length > 2 && last >= "@" && last <= "~"; }
    if ("]PX^_".indexOf(kind) >= 0) {
      return last === "\x07" || (token.length > 3 && token.slice(-2) === "\x1b\\");
    }
    return last >= "0" && last <= "~";
  }

  // One row of cells; el is the page's element for it (set by the page, carried here).
  function Row() { this.chars = []; this.styles = []; this.dirty = true; this.el = null; }

  Row.prototype.clear = function () { this.chars = []; this.styles = []; this.dirty = true; };

  // [[classes, text], ...]: the runs of the row
  Row.prototype.runs = function () {
    var out = [], start = 0, chars = this.chars, styles = this.styles;
    for (var i = 1; i <= chars.length; i++) {
      if (i === chars.length || styles[i] !== styles[start]) {
        out.push([styles[start], chars.slice(start, i).join("")]);
        start = i;
      }
    }
    return out;
  };

  function Terminal(maxLines, width, height) {
    this.maxLines = maxLines;
    this.width = width || WIDTH;
    this.height = height || HEIGHT;
    this.done = [];    // rows that joined the history since take()
    this.gone = [];    // rows whose elements leave the page (scrolled away inside a region, or dropped)
    this.hidden = 0;   // rows of the history dropped before take() could hand them over
    this.rows = [new Row()];
    this.y = 0;
    this.x = 0;
    this.top = 0;
    this.bottom = this.height - 1;
    this.saved = null;
    this.style = PLAIN;
    this.classes = "";
    this.pending = "";  // an escape sequence whose end has not come yet
  }

  // A terminal whose screen is what terminal.py's Terminal.state() gave.
  Terminal.restore = function (state, maxLines) {
    var t = new Terminal(maxLines, state.width, state.height);
    t.rows = state.rows.map(function (runs) {
      var row = new Row();
      runs.forEach(function (run) {
        Array.from(run[1]).forEach(function (ch) { row.chars.push(ch); row.styles.push(run[0]); });
      });
      return row;
    });
    t.y = state.y; t.x = state.x; t.top = state.top; t.bottom = state.bottom;
    t.saved = state.saved;
    t.setStyle(state.style);
    t.pending = state.pending;
    return t;
  };

  Terminal.prototype.setStyle = function (style) {
    this.style = style;
    this.classes = classesOf(style);
  };

  Terminal.prototype.feed = function (text) {
    if (this.pending) { text = this.pending + text; this.pending = ""; }
    var pos = 0, m, token;
    TOKEN.lastIndex = 0;
    while ((m = TOKEN.exec(text)) !== null) {
      if (m.index > pos) { this.write(text.slice(pos, m.index)); }
      token = m[0];
      pos = TOKEN.lastIndex;
      if (token === "\n") { this.index(); this.x = 0; }
      else if (token === "\r") { this.x = 0; }
      else if (token === "\b") { this.x = Math.max(0, Math.min(this.x, this.width - 1) - 1); }
      else if (token === "\t") { this.x = Math.min((Math.floor(this.x / 8) + 1) * 8, this.width - 1); }
      else if (token.charAt(0) === "\x1b") {
        if (pos === text.length && !complete(token)) {
          // wait for the rest; a string's content is dropped anyway
          this.pending = "]PX^_".indexOf(token.charAt(1)) >= 0 && token.length > 1 ? token.slice(0, 2) : token;
        } else if (token.charAt(1) === "[") {
          this.csi(token.slice(2, -1), token.charAt(token.length - 1));
        } else if (token === "\x1b7") {
          this.save();
        } else if (token === "\x1b8") {
          this.restoreCursor();
        }
      }
    }
    if (pos < text.length) { this.write(text.slice(pos)); }
    return this;
  };

  Terminal.prototype.write = function (run) {
    var cells = Array.from(run), i = 0, width = this.width, names = this.classes;
    while (i < cells.length) {
      if (this.x >= width) { this.index(); this.x = 0; }
      var row = this.rows[this.y], x = this.x, n = Math.min(cells.length - i, width - x);
      for (var gap = row.chars.length; gap < x; gap++) { row.chars.push(" "); row.styles.push(""); }
      for (var k = 0; k < n; k++) { row.chars[x + k] = cells[i + k]; row.styles[x + k] = names; }
      row.dirty = true;
      i += n;
      this.x = x + n;
    }
  };

  Terminal.prototype.goToRow = function (y) {
    this.y = y;
    while (this.rows.length <= y) { this.rows.push(new Row()); }
  };

  Terminal.prototype.index = function () {
    if (this.y === this.bottom) {
      if (this.top === 0) {
        this.done.push(this.rows.shift());
        if (this.done.length > 2 * this.maxLines) {  // more than can be shown: drop the oldest
          var dropped = this.done.splice(0, this.done.length - this.maxLines);
          this.hidden += dropped.length;
          for (var i = 0; i < dropped.length; i++) { if (dropped[i].el) { this.gone.push(dropped[i]); } }
        }
      } else {
        this.gone.push(this.rows.splice(this.top, 1)[0]);
      }
      this.rows.splice(this.bottom, 0, new Row());
    } else if (this.y < this.height - 1) {
      this.goToRow(this.y + 1);
    }
  };

  Terminal.prototype.csi = function (params, final) {
    if (final === "m") {
      if (SGR_PARAMS.test(params)) { this.setStyle(applySgr(this.style, params)); }
      return;
    }
    if ("ABCDEFGdHfJKrsu".indexOf(final) < 0 || !CURSOR_PARAMS.test(params)) { return; }
    var numbers = cursorNumbers(params), n = numbers[0] || 1, i;
    var y = this.y, x = this.x, width = this.width, height = this.height;
    if (final === "A" || final === "F") {
      this.goToRow(Math.max(y - n, y >= this.top ? this.top : 0));
    } else if (final === "B" || final === "E") {
      this.goToRow(Math.min(y + n, y <= this.bottom ? this.bottom : height - 1));
    } else if (final === "C") {
      this.x = Math.min(x + n, width - 1);
    } else if (final === "D") {
      this.x = Math.max(Math.min(x, width - 1) - n, 0);
    } else if (final === "G") {
      this.x = Math.min(n, width) - 1;
    } else if (final === "d") {
      this.goToRow(Math.min(n, height) - 1);
    } else if (final === "H" || final === "f") {
      var column = numbers.length > 1 ? numbers[1] : 0;
      this.goToRow(Math.min(n, height) - 1);
      this.x = Math.min(column || 1, width) - 1;
    } else if (final === "K") {
      eraseInRow(this.rows[y], numbers[0], x);
    } else if (final === "J") {
      var how = numbers[0];
      if (how === 0 || how === 1) {
        for (i = how === 0 ? y + 1 : 0; i < (how === 0 ? this.rows.length : y); i++) { this.rows[i].clear(); }
        eraseInRow(this.rows[y], how, x);
      } else if (how === 2 || how === 3) {
        for (i = 0; i < this.rows.length; i++) { this.rows[i].clear(); }
      }
    } else if (final === "r") {
      var top = Math.min(n, height), bottom = Math.min(numbers.length > 1 && numbers[1] ? numbers[1] : height, height);
      if (top < bottom) {
        this.top = top - 1;
        this.bottom = bottom - 1;
        this.goToRow(0);
        this.x = 0;
      }
    } else if (params === "") {
      if (final === "s") { this.save(); } else { this.restoreCursor(); }
    }
    if (final === "E" || final === "F") { this.x = 0; }
  };

  function eraseInRow(row, how, x) {
    if (how === 0) {
      row.chars.length = Math.min(row.chars.length, x);
      row.styles.length = row.chars.length;
    } else if (how === 1) {
      if (x >= row.chars.length - 1) { row.chars = []; row.styles = []; }
      else { for (var i = 0; i <= x; i++) { row.chars[i] = " "; row.styles[i] = ""; } }
    } else if (how === 2) {
      row.chars = [];
      row.styles = [];
    } else {
      return;
    }
    row.dirty = true;
  }

  Terminal.prototype.save = function () { this.saved = [this.y, this.x, this.style]; };

  Terminal.prototype.restoreCursor = function () {
    if (this.saved === null) {
      this.goToRow(0);
      this.x = 0;
      return;
    }
    this.x = this.saved[1];
    this.goToRow(this.saved[0]);
    this.setStyle(this.saved[2]);
  };

  // What changed since the last take: the rows that joined the history (the newest
  // maxLines at most), how many more did and were dropped, the screen's rows, and
  // the rows whose elements must leave the page.
  Terminal.prototype.take = function () {
    var skip = Math.max(0, this.done.length - this.maxLines), gone = this.gone;
    for (var i = 0; i < skip; i++) { if (this.done[i].el) { gone.push(this.done[i]); } }
    var taken = {lines: this.done.slice(skip), dropped: this.hidden + skip, rows: this.rows, gone: gone};
    this.done = [];
    this.gone = [];
    this.hidden = 0;
    return taken;
  };

  // What terminal.py's Terminal.lines() and .hidden say of the same input (for tests).
  Terminal.prototype.lines = function () {
    var all = this.done.concat(this.rows);
    return all.slice(Math.max(0, all.length - this.maxLines)).map(function (row) { return row.runs(); });
  };
  Terminal.prototype.hiddenLines = function () {
    return this.hidden + Math.max(0, this.done.length + this.rows.length - this.maxLines);
  };

  window.webBackgroundTerminal = Terminal;
})();
