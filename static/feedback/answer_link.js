// The page behind a score link of a survey e-mail: send the clicked score at once, so the member
// counts from the click (the page that comes back says it is saved and lets them change it or
// add a comment). Only a browser that runs scripts sends it: link scanners that merely fetch the
// link record nothing. Without JavaScript the member presses the button, as before.
(function () {
  "use strict";
  var sent = false;
  function send() {
    var form = document.querySelector("form[data-auto-answer]");
    if (sent || !form || !form.querySelector('input[name="score"]:checked')) { return; }
    if (document.visibilityState === "hidden") { return; }  // a prerendered or background page: wait
    sent = true;
    form.submit();
  }
  document.addEventListener("DOMContentLoaded", send);
  document.addEventListener("visibilitychange", send);
})();
