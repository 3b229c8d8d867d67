/**
 * The API docs page: one self-contained HTML document (no script, style or font from anywhere
 * else, so it works offline and behind a strict proxy) that reads the app's OpenAPI and AsyncAPI
 * documents and lists operations and channels, with a form to try each one.
 */

/** Options of the docs page. */
export interface DocsPageOptions {
  /** The page's title. Default: the OpenAPI document's title. */
  title?: string;
  /** Where the OpenAPI document is served. Default "/openapi.json"; null for none. */
  openapi?: string | null;
  /** Where the AsyncAPI document is served. Default "/asyncapi.json"; null for none. */
  asyncapi?: string | null;
}

/** The Content-Security-Policy the page is served with: nothing loads from elsewhere. */
export const DOCS_PAGE_CSP = "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self' ws: wss:; img-src data:; base-uri 'none'; form-action 'none'";

export function docsPage(options: DocsPageOptions = {}): string {
  const config = JSON.stringify({
    title: options.title ?? null,
    openapi: options.openapi === undefined ? "/openapi.json" : options.openapi,
    asyncapi: options.asyncapi === undefined ? "/asyncapi.json" : options.asyncapi,
  }).replace(/</g, "\\u003c");
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>API docs</title>
<style>
  :root { color-scheme: light dark; --line: #8884; --muted: #8889; }
  body { font: 15px/1.45 system-ui, sans-serif; margin: 0 auto; max-width: 70rem; padding: 1rem 1.5rem 4rem; }
  h1 { margin-bottom: 0; } .version { color: var(--muted); font-size: .9rem; }
  h2 { margin-top: 2rem; border-bottom: 1px solid var(--line); padding-bottom: .3rem; }
  details.op { border: 1px solid var(--line); border-radius: 6px; margin: .5rem 0; }
  details.op > summary { cursor: pointer; padding: .5rem .75rem; display: flex; gap: .75rem; align-items: baseline; }
  .method { font: bold .8rem ui-monospace, monospace; padding: .15rem .45rem; border-radius: 4px; color: #fff; min-width: 4.5rem; text-align: center; }
  .GET { background: #2b7bb9; } .POST { background: #3a9a4a; } .PUT { background: #b07c1e; } .PATCH { background: #8a5fbf; }
  .DELETE { background: #c0392b; } .OPTIONS, .HEAD { background: #666; } .WS { background: #117a7a; }
  .path { font-family: ui-monospace, monospace; } .summary { color: var(--muted); }
  .body { padding: 0 .75rem .75rem; } table { border-collapse: collapse; width: 100%; }
  td, th { text-align: left; padding: .25rem .5rem; border-bottom: 1px solid var(--line); vertical-align: top; }
  pre { background: #8881; padding: .5rem; overflow: auto; max-height: 24rem; margin: .25rem 0; }
  input, textarea, button { font: inherit; } textarea { width: 100%; min-height: 5rem; font-family: ui-monospace, monospace; }
  .deprecated .path { text-decoration: line-through; } .error { color: #c0392b; }
</style>
</head>
<body>
<h1 id="title">API docs</h1>
<div class="version" id="version"></div>
<p id="description"></p>
<p id="links"></p>
<div id="operations"></div>
<div id="channels"></div>
<script>
"use strict";
const CONFIG = ${config};
const el = (tag, attrs = {}, ...children) => {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") node.className = v; else if (k.startsWith("on")) node.addEventListener(k.slice(2), v); else node.setAttribute(k, v);
  }
  for (const child of children) if (child !== null && child !== undefined) node.append(child);
  return node;
};
const json = (value) => JSON.stringify(value, null, 2);
const typeOf = (schema) => {
  if (!schema) return "any";
  if (schema.$ref) return schema.$ref.split("/").pop();
  if (Array.isArray(schema.anyOf)) return schema.anyOf.map(typeOf).join(" | ");
  if (schema.type === "array") return typeOf(schema.items) + "[]";
  return [].concat(schema.type ?? "any").join(" | ") + (schema.format ? " (" + schema.format + ")" : "");
};

async function load(url) {
  const res = await fetch(url, { headers: { accept: "application/json" } });
  if (!res.ok) throw new Error(url + ": HTTP " + res.status);
  return res.json();
}

function renderOperation(path, method, op) {
  const body = el("div", { class: "body" });
  if (op.description) body.append(el("p", {}, op.description));
  const params = op.parameters ?? [];
  const inputs = new Map();
  if (params.length > 0) {
    const rows = params.map((p) => {
      const input = el("input", { name: p.name, placeholder: typeOf(p.schema), "data-in": p.in });
      inputs.set(p.in + ":" + p.name, input);
      return el("tr", {}, el("td", {}, el("code", {}, p.name), p.required ? " *" : ""), el("td", {}, p.in), el("td", {}, typeOf(p.schema)), el("td", {}, input));
    });
    body.append(el("h4", {}, "Parameters"), el("table", {}, el("tr", {}, el("th", {}, "name"), el("th", {}, "in"), el("th", {}, "type"), el("th", {}, "value")), ...rows));
  }
  let bodyInput = null;
  const requestBody = op.requestBody?.content?.["application/json"];
  if (requestBody) {
    bodyInput = el("textarea", { name: "body" }, "{}");
    body.append(el("h4", {}, "Body (application/json)"), el("pre", {}, json(requestBody.schema)), bodyInput);
  }
  const responses = el("table", {}, el("tr", {}, el("th", {}, "status"), el("th", {}, "description"), el("th", {}, "content")));
  for (const [status, response] of Object.entries(op.responses ?? {})) {
    const content = Object.entries(response.content ?? {}).map(([type, media]) => el("div", {}, el("code", {}, type), media.schema && Object.keys(media.schema).length > 0 ? el("pre", {}, json(media.schema)) : null));
    responses.append(el("tr", {}, el("td", {}, status), el("td", {}, response.description ?? ""), el("td", {}, ...content)));
  }
  body.append(el("h4", {}, "Responses"), responses);
  const output = el("pre", { class: "result", hidden: "" });
  const send = el("button", { type: "button", class: "try", onclick: () => tryIt(path, method, inputs, bodyInput, output) }, "Send");
  body.append(el("p", {}, send), output);
  return el("details", { class: "op" + (op.deprecated ? " deprecated" : ""), id: op.operationId ?? "" },
    el("summary", {}, el("span", { class: "method " + method.toUpperCase() }, method.toUpperCase()), el("span", { class: "path" }, path), el("span", { class: "summary" }, op.summary ?? "")),
    body);
}

async function tryIt(path, method, inputs, bodyInput, output) {
  let url = path;
  const query = new URLSearchParams();
  const headers = {};
  for (const [key, input] of inputs) {
    const where = key.slice(0, key.indexOf(":"));
    const name = input.name;
    if (input.value === "") continue;
    if (where === "path") url = url.replace("{" + name + "}", encodeURIComponent(input.value));
    else if (where === "query") for (const v of input.value.split(",")) query.append(name, v);
    else if (where === "header") headers[name] = input.value;
  }
  if ([...query].length > 0) url += "?" + query;
  const init = { method: method.toUpperCase(), headers };
  if (bodyInput !== null) { init.body = bodyInput.value; headers["content-type"] = "application/json"; }
  output.hidden = false;
  output.textContent = init.method + " " + url + "\\n";
  try {
    const res = await fetch(url, init);
    output.textContent += res.status + " " + res.statusText + "\\n" + [...res.headers].map(([k, v]) => k + ": " + v).join("\\n") + "\\n\\n";
    // Streams and event streams show as they arrive, up to 64 KiB.
    const reader = res.body?.getReader();
    const decoder = new TextDecoder();
    let shown = 0;
    while (reader) {
      const { value, done } = await reader.read();
      if (done) break;
      shown += value.length;
      output.textContent += decoder.decode(value, { stream: true });
      if (shown > 65536) { await reader.cancel(); output.textContent += "\\n[... cut at 64 KiB]"; break; }
    }
  } catch (error) {
    output.textContent += "failed: " + error.message;
  }
}

function renderChannel(id, channel, doc) {
  const body = el("div", { class: "body" });
  if (channel.description) body.append(el("p", {}, channel.description));
  const params = Object.entries(channel.parameters ?? {});
  const inputs = new Map();
  const rows = params.map(([name, p]) => {
    const input = el("input", { name, placeholder: p.description ?? "" });
    inputs.set(name, input);
    return el("tr", {}, el("td", {}, el("code", {}, name)), el("td", {}, "path"), el("td", {}, p.description ?? ""), el("td", {}, input));
  });
  const binding = channel.bindings?.ws ?? {};
  for (const [name, schema] of Object.entries(binding.query?.properties ?? {})) {
    const input = el("input", { name, placeholder: typeOf(schema), "data-query": "1" });
    inputs.set("?" + name, input);
    rows.push(el("tr", {}, el("td", {}, el("code", {}, name), (binding.query.required ?? []).includes(name) ? " *" : ""), el("td", {}, "query"), el("td", {}, typeOf(schema)), el("td", {}, input)));
  }
  if (rows.length > 0) body.append(el("h4", {}, "Parameters"), el("table", {}, ...rows));
  for (const [name, message] of Object.entries(channel.messages ?? {})) {
    body.append(el("h4", {}, message.title ?? name), el("p", {}, message.description ?? ""), message.payload ? el("pre", {}, json(message.payload)) : null);
  }
  const log = el("pre", { class: "log", hidden: "" });
  const text = el("textarea", { name: "message" }, "{}");
  let socket = null;
  const connect = el("button", { type: "button", class: "connect", onclick: () => {
    let address = channel.address;
    const query = new URLSearchParams();
    for (const [key, input] of inputs) {
      if (key.startsWith("?")) { if (input.value !== "") query.append(key.slice(1), input.value); }
      else address = address.replace("{" + key + "}", encodeURIComponent(input.value));
    }
    const url = (location.protocol === "https:" ? "wss://" : "ws://") + location.host + address + ([...query].length > 0 ? "?" + query : "");
    log.hidden = false;
    log.textContent += "connecting " + url + "\\n";
    socket = new WebSocket(url);
    socket.onopen = () => { log.textContent += "open\\n"; };
    socket.onmessage = (event) => { log.textContent += "< " + event.data + "\\n"; };
    socket.onclose = (event) => { log.textContent += "closed " + event.code + (event.reason ? " " + event.reason : "") + "\\n"; };
  } }, "Connect");
  const send = el("button", { type: "button", class: "send", onclick: () => { if (socket) { socket.send(text.value); log.textContent += "> " + text.value + "\\n"; } } }, "Send");
  const close = el("button", { type: "button", onclick: () => socket?.close() }, "Close");
  body.append(el("h4", {}, "Try it"), text, el("p", {}, connect, " ", send, " ", close), log);
  return el("details", { class: "op", id: "channel-" + id },
    el("summary", {}, el("span", { class: "method WS" }, "WS"), el("span", { class: "path" }, channel.address), el("span", { class: "summary" }, channel.summary ?? "")),
    body);
}

async function main() {
  const links = document.getElementById("links");
  let info = null;
  if (CONFIG.openapi) {
    links.append(el("a", { href: CONFIG.openapi }, "OpenAPI document"), " ");
    try {
      const doc = await load(CONFIG.openapi);
      info = doc.info;
      const byTag = new Map();
      for (const [path, item] of Object.entries(doc.paths ?? {})) {
        for (const [method, op] of Object.entries(item)) {
          const tag = (op.tags ?? ["default"])[0];
          if (!byTag.has(tag)) byTag.set(tag, []);
          byTag.get(tag).push(renderOperation(path, method, op));
        }
      }
      const operations = document.getElementById("operations");
      for (const [tag, ops] of byTag) operations.append(el("h2", {}, tag === "default" ? "HTTP" : tag), ...ops);
    } catch (error) {
      document.getElementById("operations").append(el("p", { class: "error" }, String(error.message)));
    }
  }
  if (CONFIG.asyncapi) {
    links.append(el("a", { href: CONFIG.asyncapi }, "AsyncAPI document"));
    try {
      const doc = await load(CONFIG.asyncapi);
      info ??= doc.info;
      const channels = Object.entries(doc.channels ?? {});
      if (channels.length > 0) document.getElementById("channels").append(el("h2", {}, "WebSocket channels"), ...channels.map(([id, c]) => renderChannel(id, c, doc)));
    } catch (error) {
      document.getElementById("channels").append(el("p", { class: "error" }, String(error.message)));
    }
  }
  const title = CONFIG.title ?? info?.title ?? "API docs";
  document.title = title;
  document.getElementById("title").textContent = title;
  if (info?.version) document.getElementById("version").textContent = "version " + info.version;
  if (info?.description) document.getElementById("description").textContent = info.description;
  document.body.dataset.ready = "true";
}
main();
</script>
</body>
</html>
`;
}
