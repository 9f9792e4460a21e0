/* The portal as an app: registers the service worker (/sw.js), tells it which account is signed
   in (it drops a stored card of another account), deletes the stored card before signing out,
   offers the install prompt, and drives the push switch on the profile page. */
(function () {
  "use strict";

  var CARD_CACHE = "treuepunkt-card";
  var body = document.body;
  var account = body.getAttribute("data-portal-account") || "";

  function tellWorker(message) {
    if (!("serviceWorker" in navigator)) {
      return;
    }
    navigator.serviceWorker.ready.then(function (registration) {
      if (registration.active) {
        registration.active.postMessage(message);
      }
    });
  }

  if ("serviceWorker" in navigator) {
    navigator.serviceWorker.register("/sw.js", {scope: "/"}).catch(function () { /* the site works without it */ });
    tellWorker({type: "account", account: account});
  }

  // Signing out: the card copy goes first, then the form is sent.
  document.querySelectorAll("form.logout").forEach(function (form) {
    form.addEventListener("submit", function (event) {
      if (!("caches" in window) || form.dataset.cleared) {
        return;
      }
      event.preventDefault();
      form.dataset.cleared = "1";
      tellWorker({type: "signed-out"});
      caches.delete(CARD_CACHE).catch(function () {}).then(function () { form.submit(); });
    });
  });

  // Install hint: browsers that offer an install prompt get a button for it.
  var installButton = document.querySelector("[data-install-button]");
  window.addEventListener("beforeinstallprompt", function (event) {
    event.preventDefault();
    if (!installButton) {
      return;
    }
    installButton.hidden = false;
    installButton.addEventListener("click", function () {
      installButton.hidden = true;
      event.prompt();
    }, {once: true});
  });

  // --- Push switch -----------------------------------------------------------------------------
  var pushSwitch = document.querySelector("[data-push-switch]");
  if (!pushSwitch) {
    return;
  }
  var status = document.querySelector("[data-push-status]");
  var texts = pushSwitch.dataset;

  function say(text) {
    if (status) {
      status.textContent = text || "";
    }
  }

  function csrfToken() {
    try {
      return JSON.parse(body.getAttribute("hx-headers") || "{}")["X-CSRFToken"] || "";
    } catch (error) {
      return "";
    }
  }

  function post(url, subscription) {
    return fetch(url, {
      method: "POST", credentials: "same-origin",
      headers: {"Content-Type": "application/json", "X-CSRFToken": csrfToken()},
      body: JSON.stringify(subscription),
    }).then(function (response) {
      return response.json().catch(function () { return {ok: false, message: texts.textFailed}; })
        .then(function (data) {
          if (!response.ok || !data.ok) {
            throw new Error(data.message || texts.textFailed);
          }
          return data;
        });
    });
  }

  function applicationServerKey(base64url) {
    var padded = (base64url + "===".slice((base64url.length + 3) % 4)).replace(/-/g, "+").replace(/_/g, "/");
    var raw = atob(padded);
    var bytes = new Uint8Array(raw.length);
    for (var i = 0; i < raw.length; i += 1) {
      bytes[i] = raw.charCodeAt(i);
    }
    return bytes;
  }

  function registration() {
    return navigator.serviceWorker.ready;
  }

  function switchOn() {
    return Notification.requestPermission().then(function (permission) {
      if (permission !== "granted") {
        throw new Error(texts.textDenied);
      }
      return registration();
    }).then(function (reg) {
      return reg.pushManager.subscribe({userVisibleOnly: true,
                                        applicationServerKey: applicationServerKey(texts.publicKey)});
    }).then(function (subscription) {
      return post(texts.subscribeUrl, subscription.toJSON()).catch(function (error) {
        subscription.unsubscribe();  // the server refused it: don't leave a device half on
        throw error;
      });
    });
  }

  function switchOff() {
    return registration().then(function (reg) {
      return reg.pushManager.getSubscription();
    }).then(function (subscription) {
      if (!subscription) {
        return {message: texts.textOff};
      }
      var data = subscription.toJSON();
      return subscription.unsubscribe().then(function () { return post(texts.unsubscribeUrl, data); });
    });
  }

  var supported = "serviceWorker" in navigator && "PushManager" in window && "Notification" in window;
  if (!supported || !texts.publicKey) {
    pushSwitch.disabled = true;
    say(texts.publicKey ? texts.textUnsupported : texts.textUnavailable);
    return;
  }
  registration().then(function (reg) { return reg.pushManager.getSubscription(); }).then(function (subscription) {
    pushSwitch.checked = Boolean(subscription) && Notification.permission === "granted";
    pushSwitch.disabled = false;
  });

  pushSwitch.addEventListener("change", function () {
    var wanted = pushSwitch.checked;
    pushSwitch.disabled = true;
    say(texts.textWorking);
    (wanted ? switchOn() : switchOff()).then(function (data) {
      pushSwitch.checked = wanted;
      say(data.message);
    }).catch(function (error) {
      pushSwitch.checked = !wanted;
      say(error.message || texts.textFailed);
    }).then(function () {
      pushSwitch.disabled = false;
    });
  });
}());
