import { test, type TestContext } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { Opcode } from "../../src/protocol/websocket/constants.js";
import { encodeClose, encodeFrame } from "../../src/protocol/websocket/frame.js";
import { corpus } from "./http-corpus.js";

const root = fileURLToPath(new URL("../..", import.meta.url));
/** Seconds of fuzzing per run; bounded so that the suite stays short. */
const SECONDS = Number(process.env.CATZILLA_FUZZ_SECONDS ?? 20);

function clang(): string | null {
  for (const name of ["clang", "clang-16", "clang-15", "clang-14"]) {
    if (spawnSync(name, ["--version"]).status === 0) return name;
  }
  return null;
}

/** Build a libFuzzer target and run it for SECONDS from seeds (each prefixed by the target's own settings bytes). */
function fuzz(t: TestContext, target: string, sources: string[], seeds: Buffer[]): void {
  const compiler = clang();
  if (compiler === null) {
    if (process.env.CI === "true") throw new Error("CI=true but clang is missing: scripts/ensure-test-deps.mjs installs it");
    return t.skip("clang is not installed");
  }
  const out = join(root, "build", "fuzz");
  mkdirSync(out, { recursive: true });
  const binary = join(out, target);
  const build = spawnSync(compiler, [
    "-g", "-O1", "-fsanitize=fuzzer,address,undefined", "-fno-sanitize-recover=undefined", "-Inative/src",
    `native/fuzz/${target}.c`, ...sources, "-o", binary,
  ], { cwd: root, encoding: "utf8" });
  assert.equal(build.status, 0, `the fuzz target did not build:\n${build.stderr}`);
  const corpus = mkdtempSync(join(tmpdir(), "catzilla-fuzz-"));
  seeds.forEach((seed, i) => writeFileSync(join(corpus, `seed-${i}`), seed));
  try {
    const run = spawnSync(binary, [corpus, `-max_total_time=${SECONDS}`, "-seed=6455", "-rss_limit_mb=2048", "-print_final_stats=1", `-artifact_prefix=${out}/`], {
      cwd: root, encoding: "utf8", timeout: (SECONDS + 60) * 1000,
    });
    const report = `${run.stderr}`.split("\n").filter((l) => /stat::number_of_executed_units|ERROR|SUMMARY|Done/.test(l)).join("\n");
    t.diagnostic(report);
    assert.equal(run.status, 0, `the fuzzer found a problem:\n${run.stderr.slice(-4000)}`);
  } finally {
    rmSync(corpus, { recursive: true, force: true });
  }
}

test(`libFuzzer: the C frame parser, ${SECONDS} s under AddressSanitizer and UndefinedBehaviorSanitizer`, { timeout: (SECONDS + 120) * 1000 }, (t) => {
  // Seeds: valid frames of every kind; the first three bytes are the target's own settings.
  const mask = Buffer.from([1, 2, 3, 4]);
  const seeds = [
    encodeFrame(Opcode.Text, "héllo", { mask }),
    Buffer.concat([encodeFrame(Opcode.Text, "frag", { mask, fin: false }), encodeFrame(Opcode.Ping, "p", { mask }), encodeFrame(Opcode.Continuation, "ment", { mask })]),
    encodeFrame(Opcode.Binary, Buffer.alloc(300, 7), { mask }),
    encodeClose(1000, "bye", mask),
  ];
  fuzz(t, "parser_fuzz", ["native/src/frame.c"], seeds.map((seed, i) => Buffer.concat([Buffer.from([0x10, 0x00, i * 3]), seed])));
});

test(`libFuzzer: the C HTTP/1.1 request parser, ${SECONDS} s under AddressSanitizer and UndefinedBehaviorSanitizer`, { timeout: (SECONDS + 120) * 1000 }, (t) => {
  // Seeds: the differential test's corpus, valid and refused; three settings bytes first.
  fuzz(t, "http1_fuzz", ["native/src/http1.c"], corpus.map((item, i) => Buffer.concat([Buffer.from([0xff, 0x3f, i]), item.bytes])));
});
