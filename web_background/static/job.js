/* The script of job views (web_background/job_page.py inlines it, with its nonce, once
   a page, after terminal.js and terminal_view.js): live output through EventSource,
   the status, progress, elapsed time and Cancel, for every view on the page (the job
   page's, or those live() gives).

   The output is terminal_view.js's live view (webBackgroundView) of the rows the
   server rendered, the same screen model as web_background/terminal.py's. */
(function () {
  "use strict";

  function commas(n) { return String(n).replace(/\B(?=(\d{3})+(?!\d))/g, ","); }

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
    var words = JSON.parse(page.getAttribute("data-words"));
    var base = page.getAttribute("data-url") || location.href;
    // the output: terminal.js's live view of the server-rendered rows
    var screen = new window.webBackgroundView(out, JSON.parse(page.getAttribute("data-terminal")), showHidden);

    function showHidden(hidden) {
      notice.hidden = hidden === 0;
      noticeText.textContent = words.hidden[hidden === 1 ? 0 : 1].replace("%s", commas(hidden));
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
