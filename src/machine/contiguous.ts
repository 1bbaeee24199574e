/**
 * A contiguous-memory area (CMA, mm/cma.c): a region reserved at boot from which
 * physically contiguous runs of pages are allocated first-fit, with alignment.
 * The swiotlb pool uses the same allocator with 2 KiB slots.
 */

import { KernelError } from "../errno.js";

export class ContiguousArea {
  readonly #used: Uint8Array;
  readonly #runs = new Map<number, number>();
  #usedUnits = 0;

  /**
   * @param name for error messages ("cma", "swiotlb")
   * @param base first address of the area
   * @param units number of allocation units
   * @param unitSize bytes per unit (PAGE_SIZE for CMA, IO_TLB_SIZE for swiotlb)
   */
  constructor(
    readonly name: string,
    readonly base: number,
    readonly units: number,
    readonly unitSize: number,
  ) {
    this.#used = new Uint8Array(units);
  }

  get size(): number {
    return this.units * this.unitSize;
  }

  get freeUnits(): number {
    return this.units - this.#usedUnits;
  }

  contains(addr: number): boolean {
    return addr >= this.base && addr < this.base + this.size;
  }

  /** Allocates `count` contiguous units aligned to `align` units; returns the address. */
  alloc(count: number, align = 1): number {
    if (!Number.isInteger(count) || count <= 0)
      throw new KernelError("EINVAL", `${this.name}: bad size ${count}`);
    for (let i = 0; i + count <= this.units; i += align) {
      let j = 0;
      while (j < count && this.#used[i + j] === 0) j++;
      if (j === count) {
        this.#used.fill(1, i, i + count);
        this.#runs.set(i, count);
        this.#usedUnits += count;
        return this.base + i * this.unitSize;
      }
      // Resume at the first aligned unit after the used one that broke the run.
      i = Math.ceil((i + j + 1) / align) * align - align;
    }
    throw new KernelError(
      "ENOMEM",
      `${this.name}: no ${count * this.unitSize} contiguous bytes free (${this.freeUnits * this.unitSize} free in all)`,
    );
  }

  /** Frees a run returned by {@link alloc}. */
  free(addr: number): void {
    const i = (addr - this.base) / this.unitSize;
    const count = this.#runs.get(i);
    if (count === undefined)
      throw new KernelError(
        "EINVAL",
        `${this.name}: 0x${addr.toString(16)} was not allocated here`,
      );
    this.#runs.delete(i);
    this.#used.fill(0, i, i + count);
    this.#usedUnits -= count;
  }
}
