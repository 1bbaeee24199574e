/**
 * The DMA-contig allocator of videobuf2 (drivers/media/common/videobuf2/videobuf2-dma-contig.c):
 * every plane is one range in the device's DMA address space.
 *
 * - MMAP, coherent (the default): dma_alloc_attrs() memory. No cache maintenance at
 *   QBUF/DQBUF; the user mapping has the coherent attribute (write-combined on ARM when
 *   the device does not snoop), so CPU reads are slow but never stale.
 * - MMAP, V4L2_MEMORY_FLAG_NON_COHERENT (queue allows cache hints): contiguous pages
 *   (dma_alloc_noncontiguous without an IOMMU), mapped cached for the user; prepare
 *   (QBUF) does dma_sync_sgtable_for_device and finish (buffer done) does
 *   dma_sync_sgtable_for_cpu, unless the buffer's cache hints skip them.
 * - USERPTR: the caller's pinned pages, which must be DMA-contiguous (EFAULT otherwise:
 *   without an IOMMU that means physically contiguous); synced like non-coherent MMAP.
 * - DMABUF: the importer's attachment, mapped at the QBUF that attaches it and kept
 *   mapped until vb2 lets go of the dma-buf (6.12); refused with EFAULT when the mapped
 *   table is not one contiguous DMA range (vb2_dc_map_dmabuf). prepare/finish are skipped
 *   (skip_cache_sync_on_*), so the exporter's map and its begin/end_cpu_access
 *   (DMA_BUF_IOCTL_SYNC) are the only cache maintenance.
 *
 * An exported MMAP buffer (EXPBUF) maps importers with DMA_ATTR_SKIP_CPU_SYNC. Its
 * begin/end_cpu_access sync vb2's own mapping of non-coherent memory for the CPU and
 * for the device, as Linux does since the 2025 fix "media: videobuf2: dma-contig:
 * ...begin/end_cpu_access" (Mikhail Rudenko, Cc stable). Before it both did nothing,
 * so DMA_BUF_IOCTL_SYNC on a V4L2_MEMORY_FLAG_NON_COHERENT export gave no cache
 * maintenance at all; `legacyNoopCpuAccess` reproduces those kernels.
 */

import {
  DMA_ATTR_SKIP_CPU_SYNC,
  DMA_TO_DEVICE,
  type DmaDirection,
} from "../../../dma/direction.js";
import { type CoherentAllocation, type DmaMappingApi, dmaPgprot } from "../../../dma/mapping.js";
import { type SgTable, sgAllocTableFromPages } from "../../../dma/scatterlist.js";
import {
  type DmaBuf,
  type DmaBufAttachment,
  type DmaBufCore,
  type DmaBufOps,
  dmaBufExport,
} from "../../../dma-buf/dma-buf.js";
import { sliceRanges } from "../../../dma-buf/heaps/heap-buffer.js";
import { ensure, KernelError } from "../../../errno.js";
import type { CpuMapping } from "../../../machine/cpu.js";
import type { DmaDevice, DmaSegment } from "../../../machine/device.js";
import type { Machine } from "../../../machine/machine.js";
import { PAGE_SIZE } from "../../../machine/memory.js";
import type { PhysRange } from "../../../machine/violations.js";
import type { Current, Vma } from "../../../vfs/file.js";
import type { Vb2Buffer, Vb2MemOps, Vb2PlaneMem } from "./videobuf2-core.js";
import {
  dmaGetCacheAlignment,
  Vb2ExportAttachment,
  vb2CommonVmOpen,
  vb2CreateFramevec,
  vb2RegisterMemory,
} from "./videobuf2-memops.js";

/** vb2_dc_get_contiguous_size(): bytes from the first DMA segment on that follow on without a gap. */
export function vb2DcContiguousSize(sgt: SgTable): number {
  const segs = sgt.dmaSegments();
  if (segs.length === 0) return 0;
  let expected = segs[0]!.dmaAddr;
  let size = 0;
  for (const s of segs) {
    if (s.dmaAddr !== expected) break;
    expected += s.len;
    size += s.len;
  }
  return size;
}

/** struct vb2_dc_buf for an MMAP plane. */
class DcMmapBuf implements Vb2PlaneMem {
  #refcount = 1;
  readonly #m: Machine;
  readonly #dir: DmaDirection;
  readonly nonCoherentMem: boolean;
  readonly #coherent: CoherentAllocation | undefined;
  /** Non-coherent memory: the pages and their streaming mapping (buf->dma_sgt). */
  readonly #phys: number;
  readonly #sgt: SgTable | undefined;
  readonly dmaAddr: number;
  readonly ranges: PhysRange[];
  readonly #region: number;
  #vmap: CpuMapping | undefined;

  constructor(
    readonly api: DmaMappingApi,
    readonly core: DmaBufCore,
    readonly dev: DmaDevice,
    readonly vb: Vb2Buffer,
    readonly size: number,
    /** Kernels before the 2025 fix: begin/end_cpu_access did nothing. */
    readonly legacyNoopCpuAccess = false,
  ) {
    const q = vb.queue;
    this.#m = api.m;
    this.#dir = q.dmaDir;
    this.nonCoherentMem = q.nonCoherentMem;
    if (!this.nonCoherentMem) {
      // vb2_dc_alloc_coherent(): dma_alloc_attrs().
      const a = api.dmaAllocCoherent(dev, size);
      this.#coherent = a;
      this.#phys = a.phys;
      this.dmaAddr = a.dmaHandle;
      this.#sgt = undefined;
    } else {
      // vb2_dc_alloc_non_coherent(): dma_alloc_noncontiguous(), which without an IOMMU
      // is one block of pages the device can reach, cleared through the cached linear map.
      let phys: number;
      try {
        phys = this.#m.cma.alloc(size / PAGE_SIZE, Math.min(size / PAGE_SIZE, 256));
      } catch (e) {
        if (e instanceof KernelError)
          throw new KernelError("ENOMEM", `dma alloc of size ${size} failed`);
        throw e;
      }
      this.#m.cpu.zeroPhys(phys, size);
      // The zeroing's dirty lines are written back now. Linux's dma_direct_alloc_pages()
      // only memsets (kernel/dma/direct.c) and leaves them to the first prepare; a
      // first QBUF with V4L2_BUF_FLAG_NO_CACHE_CLEAN skips that, so the device would
      // write under dirty lines. The model cleans here instead (a deviation; see
      // docs/v4l2.md), so the cache-hints strategy starts from clean memory.
      if (!dev.coherent) this.#m.maintain("clean", [{ phys, len: size }], "vb2 alloc zeroing");
      const sgt = sgAllocTableFromPages(pagesOf(phys, size), 0, size);
      try {
        api.dmaMapSgtable(dev, sgt, this.#dir, DMA_ATTR_SKIP_CPU_SYNC);
      } catch (e) {
        this.#m.cma.free(phys);
        throw e;
      }
      // The CPU owns a fresh buffer. For DMA_TO_DEVICE the sync is free on every
      // architecture; it tells the ownership checker that userspace may fill it.
      if (this.#dir === DMA_TO_DEVICE) api.dmaSyncSgtableForCpu(dev, sgt, this.#dir);
      this.#phys = phys;
      this.#sgt = sgt;
      this.dmaAddr = sgt.sgl[0]!.dmaAddress;
      this.#coherent = undefined;
    }
    this.ranges = [{ phys: this.#phys, len: size }];
    this.#region = vb2RegisterMemory(vb, this.ranges);
  }

  dmaSegments(): DmaSegment[] {
    return [{ dmaAddr: this.dmaAddr, len: this.size }];
  }

  /** vb2_dc_dmabuf_ops_begin_cpu_access(): vb2's own mapping, with the queue's direction. */
  beginCpuAccess(): void {
    if (!this.nonCoherentMem || this.legacyNoopCpuAccess) return;
    this.api.dmaSyncSgtableForCpu(this.dev, this.#sgt!, this.#dir);
  }

  /** vb2_dc_dmabuf_ops_end_cpu_access(). */
  endCpuAccess(): void {
    if (!this.nonCoherentMem || this.legacyNoopCpuAccess) return;
    this.api.dmaSyncSgtableForDevice(this.dev, this.#sgt!, this.#dir);
  }

  /** vb2_dc_prepare(). */
  prepare(): void {
    if (this.vb.skipCacheSyncOnPrepare || !this.nonCoherentMem) return;
    this.api.dmaSyncSgtableForDevice(this.dev, this.#sgt!, this.#dir);
  }

  /** vb2_dc_finish(). */
  finish(): void {
    if (!this.nonCoherentMem) return;
    // For DMA_TO_DEVICE vb2 skips the (free) sync; the model makes it so the ownership
    // checker sees the buffer handed back.
    if (this.vb.skipCacheSyncOnFinish && this.#dir !== DMA_TO_DEVICE) return;
    this.api.dmaSyncSgtableForCpu(this.dev, this.#sgt!, this.#dir);
  }

  numUsers(): number {
    return this.#refcount;
  }

  get(): void {
    this.#refcount++;
  }

  /** vb2_dc_put(): the memory goes with the last reference (vb2, an mmap, an exported dma-buf). */
  put(): void {
    if (--this.#refcount > 0) return;
    this.#m.violations.unregister(this.#region);
    if (this.#coherent !== undefined) {
      const a = this.#coherent;
      this.api.dmaFreeCoherent(this.dev, this.size, a.cpuAddr, a.dmaHandle);
    } else {
      if (this.#vmap) this.#m.cpu.unmap(this.#vmap);
      this.api.dmaUnmapSgtable(this.dev, this.#sgt!, this.#dir, DMA_ATTR_SKIP_CPU_SYNC);
      this.#m.cma.free(this.#phys);
    }
  }

  /** vb2_dc_mmap(): dma_mmap_attrs (coherent attribute) or dma_mmap_noncontiguous (cached). */
  mmap(vma: Vma): void {
    vma.ranges = sliceRanges(this.ranges, vma.pgoff * PAGE_SIZE, vma.length);
    vma.attr = this.nonCoherentMem ? "cached" : dmaPgprot(this.#m, this.dev);
    vb2CommonVmOpen(
      vma,
      () => this.get(),
      () => this.put(),
    );
  }

  /** vb2_dc_vaddr(). */
  vaddr(): CpuMapping | undefined {
    if (this.#coherent !== undefined) return this.#coherent.cpuAddr ?? undefined;
    this.#vmap ??= this.#m.cpu.map(
      this.ranges,
      "cached",
      `vb2-dc vmap ${this.vb.queue.name} ${this.vb.index}`,
    );
    return this.#vmap;
  }

  /** vb2_dc_get_dmabuf(): exports with vb2_dc_dmabuf_ops; the dma-buf holds a reference. */
  getDmabuf(flags: number): DmaBuf {
    const dbuf = dmaBufExport<DcMmapBuf>(this.core, {
      expName: "videobuf2_dma_contig",
      ops: vb2DcDmabufOps,
      size: this.size,
      flags,
      priv: this,
    });
    this.get();
    return dbuf;
  }

  /** buf->sgt_base: dma_get_sgtable() of the memory (one entry), or the non-coherent table. */
  baseSgt(): SgTable {
    return this.#sgt ?? sgAllocTableFromPages(pagesOf(this.#phys, this.size), 0, this.size);
  }
}

function pagesOf(phys: number, size: number): number[] {
  return Array.from({ length: Math.ceil(size / PAGE_SIZE) }, (_, i) => phys + i * PAGE_SIZE);
}

/** vb2_dc_dmabuf_ops. */
const vb2DcDmabufOps: DmaBufOps<DcMmapBuf> = {
  attach(buf, a) {
    a.priv = new Vb2ExportAttachment(buf.priv.baseSgt().dup(), DMA_ATTR_SKIP_CPU_SYNC, "vb2-dc");
  },
  detach(buf, a) {
    // "Cache sync can be skipped here, as the vb2_dc memory is allocated from device
    // coherent memory" - which is not so for non-coherent buffers; Linux skips it anyway.
    (a.priv as Vb2ExportAttachment | undefined)?.unmap(buf.priv.api, a.dev);
    a.priv = undefined;
  },
  mapDmaBuf(a: DmaBufAttachment<DcMmapBuf>, dir) {
    return (a.priv as Vb2ExportAttachment).map(a.dmabuf.priv.api, a.dev, dir);
  },
  unmapDmaBuf() {
    // Nothing: the mapping is cached in the attachment until detach.
  },
  release(buf) {
    buf.priv.put();
  },
  beginCpuAccess(buf) {
    buf.priv.beginCpuAccess();
  },
  endCpuAccess(buf) {
    buf.priv.endCpuAccess();
  },
  mmap(buf, vma) {
    buf.resv.assertHeld("vb2_dc_dmabuf_ops_mmap");
    buf.priv.mmap(vma);
  },
  vmap(buf) {
    const v = buf.priv.vaddr();
    if (v === undefined) throw new KernelError("EINVAL", "vb2-dc: no kernel mapping");
    return v;
  },
  vunmap() {
    // The kernel mapping stays with the buffer (vb2_dc_put removes it).
  },
};

/** struct vb2_dc_buf for a USERPTR plane. */
class DcUserptrBuf implements Vb2PlaneMem {
  readonly #sgt: SgTable;
  readonly #release: () => void;
  readonly dmaAddr: number;
  readonly #region: number;
  readonly #dir: DmaDirection;

  constructor(
    readonly api: DmaMappingApi,
    readonly dev: DmaDevice,
    readonly vb: Vb2Buffer,
    vaddr: number,
    readonly size: number,
    current: Current,
  ) {
    const m = api.m;
    this.#dir = vb.queue.dmaDir;
    const align = dmaGetCacheAlignment(m.profile.arch, m.cache.line);
    ensure(
      (vaddr | size) % align === 0,
      "EINVAL",
      `vb2-dc: user data must be aligned to ${align} bytes`,
    );
    ensure(size > 0, "EINVAL", "vb2-dc: size is zero");
    const offset = vaddr % PAGE_SIZE;
    const vec = vb2CreateFramevec(current, vaddr, size, this.#dir !== DMA_TO_DEVICE);
    let sgt: SgTable;
    try {
      sgt = sgAllocTableFromPages(vec.pages, offset, size);
      try {
        // No sync here: prepare() does it at QBUF.
        api.dmaMapSgtable(dev, sgt, this.#dir, DMA_ATTR_SKIP_CPU_SYNC);
      } catch (e) {
        if (e instanceof KernelError)
          throw new KernelError("EIO", "vb2-dc: failed to map scatterlist");
        throw e;
      }
      const contig = vb2DcContiguousSize(sgt);
      if (contig < size) {
        api.dmaUnmapSgtable(dev, sgt, this.#dir, DMA_ATTR_SKIP_CPU_SYNC);
        throw new KernelError(
          "EFAULT",
          `vb2-dc: contiguous mapping is too small ${contig}/${size} (the pages are scattered and ${dev.name} has no IOMMU)`,
        );
      }
    } catch (e) {
      vec.release();
      throw e;
    }
    this.#sgt = sgt;
    this.#release = vec.release;
    this.dmaAddr = sgt.sgl[0]!.dmaAddress;
    this.#region = vb2RegisterMemory(vb, sgt.physRanges());
  }

  dmaSegments(): DmaSegment[] {
    return [{ dmaAddr: this.dmaAddr, len: this.size }];
  }

  prepare(): void {
    if (this.vb.skipCacheSyncOnPrepare) return;
    this.api.dmaSyncSgtableForDevice(this.dev, this.#sgt, this.#dir);
  }

  finish(): void {
    if (this.vb.skipCacheSyncOnFinish && this.#dir !== DMA_TO_DEVICE) return;
    this.api.dmaSyncSgtableForCpu(this.dev, this.#sgt, this.#dir);
  }

  numUsers(): number {
    return 1;
  }

  /** vb2_dc_put_userptr(): already synced for the CPU by finish. */
  putUserptr(): void {
    this.api.m.violations.unregister(this.#region);
    this.api.dmaUnmapSgtable(this.dev, this.#sgt, this.#dir, DMA_ATTR_SKIP_CPU_SYNC);
    this.#release();
  }
}

/** struct vb2_dc_buf for a DMABUF plane. */
class DcDmabufBuf implements Vb2PlaneMem {
  readonly #attach: DmaBufAttachment;
  #sgt: SgTable | undefined;
  dmaAddr = 0;
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
    return [{ dmaAddr: this.dmaAddr, len: this.size }];
  }

  prepare(): void {
    // skip_cache_sync_on_prepare is always set for DMABUF: the exporter syncs.
  }

  finish(): void {
    // skip_cache_sync_on_finish is always set for DMABUF.
  }

  numUsers(): number {
    return 1;
  }

  /** vb2_dc_map_dmabuf(): EFAULT when the mapping is not one contiguous DMA range. */
  mapDmabuf(): void {
    if (this.#sgt !== undefined) {
      this.vb.queue.machine.violations.report({
        kind: "api-misuse",
        api: "v4l2",
        time: this.vb.queue.machine.now,
        agent: this.vb.queue.name,
        phys: -1,
        len: 0,
        message: "vb2-dc: dmabuf buffer is already pinned",
        hint: "map_dmabuf once per attachment: vb2 keeps it mapped until __vb2_plane_dmabuf_put",
      });
      return;
    }
    let sgt: SgTable;
    try {
      sgt = this.dbuf.mapAttachment(this.#attach, this.#dir);
    } catch (e) {
      if (e instanceof KernelError)
        throw new KernelError("EINVAL", `vb2-dc: error getting dmabuf scatterlist: ${e.message}`);
      throw e;
    }
    const contig = vb2DcContiguousSize(sgt);
    if (contig < this.size) {
      this.dbuf.unmapAttachment(this.#attach, sgt, this.#dir);
      throw new KernelError(
        "EFAULT",
        `vb2-dc: contiguous chunk is too small ${contig}/${this.size}: the dma-buf is scattered and ${this.dev.name} has no IOMMU (use a contiguous exporter such as the CMA heap, or the dma-sg allocator)`,
      );
    }
    this.#sgt = sgt;
    this.dmaAddr = sgt.sgl[0]!.dmaAddress;
    this.#region = vb2RegisterMemory(this.vb, sgt.physRanges());
  }

  /** vb2_dc_unmap_dmabuf(). */
  unmapDmabuf(): void {
    if (this.#sgt === undefined) return;
    this.vb.queue.machine.violations.unregister(this.#region);
    this.dbuf.unmapAttachment(this.#attach, this.#sgt, this.#dir);
    this.#sgt = undefined;
    this.dmaAddr = 0;
  }

  /** vb2_dc_detach_dmabuf(). */
  detachDmabuf(): void {
    if (this.#sgt !== undefined) this.unmapDmabuf();
    this.dbuf.detach(this.#attach);
  }
}

/**
 * vb2_dma_contig_memops: DMA through `api`; EXPBUF exports into the dma-buf `core`.
 */
export function vb2DmaContigMemops(
  api: DmaMappingApi,
  core: DmaBufCore,
  options: { legacyNoopCpuAccess?: boolean } = {},
): Vb2MemOps {
  return {
    name: "dma-contig",
    alloc: (vb, dev, size) =>
      new DcMmapBuf(api, core, dev, vb, size, options.legacyNoopCpuAccess ?? false),
    getUserptr: (vb, dev, vaddr, size, current) =>
      new DcUserptrBuf(api, dev, vb, vaddr, size, current),
    attachDmabuf(vb, dev, dbuf, size) {
      if (dbuf.size < size)
        throw new KernelError(
          "EFAULT",
          `vb2-dc: dma-buf of ${dbuf.size} bytes is smaller than ${size}`,
        );
      return new DcDmabufBuf(dev, vb, dbuf, size);
    },
  };
}
