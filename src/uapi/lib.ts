/**
 * Typed calls for each ioctl of the dma-buf world, built only on {@link Uapi}: encode
 * the argument struct in user memory, ioctl, decode the result. What libdrm or a
 * camera stack's helpers do in C, shared by every backend.
 */

import {
  DMA_BUF_IOCTL_EXPORT_SYNC_FILE,
  DMA_BUF_IOCTL_IMPORT_SYNC_FILE,
  DMA_BUF_IOCTL_SYNC,
  DMA_BUF_SET_NAME_B,
  SIZEOF_DMA_BUF_SYNC,
  SIZEOF_DMA_BUF_SYNC_FILE,
} from "../include/uapi/dma-buf.js";
import { DMA_HEAP_IOCTL_ALLOC, SIZEOF_DMA_HEAP_ALLOCATION_DATA } from "../include/uapi/dma-heap.js";
import { O_CLOEXEC, O_RDWR } from "../include/uapi/fcntl.js";
import { CStruct } from "../include/uapi/struct.js";
import {
  SIZEOF_SW_SYNC_CREATE_FENCE_DATA,
  SIZEOF_SW_SYNC_GET_DEADLINE,
  SIZEOF_SYNC_FENCE_INFO,
  SIZEOF_SYNC_FILE_INFO,
  SIZEOF_SYNC_MERGE_DATA,
  SW_SYNC_GET_DEADLINE,
  SW_SYNC_IOC_CREATE_FENCE,
  SW_SYNC_IOC_INC,
  SYNC_IOC_FILE_INFO,
  SYNC_IOC_MERGE,
} from "../include/uapi/sync-file.js";
import {
  SIZEOF_UDMABUF_CREATE,
  SIZEOF_UDMABUF_CREATE_ITEM,
  SIZEOF_UDMABUF_CREATE_LIST,
  UDMABUF_CREATE,
  UDMABUF_CREATE_LIST,
} from "../include/uapi/udmabuf.js";
import type { Uapi } from "./uapi.js";

/** Runs `fn` with a zeroed user buffer of `size` bytes, freed afterwards. */
export function withUserStruct<T>(u: Uapi, size: number, fn: (s: CStruct, addr: number) => T): T {
  const buf = u.alloc(size);
  try {
    return fn(new CStruct(buf.bytes), buf.addr);
  } finally {
    u.free(buf);
  }
}

/** DMA_HEAP_IOCTL_ALLOC: a new dma-buf fd of `len` bytes from the heap open at `heapFd`. */
export function dmaHeapAlloc(
  u: Uapi,
  heapFd: number,
  len: number,
  fdFlags: number = O_RDWR | O_CLOEXEC,
  heapFlags = 0,
): number {
  return withUserStruct(u, SIZEOF_DMA_HEAP_ALLOCATION_DATA, (s, addr) => {
    s.setU64(0, len).setU32(8, 0).setU32(12, fdFlags).setU64(16, heapFlags);
    u.ioctl(heapFd, DMA_HEAP_IOCTL_ALLOC, addr);
    return s.u32(8);
  });
}

/** DMA_BUF_IOCTL_SYNC with DMA_BUF_SYNC_{START,END} | {READ,WRITE,RW}. */
export function dmaBufSync(u: Uapi, fd: number, flags: number | bigint): void {
  withUserStruct(u, SIZEOF_DMA_BUF_SYNC, (s, addr) => {
    s.setU64(0, flags);
    u.ioctl(fd, DMA_BUF_IOCTL_SYNC, addr);
  });
}

/** DMA_BUF_SET_NAME: `name` as a NUL-terminated string. */
export function dmaBufSetName(u: Uapi, fd: number, name: string): void {
  const enc = new TextEncoder().encode(name);
  withUserStruct(u, enc.length + 1, (s, addr) => {
    s.bytes.set(enc);
    u.ioctl(fd, DMA_BUF_SET_NAME_B, addr);
  });
}

/** DMA_BUF_IOCTL_EXPORT_SYNC_FILE: a sync_file fd for the buffer's implicit fences. */
export function dmaBufExportSyncFile(u: Uapi, fd: number, flags: number): number {
  return withUserStruct(u, SIZEOF_DMA_BUF_SYNC_FILE, (s, addr) => {
    s.setU32(0, flags).setS32(4, -1);
    u.ioctl(fd, DMA_BUF_IOCTL_EXPORT_SYNC_FILE, addr);
    return s.s32(4);
  });
}

/** DMA_BUF_IOCTL_IMPORT_SYNC_FILE: adds the sync_file's fence to the buffer as a reader or writer. */
export function dmaBufImportSyncFile(u: Uapi, fd: number, flags: number, syncFd: number): void {
  withUserStruct(u, SIZEOF_DMA_BUF_SYNC_FILE, (s, addr) => {
    s.setU32(0, flags).setS32(4, syncFd);
    u.ioctl(fd, DMA_BUF_IOCTL_IMPORT_SYNC_FILE, addr);
  });
}

/** The size of a dma-buf, the documented way: lseek(fd, 0, SEEK_END). */
export function dmaBufSize(u: Uapi, fd: number): number {
  const size = u.lseek(fd, 0, 2);
  u.lseek(fd, 0, 0);
  return size;
}

/** SYNC_IOC_MERGE: a new sync_file fd that signals when both have. */
export function syncMerge(u: Uapi, name: string, fd1: number, fd2: number): number {
  return withUserStruct(u, SIZEOF_SYNC_MERGE_DATA, (s, addr) => {
    s.setCstr(0, 32, name).setS32(32, fd2).setS32(36, -1);
    u.ioctl(fd1, SYNC_IOC_MERGE, addr);
    return s.s32(36);
  });
}

export interface SyncFenceInfo {
  readonly objName: string;
  readonly driverName: string;
  readonly status: number;
  readonly flags: number;
  readonly timestampNs: bigint;
}

export interface SyncFileInfo {
  readonly name: string;
  readonly status: number;
  readonly numFences: number;
  readonly fences: readonly SyncFenceInfo[];
}

/**
 * SYNC_IOC_FILE_INFO the way libsync does it: once with num_fences = 0 to learn the
 * count, then again with room for them.
 */
export function syncFileInfo(u: Uapi, fd: number): SyncFileInfo {
  const count = withUserStruct(u, SIZEOF_SYNC_FILE_INFO, (s, addr) => {
    u.ioctl(fd, SYNC_IOC_FILE_INFO, addr);
    return s.u32(40);
  });
  const arr = u.alloc(Math.max(1, count) * SIZEOF_SYNC_FENCE_INFO);
  try {
    return withUserStruct(u, SIZEOF_SYNC_FILE_INFO, (s, addr) => {
      s.setU32(40, count).setU64(48, arr.addr);
      u.ioctl(fd, SYNC_IOC_FILE_INFO, addr);
      const a = new CStruct(arr.bytes);
      const fences: SyncFenceInfo[] = [];
      for (let i = 0; i < s.u32(40); i++) {
        const o = i * SIZEOF_SYNC_FENCE_INFO;
        fences.push({
          objName: a.cstr(o, 32),
          driverName: a.cstr(o + 32, 32),
          status: a.s32(o + 64),
          flags: a.u32(o + 68),
          timestampNs: a.view.getBigUint64(o + 72, true),
        });
      }
      return { name: s.cstr(0, 32), status: s.s32(32), numFences: s.u32(40), fences };
    });
  } finally {
    u.free(arr);
  }
}

/** sync_file's status from SYNC_IOC_FILE_INFO: 1 signalled, 0 active, < 0 error. */
export function syncFileStatus(u: Uapi, fd: number): number {
  return withUserStruct(u, SIZEOF_SYNC_FILE_INFO, (s, addr) => {
    u.ioctl(fd, SYNC_IOC_FILE_INFO, addr);
    return s.s32(32);
  });
}

/** SW_SYNC_IOC_CREATE_FENCE: a sync_file fd that signals when the timeline reaches `value`. */
export function swSyncCreateFence(
  u: Uapi,
  timelineFd: number,
  value: number,
  name = "fence",
): number {
  return withUserStruct(u, SIZEOF_SW_SYNC_CREATE_FENCE_DATA, (s, addr) => {
    s.setU32(0, value).setCstr(4, 32, name).setS32(36, -1);
    u.ioctl(timelineFd, SW_SYNC_IOC_CREATE_FENCE, addr);
    return s.s32(36);
  });
}

/** SW_SYNC_IOC_INC: advances the timeline by `count`. */
export function swSyncInc(u: Uapi, timelineFd: number, count: number): void {
  withUserStruct(u, 4, (s, addr) => {
    s.setU32(0, count);
    u.ioctl(timelineFd, SW_SYNC_IOC_INC, addr);
  });
}

/** SW_SYNC_GET_DEADLINE: the deadline set on a sw_sync fence, in ns. */
export function swSyncGetDeadline(u: Uapi, timelineFd: number, fenceFd: number): bigint {
  return withUserStruct(u, SIZEOF_SW_SYNC_GET_DEADLINE, (s, addr) => {
    s.setS32(12, fenceFd);
    u.ioctl(timelineFd, SW_SYNC_GET_DEADLINE, addr);
    return s.view.getBigUint64(0, true);
  });
}

/** UDMABUF_CREATE. */
export function udmabufCreate(
  u: Uapi,
  devFd: number,
  memfd: number,
  offset: number,
  size: number,
  flags = 0,
): number {
  return withUserStruct(u, SIZEOF_UDMABUF_CREATE, (s, addr) => {
    s.setU32(0, memfd).setU32(4, flags).setU64(8, offset).setU64(16, size);
    return u.ioctl(devFd, UDMABUF_CREATE, addr);
  });
}

/** UDMABUF_CREATE_LIST: one buffer from several memfd ranges. */
export function udmabufCreateList(
  u: Uapi,
  devFd: number,
  items: readonly { memfd: number; offset: number; size: number }[],
  flags = 0,
): number {
  return withUserStruct(
    u,
    SIZEOF_UDMABUF_CREATE_LIST + items.length * SIZEOF_UDMABUF_CREATE_ITEM,
    (s, addr) => {
      s.setU32(0, flags).setU32(4, items.length);
      items.forEach((it, i) => {
        const o = SIZEOF_UDMABUF_CREATE_LIST + i * SIZEOF_UDMABUF_CREATE_ITEM;
        s.setU32(o, it.memfd)
          .setU64(o + 8, it.offset)
          .setU64(o + 16, it.size);
      });
      return u.ioctl(devFd, UDMABUF_CREATE_LIST, addr);
    },
  );
}
