/** Content types by file extension, for the files a web app commonly serves. */
const TYPES: Record<string, string> = {
  html: "text/html; charset=utf-8", htm: "text/html; charset=utf-8", css: "text/css; charset=utf-8",
  js: "text/javascript; charset=utf-8", mjs: "text/javascript; charset=utf-8",
  json: "application/json", map: "application/json", txt: "text/plain; charset=utf-8",
  csv: "text/csv; charset=utf-8", md: "text/markdown; charset=utf-8", xml: "application/xml",
  svg: "image/svg+xml", png: "image/png", jpg: "image/jpeg", jpeg: "image/jpeg", gif: "image/gif",
  webp: "image/webp", avif: "image/avif", ico: "image/x-icon", bmp: "image/bmp",
  woff: "font/woff", woff2: "font/woff2", ttf: "font/ttf", otf: "font/otf",
  mp4: "video/mp4", webm: "video/webm", ogv: "video/ogg", mov: "video/quicktime", mkv: "video/x-matroska",
  mp3: "audio/mpeg", ogg: "audio/ogg", oga: "audio/ogg", wav: "audio/wav", flac: "audio/flac", m4a: "audio/mp4",
  pdf: "application/pdf", zip: "application/zip", gz: "application/gzip", tar: "application/x-tar",
  wasm: "application/wasm", bin: "application/octet-stream", iso: "application/octet-stream",
};

/** The content type for a file name, `application/octet-stream` when the extension is unknown. */
export function contentTypeFor(fileName: string): string {
  const dot = fileName.lastIndexOf(".");
  if (dot < 0 || dot < fileName.lastIndexOf("/")) return "application/octet-stream";
  return TYPES[fileName.slice(dot + 1).toLowerCase()] ?? "application/octet-stream";
}

/**
 * A Content-Disposition value (RFC 6266): an ASCII `filename` fallback and, for other names, the
 * UTF-8 `filename*` form (RFC 8187).
 */
export function contentDisposition(fileName: string, type: "attachment" | "inline" = "attachment"): string {
  const fallback = fileName.replace(/[^\x20-\x7e]|["\\%]/g, "_");
  let value = `${type}; filename="${fallback}"`;
  if (fallback !== fileName) {
    const encoded = encodeURIComponent(fileName).replace(/['()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
    value += `; filename*=UTF-8''${encoded}`;
  }
  return value;
}
