import { fileURLToPath } from "node:url";
import { Catzilla, type Router } from "catzilla";

/** When `moduleUrl` is the script node was started with, serve `router` on $PORT (default 8000). */
export async function runIfMain(moduleUrl: string, router: Router, title: string): Promise<void> {
  if (process.argv[1] === undefined || fileURLToPath(moduleUrl) !== process.argv[1]) return;
  const app = new Catzilla();
  app.include(router);
  const { url } = await app.listen({ port: Number(process.env.PORT ?? 8000), host: process.env.HOST ?? "127.0.0.1" });
  console.log(`${title} listening on ${url}`);
}
