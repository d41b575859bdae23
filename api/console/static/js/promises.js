// Promises: the list, and one Promise's page (its API as a readable form, dependencies, workflows, conditions,
// requirements, requests per version) with "request one", a form generated from its schema.

import { ApiError, call, get } from "./api.js";
import { h, phaseBadge, section, table, toast } from "./dom.js";
import { collect, fields, showErrors, validate } from "./schema_form.js";

export async function render(params) {
  return params.length && params[0] ? one(params[0]) : list();
}

async function list() {
  const build = async () => {
    const found = await get("/objects/promise");
    const rows = found.map((p) =>
      h(
        "tr",
        {},
        h("td", {}, h("a", { href: `#/promises/${encodeURIComponent(p.metadata.name)}` }, p.metadata.name)),
        h("td", {}, (p.status || {}).kind || "-"),
        h("td", {}, (p.status || {}).version || ""),
        h("td", {}, phaseBadge((p.status || {}).status || "Pending")),
      ),
    );
    return h("div", { class: "view" }, h("h1", {}, "Promises"), table("Installed Promises", ["Name", "Kind", "Version", "Status"], rows));
  };
  return { title: "Promises", node: await build(), wants: (c) => c.kind === "Promise", refresh: build };
}

function storedSchema(promise) {
  const crd = ((promise.spec || {}).api || {}).spec || {};
  const versions = crd.versions || [];
  const stored = versions.find((v) => v.storage) || versions[0];
  return { crd, version: stored ? stored.name : "", schema: ((stored || {}).schema || {}).openAPIV3Schema || {} };
}

// The schema as a readable form: each field with its type, constraints and description, nested as it is.
function schemaView(schema, name = "spec", required = false) {
  const facts = [schema.type || "any", required ? "required" : ""]
    .concat(["enum", "default", "minimum", "maximum", "minLength", "maxLength", "pattern", "minItems", "maxItems"]
      .filter((k) => k in schema)
      .map((k) => `${k}: ${JSON.stringify(schema[k])}`))
    .filter(Boolean);
  const needed = new Set(schema.required || []);
  const children = Object.entries(schema.properties || {});
  const items = schema.items && schema.items.properties ? schemaView(schema.items, "items[]") : null;
  return h(
    "li",
    {},
    h("code", {}, name),
    ` (${facts.join(", ")})`,
    schema.description ? h("div", { class: "desc" }, schema.description) : null,
    children.length || items ? h("ul", {}, children.map(([k, v]) => schemaView(v, k, needed.has(k))), items) : null,
  );
}

async function one(name) {
  const build = async () => {
    // Every request counted (not a page of them): the API reads their versions while the Promise is read.
    const [promise, versions] = await Promise.all([
      get(`/objects/promise/${encodeURIComponent(name)}`),
      get(`/ui/api/promises/${encodeURIComponent(name)}/versions`).catch((error) => {
        if (error instanceof ApiError) return null;
        throw error;
      }),
    ]);
    const status = promise.status || {};
    const spec = promise.spec || {};
    const { crd, version, schema } = storedSchema(promise);
    const names = crd.names || {};
    const specSchema = (schema.properties || {}).spec || { type: "object" };
    const workflows = spec.workflows || {};
    const pipelineRows = [];
    for (const [scope, actions] of Object.entries(workflows)) {
      for (const [action, pipelines] of Object.entries(actions || {})) {
        for (const p of pipelines || []) {
          const containers = ((p.spec || {}).containers || []).map((c) => `${c.name} (${c.image})`).join(", ");
          pipelineRows.push(h("tr", {}, h("td", {}, `${scope}.${action}`), h("td", {}, (p.metadata || {}).name || ""), h("td", {}, containers)));
        }
      }
    }
    const requirements = (status.requiredPromises || spec.requiredPromises || []).map((r) =>
      h("tr", {}, h("td", {}, h("a", { href: `#/promises/${encodeURIComponent(r.name)}` }, r.name)), h("td", {}, r.version || ""), h("td", {}, r.state || "")),
    );
    const dependencies = (spec.dependencies || []).map((d) =>
      h("tr", {}, h("td", {}, d.kind || ""), h("td", {}, (d.metadata || {}).namespace || ""), h("td", {}, (d.metadata || {}).name || "")),
    );
    const conditions = (status.conditions || []).map((c) =>
      h("tr", {}, h("td", {}, c.type), h("td", {}, c.status), h("td", {}, c.reason || ""), h("td", {}, c.message || ""), h("td", {}, c.lastTransitionTime || "")),
    );
    return h(
      "div",
      { class: "view" },
      h("h1", {}, `Promise ${name} `, phaseBadge(status.status || "Pending")),
      h("p", {}, status.version ? `Version ${status.version}. ` : "", h("a", { href: `#/requests?promise=${encodeURIComponent(name)}` }, versions ? `${versions.total} requests` : "Its requests")),
      names.kind
        ? section(
            "API",
            h("p", {}, `${names.kind} (${crd.group}/${version}), plural ${names.plural}`, (crd.versions || []).length > 1 ? `, versions ${(crd.versions || []).map((v) => v.name).join(", ")}` : ""),
            h("ul", { class: "schema" }, schemaView(specSchema)),
          )
        : section("API", h("p", {}, "This Promise serves no API (it installs dependencies only).")),
      names.kind ? section("Request one", requestForm(name, crd, version, names, specSchema)) : null,
      section("Revisions and requests per version", versionsView(versions)),
      section("Workflows and pipelines", table("Pipelines", ["Workflow", "Pipeline", "Containers"], pipelineRows)),
      section("Dependencies", table("Documents installed on the Destinations", ["Kind", "Namespace", "Name"], dependencies)),
      section("Requirements", table("Promises this one requires", ["Promise", "Version", "State"], requirements)),
      section("Conditions", table("Conditions", ["Type", "Status", "Reason", "Message", "Since"], conditions)),
    );
  };
  return { title: `Promise ${name}`, node: await build(), wants: (c) => c.kind === "Promise" && c.name === name, refresh: build };
}

// Its PromiseRevisions, newest first, each with the requests last reconciled at its version.
function versionsView(versions) {
  if (!versions) return h("p", {}, "The revisions and their requests could not be read with this token.");
  const rows = versions.revisions.map((r) =>
    h(
      "tr",
      {},
      h("td", {}, r.version, r.latest ? " (latest)" : ""),
      h("td", {}, r.name),
      h("td", {}, r.created),
      h("td", { class: "num" }, String(r.requests)),
    ),
  );
  return h(
    "div",
    {},
    table("PromiseRevisions and the requests last reconciled at each", ["Version", "PromiseRevision", "Created", "Requests"], rows),
    versions.elsewhere
      ? h("p", { id: "versions-elsewhere" }, `${versions.elsewhere} at none of these versions (not reconciled yet, or at a deleted revision's).`)
      : null,
  );
}

function requestForm(promiseName, crd, version, names, specSchema) {
  const problems = h("div", { "aria-live": "polite", id: "request-errors" });
  const form = h(
    "form",
    {
      class: "request-form",
      novalidate: true,
      "aria-label": `Request a ${names.kind}`,
      onsubmit: async (event) => {
        event.preventDefault();
        const name = form.elements["request-name"].value.trim();
        const namespace = form.elements["request-namespace"].value.trim() || "default";
        const spec = collect(form);
        const errors = validate(specSchema, spec, "spec");
        const left = showErrors(form, errors);
        problems.replaceChildren(...left.map((e) => h("p", { class: "error" }, `${e.field}: ${e.reason}`)));
        if (errors.length) {
          problems.prepend(h("p", { class: "error", role: "alert" }, `${errors.length} field${errors.length > 1 ? "s" : ""} to fix`));
          return;
        }
        const document_ = { apiVersion: `${crd.group}/${version}`, kind: names.kind, metadata: { name, namespace }, spec };
        try {
          await call("POST", "/apply", { body: document_ });
          toast(`Requested ${names.kind} ${namespace}/${name}`);
          location.hash = `#/requests/${encodeURIComponent(names.kind)}/${encodeURIComponent(namespace)}/${encodeURIComponent(name)}`;
        } catch (error) {
          if (!(error instanceof ApiError)) throw error;
          const fromApi = (error.body && error.body.errors) || [];
          const rest = showErrors(form, fromApi);
          problems.replaceChildren(h("p", { class: "error", role: "alert" }, error.message), ...rest.map((e) => h("p", { class: "error" }, `${e.field}: ${e.reason}`)));
        }
      },
    },
    h("div", { class: "field" }, h("label", { for: "request-name" }, "Name"), h("input", { id: "request-name", name: "request-name", required: true, autocomplete: "off" })),
    h("div", { class: "field" }, h("label", { for: "request-namespace" }, "Namespace"), h("input", { id: "request-namespace", name: "request-namespace", placeholder: "default", autocomplete: "off" })),
    fields(specSchema, "spec"),
    h("button", { type: "submit", class: "primary" }, `Request ${names.kind}`),
    problems,
  );
  return form;
}
