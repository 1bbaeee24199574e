/**
 * A GPU rendering into its own buffer objects (graph pool source gpu-bo,
 * DRM_IOCTL_SIMGPU_GEM_CREATE + PRIME) on a non-coherent GPU, mapped per job or pinned
 * (boMapping): coherent when correct, its maps and unmaps under the checker, the
 * read-back's missing wait named, and the option refused where it cannot take effect.
 */

import assert from "node:assert/strict";
import { test } from "node:test";
import { graphIssues } from "../../src/pipelines/graph.js";
import { runPipeline } from "../../src/pipelines/run.js";
import type { GraphSpec, PipelineResult, PipelineSpec } from "../../src/pipelines/types.js";
import { parseScenario, scenarioToSpec } from "../../src/scenarios/scenario.js";
import { smallBundledSpec } from "./bundled.js";

const SPEC = (): PipelineSpec => smallBundledSpec("gpu-own-buffers.yaml");

function calls(r: PipelineResult, call: string, via: string): number {
  return (r.callSites ?? [])
    .filter((s) => s.call === call && s.via[0]!.startsWith(via))
    .reduce((a, s) => a + s.calls, 0);
}

test("gpu-own-buffers: coherent; per-job maps every job, pinned maps each object once and unmaps it when freed", () => {
  const spec = SPEC();
  const r = runPipeline({ ...spec, trace: false, recordCallStacks: true });
  assert.equal(r.verdict, "coherent", r.violations.map((v) => v.message).join("\n"));
  assert.equal(r.sinks.length, 2);
  assert.ok(r.sinks.every((s) => s.ok));
  const frames = r.frames.length;
  const pool = (name: string): number => spec.graph!.pools[name]!.count;
  // The converting GPU maps its output object for each job (DMA_FROM_DEVICE: a clean).
  assert.equal(calls(r, "arch_sync_dma_for_device", "simgpu.#mapJob"), frames);
  // The compositor pins: drm_gem_shmem_get_pages_sgt once per object it wrote...
  const pinned = calls(r, "arch_sync_dma_for_device", "drm-gem-shmem.drmGemShmemGetPagesSgt");
  assert.equal(pinned, Math.min(frames, pool("composed")));
  // ...and drm_gem_shmem_free unmaps each at teardown, when its last reference goes.
  assert.equal(calls(r, "arch_sync_dma_for_cpu", "drm-gem-shmem.shmemFree"), pinned);
  assert.equal(r.teardown!.violations, 0);
});

test("gpu-own-buffers: a read-back that does not wait for the GPU's job is named (DMA_BUF_IOCTL_SYNC(START) left out)", () => {
  const spec = SPEC();
  const g = spec.graph!;
  const r = runPipeline({
    ...spec,
    trace: false,
    graph: {
      ...g,
      stages: g.stages.map((s) =>
        s.name === "screenshot" ? { ...s, fault: "omit-sync-start" as const } : s,
      ),
    },
  });
  assert.equal(r.verdict, "incoherent");
  assert.ok(r.violations.some((v) => v.kind === "cpu-access-before-fence"));
});

test("boMapping is refused where there is no buffer object of a GPU's own to map", () => {
  const g = SPEC().graph!;
  const onDumb: GraphSpec = {
    ...g,
    devices: { ...g.devices, gpu: { kind: "gpu", boMapping: "pinned" } },
    pools: { ...g.pools, rendered: { source: "gem-dumb", count: 3 } },
  };
  const a = graphIssues(onDumb);
  assert.ok(
    a.some((i) => i.field === "graph.devices.gpu.boMapping" && /no gpu-bo pool/.test(i.problem)),
    JSON.stringify(a),
  );
  const onCamera: GraphSpec = {
    ...g,
    devices: { ...g.devices, cam: { kind: "camera", boMapping: "per-job" } },
  };
  const b = graphIssues(onCamera);
  assert.ok(
    b.some((i) => i.field === "graph.devices.cam.boMapping" && /only a gpu/.test(i.problem)),
    JSON.stringify(b),
  );
  assert.deepEqual(graphIssues(g), []);
});

test("a scenario's device options reach the graph (boMapping, and bidirectional, which was dropped)", () => {
  const spec = scenarioToSpec(
    parseScenario({
      name: "options",
      graph: {
        devices: {
          cam: { kind: "camera", bidirectional: false },
          gpu: { kind: "gpu", boMapping: "pinned" },
          lcd: { kind: "display", iommu: true },
        },
        pools: { f: { source: "v4l2-mmap", count: 2 }, o: { source: "gpu-bo", count: 2 } },
        stages: [
          { name: "capture", device: "cam", pool: "f" },
          { name: "draw", device: "gpu", inputs: ["capture"], pool: "o" },
          { name: "show", device: "lcd", inputs: ["draw"] },
        ],
      },
    }),
  );
  assert.equal(spec.graph?.devices["cam"]?.bidirectional, false);
  assert.equal(spec.graph?.devices["gpu"]?.boMapping, "pinned");
});
