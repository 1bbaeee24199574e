/**
 * An IOMMU translation domain: the device's own I/O virtual address space, mapped page
 * by page onto physical memory with read/write permissions (drivers/iommu/iommu.c,
 * dma-iommu.c). An access to an unmapped IOVA, or against the permission, faults and
 * does not reach memory.
 */

import { KernelError } from "../errno.js";
import { ContiguousArea } from "./contiguous.js";
import { PAGE_SIZE } from "./memory.js";

/** IOMMU_READ: the device may read (include/linux/iommu.h). */
export const IOMMU_READ = 1;
/** IOMMU_WRITE: the device may write. */
export const IOMMU_WRITE = 2;

export interface IommuFault {
  readonly iova: number;
  readonly reason: "unmapped" | "permission";
}

export class IommuDomain {
  /** IOVA page number -> physical page number * 4 + permission bits. */
  readonly #pt = new Map<number, number>();
  readonly #iova: ContiguousArea;

  /** @param apertureBase first IOVA (non-zero so that 0 is never a valid handle) */
  constructor(
    readonly name: string,
    apertureBase: number,
    apertureSize: number,
  ) {
    this.#iova = new ContiguousArea(
      `${name} iova`,
      apertureBase,
      apertureSize / PAGE_SIZE,
      PAGE_SIZE,
    );
  }

  get mappedPages(): number {
    return this.#pt.size;
  }

  /** Reserves `size` bytes of IOVA space (alloc_iova_fast). */
  allocIova(size: number): number {
    return this.#iova.alloc(Math.ceil(size / PAGE_SIZE));
  }

  freeIova(iova: number): void {
    this.#iova.free(iova);
  }

  /** Maps `[iova, iova+size)` to `[phys, phys+size)`, page granular (iommu_map). */
  map(iova: number, phys: number, size: number, prot: number): void {
    if (iova % PAGE_SIZE !== 0 || phys % PAGE_SIZE !== 0) {
      throw new KernelError(
        "EINVAL",
        `iommu ${this.name}: unaligned map iova=0x${iova.toString(16)} phys=0x${phys.toString(16)}`,
      );
    }
    const pages = Math.ceil(size / PAGE_SIZE);
    for (let i = 0; i < pages; i++) {
      const key = iova / PAGE_SIZE + i;
      if (this.#pt.has(key))
        throw new KernelError(
          "EEXIST",
          `iommu ${this.name}: iova 0x${(key * PAGE_SIZE).toString(16)} already mapped`,
        );
      this.#pt.set(key, (phys / PAGE_SIZE + i) * 4 + prot);
    }
  }

  /** Unmaps `[iova, iova+size)` (iommu_unmap); returns bytes unmapped. */
  unmap(iova: number, size: number): number {
    const pages = Math.ceil(size / PAGE_SIZE);
    let n = 0;
    for (let i = 0; i < pages; i++) if (this.#pt.delete(iova / PAGE_SIZE + i)) n++;
    return n * PAGE_SIZE;
  }

  /**
   * Translates an access of `len` bytes at `iova` into physical pieces, or a fault.
   * `visit(phys, len, offsetInAccess)` is called per physically contiguous piece.
   */
  translate(
    iova: number,
    len: number,
    write: boolean,
    visit: (phys: number, len: number, off: number) => void,
  ): IommuFault | undefined {
    const need = write ? IOMMU_WRITE : IOMMU_READ;
    let done = 0;
    while (done < len) {
      const a = iova + done;
      const page = Math.floor(a / PAGE_SIZE);
      const e = this.#pt.get(page);
      if (e === undefined) return { iova: a, reason: "unmapped" };
      if ((e & need) === 0) return { iova: a, reason: "permission" };
      const po = a - page * PAGE_SIZE;
      const n = Math.min(len - done, PAGE_SIZE - po);
      visit(Math.floor(e / 4) * PAGE_SIZE + po, n, done);
      done += n;
    }
    return undefined;
  }
}
