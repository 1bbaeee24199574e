/**
 * The CMA heap (drivers/dma-buf/heaps/cma_heap.c): one physically contiguous block
 * from the contiguous area, aligned to its order up to CONFIG_CMA_ALIGNMENT, cleared by
 * the CPU. Attachments get one merged scatterlist entry. mmap needs MAP_SHARED.
 */

import type { DmaMappingApi } from "../../dma/mapping.js";
import { sgAllocTableFromPages } from "../../dma/scatterlist.js";
import { KernelError } from "../../errno.js";
import { PAGE_SIZE } from "../../machine/memory.js";
import { type DmaBuf, type DmaBufCore, dmaBufExport } from "../dma-buf.js";
import type { DmaHeapOps } from "../dma-heap.js";
import { type HeapBuffer, heapBufferOps } from "./heap-buffer.js";

/** CONFIG_CMA_ALIGNMENT's default: allocations align to at most 2^8 pages. */
export const CMA_ALIGNMENT = 8;

/** cma_heap_allocate(). */
export function cmaHeapAllocate(
  core: DmaBufCore,
  dma: DmaMappingApi,
  len: number,
  fdFlags: number,
): DmaBuf<HeapBuffer> {
  const m = core.machine;
  const pagecount = len / PAGE_SIZE;
  const order = Math.min(Math.ceil(Math.log2(pagecount)), CMA_ALIGNMENT);
  let phys: number;
  try {
    phys = m.cma.alloc(pagecount, 2 ** order);
  } catch (e) {
    if (e instanceof KernelError)
      throw new KernelError("ENOMEM", `cma heap: no ${len} contiguous bytes left`);
    throw e;
  }
  m.cpu.zeroPhys(phys, len);
  const pages = Array.from({ length: pagecount }, (_, i) => phys + i * PAGE_SIZE);
  const priv: HeapBuffer = {
    machine: m,
    dma,
    len,
    ranges: [{ phys, len }],
    attachments: [],
    tableForAttachment: () => sgAllocTableFromPages(pages, 0, len),
    free: () => m.cma.free(phys),
    vmapCount: 0,
    vaddr: undefined,
    mmapNeedsShared: true,
  };
  return dmaBufExport(core, {
    expName: "cma",
    ops: heapBufferOps,
    size: len,
    flags: fdFlags,
    priv,
  });
}

/** The heap as registered with dma-heap. */
export function cmaHeapOps(dma: DmaMappingApi): DmaHeapOps {
  return { allocate: (core, len, fdFlags) => cmaHeapAllocate(core, dma, len, fdFlags) };
}
