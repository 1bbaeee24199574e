/**
 * A GPU job and a scanout reading their rows where they lie in DRAM
 * (DmaDevice.readSegmentsInPlace), the scanout knowing which rows of the GPU's result
 * equal the row above (DmaDevice.knownRows), against the same run with the copying
 * read forced and nothing known:
 * the same CRCs, the same violations, the same DMA counters, and for a correctly synced
 * source the CRC of the pure transform. Frames mix rows equal to the one above (which
 * the job converts once) with distinct ones; devices are non-coherent (in place),
 * non-coherent behind an IOMMU and coherent (both copy); the source is written with
 * and without DMA_BUF_SYNC_END (a stale read must be the same stale read either way).
 */

import assert from "node:assert/strict";
import { test } from "node:test";
import fc from "fast-check";
import { simdisplayProbe } from "../../../src/drivers/gpu/drm/simdisplay/simdisplay.js";
import { simgpuProbe, simgpuTransform } from "../../../src/drivers/gpu/drm/simgpu/simgpu.js";
import {
  DMA_BUF_SYNC_END,
  DMA_BUF_SYNC_START,
  DMA_BUF_SYNC_WRITE,
} from "../../../src/include/uapi/dma-buf.js";
import { DRM_CLOEXEC, DRM_RDWR } from "../../../src/include/uapi/drm.js";
import {
  DRM_FORMAT_XRGB8888,
  DRM_MODE_PAGE_FLIP_EVENT,
} from "../../../src/include/uapi/drm-mode.js";
import { MAP_SHARED, O_RDWR, PROT_READ, PROT_WRITE } from "../../../src/include/uapi/fcntl.js";
import {
  SIMGPU_OP_COPY,
  SIMGPU_OP_INVERT,
  SIMGPU_OP_YUYV_TO_XRGB8888,
  SIMGPU_SUBMIT_OUT_FENCE,
} from "../../../src/include/uapi/simgpu-drm.js";
import { Kernel } from "../../../src/kernel/kernel.js";
import { crc32 } from "../../../src/lib/crc32.js";
import {
  drmCrcOpen,
  drmCrcRead,
  drmModeAddFB2,
  drmModeCreateDumb,
  drmModeGetConnector,
  drmModeGetResources,
  drmModePageFlip,
  drmModeSetCrtc,
  drmPrimeFdToHandle,
  drmPrimeHandleToFd,
  drmReadEvents,
  simgpuSubmit,
} from "../../../src/uapi/drm.js";
import { dmaBufSync, dmaHeapAlloc } from "../../../src/uapi/lib.js";
import { SimUapi } from "../../../src/uapi/sim.js";

interface Case {
  readonly op: number;
  readonly w: number;
  readonly h: number;
  /** Per row: new bytes, the row above, or the row above with one byte changed. */
  readonly kinds: readonly ("new" | "repeat" | "near")[];
  readonly seed: number;
  readonly device: "non-coherent" | "iommu" | "coherent";
  readonly synced: boolean;
}

/** The source frame: packed rows, each new one pseudo-random, the others copies of the row above. */
function source(c: Case): Uint8Array {
  const row = c.w * (c.op === SIMGPU_OP_YUYV_TO_XRGB8888 ? 2 : 4);
  const out = new Uint8Array(row * c.h);
  let x = c.seed | 1;
  const next = (): number => {
    x = (x * 1103515245 + 12345) >>> 0;
    return x >>> 24;
  };
  for (let y = 0; y < c.h; y++) {
    const k = c.kinds[y]!;
    if (y > 0 && k !== "new") {
      out.copyWithin(y * row, (y - 1) * row, y * row);
      if (k === "near") out[y * row + ((next() * 256 + next()) % row)] ^= 0x40;
    } else for (let i = 0; i < row; i++) out[y * row + i] = next();
  }
  return out;
}

interface Outcome {
  readonly crc: number;
  readonly violations: readonly string[];
  readonly counters: readonly number[];
}

/** The job and one scanout of its result, with the devices reading in place or copying. */
function run(c: Case, src: Uint8Array, inPlace: boolean): Outcome {
  const k = new Kernel({ profile: "arm64" });
  const device =
    c.device === "coherent"
      ? { coherent: true }
      : c.device === "iommu"
        ? { coherent: false, iommu: true }
        : { coherent: false, iommu: false };
  const gpu = simgpuProbe(k, { device });
  const disp = simdisplayProbe(k, { width: c.w, height: c.h, device });
  // Copying, and without DRAM's row notes (the GPU's result tells the display its rows).
  if (!inPlace)
    for (const d of [gpu.dev, disp.dev]) {
      d.readSegmentsInPlace = () => false;
      d.knownRows = () => undefined;
    }
  const u = new SimUapi(k, "app");
  const card = u.open(disp.cardPath, O_RDWR);
  const res = drmModeGetResources(u, card);
  const conn = drmModeGetConnector(u, card, res.connectors[0]!);
  const dumb = () => {
    const d = drmModeCreateDumb(u, card, { width: c.w, height: c.h, bpp: 32 });
    const fb = drmModeAddFB2(u, card, {
      width: c.w,
      height: c.h,
      pixelFormat: DRM_FORMAT_XRGB8888,
      handles: [d.handle],
      pitches: [d.pitch],
      offsets: [0],
    });
    return { ...d, fb };
  };
  const A = dumb();
  const B = dumb();
  const crtcId = res.crtcs[0]!;
  drmModeSetCrtc(u, card, {
    crtcId,
    fbId: A.fb,
    x: 0,
    y: 0,
    connectors: [conn.connectorId],
    mode: conn.modes[0]!,
  });
  const crcFd = drmCrcOpen(u, disp.minor, 0, "auto");
  const heap = u.open("/dev/dma_heap/system", O_RDWR);
  const fd = dmaHeapAlloc(u, heap, src.length);
  const map = u.mmap(src.length, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  dmaBufSync(u, fd, DMA_BUF_SYNC_START | DMA_BUF_SYNC_WRITE);
  map.write(0, src);
  if (c.synced) dmaBufSync(u, fd, DMA_BUF_SYNC_END | DMA_BUF_SYNC_WRITE);
  const gfd = u.open(gpu.renderPath, O_RDWR);
  const srcH = drmPrimeFdToHandle(u, gfd, fd);
  const dstH = drmPrimeFdToHandle(
    u,
    gfd,
    drmPrimeHandleToFd(u, card, B.handle, DRM_CLOEXEC | DRM_RDWR),
  );
  const srcCpp = c.op === SIMGPU_OP_YUYV_TO_XRGB8888 ? 2 : 4;
  simgpuSubmit(u, gfd, {
    op: c.op,
    srcHandle: srcH,
    dstHandle: dstH,
    width: c.w,
    height: c.h,
    srcPitch: c.w * srcCpp,
    dstPitch: B.pitch,
    flags: SIMGPU_SUBMIT_OUT_FENCE,
  });
  drmModePageFlip(u, card, crtcId, B.fb, DRM_MODE_PAGE_FLIP_EVENT, 1n);
  const [ev] = drmReadEvents(u, card);
  let e = drmCrcRead(u, crcFd)[0]!;
  while (e.frame < ev!.sequence) e = drmCrcRead(u, crcFd)[0]!;
  return {
    crc: e.crcs[0]!,
    violations: k.machine.violations.list.map(
      (v) => `${v.kind} ${v.agent} ${v.phys} ${v.len} ${v.message}`,
    ),
    counters: [gpu.dev, disp.dev].flatMap((d) => [
      d.bytesRead,
      d.bytesWritten,
      d.bytesReread,
      d.faults,
    ]),
  };
}

test("reading in place: the same CRCs, violations and counters as copying, and the pure transform's CRC", () => {
  fc.assert(
    fc.property(
      fc
        .record({
          op: fc.constantFrom(SIMGPU_OP_COPY, SIMGPU_OP_INVERT, SIMGPU_OP_YUYV_TO_XRGB8888),
          w: fc.integer({ min: 1, max: 40 }).map((n) => n * 2),
          h: fc.integer({ min: 1, max: 24 }),
          seed: fc.integer({ min: 0, max: 0xffff }),
          device: fc.constantFrom("non-coherent" as const, "iommu" as const, "coherent" as const),
          synced: fc.boolean(),
          kinds: fc.array(fc.constantFrom("new" as const, "repeat" as const, "near" as const), {
            minLength: 24,
            maxLength: 24,
          }),
        })
        .map((c): Case => c),
      (c) => {
        const src = source(c);
        const fast = run(c, src, true);
        const slow = run(c, src, false);
        assert.deepEqual(fast, slow);
        if (c.synced) {
          const p = { width: c.w, height: c.h, srcPitch: src.length / c.h, dstPitch: c.w * 4 };
          assert.equal(fast.crc, crc32(simgpuTransform(c.op, src, p)));
          assert.deepEqual(fast.violations, []);
        }
      },
    ),
    { numRuns: 40 },
  );
});
