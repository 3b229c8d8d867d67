import type { StreamEncoding } from "../http-engine.js";

/**
 * Pick a coding from Accept-Encoding (RFC 9110 §12.5.3), preferring brotli, or `null` for none.
 * A coding with `q=0` is refused.
 */
export function negotiateEncoding(acceptEncoding: string | undefined): StreamEncoding | null {
  if (acceptEncoding === undefined) return null;
  let br = false;
  let gzip = false;
  for (const part of acceptEncoding.split(",")) {
    const [name, ...params] = part.trim().toLowerCase().split(";");
    const q = params.map((p) => p.trim()).find((p) => p.startsWith("q="));
    if (q !== undefined && Number(q.slice(2)) === 0) continue;
    if (name === "br") br = true;
    else if (name === "gzip" || name === "x-gzip") gzip = true;
  }
  return br ? "br" : gzip ? "gzip" : null;
}
