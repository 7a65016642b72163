/* The jobs dashboard's script (web_background/dashboard.py inlines it, with its nonce).

   Polls the JSON view of the list (the page's own filters) every second and
   updates the rows in place: a row per job id, built like the server's
   (dashboard.py's _row_html) with DOM APIs, every value set as textContent.
   Cancel, Retry and Purge are posted with fetch, then the list is polled at once. */
(function () {
  "use strict";

  var INTERVAL = 1000;
  var COLUMNS = ["status", "name", "owner", "progress", "age", "elapsed", "last", "actions"];
  var main = document.getElementById("dashboard");
  if (!main) { return; }
  var rows = document.getElementById("rows"), empty = document.getElementById("empty");
  var notice = document.getElementById("notice");
  var newer = document.getElementById("newer"), older = document.getElementById("older");
  var pageOf = document.getElementById("page-of");
  var jsonUrl = main.getAttribute("data-json"), base = main.getAttribute("data-base");
  var query = main.getAttribute("data-query");
  var words = JSON.parse(main.getAttribute("data-words"));
  var timer = null, pollFailed = false;

  function setText(el, text) {
    if (el.textContent !== text) { el.textContent = text; }
  }

  function say(text) {
    notice.hidden = !text;
    setText(notice, text || "");
  }

  function actionForm(action, id) {
    var form = document.createElement("form"), input = document.createElement("input");
    var button = document.createElement("button");
    form.method = "post";
    form.action = base + "/" + action + (query ? "?" + query : "");
    input.type = "hidden";
    input.name = "id";
    input.value = id;
    button.type = "submit";
    button.className = action;
    button.textContent = words.actions[action] || action;
    form.appendChild(input);
    form.appendChild(button);
    return form;
  }

  function newRow() {
    var tr = document.createElement("tr");
    COLUMNS.forEach(function (name) {
      var td = document.createElement("td");
      td.className = name;
      tr.appendChild(td);
    });
    tr.cells[1].appendChild(document.createElement("a"));
    var bar = document.createElement("progress"), msg = document.createElement("span");
    bar.hidden = true;
    msg.className = "msg";
    tr.cells[3].appendChild(bar);
    tr.cells[3].appendChild(msg);
    return tr;
  }

  function update(tr, job) {
    var cells = tr.cells;
    tr.className = "st-" + job.status;
    tr.setAttribute("data-id", job.id);
    setText(cells[0], job.status_text);
    var link = cells[1].firstElementChild;
    if (link.getAttribute("href") !== job.url) { link.setAttribute("href", job.url); }
    setText(link, job.name);
    setText(cells[2], job.owner || "");
    var bar = cells[3].querySelector("progress");
    bar.hidden = !job.progress;
    if (job.progress && job.progress.total) {
      bar.max = job.progress.total;
      bar.value = job.progress.done;
    } else if (bar.hasAttribute("value")) {
      bar.removeAttribute("value");
    }
    setText(cells[3].querySelector(".msg"), job.progress_text);
    setText(cells[4], job.age);
    setText(cells[5], job.elapsed);
    setText(cells[6], job.last_line);
    var actions = job.actions.join(",");
    if (tr.getAttribute("data-actions") !== actions) {  // rebuilt only when they change
      tr.setAttribute("data-actions", actions);
      cells[7].textContent = "";
      job.actions.forEach(function (action) { cells[7].appendChild(actionForm(action, job.id)); });
    }
  }

  function render(view) {
    var old = {}, i;
    for (i = 0; i < rows.rows.length; i++) { old[rows.rows[i].getAttribute("data-id")] = rows.rows[i]; }
    var wanted = view.jobs.map(function (job) {
      var tr = Object.prototype.hasOwnProperty.call(old, job.id) ? old[job.id] : newRow();
      delete old[job.id];
      update(tr, job);
      return tr;
    });
    Object.keys(old).forEach(function (id) { rows.removeChild(old[id]); });
    wanted.forEach(function (tr, k) {  // in the server's order, moving only what is out of place
      if (rows.rows[k] !== tr) { rows.insertBefore(tr, rows.rows[k] || null); }
    });
    empty.hidden = view.jobs.length > 0;
    var counts = main.querySelectorAll("[data-count]");
    for (i = 0; i < counts.length; i++) {
      var key = counts[i].getAttribute("data-count");
      setText(counts[i], String(key === "all" ? view.total : view.counts[key] || 0));
    }
    [[newer, view.newer], [older, view.older]].forEach(function (pair) {
      pair[0].hidden = !pair[1];
      if (pair[1]) { pair[0].setAttribute("href", pair[1]); }
    });
    setText(pageOf, words.page_of.replace("%d", view.page).replace("%d", view.pages));
  }

  function poll() {
    clearTimeout(timer);
    fetch(jsonUrl, {headers: {"Accept": "application/json"}, credentials: "same-origin", cache: "no-store"})
      .then(function (response) {
        if (!response.ok) { throw new Error(words.poll_failed.replace("%s", response.status)); }
        return response.json();
      })
      .then(function (view) {
        render(view);
        if (pollFailed) { pollFailed = false; say(""); }
      })
      .catch(function (e) { pollFailed = true; say(e.message); })
      .then(function () { timer = setTimeout(poll, INTERVAL); });
  }

  main.addEventListener("submit", function (e) {
    var form = e.target;
    if (form.method.toLowerCase() !== "post") { return; }  // the filter: an ordinary GET
    e.preventDefault();
    var button = form.querySelector("button");
    button.disabled = true;
    fetch(form.action, {method: "POST", body: new URLSearchParams(new FormData(form)),
                        headers: {"Accept": "application/json"}, credentials: "same-origin"})
      .then(function (response) {
        return response.ok ? "" : response.text().then(function (text) { return text.trim(); });
      })
      .catch(function (e) { return e.message; })
      .then(function (problem) {
        button.disabled = false;
        pollFailed = false;
        say(problem);
        poll();
      });
  });

  timer = setTimeout(poll, INTERVAL);
})();
