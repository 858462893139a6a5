// Admin pages: confirmation before destructive forms, copy-to-clipboard for a new key,
// filters that apply on change. Loaded from /static (no inline scripts: CSP).
(function () {
  "use strict";

  // <button data-confirm="Question?">: ask before submitting its form.
  document.addEventListener("click", function (event) {
    var button = event.target.closest && event.target.closest("[data-confirm]");
    if (button && !window.confirm(button.getAttribute("data-confirm"))) {
      event.preventDefault();
    }
  });

  // <button data-copy="element-id" hidden>: shown only where the clipboard works.
  document.querySelectorAll("[data-copy]").forEach(function (button) {
    var target = document.getElementById(button.getAttribute("data-copy"));
    if (!target || !navigator.clipboard) return;
    button.hidden = false;
    button.addEventListener("click", function () {
      navigator.clipboard.writeText(target.textContent.trim()).then(function () {
        button.textContent = "Copied";
        setTimeout(function () { button.textContent = "Copy"; }, 2000);
      });
    });
  });

  // <form data-autosubmit>: submit when a select changes.
  document.querySelectorAll("form[data-autosubmit]").forEach(function (form) {
    form.addEventListener("change", function () { form.submit(); });
  });
})();
