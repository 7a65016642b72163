/* The job page's script (web_background/responses.py inlines it, with its nonce,
   after terminal.js and terminal_view.js): live output through EventSource, the status, progress,
   elapsed time and Cancel.

   The output is terminal_view.js's live view (webBackgroundView) of the rows the
   server rendered, the same screen model as web_background/terminal.py's. */
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
  // the output: terminal.js's live view of the server-rendered rows
  var screen = new window.webBackgroundView(out, JSON.parse(page.getAttribute("data-terminal")), showHidden);

  function commas(n) { return String(n).replace(/\B(?=(\d{3})+(?!\d))/g, ","); }

  function showHidden(hidden) {
    notice.hidden = hidden === 0;
    noticeText.textContent = commas(hidden) + (hidden === 1 ? " earlier line" : " earlier lines") + " not shown";
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
    screen.feed(text);
    offset = end;
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
  screen.draw();
  show(state);
  setInterval(tick, 1000);
})();
