/**
 * The V4L2 mem2mem framework with vim2m (ISP/scaler) and simenc (encoder): formats per
 * open, job scheduling when both queues stream with buffers, the CAPTURE mmap offset
 * base, poll, errnos under Linux's conditions, MMAP+EXPBUF and DMABUF buffers, cache
 * hints, and coherent, non-coherent, IOMMU and 32-bit-mask instances — each result
 * compared with the pure functions, each missing sync caught.
 */

import assert from "node:assert/strict";
import { describe, test } from "node:test";
import fc from "fast-check";
import type { M2mPixFormat } from "../../../src/drivers/media/test-drivers/m2m-common.js";
import {
  simencCodedFormat,
  simencDecode,
  simencEncode,
  simencProbe,
} from "../../../src/drivers/media/test-drivers/simenc.js";
import {
  type Vim2mOptions,
  vim2mProbe,
  vim2mProcess,
  vim2mTryFmt,
} from "../../../src/drivers/media/test-drivers/vim2m.js";
import { DST_QUEUE_OFF_BASE } from "../../../src/drivers/media/v4l2-core/v4l2-mem2mem.js";
import { KernelError } from "../../../src/errno.js";
import {
  DMA_BUF_SYNC_END,
  DMA_BUF_SYNC_READ,
  DMA_BUF_SYNC_START,
  DMA_BUF_SYNC_WRITE,
} from "../../../src/include/uapi/dma-buf.js";
import {
  MAP_SHARED,
  O_CLOEXEC,
  O_NONBLOCK,
  O_RDWR,
  POLLERR,
  POLLIN,
  POLLOUT,
  PROT_READ,
  PROT_WRITE,
} from "../../../src/include/uapi/fcntl.js";
import { V4L2_PIX_FMT_SIMENC_RLE } from "../../../src/include/uapi/simenc.js";
import {
  V4L2_BUF_CAP_SUPPORTS_MMAP_CACHE_HINTS,
  V4L2_BUF_FLAG_NO_CACHE_INVALIDATE,
  V4L2_BUF_FLAG_TIMESTAMP_COPY,
  V4L2_BUF_TYPE_VIDEO_CAPTURE,
  V4L2_BUF_TYPE_VIDEO_OUTPUT,
  V4L2_CAP_STREAMING,
  V4L2_CAP_VIDEO_M2M,
  V4L2_MEMORY_DMABUF,
  V4L2_MEMORY_FLAG_NON_COHERENT,
  V4L2_MEMORY_MMAP,
  V4L2_MEMORY_USERPTR,
  V4L2_PIX_FMT_RGB24,
  V4L2_PIX_FMT_XBGR32,
  V4L2_PIX_FMT_YUYV,
} from "../../../src/include/uapi/videodev2.js";
import { Kernel } from "../../../src/kernel/kernel.js";
import { dmaBufSync, dmaHeapAlloc } from "../../../src/uapi/lib.js";
import { SimUapi } from "../../../src/uapi/sim.js";
import type { Mapping } from "../../../src/uapi/uapi.js";
import {
  vidiocDqbuf,
  vidiocExpbuf,
  vidiocGFmt,
  vidiocQbuf,
  vidiocQuerybuf,
  vidiocQuerycap,
  vidiocReqbufs,
  vidiocSFmt,
  vidiocStreamoff,
  vidiocStreamon,
} from "../../../src/uapi/v4l2.js";
import { errnoOf } from "./helpers.js";

const OUT = V4L2_BUF_TYPE_VIDEO_OUTPUT;
const CAP = V4L2_BUF_TYPE_VIDEO_CAPTURE;
const MMAP = V4L2_MEMORY_MMAP;

/** A deterministic raw frame of `fmt`, padding included. */
function frame(fmt: M2mPixFormat, seed: number): Uint8Array {
  const b = new Uint8Array(fmt.sizeimage);
  for (let i = 0; i < b.length; i++) b[i] = (((i >> 5) * 13 + seed * 7) ^ (i % 97)) & 0xff;
  return b;
}

function boot(profile = "arm64", options: Vim2mOptions = {}) {
  const k = new Kernel({ profile });
  const isp = vim2mProbe(k, options);
  const u = new SimUapi(k);
  const fd = u.open(isp.path, O_RDWR);
  return { k, isp, u, fd };
}

/** S_FMT both queues, REQBUFS MMAP on both, mmap every buffer. */
function mmapSetup(
  u: SimUapi,
  fd: number,
  out: { width: number; height: number; pixelformat: number },
  cap: { width: number; height: number; pixelformat: number },
  count = 2,
  flags = 0,
) {
  const o = vidiocSFmt(u, fd, OUT, out);
  const c = vidiocSFmt(u, fd, CAP, cap);
  const ro = vidiocReqbufs(u, fd, { count, type: OUT, memory: MMAP });
  const rc = vidiocReqbufs(u, fd, { count, type: CAP, memory: MMAP, flags });
  const outMaps: Mapping[] = [];
  const capMaps: Mapping[] = [];
  for (let i = 0; i < ro.count; i++) {
    const b = vidiocQuerybuf(u, fd, OUT, MMAP, i);
    outMaps.push(u.mmap(b.length, PROT_READ | PROT_WRITE, MAP_SHARED, fd, b.offset));
  }
  for (let i = 0; i < rc.count; i++) {
    const b = vidiocQuerybuf(u, fd, CAP, MMAP, i);
    capMaps.push(u.mmap(b.length, PROT_READ, MAP_SHARED, fd, b.offset));
  }
  return { o, c, ro, rc, outMaps, capMaps };
}

describe("vim2m: the node and its formats", () => {
  test("QUERYCAP says M2M; formats are per open file; the capture size is free (the scaler)", () => {
    const { u, fd, isp } = boot();
    assert.equal(isp.path, "/dev/video0");
    const cap = vidiocQuerycap(u, fd);
    assert.deepEqual([cap.driver, cap.card, cap.busInfo], ["vim2m", "vim2m", "platform:vim2m"]);
    assert.equal(cap.deviceCaps, V4L2_CAP_VIDEO_M2M | V4L2_CAP_STREAMING);
    const o = vidiocSFmt(u, fd, OUT, { width: 101, height: 40, pixelformat: V4L2_PIX_FMT_YUYV });
    assert.deepEqual([o.width, o.height, o.bytesperline, o.sizeimage], [100, 40, 200, 8000]);
    const c = vidiocSFmt(u, fd, CAP, { width: 50, height: 20, pixelformat: V4L2_PIX_FMT_RGB24 });
    assert.deepEqual([c.width, c.height, c.bytesperline], [50, 20, 150]);
    const other = u.open(isp.path, O_RDWR);
    assert.equal(
      vidiocGFmt(u, other, OUT).pixelformat,
      V4L2_PIX_FMT_XBGR32,
      "a new open has the defaults",
    );
    assert.equal(vidiocGFmt(u, fd, OUT).width, 100);
  });

  test("errnos: wrong buffer type, USERPTR, S_FMT with buffers, DQBUF before STREAMON, empty nonblocking DQBUF, bad mmap offset", () => {
    const { u, fd } = boot();
    assert.equal(
      errnoOf(() => vidiocGFmt(u, fd, 3 /* VIDEO_OVERLAY */)),
      "EINVAL",
    );
    assert.equal(
      errnoOf(() => vidiocReqbufs(u, fd, { count: 1, type: OUT, memory: V4L2_MEMORY_USERPTR })),
      "EINVAL",
    );
    assert.equal(
      errnoOf(() => vidiocStreamon(u, fd, OUT)),
      "EINVAL",
      "no buffers yet",
    );
    mmapSetup(
      u,
      fd,
      { width: 32, height: 16, pixelformat: V4L2_PIX_FMT_XBGR32 },
      { width: 32, height: 16, pixelformat: V4L2_PIX_FMT_XBGR32 },
    );
    assert.equal(
      errnoOf(() =>
        vidiocSFmt(u, fd, CAP, { width: 64, height: 64, pixelformat: V4L2_PIX_FMT_YUYV }),
      ),
      "EBUSY",
    );
    assert.equal(
      errnoOf(() => vidiocDqbuf(u, fd, CAP, MMAP)),
      "EINVAL",
      "not streaming",
    );
    const nb = u.open("/dev/video0", O_RDWR | O_NONBLOCK);
    assert.equal(
      errnoOf(() => vidiocStreamon(u, nb, OUT)),
      "EINVAL",
      "another open has its own, empty, queues",
    );
    vidiocStreamon(u, fd, CAP);
    assert.equal(
      errnoOf(() => u.mmap(4096, PROT_READ, MAP_SHARED, fd, DST_QUEUE_OFF_BASE + 64 * 4096)),
      "EINVAL",
    );
    assert.equal(
      errnoOf(() => u.mmap(4096, PROT_READ, MAP_SHARED, fd, 64 * 4096)),
      "EINVAL",
    );
    assert.equal(
      errnoOf(() => vidiocQbuf(u, fd, { index: 5, type: CAP, memory: MMAP })),
      "EINVAL",
      "index out of range",
    );
  });
});

describe("vim2m: jobs", () => {
  test("a job runs only when both queues stream with a buffer; the result is vim2mProcess of the source", () => {
    const { u, fd, isp, k } = boot();
    const s = mmapSetup(
      u,
      fd,
      { width: 64, height: 32, pixelformat: V4L2_PIX_FMT_YUYV },
      { width: 48, height: 24, pixelformat: V4L2_PIX_FMT_XBGR32 },
    );
    assert.ok(
      vidiocQuerybuf(u, fd, CAP, MMAP, 0).offset >= DST_QUEUE_OFF_BASE,
      "CAPTURE offsets are based",
    );
    assert.ok(vidiocQuerybuf(u, fd, OUT, MMAP, 1).offset < DST_QUEUE_OFF_BASE);
    const src = frame(s.o, 1);
    s.outMaps[0]!.write(0, src);
    vidiocQbuf(u, fd, {
      index: 0,
      type: OUT,
      memory: MMAP,
      bytesused: s.o.sizeimage,
      timestampNs: 123_456_000,
    });
    vidiocStreamon(u, fd, OUT);
    vidiocStreamon(u, fd, CAP);
    k.machine.clock.runUntilIdle();
    assert.equal(isp.m2mDev.jobsRun, 0, "no destination buffer: no job");
    const q = vidiocQbuf(u, fd, { index: 1, type: CAP, memory: MMAP });
    assert.ok(q.offset >= DST_QUEUE_OFF_BASE, "QBUF reports the based offset too");
    const done = vidiocDqbuf(u, fd, CAP, MMAP);
    assert.equal(isp.m2mDev.jobsRun, 1);
    assert.deepEqual([done.index, done.sequence, done.bytesused], [1, 0, s.c.sizeimage]);
    assert.ok(done.flags & V4L2_BUF_FLAG_TIMESTAMP_COPY);
    assert.equal(done.timestampNs, 123_456_000, "the source's timestamp, copied");
    assert.deepEqual(s.capMaps[1]!.read(0, s.c.sizeimage), vim2mProcess(src, s.o, s.c));
    const srcDone = vidiocDqbuf(u, fd, OUT, MMAP);
    assert.equal(srcDone.index, 0);
    assert.ok(isp.dev.bytesRead >= s.o.sizeimage, "the device read the whole source by DMA");
    assert.ok(isp.dev.bytesWritten >= s.c.sizeimage);
    assert.deepEqual(
      k.machine.violations.list.map((v) => v.message),
      [],
    );
  });

  test("two open files share the device: their jobs run one at a time, each with its own formats", () => {
    const { u, fd, isp, k } = boot("x86-64");
    const fd2 = u.open(isp.path, O_RDWR);
    const a = mmapSetup(
      u,
      fd,
      { width: 32, height: 16, pixelformat: V4L2_PIX_FMT_XBGR32 },
      { width: 32, height: 16, pixelformat: V4L2_PIX_FMT_YUYV },
      1,
    );
    const b = mmapSetup(
      u,
      fd2,
      { width: 64, height: 16, pixelformat: V4L2_PIX_FMT_RGB24 },
      { width: 16, height: 16, pixelformat: V4L2_PIX_FMT_RGB24 },
      1,
    );
    const sa = frame(a.o, 2);
    const sb = frame(b.o, 3);
    a.outMaps[0]!.write(0, sa);
    b.outMaps[0]!.write(0, sb);
    for (const f of [fd, fd2]) {
      vidiocQbuf(u, f, { index: 0, type: OUT, memory: MMAP });
      vidiocQbuf(u, f, { index: 0, type: CAP, memory: MMAP });
      vidiocStreamon(u, f, OUT);
      vidiocStreamon(u, f, CAP);
    }
    assert.equal(isp.m2mDev.jobQueue.length, 2, "the second context waits for the first job");
    vidiocDqbuf(u, fd2, CAP, MMAP);
    vidiocDqbuf(u, fd, CAP, MMAP);
    assert.equal(isp.jobsCompleted, 2);
    assert.deepEqual(a.capMaps[0]!.read(0, a.c.sizeimage), vim2mProcess(sa, a.o, a.c));
    assert.deepEqual(b.capMaps[0]!.read(0, b.c.sizeimage), vim2mProcess(sb, b.o, b.c));
    assert.equal(k.machine.violations.count, 0);
  });

  test("poll: POLLERR before streaming, POLLOUT for a done source, POLLIN for a done destination", () => {
    const { u, fd, k } = boot();
    const s = mmapSetup(
      u,
      fd,
      { width: 32, height: 16, pixelformat: V4L2_PIX_FMT_XBGR32 },
      { width: 32, height: 16, pixelformat: V4L2_PIX_FMT_XBGR32 },
    );
    assert.equal(u.poll([{ fd, events: POLLIN | POLLOUT }], 0)[0]! & POLLERR, POLLERR);
    s.outMaps[0]!.write(0, frame(s.o, 4));
    vidiocQbuf(u, fd, { index: 0, type: OUT, memory: MMAP });
    vidiocQbuf(u, fd, { index: 0, type: CAP, memory: MMAP });
    vidiocStreamon(u, fd, OUT);
    vidiocStreamon(u, fd, CAP);
    assert.equal(u.poll([{ fd, events: POLLIN | POLLOUT }], 0)[0], 0, "the job is still running");
    k.machine.clock.runUntilIdle();
    const ev = u.poll([{ fd, events: POLLIN | POLLOUT }], 0)[0]!;
    assert.ok(ev & POLLIN && ev & POLLOUT);
    vidiocStreamoff(u, fd, CAP);
    vidiocStreamoff(u, fd, OUT);
    assert.equal(u.poll([{ fd, events: POLLIN }], 0)[0]! & POLLERR, POLLERR);
  });

  test("STREAMOFF returns the queued buffers; streaming again runs new jobs from sequence 0", () => {
    const { u, fd, k } = boot();
    const s = mmapSetup(
      u,
      fd,
      { width: 32, height: 16, pixelformat: V4L2_PIX_FMT_XBGR32 },
      { width: 32, height: 16, pixelformat: V4L2_PIX_FMT_XBGR32 },
    );
    vidiocQbuf(u, fd, { index: 0, type: OUT, memory: MMAP });
    vidiocStreamon(u, fd, OUT);
    vidiocStreamoff(u, fd, OUT);
    assert.equal(vidiocQuerybuf(u, fd, OUT, MMAP, 0).flags & 0x2 /* QUEUED */, 0);
    const src = frame(s.o, 5);
    s.outMaps[1]!.write(0, src);
    vidiocQbuf(u, fd, { index: 1, type: OUT, memory: MMAP });
    vidiocQbuf(u, fd, { index: 0, type: CAP, memory: MMAP });
    vidiocStreamon(u, fd, OUT);
    vidiocStreamon(u, fd, CAP);
    const d = vidiocDqbuf(u, fd, CAP, MMAP);
    assert.equal(d.sequence, 0);
    assert.deepEqual(s.capMaps[0]!.read(0, s.c.sizeimage), vim2mProcess(src, s.o, s.c));
    u.close(fd);
    assert.equal(k.machine.violations.count, 0);
  });
});

describe("vim2m: buffers shared by dma-buf", () => {
  /** A heap-backed pipeline: CPU writes the source, vim2m converts, CPU reads the result. */
  function heapRun(profile: string, options: Vim2mOptions, omitSyncEnd = false) {
    const { u, fd, k } = boot(profile, options);
    const o = vidiocSFmt(u, fd, OUT, { width: 64, height: 32, pixelformat: V4L2_PIX_FMT_XBGR32 });
    const c = vidiocSFmt(u, fd, CAP, { width: 64, height: 32, pixelformat: V4L2_PIX_FMT_YUYV });
    const heap = u.open(
      `/dev/dma_heap/${options.allocator === "dma-sg" ? "system" : "cma"}`,
      O_RDWR,
    );
    const srcFd = dmaHeapAlloc(u, heap, 8192);
    const dstFd = dmaHeapAlloc(u, heap, 4096);
    vidiocReqbufs(u, fd, { count: 1, type: OUT, memory: V4L2_MEMORY_DMABUF });
    vidiocReqbufs(u, fd, { count: 1, type: CAP, memory: V4L2_MEMORY_DMABUF });
    const src = frame(o, 6);
    const sm = u.mmap(8192, PROT_READ | PROT_WRITE, MAP_SHARED, srcFd, 0);
    // Warm the cache with the buffer's old contents, as an application reusing it would.
    dmaBufSync(u, srcFd, DMA_BUF_SYNC_START | DMA_BUF_SYNC_WRITE);
    sm.read(0, o.sizeimage);
    sm.write(0, src);
    if (!omitSyncEnd) dmaBufSync(u, srcFd, DMA_BUF_SYNC_END | DMA_BUF_SYNC_WRITE);
    vidiocQbuf(u, fd, {
      index: 0,
      type: OUT,
      memory: V4L2_MEMORY_DMABUF,
      fd: srcFd,
      bytesused: o.sizeimage,
    });
    vidiocQbuf(u, fd, { index: 0, type: CAP, memory: V4L2_MEMORY_DMABUF, fd: dstFd });
    vidiocStreamon(u, fd, OUT);
    vidiocStreamon(u, fd, CAP);
    vidiocDqbuf(u, fd, CAP, V4L2_MEMORY_DMABUF);
    const dm = u.mmap(4096, PROT_READ, MAP_SHARED, dstFd, 0);
    dmaBufSync(u, dstFd, DMA_BUF_SYNC_START | DMA_BUF_SYNC_READ);
    const got = dm.read(0, c.sizeimage);
    dmaBufSync(u, dstFd, DMA_BUF_SYNC_END | DMA_BUF_SYNC_READ);
    return { k, got, want: vim2mProcess(src, o, c) };
  }

  for (const [label, profile, options] of [
    ["non-coherent, contiguous CMA buffers", "arm64", {}],
    [
      "non-coherent behind an IOMMU, scattered system-heap buffers",
      "arm64",
      { allocator: "dma-sg", device: { iommu: true } },
    ],
    [
      "non-coherent with a 32-bit mask (bounced through swiotlb when needed)",
      "arm64",
      { allocator: "dma-sg", device: { dmaBits: 32 } },
    ],
    ["coherent", "x86-64", { allocator: "dma-sg" }],
  ] as const) {
    test(`heap dma-bufs on both queues, ${label}: exact result, no violations`, () => {
      const r = heapRun(profile, options);
      assert.deepEqual(r.got, r.want);
      assert.deepEqual(
        r.k.machine.violations.list.map((v) => v.message),
        [],
      );
    });
  }

  test("without DMA_BUF_SYNC_END the first source is still right: the QBUF that attaches a DMABUF plane maps it and the heap's map_dma_buf cleans the cache (later QBUFs of the same dma-buf map nothing, Linux 6.12)", () => {
    const r = heapRun("arm64", {}, true);
    assert.deepEqual(r.got, r.want);
    assert.equal(r.k.machine.violations.ofKind("stale-device-read").length, 0);
  });

  test("EXPBUF of a CAPTURE buffer: another device or the CPU reads the result through the dma-buf", () => {
    const { u, fd, k } = boot();
    const s = mmapSetup(
      u,
      fd,
      { width: 32, height: 32, pixelformat: V4L2_PIX_FMT_RGB24 },
      { width: 64, height: 16, pixelformat: V4L2_PIX_FMT_XBGR32 },
      1,
    );
    const src = frame(s.o, 7);
    s.outMaps[0]!.write(0, src);
    const exp = vidiocExpbuf(u, fd, { type: CAP, index: 0, flags: O_RDWR | O_CLOEXEC });
    vidiocQbuf(u, fd, { index: 0, type: OUT, memory: MMAP });
    vidiocQbuf(u, fd, { index: 0, type: CAP, memory: MMAP });
    vidiocStreamon(u, fd, OUT);
    vidiocStreamon(u, fd, CAP);
    vidiocDqbuf(u, fd, CAP, MMAP);
    const m = u.mmap(s.c.sizeimage, PROT_READ, MAP_SHARED, exp, 0);
    dmaBufSync(u, exp, DMA_BUF_SYNC_START | DMA_BUF_SYNC_READ);
    assert.deepEqual(m.read(0, s.c.sizeimage), vim2mProcess(src, s.o, s.c));
    dmaBufSync(u, exp, DMA_BUF_SYNC_END | DMA_BUF_SYNC_READ);
    assert.equal(k.machine.violations.count, 0);
  });
});

describe("vim2m: cache hints", () => {
  test("non-coherent MMAP with hints: an honest NO_CACHE_INVALIDATE is refused without allow_cache_hints, a lying one reads stale data and is caught", () => {
    const plain = boot();
    const r0 = vidiocReqbufs(plain.u, plain.fd, {
      count: 1,
      type: CAP,
      memory: MMAP,
      flags: V4L2_MEMORY_FLAG_NON_COHERENT,
    });
    assert.equal(r0.flags, 0, "no hints: NON_COHERENT is cleared");
    assert.equal(r0.capabilities & V4L2_BUF_CAP_SUPPORTS_MMAP_CACHE_HINTS, 0);

    const { u, fd, k } = boot("arm64", { allowCacheHints: true });
    const s = mmapSetup(
      u,
      fd,
      { width: 32, height: 16, pixelformat: V4L2_PIX_FMT_XBGR32 },
      { width: 32, height: 16, pixelformat: V4L2_PIX_FMT_XBGR32 },
      1,
      V4L2_MEMORY_FLAG_NON_COHERENT,
    );
    assert.ok(s.rc.capabilities & V4L2_BUF_CAP_SUPPORTS_MMAP_CACHE_HINTS);
    assert.equal(s.rc.flags, V4L2_MEMORY_FLAG_NON_COHERENT);
    const run = (seed: number, flags: number) => {
      const src = frame(s.o, seed);
      s.outMaps[0]!.write(0, src);
      vidiocQbuf(u, fd, { index: 0, type: OUT, memory: MMAP });
      vidiocQbuf(u, fd, { index: 0, type: CAP, memory: MMAP, flags });
      vidiocDqbuf(u, fd, CAP, MMAP);
      vidiocDqbuf(u, fd, OUT, MMAP);
      return { got: s.capMaps[0]!.read(0, s.c.sizeimage), want: vim2mProcess(src, s.o, s.c) };
    };
    vidiocStreamon(u, fd, OUT);
    vidiocStreamon(u, fd, CAP);
    const first = run(8, 0);
    assert.deepEqual(first.got, first.want, "synced by vb2 at finish: exact");
    assert.equal(k.machine.violations.count, 0);
    // The CPU has the destination cached now; a hint that skips the invalidate lies.
    const second = run(9, V4L2_BUF_FLAG_NO_CACHE_INVALIDATE);
    assert.notDeepEqual(second.got, second.want);
    assert.ok(k.machine.violations.ofKind("stale-cpu-read").length > 0);
  });
});

describe("simenc", () => {
  test("encodes a frame by DMA: bytesused is the coded length, the stream decodes to the source's visible bytes", () => {
    const k = new Kernel({ profile: "arm64" });
    simencProbe(k, { name: "encoder" });
    const enc = simencProbe(k);
    assert.deepEqual([enc.path, enc.dev.name], ["/dev/video1", "simenc"]);
    const u = new SimUapi(k);
    const fd = u.open(enc.path, O_RDWR);
    assert.equal(vidiocQuerycap(u, fd).driver, "simenc");
    const o = vidiocSFmt(u, fd, OUT, {
      width: 64,
      height: 32,
      pixelformat: V4L2_PIX_FMT_YUYV,
      bytesperline: 160,
    });
    const c = vidiocGFmt(u, fd, CAP);
    assert.equal(c.pixelformat, V4L2_PIX_FMT_SIMENC_RLE);
    assert.equal(c.sizeimage, simencCodedFormat(o).sizeimage);
    assert.equal(
      vidiocSFmt(u, fd, CAP, { width: 1, height: 1, pixelformat: 0 }).pixelformat,
      V4L2_PIX_FMT_SIMENC_RLE,
    );
    const s = mmapSetup(u, fd, o, c, 1);
    // Bars: long runs of equal pixel pairs.
    const src = new Uint8Array(o.sizeimage);
    for (let y = 0; y < o.height; y++)
      for (let x = 0; x < o.width * 2; x++)
        src[y * 160 + x] = x < 64 ? 0x10 + (x & 3) : 0xe0 - (x & 3);
    s.outMaps[0]!.write(0, src);
    vidiocQbuf(u, fd, { index: 0, type: OUT, memory: MMAP });
    vidiocQbuf(u, fd, { index: 0, type: CAP, memory: MMAP });
    vidiocStreamon(u, fd, OUT);
    vidiocStreamon(u, fd, CAP);
    const d = vidiocDqbuf(u, fd, CAP, MMAP);
    const want = simencEncode(src, o);
    assert.equal(d.bytesused, want.length);
    assert.ok(d.bytesused < o.sizeimage / 4, `coded ${d.bytesused} of ${o.sizeimage}`);
    const coded = s.capMaps[0]!.read(0, d.bytesused);
    assert.deepEqual(coded, want);
    const dec = simencDecode(coded);
    assert.deepEqual([dec.width, dec.height, dec.pixelformat], [64, 32, V4L2_PIX_FMT_YUYV]);
    for (let y = 0; y < 32; y++)
      assert.deepEqual(
        dec.pixels.subarray(y * 128, y * 128 + 128),
        src.subarray(y * 160, y * 160 + 128),
      );
    assert.ok(enc.dev.bytesRead >= o.sizeimage, "every source byte, padding included, read by DMA");
    assert.equal(k.machine.violations.count, 0);
  });

  test("property: decode(encode(frame)) is the frame's visible bytes, for every format and padding", () => {
    fc.assert(
      fc.property(
        fc.constantFrom(V4L2_PIX_FMT_YUYV, V4L2_PIX_FMT_XBGR32, V4L2_PIX_FMT_RGB24),
        fc.integer({ min: 8, max: 40 }),
        fc.integer({ min: 16, max: 24 }),
        fc.integer({ min: 0, max: 16 }),
        fc.integer({ min: 1, max: 4 }),
        fc.integer(),
        (pixelformat, w, h, pad, alphabet, seed) => {
          const f = vim2mTryFmt({ width: w * 2, height: h, pixelformat, bytesperline: 0 });
          const fmt = {
            ...f,
            bytesperline: f.bytesperline + pad,
            sizeimage: (f.bytesperline + pad) * f.height,
          };
          const src = new Uint8Array(fmt.sizeimage);
          let x = seed;
          for (let i = 0; i < src.length; i++) {
            x = (Math.imul(x, 1103515245) + 12345) | 0;
            src[i] = (x >>> 16) % alphabet;
          }
          const dec = simencDecode(simencEncode(src, fmt));
          const line = f.bytesperline;
          for (let y = 0; y < fmt.height; y++)
            if (
              !dec.pixels
                .subarray(y * line, (y + 1) * line)
                .every((b, i) => b === src[y * fmt.bytesperline + i])
            )
              return false;
          return dec.pixels.length === line * fmt.height;
        },
      ),
      { numRuns: 60 },
    );
  });
});

describe("mem2mem: random operation sequences", () => {
  test("property: any order of QBUF/DQBUF/STREAMON/STREAMOFF on either queue fails only with errnos, every destination dequeued DONE holds the converted source, nothing is incoherent", () => {
    const op = fc.oneof(
      fc.record({
        kind: fc.constant("qbuf" as const),
        out: fc.boolean(),
        index: fc.integer({ min: 0, max: 2 }),
      }),
      fc.record({ kind: fc.constant("dqbuf" as const), out: fc.boolean() }),
      fc.record({ kind: fc.constant("streamon" as const), out: fc.boolean() }),
      fc.record({ kind: fc.constant("streamoff" as const), out: fc.boolean() }),
      fc.record({ kind: fc.constant("run" as const), ns: fc.integer({ min: 0, max: 200_000 }) }),
    );
    fc.assert(
      fc.property(fc.array(op, { maxLength: 40 }), (ops) => {
        const k = new Kernel({ profile: "arm64" });
        const isp = vim2mProbe(k);
        const u = new SimUapi(k);
        const fd = u.open(isp.path, O_RDWR | O_NONBLOCK);
        const s = mmapSetup(
          u,
          fd,
          { width: 32, height: 16, pixelformat: V4L2_PIX_FMT_YUYV },
          { width: 16, height: 16, pixelformat: V4L2_PIX_FMT_XBGR32 },
          3,
        );
        // Every source buffer holds the same frame, so every job must give the same result.
        const src = frame(s.o, 20);
        for (const m of s.outMaps) m.write(0, src);
        const want = vim2mProcess(src, s.o, s.c);
        let done = 0;
        for (const o of ops) {
          const type = "out" in o && o.out ? OUT : CAP;
          try {
            if (o.kind === "qbuf") vidiocQbuf(u, fd, { index: o.index, type, memory: MMAP });
            else if (o.kind === "streamon") vidiocStreamon(u, fd, type);
            else if (o.kind === "streamoff") vidiocStreamoff(u, fd, type);
            else if (o.kind === "run") k.machine.clock.runUntil(k.machine.clock.now + o.ns);
            else {
              const b = vidiocDqbuf(u, fd, type, MMAP);
              if (type === CAP && !(b.flags & 0x40) /* V4L2_BUF_FLAG_ERROR */) {
                assert.deepEqual(s.capMaps[b.index]!.read(0, s.c.sizeimage), want);
                done++;
              }
            }
          } catch (e) {
            if (!(e instanceof KernelError)) throw e;
          }
        }
        assert.ok(done <= isp.jobsCompleted);
        assert.deepEqual(
          k.machine.violations.list.map((v) => v.message),
          [],
        );
      }),
      { numRuns: 40 },
    );
  });
});
