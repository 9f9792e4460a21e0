/* The placeholder picker next to a campaign variant's subject and text fields
   (campaigns.admin.PlaceholderTextInput / PlaceholderTextarea): a click on a placeholder inserts
   it at the cursor of the field in the same .placeholder-field wrapper (replacing a selection).
   One delegated listener, so rows added with "Add another variant" work too. */
(function () {
  "use strict";

  function insertAtCursor(field, text) {
    const start = field.selectionStart ?? field.value.length;
    const end = field.selectionEnd ?? start;
    field.value = field.value.slice(0, start) + text + field.value.slice(end);
    const cursor = start + text.length;
    field.focus();
    field.setSelectionRange(cursor, cursor);
    field.dispatchEvent(new Event("input", { bubbles: true }));
    field.dispatchEvent(new Event("change", { bubbles: true }));
  }

  document.addEventListener("click", function (event) {
    const button = event.target.closest(".placeholder-insert");
    if (!button) return;
    event.preventDefault();
    const wrapper = button.closest(".placeholder-field");
    const field = wrapper && wrapper.querySelector("input[type='text'], input:not([type]), textarea");
    if (field) insertAtCursor(field, button.dataset.placeholder);
  });
})();
