/**
 * udmabuf (drivers/dma-buf/udmabuf.c): a dma-buf made of memfd pages, so a buffer
 * userspace already has (a VM's guest memory, a software-rendered frame) can be handed
 * to devices without a copy.
 *
 * Its CPU-access brackets use the misc device itself as the "device": the first
 * begin_cpu_access maps the pages for it (which on a non-coherent machine cleans the
 * cache), later ones sync. end_cpu_access before any begin is EINVAL.
 */

import type { DmaDirection } from "../dma/direction.js";
import { DMA_BIDIRECTIONAL } from "../dma/direction.js";
import type { DmaMappingApi } from "../dma/mapping.js";
import { SgTable } from "../dma/scatterlist.js";
import { ensure, KernelError } from "../errno.js";
import {
  F_GET_SEALS,
  F_SEAL_FUTURE_WRITE,
  F_SEAL_SHRINK,
  F_SEAL_WRITE,
  O_CLOEXEC,
  O_RDWR,
} from "../include/uapi/fcntl.js";
import { CStruct } from "../include/uapi/struct.js";
import {
  SIZEOF_UDMABUF_CREATE,
  SIZEOF_UDMABUF_CREATE_ITEM,
  SIZEOF_UDMABUF_CREATE_LIST,
  UDMABUF_CREATE,
  UDMABUF_CREATE_LIST,
  UDMABUF_FLAGS_CLOEXEC,
} from "../include/uapi/udmabuf.js";
import type { CpuMapping } from "../machine/cpu.js";
import type { DmaDevice } from "../machine/device.js";
import { PAGE_SIZE } from "../machine/memory.js";
import { type Current, File, type FileOperations } from "../vfs/file.js";
import { isShmemFile, memfdFcntl, type ShmemInode } from "../vfs/memfd.js";
import { type DmaBuf, type DmaBufCore, type DmaBufOps, dmaBufExport, dmaBufFd } from "./dma-buf.js";
import { sliceRanges } from "./heaps/heap-buffer.js";

/** Module parameters (module_param list_limit, size_limit_mb). */
export interface UdmabufParams {
  readonly listLimit: number;
  readonly sizeLimitMb: number;
}
export const UDMABUF_DEFAULTS: UdmabufParams = { listLimit: 1024, sizeLimitMb: 64 };

const SEALS_WANTED = F_SEAL_SHRINK;
const SEALS_DENIED = F_SEAL_WRITE | F_SEAL_FUTURE_WRITE;

/** struct udmabuf. */
interface Udmabuf {
  readonly dev: UdmabufDevice;
  readonly pages: number[];
  readonly inodes: ShmemInode[];
  /** The misc device's own mapping, made by the first begin_cpu_access, and its direction. */
  sg: SgTable | undefined;
  sgDir?: DmaDirection;
  /** The checker region explaining that first begin_cpu_access (non-coherent machines). */
  firstBeginNote?: number;
}

/**
 * What the report says about a stale read after a udmabuf's first begin_cpu_access on
 * a non-coherent machine: Linux 6.12's begin_cpu_udmabuf() maps the pages for the misc
 * device (get_sg_table -> dma_map_sgtable) instead of dma_sync_sgtable_for_cpu, and a
 * map for DMA only cleans the CPU cache on arm64 (and writes back on ARM and RISC-V):
 * lines the CPU cached before a device wrote the pages are not invalidated.
 */
export const UDMABUF_FIRST_BEGIN_NOTE =
  "this is Linux 6.12's udmabuf, not a missing call: its first DMA_BUF_IOCTL_SYNC(START) maps the pages for the udmabuf device instead of syncing them for the CPU, and on a non-coherent machine a map only cleans the cache, so lines cached before the device wrote stay stale; later STARTs do sync. Workaround: one SYNC(START)/SYNC(END) pair on each udmabuf before its first use by a device, or a dma-heap buffer";

/**
 * get_sg_table(): since 6.11, sg_alloc_table() with one entry per page, each set with
 * sg_set_folio(..., PAGE_SIZE, offset): contiguous pages are not merged, so a device that
 * bounces through swiotlb bounces page by page.
 */
function getSgTable(ub: Udmabuf, dev: DmaDevice, dir: DmaDirection): SgTable {
  const sgt = new SgTable(ub.pages.map((page) => ({ page, offset: 0, length: PAGE_SIZE })));
  ub.dev.dma.dmaMapSgtable(dev, sgt, dir, 0);
  return sgt;
}

const udmabufOps: DmaBufOps<Udmabuf> = {
  cacheSgtMapping: true,
  mapDmaBuf: (a, dir) => getSgTable(a.dmabuf.priv, a.dev, dir),
  unmapDmaBuf: (a, sgt, dir) => a.dmabuf.priv.dev.dma.dmaUnmapSgtable(a.dev, sgt, dir, 0),
  release(buf) {
    const ub = buf.priv;
    // release_udmabuf() unmaps with the direction the first begin_cpu_access mapped
    // with (ubuf->sg_dir, in 6.12.118 as the conformance VM boots it: "udmabuf: fix DMA
    // direction mismatch in release_udmabuf()", Cc stable). Before that fix it unmapped
    // with DMA_BIDIRECTIONAL, which DMA-API debug reports as "frees DMA memory with
    // different direction" for any program whose first sync was read-only or write-only.
    if (ub.sg !== undefined)
      ub.dev.dma.dmaUnmapSgtable(ub.dev.device, ub.sg, ub.sgDir ?? DMA_BIDIRECTIONAL, 0);
    if (ub.firstBeginNote !== undefined) ub.dev.dma.m.violations.unregister(ub.firstBeginNote);
    for (const ino of ub.inodes) ino.unpin();
  },
  mmap(buf, vma) {
    buf.resv.assertHeld("mmap_udmabuf");
    ensure(vma.shared, "EINVAL", "udmabuf mmap: only MAP_SHARED mappings");
    const ranges = buf.priv.pages.map((phys) => ({ phys, len: PAGE_SIZE }));
    vma.ranges = sliceRanges(ranges, vma.pgoff * PAGE_SIZE, vma.length);
    vma.attr = "cached";
  },
  vmap(buf): CpuMapping {
    const ranges = buf.priv.pages.map((phys) => ({ phys, len: PAGE_SIZE }));
    return buf.priv.dev.dma.m.cpu.map(ranges, "cached", `vmap ${buf.describe()}`);
  },
  vunmap(buf, map) {
    buf.priv.dev.dma.m.cpu.unmap(map);
  },
  beginCpuAccess(buf, dir) {
    const ub = buf.priv;
    if (ub.sg === undefined) {
      ub.sg = getSgTable(ub, ub.dev.device, dir);
      ub.sgDir = dir;
      if (!ub.dev.device.coherent) {
        const ranges = ub.pages.map((phys) => ({ phys, len: PAGE_SIZE }));
        const note = UDMABUF_FIRST_BEGIN_NOTE;
        ub.firstBeginNote = ub.dev.dma.m.violations.register(
          `udmabuf ${buf.describe()}`,
          ranges,
          {},
          { "stale-cpu-read": note, "cpu-access-device-owned": note },
        );
      }
    } else ub.dev.dma.dmaSyncSgForCpu(ub.dev.device, ub.sg, ub.sg.nents, dir);
  },
  endCpuAccess(buf, dir) {
    const ub = buf.priv;
    if (ub.sg === undefined)
      throw new KernelError("EINVAL", "udmabuf end_cpu_access before any begin_cpu_access");
    ub.dev.dma.dmaSyncSgForDevice(ub.dev.device, ub.sg, ub.sg.nents, dir);
  },
};

interface CreateItem {
  readonly memfd: number;
  readonly offset: number;
  readonly size: number;
}

/** The /dev/udmabuf misc device. */
export class UdmabufDevice {
  constructor(
    readonly core: DmaBufCore,
    readonly dma: DmaMappingApi,
    /** The misc device as a DMA master (64-bit mask, the platform's coherency). */
    readonly device: DmaDevice,
    readonly params: UdmabufParams = UDMABUF_DEFAULTS,
  ) {
    // The misc device only ever maps for begin_cpu_access; it never starts DMA.
    dma.m.ownership.declareCpuAccessOnly(device.name);
  }

  open(flags: number): File<UdmabufDevice> {
    return new File(udmabufFops, this, flags, "/dev/udmabuf");
  }

  /**
   * udmabuf_create(): validates every item (page-aligned offset and size, total within
   * size_limit_mb, not empty) before touching any memfd; then each memfd must be a
   * shmem file (EBADFD otherwise) sealed with F_SEAL_SHRINK and neither F_SEAL_WRITE nor
   * F_SEAL_FUTURE_WRITE (check_memfd_seals), and the range must end within i_size.
   */
  create(current: Current, flags: number, items: readonly CreateItem[]): number {
    const pglimit = (this.params.sizeLimitMb * 1024 * 1024) / PAGE_SIZE;
    let pagecount = 0;
    for (const it of items) {
      ensure(
        it.offset % PAGE_SIZE === 0,
        "EINVAL",
        `udmabuf: offset ${it.offset} is not page aligned`,
      );
      ensure(it.size % PAGE_SIZE === 0, "EINVAL", `udmabuf: size ${it.size} is not page aligned`);
      pagecount += it.size / PAGE_SIZE;
      ensure(
        pagecount <= pglimit,
        "EINVAL",
        `udmabuf: more than size_limit_mb=${this.params.sizeLimitMb} MiB`,
      );
    }
    ensure(pagecount > 0, "EINVAL", "udmabuf: no pages");
    const pages: number[] = [];
    const inodes: ShmemInode[] = [];
    const unwind = (): void => {
      for (const ino of inodes) ino.unpin();
    };
    let buf: DmaBuf<Udmabuf>;
    try {
      for (const it of items) {
        if (!current.files.has(it.memfd))
          throw new KernelError("EBADFD", `udmabuf: fd ${it.memfd} is not open`);
        const file = current.files.lookup(it.memfd);
        if (!isShmemFile(file))
          throw new KernelError("EBADFD", `udmabuf: fd ${it.memfd} is not a memfd`);
        const seals = memfdFcntl(file, F_GET_SEALS, 0);
        if ((seals & SEALS_WANTED) !== SEALS_WANTED || (seals & SEALS_DENIED) !== 0) {
          throw new KernelError(
            "EINVAL",
            `udmabuf: memfd ${it.memfd} needs F_SEAL_SHRINK and must not have F_SEAL_WRITE or F_SEAL_FUTURE_WRITE`,
          );
        }
        const ino = file.privateData;
        // memfd_pin_folios(): EINVAL when the range's last byte is at or past i_size,
        // so a range covering the partial last page of the memfd is refused.
        if (it.offset + it.size > ino.size) {
          throw new KernelError(
            "EINVAL",
            `udmabuf: range ${it.offset}+${it.size} is beyond the memfd's ${ino.size} bytes`,
          );
        }
        ino.pin();
        inodes.push(ino);
        for (let i = 0; i < it.size / PAGE_SIZE; i++)
          pages.push(ino.page(it.offset / PAGE_SIZE + i));
      }
      const ub: Udmabuf = { dev: this, pages, inodes, sg: undefined };
      buf = dmaBufExport(this.core, {
        expName: "udmabuf",
        ops: udmabufOps,
        size: pagecount * PAGE_SIZE,
        flags: O_RDWR,
        priv: ub,
      });
    } catch (e) {
      unwind();
      throw e;
    }
    // Once exported the buffer owns the pins: a failed dma_buf_fd (EMFILE) drops it and
    // its release unpins ("udmabuf: fix memory leak on last export_udmabuf() error
    // path", 6.13 and 6.12 stable; 6.12.0 leaks the buffer here).
    try {
      return dmaBufFd(buf, current, flags & UDMABUF_FLAGS_CLOEXEC ? O_CLOEXEC : 0);
    } catch (e) {
      buf.put();
      throw e;
    }
  }
}

/** udmabuf_ioctl(). */
export const udmabufFops: FileOperations = {
  name: "udmabuf",
  unlockedIoctl(file, cmd, arg, current) {
    const dev = file.privateData as UdmabufDevice;
    if (cmd === UDMABUF_CREATE) {
      const s = new CStruct(current.copyFromUser(arg, SIZEOF_UDMABUF_CREATE));
      return dev.create(current, s.u32(4), [
        { memfd: s.u32(0), offset: s.u64(8), size: s.u64(16) },
      ]);
    }
    if (cmd === UDMABUF_CREATE_LIST) {
      const head = new CStruct(current.copyFromUser(arg, SIZEOF_UDMABUF_CREATE_LIST));
      const count = head.u32(4);
      ensure(
        count <= dev.params.listLimit,
        "EINVAL",
        `udmabuf: list of ${count} items exceeds list_limit ${dev.params.listLimit}`,
      );
      const raw = new CStruct(
        current.copyFromUser(arg + SIZEOF_UDMABUF_CREATE_LIST, count * SIZEOF_UDMABUF_CREATE_ITEM),
      );
      const items: CreateItem[] = [];
      for (let i = 0; i < count; i++) {
        const o = i * SIZEOF_UDMABUF_CREATE_ITEM;
        items.push({ memfd: raw.u32(o), offset: raw.u64(o + 8), size: raw.u64(o + 16) });
      }
      return dev.create(current, head.u32(0), items);
    }
    throw new KernelError("ENOTTY", `udmabuf: unknown ioctl 0x${cmd.toString(16)}`);
  },
};
