/**
 * The DMA scatter-gather allocator of videobuf2
 * (drivers/media/common/videobuf2/videobuf2-dma-sg.c): planes are lists of pages.
 *
 * - MMAP: pages from the page allocator, largest order first (vb2_dma_sg_alloc_compacted),
 *   cleared through the cached linear map, mapped with DMA_ATTR_SKIP_CPU_SYNC; the user
 *   mapping is cached. There is no coherent variant: dma-sg ignores
 *   V4L2_MEMORY_FLAG_NON_COHERENT and always syncs in prepare/finish (unless a cache
 *   hint skips it).
 * - USERPTR: the caller's pinned pages, any layout.
 * - DMABUF: the importer's attachment, any layout (no contiguity check).
 *
 * An exported MMAP buffer maps importers with full syncs, and its begin/end_cpu_access
 * sync the buffer's own mapping for the CPU and back (dma_sync_sg_for_cpu/_for_device).
 */

import {
  DMA_ATTR_SKIP_CPU_SYNC,
  DMA_TO_DEVICE,
  type DmaDirection,
} from "../../../dma/direction.js";
import type { DmaMappingApi } from "../../../dma/mapping.js";
import { type SgTable, sgAllocTableFromPages } from "../../../dma/scatterlist.js";
import {
  type DmaBuf,
  type DmaBufAttachment,
  type DmaBufCore,
  type DmaBufOps,
  dmaBufExport,
} from "../../../dma-buf/dma-buf.js";
import { ensure, KernelError } from "../../../errno.js";
import type { CpuMapping } from "../../../machine/cpu.js";
import type { DmaDevice, DmaSegment } from "../../../machine/device.js";
import { PAGE_SIZE } from "../../../machine/memory.js";
import type { PhysRange } from "../../../machine/violations.js";
import type { Current, Vma } from "../../../vfs/file.js";
import type { Vb2Buffer, Vb2MemOps, Vb2PlaneMem } from "./videobuf2-core.js";
import {
  Vb2ExportAttachment,
  vb2CommonVmOpen,
  vb2CreateFramevec,
  vb2RegisterMemory,
} from "./videobuf2-memops.js";

/** Sync helpers shared by MMAP and USERPTR planes (vb2_dma_sg_prepare / _finish). */
abstract class SgPlane implements Vb2PlaneMem {
  abstract readonly size: number;
  abstract readonly sgt: SgTable;

  constructor(
    readonly api: DmaMappingApi,
    readonly dev: DmaDevice,
    readonly vb: Vb2Buffer,
    readonly dir: DmaDirection,
  ) {}

  dmaSegments(): DmaSegment[] {
    return this.sgt.dmaSegments();
  }

  /** vb2_dma_sg_prepare(). */
  prepare(): void {
    if (this.vb.skipCacheSyncOnPrepare) return;
    this.api.dmaSyncSgtableForDevice(this.dev, this.sgt, this.dir);
  }

  /** vb2_dma_sg_finish() (the model also hands DMA_TO_DEVICE buffers back; it is free). */
  finish(): void {
    if (this.vb.skipCacheSyncOnFinish && this.dir !== DMA_TO_DEVICE) return;
    this.api.dmaSyncSgtableForCpu(this.dev, this.sgt, this.dir);
  }

  abstract numUsers(): number;
}

/** struct vb2_dma_sg_buf for an MMAP plane. */
class SgMmapBuf extends SgPlane {
  #refcount = 1;
  readonly sgt: SgTable;
  readonly #chunks: { pfn: number; order: number }[] = [];
  readonly ranges: PhysRange[];
  readonly #region: number;
  #vmap: CpuMapping | undefined;

  constructor(
    api: DmaMappingApi,
    readonly core: DmaBufCore,
    dev: DmaDevice,
    vb: Vb2Buffer,
    readonly size: number,
  ) {
    super(api, dev, vb, vb.queue.dmaDir);
    const m = api.m;
    // vb2_dma_sg_alloc_compacted(): the largest order that does not over-allocate, then smaller.
    let left = size;
    const pages: number[] = [];
    try {
      while (left > 0) {
        let order = Math.floor(Math.log2(left / PAGE_SIZE));
        for (;;) {
          try {
            const pfn = m.pages.alloc(order);
            this.#chunks.push({ pfn, order });
            for (let i = 0; i < 1 << order; i++) pages.push((pfn + i) * PAGE_SIZE);
            break;
          } catch (e) {
            if (!(e instanceof KernelError) || order === 0) throw e;
            order--;
          }
        }
        left -= PAGE_SIZE << order;
      }
    } catch (e) {
      for (const c of this.#chunks) m.pages.free(c.pfn);
      throw new KernelError(
        "ENOMEM",
        `vb2-dma-sg: out of pages (${e instanceof Error ? e.message : e})`,
      );
    }
    this.ranges = this.#chunks.map((c) => ({ phys: c.pfn * PAGE_SIZE, len: PAGE_SIZE << c.order }));
    // __GFP_ZERO: cleared through the cacheable linear map.
    m.cpu.zeroPhysRanges(this.ranges);
    // As in videobuf2-dma-contig.ts: the zeroing is written back at allocation (a
    // deviation from Linux, so a first QBUF with NO_CACHE_CLEAN meets clean memory).
    if (!this.dev.coherent) m.maintain("clean", this.ranges, "vb2 alloc zeroing");
    this.sgt = sgAllocTableFromPages(pages, 0, size);
    try {
      // No sync: prepare() does it at QBUF.
      api.dmaMapSgtable(dev, this.sgt, this.dir, DMA_ATTR_SKIP_CPU_SYNC);
    } catch (e) {
      for (const c of this.#chunks) m.pages.free(c.pfn);
      throw new KernelError(
        "ENOMEM",
        `vb2-dma-sg: mapping failed (${e instanceof Error ? e.message : e})`,
      );
    }
    // A fresh buffer is the CPU's; for DMA_TO_DEVICE saying so costs nothing.
    if (this.dir === DMA_TO_DEVICE) api.dmaSyncSgtableForCpu(dev, this.sgt, this.dir);
    this.#region = vb2RegisterMemory(vb, this.ranges);
  }

  numUsers(): number {
    return this.#refcount;
  }

  get(): void {
    this.#refcount++;
  }

  /** vb2_dma_sg_put(). */
  put(): void {
    if (--this.#refcount > 0) return;
    const m = this.api.m;
    m.violations.unregister(this.#region);
    this.api.dmaUnmapSgtable(this.dev, this.sgt, this.dir, DMA_ATTR_SKIP_CPU_SYNC);
    if (this.#vmap) m.cpu.unmap(this.#vmap);
    for (const c of this.#chunks) m.pages.free(c.pfn);
  }

  /** vb2_dma_sg_mmap(): vm_map_pages, cached. */
  mmap(vma: Vma): void {
    const pages = Math.ceil(vma.length / PAGE_SIZE);
    const all = this.sgt.physRanges();
    const out: PhysRange[] = [];
    let skip = vma.pgoff * PAGE_SIZE;
    let want = pages * PAGE_SIZE;
    for (const r of all) {
      if (want <= 0) break;
      if (skip >= r.len) {
        skip -= r.len;
        continue;
      }
      const n = Math.min(r.len - skip, want);
      out.push({ phys: r.phys + skip, len: n });
      want -= n;
      skip = 0;
    }
    vma.ranges = out;
    vma.attr = "cached";
    vb2CommonVmOpen(
      vma,
      () => this.get(),
      () => this.put(),
    );
  }

  /** vb2_dma_sg_vaddr(): vm_map_ram of the pages. */
  vaddr(): CpuMapping {
    this.#vmap ??= this.api.m.cpu.map(
      this.ranges,
      "cached",
      `vb2-dma-sg vmap ${this.vb.queue.name} ${this.vb.index}`,
    );
    return this.#vmap;
  }

  /** vb2_dma_sg_get_dmabuf(). */
  getDmabuf(flags: number): DmaBuf {
    const dbuf = dmaBufExport<SgMmapBuf>(this.core, {
      expName: "videobuf2_dma_sg",
      ops: vb2DmaSgDmabufOps,
      size: this.size,
      flags,
      priv: this,
    });
    this.get();
    return dbuf;
  }
}

/** vb2_dma_sg_dmabuf_ops. */
const vb2DmaSgDmabufOps: DmaBufOps<SgMmapBuf> = {
  attach(buf, a) {
    a.priv = new Vb2ExportAttachment(buf.priv.sgt.dup(), 0, "vb2-dma-sg");
  },
  detach(buf, a) {
    (a.priv as Vb2ExportAttachment | undefined)?.unmap(buf.priv.api, a.dev);
    a.priv = undefined;
  },
  mapDmaBuf(a: DmaBufAttachment<SgMmapBuf>, dir) {
    return (a.priv as Vb2ExportAttachment).map(a.dmabuf.priv.api, a.dev, dir);
  },
  unmapDmaBuf() {
    // Nothing: the mapping is cached in the attachment until detach.
  },
  release(buf) {
    buf.priv.put();
  },
  beginCpuAccess(buf) {
    const b = buf.priv;
    b.api.dmaSyncSgForCpu(b.dev, b.sgt, b.sgt.nents, b.dir);
  },
  endCpuAccess(buf) {
    const b = buf.priv;
    b.api.dmaSyncSgForDevice(b.dev, b.sgt, b.sgt.nents, b.dir);
  },
  mmap(buf, vma) {
    buf.resv.assertHeld("vb2_dma_sg_dmabuf_ops_mmap");
    buf.priv.mmap(vma);
  },
  vmap(buf) {
    return buf.priv.vaddr();
  },
  vunmap() {
    // The kernel mapping stays with the buffer (vb2_dma_sg_put removes it).
  },
};

/** struct vb2_dma_sg_buf for a USERPTR plane. */
class SgUserptrBuf extends SgPlane {
  readonly sgt: SgTable;
  readonly #release: () => void;
  readonly #region: number;

  constructor(
    api: DmaMappingApi,
    dev: DmaDevice,
    vb: Vb2Buffer,
    vaddr: number,
    readonly size: number,
    current: Current,
  ) {
    super(api, dev, vb, vb.queue.dmaDir);
    ensure(size > 0, "EINVAL", "vb2-dma-sg: size is zero");
    const vec = vb2CreateFramevec(current, vaddr, size, this.dir !== DMA_TO_DEVICE);
    try {
      this.sgt = sgAllocTableFromPages(vec.pages, vaddr % PAGE_SIZE, size);
      try {
        api.dmaMapSgtable(dev, this.sgt, this.dir, DMA_ATTR_SKIP_CPU_SYNC);
      } catch (e) {
        if (e instanceof KernelError)
          throw new KernelError("ENOMEM", "vb2-dma-sg: failed to map scatterlist");
        throw e;
      }
    } catch (e) {
      vec.release();
      throw e;
    }
    this.#release = vec.release;
    this.#region = vb2RegisterMemory(vb, this.sgt.physRanges());
  }

  numUsers(): number {
    return 1;
  }

  /** vb2_dma_sg_put_userptr(). */
  putUserptr(): void {
    this.api.m.violations.unregister(this.#region);
    this.api.dmaUnmapSgtable(this.dev, this.sgt, this.dir, DMA_ATTR_SKIP_CPU_SYNC);
    this.#release();
  }
}

/** struct vb2_dma_sg_buf for a DMABUF plane. */
class SgDmabufBuf implements Vb2PlaneMem {
  readonly #attach: DmaBufAttachment;
  #sgt: SgTable | undefined;
  #region = 0;
  readonly #dir: DmaDirection;

  constructor(
    readonly dev: DmaDevice,
    readonly vb: Vb2Buffer,
    readonly dbuf: DmaBuf,
    readonly size: number,
  ) {
    this.#dir = vb.queue.dmaDir;
    this.#attach = dbuf.attach(dev);
  }

  dmaSegments(): DmaSegment[] {
    return this.#sgt?.dmaSegments() ?? [];
  }

  prepare(): void {
    // The exporter syncs DMABUF memory.
  }

  finish(): void {
    // The exporter syncs DMABUF memory.
  }

  numUsers(): number {
    return 1;
  }

  /** vb2_dma_sg_map_dmabuf(). */
  mapDmabuf(): void {
    if (this.#sgt !== undefined) return;
    try {
      this.#sgt = this.dbuf.mapAttachment(this.#attach, this.#dir);
    } catch (e) {
      if (e instanceof KernelError)
        throw new KernelError(
          "EINVAL",
          `vb2-dma-sg: error getting dmabuf scatterlist: ${e.message}`,
        );
      throw e;
    }
    this.#region = vb2RegisterMemory(this.vb, this.#sgt.physRanges());
  }

  /** vb2_dma_sg_unmap_dmabuf(). */
  unmapDmabuf(): void {
    if (this.#sgt === undefined) return;
    this.vb.queue.machine.violations.unregister(this.#region);
    this.dbuf.unmapAttachment(this.#attach, this.#sgt, this.#dir);
    this.#sgt = undefined;
  }

  /** vb2_dma_sg_detach_dmabuf(). */
  detachDmabuf(): void {
    if (this.#sgt !== undefined) this.unmapDmabuf();
    this.dbuf.detach(this.#attach);
  }
}

/** vb2_dma_sg_memops: DMA through `api`; EXPBUF exports into the dma-buf `core`. */
export function vb2DmaSgMemops(api: DmaMappingApi, core: DmaBufCore): Vb2MemOps {
  return {
    name: "dma-sg",
    alloc: (vb, dev, size) => new SgMmapBuf(api, core, dev, vb, size),
    getUserptr: (vb, dev, vaddr, size, current) =>
      new SgUserptrBuf(api, dev, vb, vaddr, size, current),
    attachDmabuf(vb, dev, dbuf, size) {
      if (dbuf.size < size)
        throw new KernelError(
          "EFAULT",
          `vb2-dma-sg: dma-buf of ${dbuf.size} bytes is smaller than ${size}`,
        );
      return new SgDmabufBuf(dev, vb, dbuf, size);
    },
  };
}
