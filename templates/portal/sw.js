{% autoescape off %}/* Treuepunkt service worker (rendered by members.pwa.service_worker; the design is in its docstring).
   Shell: cache first. Card page: network first, the member's last copy offline. Other pages:
   network, the offline page when there is none. Push: show the notification, open its link. */
"use strict";

const VERSION = "{{ version }}";
const SHELL_CACHE = "treuepunkt-shell-" + VERSION;
const CARD_CACHE = "{{ card_cache }}";
const SHELL = {{ shell }};
const OFFLINE_PAGES = {{ offline_pages }};
const CARD_PATHS = {{ card_paths }};
const ACCOUNT_ENTRY = "/__portal-account__";  // which account the stored card belongs to

self.addEventListener("install", (event) => {
  // Without cookies: the shell holds nothing of whoever happens to be signed in.
  event.waitUntil(caches.open(SHELL_CACHE)
    .then((cache) => cache.addAll(SHELL.map((url) => new Request(url, {credentials: "omit"}))))
    .then(() => self.skipWaiting()));
});

self.addEventListener("activate", (event) => {
  event.waitUntil(caches.keys()
    .then((names) => Promise.all(names
      .filter((name) => name.startsWith("treuepunkt-shell-") && name !== SHELL_CACHE)
      .map((name) => caches.delete(name))))
    .then(() => self.clients.claim()));
});

async function storedAccount() {
  const cache = await caches.open(CARD_CACHE);
  const entry = await cache.match(ACCOUNT_ENTRY);
  return entry ? entry.text() : "";
}

// A page of another account, or of nobody, drops the stored card: never show one member's card
// to the next person who signs in on this device.
async function accountSeen(account) {
  const stored = await storedAccount();
  if (stored && stored !== account) {
    await caches.delete(CARD_CACHE);
  }
}

async function cardStore(request, response) {
  const account = response.headers.get("X-Portal-Account") || "";
  if (!account || response.redirected || response.status !== 200) {
    return;  // not the card page of a signed-in member (e.g. the sign-in page after a redirect)
  }
  await accountSeen(account);
  const cache = await caches.open(CARD_CACHE);
  await cache.put(ACCOUNT_ENTRY, new Response(account));
  await cache.put(new URL(request.url).pathname, response);
}

function language(pathname) {
  const match = pathname.match(/^\/([a-z]{2})\//);
  return match && OFFLINE_PAGES[match[1]] ? match[1] : "{{ default_language }}";
}

async function offlinePage(pathname) {
  const cache = await caches.open(SHELL_CACHE);
  return (await cache.match(OFFLINE_PAGES[language(pathname)])) || Response.error();
}

// The stored copy, with its offline notice shown and what needs the network hidden.
async function cardFromCache(pathname) {
  const cache = await caches.open(CARD_CACHE);
  const stored = await cache.match(pathname);
  if (!stored) {
    return offlinePage(pathname);
  }
  const html = (await stored.text())
    .replace("data-offline-notice hidden", "data-offline-notice")
    .replaceAll("data-online-only", "data-online-only hidden");
  return new Response(html, {status: 200, headers: {"Content-Type": "text/html; charset=utf-8"}});
}

async function card(event, pathname) {
  try {
    const response = await fetch(event.request);
    event.waitUntil(cardStore(event.request, response.clone()));
    return response;
  } catch (error) {
    return cardFromCache(pathname);
  }
}

async function page(event, pathname) {
  try {
    return await fetch(event.request);
  } catch (error) {
    return offlinePage(pathname);
  }
}

async function shellAsset(request) {
  const cache = await caches.open(SHELL_CACHE);
  return (await cache.match(request, {ignoreVary: true})) || fetch(request);
}

self.addEventListener("fetch", (event) => {
  const request = event.request;
  const url = new URL(request.url);
  if (request.method !== "GET" || url.origin !== self.location.origin) {
    return;
  }
  if (request.mode === "navigate") {
    event.respondWith(CARD_PATHS.includes(url.pathname) ? card(event, url.pathname) : page(event, url.pathname));
  } else if (SHELL.includes(url.pathname)) {
    event.respondWith(shellAsset(request));
  }
});

self.addEventListener("message", (event) => {
  const data = event.data || {};
  if (data.type === "account") {
    event.waitUntil(accountSeen(String(data.account || "")));
  } else if (data.type === "signed-out") {
    event.waitUntil(caches.delete(CARD_CACHE));
  }
});

self.addEventListener("push", (event) => {
  let data = {};
  try {
    data = event.data ? event.data.json() : {};
  } catch (error) {
    data = {body: event.data ? event.data.text() : ""};
  }
  event.waitUntil(self.registration.showNotification(data.title || "Treuepunkt", {
    body: data.body || "",
    tag: data.tag || undefined,
    icon: SHELL.find((url) => url.endsWith("icon-192.png")),
    data: {url: data.url || "/"},
  }));
});

self.addEventListener("notificationclick", (event) => {
  event.notification.close();
  const target = new URL(event.notification.data && event.notification.data.url || "/", self.location.origin);
  if (target.origin !== self.location.origin) {
    return;  // only our own pages open from a notification
  }
  event.waitUntil(self.clients.matchAll({type: "window"}).then((windows) => {
    for (const client of windows) {
      if (client.url === target.href && "focus" in client) {
        return client.focus();
      }
    }
    return self.clients.openWindow(target.href);
  }));
});
{% endautoescape %}
