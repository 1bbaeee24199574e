/**
 * DMA-contiguous GEM objects (drivers/gpu/drm/drm_gem_dma_helper.c), for display
 * controllers that scan out from one DMA address: dma_alloc_wc() memory (the CMA area),
 * a write-combined CPU mapping on non-coherent machines, dma_get_sgtable() for export.
 * Import takes only a table that is contiguous in the device's address space
 * (drm_prime_get_contiguous_size): a scattered buffer without an IOMMU is EINVAL.
 */

import { DMA_ATTR_WRITE_COMBINE } from "../../../dma/direction.js";
import type { CoherentAllocation } from "../../../dma/mapping.js";
import { SgTable } from "../../../dma/scatterlist.js";
import type { DmaBufAttachment } from "../../../dma-buf/dma-buf.js";
import { KernelError } from "../../../errno.js";
import type { DmaSegment } from "../../../machine/device.js";
import { PAGE_SIZE } from "../../../machine/memory.js";
import type { DrmDevice } from "./drm-device.js";
import { DrmGemObject, type DrmGemObjectFuncs } from "./drm-gem.js";
import { drmPrimeGemDestroy } from "./drm-prime.js";

/** struct drm_gem_dma_object's backing. */
export interface DrmGemDma {
  /** The allocation, for objects this device allocated. */
  readonly alloc: CoherentAllocation | undefined;
  /** dma_addr: where the device sees byte 0. */
  readonly dmaAddr: number;
}

function dmaFree(obj: DrmGemObject): void {
  if (obj.importAttach !== undefined) {
    drmPrimeGemDestroy(obj);
    return;
  }
  const d = obj.priv as DrmGemDma;
  const a = d.alloc!;
  obj.dev.host.dma.dmaFreeCoherent(obj.dev.dmaDev, a.size, a.cpuAddr, a.dmaHandle);
}

/** drm_gem_dma_default_funcs. */
export const drmGemDmaFuncs: DrmGemObjectFuncs = {
  free: dmaFree,
  getSgTable(obj) {
    // drm_gem_dma_get_sg_table -> dma_get_sgtable: one entry for the whole block.
    const a = (obj.priv as DrmGemDma).alloc!;
    return SgTable.fromRanges([{ phys: a.phys, len: obj.size }]);
  },
  mmap(obj, vma) {
    if (obj.importAttach !== undefined) {
      obj.importAttach.dmabuf.mmap(vma, vma.pgoff);
      return;
    }
    // drm_gem_dma_mmap -> dma_mmap_wc: the same attribute as the kernel mapping.
    const a = (obj.priv as DrmGemDma).alloc!;
    vma.ranges = [
      {
        phys: a.phys + vma.pgoff * PAGE_SIZE,
        len: Math.min(vma.length, obj.size - vma.pgoff * PAGE_SIZE),
      },
    ];
    vma.attr = a.cpuAddr?.attr ?? "writecombine";
  },
};

/** drm_gem_dma_create(): round_up(size, PAGE_SIZE) contiguous bytes. ENOMEM when CMA is exhausted. */
export function drmGemDmaCreate(dev: DrmDevice, size: number): DrmGemObject<DrmGemDma> {
  const bytes = Math.ceil(size / PAGE_SIZE) * PAGE_SIZE;
  const alloc = dev.host.dma.dmaAllocCoherent(dev.dmaDev, bytes, DMA_ATTR_WRITE_COMBINE);
  return new DrmGemObject(dev, bytes, drmGemDmaFuncs, { alloc, dmaAddr: alloc.dmaHandle });
}

/** drm_prime_get_contiguous_size(): bytes from the start that are contiguous for the device. */
export function drmPrimeGetContiguousSize(sgt: SgTable): number {
  const segs = sgt.dmaSegments();
  if (segs.length === 0) return 0;
  let expected = segs[0]!.dmaAddr;
  let size = 0;
  for (const s of segs) {
    if (s.len === 0) continue;
    if (s.dmaAddr !== expected) break;
    expected += s.len;
    size += s.len;
  }
  return size;
}

/** drm_gem_dma_prime_import_sg_table(): EINVAL unless the table is contiguous for the device. */
export function drmGemDmaPrimeImportSgTable(
  dev: DrmDevice,
  attach: DmaBufAttachment,
  sgt: SgTable,
): DrmGemObject {
  const contiguous = drmPrimeGetContiguousSize(sgt);
  if (contiguous < attach.dmabuf.size)
    throw new KernelError(
      "EINVAL",
      `drm_gem_dma_prime_import_sg_table: ${dev.driver.name} needs a DMA-contiguous buffer; only ${contiguous} of ${attach.dmabuf.size} bytes are contiguous for it (no IOMMU to stitch the pages)`,
    );
  return new DrmGemObject<DrmGemDma>(dev, attach.dmabuf.size, drmGemDmaFuncs, {
    alloc: undefined,
    dmaAddr: sgt.dmaSegments()[0]!.dmaAddr,
  });
}

/** The DMA segments the display reads the object through. */
export function drmGemDmaSegments(obj: DrmGemObject): DmaSegment[] {
  if (obj.importSgt !== undefined) return obj.importSgt.dmaSegments();
  return [{ dmaAddr: (obj.priv as DrmGemDma).dmaAddr, len: obj.size }];
}
