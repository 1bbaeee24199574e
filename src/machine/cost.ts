/**
 * The cost ledger: where virtual time went, by category.
 *
 * Every charge is also time on the virtual clock (the CPU's synchronous work advances
 * it; device work occupies the device). The ledger keeps the breakdown reports need:
 * "cache maintenance cost 212 us per frame" is a sum of these entries.
 */

import type { Ns } from "./clock.js";

export type CostCategory =
  /** CPU loads and stores through a mapping (cache hits, misses, uncached accesses). */
  | "cpu-access"
  /** Cache clean / invalidate / flush, by line or by set/way. */
  | "cache-maintenance"
  /** Device DMA transfers (time the device is busy). */
  | "dma"
  /** swiotlb bounce-buffer copies. */
  | "bounce"
  /** IOMMU map / unmap work. */
  | "iommu"
  /** Time the CPU spent blocked on fences or devices. */
  | "wait";

export const COST_CATEGORIES: readonly CostCategory[] = [
  "cpu-access",
  "cache-maintenance",
  "dma",
  "bounce",
  "iommu",
  "wait",
];

export interface CostEntry {
  ns: Ns;
  /** Operations charged (line operations, transfers, accesses: whatever the category counts). */
  ops: number;
  /** Bytes moved or covered. */
  bytes: number;
}

export type CostSnapshot = Record<CostCategory, CostEntry>;

export class CostLedger {
  readonly #by: CostSnapshot = CostLedger.empty();

  static empty(): CostSnapshot {
    const s = {} as CostSnapshot;
    for (const c of COST_CATEGORIES) s[c] = { ns: 0, ops: 0, bytes: 0 };
    return s;
  }

  charge(category: CostCategory, ns: Ns, ops = 1, bytes = 0): void {
    const e = this.#by[category];
    e.ns += ns;
    e.ops += ops;
    e.bytes += bytes;
  }

  /** A copy of the totals so far. */
  snapshot(): CostSnapshot {
    const s = CostLedger.empty();
    for (const c of COST_CATEGORIES) Object.assign(s[c], this.#by[c]);
    return s;
  }

  /** `after - before`, per category. */
  static diff(after: CostSnapshot, before: CostSnapshot): CostSnapshot {
    const s = CostLedger.empty();
    for (const c of COST_CATEGORIES) {
      s[c].ns = after[c].ns - before[c].ns;
      s[c].ops = after[c].ops - before[c].ops;
      s[c].bytes = after[c].bytes - before[c].bytes;
    }
    return s;
  }

  get total(): Ns {
    let t = 0;
    for (const c of COST_CATEGORIES) t += this.#by[c].ns;
    return t;
  }
}

/**
 * Per-architecture timing figures (virtual nanoseconds). Profiles fill these in from
 * published measurements where there are any (see docs/profiles.md).
 */
export interface CostModel {
  /** Cost of one line access that hits, per cache level from the CPU outwards. */
  readonly hitNs: readonly number[];
  /** DRAM bandwidth seen by line fills and write-backs, bytes per ns (= GB/s). */
  readonly dramBytesPerNs: number;
  /** Cost of one uncached (or write-combined) load of `uncachedAccessBytes`. */
  readonly uncachedReadNs: number;
  /** Cost of one strongly-ordered / uncached store of `uncachedAccessBytes`. */
  readonly uncachedWriteNs: number;
  /** Width of one uncached access, bytes. */
  readonly uncachedAccessBytes: number;
  /** Store bandwidth through a write-combining mapping, bytes per ns. */
  readonly wcWriteBytesPerNs: number;
  /** One maintenance operation by address, per line (DC CVAC, clflushopt, PL310 line op). */
  readonly lineOpNs: number;
  /** Fixed cost of one range operation (barriers: DSB, PL310 cache sync, sfence). */
  readonly rangeOpNs: number;
  /** One maintenance operation by set/way, per line slot of the outer cache. */
  readonly setWayOpNs: number;
}
