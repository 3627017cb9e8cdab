// A strength hint under a new-password field while it is typed. The estimate is zxcvbn's
// (web/static/vendor, MIT), the same library and lists the server checks with
// (accessd.staff.passwords.judge_password), so the hint and the refusal agree; the server
// still decides. The words come from the page (data-* attributes, translated there); only
// textContent is set.
(function () {
  "use strict";
  var hint = document.getElementById("password-strength");
  if (!hint || typeof window.zxcvbn !== "function") { return; }
  var input = document.getElementById(hint.getAttribute("data-for"));
  if (!input) { return; }
  var minLength = Number(hint.getAttribute("data-min-length"));
  var minScore = Number(hint.getAttribute("data-min-score"));
  var user = hint.getAttribute("data-username") || "";
  var words = {
    empty: hint.getAttribute("data-empty"),
    tooShort: hint.getAttribute("data-too-short"),
    weak: hint.getAttribute("data-weak"),
    good: hint.getAttribute("data-good"),
    strong: hint.getAttribute("data-strong")
  };
  var showWarnings = hint.getAttribute("data-show-warnings") === "yes";

  function judge(password) {
    if (!password) { return { text: words.empty, level: "empty" }; }
    if (password.length < minLength) {
      return { text: words.tooShort.replace("{count}", String(minLength - password.length)),
               level: "weak" };
    }
    var result = window.zxcvbn(password.slice(0, 256), [user]);
    if (result.score < minScore || password.toLowerCase() === user.toLowerCase()) {
      var warning = showWarnings && result.feedback.warning ? " " + result.feedback.warning : "";
      return { text: words.weak + warning, level: "weak" };
    }
    return result.score >= 4 ? { text: words.strong, level: "strong" }
                             : { text: words.good, level: "good" };
  }

  function update() {
    var verdict = judge(input.value);
    hint.textContent = verdict.text;
    hint.className = "password-strength password-strength-" + verdict.level;
  }

  input.addEventListener("input", update);
  update();
}());
