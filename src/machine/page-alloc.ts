/**
 * The page allocator: a buddy allocator over page frames, as mm/page_alloc.c keeps it.
 *
 * Blocks of 2^order pages (order 0 to 10, 4 KiB to 4 MiB). Allocation splits the
 * smallest free block that fits; freeing merges a block with its free buddy. At boot
 * the top-order blocks are queued in a seeded shuffled order, so successive
 * allocations come from scattered places in RAM, as they do on a machine that has been
 * up for a while: the system heap's buffers are not physically contiguous.
 */

import { KernelError } from "../errno.js";
import { PAGE_SIZE } from "./memory.js";
import { Prng } from "./prng.js";

/** Largest order handed out (MAX_PAGE_ORDER in include/linux/mmzone.h). */
export const MAX_PAGE_ORDER = 10;

export class PageAllocator {
  /** Free blocks per order, keyed by first page frame number (absolute). */
  readonly #free: Set<number>[] = [];
  /** Orders of allocated blocks, keyed by first pfn (to catch bad frees). */
  readonly #allocated = new Map<number, number>();
  #freePages = 0;

  /**
   * @param firstPfn first page frame managed (absolute: phys / PAGE_SIZE)
   * @param pages number of pages managed
   * @param seed shuffles the initial free list
   */
  constructor(
    readonly firstPfn: number,
    readonly pages: number,
    seed = 1,
  ) {
    for (let o = 0; o <= MAX_PAGE_ORDER; o++) this.#free.push(new Set());
    // Carve the range into naturally aligned blocks, largest first.
    const blocks: [number, number][] = [];
    let pfn = firstPfn;
    const end = firstPfn + pages;
    while (pfn < end) {
      let order = MAX_PAGE_ORDER;
      while (order > 0 && (pfn % (1 << order) !== 0 || pfn + (1 << order) > end)) order--;
      blocks.push([pfn, order]);
      pfn += 1 << order;
    }
    new Prng(seed).shuffle(blocks);
    for (const [p, o] of blocks) this.#free[o]!.add(p);
    this.#freePages = pages;
  }

  get freePages(): number {
    return this.#freePages;
  }

  /** Whether a page frame belongs to this allocator. */
  manages(pfn: number): boolean {
    return pfn >= this.firstPfn && pfn < this.firstPfn + this.pages;
  }

  /**
   * Allocates 2^order contiguous pages; returns the first pfn. Throws ENOMEM when no
   * block of that order can be found or the order is above MAX_PAGE_ORDER (alloc_pages
   * returning NULL).
   */
  alloc(order: number): number {
    if (!Number.isInteger(order) || order < 0) {
      throw new KernelError("EINVAL", `page order ${order} is not an order`);
    }
    if (order > MAX_PAGE_ORDER) {
      // __alloc_pages(): WARN_ON_ONCE_GFP(order > MAX_PAGE_ORDER) and return NULL.
      throw new KernelError(
        "ENOMEM",
        `order ${order} (${formatKiB(PAGE_SIZE * 2 ** order)}) is above MAX_PAGE_ORDER ${MAX_PAGE_ORDER}: the buddy allocator has no blocks that large`,
      );
    }
    let o = order;
    while (o <= MAX_PAGE_ORDER && this.#free[o]!.size === 0) o++;
    if (o > MAX_PAGE_ORDER) {
      throw new KernelError(
        "ENOMEM",
        `no free block of order ${order} (${(PAGE_SIZE << order) / 1024} KiB); ${this.#freePages} pages free in smaller blocks`,
      );
    }
    const set = this.#free[o]!;
    const pfn = set.values().next().value as number;
    set.delete(pfn);
    // Split: keep the low half, free the high halves.
    while (o > order) {
      o--;
      this.#free[o]!.add(pfn + (1 << o));
    }
    this.#allocated.set(pfn, order);
    this.#freePages -= 1 << order;
    return pfn;
  }

  /** Frees a block returned by {@link alloc}. */
  free(pfn: number): void {
    const order = this.#allocated.get(pfn);
    if (order === undefined)
      throw new KernelError("EINVAL", `pfn 0x${pfn.toString(16)} was not allocated here`);
    this.#allocated.delete(pfn);
    this.#freePages += 1 << order;
    let p = pfn;
    let o = order;
    while (o < MAX_PAGE_ORDER) {
      const buddy = p ^ (1 << o);
      const set = this.#free[o]!;
      if (!set.has(buddy)) break;
      set.delete(buddy);
      p = Math.min(p, buddy);
      o++;
    }
    this.#free[o]!.add(p);
  }
}

function formatKiB(bytes: number): string {
  return bytes >= 1 << 20 ? `${bytes / (1 << 20)} MiB` : `${bytes / 1024} KiB`;
}
