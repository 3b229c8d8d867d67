import type { TestContext } from "node:test";
import { loadBinding, type NativeBinding } from "../../src/node/native/binding.js";

/**
 * The native addon, or null after skipping the test where it is not built. Under CI (CI=true) a
 * missing addon fails instead: the native half of the suite must run there.
 */
export function nativeOrSkip(t: TestContext): NativeBinding | null {
  const loaded = loadBinding();
  if ("binding" in loaded) return loaded.binding;
  if (process.env.CI === "true") throw new Error(`CI=true but the native addon did not load: ${loaded.error.message}`);
  t.skip(`the native addon is not built: ${loaded.error.message}`);
  return null;
}
