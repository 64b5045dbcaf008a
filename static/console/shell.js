/* The console shell on small screens: below 900 px the sidebar is a drawer opened by the menu
   button. The button says whether the drawer is open (aria-expanded); opening moves focus into the
   drawer, and Escape, the close button or a tap outside closes it and gives focus back to the button.
   Served from static/, no CDN. */
(function () {
  "use strict";
  var NARROW = window.matchMedia("(max-width: 899.98px)");

  function setup() {
    var toggle = document.querySelector(".nav-toggle");
    var drawer = document.getElementById("sidebar");
    if (!toggle || !drawer) return;
    var backdrop = document.querySelector(".nav-backdrop");

    function isOpen() { return document.body.classList.contains("nav-open"); }

    function open() {
      document.body.classList.add("nav-open");
      toggle.setAttribute("aria-expanded", "true");
      if (backdrop) backdrop.hidden = false;
      var target = drawer.querySelector(".nav a.active") || drawer.querySelector(".nav a, .nav-close");
      if (target) target.focus();
    }

    function close(returnFocus) {
      if (!isOpen()) return;
      document.body.classList.remove("nav-open");
      toggle.setAttribute("aria-expanded", "false");
      if (backdrop) backdrop.hidden = true;
      if (returnFocus) toggle.focus();
    }

    toggle.addEventListener("click", function () { if (isOpen()) { close(true); } else { open(); } });
    document.querySelectorAll("[data-nav-close]").forEach(function (element) {
      element.addEventListener("click", function () { close(true); });
    });
    document.addEventListener("keydown", function (event) {
      if (event.key === "Escape" && isOpen()) { event.preventDefault(); close(true); }
    });
    // Keep keyboard focus inside the open drawer.
    drawer.addEventListener("keydown", function (event) {
      if (event.key !== "Tab" || !isOpen()) return;
      var focusable = drawer.querySelectorAll("a[href], button:not([disabled]), select, input:not([type=hidden])");
      if (!focusable.length) return;
      var first = focusable[0], last = focusable[focusable.length - 1];
      if (event.shiftKey && document.activeElement === first) { event.preventDefault(); last.focus(); }
      else if (!event.shiftKey && document.activeElement === last) { event.preventDefault(); first.focus(); }
    });
    // Widening the window past the breakpoint shows the sidebar again: forget the drawer state.
    var onChange = function () { if (!NARROW.matches) close(false); };
    if (NARROW.addEventListener) { NARROW.addEventListener("change", onChange); } else { NARROW.addListener(onChange); }
  }

  if (document.readyState === "loading") { document.addEventListener("DOMContentLoaded", setup); } else { setup(); }
})();
