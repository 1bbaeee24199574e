/**
 * The built-in pipelines end to end on the simulated kernel: every pipeline is coherent
 * on every profile with the right calls, and each one with a sync left out or a cache
 * hint misapplied shows wrong CRCs and a violation that names the missing call.
 */

import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { PROFILES } from "../../src/machine/profiles.js";
import { runPipeline } from "../../src/pipelines/run.js";
import {
  MAPPING_STRATEGIES,
  PIPELINE_KINDS,
  type PipelineFault,
  type PipelineKind,
  type PipelineResult,
  type PipelineSpec,
} from "../../src/pipelines/types.js";
import { toJsonReport } from "../../src/report/json.js";

/** Small frames keep the matrix fast; the bytes still go through every cache and device. */
const SMALL: PipelineSpec = { width: 64, height: 48, frames: 8 };

function summary(r: PipelineResult): string {
  const bad = r.frames.filter((f) => !f.ok).length;
  const kinds = [...new Set(r.violations.map((v) => v.kind))].join(",");
  return `${r.verdict}: ${bad} wrong frame(s); violations: ${kinds || "none"}; first: ${r.violations[0]?.message ?? "-"}`;
}

describe("every pipeline is coherent on every profile with the right calls", () => {
  for (const pipeline of PIPELINE_KINDS) {
    for (const profile of Object.keys(PROFILES)) {
      test(`${pipeline} on ${profile}`, () => {
        const r = runPipeline({ ...SMALL, pipeline, profile });
        assert.equal(r.verdict, "coherent", summary(r));
        assert.equal(r.frames.length, 8);
        assert.ok(r.frames.every((f) => f.ok));
        // Frames differ from each other: the CRC is of real, changing content.
        assert.ok(new Set(r.frames.map((f) => f.crc)).size > 1);
      });
    }
  }
});

describe("every strategy is coherent", () => {
  for (const strategy of MAPPING_STRATEGIES) {
    for (const pipeline of ["camera-cpu-display", "camera-gpu-display"] as const) {
      for (const profile of ["cortex-a9", "arm64"]) {
        test(`${strategy}: ${pipeline} on ${profile}`, () => {
          const r = runPipeline({ ...SMALL, pipeline, profile, strategy });
          assert.equal(r.verdict, "coherent", summary(r));
        });
      }
    }
  }
  test("the sources: a CMA-heap and a udmabuf buffer queued as DMABUF", () => {
    for (const source of ["dma-heap", "udmabuf"] as const) {
      const r = runPipeline({
        ...SMALL,
        pipeline: "camera-gpu-display",
        profile: "arm64",
        source,
        ...(source === "dma-heap" ? { heap: "cma" } : {}),
      });
      assert.equal(r.verdict, "coherent", `${source}: ${summary(r)}`);
    }
  });
});

interface FaultCase {
  readonly pipeline: PipelineKind;
  readonly fault: PipelineFault;
  readonly strategy: PipelineSpec["strategy"];
  /** A violation kind that must appear, and text its hint (or another's) must name. */
  readonly kind: string;
  readonly names: RegExp;
}

const FAULTS: readonly FaultCase[] = [
  {
    pipeline: "camera-cpu-display",
    fault: "omit-sync-end",
    strategy: "streaming",
    kind: "stale-device-read",
    names: /DMA_BUF_SYNC_END/,
  },
  {
    pipeline: "camera-gpu-display",
    fault: "omit-sync-end",
    strategy: "streaming",
    kind: "stale-device-read",
    names: /DMA_BUF_SYNC_END/,
  },
  {
    pipeline: "camera-display",
    fault: "omit-sync-end",
    strategy: "streaming",
    kind: "stale-device-read",
    names: /DMA_BUF_SYNC_END/,
  },
  {
    pipeline: "camera-cpu-display",
    fault: "omit-sync-start",
    strategy: "cache-hints",
    kind: "stale-cpu-read",
    names: /DMA_BUF_IOCTL_SYNC START/,
  },
  {
    pipeline: "camera-cpu-display",
    fault: "lying-no-cache-invalidate",
    strategy: "streaming",
    kind: "stale-cpu-read",
    names: /V4L2_BUF_FLAG_NO_CACHE_INVALIDATE/,
  },
  {
    pipeline: "cpu-output",
    fault: "lying-no-cache-clean",
    strategy: "streaming",
    kind: "stale-device-read",
    names: /V4L2_BUF_FLAG_NO_CACHE_CLEAN/,
  },
];

describe("a missing sync or a lying hint: wrong CRCs and a violation naming the call", () => {
  for (const c of FAULTS) {
    for (const profile of ["arm64", "cortex-a9", "riscv64"]) {
      test(`${c.fault} in ${c.pipeline} (${c.strategy}) on ${profile}`, () => {
        const r = runPipeline({
          ...SMALL,
          pipeline: c.pipeline,
          profile,
          strategy: c.strategy,
          fault: c.fault,
          cpuReads: c.pipeline !== "cpu-output" ? true : undefined,
          cpuWrites: c.pipeline !== "cpu-output" ? true : undefined,
        });
        assert.equal(r.verdict, "incoherent");
        assert.ok(
          r.frames.some((f) => !f.ok),
          `a wrong CRC is the user-visible symptom: ${summary(r)}`,
        );
        assert.ok(
          r.violations.some((v) => v.kind === c.kind),
          `expected ${c.kind}: ${summary(r)}`,
        );
        assert.ok(
          r.violations.some((v) => c.names.test(v.hint)),
          `a hint names ${c.names}: ${r.violations.map((v) => v.hint).join("\n")}`,
        );
      });
    }
  }

  test("x86-64 snoops: the same faults leave the frames right", () => {
    const r = runPipeline({
      ...SMALL,
      pipeline: "camera-cpu-display",
      profile: "x86-64",
      fault: "omit-sync-end",
    });
    assert.ok(r.frames.every((f) => f.ok));
  });
});

describe("what the strategies cost", () => {
  test("on a non-coherent SoC coherent memory needs no maintenance, streaming does, and hints skip it", () => {
    const cost = (strategy: PipelineSpec["strategy"]): number =>
      runPipeline({ ...SMALL, pipeline: "camera-gpu-display", profile: "arm64", strategy }).costs[
        "cache-maintenance"
      ].ns;
    const coherent = cost("coherent");
    const streaming = cost("streaming");
    const hints = cost("cache-hints");
    assert.ok(streaming > coherent, `${streaming} > ${coherent}`);
    assert.ok(hints < streaming, `${hints} < ${streaming}`);
  });

  test("whole-cache maintenance costs more than per line for a small buffer on a 64 MiB cache", () => {
    const cost = (strategy: PipelineSpec["strategy"]): number =>
      runPipeline({
        ...SMALL,
        frames: 2,
        pipeline: "camera-gpu-display",
        profile: "x86-64-64m",
        strategy,
        devices: {
          camera: { coherent: false },
          gpu: { coherent: false },
          display: { coherent: false },
        },
      }).costs["cache-maintenance"].ns;
    assert.ok(cost("whole-cache") > 10 * cost("streaming"));
  });
});

test("the same spec gives the same report, byte for byte", () => {
  const spec: PipelineSpec = { ...SMALL, pipeline: "camera-gpu-display", profile: "cortex-a9" };
  const a = JSON.stringify(toJsonReport(runPipeline(spec)));
  const b = JSON.stringify(toJsonReport(runPipeline(spec)));
  assert.equal(a, b);
});

test("a hook sees each frame between capture and display (custom steps)", () => {
  const seen: number[] = [];
  runPipeline(
    { ...SMALL, frames: 3, pipeline: "camera-display", profile: "arm64" },
    { afterCapture: ({ frame }) => seen.push(frame) },
  );
  assert.deepEqual(seen, [0, 1, 2]);
});

test("bad specs are refused with a message that names the field", () => {
  assert.throws(() => runPipeline({ bufferBytes: 100 }), /bufferBytes 100/);
  assert.throws(() => runPipeline({ frames: 0 }), /frames 0/);
  assert.throws(() => runPipeline({ format: "NV12" }), /unknown format 'NV12'/);
});
