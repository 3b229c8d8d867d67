import { realpath, stat } from "node:fs/promises";
import { isAbsolute, join, resolve, sep } from "node:path";
import { HTTPError } from "../errors.js";
import type { Request } from "../request/request.js";
import { FileResponse, type FileResponseOptions } from "./file.js";

/** Options of `app.static()`. */
export interface StaticOptions extends Pick<FileResponseOptions, "maxRanges" | "readSize"> {
  /** File served for a directory, or `false` for none. @default "index.html" */
  index?: string | false;
  /** Whether names starting with a dot are served. @default false */
  dotfiles?: boolean;
  /** Cache-Control header of every file, if any. */
  cacheControl?: string;
}

/**
 * A handler that serves files below `directory` by the `path` route param. It refuses NUL bytes
 * (400), `..` segments in any encoding, hidden files unless allowed, and anything whose real path
 * (after symlinks) lies outside the directory (404).
 */
export function staticHandler(directory: string, options: StaticOptions = {}): (req: Request<{ path: string }>) => Promise<FileResponse> {
  const root = resolve(directory);
  let realRoot: Promise<string> | undefined;
  const index = options.index ?? "index.html";
  const fileOptions: FileResponseOptions = {
    ...(options.maxRanges === undefined ? {} : { maxRanges: options.maxRanges }),
    ...(options.readSize === undefined ? {} : { readSize: options.readSize }),
    ...(options.cacheControl === undefined ? {} : { headers: { "Cache-Control": options.cacheControl } }),
  };
  return async (req) => {
    const relative = req.params.path;
    if (relative.includes("\0")) throw new HTTPError(400, "NUL byte in path");
    const segments = relative.split(/[/\\]/).filter((s) => s !== "" && s !== ".");
    for (const segment of segments) {
      if (segment === ".." || (!options.dotfiles && segment.startsWith("."))) throw new HTTPError(404);
    }
    let target = join(root, ...segments);
    if (isAbsolute(relative) && sep === "\\") throw new HTTPError(404);
    if (target !== root && !target.startsWith(root + sep)) throw new HTTPError(404);
    let real: string;
    try {
      real = await realpath(target);
      realRoot ??= realpath(root);
      const base = await realRoot;
      if (real !== base && !real.startsWith(base + sep)) throw new HTTPError(404);
      if ((await stat(real)).isDirectory()) {
        if (index === false) throw new HTTPError(404);
        target = join(real, index);
        real = await realpath(target);
        if (!real.startsWith(base + sep)) throw new HTTPError(404);
      }
    } catch (error) {
      if (error instanceof HTTPError) throw error;
      throw new HTTPError(404);
    }
    return new FileResponse(real, fileOptions);
  };
}
