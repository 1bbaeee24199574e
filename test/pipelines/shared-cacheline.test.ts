/**
 * A cache line shared between a DMA buffer and other data, in a pipeline: the program
 * keeps a frame-info record right before each USERPTR frame (the named fault
 * `shared-cacheline`) and updates it at every QBUF, while the camera owns the buffer.
 * On a non-coherent machine the record's dirty line, holding the frame's old bytes, is
 * written back over what the camera wrote (the clean before the invalidate at DQBUF):
 * wrong bytes in exactly that line, and violations naming the shared line and the fix.
 * Kept apart, the same records do no harm; where the fault cannot take effect (a
 * snooping device, videobuf2-dma-contig, no USERPTR memory) the run is refused.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { test } from "node:test";
import fc from "fast-check";
import { examplesDir } from "../../src/cli/list.js";
import { vividTestPattern } from "../../src/drivers/media/test-drivers/vivid/vivid-tpg.js";
import { DMA_BUF_SYNC_END, DMA_BUF_SYNC_READ } from "../../src/include/uapi/dma-buf.js";
import { MAP_SHARED, PROT_READ } from "../../src/include/uapi/fcntl.js";
import { V4L2_PIX_FMT_XBGR32 } from "../../src/include/uapi/videodev2.js";
import { runPipeline } from "../../src/pipelines/run.js";
import type { GraphSpec, PipelineSpec } from "../../src/pipelines/types.js";
import { specConflicts } from "../../src/pipelines/validity.js";
import { loadScenarioFile, scenarioToSpec } from "../../src/scenarios/scenario.js";
import { dmaBufSync } from "../../src/uapi/lib.js";

const W = 128;
const H = 64;

/** camera (USERPTR, a record of `header` bytes per buffer) -> CPU inspects -> display. */
function spec(
  opts: {
    profile?: string;
    fault?: boolean;
    header?: number;
    cam?: Partial<GraphSpec["devices"][string]>;
    reader?: "display" | "gpu";
  } = {},
): PipelineSpec {
  const reader = opts.reader ?? "display";
  return {
    profile: opts.profile ?? "arm64",
    // The Raspberry Pi kernel's direction rule (and RISC-V's, patched the same way): Linux
    // 6.12's udmabuf maps at the first SYNC(START) rather than syncing, which a
    // mainline arm64 or RISC-V map does not invalidate (docs/hazards.md).
    ...(opts.profile === undefined || opts.profile === "arm64" || opts.profile === "riscv64"
      ? { overrides: { forDeviceIgnoresDirection: false } }
      : {}),
    width: W,
    height: H,
    frames: 3,
    strategy: "streaming",
    graph: {
      devices: {
        cam: { kind: "camera", ...opts.cam },
        panel: { kind: "display" },
        ...(reader === "gpu" ? { gpu: { kind: "gpu" as const } } : {}),
      },
      pools: {
        frames: {
          source: "v4l2-userptr",
          count: 2,
          ...(opts.header !== undefined ? { header: opts.header } : {}),
        },
        ...(reader === "gpu" ? { out: { source: "gem-dumb" as const, count: 2 } } : {}),
      },
      stages: [
        {
          name: "capture",
          device: "cam",
          pool: "frames",
          inputs: [],
          ...(opts.fault === true ? { faults: ["shared-cacheline"] } : {}),
        },
        { name: "inspect", inputs: ["capture"], cpu: { read: true, write: false, lines: 16 } },
        ...(reader === "gpu"
          ? [
              { name: "convert", device: "gpu", pool: "out", inputs: ["inspect"] },
              { name: "show", device: "panel", inputs: ["convert"] },
            ]
          : [{ name: "show", device: "panel", inputs: ["inspect"] }]),
      ],
    },
  };
}

/** The first 64 bytes of each captured frame as memory holds them after DQBUF, read correctly bracketed. */
function firstBytes(
  s: PipelineSpec,
  offset: number,
): { r: ReturnType<typeof runPipeline>; seen: Uint8Array[] } {
  const seen: Uint8Array[] = [];
  const r = runPipeline(s, {
    afterCapture: ({ uapi, bufferFd }) => {
      const map = uapi.mmap(4096, PROT_READ, MAP_SHARED, bufferFd, 0);
      dmaBufSync(uapi, bufferFd, DMA_BUF_SYNC_READ);
      seen.push(map.read(offset, 64));
      dmaBufSync(uapi, bufferFd, DMA_BUF_SYNC_END | DMA_BUF_SYNC_READ);
      uapi.munmap(map);
    },
  });
  return { r, seen };
}

const pattern = vividTestPattern(
  { width: W, height: H, bytesperline: W * 4, pixelformat: V4L2_PIX_FMT_XBGR32 },
  0,
);

test("arm64, a 40-byte record before each frame: the shared line's old bytes land over the camera's, every frame", () => {
  const { r, seen } = firstBytes(spec({ fault: true, header: 40 }), 40);
  assert.equal(r.verdict, "incoherent");
  assert.ok(
    r.frames.every((f) => !f.ok),
    "every frame the display shows is wrong",
  );
  assert.equal(seen.length, 3);
  for (const b of seen) {
    // The frame's bytes in the record's line (64 - 40 = 24) are not what the camera
    // wrote; from the next line on they are.
    assert.notDeepEqual(b.subarray(0, 24), pattern.subarray(0, 24));
    assert.deepEqual(b.subarray(24, 64), pattern.subarray(24, 64));
  }
});

test("the checker names the shared line and the fix, for every violation in it", () => {
  const r = runPipeline(spec({ fault: true }));
  const kinds = new Set(r.violations.map((v) => v.kind));
  assert.ok(kinds.has("dirty-line-under-dma"), [...kinds].join());
  assert.ok(kinds.has("lost-device-write"), [...kinds].join());
  const inLine = r.violations.filter(
    (v) => v.kind === "dirty-line-under-dma" || v.kind === "lost-device-write",
  );
  // Every one of them, not only those before a later region (the udmabuf the display
  // and the CPU import) covered the same line.
  for (const v of inLine) {
    assert.match(v.region ?? "", /^cache line shared by dma_map_sg\(cam, /);
    assert.match(v.hint, /starts mid cache line/);
    assert.match(v.hint, /ARCH_DMA_MINALIGN, dma_get_cache_alignment\(\)/);
    assert.match(v.hint, /allocate them separately/);
  }
  // The shared line's hint stands alone: no other region's note (the udmabuf's
  // first-START quirk) points at a different fix for the CPU's store to its record.
  const shared = r.violations.filter((v) => /^cache line shared by/.test(v.region ?? ""));
  assert.ok(shared.some((v) => v.kind === "cpu-access-device-owned"));
  for (const v of shared) assert.doesNotMatch(v.hint, /udmabuf, not a missing call/);
});

test("the same records allocated separately: coherent, and the frames' bytes are the camera's", () => {
  const { r, seen } = firstBytes(spec({ header: 40 }), 0);
  assert.equal(r.verdict, "coherent", r.violations[0]?.message);
  for (const b of seen) assert.deepEqual(b, pattern.subarray(0, 64));
});

test("the other direction: where the record's line is invalidated without a clean, the program's update is lost", () => {
  // arm64: the record shares its only line with the frame, and DQBUF's partial-line
  // clean writes it back: the record survives (what the program stored at QBUF, never 0).
  const a = firstBytes(spec({ fault: true, header: 40 }), 0);
  for (const b of a.seen) assert.notDeepEqual(b.subarray(0, 40), new Uint8Array(40));
  // cortex-a9 (32-byte lines): the record's first line lies wholly in the udmabuf's pages
  // and outside videobuf2's mapping; the START's invalidate drops it dirty.
  const c = firstBytes(spec({ profile: "cortex-a9", fault: true, header: 40 }), 0);
  for (const b of c.seen) assert.deepEqual(b.subarray(0, 32), new Uint8Array(32));
  assert.ok(
    c.r.violations.some((v) => v.kind === "api-misuse" && /discarded 1 dirty line/.test(v.message)),
  );
});

test("cortex-a9 (32-byte lines): the fault takes effect too; a record of whole lines is refused", () => {
  const r = runPipeline(spec({ profile: "cortex-a9", fault: true }));
  assert.equal(r.verdict, "incoherent");
  assert.ok(r.violations.some((v) => v.kind === "lost-device-write"));
  // Both directions: the record's first line (wholly the record's, inside the udmabuf's
  // pages) is invalidated by DMA_BUF_IOCTL_SYNC(START) with the program's update in it.
  assert.ok(
    r.violations.some((v) => v.kind === "api-misuse" && /discarded 1 dirty line/.test(v.message)),
    r.violations.map((v) => v.message).join("\n"),
  );
  assert.equal(runPipeline(spec({ profile: "cortex-a9", header: 40 })).verdict, "coherent");
  assert.throws(
    () => runPipeline(spec({ profile: "cortex-a9", fault: true, header: 64 })),
    /whole number of 32-byte cache lines on cortex-a9/,
  );
});

test("x86-64: a snooping camera cannot be hurt, so the fault is refused with the reason; a non-snooping one is", () => {
  assert.throws(
    () => runPipeline(spec({ profile: "x86-64", fault: true })),
    /shared-cacheline cannot take effect: cam snoops the CPU caches \(coherent on x86-64\)/,
  );
  const r = runPipeline(spec({ profile: "x86-64", fault: true, cam: { coherent: false } }));
  assert.equal(r.verdict, "incoherent");
  assert.ok(r.frames.some((f) => !f.ok));
});

test("where the fault cannot take effect, the run is refused with the reason", () => {
  // videobuf2-dma-contig checks the alignment itself (vb2_dc_get_userptr: EINVAL).
  assert.throws(
    () => runPipeline(spec({ fault: true, cam: { iommu: true } })),
    /vb2_dc_get_userptr refuses user memory not aligned/,
  );
  // A pipeline with no USERPTR memory.
  const mmap: PipelineSpec = {
    ...spec({ fault: true }),
    graph: {
      ...spec({ fault: true }).graph!,
      pools: { frames: { source: "v4l2-mmap", count: 2 } },
    },
  };
  assert.throws(() => runPipeline(mmap), /not a camera capturing into a v4l2-userptr pool/);
  assert.throws(
    () => runPipeline({ pipeline: "camera-display", faults: ["shared-cacheline"] }),
    /lays out its own USERPTR memory, and this pipeline has none/,
  );
  // A reader that cannot take a frame at an offset.
  assert.throws(
    () => runPipeline(spec({ fault: true, reader: "gpu" })),
    /stage "convert" \(a gpu\) cannot read a frame at an offset/,
  );
  // A structure only the program's own memory has.
  const heap = spec();
  const conflicts = specConflicts({
    ...heap,
    graph: { ...heap.graph!, pools: { frames: { source: "udmabuf", count: 2, header: 40 } } },
  });
  assert.ok(conflicts.some((c) => c.field === "graph.pools.frames.header"));
});

test("the bundled pair: circle-135-shared-cacheline is incoherent on every frame, its -fixed twin coherent", () => {
  const dir = examplesDir(process.cwd());
  const small = (f: string): PipelineSpec => ({
    ...scenarioToSpec(loadScenarioFile(join(dir, f))),
    width: W,
    height: H,
    frames: 3,
  });
  const bad = runPipeline(small("circle-135-shared-cacheline.yaml"));
  assert.ok(bad.frames.every((f) => !f.ok));
  assert.ok(bad.violations.some((v) => /starts mid cache line/.test(v.hint)));
  assert.equal(runPipeline(small("circle-135-shared-cacheline-fixed.yaml")).verdict, "coherent");
});

test("property: any record size and line size: beside the frame it does harm (or is refused as whole lines), apart it never does", () => {
  fc.assert(
    fc.property(
      fc.integer({ min: 1, max: 200 }),
      fc.constantFrom("arm64", "cortex-a9", "riscv64"),
      (header, profile) => {
        const line = profile === "cortex-a9" ? 32 : 64;
        const apart = runPipeline(spec({ profile, header }));
        assert.equal(apart.verdict, "coherent", apart.violations[0]?.message);
        if (header % line === 0) {
          assert.throws(() => runPipeline(spec({ profile, header, fault: true })), /whole number/);
          return;
        }
        const r = runPipeline(spec({ profile, header, fault: true }));
        assert.ok(
          r.frames.every((f) => !f.ok),
          `${profile}, header ${header}: every frame wrong`,
        );
        assert.ok(
          r.violations.some(
            (v) => v.kind === "lost-device-write" && /starts mid cache line/.test(v.hint),
          ),
          `${profile}, header ${header}: ${r.violations.map((v) => v.kind).join(", ")}`,
        );
      },
    ),
    { numRuns: 12, seed: 14 },
  );
});

test("usable on a stage of a bundled graph: userptr-capture's dma-sg camera; on the whole pipeline refused for its dma-contig one", () => {
  const base = scenarioToSpec(
    loadScenarioFile(join(examplesDir(process.cwd()), "userptr-capture.yaml")),
  );
  const g = base.graph!;
  const small = { ...base, width: W, height: H, frames: 3 };
  const r = runPipeline({
    ...small,
    graph: {
      ...g,
      stages: g.stages.map((s) =>
        s.name === "capture" ? { ...s, faults: ["shared-cacheline"] } : s,
      ),
    },
  });
  assert.equal(r.verdict, "incoherent");
  assert.ok(
    r.violations.some((v) => v.kind === "lost-device-write" && /ARCH_DMA_MINALIGN/.test(v.hint)),
  );
  assert.throws(
    () => runPipeline({ ...small, faults: ["shared-cacheline"] }),
    /cam-iommu uses videobuf2-dma-contig/,
  );
});
