/* The script of job views (web_background/job_page.py inlines it, with its nonce, once
   a page): live output through EventSource, the status, progress, elapsed time and
   Cancel, for every view on the page (the job page's, or those live() gives).

   The output is rendered by the same terminal model as the first page, which
   web_background/terminal.py renders (its docstring is the spec): lines and a
   cursor column; \n ends the line, \r goes back to column 0, \b one column;
   SGR escapes become CSS classes, every other escape sequence is dropped; text
   only ever goes into the page through textContent and text nodes. */
(function () {
  "use strict";

  // -- the terminal model ------------------------------------------------------------

  var TOKEN = /\x1b(?:\[[ -?]*[@-~]?|[\]PX^_][^\x07\x1b\n]*(?:\x07|\x1b\\)?|[ -\/]*[0-~]?)|[\x00-\x08\x0a-\x1f\x7f-\x9f]/g;
  var SGR_PARAMS = /^[0-9;:]*$/;
  var DIGITS = /^[0-9]+$/;
  var LEVELS = [0, 95, 135, 175, 215, 255];
  var PLAIN = [null, null, false, false, false];  // fg, bg, bold, italic, underline

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
    var names = [];
    if (style[0] !== null) { names.push("a-fg-" + style[0]); }
    if (style[1] !== null) { names.push("a-bg-" + style[1]); }
    if (style[2]) { names.push("a-b"); }
    if (style[3]) { names.push("a-i"); }
    if (style[4]) { names.push("a-u"); }
    return names.join(" ");
  }

  function number(field) {
    if (field === "") { return 0; }
    return field.length <= 8 && DIGITS.test(field) ? parseInt(field, 10) : -1;
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
    var fg = style[0], bg = style[1], bold = style[2], italic = style[3], underline = style[4];
    var fields = params.split(";"), i = 0, found;
    while (i < fields.length) {
      var field = fields[i];
      i += 1;
      if (field.indexOf(":") >= 0) {  // 38:5:N, 38:2:[space]:R:G:B, 4:N (underline styles)
        var sub = field.split(":").map(number);
        if (sub[0] === 38 || sub[0] === 48 || sub[0] === 58) {
          var rgb = sub[1] === 2 && sub.length >= 6;
          found = colour(rgb ? [2].concat(sub.slice(3, 6)) : sub.slice(1))[1];
          if (sub[0] === 38 && found !== null) { fg = found; }
          if (sub[0] === 48 && found !== null) { bg = found; }
        } else if (sub[0] === 4) {
          underline = sub[1] !== 0;
        }
        continue;
      }
      var code = number(field);
      if (code === 0) { fg = null; bg = null; bold = false; italic = false; underline = false; }
      else if (code === 1) { bold = true; }
      else if (code === 3) { italic = true; }
      else if (code === 4) { underline = true; }
      else if (code === 22) { bold = false; }
      else if (code === 23) { italic = false; }
      else if (code === 24) { underline = false; }
      else if (code >= 30 && code <= 37) { fg = code - 30; }
      else if (code >= 90 && code <= 97) { fg = code - 90 + 8; }
      else if (code === 39) { fg = null; }
      else if (code >= 40 && code <= 47) { bg = code - 40; }
      else if (code >= 100 && code <= 107) { bg = code - 100 + 8; }
      else if (code === 49) { bg = null; }
      else if (code === 38 || code === 48 || code === 58) {
        var taken = colour(fields.slice(i, i + 4).map(number));
        i += taken[0];
        if (code === 38 && taken[1] !== null) { fg = taken[1]; }
        if (code === 48 && taken[1] !== null) { bg = taken[1]; }
      }
    }
    return [fg, bg, bold, italic, underline];
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

  // [[classes, text], ...]: the runs of one line
  function segments(chars, styles) {
    var out = [], start = 0;
    for (var i = 1; i <= chars.length; i++) {
      if (i === chars.length || styles[i] !== styles[start]) {
        out.push([styles[start], chars.slice(start, i).join("")]);
        start = i;
      }
    }
    return out;
  }

  function Terminal(maxLines) {
    this.maxLines = maxLines;
    this.hidden = 0;      // lines dropped before take() could hand them over
    this.done = [];       // ended lines (as runs) not taken yet
    this.chars = [];      // the cursor's line: one code point a cell
    this.styles = [];
    this.col = 0;
    this.style = PLAIN;
    this.classes = "";
    this.pending = "";    // an escape sequence whose end has not come yet
    this.changed = false; // the cursor's line changed since take()
  }

  Terminal.prototype.feed = function (text) {
    if (this.pending) { text = this.pending + text; this.pending = ""; }
    var pos = 0, m, token;
    TOKEN.lastIndex = 0;
    while ((m = TOKEN.exec(text)) !== null) {
      if (m.index > pos) { this.write(text.slice(pos, m.index)); }
      token = m[0];
      pos = TOKEN.lastIndex;
      if (token === "\n") { this.newline(); }
      else if (token === "\r") { this.col = 0; }
      else if (token === "\b") { this.col = Math.max(0, this.col - 1); }
      else if (token.charAt(0) === "\x1b") {
        if (pos === text.length && !complete(token)) {
          // wait for the rest; a string's content is dropped anyway
          this.pending = "]PX^_".indexOf(token.charAt(1)) >= 0 && token.length > 1 ? token.slice(0, 2) : token;
        } else if (token.charAt(1) === "[" && token.charAt(token.length - 1) === "m" &&
                   SGR_PARAMS.test(token.slice(2, -1))) {
          this.style = applySgr(this.style, token.slice(2, -1));
          this.classes = classesOf(this.style);
        }
      }
    }
    if (pos < text.length) { this.write(text.slice(pos)); }
    return this;
  };

  Terminal.prototype.write = function (run) {
    var cells = Array.from(run), col = this.col;
    for (var i = 0; i < cells.length; i++) {
      this.chars[col + i] = cells[i];
      this.styles[col + i] = this.classes;
    }
    this.col = col + cells.length;
    this.changed = true;
  };

  Terminal.prototype.newline = function () {
    this.done.push(segments(this.chars, this.styles));
    if (this.done.length > 2 * this.maxLines) {  // more than can be shown: drop the oldest
      var drop = this.done.length - (this.maxLines - 1);
      this.done.splice(0, drop);
      this.hidden += drop;
    }
    this.chars = [];
    this.styles = [];
    this.col = 0;
    this.changed = true;
  };

  // The ended lines since the last take (the newest maxLines - 1 at most) and
  // how many more ended and were dropped.
  Terminal.prototype.take = function () {
    var skip = Math.max(0, this.done.length - (this.maxLines - 1));
    var taken = {lines: this.done.slice(skip), dropped: this.hidden + skip};
    this.done = [];
    this.hidden = 0;
    this.changed = false;
    return taken;
  };

  Terminal.prototype.current = function () { return segments(this.chars, this.styles); };

  // What terminal.py's Terminal.lines() and .hidden say of the same input (for tests).
  Terminal.prototype.lines = function () {
    var skip = Math.max(0, this.done.length - (this.maxLines - 1));
    return this.done.slice(skip).concat([this.current()]);
  };
  Terminal.prototype.hiddenLines = function () {
    return this.hidden + Math.max(0, this.done.length - (this.maxLines - 1));
  };

  window.webBackgroundTerminal = Terminal;

  // -- the views on the page -----------------------------------------------------------

  // Each .wb-job element is one job's view (the job page's, or one of live()'s
  // fragments): its elements' ids start with its data-ids, its job is served at
  // its data-url (empty: this page's own URL), its words are in data-words.
  function wire(page) {
    var prefix = page.getAttribute("data-ids") || "";
    function part(name) { return document.getElementById(prefix + name); }
    var out = part("output");
    if (!out) { return; }
    var statusEl = part("status"), bar = part("bar");
    var msg = part("message"), elapsed = part("elapsed");
    var form = part("cancel"), failed = part("failed");
    var notice = part("hidden"), noticeText = part("hidden-count");
    var state = JSON.parse(page.getAttribute("data-state"));
    var view = JSON.parse(page.getAttribute("data-terminal"));
    var words = JSON.parse(page.getAttribute("data-words"));
    var base = page.getAttribute("data-url") || location.href;
    var maxLines = view.lines, hidden = view.hidden, shown = out.children.length;
    var term = new Terminal(maxLines);
    var current = out.lastElementChild;  // the cursor's line, as the server rendered it
    term.feed(view.resume);  // the same line, cursor, style and unfinished escape, here

    function fill(el, runs, ended) {
      el.textContent = "";
      for (var i = 0; i < runs.length; i++) {
        if (!runs[i][0]) {
          el.appendChild(document.createTextNode(runs[i][1]));
        } else {
          var span = document.createElement("span");
          span.className = runs[i][0];
          span.textContent = runs[i][1];
          el.appendChild(span);
        }
      }
      if (ended) { el.appendChild(document.createTextNode("\n")); }
      return el;
    }

    function line(runs, ended) {
      var el = document.createElement("span");
      el.className = "ln";
      return fill(el, runs, ended);
    }

    function commas(n) { return String(n).replace(/\B(?=(\d{3})+(?!\d))/g, ","); }

    function showHidden() {
      notice.hidden = hidden === 0;
      noticeText.textContent = words.hidden[hidden === 1 ? 0 : 1].replace("%s", commas(hidden));
    }

    function render() {
      var atBottom = out.scrollHeight - out.scrollTop - out.clientHeight < 24;
      var changed = term.changed, taken = term.take(), i;
      if (taken.lines.length || taken.dropped) {
        var fragment = document.createDocumentFragment();
        out.removeChild(current);
        shown -= 1;
        hidden += taken.dropped;
        for (i = 0; i < taken.lines.length; i++) { fragment.appendChild(line(taken.lines[i], true)); }
        current = line(term.current(), false);
        fragment.appendChild(current);
        out.appendChild(fragment);
        shown += taken.lines.length + 1;
        var height = out.scrollHeight;
        while (shown > maxLines) {  // the oldest lines leave the page
          out.removeChild(out.firstElementChild);
          shown -= 1;
          hidden += 1;
        }
        if (!atBottom) { out.scrollTop -= height - out.scrollHeight; }  // what the reader sees stays put
        showHidden();
      } else if (changed) {
        fill(current, term.current(), false);
      }
      if (atBottom) { out.scrollTop = out.scrollHeight; }
    }

    function tick() {
      var from = state.started || state.created, to = state.finished || Date.now() / 1000;
      if (from) { elapsed.textContent = words.seconds.replace("%d", Math.max(0, Math.round(to - from))); }
    }

    function show(s) {
      state = s;
      var ended = ["queued", "running"].indexOf(s.status) < 0;
      statusEl.textContent = s.cancel_requested && !ended ? words.cancelling : (words.status[s.status] || s.status);
      statusEl.className = s.status;
      if (s.progress) {
        bar.hidden = false;
        if (s.progress.total) { bar.max = s.progress.total; bar.value = s.progress.done; }
        else { bar.removeAttribute("value"); }
        msg.textContent = s.progress.message || "";
      }
      form.hidden = ended;
      if (s.cancel_requested) { form.querySelector("button").disabled = true; }
      failed.hidden = s.status !== "failed";
      if (s.error) { failed.textContent = words.failed + "\n" + s.error; }
      tick();
      return ended;
    }

    // Live updates through Server-Sent Events; behind a proxy or server that
    // holds the whole response (nginx's fastcgi_pass/uwsgi_pass, lighttpd's
    // default), no event comes although the stream opened: then poll the JSON
    // view instead, quietly, from where the output got to.
    var FALLBACK_MS = 3000, POLL_MS = 1000;
    var offset = Number(page.getAttribute("data-offset")), heard = false, polling = false;
    function url(format) {
      var u = new URL(base, location.href);
      u.searchParams.set("_format", format);
      u.searchParams.set("_offset", String(offset));
      return u.pathname + u.search;
    }
    function output(text, end) {
      term.feed(text);
      offset = end;
      render();
    }
    var source = new EventSource(url("events"));
    source.addEventListener("output", function (e) {
      heard = true;
      var data = JSON.parse(e.data);
      output(data.text, data.offset);
    });
    source.addEventListener("state", function (e) { heard = true; show(JSON.parse(e.data)); });
    source.addEventListener("end", function (e) { heard = true; show(JSON.parse(e.data)); source.close(); });
    function poll() {
      fetch(url("json"), {headers: {"Accept": "application/json"}, credentials: "same-origin"})
        .then(function (r) { return r.ok ? r.json() : null; })
        .then(function (s) {
          if (s && s.offset >= offset) { output(s.output, s.offset); }
          if (!(s && show(s))) { setTimeout(poll, POLL_MS); }
        }, function () { setTimeout(poll, POLL_MS); });
    }
    setTimeout(function () {
      if (!heard && !polling && ["queued", "running"].indexOf(state.status) >= 0) {
        polling = true;
        source.close();
        poll();
      }
    }, FALLBACK_MS);
    form.addEventListener("submit", function (e) {
      e.preventDefault();
      form.querySelector("button").disabled = true;
      fetch(form.action, {method: "POST", headers: {"Accept": "application/json"}, credentials: "same-origin"});
    });
    render();
    show(state);
    setInterval(tick, 1000);
  }

  // Every view on the page, once: those after this script (live() includes it
  // with the first view of a page) when the document has been read.
  function wireAll() {
    var views = document.querySelectorAll(".wb-job");
    for (var i = 0; i < views.length; i++) {
      if (!views[i].hasAttribute("data-wired")) {
        views[i].setAttribute("data-wired", "");
        wire(views[i]);
      }
    }
  }
  wireAll();
  if (document.readyState === "loading") { document.addEventListener("DOMContentLoaded", wireAll); }
})();
