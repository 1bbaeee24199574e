/**
 * Shmem-backed GEM objects (drivers/gpu/drm/drm_gem_shmem_helper.c): order-0 pages from
 * the page allocator, scattered as shmem's are, zeroed by the CPU through the kernel's
 * cacheable linear map. The CPU mapping is cached, or write-combined when the driver
 * sets map_wc (vgem always; panfrost-like GPUs when they are not coherent). A
 * driver that uses the object itself maps it once for its own device
 * (drm_gem_shmem_get_pages_sgt). Imported objects wrap the importer's mapped table and
 * forward mmap to the exporter (dma_buf_mmap).
 *
 * Model choice: fresh pages of a write-combined object are flushed out of the CPU cache
 * at allocation (what x86's set_pages_array_wc does), so the dirty zeroes the linear map
 * left cannot later be written back over what the write-combined mapping stored.
 */

import { DMA_BIDIRECTIONAL } from "../../../dma/direction.js";
import { SgTable, sgAllocTableFromPages } from "../../../dma/scatterlist.js";
import type { DmaBufAttachment } from "../../../dma-buf/dma-buf.js";
import { sliceRanges } from "../../../dma-buf/heaps/heap-buffer.js";
import { KernelError } from "../../../errno.js";
import type { DmaDevice, DmaSegment } from "../../../machine/device.js";
import { PAGE_SIZE } from "../../../machine/memory.js";
import type { PhysRange } from "../../../machine/violations.js";
import type { DrmDevice } from "./drm-device.js";
import { DrmGemObject, type DrmGemObjectFuncs } from "./drm-gem.js";
import { drmPrimeGemDestroy } from "./drm-prime.js";

/** struct drm_gem_shmem_object's backing (undefined pages for an import). */
export interface DrmGemShmem {
  /** Physical address of each page, in object order. */
  readonly pages: readonly number[];
  /** The pages merged into physically contiguous runs. */
  readonly ranges: readonly PhysRange[];
  readonly mapWc: boolean;
  /** The driver's own mapping (shmem->sgt) and the device it is for. */
  sgt: SgTable | undefined;
  sgtDev: DmaDevice | undefined;
  region: number;
}

/** What a cached GEM mapping needs that DMA_BUF_IOCTL_SYNC cannot give it. */
const GEM_CACHED_NOTE =
  "a GEM dma-buf has no begin/end_cpu_access (drm_gem_prime_dmabuf_ops), so DMA_BUF_IOCTL_SYNC does no cache maintenance for it: a buffer the CPU writes through a cached mapping needs the exporter to map it write-combined (map_wc, as vgem does)";

function shmemFree(obj: DrmGemObject): void {
  const s = obj.priv as DrmGemShmem | undefined;
  if (obj.importAttach !== undefined) {
    drmPrimeGemDestroy(obj);
    return;
  }
  if (s === undefined) return;
  const host = obj.dev.host;
  if (s.sgt !== undefined && s.sgtDev !== undefined)
    host.dma.dmaUnmapSgtable(s.sgtDev, s.sgt, DMA_BIDIRECTIONAL);
  host.machine.violations.unregister(s.region);
  for (const p of s.pages) host.machine.pages.free(p / PAGE_SIZE);
}

/** drm_gem_shmem_funcs. */
export const drmGemShmemFuncs: DrmGemObjectFuncs = {
  free: shmemFree,
  getSgTable(obj) {
    // drm_gem_shmem_get_sg_table -> drm_prime_pages_to_sg: contiguous pages merge.
    const s = obj.priv as DrmGemShmem;
    return sgAllocTableFromPages(s.pages, 0, obj.size);
  },
  mmap(obj, vma) {
    if (obj.importAttach !== undefined) {
      // drm_gem_shmem_mmap of an import: dma_buf_mmap() on the exporter.
      obj.importAttach.dmabuf.mmap(vma, vma.pgoff);
      return;
    }
    // is_cow_mapping(): a private mapping of a shmem object is refused.
    if (!vma.shared)
      throw new KernelError("EINVAL", "drm_gem_shmem_mmap: MAP_PRIVATE (a copy-on-write mapping)");
    const s = obj.priv as DrmGemShmem;
    vma.ranges = sliceRanges(s.ranges, vma.pgoff * PAGE_SIZE, vma.length);
    vma.attr = s.mapWc ? "writecombine" : "cached";
  },
};

function mergePages(pages: readonly number[]): PhysRange[] {
  const out: { phys: number; len: number }[] = [];
  for (const p of pages) {
    const last = out[out.length - 1];
    if (last !== undefined && last.phys + last.len === p) last.len += PAGE_SIZE;
    else out.push({ phys: p, len: PAGE_SIZE });
  }
  return out;
}

/** drm_gem_shmem_create(): PAGE_ALIGN(size) bytes of zeroed order-0 pages. ENOMEM when out of pages. */
export function drmGemShmemCreate(
  dev: DrmDevice,
  size: number,
  mapWc: boolean,
): DrmGemObject<DrmGemShmem> {
  const m = dev.host.machine;
  const bytes = Math.ceil(size / PAGE_SIZE) * PAGE_SIZE;
  if (bytes === 0) throw new KernelError("EINVAL", "drm_gem_shmem_create: size 0");
  if (bytes > m.profile.ram.size)
    throw new KernelError("ENOMEM", `drm_gem_shmem_create: ${bytes} bytes is more than RAM`);
  const pages: number[] = [];
  try {
    for (let i = 0; i < bytes / PAGE_SIZE; i++) pages.push(m.pages.alloc(0) * PAGE_SIZE);
  } catch (e) {
    for (const p of pages) m.pages.free(p / PAGE_SIZE);
    if (e instanceof KernelError)
      throw new KernelError("ENOMEM", "drm_gem_shmem_create: out of pages");
    throw e;
  }
  const ranges = mergePages(pages);
  // shmem_read_mapping_page: clear_page through the cacheable linear map.
  m.cpu.zeroPhysRanges(ranges);
  if (mapWc) m.maintain("flush", ranges, "shmem pages for a write-combined mapping");
  const region = m.violations.register(
    `${dev.driver.name} GEM object (shmem, ${bytes} bytes${mapWc ? ", write-combined" : ""})`,
    ranges,
    {},
    mapWc ? {} : { "stale-device-read": GEM_CACHED_NOTE, "stale-cpu-read": GEM_CACHED_NOTE },
  );
  const priv: DrmGemShmem = { pages, ranges, mapWc, sgt: undefined, sgtDev: undefined, region };
  return new DrmGemObject(dev, bytes, drmGemShmemFuncs, priv);
}

/** drm_gem_shmem_get_pages_sgt(): the object mapped once for the driver's own device. */
export function drmGemShmemGetPagesSgt(obj: DrmGemObject, dmaDev: DmaDevice): SgTable {
  if (obj.importSgt !== undefined) return obj.importSgt;
  const s = obj.priv as DrmGemShmem;
  if (s.sgt === undefined) {
    const sgt = SgTable.fromRanges(s.ranges);
    obj.dev.host.dma.dmaMapSgtable(dmaDev, sgt, DMA_BIDIRECTIONAL, 0);
    s.sgt = sgt;
    s.sgtDev = dmaDev;
  }
  return s.sgt;
}

/** The DMA segments the driver's device reads and writes the object through. */
export function drmGemShmemDmaSegments(obj: DrmGemObject, dmaDev: DmaDevice): DmaSegment[] {
  return drmGemShmemGetPagesSgt(obj, dmaDev).dmaSegments();
}

/** drm_gem_shmem_prime_import_sg_table(): any table will do (the device does scatter-gather). */
export function drmGemShmemPrimeImportSgTable(
  dev: DrmDevice,
  attach: DmaBufAttachment,
  _sgt: SgTable,
): DrmGemObject {
  return new DrmGemObject(dev, attach.dmabuf.size, drmGemShmemFuncs, undefined);
}
