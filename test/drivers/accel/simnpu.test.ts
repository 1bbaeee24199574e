/**
 * simnpu, the drivers/accel NPU: /dev/accel/accelN numbering beside the DRM minors,
 * buffer objects with PRIME, jobs that read and write by DMA with implicit and explicit
 * fences, WAIT with a timeout, errnos; coherent, non-coherent, IOMMU and 32-bit-mask
 * instances give the pure function's result, and a missing DMA_BUF_SYNC_END is caught.
 */

import assert from "node:assert/strict";
import { test } from "node:test";
import { simnpuCompute, simnpuProbe } from "../../../src/drivers/accel/simnpu/simnpu.js";
import { simgpuProbe, simgpuTransform } from "../../../src/drivers/gpu/drm/simgpu/simgpu.js";
import { vgemProbe } from "../../../src/drivers/gpu/drm/vgem/vgem.js";
import { KernelError } from "../../../src/errno.js";
import {
  DMA_BUF_SYNC_END,
  DMA_BUF_SYNC_READ,
  DMA_BUF_SYNC_START,
  DMA_BUF_SYNC_WRITE,
} from "../../../src/include/uapi/dma-buf.js";
import { DRM_CLOEXEC, DRM_RDWR } from "../../../src/include/uapi/drm.js";
import { MAP_SHARED, O_RDWR, PROT_READ, PROT_WRITE } from "../../../src/include/uapi/fcntl.js";
import { SIMGPU_OP_INVERT } from "../../../src/include/uapi/simgpu-drm.js";
import {
  SIMNPU_OP_CONV3X3,
  SIMNPU_OP_TILE_SUM,
  SIMNPU_SUBMIT_IN_FENCE,
  SIMNPU_SUBMIT_OUT_FENCE,
} from "../../../src/include/uapi/simnpu-accel.js";
import { VGEM_FENCE_WRITE } from "../../../src/include/uapi/vgem-drm.js";
import { Kernel } from "../../../src/kernel/kernel.js";
import type { DeviceConfig } from "../../../src/machine/device.js";
import {
  simnpuBoCreate,
  simnpuBoMmapOffset,
  simnpuSubmit,
  simnpuWait,
} from "../../../src/uapi/accel.js";
import {
  drmGetVersion,
  drmModeGetResources,
  drmPrimeFdToHandle,
  drmPrimeHandleToFd,
  simgpuSubmit,
  vgemFenceAttach,
  vgemFenceSignal,
} from "../../../src/uapi/drm.js";
import { dmaBufSync, dmaHeapAlloc, syncFileStatus } from "../../../src/uapi/lib.js";
import { SimUapi } from "../../../src/uapi/sim.js";

const W = 64;
const H = 32;
const CPP = 4;
const SIZE = W * H * CPP;
const params = { width: W, height: H, cpp: CPP, inPitch: W * CPP };

function errno(code: string): (e: unknown) => boolean {
  return (e) => e instanceof KernelError && e.code === code;
}

function pattern(seed: number): Uint8Array {
  return new Uint8Array(SIZE).map((_, i) => ((i * 31) ^ (i >> 7) ^ seed) & 0xff);
}

function boot(profile = "arm64", device: Partial<Omit<DeviceConfig, "name">> = {}) {
  const k = new Kernel({ profile });
  const vgem = vgemProbe(k);
  const gpu = simgpuProbe(k);
  const npu = simnpuProbe(k, { device });
  const u = new SimUapi(k);
  const fd = u.open(npu.path, O_RDWR);
  return { k, vgem, gpu, npu, u, fd };
}

/** A system-heap dma-buf the CPU filled with the right syncs. */
function heapInput(u: SimUapi, data: Uint8Array) {
  const heap = u.open("/dev/dma_heap/system", O_RDWR);
  const fd = dmaHeapAlloc(u, heap, data.length);
  const map = u.mmap(data.length, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  dmaBufSync(u, fd, DMA_BUF_SYNC_START | DMA_BUF_SYNC_WRITE);
  map.write(0, data);
  dmaBufSync(u, fd, DMA_BUF_SYNC_END | DMA_BUF_SYNC_WRITE);
  return { fd, map };
}

/** Reads a BO through its PRIME dma-buf with the CPU-access brackets. */
function readBo(u: SimUapi, fd: number, handle: number, len: number): Uint8Array {
  const buf = drmPrimeHandleToFd(u, fd, handle, DRM_CLOEXEC | DRM_RDWR);
  const m = u.mmap(len, PROT_READ, MAP_SHARED, buf, 0);
  dmaBufSync(u, buf, DMA_BUF_SYNC_START | DMA_BUF_SYNC_READ);
  const got = m.read(0, len);
  dmaBufSync(u, buf, DMA_BUF_SYNC_END | DMA_BUF_SYNC_READ);
  return got;
}

test("accel nodes: /dev/accel/accelN from their own range, no card or render node; KMS ioctls are EOPNOTSUPP", () => {
  const k = new Kernel({ profile: "arm64" });
  const a = simnpuProbe(k);
  simgpuProbe(k);
  const b = simnpuProbe(k, { name: "npu-b", device: { coherent: true } });
  const u = new SimUapi(k);
  assert.deepEqual(u.readdir("/dev/accel"), ["accel0", "accel1"]);
  assert.deepEqual(u.readdir("/dev/dri"), ["card0", "renderD128"], "only the GPU has DRM nodes");
  assert.deepEqual(
    [a.path, b.path, a.dev.name, b.dev.name],
    ["/dev/accel/accel0", "/dev/accel/accel1", "simnpu", "npu-b"],
  );
  assert.equal(b.drm.debugfsRoot, "/sys/kernel/debug/accel/1");
  const fd = u.open(b.path, O_RDWR);
  assert.equal(drmGetVersion(u, fd).name, "simnpu");
  assert.throws(() => drmModeGetResources(u, fd), errno("EOPNOTSUPP"));
  assert.notEqual(a.sched.fenceContext, b.sched.fenceContext);
});

for (const [label, profile, device] of [
  ["non-coherent", "arm64", {}],
  ["non-coherent behind an IOMMU", "arm64", { iommu: true }],
  ["non-coherent with a 32-bit mask", "arm64", { dmaBits: 32 }],
  ["coherent", "x86-64", {}],
] as const) {
  test(`${label}: CONV3X3 and TILE_SUM of an imported heap buffer equal simnpuCompute; out-fence, WAIT`, () => {
    const { k, u, fd, npu } = boot(profile, device);
    const data = pattern(3);
    const input = heapInput(u, data);
    const inH = drmPrimeFdToHandle(u, fd, input.fd);
    const conv = simnpuBoCreate(u, fd, SIZE);
    const job = simnpuSubmit(u, fd, {
      op: SIMNPU_OP_CONV3X3,
      inHandle: inH,
      outHandle: conv.handle,
      ...params,
      outPitch: W * CPP,
      flags: SIMNPU_SUBMIT_OUT_FENCE,
    });
    assert.equal(job.seqno, 1);
    assert.equal(syncFileStatus(u, job.outFenceFd), 0, "queued, not run");
    simnpuWait(u, fd, conv.handle, k.machine.clock.now + 1e9);
    assert.equal(syncFileStatus(u, job.outFenceFd), 1);
    assert.deepEqual(
      readBo(u, fd, conv.handle, SIZE),
      simnpuCompute(SIMNPU_OP_CONV3X3, data, params),
    );
    const sums = simnpuBoCreate(u, fd, 4096);
    simnpuSubmit(u, fd, {
      op: SIMNPU_OP_TILE_SUM,
      inHandle: inH,
      outHandle: sums.handle,
      ...params,
      outPitch: 64,
    });
    simnpuWait(u, fd, sums.handle, k.machine.clock.now + 1e9);
    const want = simnpuCompute(SIMNPU_OP_TILE_SUM, data, params);
    assert.equal(want.length, (W / 16) * CPP * 4 * (H / 16));
    const got = readBo(u, fd, sums.handle, 64 * 2);
    assert.deepEqual(got.subarray(0, want.length / 2), want.subarray(0, want.length / 2));
    assert.deepEqual(got.subarray(64, 64 + want.length / 2), want.subarray(want.length / 2));
    assert.equal(npu.jobsCompleted, 2);
    assert.ok(npu.dev.bytesRead >= 2 * SIZE);
    assert.deepEqual(
      k.machine.violations.list.map((v) => v.message),
      [],
    );
  });
}

test("TILE_SUM by hand: a frame of ones sums to 256 per full 16x16 tile, less at the cut edge", () => {
  const p = { width: 20, height: 17, cpp: 1, inPitch: 20 };
  const out = new DataView(
    simnpuCompute(SIMNPU_OP_TILE_SUM, new Uint8Array(20 * 17).fill(1), p).buffer,
  );
  assert.deepEqual(
    [
      out.getUint32(0, true),
      out.getUint32(4, true),
      out.getUint32(8, true),
      out.getUint32(12, true),
    ],
    [256, 4 * 16, 16, 4],
  );
});

test("implicit sync: the NPU job reading the GPU's output waits for the GPU's fence", () => {
  const { k, u, fd, gpu, npu } = boot();
  const data = pattern(5);
  const input = heapInput(u, data);
  const g = u.open(gpu.renderPath, O_RDWR);
  const gin = drmPrimeFdToHandle(u, g, input.fd);
  const mid = simnpuBoCreate(u, fd, SIZE);
  const midFd = drmPrimeHandleToFd(u, fd, mid.handle, DRM_CLOEXEC | DRM_RDWR);
  const gout = drmPrimeFdToHandle(u, g, midFd);
  const vgem = u.open("/dev/dri/renderD128", O_RDWR);
  const hold = vgemFenceAttach(u, vgem, drmPrimeFdToHandle(u, vgem, input.fd), VGEM_FENCE_WRITE);
  simgpuSubmit(u, g, {
    op: SIMGPU_OP_INVERT,
    srcHandle: gin,
    dstHandle: gout,
    width: W,
    height: H,
    srcPitch: W * 4,
    dstPitch: W * 4,
  });
  const out = simnpuBoCreate(u, fd, SIZE);
  simnpuSubmit(u, fd, {
    op: SIMNPU_OP_CONV3X3,
    inHandle: mid.handle,
    outHandle: out.handle,
    ...params,
    outPitch: W * CPP,
  });
  k.machine.clock.runUntil(k.machine.clock.now + 1e6); // well before vgem's 10 s fence timeout
  assert.deepEqual(
    [gpu.pendingJobs, npu.pendingJobs],
    [1, 1],
    "vgem holds the GPU, the GPU holds the NPU",
  );
  assert.throws(
    () => simnpuWait(u, fd, out.handle, k.machine.clock.now + 1000),
    errno("ETIMEDOUT"),
  );
  vgemFenceSignal(u, vgem, hold);
  simnpuWait(u, fd, out.handle, k.machine.clock.now + 1e9);
  const inverted = simgpuTransform(SIMGPU_OP_INVERT, data, {
    width: W,
    height: H,
    srcPitch: W * 4,
    dstPitch: W * 4,
  });
  assert.deepEqual(
    readBo(u, fd, out.handle, SIZE),
    simnpuCompute(SIMNPU_OP_CONV3X3, inverted, params),
  );
  assert.equal(k.machine.violations.count, 0);
});

test("explicit sync: SIMNPU_SUBMIT_IN_FENCE waits for a sync_file", () => {
  const { k, u, fd, gpu, npu } = boot();
  const input = heapInput(u, pattern(6));
  const inH = drmPrimeFdToHandle(u, fd, input.fd);
  const other = heapInput(u, pattern(7));
  const g = u.open(gpu.renderPath, O_RDWR);
  const vgem = u.open("/dev/dri/renderD128", O_RDWR);
  const hold = vgemFenceAttach(u, vgem, drmPrimeFdToHandle(u, vgem, other.fd), VGEM_FENCE_WRITE);
  const gsrc = drmPrimeFdToHandle(u, g, other.fd);
  const gdst = drmPrimeFdToHandle(u, g, heapInput(u, new Uint8Array(SIZE)).fd);
  const gjob = simgpuSubmit(u, g, {
    op: SIMGPU_OP_INVERT,
    srcHandle: gsrc,
    dstHandle: gdst,
    width: W,
    height: H,
    srcPitch: W * 4,
    dstPitch: W * 4,
    flags: 2,
  });
  const out = simnpuBoCreate(u, fd, SIZE);
  simnpuSubmit(u, fd, {
    op: SIMNPU_OP_CONV3X3,
    inHandle: inH,
    outHandle: out.handle,
    ...params,
    outPitch: W * CPP,
    flags: SIMNPU_SUBMIT_IN_FENCE,
    inFenceFd: gjob.outFenceFd,
  });
  k.machine.clock.runUntil(k.machine.clock.now + 1e6); // well before vgem's 10 s fence timeout
  assert.equal(npu.pendingJobs, 1, "the NPU waits for the GPU job's sync_file");
  vgemFenceSignal(u, vgem, hold);
  simnpuWait(u, fd, out.handle, k.machine.clock.now + 1e9);
  assert.equal(npu.jobsCompleted, 1);
});

test("a CPU write to an imported buffer without DMA_BUF_SYNC_END: the NPU reads stale bytes and the checker names it", () => {
  const { k, u, fd } = boot();
  const first = pattern(8);
  const input = heapInput(u, first);
  const inH = drmPrimeFdToHandle(u, fd, input.fd);
  const second = pattern(9);
  dmaBufSync(u, input.fd, DMA_BUF_SYNC_START | DMA_BUF_SYNC_WRITE);
  input.map.write(0, second);
  // DMA_BUF_SYNC_END left out: the new bytes sit in dirty cache lines.
  const out = simnpuBoCreate(u, fd, SIZE);
  simnpuSubmit(u, fd, {
    op: SIMNPU_OP_CONV3X3,
    inHandle: inH,
    outHandle: out.handle,
    ...params,
    outPitch: W * CPP,
  });
  simnpuWait(u, fd, out.handle, k.machine.clock.now + 1e9);
  assert.notDeepEqual(
    readBo(u, fd, out.handle, SIZE),
    simnpuCompute(SIMNPU_OP_CONV3X3, second, params),
  );
  assert.ok(k.machine.violations.ofKind("stale-device-read").length > 0);
});

test("errnos: flags, op, geometry, handles, in-fence, BO flags, WAIT flags", () => {
  const { u, fd } = boot();
  const a = simnpuBoCreate(u, fd, SIZE);
  const b = simnpuBoCreate(u, fd, SIZE);
  assert.ok(simnpuBoMmapOffset(u, fd, a.handle) > 0);
  const job = {
    op: SIMNPU_OP_CONV3X3,
    inHandle: a.handle,
    outHandle: b.handle,
    ...params,
    outPitch: W * CPP,
  };
  assert.throws(() => simnpuSubmit(u, fd, { ...job, flags: 0x10 }), errno("EINVAL"));
  assert.throws(() => simnpuSubmit(u, fd, { ...job, op: 7 }), errno("EINVAL"));
  assert.throws(() => simnpuSubmit(u, fd, { ...job, cpp: 0 }), errno("EINVAL"));
  assert.throws(() => simnpuSubmit(u, fd, { ...job, inPitch: 4 }), errno("EINVAL"));
  assert.throws(() => simnpuSubmit(u, fd, { ...job, outPitch: 4 }), errno("EINVAL"));
  assert.throws(() => simnpuSubmit(u, fd, { ...job, height: H * 2 }), errno("EINVAL"));
  assert.throws(() => simnpuSubmit(u, fd, { ...job, outHandle: a.handle }), errno("EINVAL"));
  assert.throws(() => simnpuSubmit(u, fd, { ...job, inHandle: 99 }), errno("ENOENT"));
  assert.throws(
    () => simnpuSubmit(u, fd, { ...job, flags: SIMNPU_SUBMIT_IN_FENCE, inFenceFd: fd }),
    errno("EINVAL"),
  );
  assert.throws(() => simnpuBoCreate(u, fd, 0), errno("EINVAL"));
  assert.throws(() => simnpuWait(u, fd, 99, 0n), errno("ENOENT"));
  const idle = simnpuSubmit(u, fd, job);
  assert.equal(idle.outFenceFd, -1);
});
