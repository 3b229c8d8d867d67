// Shared by the peer servers: port, files directory, and the ready line the harness waits for.
export const filesDir = process.env.FILES_DIR ?? "/tmp";

export function listenPort(): number {
  return Number(process.env.PORT ?? 8000);
}

export function ready(): void {
  console.log("listening");
}

export function parseQuery(url: string): { path: string; query: URLSearchParams } {
  const q = url.indexOf("?");
  return q < 0 ? { path: url, query: new URLSearchParams() } : { path: url.slice(0, q), query: new URLSearchParams(url.slice(q + 1)) };
}
