/**
 * The CPU as a memory agent: loads and stores through mappings with cache attributes.
 *
 * A cached (write-back) mapping goes through the cache model; an uncached or
 * write-combined mapping goes straight to DRAM and is charged per access. Every access
 * is checked: against streaming buffers the device owns, against memory that is mapped
 * with another attribute at the same time (an alias the architecture calls
 * unpredictable), and for stale lines the cache hands back. Time is charged on the
 * virtual clock as the CPU's own work.
 */

import type { CpuCache } from "./cache.js";
import { ChunkedU32 } from "./chunked.js";
import type { VirtualClock } from "./clock.js";
import type { CoherencyShadow, OwnershipTracker } from "./coherency.js";
import type { CostCategory, CostLedger, CostModel } from "./cost.js";
import { PAGE_SIZE, type PhysicalMemory } from "./memory.js";
import type { TraceRecorder } from "./trace.js";
import type { PhysRange, ViolationLog } from "./violations.js";

/** Memory attributes of a CPU mapping (pgprot). */
export type MemAttr = "cached" | "uncached" | "writecombine";

/**
 * Whether the checker holds a CPU access to the DMA API's hand-over rule
 * (`cpu-access-device-owned`). Only cached accesses: the rule keeps caches and memory in
 * step, and an uncached or write-combined access bypasses the cache (a non-coherent
 * GPU's shmem object, write-combined for the CPU, read back through the dma-buf's mmap
 * while a display keeps its lifelong dma_buf_map_attachment mapping is correct). Not a
 * swiotlb bounce copy either: that is the DMA API's own memcpy inside dma_map/dma_sync
 * of one mapping, and the rule (kernel/dma/debug.c) checks callers, not swiotlb_bounce,
 * even where another device's mapping of the same pages is device-owned (a heap syncs
 * its attachments one after another). What such accesses really do to the bytes is
 * still checked: stale lines, lost writes, attribute aliases. Reports and tests that
 * read a trace's CPU accesses (arg `attr`) apply this same function.
 */
export function ownershipRuleApplies(
  attr: MemAttr,
  category: CostCategory = "cpu-access",
): boolean {
  return attr === "cached" && category !== "bounce";
}

/** A CPU virtual mapping of some physical pages (vmap, mmap, the kernel linear map). */
export interface CpuMapping {
  readonly id: number;
  readonly label: string;
  readonly attr: MemAttr;
  readonly ranges: readonly PhysRange[];
  /** Total bytes mapped. */
  readonly length: number;
}

export class Cpu {
  readonly #mappings = new Map<number, CpuMapping>();
  /**
   * Page frame -> number of live non-cached mappings of it. Why an array by page, not a
   * map: a frame-sized coherent buffer is thousands of pages, and a map's entries (and
   * its rehashed tables) cost host memory anew on every machine booted.
   */
  readonly #nonCached = new ChunkedU32(0);
  /** Pages with a live non-cached mapping. */
  #nonCachedPages = 0;
  #next = 1;
  /** The CPU's agent name in reports and traces. */
  readonly name = "cpu";

  constructor(
    readonly memory: PhysicalMemory,
    readonly cache: CpuCache,
    readonly shadow: CoherencyShadow,
    readonly ownership: OwnershipTracker,
    readonly log: ViolationLog,
    readonly clock: VirtualClock,
    readonly costs: CostLedger,
    readonly costModel: CostModel,
    readonly trace: TraceRecorder,
  ) {}

  /** Maps physical ranges into the CPU with `attr` (vmap / remap_pfn_range). */
  map(ranges: readonly PhysRange[], attr: MemAttr, label: string): CpuMapping {
    const m: CpuMapping = {
      id: this.#next++,
      label,
      attr,
      ranges: ranges.map((r) => ({ ...r })),
      length: ranges.reduce((n, r) => n + r.len, 0),
    };
    for (const r of ranges) this.memory.check(r.phys, r.len);
    if (attr !== "cached") this.#countNonCached(m.ranges, 1);
    this.#mappings.set(m.id, m);
    return m;
  }

  /** Removes a mapping (vunmap / munmap). */
  unmap(m: CpuMapping): void {
    if (!this.#mappings.delete(m.id)) return;
    if (m.attr !== "cached") this.#countNonCached(m.ranges, -1);
  }

  get liveMappings(): number {
    return this.#mappings.size;
  }

  /** Reads `len` bytes at `offset` of a mapping. */
  read(
    m: CpuMapping,
    offset: number,
    len: number,
    dst: Uint8Array = new Uint8Array(len),
    dstOff = 0,
  ): Uint8Array {
    this.#pieces(m, offset, len, (phys, n, off) =>
      this.#access(m.attr, phys, n, false, dst, dstOff + off, m.label),
    );
    return dst;
  }

  /** Writes `src` at `offset` of a mapping. */
  write(
    m: CpuMapping,
    offset: number,
    src: Uint8Array,
    srcOff = 0,
    len = src.length - srcOff,
  ): void {
    this.#pieces(m, offset, len, (phys, n, off) =>
      this.#access(m.attr, phys, n, true, src, srcOff + off, m.label),
    );
  }

  /**
   * Fills `len` bytes at `offset` of a mapping with `value` (memset): the same accesses,
   * costs and checks as {@link write} of such bytes, without building them.
   */
  fill(m: CpuMapping, offset: number, len: number, value: number): void {
    this.#pieces(m, offset, len, (phys, n) =>
      this.#access(m.attr, phys, n, true, undefined, value, m.label),
    );
  }

  /** A load through the kernel's cacheable linear map, by physical address. */
  readPhys(
    phys: number,
    len: number,
    dst: Uint8Array = new Uint8Array(len),
    dstOff = 0,
  ): Uint8Array {
    this.#access("cached", phys, len, false, dst, dstOff, "linear map");
    return dst;
  }

  /**
   * clear_page()/memset(0) through the kernel's cacheable linear map: exactly
   * {@link writePhys} of `len` zero bytes, without a zeroed source buffer (the page
   * allocator's __GFP_ZERO, dma_alloc_* and the heaps clear every new buffer this way).
   */
  zeroPhys(phys: number, len: number): void {
    this.#access("cached", phys, len, true, undefined, 0, "linear map");
  }

  /**
   * clear_page() of many ranges in order (a heap's or a scatterlist's pages): exactly
   * {@link zeroPhys} of each in turn — the same checks, costs, trace spans and clock
   * advances, range by range — except that once the cache is in the steady state of
   * zeroing, whole rounds of ranges are applied to it in closed form
   * ({@link CpuCache.zeroFastForward}), which is what makes a 15 GiB allocation take
   * well under a second. Only ranges before the next clock event are fast-forwarded, so
   * events still see the cache exactly as line-by-line zeroing leaves it.
   */
  zeroPhysRanges(ranges: readonly PhysRange[]): void {
    const cap = this.cache.capacity;
    let since = 0;
    let fails = 0;
    for (let i = 0; i < ranges.length; ) {
      // From an empty cache, one round of lines reaches the steady state under LRU.
      if (since >= cap && fails < 8) {
        since = 0;
        const j = this.cache.zeroFastForward(ranges, i, this.#zeroHorizon(ranges, i));
        if (j > i) {
          for (; i < j; i++) this.#zeroedInClosedForm(ranges[i]!);
          continue;
        }
        fails++;
      }
      const r = ranges[i++]!;
      this.zeroPhys(r.phys, r.len);
      since += r.len;
    }
  }

  /** The cost of zeroing `len` bytes in the steady state: a fill and a write-back per line. */
  #steadyZeroNs(len: number): number {
    const lines = len / this.cache.line;
    // The expression #access evaluates for these counter differences (no hits).
    return ((lines + lines) * this.cache.line) / this.costModel.dramBytesPerNs;
  }

  /** How far from `i` ranges can be zeroed before the next clock event or the budget. */
  #zeroHorizon(ranges: readonly PhysRange[], i: number): number {
    const next = this.clock.peek();
    const limit = this.clock.budget.virtualNs;
    let t = this.clock.now;
    let j = i;
    for (; j < ranges.length; j++) {
      const t2 = t + this.#steadyZeroNs(ranges[j]!.len);
      if ((next !== undefined && next <= t2) || t2 > limit) break;
      t = t2;
    }
    return j;
  }

  /** The rest of {@link zeroPhys} for a range the cache zeroed in closed form. */
  #zeroedInClosedForm(r: PhysRange): void {
    const now = this.clock.now;
    const label = "linear map";
    if (this.shadow.enabled) {
      this.#checkOwnership(r.phys, r.len, true, label);
      if (this.#nonCachedPages > 0) this.#checkCachedAlias(r.phys, r.len, label);
    }
    const ns = this.#steadyZeroNs(r.len);
    this.costs.charge("cpu-access", ns, 1, r.len);
    this.trace.span(this.name, "cpu", `write ${label}`, now, ns, { bytes: r.len, attr: "cached" });
    this.clock.advance(ns);
  }

  /** A store through the kernel's cacheable linear map, by physical address. */
  writePhys(phys: number, src: Uint8Array, srcOff = 0, len = src.length - srcOff): void {
    this.#access("cached", phys, len, true, src, srcOff, "linear map");
  }

  /**
   * memcpy between physical ranges through the linear map. swiotlb bounces use this and
   * charge it to "bounce" instead of "cpu-access".
   */
  copyPhys(dst: number, src: number, len: number, category: CostCategory = "cpu-access"): void {
    const tmp = new Uint8Array(len);
    this.#access("cached", src, len, false, tmp, 0, "linear map", category);
    this.#access("cached", dst, len, true, tmp, 0, "linear map", category);
  }

  // ---------------------------------------------------------------------------------

  /** Counts one non-cached mapping more (`d` 1) or fewer (-1) on every page of `ranges`. */
  #countNonCached(ranges: readonly PhysRange[], d: 1 | -1): void {
    const counts = this.#nonCached;
    for (const r of ranges) {
      const first = Math.floor(r.phys / PAGE_SIZE);
      const last = Math.floor((r.phys + r.len - 1) / PAGE_SIZE);
      for (let p = first; p <= last; p++) {
        const n = counts.get(p);
        if (d > 0) {
          counts.set(p, n + 1);
          if (n === 0) this.#nonCachedPages++;
        } else if (n > 0) {
          counts.set(p, n - 1);
          if (n === 1) this.#nonCachedPages--;
        }
      }
    }
  }

  /** The run is over (Machine.release): the per-page counts go to the next machine's pool. */
  release(): void {
    this.#nonCached.release();
    this.#nonCachedPages = 0;
  }

  /** Splits `[offset, offset+len)` of a mapping into physical pieces. */
  #pieces(
    m: CpuMapping,
    offset: number,
    len: number,
    f: (phys: number, n: number, off: number) => void,
  ): void {
    if (offset < 0 || len < 0 || offset + len > m.length) {
      throw new RangeError(
        `cpu: access ${offset}+${len} outside mapping '${m.label}' of ${m.length} bytes`,
      );
    }
    let skip = offset;
    let done = 0;
    for (const r of m.ranges) {
      if (done >= len) break;
      if (skip >= r.len) {
        skip -= r.len;
        continue;
      }
      const n = Math.min(r.len - skip, len - done);
      f(r.phys + skip, n, done);
      done += n;
      skip = 0;
    }
  }

  /**
   * One access. `buf` undefined is a store of `len` bytes equal to `bufOff` (a memset):
   * the cache and DRAM see the same bytes without a source buffer being built.
   */
  #access(
    attr: MemAttr,
    phys: number,
    len: number,
    write: boolean,
    buf: Uint8Array | undefined,
    bufOff: number,
    label: string,
    category: CostCategory = "cpu-access",
  ): void {
    if (len === 0) return;
    const now = this.clock.now;
    // Only cached accesses other than swiotlb bounces (see ownershipRuleApplies).
    if (this.shadow.enabled && ownershipRuleApplies(attr, category))
      this.#checkOwnership(phys, len, write, label);
    let ns: number;
    if (attr === "cached") {
      if (this.shadow.enabled && this.#nonCachedPages > 0) this.#checkCachedAlias(phys, len, label);
      const before = this.cache.snapshotCounters();
      if (buf === undefined) this.cache.fill(phys, len, bufOff);
      else if (write) this.cache.write(phys, buf, bufOff, len);
      else this.cache.read(phys, len, buf, bufOff);
      const c = this.cache.counters;
      const L = this.cache.line;
      const cm = this.costModel;
      ns = 0;
      for (let i = 0; i < c.hits.length; i++)
        ns += (c.hits[i]! - before.hits[i]!) * (cm.hitNs[i] ?? 0);
      ns += ((c.fills - before.fills + c.writebacks - before.writebacks) * L) / cm.dramBytesPerNs;
      this.#reportCacheFindings();
    } else {
      if (this.shadow.enabled) this.#checkUncachedAlias(phys, len, write, label);
      const cm = this.costModel;
      const accesses = Math.ceil(len / cm.uncachedAccessBytes);
      if (write) {
        const epoch = this.shadow.beginWrite(this.name, now, `${attr} store`);
        if (buf === undefined) this.memory.fill(phys, len, bufOff);
        else this.memory.write(phys, buf, bufOff, len);
        const L = this.cache.line;
        const first = Math.floor((phys - this.memory.base) / L);
        const last = Math.floor((phys + len - 1 - this.memory.base) / L);
        this.shadow.memEpoch.fillRange(first, last + 1, epoch);
        ns = attr === "writecombine" ? len / cm.wcWriteBytesPerNs : accesses * cm.uncachedWriteNs;
      } else {
        this.memory.read(phys, len, buf!, bufOff);
        ns = accesses * cm.uncachedReadNs;
      }
    }
    this.costs.charge(category, ns, 1, len);
    if (this.trace.enabled) {
      // Which buffer the access touched, when the pages belong to a named one.
      const buffer = this.trace.bufferAt(phys);
      this.trace.span(this.name, "cpu", `${write ? "write" : "read"} ${label}`, now, ns, {
        bytes: len,
        attr,
        ...(buffer !== undefined ? { buffer } : {}),
      });
    }
    this.clock.advance(ns);
  }

  #reportCacheFindings(): void {
    const f = this.cache.findings;
    const L = this.cache.line;
    if (f.staleRead !== undefined) {
      const w = this.shadow.writer(f.staleRead.epoch);
      this.log.report(
        {
          kind: "stale-cpu-read",
          time: this.clock.now,
          agent: this.name,
          phys: f.staleRead.phys,
          len: f.staleRead.lines * L,
          message: `CPU read ${f.staleRead.lines} stale cache line(s): ${w.agent} changed memory (${w.what} at ${w.time.toFixed(0)} ns) after they were cached, and the CPU got the old bytes`,
        },
        "invalidate before the CPU reads what a device wrote: dma_sync_*_for_cpu() or dma_unmap_*() with DMA_FROM_DEVICE or DMA_BIDIRECTIONAL",
      );
    }
    if (f.lostWrite !== undefined)
      this.reportLostWrite(f.lostWrite.phys, f.lostWrite.lines, f.lostWrite.epoch);
  }

  /** Reports dirty lines written back over newer memory (from a CPU access or a cache operation). */
  reportLostWrite(phys: number, lines: number, epoch: number): void {
    const w = this.shadow.writer(epoch);
    this.log.report(
      {
        kind: "lost-device-write",
        time: this.clock.now,
        agent: this.name,
        phys,
        len: lines * this.cache.line,
        message: `${lines} dirty CPU cache line(s) were written back over data ${w.agent} had written (${w.what} at ${w.time.toFixed(0)} ns): the device's write is lost`,
      },
      "clean the buffer before the device writes it (dma_map_* or dma_sync_*_for_device with DMA_FROM_DEVICE), and do not write it from the CPU while the device owns it",
    );
  }

  #checkOwnership(phys: number, len: number, write: boolean, label: string): void {
    const r = this.ownership.conflict(phys, len, write);
    if (r === undefined) return;
    this.log.report(
      {
        kind: "cpu-access-device-owned",
        time: this.clock.now,
        agent: this.name,
        phys,
        len,
        message: `CPU ${write ? "wrote" : "read"} ${label} while ${r.device} owns it (${r.label}, ${r.direction})`,
      },
      `give the buffer back to the CPU first: ${r.giveBackCall}`,
    );
  }

  #checkCachedAlias(phys: number, len: number, label: string): void {
    const first = Math.floor(phys / PAGE_SIZE);
    const last = Math.floor((phys + len - 1) / PAGE_SIZE);
    for (let p = first; p <= last; p++) {
      if (this.#nonCached.get(p) !== 0) {
        this.log.report(
          {
            kind: "attribute-alias",
            time: this.clock.now,
            agent: this.name,
            phys: Math.max(phys, p * PAGE_SIZE),
            len,
            message: `cacheable access through ${label} to memory that is also mapped uncached/write-combined: mismatched attributes`,
          },
          "use only the uncached (dma_alloc_coherent / write-combined) mapping of this memory, or only cached mappings with explicit cache maintenance: a driver's mmap of dma_alloc_coherent memory must take the kernel mapping's attribute (dma_mmap_attrs, which applies dma_pgprot / pgprot_dmacoherent)",
        );
        return;
      }
    }
  }

  #checkUncachedAlias(phys: number, len: number, write: boolean, label: string): void {
    const dirty = this.cache.dirtyIn(phys, len);
    if (dirty === undefined) return;
    this.log.report(
      {
        kind: "attribute-alias",
        time: this.clock.now,
        agent: this.name,
        phys: dirty.phys,
        len: dirty.lines * this.cache.line,
        message: `uncached ${write ? "store" : "load"} through ${label} to memory with ${dirty.lines} dirty line(s) in the cache from a cacheable alias`,
      },
      "do not access the same memory through cached and uncached mappings; clean and invalidate the cacheable alias first (arch_dma_prep_coherent does this in dma_alloc_coherent)",
    );
  }
}
