// TokenLedger console: small, framework-free behaviour shared by every page.
// No inline scripts anywhere (the Content-Security-Policy forbids them).
(function () {
  "use strict";

  // Every htmx request carries the CSRF token in a header.
  document.addEventListener("htmx:configRequest", function (event) {
    var meta = document.querySelector('meta[name="csrf-token"]');
    if (meta) event.detail.headers["X-CSRF-Token"] = meta.content;
  });

  // Close an open navigation menu on outside click or Escape.
  function closeMenus(except) {
    document.querySelectorAll("details[data-nav-menu][open]").forEach(function (menu) {
      if (menu !== except) menu.removeAttribute("open");
    });
  }
  document.addEventListener("click", function (event) {
    var inside = event.target.closest && event.target.closest("details[data-nav-menu]");
    closeMenus(inside);
  });
  document.addEventListener("keydown", function (event) {
    if (event.key !== "Escape") return;
    var open = document.querySelector("details[data-nav-menu][open]");
    if (open) {
      open.removeAttribute("open");
      open.querySelector("summary").focus();
    }
  });
})();
