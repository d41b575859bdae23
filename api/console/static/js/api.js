// The one way the console talks to the API: the same routes as the CLI, with the token from the login page as a
// bearer header. The token lives in sessionStorage (this tab only, gone when it closes) and is never put in a URL or
// cookie, so no other site can make the browser send it (no CSRF) and it never lands in a server log or history.

const TOKEN_KEY = "ktx.token";

export class ApiError extends Error {
  constructor(status, body) {
    super((body && (body.message || (typeof body.detail === "string" ? body.detail : ""))) || `HTTP ${status}`);
    this.status = status;
    this.body = body;
  }
}

export function token() {
  return sessionStorage.getItem(TOKEN_KEY);
}

export function setToken(value) {
  if (value) sessionStorage.setItem(TOKEN_KEY, value);
  else sessionStorage.removeItem(TOKEN_KEY);
}

function headers(extra = {}) {
  const found = token();
  return found ? { ...extra, Authorization: `Bearer ${found}` } : extra;
}

export async function call(method, path, { body, contentType, params } = {}) {
  const url = new URL(path, location.origin);
  for (const [key, value] of Object.entries(params || {})) {
    if (value !== undefined && value !== null && value !== "") url.searchParams.set(key, String(value));
  }
  const init = { method, headers: headers(contentType ? { "Content-Type": contentType } : {}) };
  if (body !== undefined) init.body = typeof body === "string" ? body : JSON.stringify(body);
  if (body !== undefined && !contentType) init.headers["Content-Type"] = "application/json";
  const response = await fetch(url, init);
  const text = await response.text();
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    data = { message: text };
  }
  if (!response.ok) throw new ApiError(response.status, data);
  return data;
}

export const get = (path, params) => call("GET", path, { params });

// Server-sent events from /ui/api/changes, read with fetch (EventSource cannot send an Authorization header). Calls
// onChange for each change and onState("live" | "reconnecting"); reconnects after a drop until stop() is called.
export function watchChanges(onChange, onState) {
  let stopped = false;
  let controller = null;
  async function run() {
    while (!stopped) {
      controller = new AbortController();
      try {
        const response = await fetch("/ui/api/changes", { headers: headers(), signal: controller.signal });
        if (!response.ok) throw new ApiError(response.status, null);
        onState("live");
        const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
        let buffer = "";
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          buffer += value;
          let end;
          while ((end = buffer.indexOf("\n\n")) >= 0) {
            const frame = buffer.slice(0, end);
            buffer = buffer.slice(end + 2);
            const data = frame.split("\n").filter((l) => l.startsWith("data: ")).map((l) => l.slice(6)).join("\n");
            if (data && frame.includes("event: change")) onChange(JSON.parse(data));
          }
        }
      } catch (error) {
        if (stopped) return;
        if (error instanceof ApiError && error.status === 401) return;
      }
      if (stopped) return;
      onState("reconnecting");
      await new Promise((resolve) => setTimeout(resolve, 2000));
    }
  }
  run();
  return () => {
    stopped = true;
    if (controller) controller.abort();
  };
}
