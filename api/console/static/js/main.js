// The console's shell: login, the section links, the hash routes (`#/requests?...`, so a reload or a shared link
// shows the same view) and the live updates that re-read the view on screen when the change feed says it changed.

import { ApiError, get, setToken, token, watchChanges } from "./api.js";
import { h, toast } from "./dom.js";

// Each view's module is imported when it is first shown: a page load fetches its own view's code, not all of it (the
// browser opens 6 connections to the API, and 14 files queued behind each other, ahead of the view's data call).
const ROUTES = [
  [/^\/$/, () => import("./overview.js")],
  [/^\/requests$/, () => import("./requests.js")],
  [/^\/requests\/([^/]+)\/([^/]+)\/([^/]+)$/, () => import("./request.js")],
  [/^\/promises$/, () => import("./promises.js")],
  [/^\/promises\/([^/]+)$/, () => import("./promises.js")],
  [/^\/destinations$/, () => import("./stores.js")],
  [/^\/map$/, () => import("./map.js")],
  [/^\/apply$/, () => import("./apply.js")],
];

export const session = { who: null };
let current = null;
let stopWatching = null;
let refreshTimer = null;
let againTimer = null;
let visits = 0;

function parseHash() {
  const raw = location.hash.replace(/^#/, "") || "/";
  const [path, query = ""] = raw.split("?");
  return { path, query: new URLSearchParams(query) };
}

export function navigate(path, query) {
  const text = query && [...query].length ? `${path}?${query}` : path;
  if (location.hash !== `#${text}`) location.hash = text;
  else route();
}

// The view the hash names, being read (its module and its data), not shown yet; `shown` is absent for no view.
function resolve() {
  const { path, query } = parseHash();
  const found = ROUTES.find(([pattern]) => pattern.test(path));
  if (!found) return { hash: location.hash, path };
  const [pattern, load] = found;
  const params = pattern.exec(path).slice(1).map(decodeURIComponent);
  const module = load().catch((error) => {
    throw new CodeGone(error);
  });
  return { hash: location.hash, path, shown: module.then((view) => view.render(params, query)) };
}

// The code is served under its version (`/ui/static/<version>/`). A view's module that cannot be fetched was most
// likely of a version the API no longer serves (it was upgraded since this page was loaded): the page is loaded
// again, once per version, and so runs the new version's code throughout, never a mix of the two.
class CodeGone extends Error {}
const VERSION = new URL(import.meta.url).pathname.split("/")[3];
const RELOADED = "ktx-console-reloaded-from";

function reloadOnce() {
  if (sessionStorage.getItem(RELOADED) === VERSION) return false;
  sessionStorage.setItem(RELOADED, VERSION);
  location.reload();
  return true;
}

async function route(event, resolved = resolve()) {
  const main = document.getElementById("main");
  const { path, shown } = resolved;
  if (!shown) {
    main.replaceChildren(h("h1", {}, "Not found"), h("p", {}, `No view at ${path}.`));
    return;
  }
  for (const link of document.querySelectorAll("#nav a")) {
    const target = link.getAttribute("href").slice(1);
    const active = target === "/" ? path === "/" : path.startsWith(target);
    if (active) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  const visit = ++visits;
  current = null;
  try {
    const view = await shown;
    if (visit !== visits) return; // another route began meanwhile: it shows its view
    current = view;
    main.replaceChildren(current.node);
    readAgainIfDue(view);
    document.title = `${current.title || "ktx"} · ktx console`;
    // A link followed (not the first load): the keyboard's next Tab starts in the new view, not at the page's top,
    // as it would from the link that was just removed.
    if (event) main.focus({ preventScroll: true });
  } catch (error) {
    if (error instanceof ApiError && error.status === 401) return showLogin("The token was refused; sign in again.");
    if (error instanceof CodeGone && reloadOnce()) return;
    current = null;
    main.replaceChildren(h("h1", {}, "Could not show this view"), h("p", { class: "error" }, error.message));
  }
}

// After an action the view is read again at once (its result shown), wherever the focus is.
export async function refreshNow() {
  const view = current;
  if (!view || !view.refresh) return;
  const next = await view.refresh();
  if (next && view === current) showRefreshed(next);
  readAgainIfDue(view);
}

// A view whose data said more is coming without a change to announce it (the overview's counts being counted) is
// read again after the time it asks, for as long as it asks and is on screen.
function readAgainIfDue(view) {
  if (view !== current) return;
  clearTimeout(againTimer);
  const ms = view.readAgainIn ? view.readAgainIn() : null;
  if (ms === null) return;
  againTimer = setTimeout(() => view === current && readAgain(view), ms);
}

// A live update: the view read again and shown, if it is still the one on screen (it may have been left while it was
// read: the page shows what is on screen now, not what was).
async function readAgain(view) {
  try {
    const next = await view.refresh();
    if (next && view === current) showRefreshed(next);
    readAgainIfDue(view);
  } catch (error) {
    toast(`Live update failed: ${error.message}`, true);
  }
}

// A view read again replaces its nodes, the focused control with them. Whoever is on a control stays on the same one
// in the new nodes (the same kind, target and words), or on the view if it went: a live update must not throw a
// keyboard user back to the page's top, where the next Tab would start again.
function showRefreshed(next) {
  const main = document.getElementById("main");
  const active = document.activeElement;
  const was = active && active !== main && main.contains(active) ? identity(active) : null;
  main.replaceChildren(next);
  if (was === null) return;
  const same = [...main.querySelectorAll(active.tagName)].find((e) => identity(e) === was);
  (same || main).focus({ preventScroll: true });
}

const identity = (e) =>
  [e.tagName, e.id, e.getAttribute("href"), e.getAttribute("name"), e.textContent.trim()].join("\u0000");

// A burst of changes (a pipeline run writes status several times) re-reads the view once.
function changed(change) {
  if (!current || !current.wants || !current.wants(change)) return;
  // Someone typing in a form or reading a dialog keeps it: the view is re-read on the next change after that.
  const active = document.activeElement;
  if (document.querySelector("dialog[open]") || (active && active.closest("#main form"))) return;
  clearTimeout(refreshTimer);
  const view = current;
  refreshTimer = setTimeout(() => readAgain(view), 300);
}

function showLogin(message) {
  if (stopWatching) stopWatching();
  document.getElementById("nav").hidden = true;
  document.getElementById("who").textContent = "";
  const input = h("input", { id: "token", type: "password", autocomplete: "off", required: true, spellcheck: "false" });
  const form = h(
    "form",
    {
      class: "login",
      onsubmit: async (event) => {
        event.preventDefault();
        setToken(input.value.trim());
        await start();
      },
    },
    h("h1", {}, "Sign in to the ktx console"),
    message ? h("p", { class: "error", role: "alert" }, message) : null,
    h("label", { for: "token" }, "API token (from ktx token create)"),
    input,
    h("button", { type: "submit" }, "Sign in"),
    h("p", { class: "hint" }, "The token is kept in this browser tab only and sent to this API alone."),
  );
  document.getElementById("main").replaceChildren(form);
  input.focus();
}

async function start() {
  // The first view is read while the session is checked, not after it: a page load waits for the slower of the two,
  // not for both in turn. A refused token's view is dropped unseen (the login replaces it), its refusal with it.
  let first = resolve();
  if (first.shown) first.shown.catch(() => {});
  try {
    session.who = await get("/ui/api/session");
  } catch (error) {
    if (error instanceof ApiError && error.status === 401) {
      const refused = token();
      setToken(null);
      return showLogin(refused ? `The token was refused (${error.message}).` : "");
    }
    document.getElementById("main").replaceChildren(h("p", { class: "error" }, error.message));
    return;
  }
  document.getElementById("nav").hidden = false;
  const who = document.getElementById("who");
  const scope = session.who.role === "platform" ? "platform" : `team: ${session.who.namespaces.join(", ")}`;
  who.replaceChildren(`${session.who.name} (${scope})`);
  if (token()) {
    who.append(h("button", { type: "button", class: "link", onclick: () => (setToken(null), showLogin("")) }, "Sign out"));
  }
  const live = document.getElementById("live");
  if (stopWatching) stopWatching();
  stopWatching = watchChanges(changed, (state) => {
    live.textContent = state === "live" ? "● live" : "○ reconnecting";
    live.dataset.state = state;
  });
  window.onhashchange = route;
  // A link followed while the session was checked: its view is the one to show.
  if (first.hash !== location.hash) first = resolve();
  await route(undefined, first);
}

// The skip link's `#main` is no view of the hash routes: it moves the focus to the view instead.
document.querySelector(".skip").addEventListener("click", (event) => {
  event.preventDefault();
  document.getElementById("main").focus();
});

start();
