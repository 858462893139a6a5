// TokenLedger console: small, framework-free behaviour shared by every page.
// No inline scripts anywhere (the Content-Security-Policy forbids them).
(function () {
  "use strict";

  // Every htmx request carries the CSRF token in a header.
  document.addEventListener("htmx:configRequest", function (event) {
    var meta = document.querySelector('meta[name="csrf-token"]');
    if (meta) event.detail.headers["X-CSRF-Token"] = meta.content;
  });

  // Close an open menu (navigation, export) on outside click or Escape.
  var MENUS = "details[data-nav-menu], details[data-menu]";
  function closeMenus(except) {
    document.querySelectorAll("details[data-nav-menu][open], details[data-menu][open]").forEach(function (menu) {
      if (menu !== except) menu.removeAttribute("open");
    });
  }
  document.addEventListener("click", function (event) {
    var inside = event.target.closest && event.target.closest(MENUS);
    closeMenus(inside);
  });
  document.addEventListener("keydown", function (event) {
    if (event.key !== "Escape") return;
    var open = document.querySelector("details[data-nav-menu][open], details[data-menu][open]");
    if (open) {
      open.removeAttribute("open");
      open.querySelector("summary").focus();
    }
  });
})();
