// The requests list: filtered and paged by the server (/ui/api/requests), the filters kept in the URL.

import { get } from "./api.js";
import { h, phaseBadge, requestHref, table } from "./dom.js";
import { navigate } from "./main.js";

const PHASES = ["Pending", "Running", "Reconciled", "Failed", "Paused", "Suspended", "Deleting"];
const FILTERS = ["promise", "namespace", "phase", "label"];
// A page's size: the API's default, or `limit` in the URL (kept while paging), within the API's bounds.
const LIMIT = 50;
const LIMIT_MAX = 200;

export async function render(_params, query) {
  const build = async () => {
    // `page` is the server's token for the page (opaque); `offset` only numbers the rows shown.
    const offset = Number(query.get("offset") || 0);
    const limit = Math.min(Math.max(Math.trunc(Number(query.get("limit"))) || LIMIT, 1), LIMIT_MAX);
    const params = Object.fromEntries(FILTERS.map((f) => [f, query.get(f) || ""]));
    const data = await get("/ui/api/requests", { ...params, page: query.get("page") || "", limit });
    const input = (name, label, hint) =>
      h(
        "div",
        { class: "field" },
        h("label", { for: `f-${name}` }, label),
        h("input", { id: `f-${name}`, name, value: params[name], placeholder: hint, autocomplete: "off" }),
      );
    const form = h(
      "form",
      {
        class: "filters",
        role: "search",
        "aria-label": "Filter requests",
        onsubmit: (event) => {
          event.preventDefault();
          const next = new URLSearchParams();
          for (const [key, value] of new FormData(event.target)) if (value) next.set(key, value);
          navigate("/requests", next);
        },
      },
      input("promise", "Promise", "any"),
      input("namespace", "Namespace", "any"),
      h(
        "div",
        { class: "field" },
        h("label", { for: "f-phase" }, "Phase"),
        h(
          "select",
          { id: "f-phase", name: "phase" },
          h("option", { value: "" }, "any"),
          PHASES.map((p) => h("option", { value: p, selected: params.phase === p }, p)),
        ),
      ),
      input("label", "Labels", "team=payments,tier!=dev"),
      h("button", { type: "submit" }, "Filter"),
    );
    const rows = data.items.map((r) =>
      h(
        "tr",
        {},
        h("td", {}, h("a", { href: requestHref(r) }, r.name)),
        h("td", {}, r.namespace),
        h("td", {}, r.promise),
        h("td", {}, phaseBadge(r.phase)),
        h("td", {}, r.message),
        h("td", {}, Object.entries(r.labels).map(([k, v]) => h("span", { class: "label" }, `${k}=${v}`))),
      ),
    );
    const pageTo = (page, to) => () => {
      const next = new URLSearchParams(query);
      next.delete("page");
      next.delete("offset");
      if (page) {
        next.set("page", page);
        next.set("offset", String(to));
      }
      navigate("/requests", next);
    };
    const last = offset + data.items.length;
    const pager = h(
      "nav",
      { class: "pager", "aria-label": "Pages" },
      h("button", { type: "button", disabled: offset === 0, onclick: pageTo(null, 0) }, "First page"),
      h("span", { id: "page-info" }, data.items.length ? `${offset + 1}–${last} of ${data.total}` : "no requests"),
      h("button", { type: "button", disabled: !data.next, onclick: pageTo(data.next, last) }, "Next page"),
    );
    return h(
      "div",
      { class: "view" },
      h("h1", {}, "Requests"),
      form,
      table("Resource requests", ["Name", "Namespace", "Promise", "Phase", "Message", "Labels"], rows),
      pager,
    );
  };
  return { title: "Requests", node: await build(), wants: (c) => Boolean(c.promise), refresh: build };
}
