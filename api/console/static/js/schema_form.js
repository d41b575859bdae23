// "Request one": a form generated from a Promise's API schema, checked in the browser with the messages the API
// gives (domain/validation.py's structural checks, word for word), so a person sees the same reason either way.
// The API checks again on apply; anything this does not model (combinators, patterns RE2 alone understands) is left
// to it, and its 422 errors are shown on the same fields.

import { h } from "./dom.js";

// Python's repr() of a value, as the API's messages quote values.
export function pyRepr(value) {
  if (value === null) return "None";
  if (typeof value === "boolean") return value ? "True" : "False";
  if (typeof value === "number") return Number.isInteger(value) ? String(value) : String(value);
  if (typeof value === "string") {
    const quote = value.includes("'") && !value.includes('"') ? '"' : "'";
    let out = "";
    for (const ch of value) {
      if (ch === "\\") out += "\\\\";
      else if (ch === quote) out += `\\${ch}`;
      else if (ch === "\n") out += "\\n";
      else if (ch === "\r") out += "\\r";
      else if (ch === "\t") out += "\\t";
      else if (ch.charCodeAt(0) < 0x20 || ch.charCodeAt(0) === 0x7f) out += `\\x${ch.charCodeAt(0).toString(16).padStart(2, "0")}`;
      else out += ch;
    }
    return quote + out + quote;
  }
  if (Array.isArray(value)) return `[${value.map(pyRepr).join(", ")}]`;
  return `{${Object.entries(value).map(([k, v]) => `${pyRepr(k)}: ${pyRepr(v)}`).join(", ")}}`;
}

function typeOf(value) {
  if (value === null || value === undefined) return "null";
  if (typeof value === "boolean") return "boolean";
  if (typeof value === "number") return Number.isInteger(value) ? "integer" : "number";
  if (typeof value === "string") return "string";
  return Array.isArray(value) ? "array" : "object";
}

function typeOk(expected, value, schema) {
  if (schema["x-kubernetes-int-or-string"]) return typeof value === "string" || Number.isInteger(value);
  if (expected === "number") return typeof value === "number";
  return typeOf(value) === expected;
}

// The errors validating `value` against `schema` gives, as [{field, reason}] (domain.validation._check).
export function validate(schema, value, path, errors = []) {
  if (value === null) {
    if (!schema.nullable) errors.push({ field: path, reason: "Invalid value: null: must not be null" });
    return errors;
  }
  const expected = schema.type;
  if (expected && !typeOk(expected, value, schema)) {
    errors.push({ field: path, reason: `Invalid value: ${pyRepr(value)}: must be of type ${expected}, got ${typeOf(value)}` });
    return errors;
  }
  if (schema.enum && !schema.enum.some((e) => JSON.stringify(e) === JSON.stringify(value))) {
    errors.push({ field: path, reason: `Unsupported value: ${pyRepr(value)}: supported values: ${schema.enum.map(pyRepr).join(", ")}` });
  }
  if (typeof value === "string") {
    if ("minLength" in schema && [...value].length < schema.minLength) {
      errors.push({ field: path, reason: `Invalid value: ${pyRepr(value)}: should be at least ${schema.minLength} chars long` });
    }
    if ("maxLength" in schema && [...value].length > schema.maxLength) {
      errors.push({ field: path, reason: `Too long: may not be longer than ${schema.maxLength}` });
    }
    if ("pattern" in schema) {
      let re = null;
      try {
        re = new RegExp(schema.pattern, "u");
      } catch {
        re = null; // a pattern only RE2 reads: the API judges it
      }
      if (re && !re.test(value)) errors.push({ field: path, reason: `Invalid value: ${pyRepr(value)}: should match '${schema.pattern}'` });
    }
  } else if (typeof value === "number") {
    if ("minimum" in schema) {
      const exclusive = schema.exclusiveMinimum === true;
      if (value < schema.minimum || (exclusive && value === schema.minimum)) {
        errors.push({ field: path, reason: `Invalid value: ${value}: should be ${exclusive ? "greater than" : "greater than or equal to"} ${schema.minimum}` });
      }
    }
    if ("maximum" in schema) {
      const exclusive = schema.exclusiveMaximum === true;
      if (value > schema.maximum || (exclusive && value === schema.maximum)) {
        errors.push({ field: path, reason: `Invalid value: ${value}: should be ${exclusive ? "less than" : "less than or equal to"} ${schema.maximum}` });
      }
    }
    if ("multipleOf" in schema && value % schema.multipleOf !== 0) {
      errors.push({ field: path, reason: `Invalid value: ${value}: should be a multiple of ${schema.multipleOf}` });
    }
  } else if (Array.isArray(value)) {
    if ("minItems" in schema && value.length < schema.minItems) {
      errors.push({ field: path, reason: `Invalid value: should have at least ${schema.minItems} items` });
    }
    if ("maxItems" in schema && value.length > schema.maxItems) {
      errors.push({ field: path, reason: `Too many: ${value.length}: must have at most ${schema.maxItems} items` });
    }
    if (schema.items) value.forEach((item, i) => validate(schema.items, item, `${path}[${i}]`, errors));
  } else if (typeof value === "object") {
    const properties = schema.properties || {};
    for (const [key, item] of Object.entries(value)) {
      if (key in properties) validate(properties[key], item, path ? `${path}.${key}` : key, errors);
    }
    for (const key of schema.required || []) {
      if (!(key in value) && !(properties[key] && "default" in properties[key])) {
        errors.push({ field: path ? `${path}.${key}` : key, reason: "Required value" });
      }
    }
  }
  return errors;
}

function fieldId(path) {
  return `field-${path.replace(/[^A-Za-z0-9]+/g, "-")}`;
}

// The form's inputs for the properties of an object schema, with each input's path in data-path.
export function fields(schema, path) {
  const properties = schema.properties || {};
  const required = new Set(schema.required || []);
  return Object.entries(properties).map(([key, sub]) => {
    const here = `${path}.${key}`;
    const id = fieldId(here);
    const label = h("label", { for: id }, key);
    const facts = [
      required.has(key) ? "required" : "",
      sub.type || "",
      sub.description,
      sub.default !== undefined ? `default ${JSON.stringify(sub.default)}` : "",
    ];
    const help = h("small", { id: `${id}-help` }, facts.filter(Boolean).join(" · "));
    const error = h("span", { class: "field-error", id: `${id}-error`, "aria-live": "polite" });
    const common = { id, "data-path": here, "data-type": sub.type || "string", "aria-describedby": `${id}-help ${id}-error`, "aria-required": required.has(key) ? "true" : null };
    let input;
    if (sub.type === "object" && sub.properties) {
      return h("fieldset", { class: "nested" }, h("legend", {}, key), help, fields(sub, here), error);
    } else if (sub.enum) {
      input = h("select", common, h("option", { value: "" }, "(unset)"), sub.enum.map((v) => h("option", { value: JSON.stringify(v) }, String(v))));
    } else if (sub.type === "boolean") {
      input = h("select", common, h("option", { value: "" }, "(unset)"), h("option", { value: "true" }, "true"), h("option", { value: "false" }, "false"));
    } else if (sub.type === "array" || sub.type === "object") {
      input = h("textarea", { ...common, rows: 3, placeholder: "JSON, e.g. [\"a\", \"b\"]" });
    } else {
      input = h("input", { ...common, autocomplete: "off", placeholder: sub.default !== undefined ? String(sub.default) : "" });
    }
    return h("div", { class: "field" }, label, input, help, error);
  });
}

// The spec the form's inputs say (unset inputs left out): numbers and JSON parsed where the schema's type asks, and
// left as typed when they do not parse, so the check says why as the API would.
export function collect(form) {
  const spec = {};
  for (const input of form.querySelectorAll("[data-path]")) {
    const raw = input.value;
    if (raw === "") continue;
    let value = raw;
    const type = input.dataset.type;
    if (input.tagName === "SELECT") value = JSON.parse(raw);
    else if (type === "integer" || type === "number") value = /^-?\d+(\.\d+)?([eE][-+]?\d+)?$/.test(raw.trim()) ? Number(raw) : raw;
    else if (type === "array" || type === "object") {
      try {
        value = JSON.parse(raw);
      } catch {
        value = raw;
      }
    }
    const keys = input.dataset.path.split(".").slice(1);
    let at = spec;
    keys.slice(0, -1).forEach((k) => (at = at[k] = at[k] || {}));
    at[keys.at(-1)] = value;
  }
  return spec;
}

// Puts each error on its field's input (or the nearest parent shown), and returns the ones no input holds.
export function showErrors(form, errors) {
  for (const box of form.querySelectorAll(".field-error")) box.textContent = "";
  for (const input of form.querySelectorAll("[aria-invalid]")) input.removeAttribute("aria-invalid");
  const left = [];
  for (const e of errors) {
    let path = e.field.replace(/\[\d+\]/g, "");
    let box = null;
    while (path && !(box = form.querySelector(`#${fieldId(path)}-error`))) path = path.split(".").slice(0, -1).join(".");
    if (!box) {
      left.push(e);
      continue;
    }
    box.textContent = box.textContent ? `${box.textContent}; ${e.reason}` : e.reason;
    const input = form.querySelector(`#${fieldId(path)}`);
    if (input) input.setAttribute("aria-invalid", "true");
  }
  return left;
}
