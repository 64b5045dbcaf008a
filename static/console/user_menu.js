// The user menu in the top bar (a <details>): its summary says whether it is open (aria-expanded),
// and it closes on Escape (focus back on the summary) or on a click outside it.
(function () {
  "use strict";
  function wire(menu) {
    var summary = menu.querySelector("summary");
    if (!summary) return;
    var sync = function () { summary.setAttribute("aria-expanded", menu.open ? "true" : "false"); };
    menu.addEventListener("toggle", sync);
    sync();
    document.addEventListener("keydown", function (event) {
      if (event.key === "Escape" && menu.open) { menu.open = false; sync(); summary.focus(); }
    });
    document.addEventListener("click", function (event) {
      if (menu.open && !menu.contains(event.target)) { menu.open = false; sync(); }
    });
  }
  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("details.user-menu").forEach(wire);
  });
})();
