/* The card page's full-screen mode for the till: both codes as large as the screen allows.
   The overlay itself covers the viewport (CSS), so it works where the Fullscreen API is missing
   or refused (iPhone Safari); where the API works it also hides the browser's bars. Closes with
   its button or Escape; keeps the screen on (Screen Wake Lock) where the browser offers it. */
(function () {
  "use strict";

  var overlay = document.querySelector("[data-fullscreen]");
  var openButton = document.querySelector("[data-fullscreen-open]");
  if (!overlay || !openButton) {
    return;
  }
  var closeButton = overlay.querySelector("[data-fullscreen-close]");
  var wakeLock = null;

  function keepScreenOn() {
    if (!("wakeLock" in navigator) || overlay.hidden) {
      return;
    }
    navigator.wakeLock.request("screen").then(function (lock) {
      wakeLock = lock;
    }).catch(function () { /* refused (battery saver, no user gesture): the card still shows */ });
  }

  function letScreenSleep() {
    if (wakeLock) {
      wakeLock.release().catch(function () {});
      wakeLock = null;
    }
  }

  function open() {
    overlay.hidden = false;
    document.documentElement.classList.add("card-fullscreen-active");
    closeButton.focus();
    if (overlay.requestFullscreen) {
      overlay.requestFullscreen({navigationUI: "hide"}).catch(function () { /* the CSS overlay is enough */ });
    }
    keepScreenOn();
  }

  function close() {
    if (overlay.hidden) {
      return;
    }
    overlay.hidden = true;
    document.documentElement.classList.remove("card-fullscreen-active");
    letScreenSleep();
    openButton.focus();
    if (document.fullscreenElement && document.exitFullscreen) {
      // Leaving full screen moves the focus to the page itself: back to the button afterwards.
      document.exitFullscreen().catch(function () {}).then(function () { openButton.focus(); });
    }
  }

  openButton.hidden = false;
  openButton.addEventListener("click", open);
  closeButton.addEventListener("click", close);
  document.addEventListener("keydown", function (event) {
    if (event.key === "Escape" && !overlay.hidden) {
      event.preventDefault();
      close();
    }
  });
  // Escape in real full screen is taken by the browser: it leaves full screen, and so do we.
  document.addEventListener("fullscreenchange", function () {
    if (!document.fullscreenElement) {
      close();
    }
  });
  // The browser drops the wake lock when the page is hidden; back on screen, ask again.
  document.addEventListener("visibilitychange", function () {
    if (document.visibilityState === "visible" && !overlay.hidden) {
      keepScreenOn();
    }
  });
}());
