// The map: Promises → their requests → the Destinations holding their outputs, and compound edges from a request to
// the components it asked for. An SVG of links: Tab moves through the nodes, arrow keys move within and across
// columns, Enter opens one.

import { get } from "./api.js";
import { h, requestHref, svg } from "./dom.js";
import { navigate } from "./main.js";

const ROW = 28;
const COLUMNS = [40, 360, 700];
const WIDTH = 220;
const SHOWN = 200;

export async function render(_params, query) {
  const build = async () => {
    const promise = query.get("promise") || "";
    const data = await get("/ui/api/requests", { promise, limit: SHOWN });
    const rows = data.items;
    const promises = [...new Set(rows.map((r) => r.promise))].sort();
    const destinations = [...new Set(rows.flatMap((r) => r.destinations))].sort();
    const y = (i) => 30 + i * ROW;
    const at = new Map();
    promises.forEach((p, i) => at.set(`p:${p}`, [0, i]));
    rows.forEach((r, i) => at.set(`r:${r.promise}/${r.namespace}/${r.name}`, [1, i]));
    destinations.forEach((d, i) => at.set(`d:${d}`, [2, i]));
    const edges = [];
    const edge = (from, to, kind) => {
      const a = at.get(from);
      const b = at.get(to);
      if (!a || !b) return;
      const x1 = COLUMNS[a[0]] + (a[0] === b[0] ? 0 : WIDTH);
      const x2 = COLUMNS[b[0]];
      const bend = a[0] === b[0] ? x1 - 30 : (x1 + x2) / 2;
      edges.push(svg("path", { class: `edge edge-${kind}`, d: `M${x1},${y(a[1])} C${bend},${y(a[1])} ${bend},${y(b[1])} ${x2},${y(b[1])}` }));
    };
    for (const r of rows) {
      const id = `r:${r.promise}/${r.namespace}/${r.name}`;
      edge(`p:${r.promise}`, id, "owns");
      for (const d of r.destinations) edge(id, `d:${d}`, "placed");
      if (r.parent) edge(`r:${r.parent.promise}/${r.parent.namespace}/${r.parent.name}`, id, "component");
    }
    const node = (column, index, label, href, kind) =>
      svg(
        "a",
        { href, class: `node node-${kind}`, "data-col": column, "data-row": index, "aria-label": `${kind} ${label}` },
        svg("rect", { x: COLUMNS[column], y: y(index) - 11, width: WIDTH, height: 22, rx: 4 }),
        svg("text", { x: COLUMNS[column] + 8, y: y(index) + 5 }, label.length > 30 ? `${label.slice(0, 29)}…` : label),
      );
    const count = Math.max(promises.length, rows.length, destinations.length, 1);
    const graph = svg(
      "svg",
      { class: "map", role: "group", "aria-label": "Promises, requests and Destinations", viewBox: `0 0 ${COLUMNS[2] + WIDTH + 20} ${y(count)}`, width: COLUMNS[2] + WIDTH + 20, height: y(count) },
      svg("g", {}, edges),
      promises.map((p, i) => node(0, i, p, `#/promises/${encodeURIComponent(p)}`, "promise")),
      rows.map((r, i) => node(1, i, `${r.namespace}/${r.name}`, requestHref(r), "request")),
      destinations.map((d, i) => node(2, i, d, "#/destinations", "destination")),
    );
    graph.addEventListener("keydown", (event) => {
      const from = event.target.closest("a.node");
      if (!from) return;
      let col = Number(from.dataset.col);
      let row = Number(from.dataset.row);
      if (event.key === "ArrowDown") row += 1;
      else if (event.key === "ArrowUp") row -= 1;
      else if (event.key === "ArrowRight") col += 1;
      else if (event.key === "ArrowLeft") col -= 1;
      else return;
      event.preventDefault();
      const columnNodes = graph.querySelectorAll(`a.node[data-col="${col}"]`);
      if (!columnNodes.length) return;
      columnNodes[Math.max(0, Math.min(row, columnNodes.length - 1))].focus();
    });
    const filter = h(
      "form",
      { class: "filters", onsubmit: (e) => (e.preventDefault(), navigate("/map", new URLSearchParams(e.target.elements.promise.value ? { promise: e.target.elements.promise.value } : {}))) },
      h("div", { class: "field" }, h("label", { for: "map-promise" }, "Promise"), h("input", { id: "map-promise", name: "promise", value: promise, placeholder: "any", autocomplete: "off" })),
      h("button", { type: "submit" }, "Show"),
    );
    return h(
      "div",
      { class: "view" },
      h("h1", {}, "Map"),
      filter,
      h("p", { class: "hint" }, `Promises, their requests (${rows.length} of ${data.total} shown) and the Destinations holding their outputs; dashed: a compound request's components. Arrow keys move between nodes.`),
      h("div", { class: "map-box" }, graph),
    );
  };
  return { title: "Map", node: await build(), wants: (c) => Boolean(c.promise), refresh: build };
}
