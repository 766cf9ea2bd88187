// The web console's only script (served as /ui/static/console.js; the CSP allows no other).
// Live check of citizen ID numbers as the clerk types: each field marked data-idcheck asks the
// node (POST /ui/check-id, never a URL) and shows the rulebook's own fault message beside it,
// the same message the server gives when the form is submitted.
"use strict";
(function () {
  var meta = document.querySelector('meta[name="csrf-token"]');
  if (!meta) return;
  var csrf = meta.getAttribute("content");

  function hintFor(input) {
    var next = input.nextElementSibling;
    return next && next.classList.contains("idfault") ? next : null;
  }

  function check(input) {
    var hint = hintFor(input);
    if (!hint) return;
    var value = input.value.trim();
    if (value === "") {
      hint.textContent = "";
      hint.className = "idfault";
      input.removeAttribute("aria-invalid");
      return;
    }
    var asked = value;
    fetch("/ui/check-id", {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf },
      body: JSON.stringify({ person: value })
    })
      .then(function (r) { return r.json(); })
      .then(function (answer) {
        if (input.value.trim() !== asked) return; // the clerk typed on meanwhile
        if (answer.ok) {
          hint.textContent = "\u2713";
          hint.className = "idfault ok";
          input.removeAttribute("aria-invalid");
        } else {
          hint.textContent = answer.error + ": " + answer.message;
          hint.className = "idfault bad";
          input.setAttribute("aria-invalid", "true");
        }
      })
      .catch(function () { /* the form's own submission still reports the fault */ });
  }

  var timers = new WeakMap();
  document.querySelectorAll("input[data-idcheck]").forEach(function (input) {
    input.addEventListener("input", function () {
      clearTimeout(timers.get(input));
      timers.set(input, setTimeout(function () { check(input); }, 200));
    });
    input.addEventListener("blur", function () { check(input); });
  });
})();
