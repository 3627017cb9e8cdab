// Follows an enrolment: polls the command's JSON state and shows the daemon's latest step.
// Only textContent and attributes are set, never HTML, so nothing the daemon writes can inject.
(function () {
  "use strict";
  var root = document.getElementById("enrolment");
  if (!root) { return; }
  var url = root.getAttribute("data-state-url");
  var progress = document.getElementById("enrol-progress");
  var result = document.getElementById("enrol-result");
  var steps = root.querySelectorAll(".enrol-steps li");
  var hint = document.getElementById("enrol-noscript");
  // The words in the page's language, from enrolment/progress.html (no inline script: CSP).
  function t(name, english) { return root.getAttribute("data-" + name) || english; }
  if (hint) { hint.hidden = true; }

  function show(state) {
    progress.textContent = state.progress;
    steps.forEach(function (li) {
      var n = Number(li.getAttribute("data-step"));
      li.classList.toggle("step-done", state.step !== null && n < state.step);
      li.classList.toggle("step-current", state.step !== null && n === state.step);
    });
    if (state.finished) {
      result.textContent = (state.ok ? t("enrolled", "Enrolled: ") : t("failed", "Enrolment failed: ")) +
        state.progress;
      result.className = "flash " + (state.ok ? "flash-success" : "flash-error");
      result.hidden = false;
    }
  }

  function poll() {
    fetch(url, { credentials: "same-origin", headers: { "Accept": "application/json" } })
      .then(function (response) {
        if (!response.ok) { throw new Error("status " + response.status); }
        return response.json();
      })
      .then(function (state) {
        show(state);
        if (!state.finished) { window.setTimeout(poll, 1000); }
      })
      .catch(function () {
        progress.textContent = t("lost", "Lost contact with the panel; retrying...");
        window.setTimeout(poll, 2000);
      });
  }
  poll();
}());
