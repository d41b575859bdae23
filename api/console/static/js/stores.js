// Destinations and state stores: labels, mode, readiness with the reason, what is placed there, re-syncs.

import { ApiError, get } from "./api.js";
import { age, h, phaseBadge, section, table } from "./dom.js";

async function listOf(kind) {
  try {
    return await get(`/objects/${kind}`);
  } catch (error) {
    if (error instanceof ApiError && error.status === 403) return null;
    throw error;
  }
}

function ready(obj) {
  return ((obj.status || {}).conditions || []).find((c) => c.type === "Ready") || {};
}

export async function render() {
  const build = async () => {
    const [destinations, git, buckets] = await Promise.all(["destination", "gitstatestore", "bucketstatestore"].map(listOf));
    if (destinations === null) {
      return h("div", { class: "view" }, h("h1", {}, "Destinations"), h("p", {}, "This token may not read Destinations or state stores."));
    }
    const destinationRows = destinations.map((d) => {
      const r = ready(d);
      const spec = d.spec || {};
      const writes = ((d.status || {}).conditions || []).find((c) => c.type === "WritesSucceeded");
      const resyncs = ((d._ktx || {}).events || []).filter((e) => /resync|drift/i.test(`${e.reason} ${e.message}`));
      return h(
        "tr",
        {},
        h("th", { scope: "row" }, d.metadata.name),
        h("td", {}, Object.entries(d.metadata.labels || {}).map(([k, v]) => h("span", { class: "label" }, `${k}=${v}`))),
        h("td", {}, `${(spec.stateStoreRef || {}).kind}/${(spec.stateStoreRef || {}).name}`, h("br"), spec.filepath ? spec.filepath.mode : "nestedByMetadata", spec.strictMatchLabels ? ", strict labels" : ""),
        h("td", {}, phaseBadge(r.status === "True" ? "Ready" : "NotReady"), ` ${r.reason || ""}`, r.status !== "True" && r.message ? h("div", {}, r.message) : null),
        h("td", {}, writes ? `${writes.status === "True" ? "ok" : `failed: ${writes.message}`} ${age(writes.lastTransitionTime)}` : "-"),
        h("td", { class: "num" }, h("a", { href: `#/map` }, (d._ktx || {}).objects ?? 0)),
        h("td", {}, (d.status || {}).lastResyncTime ? `last ${age(d.status.lastResyncTime)}` : "", resyncs.length ? ` (${resyncs.reduce((n, e) => n + (e.count || 1), 0)} re-syncs)` : ""),
      );
    });
    const storeRows = [...(git || []), ...(buckets || [])].map((s) => {
      const r = ready(s);
      const spec = s.spec || {};
      return h(
        "tr",
        {},
        h("th", { scope: "row" }, s.metadata.name),
        h("td", {}, s.kind),
        h("td", {}, h("code", {}, spec.url || `${spec.endpoint || ""}/${spec.bucketName || ""}`), spec.path ? ` path ${spec.path}` : "", spec.branch ? ` branch ${spec.branch}` : ""),
        h("td", {}, phaseBadge(r.status === "True" ? "Ready" : "NotReady"), ` ${r.reason || ""}`, r.status !== "True" && r.message ? h("div", {}, r.message) : null),
      );
    });
    return h(
      "div",
      { class: "view" },
      h("h1", {}, "Destinations and state stores"),
      section("Destinations", table("Destinations", ["Name", "Labels", "Store and mode", "Ready", "Last write", "Objects", "Re-syncs"], destinationRows)),
      section("State stores", table("Git and bucket state stores", ["Name", "Kind", "Where", "Ready"], storeRows)),
    );
  };
  return { title: "Destinations", node: await build(), wants: (c) => ["Destination", "GitStateStore", "BucketStateStore"].includes(c.kind), refresh: build };
}
