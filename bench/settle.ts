/**
 * Loaded into every benchmark server (`--import`): on SIGUSR2 the server runs full garbage
 * collections, so that the harness can read the memory it keeps apart from garbage V8 has not
 * collected yet (peers and both engines alike), and prints `memory {json}` with
 * process.memoryUsage() after them.
 */
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";

setFlagsFromString("--expose-gc");
const gc = runInNewContext("gc") as () => void;
process.on("SIGUSR2", () => {
  gc();
  gc();
  console.log(`memory ${JSON.stringify(process.memoryUsage())}`);
});
