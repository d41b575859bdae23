// A YAML writer for the plain data the API returns (maps, lists, strings, numbers, booleans, null), and the way back
// from an API error's field path (`spec.replicas`, `spec.items[1].name`) to the line of a YAML text that holds it.

const PLAIN = /^[A-Za-z_/][A-Za-z0-9_./-]*$/;
const RESERVED = /^(true|false|yes|no|on|off|null|~|y|n)$/i;

function scalar(value) {
  if (value === null || value === undefined) return "null";
  if (typeof value === "boolean" || typeof value === "number") return String(value);
  const text = String(value);
  if (PLAIN.test(text) && !RESERVED.test(text)) return text;
  return JSON.stringify(text); // a JSON string is a YAML double-quoted scalar
}

function key(name) {
  return PLAIN.test(name) && !RESERVED.test(name) ? name : JSON.stringify(name);
}

export function dump(value, indent = "") {
  if (Array.isArray(value)) {
    if (!value.length) return "[]\n";
    return value
      .map((item) => {
        if (item && typeof item === "object" && Object.keys(item).length) {
          const body = dump(item, `${indent}  `);
          return `${indent}- ${body.slice(indent.length + 2)}`;
        }
        return `${indent}- ${inline(item)}\n`;
      })
      .join("");
  }
  if (value && typeof value === "object") {
    const entries = Object.entries(value);
    if (!entries.length) return "{}\n";
    return entries
      .map(([k, v]) => {
        if (v && typeof v === "object" && (Array.isArray(v) ? v.length : Object.keys(v).length)) {
          return `${indent}${key(k)}:\n${dump(v, Array.isArray(v) ? indent : `${indent}  `)}`;
        }
        return `${indent}${key(k)}: ${inline(v)}\n`;
      })
      .join("");
  }
  return `${scalar(value)}\n`;
}

function inline(value) {
  if (Array.isArray(value)) return "[]";
  if (value && typeof value === "object") return "{}";
  return scalar(value);
}

// The 0-based line of `text` where the field at `path` is written, or of its nearest written parent; -1 if none.
// Block YAML only (what the console writes and kubectl prints): each line's keys are found from its indentation.
export function lineOf(text, path) {
  const wanted = path.replace(/\[(\d+)\]/g, ".$1").split(".").filter(Boolean);
  const stack = []; // {col, key, item, items}: the keys (and list indices) above the current line
  let best = -1;
  let bestDepth = 0;
  text.split("\n").forEach((line, index) => {
    let rest = line.trimStart();
    if (!rest || rest.startsWith("#") || rest.startsWith("---")) return;
    let col = line.length - rest.length;
    while (rest.startsWith("- ") || rest === "-") {
      while (stack.length && (stack.at(-1).col > col || (stack.at(-1).item && stack.at(-1).col === col))) stack.pop();
      const parent = stack.at(-1);
      const index = parent ? (parent.items = (parent.items ?? -1) + 1) : 0;
      stack.push({ col, key: String(index), item: true });
      rest = rest.slice(2);
      col += 2;
    }
    const match = /^("([^"]*)"|'([^']*)'|[^\s:#'"][^:#]*?)\s*:(\s|$)/.exec(rest);
    if (match) {
      while (stack.length && stack.at(-1).col >= col && !(stack.at(-1).item && stack.at(-1).col < col)) stack.pop();
      stack.push({ col, key: match[2] ?? match[3] ?? match[1] });
    }
    const keys = stack.map((entry) => entry.key);
    let depth = 0;
    while (depth < keys.length && depth < wanted.length && keys[depth] === wanted[depth]) depth += 1;
    if (depth === keys.length && depth > bestDepth) {
      best = index;
      bestDepth = depth;
    }
  });
  return best;
}
