/**
 * An AI-chat style token stream over Server-Sent Events. A fake model yields tokens with small
 * delays; each token reaches the browser as soon as it exists.
 *
 *   node --conditions=catzilla-source --import tsx examples/ai-chat.ts
 *   open http://127.0.0.1:8000/chat
 */
import { z } from "zod";
import { EventSourceResponse, HTMLResponse, Router, type EventItem } from "catzilla";
import { runIfMain } from "./main.js";

export const router = new Router();

const sleep = (ms: number, signal: AbortSignal): Promise<void> =>
  new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    signal.addEventListener("abort", () => (clearTimeout(timer), resolve()), { once: true });
  });

/** A stand-in for a language model: answers word by word. */
async function* fakeModel(prompt: string, signal: AbortSignal): AsyncGenerator<string> {
  const answer = `You asked: "${prompt}". Catzilla streams every token the moment the model produces it, ` +
    "with backpressure, heartbeats and clean cancellation when you close the tab.";
  for (const word of answer.split(/(?<= )/)) {
    if (signal.aborted) return;
    await sleep(30 + Math.random() * 50, signal);
    yield word;
  }
}

// The plan's chat_stream(message: str): a missing, empty or too long message gets 422.
const ChatQuery = z.object({ message: z.string().min(1).max(500) });

router.get("/chat/stream", (req) => {
  const prompt = req.valid.query.message;
  return new EventSourceResponse(async function* (stream): AsyncGenerator<EventItem> {
    let index = 0;
    for await (const token of fakeModel(prompt, stream.signal)) {
      yield { event: "token", id: ++index, data: token };
    }
    yield { event: "done", data: String(index) };
  }, { pingMs: 10_000 });
}, {
  summary: "A reply to `message`, streamed token by token",
  tags: ["streaming"],
  schema: { query: ChatQuery },
  response: { kind: "sse", events: ["token", "done"] },
});

router.get("/chat", () => new HTMLResponse(`<!doctype html>
<meta charset="utf-8"><title>Catzilla chat stream</title>
<style>body{font:16px system-ui;max-width:42rem;margin:2rem auto}#out{white-space:pre-wrap;border:1px solid #ccc;padding:1rem;min-height:4rem}</style>
<h1>AI chat token stream (SSE)</h1>
<form id="f"><input id="m" value="What makes streaming fast?" size="40"> <button>Ask</button></form>
<p id="out"></p><p id="status"></p>
<script>
let source;
document.getElementById("f").onsubmit = (e) => {
  e.preventDefault();
  source?.close();
  const out = document.getElementById("out"), status = document.getElementById("status");
  out.textContent = ""; status.textContent = "streaming…";
  source = new EventSource("/chat/stream?message=" + encodeURIComponent(document.getElementById("m").value));
  source.addEventListener("token", (ev) => { out.textContent += ev.data; });
  source.addEventListener("done", (ev) => { status.textContent = ev.data + " tokens"; source.close(); });
};
</script>`));

await runIfMain(import.meta.url, router, "AI chat stream");
