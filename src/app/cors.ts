import { Response } from "../responses/response.js";
import type { Request } from "../request/request.js";
import type { Middleware } from "./router.js";

/** Which origins may read responses: one, a list, a pattern, every one (`"*"`), or a function. */
export type CorsOrigin =
  | "*"
  | string
  | RegExp
  | ReadonlyArray<string | RegExp>
  | ((origin: string, req: Request) => boolean | Promise<boolean>);

/** Options of {@link cors}, named as the cors, @fastify/cors and Hono packages name them. */
export interface CorsOptions {
  /** Origins allowed to read responses. Default `"*"` (any, without credentials). */
  origin?: CorsOrigin;
  /** Methods a preflight allows. Default GET, HEAD, PUT, PATCH, POST, DELETE. */
  methods?: readonly string[];
  /**
   * Request headers a preflight allows. Default: those the preflight asks for
   * (Access-Control-Request-Headers), as the cors package does.
   */
  allowedHeaders?: readonly string[];
  /** Response headers the page may read besides the CORS-safelisted ones. Default none. */
  exposedHeaders?: readonly string[];
  /**
   * Whether the page may send cookies and read the response of a credentialed request. Needs an
   * `origin` other than `"*"`: the allowed origin is then sent back, never `*`. Default false.
   */
  credentials?: boolean;
  /** Seconds a browser may cache a preflight's answer (Access-Control-Max-Age). Default: not sent. */
  maxAge?: number;
  /** Status of an answered preflight. Default 204. */
  optionsSuccessStatus?: number;
  /** Pass preflights on to the routes instead of answering them (with the CORS headers added). Default false. */
  preflightContinue?: boolean;
}

const DEFAULT_METHODS = ["GET", "HEAD", "PUT", "PATCH", "POST", "DELETE"];

/**
 * CORS middleware: answers preflight requests and adds the CORS headers to responses (error
 * responses included) for allowed origins. Requests without an Origin header pass untouched; a
 * disallowed origin gets no CORS headers, which is how a browser learns to refuse it. Add it with
 * `app.use()` so that it sees preflights for every path (before routing), or on a router.
 * @example app.use(cors({ origin: ["https://app.example.com"], credentials: true, maxAge: 600 }));
 */
export function cors(options: CorsOptions = {}): Middleware {
  const origin = options.origin ?? "*";
  const credentials = options.credentials ?? false;
  if (credentials && origin === "*") {
    throw new TypeError("cors: credentials: true needs an explicit origin (a list, a pattern or a function): \"*\" would let every site read credentialed responses");
  }
  if (options.maxAge !== undefined && (!Number.isInteger(options.maxAge) || options.maxAge < 0)) {
    throw new TypeError(`cors: maxAge must be a whole number of seconds >= 0, got ${String(options.maxAge)}`);
  }
  const status = options.optionsSuccessStatus ?? 204;
  if (!Number.isInteger(status) || status < 200 || status > 299) throw new TypeError(`cors: optionsSuccessStatus must be a 2xx status, got ${String(status)}`);
  const methods = (options.methods ?? DEFAULT_METHODS).map((m) => m.toUpperCase()).join(", ");
  const allowedHeaders = options.allowedHeaders === undefined ? null : options.allowedHeaders.join(", ");
  const exposed = options.exposedHeaders === undefined || options.exposedHeaders.length === 0 ? null : options.exposedHeaders.join(", ");
  const maxAge = options.maxAge === undefined ? null : String(options.maxAge);
  const allows = originCheck(origin);
  // With one fixed answer for every origin the response does not vary by Origin.
  const varies = origin !== "*";

  return async (req, next) => {
    const requestOrigin = req.header("origin");
    if (requestOrigin === undefined) return next();
    const allowed = await allows(requestOrigin, req);
    const preflight = req.method === "OPTIONS" && req.header("access-control-request-method") !== undefined;
    if (preflight && !options.preflightContinue) {
      const response = new Response(null, { status });
      if (varies) response.headers.append("Vary", "Origin");
      if (allowed) {
        setOrigin(response, origin, requestOrigin, credentials);
        response.headers.set("Access-Control-Allow-Methods", methods);
        const headers = allowedHeaders ?? req.header("access-control-request-headers");
        if (allowedHeaders === null) response.headers.append("Vary", "Access-Control-Request-Headers");
        if (headers !== undefined && headers !== "") response.headers.set("Access-Control-Allow-Headers", headers);
        if (maxAge !== null) response.headers.set("Access-Control-Max-Age", maxAge);
      }
      return response;
    }
    const response = await next();
    if (varies) response.headers.append("Vary", "Origin");
    if (allowed) {
      setOrigin(response, origin, requestOrigin, credentials);
      if (exposed !== null) response.headers.set("Access-Control-Expose-Headers", exposed);
    }
    return response;
  };
}

function setOrigin(response: Response, origin: CorsOrigin, requestOrigin: string, credentials: boolean): void {
  response.headers.set("Access-Control-Allow-Origin", origin === "*" ? "*" : requestOrigin);
  if (credentials) response.headers.set("Access-Control-Allow-Credentials", "true");
}

function originCheck(origin: CorsOrigin): (requestOrigin: string, req: Request) => boolean | Promise<boolean> {
  if (origin === "*") return () => true;
  if (typeof origin === "function") return origin;
  const list = typeof origin === "string" || origin instanceof RegExp ? [origin] : origin;
  for (const entry of list) {
    if (typeof entry === "string" && (entry === "*" || entry.endsWith("/"))) {
      throw new TypeError(`cors: an origin in a list is scheme://host[:port] without a path or "*", got ${JSON.stringify(entry)}`);
    }
  }
  const exact = new Set(list.filter((e): e is string => typeof e === "string"));
  const patterns = list.filter((e): e is RegExp => e instanceof RegExp);
  return (requestOrigin) => exact.has(requestOrigin) || patterns.some((p) => {
    p.lastIndex = 0;
    return p.test(requestOrigin);
  });
}
