/* Names for the widgets Django's admin scripts build without one (axe-core counts them as
   critical or serious): select2's combobox, its rendered value and its search box (autocomplete
   fields) take the label of the select they stand for; the filter widget's search icons, spans
   with an aria-label, get role="img" (an aria-label on a plain span is not allowed). Widgets
   appear after load (select2, inline rows, an opened dropdown): a MutationObserver fixes them. */
(function () {
  "use strict";

  function labelOf(select) {
    if (!select.id) return "";
    const label = document.querySelector('label[for="' + CSS.escape(select.id) + '"]');
    return label ? label.textContent.replace(/\s+/g, " ").replace(/[:*]\s*$/, "").trim() : "";
  }

  function nameSelect2(select) {
    const name = labelOf(select);
    const container = select.nextElementSibling;
    if (!name || !container || !container.classList.contains("select2")) return;
    container.querySelectorAll(".select2-selection, .select2-selection__rendered, .select2-search__field")
      .forEach((element) => { if (!element.getAttribute("aria-label")) element.setAttribute("aria-label", name); });
  }

  function fix() {
    document.querySelectorAll("select.select2-hidden-accessible").forEach(nameSelect2);
    // The open dropdown's search box belongs to the select whose combobox is expanded.
    const open = document.querySelector(".select2-selection[aria-expanded='true']");
    document.querySelectorAll(".select2-dropdown .select2-search__field:not([aria-label])").forEach((field) => {
      field.setAttribute("aria-label", (open && open.getAttribute("aria-label")) || document.title);
    });
    document.querySelectorAll(".help-tooltip[aria-label]:not([role]), .search-label-icon[aria-label]:not([role])")
      .forEach((icon) => icon.setAttribute("role", "img"));
  }

  let pending = false;
  function fixSoon() {
    if (pending) return;
    pending = true;
    window.requestAnimationFrame(() => { pending = false; fix(); });
  }

  function start() {
    fix();
    new MutationObserver(fixSoon).observe(document.body, {childList: true, subtree: true});
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
  window.addEventListener("load", fix);
})();
