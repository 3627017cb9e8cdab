// Keeps the dashboard current: polls its JSON snapshot every 2 s and rebuilds the door and
// event tables. Text goes in through textContent only: no name or fault text can inject HTML.
(function () {
  "use strict";
  var root = document.getElementById("dashboard");
  if (!root) { return; }
  var url = root.getAttribute("data-state-url");
  var unlockUrl = root.getAttribute("data-unlock-url");
  var alarmsUrl = root.getAttribute("data-alarms-url");
  var doorRows = document.getElementById("door-rows");
  var eventRows = document.getElementById("event-rows");
  var workRows = document.getElementById("work-rows");
  var updated = document.getElementById("dashboard-updated");
  var live = document.getElementById("dashboard-live");
  var EVERY = 2000;

  function el(tag, text, className) {
    var node = document.createElement(tag);
    if (text !== undefined && text !== null) { node.textContent = text; }
    if (className) { node.className = className; }
    return node;
  }

  function cell(row, tag, child) {
    var td = el(tag);
    if (typeof child === "string") { td.textContent = child; } else if (child) { td.appendChild(child); }
    row.appendChild(td);
    return td;
  }

  function badge(word) { return el("span", word, "badge badge-" + word); }

  function doorRow(door) {
    var tr = el("tr");
    tr.setAttribute("data-door", String(door.id));
    var th = cell(tr, "th", door.name);
    th.setAttribute("scope", "row");
    if (door.location) { th.appendChild(el("span", " " + door.location, "hint")); }
    cell(tr, "td", badge(door.connection));
    cell(tr, "td", badge(door.lock));
    cell(tr, "td", door.contact);
    cell(tr, "td", badge(door.sensor));
    var problems = cell(tr, "td");
    if (door.fault) { problems.appendChild(el("span", door.fault, "warning-text")); }
    door.alarms.forEach(function (text) { problems.appendChild(el("span", text, "alarm")); });
    if (!door.fault && door.alarms.length === 0) { problems.textContent = "none"; }
    if (unlockUrl) {
      var link = el("a", "Unlock\u2026");
      link.href = unlockUrl.replace("/0/", "/" + door.id + "/");
      var actions = cell(tr, "td", link);
      if (alarmsUrl && door.alarms.length > 0) {
        var clear = el("a", "Clear alarms\u2026");
        clear.href = alarmsUrl.replace("/0/", "/" + door.id + "/");
        actions.appendChild(document.createTextNode(" "));
        actions.appendChild(clear);
      }
    }
    return tr;
  }

  function eventRow(event) {
    var tr = el("tr", null, "event-" + event.tone);
    tr.setAttribute("data-event", String(event.id));
    [event.time, event.door, event.kind, event.who, event.method, event.reason]
      .forEach(function (text) { cell(tr, "td", text); });
    return tr;
  }

  // A resync's progress: a bar with its counts, and the daemon's words ("resync: 120/1000
  // templates, 1m40s left").
  function workRow(work) {
    var tr = el("tr");
    tr.setAttribute("data-work", String(work.id));
    cell(tr, "td", work.door);
    cell(tr, "td", work.what);
    cell(tr, "td", badge(work.state));
    var td = cell(tr, "td");
    if (work.total) {
      var bar = el("progress", work.done + " of " + work.total);
      bar.max = work.total;
      bar.value = work.done || 0;
      td.appendChild(bar);
      td.appendChild(document.createTextNode(" "));
    }
    td.appendChild(el("span", work.text, "work-text"));
    return tr;
  }

  function empty(columns, text) {
    var tr = el("tr");
    var td = cell(tr, "td", text);
    td.colSpan = columns;
    return tr;
  }

  function fill(body, rows) {
    while (body.firstChild) { body.removeChild(body.firstChild); }
    rows.forEach(function (row) { body.appendChild(row); });
  }

  function show(state) {
    var doors = state.doors.map(doorRow);
    fill(doorRows, doors.length ? doors : [empty(unlockUrl ? 7 : 6,
      "No door has reported yet. Start the door's daemon with accessd run.")]);
    if (workRows) {
      var work = state.work.map(workRow);
      fill(workRows, work.length ? work : [empty(4, "No resync under way.")]);
    }
    var events = state.events.map(eventRow);
    fill(eventRows, events.length ? events : [empty(6, "No events yet.")]);
    updated.textContent = state.updated;
    live.textContent = " (live, every 2 s)";
  }

  function poll() {
    fetch(url, { credentials: "same-origin", headers: { "Accept": "application/json" } })
      .then(function (response) {
        if (!response.ok || response.redirected) { throw new Error("status " + response.status); }
        return response.json();
      })
      .then(function (state) { show(state); })
      .catch(function () { live.textContent = " (lost contact with the panel; retrying)"; })
      .then(function () { window.setTimeout(poll, EVERY); });
  }
  window.setTimeout(poll, EVERY);
}());
