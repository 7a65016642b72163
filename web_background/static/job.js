/* The job page's script (web_background/responses.py inlines it, with its nonce,
   after terminal.js): live output through EventSource, the status, progress,
   elapsed time and Cancel.

   The output goes through terminal.js's screen model, the same as the one
   web_background/terminal.py rendered the first page with (its docstring is the
   spec); each row that changed is drawn again, text only ever through
   textContent and text nodes. */
(function () {
  "use strict";

  // -- the page ----------------------------------------------------------------------

  var page = document.getElementById("job"), out = document.getElementById("output");
  if (!page || !out) { return; }
  var statusEl = document.getElementById("status"), bar = document.getElementById("bar");
  var msg = document.getElementById("message"), elapsed = document.getElementById("elapsed");
  var form = document.getElementById("cancel"), failed = document.getElementById("failed");
  var notice = document.getElementById("hidden"), noticeText = document.getElementById("hidden-count");
  var state = JSON.parse(page.getAttribute("data-state"));
  var view = JSON.parse(page.getAttribute("data-terminal"));
  var maxLines = view.lines, hidden = view.hidden, shown = out.children.length;  // rows on the page
  var term = window.webBackgroundTerminal.restore(view.state, maxLines);
  // the screen's rows are the last elements, as the server rendered them
  var firstLive = out.children[out.children.length - term.rows.length] || null;
  for (var r = 0, el = firstLive; r < term.rows.length && el; r++, el = el.nextElementSibling) {
    term.rows[r].el = el;
    term.rows[r].dirty = false;
  }

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

  function setEnded(el, ended) {  // every row but the last ends with its newline (rows hold none)
    var end = el.lastChild, has = !!end && end.nodeType === 3 && end.data.slice(-1) === "\n";
    if (ended && !has) { el.appendChild(document.createTextNode("\n")); }
    if (!ended && has) {
      if (end.data.length > 1) { end.data = end.data.slice(0, -1); } else { el.removeChild(end); }
    }
  }

  function commas(n) { return String(n).replace(/\B(?=(\d{3})+(?!\d))/g, ","); }

  function showHidden() {
    notice.hidden = hidden === 0;
    noticeText.textContent = commas(hidden) + (hidden === 1 ? " earlier line" : " earlier lines") + " not shown";
  }

  // Draw what changed: rows that joined the history stay where they are, new
  // rows come in, changed rows are filled again, rows gone leave.
  function render() {
    var atBottom = out.scrollHeight - out.scrollTop - out.clientHeight < 24;
    var taken = term.take(), rows = taken.lines.concat(taken.rows), last = rows.length - 1, next = firstLive, i;
    var before = hidden;
    for (i = 0; i < taken.gone.length; i++) {
      var gone = taken.gone[i].el;
      if (gone && gone.parentNode === out) {
        if (gone === next) { next = next.nextElementSibling; }
        out.removeChild(gone);
        shown -= 1;
      }
    }
    hidden += taken.dropped;
    for (i = 0; i < rows.length; i++) {
      var row = rows[i];
      if (!row.el) {
        row.el = document.createElement("span");
        row.el.className = "ln";
        fill(row.el, row.runs(), i < last);
        out.insertBefore(row.el, next);
        shown += 1;
      } else {
        if (row.dirty) { fill(row.el, row.runs(), i < last); } else { setEnded(row.el, i < last); }
        if (row.el !== next) { out.insertBefore(row.el, next); } else { next = next.nextElementSibling; }
      }
      row.dirty = false;
    }
    firstLive = taken.rows[0].el;
    var height = out.scrollHeight;
    while (shown > maxLines && out.firstElementChild !== firstLive) {  // the oldest leave
      out.removeChild(out.firstElementChild);
      shown -= 1;
      hidden += 1;
    }
    if (!atBottom && taken.lines.length) { out.scrollTop -= height - out.scrollHeight; }  // the reader's view stays put
    if (hidden !== before) { showHidden(); }
    if (atBottom) { out.scrollTop = out.scrollHeight; }
  }

  function tick() {
    var from = state.started || state.created, to = state.finished || Date.now() / 1000;
    if (from) { elapsed.textContent = Math.max(0, Math.round(to - from)) + " s"; }
  }

  function show(s) {
    state = s;
    var ended = ["queued", "running"].indexOf(s.status) < 0;
    statusEl.textContent = s.cancel_requested && !ended ? "Cancelling\u2026" : s.status;
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
    if (s.error) { failed.textContent = "The job failed.\n" + s.error; }
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
    var u = new URL(location.href);
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
})();
