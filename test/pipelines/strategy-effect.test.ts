/**
 * Every requested strategy changes the result or is refused with a named reason: for
 * each pipeline, buffer source and profile, a run with each strategy is compared with
 * the streaming run (the default); an identical run is a silently ignored setting.
 */

import assert from "node:assert/strict";
import { test } from "node:test";
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
  return JSON.stringify([r.verdict, r.violations.length, r.frames.map((f) => f.crc), r.costs]);
}

for (const profile of ["arm64", "cortex-a9", "x86-64", "riscv64"]) {
  test(`strategies on ${profile}: each changes the result or is refused with a reason`, () => {
    let refused = 0;
    let compared = 0;
    for (const pipeline of PIPELINE_KINDS) {
      for (const [source, heap] of BUFFER_SOURCES) {
        if (pipeline === "cpu-output" && source !== "v4l2-mmap") continue;
        const base: PipelineSpec = {
          profile,
          pipeline,
          source,
          ...(heap ? { heap } : {}),
          width: 64,
          height: 48,
          frames: 3,
          buffers: 2,
        };
        const streaming = fingerprint(runPipeline({ ...base, strategy: "streaming" }));
        for (const strategy of MAPPING_STRATEGIES) {
          if (strategy === "streaming") continue;
          const spec = { ...base, strategy };
          const conflicts = specConflicts(spec);
          const where = `${profile} ${pipeline} ${source}${heap ? ` (${heap})` : ""} ${strategy}`;
          if (conflicts.length > 0) {
            assert.ok(
              conflicts.some((c) => c.field === "pipeline.strategy" && c.problem.length > 40),
              `${where}: refused without naming the strategy: ${JSON.stringify(conflicts)}`,
            );
            assert.throws(() => runPipeline(spec), /pipeline\.strategy/);
            refused++;
            continue;
          }
          compared++;
          assert.notEqual(
            fingerprint(runPipeline(spec)),
            streaming,
            `${where}: gives the same run as streaming but is not refused`,
          );
        }
      }
    }
    assert.ok(compared + refused > 0);
  });
}

test("the system heap refuses 'coherent' and names what would give coherent memory", () => {
  const [c] = specConflicts({ source: "dma-heap", heap: "system", strategy: "coherent" });
  assert.equal(c?.field, "pipeline.strategy");
  assert.match(c!.problem, /system_heap\.c/);
  assert.match(c!.problem, /v4l2-mmap/);
});

test("machine.maintenance.kind may not contradict the strategy; the threshold tunes whole-cache", () => {
  const wca = { kind: "whole-cache-above" as const, thresholdBytes: 512 * 1024 };
  const bad = specConflicts({
    profile: "cortex-a9",
    pipeline: "camera-cpu-display",
    strategy: "streaming",
    overrides: { maintenance: wca },
  });
  assert.deepEqual(
    bad.map((c) => c.field),
    ["machine.maintenance.kind"],
  );
  // Without the kind, the threshold only tunes whole-cache and streaming differs from it.
  const spec: PipelineSpec = {
    profile: "cortex-a9",
    pipeline: "camera-cpu-display",
    width: 640,
    height: 480,
    frames: 2,
    overrides: { maintenance: { thresholdBytes: 512 * 1024 } },
  };
  const whole = runPipeline({ ...spec, strategy: "whole-cache" });
  const line = runPipeline({ ...spec, strategy: "streaming" });
  assert.equal(whole.verdict, "coherent");
  assert.equal(line.verdict, "coherent");
  assert.notEqual(
    whole.costs["cache-maintenance"].ns,
    line.costs["cache-maintenance"].ns,
    "the template's threshold must not make streaming and whole-cache the same run",
  );
});
