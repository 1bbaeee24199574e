/**
 * Out-fence fds are reserved before the point of no return (get_unused_fd_flags early,
 * fd_install once the work is committed, put_unused_fd on the error paths), in simgpu's
 * and simnpu's SUBMIT and in the sync_file-returning ioctls (SW_SYNC_IOC_CREATE_FENCE,
 * SYNC_IOC_MERGE, DMA_BUF_IOCTL_EXPORT_SYNC_FILE) and DRM_IOCTL_PRIME_HANDLE_TO_FD.
 * With the fd table full the ioctl fails with EMFILE and leaves nothing behind: no fence
 * in any reservation, no queued job, no seqno, fence context or dma-buf used, every
 * in-fence reference given back; closing one fd makes the next call work.
 */

import assert from "node:assert/strict";
import { test } from "node:test";
import type { DmaBuf } from "../../src/dma-buf/dma-buf.js";
import { DMA_RESV_USAGE_BOOKKEEP } from "../../src/dma-buf/dma-resv.js";
import type { SwSyncTimeline } from "../../src/dma-buf/sw-sync.js";
import { syncFileGetFence } from "../../src/dma-buf/sync-file-fd.js";
import { simnpuProbe } from "../../src/drivers/accel/simnpu/simnpu.js";
import { simgpuProbe } from "../../src/drivers/gpu/drm/simgpu/simgpu.js";
import { KernelError } from "../../src/errno.js";
import { DMA_BUF_SYNC_READ, DMA_BUF_SYNC_WRITE } from "../../src/include/uapi/dma-buf.js";
import { DRM_CLOEXEC, DRM_RDWR } from "../../src/include/uapi/drm.js";
import { O_RDWR, POLLIN, POLLOUT } from "../../src/include/uapi/fcntl.js";
import {
  SIMGPU_OP_INVERT,
  SIMGPU_SUBMIT_IN_FENCE,
  SIMGPU_SUBMIT_OUT_FENCE,
} from "../../src/include/uapi/simgpu-drm.js";
import {
  SIMNPU_OP_CONV3X3,
  SIMNPU_SUBMIT_IN_FENCE,
  SIMNPU_SUBMIT_OUT_FENCE,
} from "../../src/include/uapi/simnpu-accel.js";
import { SW_SYNC_IOC_CREATE_FENCE } from "../../src/include/uapi/sync-file.js";
import { Kernel, SW_SYNC_PATH } from "../../src/kernel/kernel.js";
import { simnpuBoCreate, simnpuSubmit } from "../../src/uapi/accel.js";
import { drmPrimeHandleToFd, simgpuGemCreate, simgpuSubmit } from "../../src/uapi/drm.js";
import {
  dmaBufExportSyncFile,
  dmaBufImportSyncFile,
  dmaHeapAlloc,
  swSyncCreateFence,
  swSyncInc,
  syncMerge,
} from "../../src/uapi/lib.js";
import { SimUapi } from "../../src/uapi/sim.js";

const W = 64;
const H = 32;
const SIZE = W * H * 4;

const errno = (code: string) => (e: unknown) => e instanceof KernelError && e.code === code;

function boot() {
  const k = new Kernel({ profile: "arm64" });
  const gpu = simgpuProbe(k);
  const npu = simnpuProbe(k);
  const u = new SimUapi(k);
  return { k, gpu, npu, u };
}

/** dup()s `fd` until EMFILE; returns the fds it made (close one to make room). */
function fillFdTable(u: SimUapi, fd: number): number[] {
  const dups: number[] = [];
  for (;;) {
    try {
      dups.push(u.dup(fd));
    } catch (e) {
      assert.ok(errno("EMFILE")(e));
      return dups;
    }
  }
}

function dmaBufOf(u: SimUapi, fd: number): DmaBuf {
  return u.process.files.lookup(fd).privateData as DmaBuf;
}

/** Every fence in the buffer's reservation, of any usage. */
function resvFences(u: SimUapi, fd: number): string[] {
  const resv = dmaBufOf(u, fd).resv;
  resv.lock();
  try {
    return resv.describe(DMA_RESV_USAGE_BOOKKEEP).map((f) => JSON.stringify(f));
  } finally {
    resv.unlock();
  }
}

/** A wait on the buffer for everyone (poll POLLOUT) that must not block. */
function bufferIdle(u: SimUapi, fd: number): boolean {
  return (u.poll([{ fd, events: POLLOUT }], 0)[0]! & POLLOUT) !== 0;
}

/** The refcount of the fence behind sync_file `fd`, not counting the look-up's own reference. */
function fenceRefs(u: SimUapi, fd: number): number {
  const f = syncFileGetFence(u.process.files, fd)!;
  const n = f.refcount - 1;
  f.put();
  return n;
}

function swSyncTimeline(u: SimUapi, fd: number): SwSyncTimeline {
  return (u.process.files.lookup(fd).privateData as { timeline: SwSyncTimeline }).timeline;
}

/**
 * Two objects made by `create` on device fd `dev`, each also as a dma-buf fd (to wait on
 * and to see its reservation), and an unsignalled sw_sync in-fence with its refcount.
 */
function jobObjects(u: SimUapi, dev: number, create: (size: number) => { handle: number }) {
  const [a, b] = [create(SIZE), create(SIZE)];
  const timeline = u.open(SW_SYNC_PATH, O_RDWR);
  const inFence = swSyncCreateFence(u, timeline, 1);
  return {
    a: a!.handle,
    b: b!.handle,
    aBuf: drmPrimeHandleToFd(u, dev, a!.handle, DRM_CLOEXEC | DRM_RDWR),
    bBuf: drmPrimeHandleToFd(u, dev, b!.handle, DRM_CLOEXEC | DRM_RDWR),
    timeline,
    inFence,
    inRefs: fenceRefs(u, inFence),
  };
}

test("simgpu SUBMIT with an out-fence on a full fd table: EMFILE before the job is armed; nothing stays behind", () => {
  const { k, gpu, u } = boot();
  const card = u.open(gpu.renderPath, O_RDWR);
  const o = jobObjects(u, card, (size) => simgpuGemCreate(u, card, size));
  const { aBuf: srcBuf, bBuf: dstBuf, timeline, inFence, inRefs } = o;
  const contexts = k.fences.contexts.next;
  const job = {
    op: SIMGPU_OP_INVERT,
    srcHandle: o.a,
    dstHandle: o.b,
    width: W,
    height: H,
    srcPitch: W * 4,
    dstPitch: W * 4,
    flags: SIMGPU_SUBMIT_IN_FENCE | SIMGPU_SUBMIT_OUT_FENCE,
    inFenceFd: inFence,
  };

  const dups = fillFdTable(u, card);
  assert.throws(() => simgpuSubmit(u, card, job), errno("EMFILE"));
  assert.deepEqual(resvFences(u, srcBuf), [], "no fence left in src's reservation");
  assert.deepEqual(resvFences(u, dstBuf), [], "no fence left in dst's reservation");
  assert.ok(bufferIdle(u, srcBuf) && bufferIdle(u, dstBuf), "a wait on the buffers returns");
  assert.equal(fenceRefs(u, inFence), inRefs, "the in-fence's references are back");
  assert.equal(gpu.pendingJobs, 0);
  assert.equal(k.fences.contexts.next, contexts);

  // Room for one fd: the same submit works, and is the GPU's first job.
  const freed = dups.pop()!;
  u.close(freed);
  const ok = simgpuSubmit(u, card, job);
  assert.equal(ok.outFenceFd, freed);
  assert.equal(ok.seqno, 1, "the failed submit used no seqno");
  assert.equal(resvFences(u, dstBuf).length, 1);
  assert.equal(bufferIdle(u, dstBuf), false, "the job waits for its in-fence");
  swSyncInc(u, timeline, 1);
  assert.equal(u.poll([{ fd: ok.outFenceFd, events: POLLIN }], 1000)[0], POLLIN);
  assert.ok(bufferIdle(u, srcBuf) && bufferIdle(u, dstBuf));
  assert.equal(gpu.jobsCompleted, 1);
  assert.deepEqual(
    k.machine.violations.list.map((v) => v.message),
    [],
  );
});

test("simgpu SUBMIT failing before arm (a bad in-fence fd) gives the reserved out-fence fd back", () => {
  const { gpu, u } = boot();
  const card = u.open(gpu.renderPath, O_RDWR);
  const src = simgpuGemCreate(u, card, SIZE);
  const dst = simgpuGemCreate(u, card, SIZE);
  const dstBuf = drmPrimeHandleToFd(u, card, dst.handle, DRM_CLOEXEC | DRM_RDWR);
  const before = u.process.files.fds();
  assert.throws(
    () =>
      simgpuSubmit(u, card, {
        op: SIMGPU_OP_INVERT,
        srcHandle: src.handle,
        dstHandle: dst.handle,
        width: W,
        height: H,
        srcPitch: W * 4,
        dstPitch: W * 4,
        flags: SIMGPU_SUBMIT_IN_FENCE | SIMGPU_SUBMIT_OUT_FENCE,
        inFenceFd: card,
      }),
    errno("EINVAL"),
  );
  assert.deepEqual(u.process.files.fds(), before);
  assert.equal(u.dup(card), Math.max(...before) + 1, "the reserved number is free again");
  assert.deepEqual(resvFences(u, dstBuf), []);
  assert.equal(gpu.pendingJobs, 0);
});

test("simnpu SUBMIT with an out-fence on a full fd table: EMFILE, no job queued or run, no fence published", () => {
  const { k, npu, u } = boot();
  const accel = u.open(npu.path, O_RDWR);
  const o = jobObjects(u, accel, (size) => simnpuBoCreate(u, accel, size));
  const { aBuf: inBuf, bBuf: outBuf, timeline, inFence, inRefs } = o;
  const job = {
    op: SIMNPU_OP_CONV3X3,
    inHandle: o.a,
    outHandle: o.b,
    width: W,
    height: H,
    cpp: 4,
    inPitch: W * 4,
    outPitch: W * 4,
    flags: SIMNPU_SUBMIT_IN_FENCE | SIMNPU_SUBMIT_OUT_FENCE,
    inFenceFd: inFence,
  };

  const dups = fillFdTable(u, accel);
  assert.throws(() => simnpuSubmit(u, accel, job), errno("EMFILE"));
  assert.equal(npu.pendingJobs, 0, "the failed ioctl queued no work");
  assert.deepEqual(resvFences(u, inBuf), []);
  assert.deepEqual(resvFences(u, outBuf), []);
  assert.ok(bufferIdle(u, inBuf) && bufferIdle(u, outBuf));
  assert.equal(fenceRefs(u, inFence), inRefs, "the in-fence's references are back");
  swSyncInc(u, timeline, 1);
  k.machine.clock.advance(1e9);
  assert.equal(npu.jobsCompleted, 0, "and nothing ran");

  u.close(dups.pop()!);
  const ok = simnpuSubmit(u, accel, { ...job, flags: SIMNPU_SUBMIT_OUT_FENCE });
  assert.equal(ok.seqno, 1);
  assert.equal(u.poll([{ fd: ok.outFenceFd, events: POLLIN }], 1000)[0], POLLIN);
  assert.equal(npu.jobsCompleted, 1);
});

test("SW_SYNC_IOC_CREATE_FENCE reserves the fd first: EMFILE creates no sync_pt and beats EFAULT", () => {
  const { u } = boot();
  const timeline = u.open(SW_SYNC_PATH, O_RDWR);
  const dups = fillFdTable(u, timeline);
  assert.throws(() => swSyncCreateFence(u, timeline, 5), errno("EMFILE"));
  assert.equal(swSyncTimeline(u, timeline).pendingPoints.length, 0);
  // sw_sync_ioctl_create_fence: get_unused_fd_flags before copy_from_user.
  assert.throws(() => u.ioctl(timeline, SW_SYNC_IOC_CREATE_FENCE, 0), errno("EMFILE"));
  const freed = dups.pop()!;
  u.close(freed);
  assert.equal(swSyncCreateFence(u, timeline, 5), freed);
  assert.equal(swSyncTimeline(u, timeline).pendingPoints.length, 1);
});

test("SYNC_IOC_MERGE on a full fd table: EMFILE before the merged fence takes a fence context", () => {
  const { k, u } = boot();
  const a = swSyncCreateFence(u, u.open(SW_SYNC_PATH, O_RDWR), 1);
  const b = swSyncCreateFence(u, u.open(SW_SYNC_PATH, O_RDWR), 1);
  const refs = [fenceRefs(u, a), fenceRefs(u, b)];
  const contexts = k.fences.contexts.next;
  const dups = fillFdTable(u, a);
  assert.throws(() => syncMerge(u, "ab", a, b), errno("EMFILE"));
  assert.equal(k.fences.contexts.next, contexts);
  assert.deepEqual([fenceRefs(u, a), fenceRefs(u, b)], refs);
  const freed = dups.pop()!;
  u.close(freed);
  assert.equal(syncMerge(u, "ab", a, b), freed);
  assert.equal(k.fences.contexts.next, contexts + 1);
});

test("DMA_BUF_IOCTL_EXPORT_SYNC_FILE on a full fd table: EMFILE before the singleton fence is built", () => {
  const { k, u } = boot();
  const heap = u.open("/dev/dma_heap/system", O_RDWR);
  const buf = dmaHeapAlloc(u, heap, SIZE);
  // Two writers on two timelines: the export would wrap them in a fence array.
  for (const tl of [u.open(SW_SYNC_PATH, O_RDWR), u.open(SW_SYNC_PATH, O_RDWR)])
    dmaBufImportSyncFile(u, buf, DMA_BUF_SYNC_WRITE, swSyncCreateFence(u, tl, 1));
  const fences = resvFences(u, buf);
  const contexts = k.fences.contexts.next;
  const dups = fillFdTable(u, buf);
  assert.throws(() => dmaBufExportSyncFile(u, buf, DMA_BUF_SYNC_READ), errno("EMFILE"));
  assert.equal(k.fences.contexts.next, contexts);
  assert.deepEqual(resvFences(u, buf), fences);
  const freed = dups.pop()!;
  u.close(freed);
  assert.equal(dmaBufExportSyncFile(u, buf, DMA_BUF_SYNC_READ), freed);
  assert.equal(k.fences.contexts.next, contexts + 1);
});

test("DRM_IOCTL_PRIME_HANDLE_TO_FD on a full fd table: EMFILE before the object is exported (Linux 6.10+)", () => {
  const { k, gpu, u } = boot();
  const card = u.open(gpu.renderPath, O_RDWR);
  const bo = simgpuGemCreate(u, card, SIZE);
  const dups = fillFdTable(u, card);
  assert.throws(
    () => drmPrimeHandleToFd(u, card, bo.handle, DRM_CLOEXEC | DRM_RDWR),
    errno("EMFILE"),
  );
  assert.equal(k.dmaBuf.buffers.length, 0, "nothing exported");
  // get_unused_fd_flags comes before the handle lookup.
  assert.throws(() => drmPrimeHandleToFd(u, card, 999, DRM_CLOEXEC), errno("EMFILE"));
  const freed = dups.pop()!;
  u.close(freed);
  assert.throws(() => drmPrimeHandleToFd(u, card, 999, DRM_CLOEXEC), errno("ENOENT"));
  const fd = drmPrimeHandleToFd(u, card, bo.handle, DRM_CLOEXEC | DRM_RDWR);
  assert.equal(fd, freed, "the ENOENT gave its reserved fd back");
  assert.equal(u.process.files.cloexec(fd), true);
  assert.equal(k.dmaBuf.buffers.length, 1);
});
