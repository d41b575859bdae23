// The overview: requests by phase per Promise, Destinations and state stores, recent failures and events.

import { get } from "./api.js";
import { age, h, phaseBadge, requestHref, section, table } from "./dom.js";

const PHASES = ["Reconciled", "Running", "Pending", "Failed", "Paused", "Suspended", "Deleting"];

// The API answers with the counts it keeps at once, and says when a change is not counted yet: the page reads them
// again shortly, since the counting brings no change of its own that would wake the page.
const DUE_AGAIN_MS = 2000;

export async function render() {
  let due = false;
  const build = async () => {
    const data = await get("/ui/api/overview");
    due = Boolean(data.countsDue);
    const counts = Object.entries(data.counts).map(([promise, perPhase]) =>
      h(
        "tr",
        {},
        h("th", { scope: "row" }, h("a", { href: `#/promises/${encodeURIComponent(promise)}` }, promise)),
        PHASES.map((phase) =>
          h(
            "td",
            { class: "num" },
            perPhase[phase]
              ? h("a", { href: `#/requests?promise=${encodeURIComponent(promise)}&phase=${phase}` }, perPhase[phase])
              : "0",
          ),
        ),
      ),
    );
    const stores = data.stores.map((s) =>
      h(
        "tr",
        {},
        h("td", {}, s.kind),
        h("td", {}, s.name),
        h("td", {}, phaseBadge(s.ready === "True" ? "Ready" : "NotReady"), " ", s.reason),
        h("td", {}, s.lastWrite.status ? `${s.lastWrite.status === "True" ? "ok" : "failed"} ${age(s.lastWrite.lastTransitionTime)}` : "-"),
        h("td", {}, s.lastWrite.status === "False" ? s.lastWrite.message : s.message),
      ),
    );
    const failures = data.failures.map((f) =>
      h(
        "tr",
        {},
        h("td", {}, h("a", { href: requestHref({ kind: f.objectKind, ...f }) }, `${f.namespace}/${f.name}`)),
        h("td", {}, f.promise),
        h("td", {}, `${f.action}/${f.pipeline}`),
        h("td", {}, f.container ? `${f.container} (exit ${f.exitCode})` : "-"),
        h("td", {}, h("pre", { class: "tail" }, f.logTail || f.message)),
      ),
    );
    const events = data.events.map((e) =>
      h(
        "tr",
        {},
        h("td", {}, age(e.last_seen)),
        h("td", {}, e.type),
        h("td", {}, e.reason),
        h("td", {}, h("a", { href: requestHref({ kind: e.objectKind, ...e }) }, `${e.namespace}/${e.name}`)),
        h("td", {}, e.message),
      ),
    );
    return h(
      "div",
      { class: "view" },
      h("h1", {}, "Overview"),
      section(
        "Requests by phase",
        table("Requests of each Promise in each phase", ["Promise", ...PHASES], counts),
        // The API keeps these counts and counts again within seconds of a change (docs/console.md).
        data.countedAt ? h("p", { class: "hint", id: "counted-at" }, `Counted ${age(data.countedAt)}.`) : null,
      ),
      section(
        "Destinations and state stores",
        table("Readiness and last write", ["Kind", "Name", "Ready", "Last write", "Message"], stores),
      ),
      section(
        "Recent failures",
        table("Failed requests and their failing container", ["Request", "Promise", "Pipeline", "Container", "Log"], failures),
      ),
      section("Recent events", table("Newest events first", ["When", "Type", "Reason", "Object", "Message"], events)),
    );
  };
  return {
    title: "Overview",
    node: await build(),
    wants: () => true,
    refresh: build,
    readAgainIn: () => (due ? DUE_AGAIN_MS : null),
  };
}
