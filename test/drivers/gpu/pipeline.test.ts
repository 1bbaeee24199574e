/**
 * Buffers crossing devices: a heap buffer inverted by the GPU into a display buffer and
 * scanned out; implicit sync through a vgem fence holding the GPU job and the flip; and
 * the coherency symptom of a CPU write without DMA_BUF_SYNC_END.
 */

import assert from "node:assert/strict";
import { test } from "node:test";
import { simgpuTransform } from "../../../src/drivers/gpu/drm/simgpu/simgpu.js";
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
import { SIMGPU_OP_INVERT, SIMGPU_SUBMIT_OUT_FENCE } from "../../../src/include/uapi/simgpu-drm.js";
import { VGEM_FENCE_WRITE } from "../../../src/include/uapi/vgem-drm.js";
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
  vgemFenceAttach,
  vgemFenceSignal,
} from "../../../src/uapi/drm.js";
import { dmaBufSync, dmaHeapAlloc, syncFileStatus } from "../../../src/uapi/lib.js";
import { boot, errno, pattern } from "./helpers.js";

const W = 64;
const H = 48;
const SIZE = W * H * 4;

/** A display with dumb buffer A on screen, buffer B ready, and a CRC reader. */
function scene(profile = "arm64") {
  const b = boot(profile);
  const { u } = b;
  const card = u.open("/dev/dri/card2", O_RDWR);
  const res = drmModeGetResources(u, card);
  const conn = drmModeGetConnector(u, card, res.connectors[0]!);
  const dumb = () => {
    const d = drmModeCreateDumb(u, card, { width: W, height: H, bpp: 32 });
    const fb = drmModeAddFB2(u, card, {
      width: W,
      height: H,
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
  const show = (fb: number) =>
    drmModeSetCrtc(u, card, {
      crtcId,
      fbId: fb,
      x: 0,
      y: 0,
      connectors: [conn.connectorId],
      mode: conn.modes[0]!,
    });
  return {
    ...b,
    card,
    crtcId,
    A,
    B,
    show,
    fbOf: (handle: number) =>
      drmModeAddFB2(u, card, {
        width: W,
        height: H,
        pixelFormat: DRM_FORMAT_XRGB8888,
        handles: [handle],
        pitches: [W * 4],
        offsets: [0],
      }),
  };
}

/** A system-heap buffer the CPU filled correctly (SYNC START/END around the writes). */
function heapFrame(u: ReturnType<typeof boot>["u"], seed: number) {
  const heap = u.open("/dev/dma_heap/system", O_RDWR);
  const fd = dmaHeapAlloc(u, heap, SIZE);
  const map = u.mmap(SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  const frame = pattern(W, H, W * 4, seed);
  dmaBufSync(u, fd, DMA_BUF_SYNC_START | DMA_BUF_SYNC_WRITE);
  map.write(0, frame);
  dmaBufSync(u, fd, DMA_BUF_SYNC_END | DMA_BUF_SYNC_WRITE);
  return { fd, frame };
}

const invertParams = { width: W, height: H, srcPitch: W * 4, dstPitch: W * 4 };

test("heap buffer -> simgpu INVERT -> simdisplay dumb buffer: the scanout CRC is crc32 of the expected frame", () => {
  const { u, k, card, crtcId, A, B, show, disp } = scene();
  show(A.fb);
  const crcFd = drmCrcOpen(u, disp.minor, 0, "auto");
  const src = heapFrame(u, 3);
  const gpu = u.open("/dev/dri/renderD129", O_RDWR);
  const srcH = drmPrimeFdToHandle(u, gpu, src.fd);
  const bFd = drmPrimeHandleToFd(u, card, B.handle, DRM_CLOEXEC | DRM_RDWR);
  const dstH = drmPrimeFdToHandle(u, gpu, bFd);
  const job = simgpuSubmit(u, gpu, {
    op: SIMGPU_OP_INVERT,
    srcHandle: srcH,
    dstHandle: dstH,
    ...invertParams,
    flags: SIMGPU_SUBMIT_OUT_FENCE,
  });
  assert.equal(job.seqno, 1);
  assert.equal(syncFileStatus(u, job.outFenceFd), 0, "the job has not run yet");
  // The flip waits for the GPU's write fence on B (prepare_fb), then shows B.
  drmModePageFlip(u, card, crtcId, B.fb, DRM_MODE_PAGE_FLIP_EVENT, 7n);
  const [ev] = drmReadEvents(u, card);
  assert.equal(syncFileStatus(u, job.outFenceFd), 1);
  const want = crc32(simgpuTransform(SIMGPU_OP_INVERT, src.frame, invertParams));
  let e = drmCrcRead(u, crcFd)[0]!;
  while (e.frame < ev!.sequence) e = drmCrcRead(u, crcFd)[0]!;
  assert.equal(e.crcs[0], want);
  assert.deepEqual(
    k.machine.violations.list.map((v) => v.message),
    [],
  );
});

test("implicit sync: a vgem write fence holds the GPU job and the flip; the CRC shows the old frame until it signals", () => {
  const { u, k, card, crtcId, A, B, show, disp, gpu: simgpu } = scene();
  show(A.fb);
  const crcFd = drmCrcOpen(u, disp.minor, 0, "auto");
  const aCrc = drmCrcRead(u, crcFd)[0]!.crcs[0]!;
  assert.equal(aCrc, crc32(new Uint8Array(SIZE)), "A is a zeroed dumb buffer");
  const src = heapFrame(u, 5);
  const gpu = u.open("/dev/dri/renderD129", O_RDWR);
  const vgem = u.open("/dev/dri/renderD128", O_RDWR);
  const bFd = drmPrimeHandleToFd(u, card, B.handle, DRM_CLOEXEC | DRM_RDWR);
  // Someone (vgem standing in for a renderer) is still writing B.
  const vh = drmPrimeFdToHandle(u, vgem, bFd);
  const fence = vgemFenceAttach(u, vgem, vh, VGEM_FENCE_WRITE);
  const srcH = drmPrimeFdToHandle(u, gpu, src.fd);
  const dstH = drmPrimeFdToHandle(u, gpu, bFd);
  simgpuSubmit(u, gpu, { op: SIMGPU_OP_INVERT, srcHandle: srcH, dstHandle: dstH, ...invertParams });
  drmModePageFlip(u, card, crtcId, B.fb, DRM_MODE_PAGE_FLIP_EVENT, 1n);
  for (let i = 0; i < 5; i++)
    assert.equal(drmCrcRead(u, crcFd)[0]!.crcs[0], aCrc, "still the old frame");
  assert.equal(simgpu.pendingJobs, 1, "the GPU job waits for the vgem fence");
  assert.equal(disp.flipPending, true);
  vgemFenceSignal(u, vgem, fence);
  const [ev] = drmReadEvents(u, card);
  assert.equal(simgpu.pendingJobs, 0);
  let e = drmCrcRead(u, crcFd)[0]!;
  while (e.frame < ev!.sequence) e = drmCrcRead(u, crcFd)[0]!;
  assert.equal(e.crcs[0], crc32(simgpuTransform(SIMGPU_OP_INVERT, src.frame, invertParams)));
  assert.equal(k.machine.violations.count, 0);
  // A second job into B now has to wait for nobody.
  assert.throws(
    () => simgpuSubmit(u, gpu, { op: 9, srcHandle: srcH, dstHandle: dstH, ...invertParams }),
    errno("EINVAL"),
  );
  assert.throws(
    () =>
      simgpuSubmit(u, gpu, {
        op: SIMGPU_OP_INVERT,
        srcHandle: srcH,
        dstHandle: 99,
        ...invertParams,
      }),
    errno("ENOENT"),
  );
  assert.throws(
    () =>
      simgpuSubmit(u, gpu, {
        op: SIMGPU_OP_INVERT,
        srcHandle: srcH,
        dstHandle: dstH,
        ...invertParams,
        dstPitch: 8,
      }),
    errno("EINVAL"),
  );
  assert.throws(
    () =>
      simgpuSubmit(u, gpu, {
        op: SIMGPU_OP_INVERT,
        srcHandle: srcH,
        dstHandle: dstH,
        ...invertParams,
        flags: 1,
        inFenceFd: bFd,
      }),
    errno("EINVAL"),
    "a dma-buf is not a sync_file",
  );
});

/** CPU draws into a CMA-heap buffer the display has imported, with or without SYNC END. */
function cpuToDisplay(profile: string, sync: boolean) {
  const { u, k, show, disp, fbOf, card } = scene(profile);
  const cma = u.open("/dev/dma_heap/cma", O_RDWR);
  const fd = dmaHeapAlloc(u, cma, SIZE);
  const map = u.mmap(SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  // The display imports (and maps) it first, as a compositor sets up its swapchain.
  const fb = fbOf(drmPrimeFdToHandle(u, card, fd));
  const frame = pattern(W, H, W * 4, 9);
  if (sync) dmaBufSync(u, fd, DMA_BUF_SYNC_START | DMA_BUF_SYNC_WRITE);
  map.write(0, frame);
  if (sync) dmaBufSync(u, fd, DMA_BUF_SYNC_END | DMA_BUF_SYNC_WRITE);
  show(fb);
  const crcFd = drmCrcOpen(u, disp.minor, 0, "auto");
  const crc = drmCrcRead(u, crcFd)[0]!.crcs[0]!;
  return { ok: crc === crc32(frame), violations: k.machine.violations.list };
}

test("coherency: a cached CPU write without DMA_BUF_SYNC_END shows a wrong CRC on arm64, and the checker names the call", () => {
  const bad = cpuToDisplay("arm64", false);
  assert.equal(bad.ok, false, "the display read memory the CPU cache had not written back");
  const stale = bad.violations.filter((v) => v.kind === "stale-device-read");
  assert.ok(stale.length > 0);
  assert.equal(stale[0]!.agent, "simdisplay");
  assert.match(stale[0]!.hint, /DMA_BUF_SYNC_END/);
  const good = cpuToDisplay("arm64", true);
  assert.equal(good.ok, true);
  assert.deepEqual(
    good.violations.map((v) => v.kind),
    [],
  );
  const x86 = cpuToDisplay("x86-64", false);
  assert.equal(x86.ok, true, "x86-64's devices snoop the cache");
  assert.equal(x86.violations.filter((v) => v.kind === "stale-device-read").length, 0);
});
