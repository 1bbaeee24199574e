/**
 * What the system and CMA heaps share (drivers/dma-buf/heaps/system_heap.c and
 * cma_heap.c implement it twice; we write it once): each attachment gets its own copy
 * of the buffer's table, mapped for its device at map time, and CPU access is bracketed
 * by syncing every mapped attachment — so a begin/end with nothing mapped does no
 * cache maintenance at all, and the first dma_map_sgtable() does it instead.
 */

import type { DmaDirection } from "../../dma/direction.js";
import type { DmaMappingApi } from "../../dma/mapping.js";
import type { SgTable } from "../../dma/scatterlist.js";
import { KernelError } from "../../errno.js";
import type { CpuMapping } from "../../machine/cpu.js";
import type { DmaDevice } from "../../machine/device.js";
import type { Machine } from "../../machine/machine.js";
import { PAGE_SIZE } from "../../machine/memory.js";
import type { PhysRange } from "../../machine/violations.js";
import type { Vma } from "../../vfs/file.js";
import type { DmaBuf, DmaBufAttachment, DmaBufOps } from "../dma-buf.js";

/** struct dma_heap_attachment. */
export interface HeapAttachment {
  readonly dev: DmaDevice;
  readonly table: SgTable;
  mapped: boolean;
}

/** The heap's private buffer (struct system_heap_buffer / cma_heap_buffer). */
export interface HeapBuffer {
  readonly machine: Machine;
  readonly dma: DmaMappingApi;
  readonly len: number;
  /** The buffer's pages in order. */
  readonly ranges: readonly PhysRange[];
  readonly attachments: HeapAttachment[];
  /** Builds a fresh table for an attachment (dup_sg_table / sg_alloc_table_from_pages). */
  tableForAttachment(): SgTable;
  /** Returns the pages to their allocator. */
  free(): void;
  vmapCount: number;
  vaddr: CpuMapping | undefined;
  /** Whether mmap requires MAP_SHARED (the CMA heap checks, the system heap does not). */
  readonly mmapNeedsShared: boolean;
}

function heapAttach(buf: DmaBuf<HeapBuffer>, a: DmaBufAttachment<HeapBuffer>): void {
  const ha: HeapAttachment = { dev: a.dev, table: buf.priv.tableForAttachment(), mapped: false };
  a.priv = ha;
  buf.priv.attachments.push(ha);
}

function heapDetach(buf: DmaBuf<HeapBuffer>, a: DmaBufAttachment<HeapBuffer>): void {
  const list = buf.priv.attachments;
  list.splice(list.indexOf(a.priv as HeapAttachment), 1);
}

function heapMap(a: DmaBufAttachment<HeapBuffer>, dir: DmaDirection): SgTable {
  const ha = a.priv as HeapAttachment;
  a.dmabuf.priv.dma.dmaMapSgtable(a.dev, ha.table, dir, 0);
  ha.mapped = true;
  return ha.table;
}

function heapUnmap(a: DmaBufAttachment<HeapBuffer>, sgt: SgTable, dir: DmaDirection): void {
  const ha = a.priv as HeapAttachment;
  ha.mapped = false;
  a.dmabuf.priv.dma.dmaUnmapSgtable(a.dev, sgt, dir, 0);
}

function heapBeginCpu(buf: DmaBuf<HeapBuffer>, dir: DmaDirection): void {
  // invalidate_kernel_vmap_range() matters only for aliasing (VIVT) caches; the
  // profiles model PIPT caches, so a vmap needs nothing here.
  const hb = buf.priv;
  for (const a of hb.attachments) if (a.mapped) hb.dma.dmaSyncSgtableForCpu(a.dev, a.table, dir);
}

function heapEndCpu(buf: DmaBuf<HeapBuffer>, dir: DmaDirection): void {
  const hb = buf.priv;
  for (const a of hb.attachments) if (a.mapped) hb.dma.dmaSyncSgtableForDevice(a.dev, a.table, dir);
}

function heapMmap(buf: DmaBuf<HeapBuffer>, vma: Vma): void {
  const hb = buf.priv;
  if (hb.mmapNeedsShared && !vma.shared) {
    throw new KernelError("EINVAL", "heap mmap: the CMA heap only maps MAP_SHARED");
  }
  // system_heap_mmap() calls remap_pfn_range() once per page, and remap_pfn_range()
  // takes a private (copy-on-write) mapping only when one call covers all of it.
  if (!vma.shared && vma.length > PAGE_SIZE) {
    throw new KernelError(
      "EINVAL",
      "heap mmap: a MAP_PRIVATE mapping of more than one page (remap_pfn_range page by page)",
    );
  }
  vma.ranges = sliceRanges(hb.ranges, vma.pgoff * PAGE_SIZE, vma.length);
  vma.attr = "cached";
}

function heapVmap(buf: DmaBuf<HeapBuffer>): CpuMapping {
  const hb = buf.priv;
  hb.vaddr = hb.machine.cpu.map(hb.ranges, "cached", `vmap ${buf.describe()}`);
  hb.vmapCount = 1;
  return hb.vaddr;
}

function heapVunmap(buf: DmaBuf<HeapBuffer>, map: CpuMapping): void {
  buf.priv.machine.cpu.unmap(map);
  buf.priv.vaddr = undefined;
  buf.priv.vmapCount = 0;
}

function heapRelease(buf: DmaBuf<HeapBuffer>): void {
  buf.priv.free();
}

/** The dma_buf_ops both heaps export with. */
export const heapBufferOps: DmaBufOps<HeapBuffer> = {
  attach: heapAttach,
  detach: heapDetach,
  mapDmaBuf: heapMap,
  unmapDmaBuf: heapUnmap,
  release: heapRelease,
  beginCpuAccess: heapBeginCpu,
  endCpuAccess: heapEndCpu,
  mmap: heapMmap,
  vmap: heapVmap,
  vunmap: heapVunmap,
};

/** The sub-ranges covering [offset, offset+len) of a list of ranges laid end to end. */
export function sliceRanges(
  ranges: readonly PhysRange[],
  offset: number,
  len: number,
): PhysRange[] {
  const out: PhysRange[] = [];
  let pos = 0;
  for (const r of ranges) {
    const start = Math.max(offset, pos);
    const end = Math.min(offset + len, pos + r.len);
    if (start < end) out.push({ phys: r.phys + (start - pos), len: end - start });
    pos += r.len;
    if (pos >= offset + len) break;
  }
  return out;
}
