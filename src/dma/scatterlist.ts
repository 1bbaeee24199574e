/**
 * Scatter-gather tables (include/linux/scatterlist.h, lib/scatterlist.c).
 *
 * An entry names a piece of physical memory (page, offset, length) and, once mapped
 * for a device, where the device sees it (dma_address, dma_length). `origNents` is the
 * number of CPU-side entries; `nents` the number of DMA segments after mapping (an
 * IOMMU may merge several entries into one segment).
 */

import { KernelError } from "../errno.js";
import type { DmaSegment } from "../machine/device.js";
import { PAGE_SIZE } from "../machine/memory.js";
import type { PhysRange } from "../machine/violations.js";

export interface Scatterlist {
  /** Physical address of the (first) page. */
  page: number;
  offset: number;
  length: number;
  /** Device address once mapped (sg_dma_address). */
  dmaAddress: number;
  /** Device length once mapped (sg_dma_len); 0 for entries merged into a previous one. */
  dmaLength: number;
}

export class SgTable {
  readonly sgl: Scatterlist[];
  /** Entries in use for the CPU (orig_nents). */
  origNents: number;
  /** DMA segments after mapping (nents). */
  nents: number;

  constructor(entries: readonly { page: number; offset: number; length: number }[]) {
    this.sgl = entries.map((e) => ({ ...e, dmaAddress: 0, dmaLength: 0 }));
    this.origNents = this.sgl.length;
    this.nents = this.sgl.length;
  }

  /** One entry per physical range, not merged (how the system heap builds its table). */
  static fromRanges(ranges: readonly PhysRange[]): SgTable {
    return new SgTable(
      ranges.map((r) => {
        const page = Math.floor(r.phys / PAGE_SIZE) * PAGE_SIZE;
        return { page, offset: r.phys - page, length: r.len };
      }),
    );
  }

  /** Total bytes on the CPU side. */
  get size(): number {
    let n = 0;
    for (let i = 0; i < this.origNents; i++) n += this.sgl[i]!.length;
    return n;
  }

  /** The CPU-side physical ranges (sg_phys + length per entry). */
  physRanges(): PhysRange[] {
    return this.sgl
      .slice(0, this.origNents)
      .map((e) => ({ phys: e.page + e.offset, len: e.length }));
  }

  /** The mapped DMA segments, for a device to use (for_each_sgtable_dma_sg). */
  dmaSegments(): { dmaAddr: number; len: number }[] {
    const out: { dmaAddr: number; len: number }[] = [];
    for (let i = 0; i < this.nents; i++) {
      const e = this.sgl[i]!;
      out.push({ dmaAddr: e.dmaAddress, len: e.dmaLength });
    }
    return out;
  }

  /** A fresh copy with the same CPU-side entries and no DMA addresses (dup_sg_table in the heaps). */
  dup(): SgTable {
    return new SgTable(this.sgl.slice(0, this.origNents));
  }
}

/**
 * sg_alloc_table_from_pages_segment(): builds a table from page addresses, merging
 * physically contiguous pages into one entry up to `maxSegment` bytes.
 *
 * @param pages physical address of each page, in buffer order
 * @param offset offset of the data in the first page
 * @param size bytes of data
 */
export function sgAllocTableFromPages(
  pages: readonly number[],
  offset: number,
  size: number,
  maxSegment = 0xffff_f000,
): SgTable {
  if (maxSegment < PAGE_SIZE)
    throw new KernelError("EINVAL", `max segment ${maxSegment} is below a page`);
  if (offset < 0 || offset >= PAGE_SIZE || size <= 0 || offset + size > pages.length * PAGE_SIZE) {
    throw new KernelError(
      "EINVAL",
      `offset ${offset} + size ${size} does not fit ${pages.length} pages`,
    );
  }
  const entries: { page: number; offset: number; length: number }[] = [];
  let remaining = size;
  let i = 0;
  let off = offset;
  while (remaining > 0) {
    const start = pages[i]!;
    let len = Math.min(PAGE_SIZE - off, remaining);
    let j = i + 1;
    while (
      j < pages.length &&
      remaining - len > 0 &&
      pages[j] === pages[j - 1]! + PAGE_SIZE &&
      len + Math.min(PAGE_SIZE, remaining - len) <= maxSegment
    ) {
      len += Math.min(PAGE_SIZE, remaining - len);
      j++;
    }
    entries.push({ page: start, offset: off, length: len });
    remaining -= len;
    i = j;
    off = 0;
  }
  return new SgTable(entries);
}

/**
 * The DMA segments covering bytes [offset, offset+len) of a buffer laid over `segs` (what
 * a driver walks with for_each_sgtable_dma_sg to reach part of a buffer).
 */
export function dmaSegmentsSlice(
  segs: readonly DmaSegment[],
  offset: number,
  len: number,
  out: DmaSegment[] = [],
): DmaSegment[] {
  let pos = 0;
  const end = offset + len;
  for (const s of segs) {
    const sEnd = pos + s.len;
    if (sEnd > offset && pos < end) {
      const a = Math.max(offset, pos);
      const b = Math.min(end, sEnd);
      out.push({ dmaAddr: s.dmaAddr + (a - pos), len: b - a });
    }
    pos = sEnd;
    if (pos >= end) break;
  }
  return out;
}
