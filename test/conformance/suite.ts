/**
 * A backend-agnostic conformance suite: the Linux kernel's own dma-buf selftests
 * (tools/testing/selftests/dmabuf-heaps/dmabuf-heap.c,
 * tools/testing/selftests/drivers/dma-buf/udmabuf.c, tools/testing/selftests/sync/*)
 * rewritten on the {@link Uapi} contract and the typed ioctl wrappers of src/uapi/lib.ts,
 * plus the errno conditions of drivers/dma-buf/{dma-buf,dma-heap,udmabuf,sync_file,
 * sw_sync}.c that the selftests leave implicit.
 *
 * Nothing here reaches into a kernel's internals: every case runs unchanged against the
 * simulator (SimUapi) and the real kernel (LinuxUapi, src/uapi/linux.ts). The threaded stress
 * tests of tools/testing/selftests/sync are run as the same operations interleaved in
 * one thread, in the order their synchronisation forces.
 */

import assert from "node:assert/strict";
import { test } from "node:test";
import {
  DMA_BUF_IOCTL_EXPORT_SYNC_FILE,
  DMA_BUF_IOCTL_SYNC,
  DMA_BUF_SYNC_END,
  DMA_BUF_SYNC_READ,
  DMA_BUF_SYNC_RW,
  DMA_BUF_SYNC_START,
  DMA_BUF_SYNC_WRITE,
} from "../../src/include/uapi/dma-buf.js";
import { DMA_HEAP_IOC_MAGIC } from "../../src/include/uapi/dma-heap.js";
import { DRM_CLOEXEC, DRM_RDWR } from "../../src/include/uapi/drm.js";
import {
  F_ADD_SEALS,
  F_GET_SEALS,
  F_GETFD,
  F_SEAL_FUTURE_WRITE,
  F_SEAL_GROW,
  F_SEAL_SEAL,
  F_SEAL_SHRINK,
  F_SEAL_WRITE,
  FD_CLOEXEC,
  MAP_PRIVATE,
  MAP_SHARED,
  MFD_ALLOW_SEALING,
  MFD_CLOEXEC,
  O_CLOEXEC,
  O_RDWR,
  POLLERR,
  POLLIN,
  POLLNVAL,
  POLLOUT,
  PROT_READ,
  PROT_WRITE,
  SEEK_CUR,
  SEEK_END,
  SEEK_SET,
} from "../../src/include/uapi/fcntl.js";
import { _IOWR } from "../../src/include/uapi/ioctl.js";
import type { CStruct } from "../../src/include/uapi/struct.js";
import {
  SIZEOF_SW_SYNC_GET_DEADLINE,
  SIZEOF_SYNC_FENCE_INFO,
  SIZEOF_SYNC_FILE_INFO,
  SIZEOF_SYNC_MERGE_DATA,
  SIZEOF_SYNC_SET_DEADLINE,
  SW_SYNC_GET_DEADLINE,
  SYNC_IOC_FILE_INFO,
  SYNC_IOC_MERGE,
  SYNC_IOC_SET_DEADLINE,
} from "../../src/include/uapi/sync-file.js";
import {
  SIZEOF_UDMABUF_CREATE_LIST,
  UDMABUF_CREATE_LIST,
  UDMABUF_FLAGS_CLOEXEC,
} from "../../src/include/uapi/udmabuf.js";
import { VGEM_FENCE_WRITE } from "../../src/include/uapi/vgem-drm.js";
import {
  drmGemClose,
  drmPrimeFdToHandle,
  drmPrimeHandleToFd,
  vgemFenceAttach,
  vgemFenceSignal,
} from "../../src/uapi/drm.js";
import {
  dmaBufExportSyncFile,
  dmaBufImportSyncFile,
  dmaBufSetName,
  dmaBufSize,
  dmaBufSync,
  dmaHeapAlloc,
  swSyncCreateFence,
  swSyncGetDeadline,
  swSyncInc,
  syncFileInfo,
  syncFileStatus,
  syncMerge,
  udmabufCreate,
  udmabufCreateList,
  withUserStruct,
} from "../../src/uapi/lib.js";
import type { Mapping, Uapi } from "../../src/uapi/uapi.js";
import { expectErrno, type Fds, openVgem, scoped } from "./case-helpers.js";
import { drmCases } from "./drm-cases.js";
import { swiotlbCases } from "./swiotlb-cases.js";
import { vfsCases } from "./vfs-cases.js";
import { vim2mCases } from "./vim2m-cases.js";
import { vividCases } from "./vivid-cases.js";
import { vividFormatCases } from "./vivid-format-cases.js";

export { expectErrno, openVgem };

/** The debugfs node of sw_sync (drivers/dma-buf/sw_sync.c). */
export const SW_SYNC_PATH = "/sys/kernel/debug/sync/sw_sync";
export const DMA_HEAP_DIR = "/dev/dma_heap";
export const SYSTEM_HEAP = `${DMA_HEAP_DIR}/system`;
export const UDMABUF_DEV = "/dev/udmabuf";

/** What a case needs from the backend; a runner skips cases whose needs it lacks. */
export type Capability =
  | "system-heap"
  | "udmabuf"
  | "sw_sync"
  | "memfd"
  | "hugetlb"
  /** SYNC_IOC_SET_DEADLINE and SW_SYNC_GET_DEADLINE (recent kernels only: sw_sync commit 70e67aaec2f4). */
  | "fence-deadline"
  /** A vgem device at /dev/dri/card<N> (drivers/gpu/drm/vgem): PRIME import and its fence ioctls. */
  | "vgem"
  /** vivid's video capture node at /dev/video0 and output node at /dev/video1 (./vivid-cases.ts). */
  | "vivid"
  /** A vim2m node at some /dev/videoN (./vim2m-cases.ts). */
  | "vim2m"
  /**
   * RAM above 4 GiB where user and hugetlb pages come from, and swiotlb's debugfs
   * (/sys/kernel/debug/swiotlb/io_tlb_used): a 32-bit device bounces (./swiotlb-cases.ts).
   */
  | "swiotlb-highmem";

/** The selftest (or kernel source) a case reproduces: runners pick suites by this. */
export type SuiteName =
  | "dmabuf-heaps"
  | "dma-buf"
  | "udmabuf"
  | "memfd"
  | "vfs"
  | "procfs"
  | "sync"
  | "drm"
  | "vivid"
  | "vim2m"
  /** The swiotlb bounce of a 32-bit importer (./swiotlb-cases.ts): needs RAM above 4 GiB. */
  | "swiotlb";

export interface ConformanceCase {
  readonly suite: SuiteName;
  readonly name: string;
  readonly needs?: readonly Capability[];
  /** Set when the case is known to fail on some backend; says why. */
  readonly todo?: string;
  run(u: Uapi): void;
}

// ---------------------------------------------------------------------------
// Helpers: only Uapi and lib.ts.

const ONE_MEG = 1024 * 1024;
/** Both supported profiles (and the real arm64/x86-64 kernels the suite targets) use 4 KiB pages. */
const PAGE = 4096;
/** libsync's FENCE_STATUS_* (tools/testing/selftests/sync/sync.h). */
const FENCE_STATUS_ERROR = -1;
const FENCE_STATUS_ACTIVE = 0;
const FENCE_STATUS_SIGNALED = 1;
/** -ENOENT: the error sw_sync_debugfs_release() sets on fences it signals. */
const ENOENT_STATUS = -2;

/** sync_wait() of tools/testing/selftests/sync/sync.c: poll(POLLIN|POLLERR); > 0 when ready. */
function syncWait(u: Uapi, fd: number, timeoutMs: number): number {
  const r = u.poll([{ fd, events: POLLIN | POLLERR }], timeoutMs);
  return r.filter((x) => x !== 0).length;
}

/** SYNC_IOC_SET_DEADLINE on a sync_file. */
function setDeadline(u: Uapi, fd: number, deadlineNs: bigint, pad = 0n): void {
  withUserStruct(u, SIZEOF_SYNC_SET_DEADLINE, (s, addr) => {
    s.setU64(0, deadlineNs).setU64(8, pad);
    u.ioctl(fd, SYNC_IOC_SET_DEADLINE, addr);
  });
}

/** sync_fence_count_with_status(). */
function countWithStatus(u: Uapi, fd: number, status: number): number {
  const info = syncFileInfo(u, fd);
  return info.fences.filter((f) => (status < 0 ? f.status < 0 : f.status === status)).length;
}

/** sw_sync_timeline_is_valid() / sw_sync_fence_is_valid(): fcntl(F_GETFD) works. */
function isValidFd(u: Uapi, fd: number): boolean {
  if (fd < 0) return false;
  try {
    return u.fcntl(fd, F_GETFD, 0) >= 0;
  } catch {
    return false;
  }
}

/** An fd number that is not open: open something, close it. */
function closedFd(u: Uapi, path = SYSTEM_HEAP): number {
  const fd = u.open(path, O_RDWR);
  u.close(fd);
  return fd;
}

/** A memfd of `size` bytes, sealed with F_SEAL_SHRINK as udmabuf wants it. */
function sealedMemfd(u: Uapi, fds: Fds, size: number, seals = F_SEAL_SHRINK): number {
  const memfd = fds.add(u.memfdCreate("udmabuf-test", MFD_ALLOW_SEALING));
  u.ftruncate(memfd, size);
  u.fcntl(memfd, F_ADD_SEALS, seals);
  return memfd;
}

function pattern(len: number, seed: number): Uint8Array {
  const b = new Uint8Array(len);
  for (let i = 0; i < len; i++) b[i] = (i * 31 + seed * 7 + (i >> 12)) & 0xff;
  return b;
}

/** A 32-bit linear congruential generator for the random stress tests (deterministic). */
function lcg(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1103515245) + 12345) >>> 0;
    return s >>> 1; // 0 .. 2^31-1, like rand() with RAND_MAX = INT_MAX
  };
}

/** Raw DMA_HEAP_IOCTL_ALLOC with a struct of `size` bytes: `fill` writes its fields. */
function rawHeapAlloc(
  u: Uapi,
  heapFd: number,
  size: number,
  fill: (s: CStruct) => void,
  nr = 0,
): number {
  return withUserStruct(u, size, (s, addr) => {
    fill(s);
    u.ioctl(heapFd, _IOWR(DMA_HEAP_IOC_MAGIC, nr, size), addr);
    return s.u32(8);
  });
}

function heapBuffer(u: Uapi, fds: Fds, len: number): number {
  const heap = fds.add(u.open(SYSTEM_HEAP, O_RDWR));
  return fds.add(dmaHeapAlloc(u, heap, len));
}

function vgemDevice(u: Uapi, fds: Fds): number {
  const fd = openVgem(u);
  assert.ok(fd >= 0, "no vgem device at /dev/dri/card*");
  return fds.add(fd);
}

// ---------------------------------------------------------------------------
// tools/testing/selftests/dmabuf-heaps/dmabuf-heap.c and drivers/dma-buf/dma-heap.c

const heapCases: ConformanceCase[] = [
  {
    suite: "dmabuf-heaps",
    name: "readdir /dev/dma_heap lists the system heap",
    needs: ["system-heap"],
    run(u) {
      const names = u.readdir(DMA_HEAP_DIR).filter((n) => n !== "." && n !== "..");
      assert.ok(names.includes("system"), `heaps: ${names.join(", ")}`);
    },
  },
  {
    suite: "dmabuf-heaps",
    name: "test_alloc_and_import: alloc 1 MiB, mmap, SYNC_START, memset, SYNC_END",
    needs: ["system-heap"],
    run: scoped((u, fds) => {
      const heap = fds.add(u.open(SYSTEM_HEAP, O_RDWR));
      const buf = fds.add(dmaHeapAlloc(u, heap, ONE_MEG, O_RDWR | O_CLOEXEC, 0));
      assert.ok(buf >= 0);
      const p = u.mmap(ONE_MEG, PROT_READ | PROT_WRITE, MAP_SHARED, buf, 0);
      try {
        dmaBufSync(u, buf, DMA_BUF_SYNC_START | DMA_BUF_SYNC_RW);
        p.fill(0, ONE_MEG / 2, 1);
        p.fill(ONE_MEG / 2, ONE_MEG / 2, 0);
        dmaBufSync(u, buf, DMA_BUF_SYNC_END | DMA_BUF_SYNC_RW);

        dmaBufSync(u, buf, DMA_BUF_SYNC_START | DMA_BUF_SYNC_RW);
        assert.deepEqual([...p.read(0, 4)], [1, 1, 1, 1]);
        assert.deepEqual([...p.read(ONE_MEG / 2 - 2, 4)], [1, 1, 0, 0]);
        p.fill(0, ONE_MEG, 0xff);
        dmaBufSync(u, buf, DMA_BUF_SYNC_END | DMA_BUF_SYNC_RW);

        dmaBufSync(u, buf, DMA_BUF_SYNC_START | DMA_BUF_SYNC_READ);
        const all = p.read(0, ONE_MEG);
        assert.ok(
          all.every((b) => b === 0xff),
          "memset(0xff) visible everywhere",
        );
        dmaBufSync(u, buf, DMA_BUF_SYNC_END | DMA_BUF_SYNC_READ);
      } finally {
        u.munmap(p);
      }
    }),
  },
  {
    suite: "dmabuf-heaps",
    name: "test_alloc_and_import: the heap buffer imports into vgem (PRIME_FD_TO_HANDLE)",
    needs: ["system-heap", "vgem"],
    run: scoped((u, fds) => {
      const heap = fds.add(u.open(SYSTEM_HEAP, O_RDWR));
      const buf = fds.add(dmaHeapAlloc(u, heap, ONE_MEG, O_RDWR | O_CLOEXEC, 0));
      const p = u.mmap(ONE_MEG, PROT_READ | PROT_WRITE, MAP_SHARED, buf, 0);
      try {
        dmaBufSync(u, buf, DMA_BUF_SYNC_START | DMA_BUF_SYNC_RW);
        p.fill(0, ONE_MEG / 2, 1);
        p.fill(ONE_MEG / 2, ONE_MEG / 2, 0);
        dmaBufSync(u, buf, DMA_BUF_SYNC_END | DMA_BUF_SYNC_RW);
        const vgem = vgemDevice(u, fds);
        const handle = drmPrimeFdToHandle(u, vgem, buf);
        assert.ok(handle > 0);
        // drm_prime.c keeps a dma-buf → handle cache per file: the same buffer, the same handle.
        assert.equal(drmPrimeFdToHandle(u, vgem, buf), handle, "re-import");
        // Exporting an imported object hands back the original dma-buf.
        const again = fds.add(drmPrimeHandleToFd(u, vgem, handle, DRM_CLOEXEC | DRM_RDWR));
        assert.equal(dmaBufSize(u, again), ONE_MEG);
        dmaBufSync(u, buf, DMA_BUF_SYNC_START | DMA_BUF_SYNC_RW);
        p.fill(0, ONE_MEG, 0xff);
        dmaBufSync(u, buf, DMA_BUF_SYNC_END | DMA_BUF_SYNC_RW);
        drmGemClose(u, vgem, handle);
        expectErrno("EINVAL", () => drmGemClose(u, vgem, handle), "handle already closed");
      } finally {
        u.munmap(p);
      }
    }),
  },
  ...[4 * 1024, ONE_MEG].map(
    (size): ConformanceCase => ({
      suite: "dmabuf-heaps",
      name: `test_alloc_zeroed: ${size / 1024}k buffers are zeroed after others were freed`,
      needs: ["system-heap"],
      run: scoped((u, fds) => {
        const heap = fds.add(u.open(SYSTEM_HEAP, O_RDWR));
        // Allocate, fill with 0xff and free 32 buffers, so the next ones may reuse the pages.
        const bufs: number[] = [];
        for (let i = 0; i < 32; i++) {
          const buf = fds.add(dmaHeapAlloc(u, heap, size));
          const p = u.mmap(size, PROT_READ | PROT_WRITE, MAP_SHARED, buf, 0);
          dmaBufSync(u, buf, DMA_BUF_SYNC_START | DMA_BUF_SYNC_RW);
          p.fill(0, size, 0xff);
          dmaBufSync(u, buf, DMA_BUF_SYNC_END | DMA_BUF_SYNC_RW);
          u.munmap(p);
          bufs.push(buf);
        }
        for (const b of bufs) fds.close(b);
        for (let i = 0; i < 32; i++) {
          const buf = fds.add(dmaHeapAlloc(u, heap, size));
          const p = u.mmap(size, PROT_READ | PROT_WRITE, MAP_SHARED, buf, 0);
          dmaBufSync(u, buf, DMA_BUF_SYNC_START | DMA_BUF_SYNC_RW);
          const bytes = p.read(0, size);
          dmaBufSync(u, buf, DMA_BUF_SYNC_END | DMA_BUF_SYNC_RW);
          u.munmap(p);
          const at = bytes.findIndex((b) => b !== 0);
          assert.equal(at, -1, `buffer ${i} not zeroed @ ${at}`);
        }
      }),
    }),
  ),
  {
    suite: "dmabuf-heaps",
    name: "allocations are page aligned; lseek(SEEK_END) gives the size",
    needs: ["system-heap"],
    run: scoped((u, fds) => {
      const heap = fds.add(u.open(SYSTEM_HEAP, O_RDWR));
      const buf = fds.add(dmaHeapAlloc(u, heap, 1));
      assert.equal(dmaBufSize(u, buf), PAGE);
      const big = fds.add(dmaHeapAlloc(u, heap, 3 * PAGE + 5));
      assert.equal(dmaBufSize(u, big), 4 * PAGE);
    }),
  },
  {
    suite: "dmabuf-heaps",
    name: "a length PAGE_ALIGN wraps to 0 (above 2^64 - 4096) → EINVAL (dma-heap.c dma_heap_ioctl_allocate)",
    needs: ["system-heap"],
    run: scoped((u, fds) => {
      const heap = fds.add(u.open(SYSTEM_HEAP, O_RDWR));
      for (const len of [0xffff_ffff_ffff_ffffn, 0xffff_ffff_ffff_f001n]) {
        expectErrno(
          "EINVAL",
          () =>
            rawHeapAlloc(u, heap, 24, (s) => {
              s.setU64(0, len).setU32(12, O_RDWR | O_CLOEXEC);
            }),
          `len ${len}`,
        );
      }
    }),
  },
  {
    suite: "dmabuf-heaps",
    name: "system heap MAP_PRIVATE: one page is copy-on-write, more pages → EINVAL (system_heap_mmap maps page by page; remap_pfn_range needs a COW mapping whole)",
    needs: ["system-heap"],
    run: scoped((u, fds) => {
      const heap = fds.add(u.open(SYSTEM_HEAP, O_RDWR));
      const buf = fds.add(dmaHeapAlloc(u, heap, 4 * PAGE));
      expectErrno("EINVAL", () => u.mmap(2 * PAGE, PROT_READ, MAP_PRIVATE, buf, 0), "2 pages");
      expectErrno("EINVAL", () => u.mmap(4 * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE, buf, 0));
      const shared = u.mmap(4 * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, buf, 0);
      const priv = u.mmap(PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE, buf, PAGE);
      try {
        dmaBufSync(u, buf, DMA_BUF_SYNC_START | DMA_BUF_SYNC_RW);
        shared.write(PAGE, new Uint8Array([3, 4]));
        assert.deepEqual([...priv.read(0, 2)], [3, 4], "before a write, the buffer's page");
        priv.write(0, new Uint8Array([9]));
        assert.deepEqual([...priv.read(0, 2)], [9, 4]);
        assert.deepEqual([...shared.read(PAGE, 2)], [3, 4], "the private write is a copy");
        dmaBufSync(u, buf, DMA_BUF_SYNC_END | DMA_BUF_SYNC_RW);
      } finally {
        u.munmap(priv);
        u.munmap(shared);
      }
    }),
  },
  {
    suite: "dmabuf-heaps",
    name: "test_alloc_compat: older (16-byte) struct",
    needs: ["system-heap"],
    run: scoped((u, fds) => {
      const heap = fds.add(u.open(SYSTEM_HEAP, O_RDWR));
      const fd = rawHeapAlloc(u, heap, 16, (s) => {
        s.setU64(0, ONE_MEG);
        s.setU32(8, 0);
        s.setU32(12, O_RDWR | O_CLOEXEC);
      });
      fds.add(fd);
      assert.ok(fd > 0);
      assert.equal(dmaBufSize(u, fd), ONE_MEG);
    }),
  },
  {
    suite: "dmabuf-heaps",
    name: "test_alloc_compat: newer (48-byte) struct with garbage after heap_flags",
    needs: ["system-heap"],
    run: scoped((u, fds) => {
      const heap = fds.add(u.open(SYSTEM_HEAP, O_RDWR));
      const fd = rawHeapAlloc(u, heap, 48, (s) => {
        s.setU64(0, ONE_MEG);
        s.setU32(8, 0);
        s.setU32(12, O_RDWR | O_CLOEXEC);
        s.setU64(16, 0);
        s.setU64(24, 0xffffffff);
        s.setU64(32, 0x88888888);
        s.setU64(40, 0x11111111);
      });
      fds.add(fd);
      assert.ok(fd > 0);
      assert.equal(dmaBufSize(u, fd), ONE_MEG);
    }),
  },
  {
    suite: "dmabuf-heaps",
    name: "test_alloc_errors: invalid fd → EBADF",
    needs: ["system-heap"],
    run(u) {
      const bad = closedFd(u);
      expectErrno("EBADF", () => dmaHeapAlloc(u, bad, ONE_MEG, O_RDWR | O_CLOEXEC, 0x111111));
    },
  },
  {
    suite: "dmabuf-heaps",
    name: "test_alloc_errors: invalid heap flags → EINVAL",
    needs: ["system-heap"],
    run: scoped((u, fds) => {
      const heap = fds.add(u.open(SYSTEM_HEAP, O_RDWR));
      expectErrno("EINVAL", () => dmaHeapAlloc(u, heap, ONE_MEG, O_RDWR | O_CLOEXEC, 0x111111));
    }),
  },
  {
    suite: "dmabuf-heaps",
    name: "test_alloc_errors: invalid fd flags → EINVAL",
    needs: ["system-heap"],
    run: scoped((u, fds) => {
      const heap = fds.add(u.open(SYSTEM_HEAP, O_RDWR));
      expectErrno("EINVAL", () => dmaHeapAlloc(u, heap, ONE_MEG, ~(O_RDWR | O_CLOEXEC) >>> 0, 0));
    }),
  },
  {
    suite: "dmabuf-heaps",
    name: "dma_heap_buffer_alloc: len 0 → EINVAL",
    needs: ["system-heap"],
    run: scoped((u, fds) => {
      const heap = fds.add(u.open(SYSTEM_HEAP, O_RDWR));
      expectErrno("EINVAL", () => dmaHeapAlloc(u, heap, 0));
    }),
  },
  {
    suite: "dmabuf-heaps",
    name: "dma_heap_ioctl_allocate: fd field non-zero on input → EINVAL",
    needs: ["system-heap"],
    run: scoped((u, fds) => {
      const heap = fds.add(u.open(SYSTEM_HEAP, O_RDWR));
      expectErrno("EINVAL", () =>
        rawHeapAlloc(u, heap, 24, (s) => {
          s.setU64(0, ONE_MEG);
          s.setU32(8, 5);
          s.setU32(12, O_RDWR);
        }),
      );
    }),
  },
  {
    suite: "dmabuf-heaps",
    name: "dma_heap_ioctl: ioctl number past the table → EINVAL",
    needs: ["system-heap"],
    run: scoped((u, fds) => {
      const heap = fds.add(u.open(SYSTEM_HEAP, O_RDWR));
      expectErrno("EINVAL", () =>
        rawHeapAlloc(
          u,
          heap,
          24,
          (s) => {
            s.setU64(0, ONE_MEG);
          },
          1,
        ),
      );
    }),
  },
  {
    suite: "dmabuf-heaps",
    name: "fd_flags: O_CLOEXEC sets close-on-exec, O_RDWR alone does not",
    needs: ["system-heap"],
    run: scoped((u, fds) => {
      const heap = fds.add(u.open(SYSTEM_HEAP, O_RDWR));
      const a = fds.add(dmaHeapAlloc(u, heap, PAGE, O_RDWR | O_CLOEXEC));
      const b = fds.add(dmaHeapAlloc(u, heap, PAGE, O_RDWR));
      assert.equal(u.fcntl(a, F_GETFD, 0) & FD_CLOEXEC, FD_CLOEXEC);
      assert.equal(u.fcntl(b, F_GETFD, 0) & FD_CLOEXEC, 0);
    }),
  },
  {
    suite: "dmabuf-heaps",
    name: "heap device is not seekable (nonseekable_open) → ESPIPE",
    needs: ["system-heap"],
    run: scoped((u, fds) => {
      const heap = fds.add(u.open(SYSTEM_HEAP, O_RDWR));
      expectErrno("ESPIPE", () => u.lseek(heap, 0, SEEK_END));
    }),
  },
];

// ---------------------------------------------------------------------------
// drivers/dma-buf/dma-buf.c: the dma-buf fd's own operations.

const dmaBufCases: ConformanceCase[] = [
  {
    suite: "dma-buf",
    name: "DMA_BUF_IOCTL_SYNC: unknown flag bits → EINVAL",
    needs: ["system-heap"],
    run: scoped((u, fds) => {
      const buf = heapBuffer(u, fds, PAGE);
      expectErrno("EINVAL", () => dmaBufSync(u, buf, DMA_BUF_SYNC_RW | 0x8), "bit 3");
      expectErrno("EINVAL", () => dmaBufSync(u, buf, DMA_BUF_SYNC_RW | 0x100), "bit 8");
      expectErrno(
        "EINVAL",
        () => dmaBufSync(u, buf, (1n << 40n) | BigInt(DMA_BUF_SYNC_RW)),
        "bit 40",
      );
      expectErrno(
        "EINVAL",
        () => dmaBufSync(u, buf, (1n << 63n) | BigInt(DMA_BUF_SYNC_RW)),
        "bit 63",
      );
    }),
  },
  {
    suite: "dma-buf",
    name: "DMA_BUF_IOCTL_SYNC: neither READ nor WRITE → EINVAL",
    needs: ["system-heap"],
    run: scoped((u, fds) => {
      const buf = heapBuffer(u, fds, PAGE);
      expectErrno("EINVAL", () => dmaBufSync(u, buf, DMA_BUF_SYNC_START), "START");
      expectErrno("EINVAL", () => dmaBufSync(u, buf, DMA_BUF_SYNC_END), "END");
      for (const dir of [DMA_BUF_SYNC_READ, DMA_BUF_SYNC_WRITE, DMA_BUF_SYNC_RW]) {
        dmaBufSync(u, buf, DMA_BUF_SYNC_START | dir);
        dmaBufSync(u, buf, DMA_BUF_SYNC_END | dir);
      }
    }),
  },
  {
    suite: "dma-buf",
    name: "DMA_BUF_SET_NAME: 31 bytes ok, 32 bytes (no NUL within DMA_BUF_NAME_LEN) → EINVAL",
    needs: ["system-heap"],
    run: scoped((u, fds) => {
      const buf = heapBuffer(u, fds, PAGE);
      dmaBufSetName(u, buf, "camera-frame");
      dmaBufSetName(u, buf, "x".repeat(31));
      dmaBufSetName(u, buf, "");
      expectErrno("EINVAL", () => dmaBufSetName(u, buf, "y".repeat(32)));
      expectErrno("EINVAL", () => dmaBufSetName(u, buf, "z".repeat(100)));
    }),
  },
  {
    suite: "dma-buf",
    name: "dma_buf_llseek: SEEK_END(0) is the size, SEEK_SET(0) is 0, others EINVAL",
    needs: ["system-heap"],
    run: scoped((u, fds) => {
      const buf = heapBuffer(u, fds, 5 * PAGE);
      assert.equal(u.lseek(buf, 0, SEEK_END), 5 * PAGE);
      assert.equal(u.lseek(buf, 0, SEEK_SET), 0);
      expectErrno("EINVAL", () => u.lseek(buf, 0, SEEK_CUR), "SEEK_CUR");
      expectErrno("EINVAL", () => u.lseek(buf, 1, SEEK_SET), "SEEK_SET 1");
      expectErrno("EINVAL", () => u.lseek(buf, -1, SEEK_END), "SEEK_END -1");
      expectErrno("EINVAL", () => u.lseek(buf, PAGE, SEEK_END), "SEEK_END +PAGE");
    }),
  },
  {
    suite: "dma-buf",
    name: "dma_buf_mmap_internal: beyond the buffer's size → EINVAL",
    needs: ["system-heap"],
    run: scoped((u, fds) => {
      const buf = heapBuffer(u, fds, 2 * PAGE);
      expectErrno("EINVAL", () => u.mmap(3 * PAGE, PROT_READ, MAP_SHARED, buf, 0), "length");
      expectErrno("EINVAL", () => u.mmap(PAGE, PROT_READ, MAP_SHARED, buf, 2 * PAGE), "offset");
      expectErrno("EINVAL", () => u.mmap(2 * PAGE, PROT_READ, MAP_SHARED, buf, PAGE), "straddle");
      const m = u.mmap(PAGE, PROT_READ, MAP_SHARED, buf, PAGE);
      u.munmap(m);
    }),
  },
  {
    suite: "dma-buf",
    name: "dma_buf_ioctl: unknown command → ENOTTY",
    needs: ["system-heap"],
    run: scoped((u, fds) => {
      const buf = heapBuffer(u, fds, PAGE);
      withUserStruct(u, 64, (_s, addr) => {
        expectErrno("ENOTTY", () => u.ioctl(buf, _IOWR("b", 0x7f, 8), addr), "nr 0x7f");
        // DMA_BUF_IOCTL_SYNC's number with the wrong size is a different command.
        expectErrno("ENOTTY", () => u.ioctl(buf, _IOWR("b", 0, 16), addr), "SYNC size 16");
        // A sync_file ioctl on a dma-buf.
        expectErrno("ENOTTY", () => u.ioctl(buf, SYNC_IOC_FILE_INFO, addr), "FILE_INFO");
      });
    }),
  },
  {
    suite: "dma-buf",
    name: "a dma-buf ioctl on a memfd → ENOTTY",
    needs: ["memfd"],
    run: scoped((u, fds) => {
      const memfd = fds.add(u.memfdCreate("not-a-dmabuf", 0));
      u.ftruncate(memfd, PAGE);
      expectErrno("ENOTTY", () => dmaBufSync(u, memfd, DMA_BUF_SYNC_START | DMA_BUF_SYNC_RW));
      expectErrno("ENOTTY", () => dmaBufExportSyncFile(u, memfd, DMA_BUF_SYNC_READ));
    }),
  },
  {
    suite: "dma-buf",
    name: "DMA_BUF_IOCTL_EXPORT_SYNC_FILE: flags must be READ, WRITE or both",
    needs: ["system-heap"],
    run: scoped((u, fds) => {
      const buf = heapBuffer(u, fds, PAGE);
      expectErrno("EINVAL", () => dmaBufExportSyncFile(u, buf, 0), "0");
      expectErrno("EINVAL", () => dmaBufExportSyncFile(u, buf, DMA_BUF_SYNC_RW | 0x4), "END bit");
      expectErrno("EINVAL", () => dmaBufExportSyncFile(u, buf, 0x80000000), "bit 31");
    }),
  },
  {
    suite: "dma-buf",
    name: "DMA_BUF_IOCTL_EXPORT_SYNC_FILE without fences: a signalled stub fence",
    needs: ["system-heap"],
    run: scoped((u, fds) => {
      const buf = heapBuffer(u, fds, PAGE);
      for (const flags of [DMA_BUF_SYNC_READ, DMA_BUF_SYNC_WRITE, DMA_BUF_SYNC_RW]) {
        const sf = fds.add(dmaBufExportSyncFile(u, buf, flags));
        assert.ok(sf >= 0);
        assert.equal(u.fcntl(sf, F_GETFD, 0) & FD_CLOEXEC, FD_CLOEXEC, "O_CLOEXEC");
        assert.equal(syncFileStatus(u, sf), 1);
        const info = syncFileInfo(u, sf);
        // The stub is one fence. (Its driver name is not checked: since Linux 6.17,
        // dma_fence_driver_name() reports a signalled fence's as "detached-driver".)
        assert.equal(info.numFences, 1);
        assert.equal(info.fences[0]!.status, 1);
        assert.ok(syncWait(u, sf, 0) > 0);
        fds.close(sf);
      }
    }),
  },
  {
    suite: "dma-buf",
    name: "DMA_BUF_IOCTL_IMPORT_SYNC_FILE: bad flags → EINVAL, not a sync_file → EINVAL",
    needs: ["system-heap", "sw_sync"],
    run: scoped((u, fds) => {
      const buf = heapBuffer(u, fds, PAGE);
      const tl = fds.add(u.open(SW_SYNC_PATH, O_RDWR));
      const f = fds.add(swSyncCreateFence(u, tl, 1));
      expectErrno("EINVAL", () => dmaBufImportSyncFile(u, buf, 0, f), "flags 0");
      expectErrno("EINVAL", () => dmaBufImportSyncFile(u, buf, DMA_BUF_SYNC_RW | 4, f), "END bit");
      expectErrno("EINVAL", () => dmaBufImportSyncFile(u, buf, DMA_BUF_SYNC_WRITE, buf), "dma-buf");
      expectErrno("EINVAL", () => dmaBufImportSyncFile(u, buf, DMA_BUF_SYNC_WRITE, -1), "fd -1");
    }),
  },
  {
    suite: "dma-buf",
    name: "IMPORT_SYNC_FILE(WRITE) of a pending fence: poll IN/OUT wait for the timeline",
    needs: ["system-heap", "sw_sync"],
    run: scoped((u, fds) => {
      const buf = heapBuffer(u, fds, PAGE);
      const tl = fds.add(u.open(SW_SYNC_PATH, O_RDWR));
      const f = fds.add(swSyncCreateFence(u, tl, 1));
      assert.deepEqual(u.poll([{ fd: buf, events: POLLIN | POLLOUT }], 0), [POLLIN | POLLOUT]);
      dmaBufImportSyncFile(u, buf, DMA_BUF_SYNC_WRITE, f);
      assert.deepEqual(u.poll([{ fd: buf, events: POLLIN }], 0), [0], "POLLIN while pending");
      assert.deepEqual(u.poll([{ fd: buf, events: POLLOUT }], 0), [0], "POLLOUT while pending");
      assert.deepEqual(u.poll([{ fd: buf, events: POLLIN | POLLOUT }], 10), [0], "timeout");
      // The exported fence is the imported one, still pending.
      const ex = fds.add(dmaBufExportSyncFile(u, buf, DMA_BUF_SYNC_READ));
      assert.equal(syncFileStatus(u, ex), 0);
      assert.equal(syncWait(u, ex, 0), 0);
      swSyncInc(u, tl, 1);
      assert.deepEqual(u.poll([{ fd: buf, events: POLLIN | POLLOUT }], 0), [POLLIN | POLLOUT]);
      assert.equal(syncFileStatus(u, ex), 1);
      assert.ok(syncWait(u, ex, 0) > 0);
    }),
  },
  {
    suite: "dma-buf",
    name: "IMPORT_SYNC_FILE(READ) of a pending fence: POLLIN ready, POLLOUT waits",
    needs: ["system-heap", "sw_sync"],
    run: scoped((u, fds) => {
      const buf = heapBuffer(u, fds, PAGE);
      const tl = fds.add(u.open(SW_SYNC_PATH, O_RDWR));
      const f = fds.add(swSyncCreateFence(u, tl, 3));
      dmaBufImportSyncFile(u, buf, DMA_BUF_SYNC_READ, f);
      assert.deepEqual(u.poll([{ fd: buf, events: POLLIN }], 0), [POLLIN]);
      assert.deepEqual(u.poll([{ fd: buf, events: POLLOUT }], 0), [0]);
      // A reader's fence is what a writer waits for, not a reader.
      const forRead = fds.add(dmaBufExportSyncFile(u, buf, DMA_BUF_SYNC_READ));
      const forWrite = fds.add(dmaBufExportSyncFile(u, buf, DMA_BUF_SYNC_WRITE));
      assert.equal(syncFileStatus(u, forRead), 1);
      assert.equal(syncFileStatus(u, forWrite), 0);
      swSyncInc(u, tl, 2);
      assert.deepEqual(u.poll([{ fd: buf, events: POLLOUT }], 0), [0]);
      swSyncInc(u, tl, 1);
      assert.deepEqual(u.poll([{ fd: buf, events: POLLOUT }], 0), [POLLOUT]);
      assert.equal(syncFileStatus(u, forWrite), 1);
    }),
  },
  {
    suite: "dma-buf",
    name: "vgem write fence on an imported buffer: poll and EXPORT_SYNC_FILE wait for it",
    needs: ["system-heap", "vgem"],
    run: scoped((u, fds) => {
      const buf = heapBuffer(u, fds, PAGE);
      const vgem = vgemDevice(u, fds);
      const handle = drmPrimeFdToHandle(u, vgem, buf);
      expectErrno("EINVAL", () => vgemFenceAttach(u, vgem, handle, 0x2), "unknown flag");
      expectErrno("ENOENT", () => vgemFenceAttach(u, vgem, handle + 100, 0), "no such handle");
      const fence = vgemFenceAttach(u, vgem, handle, VGEM_FENCE_WRITE);
      assert.ok(fence > 0);
      assert.deepEqual(u.poll([{ fd: buf, events: POLLIN }], 0), [0], "POLLIN while pending");
      assert.deepEqual(u.poll([{ fd: buf, events: POLLOUT }], 0), [0], "POLLOUT while pending");
      const ex = fds.add(dmaBufExportSyncFile(u, buf, DMA_BUF_SYNC_READ));
      assert.equal(syncFileStatus(u, ex), 0);
      // vgem refuses a fence that would conflict with one still pending.
      expectErrno("EBUSY", () => vgemFenceAttach(u, vgem, handle, 0), "read after pending write");
      vgemFenceSignal(u, vgem, fence);
      assert.deepEqual(u.poll([{ fd: buf, events: POLLIN | POLLOUT }], 0), [POLLIN | POLLOUT]);
      assert.equal(syncFileStatus(u, ex), 1);
      expectErrno("ENOENT", () => vgemFenceSignal(u, vgem, fence), "signalled twice");
      drmGemClose(u, vgem, handle);
    }),
  },
  {
    suite: "dma-buf",
    name: "vgem read fence: POLLIN ready, POLLOUT waits; closing vgem signals it",
    needs: ["system-heap", "vgem"],
    run: scoped((u, fds) => {
      const buf = heapBuffer(u, fds, PAGE);
      const vgem = vgemDevice(u, fds);
      const handle = drmPrimeFdToHandle(u, vgem, buf);
      vgemFenceAttach(u, vgem, handle, 0);
      assert.deepEqual(u.poll([{ fd: buf, events: POLLIN }], 0), [POLLIN]);
      assert.deepEqual(u.poll([{ fd: buf, events: POLLOUT }], 0), [0]);
      // Readers share: another read fence is fine, a write fence conflicts.
      vgemFenceAttach(u, vgem, handle, 0);
      expectErrno("EBUSY", () => vgemFenceAttach(u, vgem, handle, VGEM_FENCE_WRITE), "write");
      const forWrite = fds.add(dmaBufExportSyncFile(u, buf, DMA_BUF_SYNC_WRITE));
      assert.equal(syncFileStatus(u, forWrite), 0);
      assert.equal(syncFileStatus(u, fds.add(dmaBufExportSyncFile(u, buf, DMA_BUF_SYNC_READ))), 1);
      // vgem_fence_close(): the file's unsignalled fences are signalled when it goes.
      fds.close(vgem);
      assert.deepEqual(u.poll([{ fd: buf, events: POLLOUT }], 0), [POLLOUT]);
      assert.equal(syncFileStatus(u, forWrite), 1);
    }),
  },
  {
    suite: "dma-buf",
    name: "poll on a closed fd → POLLNVAL",
    needs: ["system-heap"],
    run: scoped((u, fds) => {
      const buf = heapBuffer(u, fds, PAGE);
      const bad = closedFd(u);
      assert.deepEqual(
        u.poll(
          [
            { fd: bad, events: POLLIN },
            { fd: buf, events: POLLIN },
          ],
          0,
        ),
        [POLLNVAL, POLLIN],
      );
    }),
  },
  {
    suite: "dma-buf",
    name: "dup'd dma-buf fd shares the buffer; the buffer outlives the first close",
    needs: ["system-heap"],
    run: scoped((u, fds) => {
      const buf = heapBuffer(u, fds, PAGE);
      const m = u.mmap(PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, buf, 0);
      dmaBufSync(u, buf, DMA_BUF_SYNC_START | DMA_BUF_SYNC_WRITE);
      m.write(0, new Uint8Array([1, 2, 3, 4]));
      dmaBufSync(u, buf, DMA_BUF_SYNC_END | DMA_BUF_SYNC_WRITE);
      u.munmap(m);
      const d = fds.add(u.dup(buf));
      fds.close(buf);
      assert.equal(dmaBufSize(u, d), PAGE);
      const m2 = u.mmap(PAGE, PROT_READ, MAP_SHARED, d, 0);
      dmaBufSync(u, d, DMA_BUF_SYNC_START | DMA_BUF_SYNC_READ);
      assert.deepEqual([...m2.read(0, 4)], [1, 2, 3, 4]);
      dmaBufSync(u, d, DMA_BUF_SYNC_END | DMA_BUF_SYNC_READ);
      u.munmap(m2);
    }),
  },
];

// ---------------------------------------------------------------------------
// tools/testing/selftests/drivers/dma-buf/udmabuf.c and drivers/dma-buf/udmabuf.c

const NUM_PAGES = 4;
const NUM_ENTRIES = 4;
const MEMFD_SIZE = 1024; // in pages

/** MFD_HUGETLB (include/uapi/linux/memfd.h). */
const MFD_HUGETLB = 0x0004;
/** The huge pages the hugetlb cases use (the selftest's 1024 would need a 2 GiB pool). */
const HUGETLB_PAGES = 8;

/**
 * test-5/6/7 of udmabuf.c: a CREATE_LIST of NUM_ENTRIES chunks of NUM_PAGES pages, one at
 * each quarter of a memfd, must show the memfd's pages: a byte written through the memfd's
 * mmap at the start of each (huge) page appears at the same place through the udmabuf.
 * `pinFirst` creates the udmabuf before anything is written (test-7), so the pages it
 * pinned must be the ones the memfd's later writes land in.
 */
function udmabufChunks(
  u: Uapi,
  fds: Fds,
  opts: { readonly hugetlb: boolean; readonly pinFirst: boolean },
): void {
  const dev = fds.add(u.open(UDMABUF_DEV, O_RDWR));
  const pageSize = opts.hugetlb ? 512 * PAGE : PAGE;
  const size = (opts.hugetlb ? HUGETLB_PAGES : MEMFD_SIZE) * pageSize;
  const memfd = fds.add(
    u.memfdCreate("udmabuf-test", MFD_ALLOW_SEALING | (opts.hugetlb ? MFD_HUGETLB : 0)),
  );
  u.fcntl(memfd, F_ADD_SEALS, F_SEAL_SHRINK);
  u.ftruncate(memfd, size);
  const items = Array.from({ length: NUM_ENTRIES }, (_, i) => ({
    memfd,
    offset: i * (size / NUM_ENTRIES),
    size: PAGE * NUM_PAGES,
  }));
  const create = (): number => fds.add(udmabufCreateList(u, dev, items, UDMABUF_FLAGS_CLOEXEC));
  const writeToMemfd = (m: Mapping, chr: number): void => {
    for (let i = 0; i < size / pageSize; i++) m.write(i * pageSize, new Uint8Array([chr]));
  };
  const bufLen = NUM_PAGES * NUM_ENTRIES * PAGE;
  let buf = -1;
  let addr2: Mapping | undefined;
  if (opts.pinFirst) {
    buf = create();
    addr2 = u.mmap(bufLen, PROT_READ | PROT_WRITE, MAP_SHARED, buf, 0);
  }
  const addr1 = u.mmap(size, PROT_READ | PROT_WRITE, MAP_SHARED, memfd, 0);
  try {
    writeToMemfd(addr1, 0x61); // 'a'
    if (!opts.pinFirst) {
      buf = create();
      addr2 = u.mmap(bufLen, PROT_READ | PROT_WRITE, MAP_SHARED, buf, 0);
    }
    writeToMemfd(addr1, 0x62); // 'b'
    assert.equal(dmaBufSize(u, buf), bufLen);
    let k = 0;
    for (let i = 0; i < NUM_ENTRIES; i++) {
      const off = i * (size / NUM_ENTRIES);
      for (let j = 0; j < NUM_PAGES; j++, k++) {
        const c1 = addr1.read(off + j * PAGE, 1)[0];
        const c2 = addr2!.read(k * PAGE, 1)[0];
        assert.equal(c2, c1, `entry ${i} page ${j}`);
      }
    }
    assert.equal(addr2!.read(0, 1)[0], 0x62, "the first page of each chunk was written");
  } finally {
    u.munmap(addr1);
    if (addr2 !== undefined) u.munmap(addr2);
  }
}

const udmabufCases: ConformanceCase[] = [
  {
    suite: "udmabuf",
    name: "a memfd sealed with F_SEAL_FUTURE_WRITE → EINVAL (udmabuf.c check_memfd_seals: SEALS_DENIED)",
    needs: ["udmabuf", "memfd"],
    run: scoped((u, fds) => {
      const dev = fds.add(u.open(UDMABUF_DEV, O_RDWR));
      const memfd = sealedMemfd(u, fds, 2 * PAGE, F_SEAL_SHRINK | F_SEAL_FUTURE_WRITE);
      expectErrno("EINVAL", () => udmabufCreate(u, dev, memfd, 0, 2 * PAGE));
    }),
  },
  {
    suite: "udmabuf",
    name: "a range covering the partial last page of the memfd → EINVAL; the whole pages before it work (mm/gup.c memfd_pin_folios: end >= i_size)",
    needs: ["udmabuf", "memfd"],
    run: scoped((u, fds) => {
      const dev = fds.add(u.open(UDMABUF_DEV, O_RDWR));
      const memfd = sealedMemfd(u, fds, 2 * PAGE + 100);
      expectErrno("EINVAL", () => udmabufCreate(u, dev, memfd, 0, 3 * PAGE), "0..3 pages");
      expectErrno("EINVAL", () => udmabufCreate(u, dev, memfd, 2 * PAGE, PAGE), "the last page");
      const buf = fds.add(udmabufCreate(u, dev, memfd, 0, 2 * PAGE));
      assert.equal(dmaBufSize(u, buf), 2 * PAGE);
    }),
  },
  {
    suite: "udmabuf",
    name: "F_SEAL_WRITE while a udmabuf pins the memfd's pages → EBUSY; once it is closed the seal goes on (mm/memfd.c memfd_wait_for_pins)",
    needs: ["udmabuf", "memfd"],
    run: scoped((u, fds) => {
      const dev = fds.add(u.open(UDMABUF_DEV, O_RDWR));
      const memfd = sealedMemfd(u, fds, 2 * PAGE);
      const buf = fds.add(udmabufCreate(u, dev, memfd, 0, 2 * PAGE));
      expectErrno("EBUSY", () => u.fcntl(memfd, F_ADD_SEALS, F_SEAL_WRITE));
      assert.equal(u.fcntl(memfd, F_GET_SEALS, 0), F_SEAL_SHRINK);
      fds.close(buf);
      u.fcntl(memfd, F_ADD_SEALS, F_SEAL_WRITE);
      assert.equal(u.fcntl(memfd, F_GET_SEALS, 0), F_SEAL_SHRINK | F_SEAL_WRITE);
    }),
  },
  {
    suite: "udmabuf",
    name: "mmap(MAP_PRIVATE) of a udmabuf → EINVAL (udmabuf.c mmap_udmabuf: VM_SHARED needed)",
    needs: ["udmabuf", "memfd"],
    run: scoped((u, fds) => {
      const dev = fds.add(u.open(UDMABUF_DEV, O_RDWR));
      const memfd = sealedMemfd(u, fds, 2 * PAGE);
      const buf = fds.add(udmabufCreate(u, dev, memfd, 0, 2 * PAGE));
      expectErrno("EINVAL", () => u.mmap(2 * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE, buf, 0));
      expectErrno("EINVAL", () => u.mmap(PAGE, PROT_READ, MAP_PRIVATE, buf, 0));
    }),
  },
  {
    suite: "udmabuf",
    name: "test-1: offset not page aligned → EINVAL",
    needs: ["udmabuf", "memfd"],
    run: scoped((u, fds) => {
      const dev = fds.add(u.open(UDMABUF_DEV, O_RDWR));
      const memfd = sealedMemfd(u, fds, PAGE * NUM_PAGES);
      expectErrno("EINVAL", () => udmabufCreate(u, dev, memfd, PAGE / 2, PAGE));
    }),
  },
  {
    suite: "udmabuf",
    name: "test-2: size not a multiple of the page size → EINVAL",
    needs: ["udmabuf", "memfd"],
    run: scoped((u, fds) => {
      const dev = fds.add(u.open(UDMABUF_DEV, O_RDWR));
      const memfd = sealedMemfd(u, fds, PAGE * NUM_PAGES);
      expectErrno("EINVAL", () => udmabufCreate(u, dev, memfd, 0, PAGE / 2));
    }),
  },
  {
    suite: "udmabuf",
    name: "test-3: not a memfd → EBADFD (fget failure and non-shmem file alike)",
    needs: ["udmabuf", "memfd"],
    run: scoped((u, fds) => {
      const dev = fds.add(u.open(UDMABUF_DEV, O_RDWR));
      sealedMemfd(u, fds, PAGE * NUM_PAGES);
      // The device itself is an open file that is not shmem.
      expectErrno("EBADFD", () => udmabufCreate(u, dev, dev, 0, PAGE * NUM_PAGES), "devfd");
      const bad = closedFd(u, UDMABUF_DEV);
      expectErrno("EBADFD", () => udmabufCreate(u, dev, bad, 0, PAGE * NUM_PAGES), "closed fd");
    }),
  },
  {
    suite: "udmabuf",
    name: "test-4: a good buffer maps the memfd's pages (written with pwrite)",
    needs: ["udmabuf", "memfd"],
    run: scoped((u, fds) => {
      const dev = fds.add(u.open(UDMABUF_DEV, O_RDWR));
      const size = PAGE * NUM_PAGES;
      const memfd = sealedMemfd(u, fds, size);
      const data = pattern(size, 4);
      assert.equal(u.pwrite(memfd, data, 0), size);
      const buf = fds.add(udmabufCreate(u, dev, memfd, 0, size));
      assert.ok(buf >= 0);
      assert.equal(dmaBufSize(u, buf), size);
      assert.equal(u.fcntl(buf, F_GETFD, 0) & FD_CLOEXEC, 0, "no UDMABUF_FLAGS_CLOEXEC");
      const m = u.mmap(size, PROT_READ | PROT_WRITE, MAP_SHARED, buf, 0);
      try {
        dmaBufSync(u, buf, DMA_BUF_SYNC_START | DMA_BUF_SYNC_RW);
        assert.deepEqual(m.read(0, size), data);
        // And the other way: a write through the udmabuf shows in the memfd.
        m.write(PAGE + 10, new Uint8Array([0xde, 0xad]));
        dmaBufSync(u, buf, DMA_BUF_SYNC_END | DMA_BUF_SYNC_RW);
      } finally {
        u.munmap(m);
      }
      const mm = u.mmap(size, PROT_READ, MAP_SHARED, memfd, 0);
      assert.deepEqual([...mm.read(PAGE + 10, 2)], [0xde, 0xad]);
      u.munmap(mm);
    }),
  },
  {
    suite: "udmabuf",
    name: "test-4: the udmabuf keeps the pages after the memfd is closed",
    needs: ["udmabuf", "memfd"],
    run: scoped((u, fds) => {
      const dev = fds.add(u.open(UDMABUF_DEV, O_RDWR));
      const memfd = sealedMemfd(u, fds, 2 * PAGE);
      const data = pattern(2 * PAGE, 9);
      u.pwrite(memfd, data, 0);
      const buf = fds.add(udmabufCreate(u, dev, memfd, 0, 2 * PAGE, UDMABUF_FLAGS_CLOEXEC));
      assert.equal(u.fcntl(buf, F_GETFD, 0) & FD_CLOEXEC, FD_CLOEXEC, "UDMABUF_FLAGS_CLOEXEC");
      fds.close(memfd);
      const m = u.mmap(2 * PAGE, PROT_READ, MAP_SHARED, buf, 0);
      dmaBufSync(u, buf, DMA_BUF_SYNC_START | DMA_BUF_SYNC_READ);
      assert.deepEqual(m.read(0, 2 * PAGE), data);
      dmaBufSync(u, buf, DMA_BUF_SYNC_END | DMA_BUF_SYNC_READ);
      u.munmap(m);
    }),
  },
  {
    suite: "udmabuf",
    name: "memfd without F_SEAL_SHRINK → EINVAL",
    needs: ["udmabuf", "memfd"],
    run: scoped((u, fds) => {
      const dev = fds.add(u.open(UDMABUF_DEV, O_RDWR));
      const sealable = fds.add(u.memfdCreate("unsealed", MFD_ALLOW_SEALING));
      u.ftruncate(sealable, PAGE);
      expectErrno("EINVAL", () => udmabufCreate(u, dev, sealable, 0, PAGE), "no seals");
      const unsealable = fds.add(u.memfdCreate("no-sealing", 0));
      u.ftruncate(unsealable, PAGE);
      expectErrno("EINVAL", () => udmabufCreate(u, dev, unsealable, 0, PAGE), "F_SEAL_SEAL only");
    }),
  },
  {
    suite: "udmabuf",
    name: "memfd with F_SEAL_WRITE → EINVAL",
    needs: ["udmabuf", "memfd"],
    run: scoped((u, fds) => {
      const dev = fds.add(u.open(UDMABUF_DEV, O_RDWR));
      const memfd = sealedMemfd(u, fds, PAGE, F_SEAL_SHRINK | F_SEAL_WRITE);
      expectErrno("EINVAL", () => udmabufCreate(u, dev, memfd, 0, PAGE));
    }),
  },
  {
    suite: "udmabuf",
    name: "range beyond the memfd's size → EINVAL",
    needs: ["udmabuf", "memfd"],
    run: scoped((u, fds) => {
      const dev = fds.add(u.open(UDMABUF_DEV, O_RDWR));
      const memfd = sealedMemfd(u, fds, PAGE * NUM_PAGES);
      expectErrno("EINVAL", () => udmabufCreate(u, dev, memfd, 0, 2 * PAGE * NUM_PAGES), "size");
      expectErrno("EINVAL", () => udmabufCreate(u, dev, memfd, PAGE * NUM_PAGES, PAGE), "offset");
      expectErrno("EINVAL", () => udmabufCreate(u, dev, memfd, 3 * PAGE, 2 * PAGE), "straddle");
    }),
  },
  {
    suite: "udmabuf",
    name: "size 0 → EINVAL; beyond size_limit_mb (64 MiB) → EINVAL",
    needs: ["udmabuf", "memfd"],
    run: scoped((u, fds) => {
      const dev = fds.add(u.open(UDMABUF_DEV, O_RDWR));
      const memfd = sealedMemfd(u, fds, PAGE);
      expectErrno("EINVAL", () => udmabufCreate(u, dev, memfd, 0, 0), "size 0");
      expectErrno("EINVAL", () => udmabufCreate(u, dev, memfd, 0, 65 * ONE_MEG), "65 MiB");
    }),
  },
  {
    suite: "udmabuf",
    name: "UDMABUF_CREATE_LIST with 2 items concatenates the ranges",
    needs: ["udmabuf", "memfd"],
    run: scoped((u, fds) => {
      const dev = fds.add(u.open(UDMABUF_DEV, O_RDWR));
      const memfd = sealedMemfd(u, fds, PAGE * NUM_PAGES);
      const data = pattern(PAGE * NUM_PAGES, 2);
      u.pwrite(memfd, data, 0);
      const buf = fds.add(
        udmabufCreateList(u, dev, [
          { memfd, offset: 0, size: PAGE },
          { memfd, offset: 2 * PAGE, size: 2 * PAGE },
        ]),
      );
      assert.equal(dmaBufSize(u, buf), 3 * PAGE);
      const m = u.mmap(3 * PAGE, PROT_READ, MAP_SHARED, buf, 0);
      dmaBufSync(u, buf, DMA_BUF_SYNC_START | DMA_BUF_SYNC_READ);
      assert.deepEqual(m.read(0, PAGE), data.subarray(0, PAGE));
      assert.deepEqual(m.read(PAGE, 2 * PAGE), data.subarray(2 * PAGE, 4 * PAGE));
      dmaBufSync(u, buf, DMA_BUF_SYNC_END | DMA_BUF_SYNC_READ);
      u.munmap(m);
    }),
  },
  {
    suite: "udmabuf",
    name: "UDMABUF_CREATE_LIST: one bad item fails the whole list",
    needs: ["udmabuf", "memfd"],
    run: scoped((u, fds) => {
      const dev = fds.add(u.open(UDMABUF_DEV, O_RDWR));
      const good = sealedMemfd(u, fds, PAGE * 2);
      const unsealed = fds.add(u.memfdCreate("unsealed", MFD_ALLOW_SEALING));
      u.ftruncate(unsealed, PAGE);
      expectErrno("EINVAL", () =>
        udmabufCreateList(u, dev, [
          { memfd: good, offset: 0, size: PAGE },
          { memfd: unsealed, offset: 0, size: PAGE },
        ]),
      );
      expectErrno("EBADFD", () =>
        udmabufCreateList(u, dev, [
          { memfd: good, offset: 0, size: PAGE },
          { memfd: dev, offset: 0, size: PAGE },
        ]),
      );
      expectErrno("EINVAL", () =>
        udmabufCreateList(u, dev, [
          { memfd: good, offset: 0, size: PAGE },
          { memfd: good, offset: PAGE / 2, size: PAGE },
        ]),
      );
    }),
  },
  {
    suite: "udmabuf",
    name: "UDMABUF_CREATE_LIST: count above list_limit (1024) → EINVAL",
    needs: ["udmabuf"],
    run: scoped((u, fds) => {
      const dev = fds.add(u.open(UDMABUF_DEV, O_RDWR));
      // The count is checked before the items are copied in: a bare header will do.
      withUserStruct(u, SIZEOF_UDMABUF_CREATE_LIST, (s, addr) => {
        s.setU32(0, 0).setU32(4, 1025);
        expectErrno("EINVAL", () => u.ioctl(dev, UDMABUF_CREATE_LIST, addr));
      });
    }),
  },
  {
    suite: "udmabuf",
    name: "test-5: CREATE_LIST of 4 chunks of a 1024-page memfd follows the memfd's pages",
    needs: ["udmabuf", "memfd"],
    run: scoped((u, fds) => {
      const dev = fds.add(u.open(UDMABUF_DEV, O_RDWR));
      const size = MEMFD_SIZE * PAGE;
      const memfd = sealedMemfd(u, fds, size);
      const addr1 = u.mmap(size, PROT_READ | PROT_WRITE, MAP_SHARED, memfd, 0);
      const writeToMemfd = (chr: number): void => {
        for (let i = 0; i < size / PAGE; i++) addr1.write(i * PAGE, new Uint8Array([chr]));
      };
      writeToMemfd(0x61); // 'a'
      const items = [];
      for (let i = 0; i < NUM_ENTRIES; i++)
        items.push({ memfd, offset: i * (size / NUM_ENTRIES), size: PAGE * NUM_PAGES });
      const buf = fds.add(udmabufCreateList(u, dev, items, UDMABUF_FLAGS_CLOEXEC));
      const addr2 = u.mmap(
        NUM_PAGES * NUM_ENTRIES * PAGE,
        PROT_READ | PROT_WRITE,
        MAP_SHARED,
        buf,
        0,
      );
      writeToMemfd(0x62); // 'b'
      let k = 0;
      for (let i = 0; i < NUM_ENTRIES; i++) {
        const off = i * (size / NUM_ENTRIES);
        for (let j = 0; j < NUM_PAGES; j++, k++) {
          const c1 = addr1.read(off + j * PAGE, 1)[0];
          const c2 = addr2.read(k * PAGE, 1)[0];
          assert.equal(c2, c1, `entry ${i} page ${j}`);
          assert.equal(c2, 0x62);
        }
      }
      u.munmap(addr1);
      u.munmap(addr2);
    }),
  },
  {
    suite: "udmabuf",
    name: "test-6: CREATE_LIST over a hugetlb memfd (2 MiB pages) follows the memfd's pages",
    needs: ["udmabuf", "memfd", "hugetlb"],
    run: scoped((u, fds) => udmabufChunks(u, fds, { hugetlb: true, pinFirst: false })),
  },
  {
    suite: "udmabuf",
    name: "test-7: CREATE_LIST over a hugetlb memfd before any page is written (pin first)",
    needs: ["udmabuf", "memfd", "hugetlb"],
    run: scoped((u, fds) => udmabufChunks(u, fds, { hugetlb: true, pinFirst: true })),
  },
  {
    suite: "udmabuf",
    name: "test-7 with 4 KiB pages: CREATE_LIST before the memfd is written sees later writes",
    needs: ["udmabuf", "memfd"],
    run: scoped((u, fds) => udmabufChunks(u, fds, { hugetlb: false, pinFirst: true })),
  },
  {
    suite: "udmabuf",
    name: "udmabuf_ioctl: unknown command → ENOTTY",
    needs: ["udmabuf"],
    run: scoped((u, fds) => {
      const dev = fds.add(u.open(UDMABUF_DEV, O_RDWR));
      withUserStruct(u, 64, (_s, addr) => {
        expectErrno("ENOTTY", () => u.ioctl(dev, _IOWR("u", 0x44, 24), addr));
      });
    }),
  },
];

// ---------------------------------------------------------------------------
// memfd seals (mm/memfd.c, mm/shmem.c), as udmabuf relies on them.

/** The seals these cases set or expect; others (F_SEAL_EXEC) depend on sysctls. */
const SEALS_OF_INTEREST = F_SEAL_SEAL | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE;

const memfdCases: ConformanceCase[] = [
  {
    suite: "memfd",
    name: "without MFD_ALLOW_SEALING the memfd carries F_SEAL_SEAL: F_ADD_SEALS → EPERM",
    needs: ["memfd"],
    run: scoped((u, fds) => {
      const memfd = fds.add(u.memfdCreate("no-sealing", MFD_CLOEXEC));
      // Masked: a vm.memfd_noexec sysctl may add F_SEAL_EXEC on a real kernel.
      assert.equal(u.fcntl(memfd, F_GET_SEALS, 0) & SEALS_OF_INTEREST, F_SEAL_SEAL);
      expectErrno("EPERM", () => u.fcntl(memfd, F_ADD_SEALS, F_SEAL_SHRINK));
      assert.equal(u.fcntl(memfd, F_GETFD, 0) & FD_CLOEXEC, FD_CLOEXEC, "MFD_CLOEXEC");
    }),
  },
  {
    suite: "memfd",
    name: "F_SEAL_SHRINK blocks shrinking ftruncate (EPERM), not growing",
    needs: ["memfd"],
    run: scoped((u, fds) => {
      const memfd = fds.add(u.memfdCreate("shrink", MFD_ALLOW_SEALING));
      assert.equal(u.fcntl(memfd, F_GET_SEALS, 0) & SEALS_OF_INTEREST, 0);
      u.ftruncate(memfd, 4 * PAGE);
      u.fcntl(memfd, F_ADD_SEALS, F_SEAL_SHRINK);
      assert.equal(u.fcntl(memfd, F_GET_SEALS, 0) & SEALS_OF_INTEREST, F_SEAL_SHRINK);
      expectErrno("EPERM", () => u.ftruncate(memfd, PAGE));
      u.ftruncate(memfd, 8 * PAGE);
      u.ftruncate(memfd, 8 * PAGE);
    }),
  },
  {
    suite: "memfd",
    name: "F_SEAL_SEAL stops further seals (EPERM)",
    needs: ["memfd"],
    run: scoped((u, fds) => {
      const memfd = fds.add(u.memfdCreate("seal", MFD_ALLOW_SEALING));
      u.fcntl(memfd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_SEAL);
      expectErrno("EPERM", () => u.fcntl(memfd, F_ADD_SEALS, F_SEAL_WRITE));
      assert.equal(u.fcntl(memfd, F_GET_SEALS, 0) & SEALS_OF_INTEREST, F_SEAL_SHRINK | F_SEAL_SEAL);
    }),
  },
  {
    suite: "memfd",
    name: "F_SEAL_WRITE makes pwrite fail with EPERM",
    needs: ["memfd"],
    run: scoped((u, fds) => {
      const memfd = fds.add(u.memfdCreate("write", MFD_ALLOW_SEALING));
      u.ftruncate(memfd, PAGE);
      u.pwrite(memfd, new Uint8Array([1]), 0);
      u.fcntl(memfd, F_ADD_SEALS, F_SEAL_WRITE);
      expectErrno("EPERM", () => u.pwrite(memfd, new Uint8Array([2]), 0));
    }),
  },
];

// ---------------------------------------------------------------------------
// tools/testing/selftests/sync/* and drivers/dma-buf/{sync_file,sw_sync}.c

function timeline(u: Uapi, fds: Fds): number {
  return fds.add(u.open(SW_SYNC_PATH, O_RDWR));
}

const syncCases: ConformanceCase[] = [
  {
    suite: "sync",
    name: "sync_alloc: test_alloc_timeline",
    needs: ["sw_sync"],
    run: scoped((u, fds) => {
      const tl = timeline(u, fds);
      assert.ok(isValidFd(u, tl));
    }),
  },
  {
    suite: "sync",
    name: "sync_alloc: test_alloc_fence",
    needs: ["sw_sync"],
    run: scoped((u, fds) => {
      const tl = timeline(u, fds);
      const f = fds.add(swSyncCreateFence(u, tl, 1, "allocFence"));
      assert.ok(isValidFd(u, f));
      assert.equal(u.fcntl(f, F_GETFD, 0) & FD_CLOEXEC, FD_CLOEXEC, "sync_file fds are O_CLOEXEC");
    }),
  },
  {
    suite: "sync",
    name: "sync_alloc: test_alloc_fence_negative (timeline fd -1 → EBADF)",
    needs: ["sw_sync"],
    run: scoped((u, fds) => {
      timeline(u, fds);
      expectErrno("EBADF", () => swSyncCreateFence(u, -1, 1));
    }),
  },
  {
    suite: "sync",
    name: "sync_fence: test_fence_one_timeline_wait",
    needs: ["sw_sync"],
    run: scoped((u, fds) => {
      const tl = timeline(u, fds);
      const f = fds.add(swSyncCreateFence(u, tl, 5, "allocFence"));
      assert.equal(syncWait(u, f, 0), 0);
      assert.equal(syncFileStatus(u, f), 0);
      swSyncInc(u, tl, 1);
      assert.equal(syncWait(u, f, 0), 0);
      assert.equal(syncFileStatus(u, f), 0);
      swSyncInc(u, tl, 4);
      assert.ok(syncWait(u, f, 0) > 0);
      assert.equal(syncFileStatus(u, f), 1);
      swSyncInc(u, tl, 10);
      assert.ok(syncWait(u, f, 0) > 0);
      assert.equal(syncFileStatus(u, f), 1);
    }),
  },
  {
    suite: "sync",
    name: "sync_fence: test_fence_one_timeline_merge",
    needs: ["sw_sync"],
    run: scoped((u, fds) => {
      const tl = timeline(u, fds);
      const a = fds.add(swSyncCreateFence(u, tl, 1, "allocFence"));
      const b = fds.add(swSyncCreateFence(u, tl, 2, "allocFence"));
      const c = fds.add(swSyncCreateFence(u, tl, 3, "allocFence"));
      let d = fds.add(syncMerge(u, "mergeFence", b, a));
      d = fds.add(syncMerge(u, "mergeFence", c, d));
      assert.ok(isValidFd(u, d));
      for (const f of [a, b, c, d]) assert.equal(countWithStatus(u, f, FENCE_STATUS_ACTIVE), 1);
      // Same timeline: the merge keeps only the latest point.
      assert.equal(syncFileInfo(u, d).numFences, 1);
      swSyncInc(u, tl, 1);
      assert.equal(countWithStatus(u, a, FENCE_STATUS_SIGNALED), 1);
      assert.equal(countWithStatus(u, d, FENCE_STATUS_ACTIVE), 1);
      swSyncInc(u, tl, 1);
      assert.equal(countWithStatus(u, b, FENCE_STATUS_SIGNALED), 1);
      assert.equal(countWithStatus(u, d, FENCE_STATUS_ACTIVE), 1);
      swSyncInc(u, tl, 1);
      assert.equal(countWithStatus(u, c, FENCE_STATUS_SIGNALED), 1);
      assert.equal(countWithStatus(u, d, FENCE_STATUS_ACTIVE), 0);
      assert.equal(countWithStatus(u, d, FENCE_STATUS_SIGNALED), 1);
    }),
  },
  {
    suite: "sync",
    name: "sync_merge: test_fence_merge_same_fence",
    needs: ["sw_sync"],
    run: scoped((u, fds) => {
      const tl = timeline(u, fds);
      const f = fds.add(swSyncCreateFence(u, tl, 5, "allocFence"));
      const merged = fds.add(syncMerge(u, "mergeFence", f, f));
      assert.ok(isValidFd(u, merged));
      assert.equal(countWithStatus(u, merged, FENCE_STATUS_SIGNALED), 0);
      assert.equal(syncFileInfo(u, merged).numFences, 1);
      swSyncInc(u, tl, 5);
      assert.equal(countWithStatus(u, merged, FENCE_STATUS_SIGNALED), 1);
    }),
  },
  {
    suite: "sync",
    name: "sync_merge: fences of two timelines signal only when both have",
    needs: ["sw_sync"],
    run: scoped((u, fds) => {
      const t1 = timeline(u, fds);
      const t2 = timeline(u, fds);
      const f1 = fds.add(swSyncCreateFence(u, t1, 1));
      const f2 = fds.add(swSyncCreateFence(u, t2, 1));
      const m = fds.add(syncMerge(u, "both", f1, f2));
      const info = syncFileInfo(u, m);
      assert.equal(info.name, "both");
      assert.equal(info.numFences, 2);
      assert.equal(info.status, 0);
      for (const fi of info.fences) assert.equal(fi.driverName, "sw_sync");
      swSyncInc(u, t1, 1);
      assert.equal(syncFileStatus(u, m), 0);
      assert.equal(syncWait(u, m, 0), 0);
      swSyncInc(u, t2, 1);
      assert.equal(syncFileStatus(u, m), 1);
      assert.ok(syncWait(u, m, 0) > 0);
    }),
  },
  {
    suite: "sync",
    name: "SYNC_IOC_MERGE with a non-sync_file fd2 → ENOENT",
    needs: ["sw_sync", "system-heap"],
    run: scoped((u, fds) => {
      const tl = timeline(u, fds);
      const f = fds.add(swSyncCreateFence(u, tl, 1));
      const buf = heapBuffer(u, fds, PAGE);
      expectErrno("ENOENT", () => syncMerge(u, "m", f, buf), "dma-buf");
      expectErrno("ENOENT", () => syncMerge(u, "m", f, tl), "timeline");
      expectErrno("ENOENT", () => syncMerge(u, "m", f, closedFd(u)), "closed fd");
      expectErrno("ENOENT", () => syncMerge(u, "m", f, -1), "fd -1");
    }),
  },
  {
    suite: "sync",
    name: "SYNC_IOC_MERGE with flags or pad set → EINVAL",
    needs: ["sw_sync"],
    run: scoped((u, fds) => {
      const tl = timeline(u, fds);
      const f = fds.add(swSyncCreateFence(u, tl, 1));
      for (const off of [40, 44]) {
        withUserStruct(u, SIZEOF_SYNC_MERGE_DATA, (s, addr) => {
          s.setCstr(0, 32, "m").setS32(32, f).setS32(36, -1).setU32(off, 1);
          expectErrno("EINVAL", () => u.ioctl(f, SYNC_IOC_MERGE, addr), `offset ${off}`);
        });
      }
    }),
  },
  {
    suite: "sync",
    name: "SYNC_IOC_FILE_INFO: counts, name, and flags/pad/num_fences checks",
    needs: ["sw_sync"],
    run: scoped((u, fds) => {
      const t1 = timeline(u, fds);
      const t2 = timeline(u, fds);
      const t3 = timeline(u, fds);
      const f1 = fds.add(swSyncCreateFence(u, t1, 1));
      const f2 = fds.add(swSyncCreateFence(u, t2, 2));
      const f3 = fds.add(swSyncCreateFence(u, t3, 3));
      const m = fds.add(syncMerge(u, "three", fds.add(syncMerge(u, "two", f1, f2)), f3));
      // num_fences = 0: only the count.
      withUserStruct(u, SIZEOF_SYNC_FILE_INFO, (s, addr) => {
        u.ioctl(m, SYNC_IOC_FILE_INFO, addr);
        assert.equal(s.u32(40), 3);
        assert.equal(s.cstr(0, 32), "three");
        assert.equal(s.s32(32), 0);
      });
      // flags != 0, pad != 0 → EINVAL.
      withUserStruct(u, SIZEOF_SYNC_FILE_INFO, (s, addr) => {
        s.setU32(36, 1);
        expectErrno("EINVAL", () => u.ioctl(m, SYNC_IOC_FILE_INFO, addr), "flags");
      });
      withUserStruct(u, SIZEOF_SYNC_FILE_INFO, (s, addr) => {
        s.setU32(44, 1);
        expectErrno("EINVAL", () => u.ioctl(m, SYNC_IOC_FILE_INFO, addr), "pad");
      });
      // num_fences smaller than the count → EINVAL.
      const arr = u.alloc(3 * SIZEOF_SYNC_FENCE_INFO);
      try {
        withUserStruct(u, SIZEOF_SYNC_FILE_INFO, (s, addr) => {
          s.setU32(40, 2).setU64(48, arr.addr);
          expectErrno("EINVAL", () => u.ioctl(m, SYNC_IOC_FILE_INFO, addr), "num_fences 2 < 3");
        });
      } finally {
        u.free(arr);
      }
      const info = syncFileInfo(u, m);
      assert.equal(info.numFences, 3);
      assert.deepEqual(
        info.fences.map((f) => f.status),
        [0, 0, 0],
      );
      swSyncInc(u, t2, 2);
      assert.equal(countWithStatus(u, m, FENCE_STATUS_SIGNALED), 1);
      assert.equal(countWithStatus(u, m, FENCE_STATUS_ACTIVE), 2);
      swSyncInc(u, t1, 1);
      swSyncInc(u, t3, 3);
      const done = syncFileInfo(u, m);
      assert.equal(done.status, 1);
      assert.deepEqual(
        done.fences.map((f) => f.status),
        [1, 1, 1],
      );
    }),
  },
  {
    suite: "sync",
    name: "sync_wait: test_fence_multi_timeline_wait",
    needs: ["sw_sync"],
    run: scoped((u, fds) => {
      const ta = timeline(u, fds);
      const tb = timeline(u, fds);
      const tc = timeline(u, fds);
      const fa = fds.add(swSyncCreateFence(u, ta, 5, "fenceA"));
      const fb = fds.add(swSyncCreateFence(u, tb, 5, "fenceB"));
      const fc = fds.add(swSyncCreateFence(u, tc, 5, "fenceC"));
      let merged = fds.add(syncMerge(u, "mergeFence", fb, fa));
      merged = fds.add(syncMerge(u, "mergeFence", fc, merged));
      assert.ok(isValidFd(u, merged));
      assert.equal(countWithStatus(u, merged, FENCE_STATUS_ACTIVE), 3);
      assert.equal(syncWait(u, merged, 0), 0);
      swSyncInc(u, ta, 5);
      assert.equal(countWithStatus(u, merged, FENCE_STATUS_ACTIVE), 2);
      assert.equal(countWithStatus(u, merged, FENCE_STATUS_SIGNALED), 1);
      swSyncInc(u, tb, 5);
      assert.equal(countWithStatus(u, merged, FENCE_STATUS_ACTIVE), 1);
      assert.equal(countWithStatus(u, merged, FENCE_STATUS_SIGNALED), 2);
      swSyncInc(u, tc, 5);
      assert.equal(countWithStatus(u, merged, FENCE_STATUS_ACTIVE), 0);
      assert.equal(countWithStatus(u, merged, FENCE_STATUS_SIGNALED), 3);
      assert.ok(syncWait(u, merged, 100) > 0);
    }),
  },
  {
    suite: "sync",
    name: "sync_wait: a timed wait on a pending fence times out with nothing ready",
    needs: ["sw_sync"],
    run: scoped((u, fds) => {
      const tl = timeline(u, fds);
      const f = fds.add(swSyncCreateFence(u, tl, 1));
      assert.equal(syncWait(u, f, 20), 0);
      assert.equal(syncFileStatus(u, f), 0);
    }),
  },
  {
    suite: "sync",
    name: "fences at values already reached are signalled at creation",
    needs: ["sw_sync"],
    run: scoped((u, fds) => {
      const tl = timeline(u, fds);
      const zero = fds.add(swSyncCreateFence(u, tl, 0));
      assert.equal(syncFileStatus(u, zero), 1);
      swSyncInc(u, tl, 10);
      const past = fds.add(swSyncCreateFence(u, tl, 7));
      assert.equal(syncFileStatus(u, past), 1);
      const future = fds.add(swSyncCreateFence(u, tl, 11));
      assert.equal(syncFileStatus(u, future), 0);
    }),
  },
  {
    suite: "sync",
    name: "closing the timeline signals its pending fences with -ENOENT",
    needs: ["sw_sync"],
    run: scoped((u, fds) => {
      const tl = timeline(u, fds);
      const done = fds.add(swSyncCreateFence(u, tl, 1));
      const pending = fds.add(swSyncCreateFence(u, tl, 5));
      swSyncInc(u, tl, 1);
      assert.equal(syncWait(u, pending, 0), 0);
      fds.close(tl);
      assert.ok(syncWait(u, pending, 0) > 0, "signalled");
      assert.equal(syncFileStatus(u, pending), ENOENT_STATUS);
      const info = syncFileInfo(u, pending);
      assert.equal(info.fences[0]!.status, ENOENT_STATUS);
      assert.equal(info.status, ENOENT_STATUS);
      assert.equal(countWithStatus(u, pending, FENCE_STATUS_ERROR), 1);
      // Fences signalled before the close keep their success.
      assert.equal(syncFileStatus(u, done), 1);
    }),
  },
  {
    suite: "sync",
    name: "sw_sync / sync_file: unknown ioctl → ENOTTY",
    needs: ["sw_sync"],
    run: scoped((u, fds) => {
      const tl = timeline(u, fds);
      const f = fds.add(swSyncCreateFence(u, tl, 1));
      withUserStruct(u, 64, (_s, addr) => {
        expectErrno("ENOTTY", () => u.ioctl(tl, _IOWR("W", 0x30, 8), addr), "sw_sync");
        expectErrno("ENOTTY", () => u.ioctl(f, _IOWR(">", 0x30, 8), addr), "sync_file");
        expectErrno("ENOTTY", () => u.ioctl(f, DMA_BUF_IOCTL_SYNC, addr), "DMA_BUF_IOCTL_SYNC");
        expectErrno(
          "ENOTTY",
          () => u.ioctl(f, DMA_BUF_IOCTL_EXPORT_SYNC_FILE, addr),
          "EXPORT_SYNC_FILE",
        );
      });
    }),
  },
  {
    suite: "sync",
    name: "SYNC_IOC_SET_DEADLINE / SW_SYNC_GET_DEADLINE: earliest deadline kept",
    needs: ["sw_sync", "fence-deadline"],
    run: scoped((u, fds) => {
      const tl = timeline(u, fds);
      const f = fds.add(swSyncCreateFence(u, tl, 1));
      expectErrno("ENOENT", () => swSyncGetDeadline(u, tl, f), "no deadline yet");
      setDeadline(u, f, 2_000_000_000n);
      assert.equal(swSyncGetDeadline(u, tl, f), 2_000_000_000n);
      setDeadline(u, f, 3_000_000_000n);
      assert.equal(swSyncGetDeadline(u, tl, f), 2_000_000_000n, "a later one is ignored");
      setDeadline(u, f, 1_000_000_000n);
      assert.equal(swSyncGetDeadline(u, tl, f), 1_000_000_000n, "an earlier one wins");
      expectErrno("EINVAL", () => setDeadline(u, f, 1n, 1n), "SET_DEADLINE pad");
      // A merged fence forwards the deadline to its sync_pts but is not one itself.
      const t2 = timeline(u, fds);
      const g = fds.add(swSyncCreateFence(u, t2, 1));
      const m = fds.add(syncMerge(u, "m", f, g));
      setDeadline(u, m, 500_000_000n);
      assert.equal(swSyncGetDeadline(u, t2, g), 500_000_000n);
      assert.equal(swSyncGetDeadline(u, tl, f), 500_000_000n);
      expectErrno("EINVAL", () => swSyncGetDeadline(u, tl, m), "array fence");
    }),
  },
  {
    suite: "sync",
    name: "SW_SYNC_GET_DEADLINE: argument checks; a signalled fence takes no deadline",
    needs: ["sw_sync", "fence-deadline"],
    run: scoped((u, fds) => {
      const tl = timeline(u, fds);
      const done = fds.add(swSyncCreateFence(u, tl, 0));
      setDeadline(u, done, 1_000_000n);
      expectErrno("ENOENT", () => swSyncGetDeadline(u, tl, done), "signalled");
      expectErrno("EINVAL", () => swSyncGetDeadline(u, tl, tl), "not a sync_file");
      const f = fds.add(swSyncCreateFence(u, tl, 1));
      setDeadline(u, f, 1_000_000n);
      withUserStruct(u, SIZEOF_SW_SYNC_GET_DEADLINE, (s, addr) => {
        s.setU64(0, 1).setS32(12, f);
        expectErrno("EINVAL", () => u.ioctl(tl, SW_SYNC_GET_DEADLINE, addr), "deadline_ns in");
      });
      withUserStruct(u, SIZEOF_SW_SYNC_GET_DEADLINE, (s, addr) => {
        s.setU32(8, 1).setS32(12, f);
        expectErrno("EINVAL", () => u.ioctl(tl, SW_SYNC_GET_DEADLINE, addr), "pad");
      });
    }),
  },
  {
    suite: "sync",
    name: "sync_stress_parallelism: two threads on one timeline, interleaved",
    needs: ["sw_sync"],
    run: scoped((u, fds) => {
      const tl = timeline(u, fds);
      const iterations = 256;
      let counter = 0;
      for (let i = 0; i < iterations; i++) {
        for (const threadId of [0, 1]) {
          const fence = swSyncCreateFence(u, tl, i * 2 + threadId, "fence");
          assert.ok(isValidFd(u, fence));
          // The other "thread" has brought the timeline here already.
          assert.ok(syncWait(u, fence, -1) > 0, "prior thread");
          assert.equal(counter, i * 2 + threadId);
          counter++;
          const next = swSyncCreateFence(u, tl, i * 2 + threadId + 1, "next");
          assert.equal(syncWait(u, next, 0), 0, "not before the increment");
          swSyncInc(u, tl, 1);
          assert.ok(syncWait(u, next, 0) > 0);
          u.close(next);
          u.close(fence);
        }
      }
      assert.equal(counter, iterations * 2);
    }),
  },
  {
    suite: "sync",
    name: "sync_stress_consumer: multi-producer single-consumer, interleaved",
    needs: ["sw_sync"],
    run: scoped((u, fds) => {
      const iterations = 64;
      const n = 5;
      const consumer = timeline(u, fds);
      const producers = Array.from({ length: n }, () => timeline(u, fds));
      let counter = 0;
      for (let it = 1; it <= iterations; it++) {
        // Consumer: a fence for "every producer has incremented once more".
        let fence = swSyncCreateFence(u, producers[0]!, it, "name");
        for (let i = 1; i < n; i++) {
          const tmp = swSyncCreateFence(u, producers[i]!, it, "name");
          const merged = syncMerge(u, "name", tmp, fence);
          u.close(tmp);
          u.close(fence);
          fence = merged;
        }
        assert.ok(isValidFd(u, fence));
        assert.equal(syncWait(u, fence, 0), 0, "producers have not run yet");
        // Producers: each waits for the consumer's release of round it-1, then increments.
        for (let id = 0; id < n; id++) {
          const pf = swSyncCreateFence(u, consumer, it - 1, "fence");
          if ((iterations + id) % 8 !== 0) assert.ok(syncWait(u, pf, -1) > 0);
          else {
            assert.equal(countWithStatus(u, pf, FENCE_STATUS_ERROR), 0);
            assert.equal(countWithStatus(u, pf, FENCE_STATUS_ACTIVE), 0);
          }
          counter++;
          swSyncInc(u, producers[id]!, 1);
          u.close(pf);
          if (id < n - 1) assert.equal(syncWait(u, fence, 0), 0, "waits for every producer");
        }
        if (iterations % 8 !== 0) assert.ok(syncWait(u, fence, -1) > 0);
        else {
          assert.equal(countWithStatus(u, fence, FENCE_STATUS_ERROR), 0);
          assert.equal(countWithStatus(u, fence, FENCE_STATUS_ACTIVE), 0);
        }
        assert.equal(counter, n * it);
        swSyncInc(u, consumer, 1);
        u.close(fence);
      }
    }),
  },
  {
    suite: "sync",
    name: "sync_stress_merge: random merges over 32 timelines",
    needs: ["sw_sync"],
    run: scoped((u, fds) => {
      const timelineCount = 32;
      const mergeCount = 2048;
      const rand = lcg(0x5eed);
      const timelines = Array.from({ length: timelineCount }, () => timeline(u, fds));
      let fence = swSyncCreateFence(u, timelines[0]!, 0, "fence");
      assert.ok(isValidFd(u, fence));
      const fenceMap = new Array<number>(timelineCount).fill(-1);
      fenceMap[0] = 0;
      for (let i = 0; i < mergeCount; i++) {
        const off = rand() % timelineCount;
        const syncPoint = rand();
        if (fenceMap[off] === -1 || fenceMap[off]! < syncPoint) fenceMap[off] = syncPoint;
        const tmp = swSyncCreateFence(u, timelines[off]!, syncPoint, "fence");
        const merged = syncMerge(u, "merge", tmp, fence);
        u.close(tmp);
        u.close(fence);
        fence = merged;
        assert.ok(isValidFd(u, merged));
      }
      fds.add(fence);
      const size = fenceMap.filter((v) => v !== -1).length;
      assert.equal(syncFileInfo(u, fence).numFences, size);
      for (let i = 0; i < timelineCount; i++) {
        if (fenceMap[i] !== -1) {
          assert.equal(syncWait(u, fence, 0), 0);
          swSyncInc(u, timelines[i]!, fenceMap[i]!);
        }
      }
      assert.ok(syncWait(u, fence, 0) > 0);
    }),
  },
];

/** Every case, in selftest order. */
export const conformanceCases: readonly ConformanceCase[] = [
  ...heapCases,
  ...dmaBufCases,
  ...udmabufCases,
  ...memfdCases,
  ...vfsCases,
  ...syncCases,
  ...drmCases,
  ...vividCases,
  ...vividFormatCases,
  ...vim2mCases,
  ...swiotlbCases,
];

export interface RegisterOptions {
  /** What the backend offers; cases needing anything else are skipped. */
  readonly capabilities: readonly Capability[];
  /** Only these suites (default: all). */
  readonly suites?: readonly SuiteName[];
  /** Known backend deviations: case name → reason, reported as todo. */
  readonly todo?: Readonly<Record<string, string>>;
}

/**
 * Registers one node:test test per case for `backend`, each with a fresh Uapi from
 * `makeUapi` (a fresh simulated kernel, or a fresh process on a real one).
 */
export function registerConformance(
  backend: string,
  makeUapi: (c: ConformanceCase) => Uapi,
  opts: RegisterOptions,
): void {
  const have = new Set<Capability>(opts.capabilities);
  for (const c of conformanceCases) {
    if (opts.suites !== undefined && !opts.suites.includes(c.suite)) continue;
    const missing = (c.needs ?? []).filter((n) => !have.has(n));
    const todo = opts.todo?.[c.name] ?? c.todo;
    const title = `[${backend}] ${c.suite}: ${c.name}`;
    if (missing.length > 0) {
      test(title, { skip: `${backend} lacks ${missing.join(", ")}` }, () => {});
      continue;
    }
    test(title, todo !== undefined ? { todo } : {}, () => {
      c.run(makeUapi(c));
    });
  }
}
