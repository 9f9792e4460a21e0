// Copy and share buttons of the "Refer friends" page. Without JavaScript the link stays
// selectable and the e-mail and WhatsApp buttons are plain links.
(function () {
  "use strict";
  function status(text) {
    var box = document.querySelector("[data-share-status]");
    if (box) { box.textContent = text; }
  }
  document.addEventListener("click", function (event) {
    var copy = event.target.closest("[data-copy]");
    if (copy) {
      var field = document.querySelector(copy.getAttribute("data-copy"));
      var done = function () { status(copy.getAttribute("data-copied")); };
      if (navigator.clipboard && window.isSecureContext) {
        navigator.clipboard.writeText(field.value).then(done, function () { field.select(); });
      } else {
        field.select();
        try { document.execCommand("copy"); done(); } catch (error) { /* the text is selected */ }
      }
      return;
    }
    var share = event.target.closest("[data-native-share]");
    if (share && navigator.share) {
      navigator.share({
        title: share.getAttribute("data-title"), text: share.getAttribute("data-text"),
        url: share.getAttribute("data-url")
      }).catch(function () { /* cancelled */ });
    }
  });
  document.addEventListener("DOMContentLoaded", function () {
    if (navigator.share) {
      document.querySelectorAll("[data-native-share]").forEach(function (button) { button.hidden = false; });
    }
  });
})();
