/**
 * The system heap (drivers/dma-buf/heaps/system_heap.c): scattered pages, largest
 * order first (1 MiB, 64 KiB, 4 KiB chunks), zeroed by the allocator through the
 * kernel's cacheable linear map — so on a non-coherent machine a fresh buffer may sit
 * dirty in the CPU cache until the first device mapping cleans it.
 */

import type { DmaMappingApi } from "../../dma/mapping.js";
import { SgTable } from "../../dma/scatterlist.js";
import { ensure, KernelError } from "../../errno.js";
import type { Machine } from "../../machine/machine.js";
import { PAGE_SIZE } from "../../machine/memory.js";
import type { PhysRange } from "../../machine/violations.js";
import { type DmaBuf, type DmaBufCore, dmaBufExport } from "../dma-buf.js";
import type { DmaHeapOps } from "../dma-heap.js";
import { type HeapBuffer, heapBufferOps } from "./heap-buffer.js";

/** The page orders the system heap tries, largest first (orders[] in system_heap.c). */
export const SYSTEM_HEAP_ORDERS = [8, 4, 0] as const;

/** alloc_largest_available(): the biggest order that fits what is left and is not above `maxOrder`. */
function allocLargestAvailable(
  m: Machine,
  remaining: number,
  maxOrder: number,
): { pfn: number; order: number } | undefined {
  for (const order of SYSTEM_HEAP_ORDERS) {
    if (remaining < PAGE_SIZE << order) continue;
    if (maxOrder < order) continue;
    try {
      return { pfn: m.pages.alloc(order), order };
    } catch (e) {
      if (!(e instanceof KernelError)) throw e;
    }
  }
  return undefined;
}

/** system_heap_allocate(). */
export function systemHeapAllocate(
  core: DmaBufCore,
  dma: DmaMappingApi,
  len: number,
  fdFlags: number,
): DmaBuf<HeapBuffer> {
  const m = core.machine;
  ensure(
    len / PAGE_SIZE <= m.profile.ram.size / PAGE_SIZE,
    "ENOMEM",
    `system heap: ${len} bytes is more than RAM`,
  );
  const chunks: { pfn: number; order: number }[] = [];
  let remaining = len;
  let maxOrder: number = SYSTEM_HEAP_ORDERS[0];
  while (remaining > 0) {
    const got = allocLargestAvailable(m, remaining, maxOrder);
    if (got === undefined) {
      for (const c of chunks) m.pages.free(c.pfn);
      throw new KernelError(
        "ENOMEM",
        `system heap: out of pages with ${remaining} of ${len} bytes to go`,
      );
    }
    chunks.push(got);
    remaining -= PAGE_SIZE << got.order;
    maxOrder = got.order;
  }
  const ranges: PhysRange[] = chunks.map((c) => ({
    phys: c.pfn * PAGE_SIZE,
    len: PAGE_SIZE << c.order,
  }));
  // __GFP_ZERO: cleared by the CPU through the cacheable linear map.
  m.cpu.zeroPhysRanges(ranges);
  const table = SgTable.fromRanges(ranges);
  const priv: HeapBuffer = {
    machine: m,
    dma,
    len,
    ranges,
    attachments: [],
    tableForAttachment: () => table.dup(),
    free: () => {
      for (const c of chunks) m.pages.free(c.pfn);
    },
    vmapCount: 0,
    vaddr: undefined,
    mmapNeedsShared: false,
  };
  return dmaBufExport(core, {
    expName: "system",
    ops: heapBufferOps,
    size: len,
    flags: fdFlags,
    priv,
  });
}

/** The heap as registered with dma-heap. */
export function systemHeapOps(dma: DmaMappingApi): DmaHeapOps {
  return { allocate: (core, len, fdFlags) => systemHeapAllocate(core, dma, len, fdFlags) };
}
