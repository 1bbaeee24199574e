/**
 * vivid capture through the V4L2 uAPI on the simulated kernel: frames are the test
 * pattern for MMAP, USERPTR and DMABUF memory; EXPBUF; coherent vs non-coherent cost;
 * cache hints honoured, cleared, and caught when they lie.
 */

import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { vividTestPattern } from "../../../src/drivers/media/test-drivers/vivid/vivid.js";
import {
  DMA_BUF_SYNC_END,
  DMA_BUF_SYNC_READ,
  DMA_BUF_SYNC_START,
} from "../../../src/include/uapi/dma-buf.js";
import {
  F_ADD_SEALS,
  F_SEAL_SHRINK,
  MAP_SHARED,
  MFD_ALLOW_SEALING,
  O_CLOEXEC,
  O_RDWR,
  PROT_READ,
  PROT_WRITE,
} from "../../../src/include/uapi/fcntl.js";
import {
  V4L2_BUF_CAP_SUPPORTS_DMABUF,
  V4L2_BUF_CAP_SUPPORTS_MMAP,
  V4L2_BUF_CAP_SUPPORTS_MMAP_CACHE_HINTS,
  V4L2_BUF_FLAG_DONE,
  V4L2_BUF_FLAG_MAPPED,
  V4L2_BUF_FLAG_NO_CACHE_CLEAN,
  V4L2_BUF_FLAG_NO_CACHE_INVALIDATE,
  V4L2_BUF_FLAG_QUEUED,
  V4L2_BUF_FLAG_TIMESTAMP_MONOTONIC,
  V4L2_BUF_TYPE_VIDEO_CAPTURE,
  V4L2_CAP_READWRITE,
  V4L2_CAP_STREAMING,
  V4L2_CAP_VIDEO_CAPTURE,
  V4L2_FIELD_NONE,
  V4L2_MEMORY_DMABUF,
  V4L2_MEMORY_FLAG_NON_COHERENT,
  V4L2_MEMORY_MMAP,
  V4L2_MEMORY_USERPTR,
  V4L2_PIX_FMT_XBGR32,
  V4L2_PIX_FMT_YUYV,
} from "../../../src/include/uapi/videodev2.js";
import { dmaBufSync, dmaHeapAlloc } from "../../../src/uapi/lib.js";
import type { Mapping } from "../../../src/uapi/uapi.js";
import {
  fourccToString,
  v4l2Fourcc,
  vidiocCreateBufs,
  vidiocDqbuf,
  vidiocExpbuf,
  vidiocGFmt,
  vidiocQbuf,
  vidiocQuerybuf,
  vidiocQuerycap,
  vidiocReqbufs,
  vidiocSFmt,
  vidiocSParm,
  vidiocStreamoff,
  vidiocStreamon,
} from "../../../src/uapi/v4l2.js";
import { errnoOf, firstDiff, type Rig, rig } from "./helpers.js";

const CAP = V4L2_BUF_TYPE_VIDEO_CAPTURE;

/** Leaves every other page of a run free, so the next small allocations are scattered. */
function fragmentPages(r: Rig): void {
  const pages = r.kernel.machine.pages;
  const pfns = Array.from({ length: 128 }, () => pages.alloc(0));
  pfns.forEach((pfn, i) => {
    if (i % 2 === 0) pages.free(pfn);
  });
}

function expected(r: Rig, seq: number): Uint8Array {
  return vividTestPattern(r.fmt, seq);
}

/** REQBUFS MMAP + mmap every buffer. */
function mmapBuffers(
  r: Rig,
  count: number,
  flags = 0,
): { maps: Mapping[]; rb: ReturnType<typeof vidiocReqbufs> } {
  const rb = vidiocReqbufs(r.app, r.cap, { count, type: CAP, memory: V4L2_MEMORY_MMAP, flags });
  const maps: Mapping[] = [];
  for (let i = 0; i < rb.count; i++) {
    const b = vidiocQuerybuf(r.app, r.cap, CAP, V4L2_MEMORY_MMAP, i);
    maps.push(r.app.mmap(b.length, PROT_READ, MAP_SHARED, r.cap, b.offset));
  }
  return { maps, rb };
}

describe("vivid capture: formats and capabilities", () => {
  test("QUERYCAP, G_FMT default 640x480 YUYV, S_FMT rounds to a webcam size and keeps padding", () => {
    const r = rig("arm64");
    const cap = vidiocQuerycap(r.app, r.cap);
    assert.equal(cap.driver, "vivid");
    assert.equal(cap.deviceCaps, V4L2_CAP_VIDEO_CAPTURE | V4L2_CAP_STREAMING | V4L2_CAP_READWRITE);
    assert.ok(cap.capabilities & 0x80000000);
    const fd2 = r.app.open("/dev/video0", O_RDWR);
    const def = vidiocGFmt(r.app, fd2, CAP);
    // The rig set 320x180; a fresh open sees the device's format (shared, as in vivid).
    assert.equal(def.width, 320);
    const k = rig("arm64");
    const fresh = k.app.open("/dev/video0", O_RDWR);
    assert.equal(fourccToString(v4l2Fourcc("XR24")), "XR24");
    assert.equal(v4l2Fourcc("XR24"), V4L2_PIX_FMT_XBGR32);
    const f = vidiocSFmt(k.app, fresh, CAP, {
      width: 650,
      height: 470,
      pixelformat: V4L2_PIX_FMT_XBGR32,
      bytesperline: 4096,
    });
    assert.deepEqual(
      [f.width, f.height, f.bytesperline, f.sizeimage],
      [640, 480, 4096, 4096 * 480],
    );
    assert.equal(f.field, V4L2_FIELD_NONE);
    const y = vidiocSFmt(k.app, fresh, CAP, {
      width: 1,
      height: 1,
      pixelformat: v4l2Fourcc("NOPE"),
    });
    assert.equal(y.pixelformat, V4L2_PIX_FMT_YUYV);
    assert.equal(
      errnoOf(() => vidiocGFmt(k.app, fresh, 2)),
      "EINVAL",
    );
    assert.equal(
      errnoOf(() => r.app.ioctl(r.cap, 0xc0045699, 0)),
      "ENOTTY",
    );
  });

  test("S_FMT while buffers are allocated is EBUSY", () => {
    const r = rig("arm64");
    mmapBuffers(r, 2);
    assert.equal(
      errnoOf(() =>
        vidiocSFmt(r.app, r.cap, CAP, { width: 640, height: 480, pixelformat: V4L2_PIX_FMT_YUYV }),
      ),
      "EBUSY",
    );
  });
});

describe("vivid capture: MMAP", () => {
  test("N frames with the test pattern, sequence and timestamps on the frame grid", () => {
    const r = rig("arm64");
    vidiocSParm(r.app, r.cap, CAP, { numerator: 1, denominator: 60 });
    const { maps, rb } = mmapBuffers(r, 3);
    assert.equal(rb.count, 3);
    assert.ok(
      rb.capabilities & V4L2_BUF_CAP_SUPPORTS_MMAP &&
        rb.capabilities & V4L2_BUF_CAP_SUPPORTS_DMABUF,
    );
    assert.equal(rb.capabilities & V4L2_BUF_CAP_SUPPORTS_MMAP_CACHE_HINTS, 0);
    for (let i = 0; i < 3; i++)
      vidiocQbuf(r.app, r.cap, { index: i, type: CAP, memory: V4L2_MEMORY_MMAP });
    const t0 = r.kernel.machine.now;
    vidiocStreamon(r.app, r.cap, CAP);
    let lastTs = 0;
    for (let n = 0; n < 6; n++) {
      const b = vidiocDqbuf(r.app, r.cap, CAP, V4L2_MEMORY_MMAP);
      assert.equal(b.sequence, n);
      assert.equal(b.bytesused, r.fmt.sizeimage);
      assert.equal(b.flags & (V4L2_BUF_FLAG_DONE | V4L2_BUF_FLAG_QUEUED), 0);
      assert.ok(b.flags & V4L2_BUF_FLAG_TIMESTAMP_MONOTONIC);
      assert.ok(b.flags & V4L2_BUF_FLAG_MAPPED);
      assert.ok(b.timestampNs > lastTs && b.timestampNs >= t0 + ((n + 1) * 1e9) / 60 - 1e3);
      lastTs = b.timestampNs;
      const got = maps[b.index]!.read(0, r.fmt.sizeimage);
      assert.equal(firstDiff(got, expected(r, n)), -1, `frame ${n}`);
      vidiocQbuf(r.app, r.cap, { index: b.index, type: CAP, memory: V4L2_MEMORY_MMAP });
    }
    vidiocStreamoff(r.app, r.cap, CAP);
    assert.equal(
      r.kernel.machine.violations.count,
      0,
      r.kernel.machine.violations.list.map((v) => v.message).join("\n"),
    );
  });

  test("a tick without a queued buffer drops the frame: the sequence skips", () => {
    const r = rig("x86-64");
    mmapBuffers(r, 1);
    vidiocQbuf(r.app, r.cap, { index: 0, type: CAP, memory: V4L2_MEMORY_MMAP });
    vidiocStreamon(r.app, r.cap, CAP);
    const a = vidiocDqbuf(r.app, r.cap, CAP, V4L2_MEMORY_MMAP);
    r.kernel.machine.clock.advance(100e6); // three frame periods at 30 fps with nothing queued
    vidiocQbuf(r.app, r.cap, { index: 0, type: CAP, memory: V4L2_MEMORY_MMAP });
    const b = vidiocDqbuf(r.app, r.cap, CAP, V4L2_MEMORY_MMAP);
    assert.equal(a.sequence, 0);
    assert.ok(b.sequence >= 3, `sequence ${b.sequence}`);
  });

  test("EXPBUF: the dma-buf mmap (with DMA_BUF_IOCTL_SYNC) reads the captured frame", () => {
    for (const allocator of ["dma-contig", "dma-sg"] as const) {
      const r = rig("arm64", { allocator, allowCacheHints: true });
      const rb = vidiocReqbufs(r.app, r.cap, {
        count: 2,
        type: CAP,
        memory: V4L2_MEMORY_MMAP,
        flags: V4L2_MEMORY_FLAG_NON_COHERENT,
      });
      const fds = [0, 1].map((i) =>
        vidiocExpbuf(r.app, r.cap, { type: CAP, index: i, flags: O_RDWR | O_CLOEXEC }),
      );
      const maps = fds.map((fd) =>
        r.app.mmap(rb.count && r.fmt.sizeimage, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0),
      );
      for (let i = 0; i < 2; i++)
        vidiocQbuf(r.app, r.cap, { index: i, type: CAP, memory: V4L2_MEMORY_MMAP });
      vidiocStreamon(r.app, r.cap, CAP);
      for (let n = 0; n < 4; n++) {
        const b = vidiocDqbuf(r.app, r.cap, CAP, V4L2_MEMORY_MMAP);
        dmaBufSync(r.app, fds[b.index]!, DMA_BUF_SYNC_START | DMA_BUF_SYNC_READ);
        const got = maps[b.index]!.read(0, r.fmt.sizeimage);
        dmaBufSync(r.app, fds[b.index]!, DMA_BUF_SYNC_END | DMA_BUF_SYNC_READ);
        assert.equal(firstDiff(got, expected(r, n)), -1, `${allocator} frame ${n}`);
        vidiocQbuf(r.app, r.cap, { index: b.index, type: CAP, memory: V4L2_MEMORY_MMAP });
      }
      vidiocStreamoff(r.app, r.cap, CAP);
      // Exported buffers are orphaned by REQBUFS(0) and live on until the fds go.
      assert.equal(
        vidiocReqbufs(r.app, r.cap, { count: 0, type: CAP, memory: V4L2_MEMORY_MMAP }).count,
        0,
      );
      assert.ok(maps[0]!.read(0, 16).length === 16);
      for (const mp of maps) r.app.munmap(mp);
      for (const fd of fds) r.app.close(fd);
      assert.equal(r.kernel.dmaBuf.buffers.length, 0);
      assert.equal(
        r.kernel.machine.violations.count,
        0,
        r.kernel.machine.violations.list.map((v) => v.message).join("\n"),
      );
    }
  });

  test("CREATE_BUFS adds buffers after REQBUFS; too small a size is EINVAL", () => {
    const r = rig("arm64");
    mmapBuffers(r, 2);
    const cb = vidiocCreateBufs(r.app, r.cap, {
      count: 2,
      memory: V4L2_MEMORY_MMAP,
      type: CAP,
      fmt: { width: 320, height: 180, pixelformat: V4L2_PIX_FMT_YUYV },
    });
    assert.deepEqual([cb.index, cb.count], [2, 2]);
    assert.equal(vidiocQuerybuf(r.app, r.cap, CAP, V4L2_MEMORY_MMAP, 3).length, r.fmt.sizeimage);
    assert.equal(
      errnoOf(() =>
        vidiocCreateBufs(r.app, r.cap, {
          count: 1,
          memory: V4L2_MEMORY_MMAP,
          type: CAP,
          fmt: { width: 320, height: 180, pixelformat: V4L2_PIX_FMT_YUYV, sizeimage: 1000 },
        }),
      ),
      "EINVAL",
    );
    assert.equal(
      errnoOf(() =>
        vidiocCreateBufs(r.app, r.cap, {
          count: 1,
          memory: V4L2_MEMORY_DMABUF,
          type: CAP,
          fmt: { width: 320, height: 180, pixelformat: V4L2_PIX_FMT_YUYV },
        }),
      ),
      "EINVAL",
      "memory model mismatch",
    );
  });
});

describe("vivid capture: DMABUF", () => {
  function heapCapture(
    profile: string,
    heap: string,
    allocator: "dma-contig" | "dma-sg",
    frames: number,
  ): Rig {
    const r = rig(profile, { allocator });
    const heapFd = r.app.open(`/dev/dma_heap/${heap}`, O_RDWR);
    const size = Math.ceil(r.fmt.sizeimage / 4096) * 4096;
    const fds = [0, 1].map(() => dmaHeapAlloc(r.app, heapFd, size));
    const maps = fds.map((fd) => r.app.mmap(size, PROT_READ, MAP_SHARED, fd, 0));
    const rb = vidiocReqbufs(r.app, r.cap, { count: 2, type: CAP, memory: V4L2_MEMORY_DMABUF });
    assert.equal(rb.count, 2);
    for (let i = 0; i < 2; i++)
      vidiocQbuf(r.app, r.cap, { index: i, type: CAP, memory: V4L2_MEMORY_DMABUF, fd: fds[i]! });
    vidiocStreamon(r.app, r.cap, CAP);
    for (let n = 0; n < frames; n++) {
      const b = vidiocDqbuf(r.app, r.cap, CAP, V4L2_MEMORY_DMABUF);
      assert.equal(b.fd, fds[b.index]);
      dmaBufSync(r.app, b.fd, DMA_BUF_SYNC_START | DMA_BUF_SYNC_READ);
      const got = maps[b.index]!.read(0, r.fmt.sizeimage);
      dmaBufSync(r.app, b.fd, DMA_BUF_SYNC_END | DMA_BUF_SYNC_READ);
      assert.equal(firstDiff(got, expected(r, n)), -1, `${heap}/${allocator} frame ${n}`);
      vidiocQbuf(r.app, r.cap, { index: b.index, type: CAP, memory: V4L2_MEMORY_DMABUF, fd: b.fd });
    }
    vidiocStreamoff(r.app, r.cap, CAP);
    return r;
  }

  test("CMA heap into dma-contig, system heap into dma-sg: the frames arrive", () => {
    for (const [heap, allocator] of [
      ["cma", "dma-contig"],
      ["system", "dma-sg"],
    ] as const) {
      const r = heapCapture("arm64", heap, allocator, 4);
      assert.equal(
        r.kernel.machine.violations.count,
        0,
        r.kernel.machine.violations.list.map((v) => v.message).join("\n"),
      );
    }
  });

  test("a scattered system-heap buffer into dma-contig without an IOMMU is refused with EFAULT at QBUF", () => {
    const attempt = (iommu: boolean): string => {
      const r = rig("arm64", { allocator: "dma-contig", capture: { iommu } });
      fragmentPages(r);
      const heapFd = r.app.open("/dev/dma_heap/system", O_RDWR);
      const fd = dmaHeapAlloc(r.app, heapFd, Math.ceil(r.fmt.sizeimage / 4096) * 4096);
      vidiocReqbufs(r.app, r.cap, { count: 1, type: CAP, memory: V4L2_MEMORY_DMABUF });
      return errnoOf(() =>
        vidiocQbuf(r.app, r.cap, { index: 0, type: CAP, memory: V4L2_MEMORY_DMABUF, fd }),
      );
    };
    assert.equal(attempt(false), "EFAULT");
    // Behind an IOMMU the same pages map as one contiguous IOVA range.
    assert.equal(attempt(true), "ok");
  });

  test("misuse: not a dma-buf, too small, too long a length", () => {
    const r = rig("arm64");
    vidiocReqbufs(r.app, r.cap, { count: 1, type: CAP, memory: V4L2_MEMORY_DMABUF });
    const memfd = r.app.memfdCreate("x", 0);
    assert.equal(
      errnoOf(() =>
        vidiocQbuf(r.app, r.cap, { index: 0, type: CAP, memory: V4L2_MEMORY_DMABUF, fd: memfd }),
      ),
      "EINVAL",
    );
    assert.equal(
      errnoOf(() =>
        vidiocQbuf(r.app, r.cap, { index: 0, type: CAP, memory: V4L2_MEMORY_DMABUF, fd: 999 }),
      ),
      "EINVAL",
    );
    const heapFd = r.app.open("/dev/dma_heap/cma", O_RDWR);
    const small = dmaHeapAlloc(r.app, heapFd, 4096);
    assert.equal(
      errnoOf(() =>
        vidiocQbuf(r.app, r.cap, { index: 0, type: CAP, memory: V4L2_MEMORY_DMABUF, fd: small }),
      ),
      "EINVAL",
    );
    const big = dmaHeapAlloc(r.app, heapFd, 30 * 4096);
    assert.equal(
      errnoOf(() =>
        vidiocQbuf(r.app, r.cap, {
          index: 0,
          type: CAP,
          memory: V4L2_MEMORY_DMABUF,
          fd: small,
          length: r.fmt.sizeimage,
        }),
      ),
      "EFAULT",
    );
    vidiocQbuf(r.app, r.cap, { index: 0, type: CAP, memory: V4L2_MEMORY_DMABUF, fd: big });
    assert.equal(
      errnoOf(() => vidiocExpbuf(r.app, r.cap, { type: CAP, index: 0 })),
      "EINVAL",
    );
  });
});

describe("vivid capture: USERPTR", () => {
  function memfdMapping(r: Rig, size: number): { fd: number; map: Mapping } {
    const fd = r.app.memfdCreate("frames", MFD_ALLOW_SEALING);
    r.app.ftruncate(fd, size);
    r.app.fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK);
    return { fd, map: r.app.mmap(size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0) };
  }

  test("memfd pages with dma-sg: N frames read back through the mapping", () => {
    const r = rig("arm64", { allocator: "dma-sg" });
    const size = Math.ceil(r.fmt.sizeimage / 4096) * 4096;
    const bufs = [memfdMapping(r, size), memfdMapping(r, size)];
    vidiocReqbufs(r.app, r.cap, { count: 2, type: CAP, memory: V4L2_MEMORY_USERPTR });
    const q = (i: number): void => {
      vidiocQbuf(r.app, r.cap, {
        index: i,
        type: CAP,
        memory: V4L2_MEMORY_USERPTR,
        userptr: bufs[i]!.map.addr,
        length: size,
      });
    };
    q(0);
    q(1);
    vidiocStreamon(r.app, r.cap, CAP);
    for (let n = 0; n < 4; n++) {
      const b = vidiocDqbuf(r.app, r.cap, CAP, V4L2_MEMORY_USERPTR);
      assert.equal(b.userptr, bufs[b.index]!.map.addr);
      const got = bufs[b.index]!.map.read(0, r.fmt.sizeimage);
      assert.equal(firstDiff(got, expected(r, n)), -1, `frame ${n}`);
      q(b.index);
    }
    vidiocStreamoff(r.app, r.cap, CAP);
    assert.equal(
      r.kernel.machine.violations.count,
      0,
      r.kernel.machine.violations.list.map((v) => v.message).join("\n"),
    );
  });

  test("misuse: unmapped address EFAULT, unaligned EINVAL, too short EINVAL, scattered pages into dma-contig EFAULT", () => {
    const r = rig("arm64", { allocator: "dma-contig" });
    const size = Math.ceil(r.fmt.sizeimage / 4096) * 4096;
    vidiocReqbufs(r.app, r.cap, { count: 1, type: CAP, memory: V4L2_MEMORY_USERPTR });
    const qb = (userptr: number, length: number): string =>
      errnoOf(() =>
        vidiocQbuf(r.app, r.cap, {
          index: 0,
          type: CAP,
          memory: V4L2_MEMORY_USERPTR,
          userptr,
          length,
        }),
      );
    assert.equal(qb(0xdead_0000, size), "EFAULT");
    const m = memfdMapping(r, size + 4096);
    assert.equal(qb(m.map.addr + 8, size), "EINVAL");
    assert.equal(qb(m.map.addr, 4096), "EINVAL");
    // shmem pages taken from a fragmented allocator are scattered.
    fragmentPages(r);
    const scattered = memfdMapping(r, size);
    assert.equal(qb(scattered.map.addr, size), "EFAULT");
    // Ordinary malloc memory is host memory in the model: no device can reach it.
    const malloced = r.app.alloc(size + 4096);
    assert.equal(qb(Math.ceil(malloced.addr / 4096) * 4096, size), "EFAULT");
  });
});

describe("coherent vs V4L2_MEMORY_FLAG_NON_COHERENT, and cache hints", () => {
  /** Captures `frames` frames into 2 MMAP buffers, reading each; returns cache-maintenance ns spent while streaming. */
  function stream(
    r: Rig,
    opts: { flags: number; qbufFlags: number; frames: number },
  ): { maintenanceNs: number; frames: Uint8Array[]; qflags: number[] } {
    const { maps } = mmapBuffers(r, 2, opts.flags);
    const before = r.kernel.machine.costs.snapshot()["cache-maintenance"].ns;
    const qflags: number[] = [];
    const q = (i: number): void => {
      qflags.push(
        vidiocQbuf(r.app, r.cap, {
          index: i,
          type: CAP,
          memory: V4L2_MEMORY_MMAP,
          flags: opts.qbufFlags,
        }).flags,
      );
    };
    q(0);
    q(1);
    vidiocStreamon(r.app, r.cap, CAP);
    const frames: Uint8Array[] = [];
    for (let n = 0; n < opts.frames; n++) {
      const b = vidiocDqbuf(r.app, r.cap, CAP, V4L2_MEMORY_MMAP);
      frames.push(maps[b.index]!.read(0, r.fmt.sizeimage));
      q(b.index);
    }
    const maintenanceNs = r.kernel.machine.costs.snapshot()["cache-maintenance"].ns - before;
    vidiocStreamoff(r.app, r.cap, CAP);
    return { maintenanceNs, frames, qflags };
  }

  test("arm64: coherent MMAP costs no cache maintenance, non-coherent does; both give the right frames", () => {
    const coh = rig("arm64", { allowCacheHints: true });
    const a = stream(coh, { flags: 0, qbufFlags: 0, frames: 4 });
    const nc = rig("arm64", { allowCacheHints: true });
    const rb = vidiocReqbufs(nc.app, nc.cap, {
      count: 1,
      type: CAP,
      memory: V4L2_MEMORY_MMAP,
      flags: V4L2_MEMORY_FLAG_NON_COHERENT,
    });
    assert.equal(rb.flags, V4L2_MEMORY_FLAG_NON_COHERENT);
    assert.ok(rb.capabilities & V4L2_BUF_CAP_SUPPORTS_MMAP_CACHE_HINTS);
    vidiocReqbufs(nc.app, nc.cap, { count: 0, type: CAP, memory: V4L2_MEMORY_MMAP });
    const b = stream(nc, { flags: V4L2_MEMORY_FLAG_NON_COHERENT, qbufFlags: 0, frames: 4 });
    assert.equal(a.maintenanceNs, 0);
    assert.ok(b.maintenanceNs > 0);
    for (const [n, f] of a.frames.entries()) assert.equal(firstDiff(f, expected(coh, n)), -1);
    for (const [n, f] of b.frames.entries()) assert.equal(firstDiff(f, expected(nc, n)), -1);
    assert.equal(coh.kernel.machine.violations.count + nc.kernel.machine.violations.count, 0);
  });

  test("NON_COHERENT is dropped (flags 0) when the queue does not allow cache hints", () => {
    const r = rig("arm64");
    const rb = vidiocReqbufs(r.app, r.cap, {
      count: 1,
      type: CAP,
      memory: V4L2_MEMORY_MMAP,
      flags: V4L2_MEMORY_FLAG_NON_COHERENT,
    });
    assert.equal(rb.flags, 0);
    assert.equal(rb.capabilities & V4L2_BUF_CAP_SUPPORTS_MMAP_CACHE_HINTS, 0);
  });

  test("hints on a non-coherent queue that allows them skip the maintenance", () => {
    const hinted = rig("arm64", { allowCacheHints: true });
    // A capture whose CPU never reads: both hints are honest.
    const { maps } = mmapBuffers(hinted, 2, V4L2_MEMORY_FLAG_NON_COHERENT);
    void maps;
    const before = hinted.kernel.machine.costs.snapshot()["cache-maintenance"].ns;
    const flags = V4L2_BUF_FLAG_NO_CACHE_INVALIDATE | V4L2_BUF_FLAG_NO_CACHE_CLEAN;
    for (let i = 0; i < 2; i++) {
      const q = vidiocQbuf(hinted.app, hinted.cap, {
        index: i,
        type: CAP,
        memory: V4L2_MEMORY_MMAP,
        flags,
      });
      assert.equal(q.flags & flags, flags, "the hints are kept in the returned buffer");
    }
    vidiocStreamon(hinted.app, hinted.cap, CAP);
    for (let n = 0; n < 4; n++) {
      const b = vidiocDqbuf(hinted.app, hinted.cap, CAP, V4L2_MEMORY_MMAP);
      vidiocQbuf(hinted.app, hinted.cap, {
        index: b.index,
        type: CAP,
        memory: V4L2_MEMORY_MMAP,
        flags,
      });
    }
    const spent = hinted.kernel.machine.costs.snapshot()["cache-maintenance"].ns - before;
    vidiocStreamoff(hinted.app, hinted.cap, CAP);
    assert.equal(spent, 0);
  });

  test("hints are cleared in the returned buffer when the queue does not allow them, and change nothing", () => {
    const r = rig("arm64", { allocator: "dma-sg" });
    const flags = V4L2_BUF_FLAG_NO_CACHE_INVALIDATE | V4L2_BUF_FLAG_NO_CACHE_CLEAN;
    const s = stream(r, { flags: 0, qbufFlags: flags, frames: 3 });
    for (const f of s.qflags) assert.equal(f & flags, 0);
    assert.ok(s.maintenanceNs > 0);
    for (const [n, f] of s.frames.entries()) assert.equal(firstDiff(f, expected(r, n)), -1);
    assert.equal(r.kernel.machine.violations.count, 0);
  });

  test("arm64: a lying NO_CACHE_INVALIDATE gives stale bytes and a violation naming the flag; x86-64 is right regardless", () => {
    const lie = rig("arm64", { allowCacheHints: true });
    const s = stream(lie, {
      flags: V4L2_MEMORY_FLAG_NON_COHERENT,
      qbufFlags: V4L2_BUF_FLAG_NO_CACHE_INVALIDATE,
      frames: 4,
    });
    const wrong = s.frames.filter((f, n) => firstDiff(f, expected(lie, n)) !== -1).length;
    assert.ok(wrong > 0, "some frame read stale cache lines");
    const vs = lie.kernel.machine.violations.list;
    const stale = vs.find((v) => v.kind === "stale-cpu-read");
    assert.ok(stale !== undefined, vs.map((v) => v.kind).join(","));
    assert.match(stale.hint, /V4L2_BUF_FLAG_NO_CACHE_INVALIDATE/);
    assert.match(stale.region ?? "", /vivid|mmap/);

    const x86 = rig("x86-64", { allowCacheHints: true });
    const t = stream(x86, {
      flags: V4L2_MEMORY_FLAG_NON_COHERENT,
      qbufFlags: V4L2_BUF_FLAG_NO_CACHE_INVALIDATE,
      frames: 4,
    });
    for (const [n, f] of t.frames.entries()) assert.equal(firstDiff(f, expected(x86, n)), -1);
    assert.equal(x86.kernel.machine.violations.ofKind("stale-cpu-read").length, 0);
  });
});
