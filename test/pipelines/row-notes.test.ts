/**
 * Whole pipelines with DRAM's row notes (vivid and simgpu say which rows of what they
 * write equal the row above, and which frame it is; simgpu and simdisplay then skip
 * comparing those rows, and a frame written over another of the same key copies only
 * the rows that differ) against the same runs with nothing ever known
 * (DmaDevice.knownRows answering undefined): the same verdict, violations, frame CRCs,
 * costs and counters, over random profiles, pipelines, buffer sources, strategies,
 * formats, geometries and named kernel faults (which make stale and lost data: a note
 * must never outlive the bytes it describes).
 */

import assert from "node:assert/strict";
import { test } from "node:test";
import fc from "fast-check";
import { NAMED_FAULTS } from "../../src/kernel/fault-inject.js";
import { DmaDevice } from "../../src/machine/device.js";
import { runPipeline } from "../../src/pipelines/run.js";
import {
  MAPPING_STRATEGIES,
  PIPELINE_KINDS,
  type PipelineResult,
  type PipelineSpec,
} from "../../src/pipelines/types.js";
import { specConflicts } from "../../src/pipelines/validity.js";
import { BUFFER_SOURCES } from "./bundled.js";

function fingerprint(r: PipelineResult): string {
  return JSON.stringify([
    r.verdict,
    r.violations.map((v) => `${v.kind} ${v.agent} ${v.phys} ${v.len} ${v.message}`),
    r.frames,
    r.costs,
  ]);
}

/** The run with nothing known from DRAM's row notes: every row compared, as before them. */
function withoutNotes<T>(f: () => T): T {
  const known = Object.getOwnPropertyDescriptor(DmaDevice.prototype, "knownRows")!;
  Object.defineProperty(DmaDevice.prototype, "knownRows", {
    ...known,
    value: () => undefined,
  });
  try {
    return f();
  } finally {
    Object.defineProperty(DmaDevice.prototype, "knownRows", known);
  }
}

test("row notes: the same runs as comparing every row", () => {
  let compared = 0;
  fc.assert(
    fc.property(
      fc.record({
        profile: fc.constantFrom("arm64", "cortex-a9", "riscv64", "x86-64"),
        pipeline: fc.oneof(
          { weight: 3, arbitrary: fc.constant("camera-gpu-display" as const) },
          { weight: 2, arbitrary: fc.constantFrom(...PIPELINE_KINDS) },
        ),
        source: fc.nat(BUFFER_SOURCES.length - 1),
        strategy: fc.oneof(
          { weight: 3, arbitrary: fc.constantFrom("streaming" as const, "cache-hints" as const) },
          { weight: 1, arbitrary: fc.constantFrom(...MAPPING_STRATEGIES) },
        ),
        yuyv: fc.boolean(),
        width: fc.integer({ min: 4, max: 80 }).map((n) => n * 2),
        height: fc.integer({ min: 2, max: 48 }),
        buffers: fc.integer({ min: 2, max: 4 }),
        faults: fc.oneof(
          { weight: 2, arbitrary: fc.constant([]) },
          {
            weight: 1,
            arbitrary: fc.subarray(
              NAMED_FAULTS.map((f) => f.name),
              { maxLength: 2 },
            ),
          },
        ),
      }),
      (c) => {
        const [source, heap] = BUFFER_SOURCES[c.source]!;
        const spec: PipelineSpec = {
          profile: c.profile,
          pipeline: c.pipeline,
          source,
          ...(heap ? { heap } : {}),
          strategy: c.strategy,
          // YUYV only where the GPU converts it (the display takes XRGB8888 only).
          format: c.yuyv && c.pipeline === "camera-gpu-display" ? "YUYV" : "XR24",
          width: c.width,
          height: c.height,
          frames: 3,
          buffers: c.buffers,
          faults: c.faults,
          trace: false,
        };
        if (specConflicts(spec).length > 0) return;
        let plain: string;
        try {
          plain = withoutNotes(() => fingerprint(runPipeline(spec)));
        } catch (e) {
          assert.throws(() => runPipeline(spec), { message: (e as Error).message });
          return;
        }
        compared++;
        assert.equal(fingerprint(runPipeline(spec)), plain, JSON.stringify(spec));
      },
    ),
    { numRuns: 80 },
  );
  assert.ok(compared > 15, `only ${compared} runs compared`);
});
