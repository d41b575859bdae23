// The requests list: filtered and paged by the server (/ui/api/requests), the filters kept in the URL.

import { get } from "./api.js";
import { h, phaseBadge, requestHref, table } from "./dom.js";
import { navigate } from "./main.js";

const PHASES = ["Pending", "Running", "Reconciled", "Failed", "Paused", "Suspended", "Deleting"];
const FILTERS = ["promise", "namespace", "phase", "label"];
const LIMIT = 50;

export async function render(_params, query) {
  const build = async () => {
    const offset = Number(query.get("offset") || 0);
    const params = Object.fromEntries(FILTERS.map((f) => [f, query.get(f) || ""]));
    const data = await get("/ui/api/requests", { ...params, offset, limit: LIMIT });
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
    const pageTo = (to) => () => {
      const next = new URLSearchParams(query);
      next.set("offset", String(to));
      navigate("/requests", next);
    };
    const last = Math.min(offset + data.items.length, data.total);
    const pager = h(
      "nav",
      { class: "pager", "aria-label": "Pages" },
      h("button", { type: "button", disabled: offset === 0, onclick: pageTo(Math.max(0, offset - LIMIT)) }, "Previous"),
      h("span", { id: "page-info" }, data.total ? `${offset + 1}–${last} of ${data.total}` : "no requests"),
      h("button", { type: "button", disabled: last >= data.total, onclick: pageTo(offset + LIMIT) }, "Next"),
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
