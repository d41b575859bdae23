// Apply or edit a document: a YAML editor posting to /apply, the API's 422 field errors placed on their lines.

import { ApiError, call } from "./api.js";
import { h, toast } from "./dom.js";
import { lineOf } from "./yaml.js";

export async function render() {
  const text = sessionStorage.getItem("ktx.edit") || "";
  sessionStorage.removeItem("ktx.edit");
  const editor = h("textarea", {
    id: "yaml",
    rows: 24,
    spellcheck: "false",
    "aria-describedby": "apply-errors",
    autocomplete: "off",
  });
  editor.value = text;
  const errors = h("div", { id: "apply-errors", "aria-live": "polite" });
  const selectLine = (line) => {
    const lines = editor.value.split("\n");
    const start = lines.slice(0, line).reduce((n, l) => n + l.length + 1, 0);
    editor.focus();
    editor.setSelectionRange(start, start + (lines[line] || "").length);
  };
  const submit = async (dryRun) => {
    errors.replaceChildren();
    try {
      const result = await call("POST", "/apply", {
        body: editor.value,
        contentType: "application/yaml",
        params: { dryRun: dryRun ? "All" : "" },
      });
      const applied = result.applied.map((a) => `${a.kind} ${a.namespace ? `${a.namespace}/` : ""}${a.name} ${a.action}`);
      errors.replaceChildren(h("p", { class: "ok", id: "apply-result" }, `${dryRun ? "Valid (dry run)" : "Applied"}: ${applied.join("; ")}`));
      toast(dryRun ? "Valid" : "Applied");
    } catch (error) {
      if (!(error instanceof ApiError)) throw error;
      const problems = (error.body && error.body.errors) || [];
      errors.replaceChildren(
        h("p", { class: "error", role: "alert" }, error.message),
        h(
          "ul",
          { class: "field-errors" },
          problems.map((p) => {
            const line = lineOf(editor.value, p.field);
            return h(
              "li",
              {},
              line >= 0
                ? h("button", { type: "button", class: "link", onclick: () => selectLine(line) }, `line ${line + 1}`)
                : null,
              h("code", {}, ` ${p.field}`),
              `: ${p.reason}`,
            );
          }),
        ),
      );
      const first = problems.map((p) => lineOf(editor.value, p.field)).find((line) => line >= 0);
      if (first !== undefined) selectLine(first);
    }
  };
  const node = h(
    "div",
    { class: "view" },
    h("h1", {}, "Apply a document"),
    h(
      "form",
      {
        class: "apply",
        onsubmit: (event) => {
          event.preventDefault();
          submit(event.submitter && event.submitter.value === "dry");
        },
      },
      h("label", { for: "yaml" }, "YAML (one or many documents, as for ktx apply -f)"),
      editor,
      h("div", { class: "actions" }, h("button", { type: "submit", value: "dry" }, "Validate (dry run)"), h("button", { type: "submit", value: "apply", class: "primary" }, "Apply")),
    ),
    errors,
  );
  return { title: "Apply", node };
}
