/**
 * The pipeline program's teardown after the last frame (REQBUFS(0), RMFB, GEM_CLOSE,
 * munmap, close): the framework's release paths run under the checker, a correct program
 * stays coherent, the hazards that live there are named, and the teardown's costs stay
 * apart from the run's and the frames'.
 */

import assert from "node:assert/strict";
import { test } from "node:test";
import type { FaultSiteStats } from "../../src/machine/fault-inject.js";
import { runPipeline } from "../../src/pipelines/run.js";
import type { PipelineResult, PipelineSpec } from "../../src/pipelines/types.js";
import { smallBundledSpec } from "./bundled.js";

function run(spec: PipelineSpec): PipelineResult {
  return runPipeline({ ...spec, trace: false, recordCallStacks: true });
}

function site(r: PipelineResult, call: string, via: string): FaultSiteStats | undefined {
  return r.callSites?.find((s) => s.call === call && s.via.some((v) => v.startsWith(via)));
}

/** The bundled bounced capture with its CPU stage's DMA_BUF_IOCTL_SYNC(END) left out. */
function bouncedWithoutEnd(): PipelineSpec {
  const base = smallBundledSpec("swiotlb-bounced-capture.yaml");
  const g = base.graph!;
  return {
    ...base,
    graph: {
      ...g,
      stages: g.stages.map((s) => (s.name === "mask" ? { ...s, fault: "omit-sync-end" } : s)),
    },
  };
}

test("a bounced capture's teardown copies each slot back at unmap, coherently, and its costs stay apart", () => {
  const r = run(smallBundledSpec("swiotlb-bounced-capture.yaml"));
  assert.equal(r.verdict, "coherent", r.violations.map((v) => v.message).join("\n"));
  const td = r.teardown!;
  assert.equal(td.violations, 0);
  // REQBUFS(0): videobuf2 unmaps the DMABUF attachment, the heap unmaps, swiotlb copies back.
  const unmap = site(r, "swiotlb_tbl_unmap_single", "heap-buffer.heapUnmap");
  assert.ok(unmap !== undefined && unmap.calls > 0, "swiotlb_tbl_unmap_single ran at teardown");
  assert.ok(unmap.via.some((v) => v.startsWith("videobuf2-core.")));
  // Every bounce copy is counted once: the unmaps' in the teardown, the rest in the run.
  const calls = (c: string): number =>
    (r.callSites ?? []).filter((s) => s.call === c).reduce((a, s) => a + s.calls, 0);
  assert.equal(td.costs.bounce.ops, 2 * calls("swiotlb_tbl_unmap_single"));
  assert.equal(
    r.costs.bounce.ops,
    2 *
      (calls("swiotlb_tbl_map_single") +
        calls("swiotlb_sync_single_for_cpu") +
        calls("swiotlb_sync_single_for_device")),
  );
  // The frames' own costs hold none of it: the teardown starts after the last frame.
  assert.ok(r.frames.every((f) => f.time <= td.start));
  assert.ok(td.elapsedNs > 0);
});

test("a CPU write after the last hand-over is lost at unmap, and the checker names the copy back", () => {
  const r = run(bouncedWithoutEnd());
  assert.equal(r.verdict, "incoherent");
  const late = r.violations.slice(r.violations.length - r.teardown!.violations);
  const lost = late.filter((v) => v.kind === "lost-cpu-write");
  assert.ok(lost.length > 0, late.map((v) => v.message).join("\n"));
  assert.match(lost[0]!.message, /dma_unmap_\*\(\) copies cam's swiotlb slot .* the CPU wrote/);
  assert.match(lost[0]!.hint, /DMA_BUF_IOCTL_SYNC\(END\)/);
});

test("the copy back at unmap of a bounced DRM import puts the slot over the camera's frame (raspberrypi/linux 5727)", () => {
  const r = run(smallBundledSpec("rpi-5727-bounce-green.yaml"));
  const late = r.violations.slice(r.violations.length - r.teardown!.violations);
  const lost = late.filter((v) => v.kind === "lost-device-write");
  assert.ok(lost.length > 0);
  assert.match(lost[0]!.message, /simdisplay's swiotlb slot .* vivid-cap wrote after the slot/);
  assert.match(lost[0]!.hint, /CMA heap/);
  // The fix allocates where the display reaches: nothing bounced, nothing lost.
  const fixed = run(smallBundledSpec("rpi-5727-bounce-green-fixed.yaml"));
  assert.equal(fixed.verdict, "coherent");
  assert.equal(fixed.teardown!.violations, 0);
});

test("udmabuf release, importers' detach and the heap's unmap run at teardown of correct programs", () => {
  const u = run(smallBundledSpec("userptr-capture.yaml"));
  assert.equal(u.verdict, "coherent", u.violations.map((v) => v.message).join("\n"));
  assert.ok(site(u, "arch_sync_dma_for_cpu", "udmabuf.release") !== undefined);
  const g = run(smallBundledSpec("camera-gpu-display.yaml"));
  assert.equal(g.verdict, "coherent");
  // The GPU's GEM_CLOSE of its import detaches from the camera's heap buffer.
  const heap = site(g, "arch_sync_dma_for_cpu", "heap-buffer.heapUnmap");
  assert.ok(heap?.via.some((v) => v.includes("drmPrimeGemDestroy")));
});

test("a lost DMA_BUF_IOCTL_SYNC(END) after the last frame is found at unmap (fxd0h/libdrmtap 43)", () => {
  const r = run(smallBundledSpec("libdrmtap-43-unbalanced-brackets.yaml"));
  const late = r.violations.slice(r.violations.length - r.teardown!.violations);
  assert.ok(
    late.some((v) => /invalidate for the CPU discarded \d+ dirty line/.test(v.message)),
    late.map((v) => v.message).join("\n"),
  );
});
