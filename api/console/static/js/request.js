// A request's page: spec and status, conditions as a timeline, pipeline runs with their logs, placements with their
// commits, the compound tree, workflow control, health and off-platform actions; and the actions on it, each through
// the REST routes the CLI uses.

import { ApiError, call, get } from "./api.js";
import { age, h, phaseBadge, requestHref, section, table, toast } from "./dom.js";
import { navigate, refreshNow } from "./main.js";
import { dump } from "./yaml.js";

const PAUSED = "kratix.io/paused";
const SUSPENDED = "kratix.io/workflow-suspended";
const COMPONENT_OF = {
  promise: "kratix.io/component-of-promise-name",
  name: "kratix.io/component-of-resource-name",
  namespace: "kratix.io/component-of-resource-namespace",
};

function objectPath(kind, name) {
  return `/objects/${encodeURIComponent(kind)}/${encodeURIComponent(name)}`;
}

export async function render([kind, namespace, name]) {
  const logsShown = new Set();
  let filesShown = null;
  const filesOpen = new Set();
  const base = objectPath(kind, name);
  const act = async (what, method, path, body) => {
    try {
      await call(method, path, { body, params: { namespace } });
      toast(`${what}: done`);
      await refreshNow();
      return true;
    } catch (error) {
      toast(`${what} refused: ${error.message}`, true);
      return false;
    }
  };
  const label = (set, remove = []) => act("Label", "POST", `${base}/labels`, { set, remove });

  const build = async () => {
    const detail = await get(`/ui/api/requests/${encodeURIComponent(kind)}/${encodeURIComponent(name)}`, { namespace });
    const obj = detail.object;
    const meta = obj.metadata || {};
    const status = obj.status || {};
    const ktx = obj._ktx || {};
    const labels = meta.labels || {};
    let tree = null;
    try {
      tree = await get(`${base}/tree`, { namespace });
    } catch (error) {
      if (!(error instanceof ApiError)) throw error;
    }

    const actions = h(
      "div",
      { class: "actions", role: "group", "aria-label": "Actions" },
      labels[PAUSED] === "true"
        ? h("button", { type: "button", onclick: () => label({}, [PAUSED]) }, "Unpause")
        : h("button", { type: "button", onclick: () => label({ [PAUSED]: "true" }) }, "Pause"),
      h("button", { type: "button", onclick: () => act("Reconcile", "POST", `${base}/reconcile`) }, "Reconcile"),
      labels[SUSPENDED]
        ? h("button", { type: "button", class: "primary", onclick: () => label({}, [SUSPENDED]) }, "Resume (approve)")
        : null,
      h(
        "button",
        {
          type: "button",
          onclick: () => {
            const document_ = { apiVersion: obj.apiVersion, kind: obj.kind, metadata: { name, namespace, labels }, spec: obj.spec || {} };
            sessionStorage.setItem("ktx.edit", dump(document_));
            navigate("/apply");
          },
        },
        "Edit YAML",
      ),
      h("button", { type: "button", class: "danger", onclick: () => confirmDelete(false) }, "Delete"),
      h("button", { type: "button", class: "danger", onclick: () => confirmDelete(true) }, "Force delete"),
    );

    const labelForm = h(
      "form",
      {
        class: "inline",
        "aria-label": "Set or remove a label",
        onsubmit: async (event) => {
          event.preventDefault();
          const text = event.target.elements.label.value.trim();
          if (text.endsWith("-")) await label({}, [text.slice(0, -1)]);
          else {
            const at = text.indexOf("=");
            await label({ [text.slice(0, at)]: text.slice(at + 1) });
          }
        },
      },
      h("label", { for: "label-change" }, "Label (key=value, or key- to remove)"),
      h("input", { id: "label-change", name: "label", required: true, pattern: "[^=]+=.*|.+-", autocomplete: "off" }),
      h("button", { type: "submit" }, "Apply label"),
    );

    const dialog = h("dialog", { id: "delete-dialog", "aria-labelledby": "delete-title" });
    async function confirmDelete(force) {
      dialog.replaceChildren(
        h("h2", { id: "delete-title" }, force ? `Force-delete ${name}?` : `Delete ${name}?`),
        h(
          "p",
          {},
          force
            ? "Force cancels the delete pipelines (running, suspended or failing) and skips waiting for them: the " +
                "records and the files placed on Destinations are still removed, but whatever the delete pipelines " +
                "would have cleaned up outside the platform is left as it is."
            : "The delete pipelines run, then the files placed on Destinations are removed.",
        ),
        h(
          "form",
          { method: "dialog" },
          h("button", { value: "cancel", type: "submit" }, "Cancel"),
          h("button", { value: "delete", type: "submit", class: "danger", id: "confirm-delete" }, force ? "Force delete" : "Delete"),
        ),
      );
      dialog.onclose = async () => {
        if (dialog.returnValue !== "delete") return;
        await act(force ? "Force delete" : "Delete", "DELETE", force ? `${base}?force=true` : base);
      };
      dialog.showModal();
    }

    const conditions = [...(status.conditions || [])].sort((a, b) =>
      String(b.lastTransitionTime || "").localeCompare(String(a.lastTransitionTime || "")),
    );
    const timeline = h(
      "ol",
      { class: "timeline" },
      conditions.map((c) =>
        h(
          "li",
          { class: `cond cond-${String(c.status).toLowerCase()}` },
          h("time", { datetime: c.lastTransitionTime || "" }, c.lastTransitionTime ? `${c.lastTransitionTime} (${age(c.lastTransitionTime)})` : ""),
          h("strong", {}, ` ${c.type} = ${c.status}`),
          ` ${c.reason || ""}${c.message ? `: ${c.message}` : ""}`,
        ),
      ),
    );

    const pipelines = ((status.kratix || {}).workflows || {}).pipelines || [];
    const control = pipelines.map((p) =>
      h(
        "tr",
        {},
        h("td", {}, p.name),
        h("td", {}, phaseBadge(p.phase || "")),
        h("td", {}, p.message || ""),
        h("td", {}, p.attempts ?? ""),
        h("td", {}, p.nextRetryAt ? `${p.nextRetryAt}` : ""),
      ),
    );

    const runs = (ktx.runs || []).map((run) => {
      const seconds = (run.containers || []).reduce((sum, c) => sum + Number(c.duration_seconds || 0), 0);
      const key = `${run.action}/${run.pipeline}`;
      const logs = h("div", { class: "logs", id: `logs-${run.action}-${run.pipeline}` });
      const showLogs = async () => {
        logsShown.add(key);
        const found = await get(`${base}/logs`, { namespace, pipeline: run.pipeline });
        logs.replaceChildren(
          ...found
            .filter((entry) => entry.action === run.action)
            .map((entry) =>
              h(
                "figure",
                { class: "log" },
                h("figcaption", {}, `${entry.container} (exit ${entry.exitCode})${entry.truncated ? ", end only" : ""}`),
                h("pre", { tabindex: "0" }, entry.log || "(empty)"),
              ),
            ),
        );
      };
      if (logsShown.has(key)) showLogs();
      return h(
        "article",
        { class: "run" },
        h(
          "h3",
          {},
          `${key} `,
          phaseBadge(run.succeeded ? "Succeeded" : "Failed"),
          ` generation ${run.generation}, attempt ${run.attempt || 1}, started ${run.started_at || "?"}, finished ` +
            `${run.finished_at} (${age(run.finished_at)}), containers ${seconds.toFixed(1)}s`,
        ),
        run.succeeded ? null : h("p", { class: "error" }, run.message),
        table(
          `Containers of ${key}`,
          ["Container", "Image", "Exit code", "Duration"],
          (run.containers || []).map((c) =>
            h("tr", {}, h("td", {}, c.name), h("td", {}, c.image), h("td", {}, c.exit_code), h("td", {}, `${c.duration_seconds}s`)),
          ),
        ),
        h("button", { type: "button", onclick: showLogs }, `Logs of ${key}`),
        logs,
      );
    });

    // The files a placement committed, each a text node in a <pre> (or its size only, when binary or too large).
    const files = h("div", { class: "placement-files", id: "placement-files", "aria-live": "polite" });
    const showFiles = async (p) => {
      filesShown = p;
      let found;
      try {
        found = await get(`/ui/api/requests/${encodeURIComponent(kind)}/${encodeURIComponent(name)}/files`, {
          namespace,
          destination: p.destination,
          path: p.path,
        });
      } catch (error) {
        if (!(error instanceof ApiError)) throw error;
        files.replaceChildren(h("p", { class: "error" }, `Files of ${p.destination}: ${error.message}`));
        return;
      }
      // One wrapper: h() flattens the list and drops the absent line; replaceChildren() would print both as text. The
      // files opened stay open when the page is read again on a change.
      files.replaceChildren(
        h(
          "div",
          {},
          h("h3", {}, `Files on ${found.destination} at ${found.path}, ${found.store.startsWith("BucketStateStore/") ? "as the bucket holds them now" : `commit ${found.commit.slice(0, 12)}`}`),
          found.total > found.files.length ? h("p", {}, `${found.files.length} of ${found.total} files listed.`) : null,
          found.files.map((f) =>
            h(
              "details",
              {
                class: "placement-file",
                open: filesOpen.has(f.name),
                ontoggle: (event) => (event.target.open ? filesOpen.add(f.name) : filesOpen.delete(f.name)),
              },
              h("summary", {}, `${f.name} (${f.bytes} bytes)`),
              f.text === null ? h("p", {}, `not shown: ${f.omitted}`) : h("pre", { tabindex: "0" }, f.text),
            ),
          ),
        ),
      );
    };
    if (filesShown) showFiles(filesShown);

    const placements = (ktx.placements || []).map((p) => {
      const link = detail.links.commits[p.version_id];
      const sha = (p.version_id || "").slice(0, 12) || "-";
      return h(
        "tr",
        {},
        h("td", {}, p.destination),
        h("td", {}, `${p.store_kind}/${p.store_name}`),
        h("td", {}, h("code", {}, p.path), p.key ? ` [${p.key}]` : ""),
        h("td", {}, link ? h("a", { href: link, rel: "noreferrer", target: "_blank" }, sha) : h("code", {}, sha)),
        h("td", {}, [p.misplaced ? "misplaced" : "", p.error ? `error: ${p.error}` : "", p.removing ? "removing" : ""].filter(Boolean).join(", ") || "ok"),
        h(
          "td",
          {},
          p.version_id || p.store_kind === "BucketStateStore"
            ? h("button", { type: "button", onclick: () => showFiles(p) }, `Files on ${p.destination}`)
            : "",
        ),
      );
    });
    const pending = (ktx.pending || []).map((g) =>
      h("li", {}, `${g.pipeline || "static"}/${g.directory} waits for a Destination matching ${JSON.stringify(g.selector)}`),
    );

    const parent = labels[COMPONENT_OF.name]
      ? h(
          "p",
          {},
          "Component of ",
          h("a", { href: `#/requests?promise=${encodeURIComponent(labels[COMPONENT_OF.promise] || "")}&namespace=${encodeURIComponent(labels[COMPONENT_OF.namespace] || "")}` },
            `${labels[COMPONENT_OF.promise]} ${labels[COMPONENT_OF.namespace]}/${labels[COMPONENT_OF.name]}`),
        )
      : null;
    const treeNode = (node) =>
      h(
        "li",
        {},
        h("a", { href: requestHref(node) }, `${node.kind} ${node.namespace}/${node.name}`),
        ` ${node.status}`,
        node.children.length ? h("ul", {}, node.children.map(treeNode)) : null,
      );
    const components = tree && tree.children.length ? h("ul", { class: "tree" }, tree.children.map(treeNode)) : h("p", {}, "No components.");

    const health = status.healthStatus;
    const offPlatform = (status.actions || []).map((a) =>
      h(
        "tr",
        {},
        h("td", {}, `${a.pipeline}/${a.name}`),
        h("td", {}, a.provider),
        h("td", {}, a.state),
        h("td", {}, a.link ? h("a", { href: a.link, rel: "noreferrer", target: "_blank" }, a.externalId || a.link) : a.externalId || ""),
        h("td", {}, a.message || ""),
      ),
    );
    const events = (ktx.events || []).map((e) =>
      h("tr", {}, h("td", {}, age(e.last_seen)), h("td", {}, e.type), h("td", {}, e.reason), h("td", {}, e.count), h("td", {}, e.message)),
    );
    const schedule = Object.entries(ktx.schedule || {}).filter(([, v]) => v);

    // The run in progress: its containers' logs as they are written, re-read every 2 s while this page shows it
    // running (a change re-renders the page, which ends this loop with the element it fills).
    const liveLogs = h("div", { class: "logs", id: "live-logs", "aria-live": "polite" });
    const pollLive = async () => {
      if (!liveLogs.isConnected && liveLogs.dataset.started) return;
      liveLogs.dataset.started = "yes";
      try {
        const found = (await get(`${base}/logs`, { namespace })).filter((entry) => entry.running);
        liveLogs.replaceChildren(
          ...found.map((entry) =>
            h(
              "figure",
              { class: "log" },
              h("figcaption", {}, `${entry.action}/${entry.pipeline} ${entry.container} (running)${entry.truncated ? ", end only" : ""}`),
              h("pre", { tabindex: "0" }, entry.log || "(nothing written yet)"),
            ),
          ),
        );
      } catch (error) {
        if (!(error instanceof ApiError)) throw error;
      }
      setTimeout(pollLive, 2000);
    };
    const runningNow = pipelines.some((p) => p.phase === "Running");
    if (runningNow) pollLive();

    return h(
      "div",
      { class: "view" },
      h("p", { class: "crumbs" }, h("a", { href: `#/requests?promise=${encodeURIComponent(detail.row.promise)}` }, `${detail.row.promise} requests`)),
      h("h1", {}, `${obj.kind} ${namespace}/${name} `, phaseBadge(detail.row.phase)),
      h("p", { class: "message", id: "status-message" }, status.message || ""),
      detail.links.temporal
        ? h("p", {}, h("a", { href: detail.links.temporal, rel: "noreferrer", target: "_blank" }, `Workflow ${ktx.workflowId} in the Temporal UI`))
        : h("p", {}, `Workflow ${ktx.workflowId}`),
      actions,
      labelForm,
      dialog,
      section("Labels", h("p", {}, Object.entries(labels).map(([k, v]) => h("span", { class: "label" }, `${k}=${v}`)))),
      section("Spec", h("pre", { class: "yaml" }, dump(obj.spec || {}))),
      section("Conditions", timeline),
      section(
        "Workflow control",
        table("Pipelines and their control state", ["Pipeline", "Phase", "Message", "Attempts", "Next retry"], control),
        schedule.length ? h("ul", {}, schedule.map(([k, v]) => h("li", {}, `${k}: ${v}`))) : null,
      ),
      runningNow ? section("Running now", liveLogs) : null,
      section("Pipeline runs", runs.length ? runs : h("p", {}, "No runs yet.")),
      section(
        "Placements",
        table("Where the outputs landed", ["Destination", "State store", "Path", "Commit", "State", "Files"], placements),
        files,
        pending.length ? h("ul", {}, pending) : null,
      ),
      section("Compound", parent, components),
      section(
        "Health",
        health
          ? h("ul", {}, h("li", {}, `state: ${health.state}`), (health.healthRecords || []).map((r) => h("li", {}, `${r.source.namespace}/${r.source.name}: ${r.state}`)))
          : h("p", {}, "No health records."),
      ),
      section("Off-platform actions", table("Slack, PagerDuty and Zendesk actions", ["Action", "Provider", "State", "Link", "Message"], offPlatform)),
      section("Events", table("Events of this request", ["When", "Type", "Reason", "Count", "Message"], events)),
    );
  };
  return {
    title: `${namespace}/${name}`,
    node: await build(),
    wants: (c) => c.name === name && c.namespace === namespace,
    refresh: async () => {
      try {
        return await build();
      } catch (error) {
        if (error instanceof ApiError && error.status === 404) {
          return h("div", { class: "view" }, h("h1", {}, `${kind} ${namespace}/${name}`), h("p", { id: "gone" }, "This request was deleted."));
        }
        throw error;
      }
    },
  };
}
