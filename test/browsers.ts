/**
 * Real browsers for tests, without a driver: Debian's Chromium and Firefox ESR started headless on
 * a page of the test's server, which reports back over HTTP. Each runs in a profile of its own
 * (a fresh temporary directory) with its background networking off, and is ended by its PID.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { foreignEnv } from "./helpers.js";

export interface Browser {
  name: "chromium" | "firefox";
  executable: string;
}

/** The browsers on this machine (CHROMIUM_PATH and FIREFOX_PATH point elsewhere). */
export const browsers: Browser[] = [
  { name: "chromium" as const, executable: process.env.CHROMIUM_PATH ?? "/usr/bin/chromium" },
  { name: "firefox" as const, executable: process.env.FIREFOX_PATH ?? "/usr/bin/firefox-esr" },
];

export function hasBrowser(browser: Browser): boolean {
  return existsSync(browser.executable);
}

// Firefox preferences that keep a headless test run off the network and quiet.
const FIREFOX_PREFS = {
  "app.update.enabled": false,
  "app.update.auto": false,
  "browser.shell.checkDefaultBrowser": false,
  "browser.startup.homepage_override.mstone": "ignore",
  "browser.aboutwelcome.enabled": false,
  "datareporting.policy.dataSubmissionEnabled": false,
  "datareporting.healthreport.uploadEnabled": false,
  "toolkit.telemetry.enabled": false,
  "network.captive-portal-service.enabled": false,
  "network.connectivity-service.enabled": false,
  "browser.safebrowsing.malware.enabled": false,
  "browser.safebrowsing.phishing.enabled": false,
  "extensions.update.enabled": false,
  "extensions.getAddons.cache.enabled": false,
  "browser.newtabpage.enabled": false,
  "media.gmp-manager.url": "",
  "network.proxy.type": 0,
};

/** A running browser on `url`; `close()` ends it and removes its profile. */
export interface RunningBrowser {
  child: ChildProcess;
  close(): Promise<void>;
}

/** Start a browser headless on `url`. */
export function openBrowser(browser: Browser, url: string): RunningBrowser {
  const profile = mkdtempSync(join(tmpdir(), `catzilla-${browser.name}-`));
  let args: string[];
  if (browser.name === "chromium") {
    args = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
      "--disable-background-networking", "--disable-component-update", "--disable-sync",
      `--user-data-dir=${profile}`, url];
  } else {
    const prefs = Object.entries(FIREFOX_PREFS).map(([k, v]) => `user_pref(${JSON.stringify(k)}, ${JSON.stringify(v)});`).join("\n");
    writeFileSync(join(profile, "user.js"), `${prefs}\n`);
    args = ["--headless", "--no-remote", "--profile", profile, url];
  }
  const env = { ...foreignEnv(), MOZ_HEADLESS: "1" };
  const child = spawn(browser.executable, args, { env, stdio: "ignore", detached: true });
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  return {
    child,
    async close() {
      // The browser's own process group (detached): its helper processes end with it.
      if (child.exitCode === null && child.pid !== undefined) {
        try {
          process.kill(-child.pid, "SIGTERM");
        } catch {
          // Already gone.
        }
        const timer = setTimeout(() => {
          try {
            process.kill(-child.pid!, "SIGKILL");
          } catch {
            // Already gone.
          }
        }, 3_000);
        await exited;
        clearTimeout(timer);
      }
      rmSync(profile, { recursive: true, force: true });
    },
  };
}

/**
 * Debian's Chromium (or CHROMIUM_PATH) driven by playwright-core, headless and off the network
 * but for the test's own requests. Fails, saying what to install, where it is missing.
 */
export async function launchChromium(): Promise<import("playwright-core").Browser> {
  const executablePath = browsers[0]!.executable;
  if (!existsSync(executablePath)) {
    throw new Error(`Chromium not found at ${executablePath}; install it (apt-get install chromium) or set CHROMIUM_PATH`);
  }
  const { chromium } = await import("playwright-core");
  return chromium.launch({
    executablePath,
    env: foreignEnv(),
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
      "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
}
