/**
 * The demo: every example on one server, with an index page that links them.
 *
 *   npm ci && npm start      → http://127.0.0.1:8000
 */
import { createDemoApp } from "./demo-app.js";
import { limitsFromEnv } from "./main.js";

// The environment may raise the connection limits and set the shutdown timeout (see main.ts).
const app = createDemoApp(limitsFromEnv());
const { url } = await app.listen({ port: Number(process.env.PORT ?? 8000), host: process.env.HOST ?? "127.0.0.1" });
console.log(`Catzilla demo listening on ${url} — open it in a browser; Ctrl+C stops it`);
