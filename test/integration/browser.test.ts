import { test } from "node:test";
import assert from "node:assert/strict";
import { launchChromium } from "../browsers.js";
import { createDemoApp } from "../../examples/demo-app.js";
import { serve } from "../helpers.js";

test("Chromium's WebSocket talks to the demo echo page: connect, send, receive, close", async () => {
  const browser = await launchChromium();
  const app = createDemoApp({ handleSignals: false });
  const served = await serve(app);
  try {
    const page = await browser.newPage();
    await page.goto(`${served.url}/ws-echo`);
    const text = (id: string): string => `document.getElementById(${JSON.stringify(id)}).textContent`;
    await page.waitForFunction(`${text("status")} === "open"`);
    await page.fill("#message", "héllo from Chromium");
    await page.click("#send");
    await page.waitForFunction(`${text("log")}.includes("Echo: héllo from Chromium")`);
    // A message large enough to be compressed (the route has permessage-deflate).
    await page.fill("#message", "x".repeat(50_000));
    await page.click("#send");
    await page.waitForFunction(`${text("log")}.includes("Echo: " + "x".repeat(50000))`);
    await page.click("#close");
    await page.waitForFunction(`${text("status")} === "closed 1000"`);
    const stats = app.stats().websockets;
    assert.equal(stats.opened, 1);
    assert.ok(stats.messagesIn >= 2);
  } finally {
    await browser.close();
    await served.close();
  }
});
