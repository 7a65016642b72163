/* The live view of a job's output (web_background/responses.py inlines it, with
   its nonce, after terminal.js and before job.js): a terminal.js screen model
   drawn into a <pre> of rows as web_background/terminal.py's html() renders
   them, redrawing only the rows that change.

   new window.webBackgroundView(out, view, onHidden): out is the <pre>, view the
   page's data-terminal ({lines, hidden, state}); feed(text) takes more output. */
(function () {
  "use strict";

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
  }

  function setEnded(el, ended) {  // every row but the last ends with its newline (rows hold none)
    var end = el.lastChild, has = !!end && end.nodeType === 3 && end.data.slice(-1) === "\n";
    if (ended && !has) { el.appendChild(document.createTextNode("\n")); }
    if (!ended && has) {
      if (end.data.length > 1) { end.data = end.data.slice(0, -1); } else { el.removeChild(end); }
    }
  }

  // The rows of out (a <pre> of <span class="ln">, as terminal.py's html() renders
  // them) drawn live: view is {lines, hidden, state} (the page's data-terminal);
  // onHidden(count) is called when the count of rows no longer shown changes.
  // Text only ever goes in through textContent and text nodes.
  function View(out, view, onHidden) {
    this.out = out;
    this.maxLines = view.lines;
    this.hidden = view.hidden;
    this.onHidden = onHidden || function () {};
    this.term = window.webBackgroundTerminal.restore(view.state, view.lines);
    this.shown = out.children.length;  // rows on the page (counted: childElementCount is slow)
    // the screen's rows are the last elements, as the server rendered them
    this.firstLive = out.children[out.children.length - this.term.rows.length] || null;
    for (var r = 0, el = this.firstLive; r < this.term.rows.length && el; r++, el = el.nextElementSibling) {
      this.term.rows[r].el = el;
      this.term.rows[r].dirty = false;
    }
  }

  View.prototype.feed = function (text) {
    this.term.feed(text);
    this.draw();
  };

  // Draw what changed: rows that joined the history stay where they are, new
  // rows come in, changed rows are filled again, rows gone leave; the reader's
  // place stays put unless they were following the newest output.
  View.prototype.draw = function () {
    var out = this.out, atBottom = out.scrollHeight - out.scrollTop - out.clientHeight < 24;
    var taken = this.term.take(), rows = taken.lines.concat(taken.rows), last = rows.length - 1;
    var next = this.firstLive, before = this.hidden, i;
    for (i = 0; i < taken.gone.length; i++) {
      var gone = taken.gone[i].el;
      if (gone && gone.parentNode === out) {
        if (gone === next) { next = next.nextElementSibling; }
        out.removeChild(gone);
        this.shown -= 1;
      }
    }
    this.hidden += taken.dropped;
    for (i = 0; i < rows.length; i++) {
      var row = rows[i];
      if (!row.el) {
        row.el = document.createElement("span");
        row.el.className = "ln";
        fill(row.el, row.runs(), i < last);
        out.insertBefore(row.el, next);
        this.shown += 1;
      } else {
        if (row.dirty) { fill(row.el, row.runs(), i < last); } else { setEnded(row.el, i < last); }
        if (row.el !== next) { out.insertBefore(row.el, next); } else { next = next.nextElementSibling; }
      }
      row.dirty = false;
    }
    this.firstLive = taken.rows[0].el;
    var height = out.scrollHeight;
    while (this.shown > this.maxLines && out.firstElementChild !== this.firstLive) {  // the oldest leave
      out.removeChild(out.firstElementChild);
      this.shown -= 1;
      this.hidden += 1;
    }
    if (!atBottom && taken.lines.length) { out.scrollTop -= height - out.scrollHeight; }
    if (this.hidden !== before) { this.onHidden(this.hidden); }
    if (atBottom) { out.scrollTop = out.scrollHeight; }
  };

  window.webBackgroundView = View;
})();
