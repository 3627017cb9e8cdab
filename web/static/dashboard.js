// Keeps the dashboard current: polls its JSON snapshot every 2 s and rebuilds the door cards,
// the event table and the header's alarm count. Text goes in through textContent only: no name or fault text can inject HTML.
(function () {
  "use strict";
  var root = document.getElementById("dashboard");
  if (!root) { return; }
  var url = root.getAttribute("data-state-url");
  var unlockUrl = root.getAttribute("data-unlock-url");
  var alarmsUrl = root.getAttribute("data-alarms-url");
  var doorCards = document.getElementById("door-cards");
  var eventRows = document.getElementById("event-rows");
  var workRows = document.getElementById("work-rows");
  var updated = document.getElementById("dashboard-updated");
  var live = document.getElementById("dashboard-live");
  var EVERY = 2000;
  // The words in the page's language, handed over by dashboard.html (no inline script: CSP).
  var words = {};
  try { words = JSON.parse(root.getAttribute("data-words") || "{}"); } catch (e) { words = {}; }
  function t(key, english) { return words[key] || english; }

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

  function badge(word, tone) { return el("span", word, "badge badge-" + (tone || word)); }

  function timeEl(text, iso) {
    var node = el("time", text, "site-time");
    if (iso) { node.setAttribute("datetime", iso); }
    return node;
  }

  // One door as a card, the same as the page's first render (dashboard.html).
  function doorCard(door) {
    var li = el("li", null, "door-card" + (door.alarms.length ? " door-card-alarm" : ""));
    li.setAttribute("data-door", String(door.id));
    var head = el("div", null, "door-card-head");
    var title = el("h3", door.name);
    if (door.location) { title.appendChild(el("span", " " + door.location, "hint")); }
    head.appendChild(title);
    var lock = el("p", t("lock", "Lock") + " ", "door-lock");
    var lockBadge = badge(door.lock);
    lockBadge.textContent = door.lock_text || door.lock;
    lock.appendChild(lockBadge);
    lock.appendChild(document.createTextNode(" \u00b7 " + t("contact", "door contact") + " "));
    lock.appendChild(el("span", door.contact_text || door.contact, "door-contact"));
    head.appendChild(lock);
    li.appendChild(head);
    if (door.alarms.length) {
      var alarms = el("ul", null, "door-alarms");
      alarms.setAttribute("aria-label", t("open_alarms", "Open alarms"));
      door.alarms.forEach(function (alarm) {
        var item = el("li", alarm.what + ", " + t("raised", "raised") + " ", "alarm");
        item.appendChild(timeEl(alarm.raised, alarm.raised_iso));
        if (alarm.detail) { item.appendChild(document.createTextNode(": " + alarm.detail)); }
        alarms.appendChild(item);
      });
      li.appendChild(alarms);
    }
    var list = el("dl", null, "devices");
    door.devices.forEach(function (device) {
      var item = el("div", null, "device device-" + device.health);
      item.setAttribute("data-device", device.key);
      item.appendChild(el("dt", device.label));
      var dd = el("dd");
      dd.appendChild(badge(device.state, device.health));
      dd.appendChild(document.createTextNode(" "));
      var seen = el("span", t("last_contact", "last contact") + " ", "last-contact");
      if (device.last_contact_iso) {
        seen.appendChild(timeEl(device.last_contact, device.last_contact_iso));
      } else { seen.appendChild(document.createTextNode(t("never", "never"))); }
      dd.appendChild(seen);
      if (device.problem) { dd.appendChild(el("span", device.problem, "device-problem")); }
      if (device.action) {
        dd.appendChild(el("span", t("what_to_do", "What to do:") + " " + device.action, "device-action"));
      }
      item.appendChild(dd);
      list.appendChild(item);
    });
    li.appendChild(list);
    if (unlockUrl) {
      var actions = el("p", null, "door-actions");
      var link = el("a", t("unlock", "Unlock\u2026"));
      link.href = unlockUrl.replace("/0/", "/" + door.id + "/");
      actions.appendChild(link);
      if (alarmsUrl && door.alarms.length > 0) {
        var clear = el("a", t("clear_alarms", "Clear alarms\u2026"));
        clear.href = alarmsUrl.replace("/0/", "/" + door.id + "/");
        actions.appendChild(document.createTextNode(" "));
        actions.appendChild(clear);
      }
      li.appendChild(actions);
    }
    return li;
  }

  function eventRow(event) {
    var tr = el("tr", null, "event-" + event.tone);
    tr.setAttribute("data-event", String(event.id));
    cell(tr, "td", timeEl(event.time, event.time_iso)).className = "time-cell";
    [event.door, event.kind, event.who, event.method, event.reason]
      .forEach(function (text) { cell(tr, "td", text); });
    // Each cell names its column, for a phone where the rows stack (panel.css).
    var headers = document.querySelectorAll("table.events thead th");
    Array.prototype.forEach.call(tr.children, function (td, i) {
      if (headers[i]) { td.setAttribute("data-label", headers[i].textContent); }
    });
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
    var doors = state.doors.map(doorCard);
    fill(doorCards, doors.length ? doors : [el("li",
      t("no_door", "No door has reported yet. Its daemon reports once the door's computer " +
        "runs the door service."), "door-card")]);
    if (workRows) {
      var work = state.work.map(workRow);
      fill(workRows, work.length ? work : [empty(4, t("no_work", "No resync under way."))]);
    }
    var events = state.events.map(eventRow);
    fill(eventRows, events.length ? events : [empty(6, t("no_events", "No events yet."))]);
    updated.textContent = state.updated;
    updated.setAttribute("datetime", state.updated_iso);
    live.textContent = " " + t("live", "(live, every 2 s)");
    showAlarmCount(state.open_alarms);
  }

  // The header's indicator (base.html), kept current with the cards.
  function showAlarmCount(count) {
    var indicator = document.getElementById("alarm-indicator");
    var number = document.getElementById("alarm-count");
    if (!indicator || !number) { return; }
    number.textContent = String(count);
    indicator.className = "alarm-indicator" + (count > 0 ? " alarm-indicator-on" : "");
    indicator.setAttribute("aria-label", count === 1 ? t("one_alarm", "1 open alarm")
      : t("alarms", "{n} open alarms").replace("{n}", String(count)));
  }

  function poll() {
    fetch(url, { credentials: "same-origin", headers: { "Accept": "application/json" } })
      .then(function (response) {
        if (!response.ok || response.redirected) { throw new Error("status " + response.status); }
        return response.json();
      })
      .then(function (state) { show(state); })
      .catch(function () { live.textContent = " " + t("lost", "(lost contact with the panel; retrying)"); })
      .then(function () { window.setTimeout(poll, EVERY); });
  }
  window.setTimeout(poll, EVERY);
}());
