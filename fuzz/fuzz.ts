/**
 * `npm run fuzz -- --ops N [--seed S] [--length L]`: random multi-process uAPI
 * sequences on the simulated kernel (fuzz/uapi-fuzz.ts) until N operations have run.
 * Prints the rate in operations per second and every distinct failure (internal
 * error, hang, leak) with a minimal reproducer shrunk by fast-check. Exit status 1 if
 * anything failed.
 */

import { parseArgs } from "node:util";
import fc from "fast-check";
import {
  type FuzzFailure,
  type FuzzOp,
  formatOps,
  fuzzSequence,
  runSequence,
} from "./uapi-fuzz.js";

const { values } = parseArgs({
  options: {
    ops: { type: "string", default: "100000" },
    seed: { type: "string", default: "1" },
    length: { type: "string", default: "200" },
  },
});
const total = Number(values.ops);
const seed = Number(values.seed);
const length = Number(values.length);
if (!(Number.isSafeInteger(total) && total > 0 && Number.isSafeInteger(seed) && length >= 1)) {
  process.stderr.write("usage: npm run fuzz -- --ops N [--seed S] [--length L]\n");
  process.exit(2);
}

/** A failure's identity: its kind and the first line of its message without numbers. */
function signature(f: FuzzFailure): string {
  return `${f.kind}: ${f.message.split("\n")[0]!.replace(/0x[0-9a-f]+|\d+/g, "N")}`;
}

const failures = new Map<string, { failure: FuzzFailure; ops: readonly FuzzOp[]; count: number }>();
let ops = 0;
let sequences = 0;
let blocked = 0;
let errnos = 0;
const start = process.hrtime.bigint();
let lastReport = start;
const gen = fuzzSequence(length, Math.ceil(length / 2));
let runSeed = seed;
while (ops < total) {
  const [seq] = fc.sample(gen, { seed: runSeed++, numRuns: 1 });
  const run = seq!.slice(0, total - ops);
  const r = runSequence(run);
  ops += run.length;
  sequences++;
  blocked += r.blockedForever;
  errnos += r.errnos;
  if (r.failure !== undefined) {
    const sig = signature(r.failure);
    const known = failures.get(sig);
    if (known !== undefined) known.count++;
    else failures.set(sig, { failure: r.failure, ops: run.slice(0, r.failure.at + 1), count: 1 });
  }
  const now = process.hrtime.bigint();
  if (now - lastReport > 10_000_000_000n) {
    lastReport = now;
    const s = Number(now - start) / 1e9;
    process.stderr.write(
      `fuzz: ${ops} ops, ${Math.round(ops / s)} ops/s, ${failures.size} distinct failures\n`,
    );
  }
}
const seconds = Number(process.hrtime.bigint() - start) / 1e9;

// Shrink each distinct failure to a minimal reproducer.
const byKind = { "internal-error": 0, hang: 0, leak: 0 };
for (const [sig, f] of failures) {
  byKind[f.failure.kind] += f.count;
  let minimal: readonly FuzzOp[] = f.ops;
  try {
    fc.assert(
      fc.property(fc.subarray([...f.ops]), (sub) => {
        const r = runSequence(sub);
        return r.failure === undefined || signature(r.failure) !== sig;
      }),
      { seed, numRuns: 200, examples: [[[...f.ops]]] },
    );
  } catch (e) {
    const cex = (e as { counterexample?: [FuzzOp[]] }).counterexample;
    if (cex) minimal = cex[0];
  }
  process.stdout.write(
    `\n${sig} (${f.count}x)\n  ${f.failure.message.split("\n").slice(0, 4).join("\n  ")}\nminimal reproducer (runSequence([...])):\n${formatOps(minimal)}\n`,
  );
}
process.stdout.write(
  `\nfuzz: ${ops} operations in ${sequences} sequences, ${seconds.toFixed(1)} s, ${Math.round(ops / seconds)} ops/s (seed ${seed})\n` +
    `  ${byKind["internal-error"]} internal errors, ${byKind.leak} leaks, ${byKind.hang} hangs; ` +
    `${blocked} blocking calls ended as would-block-forever, ${errnos} errno/signal results\n`,
);
process.exitCode = failures.size > 0 ? 1 : 0;
