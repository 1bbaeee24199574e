/**
 * The fault injector's call sites read from V8's structured stack frames (the default)
 * against the same read from the formatted stack, as before (`framesOutsideLayers`'s
 * `formatted`): the same caller, and with `stacks` the same `via`, on stacks built from
 * frames of the layers (this file's path names two: its frames count as the model's) and
 * frames outside them of every shape a frame prints in (test/lib/stack-probe.ts), at
 * every depth around the frames read first and the frames read at most; and at every
 * call of the bundled scenarios.
 */

import assert from "node:assert/strict";
import { test } from "node:test";
import fc from "fast-check";
import { FaultInjection, framesOutsideLayers } from "../../src/machine/fault-inject.js";
import { runPipeline } from "../../src/pipelines/run.js";
import { Probe, probeAlias, probeArrow, probeNamed, probeThrough } from "../lib/stack-probe.js";
import { bundledScenarios, smallBundledSpec } from "../pipelines/bundled.js";

type Frames = { caller: string; via: string[] };

/** The four readings at one place: structured and formatted, with and without `stacks`. */
function readings(): { fast: Frames; plain: Frames; fastCaller: Frames; plainCaller: Frames } {
  return {
    fast: framesOutsideLayers(true),
    plain: framesOutsideLayers(true, true),
    fastCaller: framesOutsideLayers(false),
    plainCaller: framesOutsideLayers(false, true),
  };
}

function assertSame(r: ReturnType<typeof readings>, what: string): void {
  assert.deepEqual(r.fast, r.plain, what);
  assert.equal(r.fastCaller.caller, r.plain.caller, what);
  assert.equal(r.plainCaller.caller, r.plain.caller, what);
  assert.deepEqual(r.fastCaller.via, [], what);
  assert.deepEqual(r.plainCaller.via, [], what);
}

/** A frame of the layers (this file), `n` deep. */
function layer<T>(n: number, f: () => T): T {
  return n <= 0 ? f() : layer(n - 1, f);
}

type Step =
  | { readonly kind: "layer"; readonly n: number }
  | { readonly kind: "named" | "arrow" | "through" | "method" | "alias" };

function callThrough<T>(steps: readonly Step[], f: () => T): T {
  if (steps.length === 0) return f();
  const [s, ...rest] = steps as [Step, ...Step[]];
  const inner = (): T => callThrough(rest, f);
  switch (s.kind) {
    case "layer":
      return layer(s.n, inner);
    case "named":
      return probeNamed(inner);
    case "arrow":
      return probeArrow(inner);
    case "through":
      return probeThrough((g) => layer(0, g), inner);
    case "method":
      return new Probe().method(inner);
    case "alias":
      return probeAlias(inner);
  }
}

const step: fc.Arbitrary<Step> = fc.oneof(
  fc.record({ kind: fc.constant("layer" as const), n: fc.integer({ min: 0, max: 24 }) }),
  fc.record({
    kind: fc.constantFrom(
      "named" as const,
      "arrow" as const,
      "through" as const,
      "method" as const,
      "alias" as const,
    ),
  }),
);

test("stacks are formatted by Node's default here (the structured reading is what runs)", () => {
  const p = Error.prepareStackTrace;
  assert.ok(p === undefined || p.name === "ErrorPrepareStackTrace");
  assert.notEqual(process.sourceMapsEnabled, true);
});

test("call sites: structured frames read the same caller and via as the formatted stack, on random stacks", () => {
  fc.assert(
    fc.property(fc.array(step, { maxLength: 8 }), (steps) => {
      assertSame(callThrough(steps, readings), JSON.stringify(steps));
    }),
    { numRuns: 300 },
  );
});

test("call sites: the caller found past the frames read first, and past the frames read at most", () => {
  for (let n = 0; n <= 45; n++) {
    const r = layer(n, () => probeNamed(() => layer(n, readings)));
    assertSame(r, `depth ${n}`);
    if (2 * n + 6 < 38) assert.match(r.plain.caller, /^stack-probe\.probeNamed$/, `depth ${n}`);
  }
});

test("call sites: every consult of the bundled scenarios reads the same either way", () => {
  const consult = FaultInjection.prototype.consult;
  let calls = 0;
  FaultInjection.prototype.consult = function (this: FaultInjection, ...args) {
    calls++;
    assertSame(readings(), args[0]);
    return consult.apply(this, args);
  };
  try {
    for (const file of bundledScenarios().slice(0, 8))
      runPipeline({ ...smallBundledSpec(file), recordCallSites: true, trace: false });
  } finally {
    FaultInjection.prototype.consult = consult;
  }
  assert.ok(calls > 100, `consults checked: ${calls}`);
});
