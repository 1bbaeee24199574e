/**
 * The CPU cache hierarchy: set-associative, write-back, write-allocate, with real data.
 *
 * The outermost level (the point of coherency as devices see it) holds each line's own
 * copy of the bytes; inner levels (L1, and L2 below an L3) hold tags only and give the
 * hit latency. The hierarchy is inclusive: an inner-level line is always present in the
 * outer level, so evicting an outer line removes it everywhere. Real designs differ in
 * inclusion policy, but what a device can observe is the same: a line is either in the
 * CPU's caches (possibly dirty, possibly stale) or not.
 *
 * Everything is typed arrays: tags, dirty bits, replacement state, the data itself and
 * a reverse map from physical line to slot, so range operations (clean/invalidate a
 * 32 MiB buffer) are tight loops that skip pages with no cached line at all.
 */

import { ChunkedI32, ChunkedU16 } from "./chunked.js";
import type { CoherencyShadow } from "./coherency.js";
import { MEMORY_CHUNK_SHIFT, PAGE_SHIFT, PAGE_SIZE, type PhysicalMemory } from "./memory.js";

export interface CacheLevelGeometry {
  /** "L1D", "L2", "L3", ... */
  readonly name: string;
  readonly sizeBytes: number;
  readonly ways: number;
}

export type Replacement = "lru" | "plru";

export interface CacheGeometry {
  /** Line size in bytes (a power of two, 16 to 256). */
  readonly lineSize: number;
  /** Levels from the CPU outwards; the last one holds the data. */
  readonly levels: readonly CacheLevelGeometry[];
  readonly replacement: Replacement;
}

/** Event counts, cumulative. Costs are derived from differences of these. */
export interface CacheCounters {
  /** Hits per level (index 0 = innermost). */
  hits: number[];
  /** Lines filled from memory. */
  fills: number;
  /** Dirty lines written to memory (evictions, cleans, flushes). */
  writebacks: number;
  /** Valid lines evicted to make room. */
  evictions: number;
  /** Maintenance operations by address, one per line in the range (cached or not). */
  lineOps: number;
  /** Maintenance operations by set/way, one per slot of the outer level. */
  setWayOps: number;
  /** Dirty lines thrown away by an invalidate. */
  discardedDirty: number;
  /** Lines a coherent device's access found in the cache. */
  snoops: number;
}

/** Where a cache operation found stale or endangered lines (for one violation report). */
export interface LineFinding {
  /** Physical address of the first such line. */
  phys: number;
  /** Number of such lines. */
  lines: number;
  /** The most recent writer epoch involved. */
  epoch: number;
}

/** Findings of the last operation, by kind; reset at the start of every public operation. */
export interface CacheFindings {
  /** CPU reads that hit a line older than memory. */
  staleRead: LineFinding | undefined;
  /** Write-backs that overwrote newer memory. */
  lostWrite: LineFinding | undefined;
}

interface InnerLevel {
  readonly sets: number;
  readonly ways: number;
  /** Outer-level slot held by each inner slot, or -1. */
  readonly slotOf: Int32Array;
  readonly stamp: Float64Array;
  /** Inner slot holding each outer slot, or -1. */
  readonly innerOf: Int32Array;
}

const INVALID = -1;

export class CpuCache {
  readonly line: number;
  readonly #lineWords: number;
  readonly #linesPerPage: number;
  readonly sets: number;
  readonly ways: number;
  readonly slots: number;
  /** Bytes of the outer (data-holding) level. */
  readonly capacity: number;
  readonly #plru: boolean;

  // Outer level, one entry per slot.
  readonly #tag: Float64Array; // RAM line index or -1
  readonly #dirty: Uint8Array;
  readonly #stamp: Float64Array;
  readonly #plruBits: Uint32Array;
  readonly #data: Int32Array;
  readonly #bytes: Uint8Array;
  readonly #fillEpoch: Uint32Array;
  #tick = 0;
  #valid = 0;
  #dirtyCount = 0;

  // Reverse maps: RAM line index -> slot, RAM page index -> lines cached in that page.
  readonly #rmap = new ChunkedI32(INVALID);
  readonly #pageCount = new ChunkedU16(0);
  readonly #inner: InnerLevel[] = [];

  readonly counters: CacheCounters;
  readonly findings: CacheFindings = { staleRead: undefined, lostWrite: undefined };

  constructor(
    readonly geometry: CacheGeometry,
    readonly memory: PhysicalMemory,
    readonly shadow: CoherencyShadow,
  ) {
    const L = geometry.lineSize;
    if (!Number.isInteger(Math.log2(L)) || L < 16 || L > 256) {
      throw new RangeError(`cache: line size ${L} must be a power of two from 16 to 256`);
    }
    if (geometry.levels.length === 0) throw new RangeError("cache: at least one level is needed");
    this.line = L;
    this.#lineWords = L >>> 2;
    this.#linesPerPage = PAGE_SIZE / L;
    const outer = geometry.levels[geometry.levels.length - 1]!;
    const check = (lv: CacheLevelGeometry): number => {
      const sets = lv.sizeBytes / (L * lv.ways);
      if (!Number.isInteger(sets) || sets < 1) {
        throw new RangeError(
          `cache: ${lv.name} of ${lv.sizeBytes} bytes is not a whole number of ${lv.ways}-way sets of ${L}-byte lines`,
        );
      }
      if (
        geometry.replacement === "plru" &&
        (!Number.isInteger(Math.log2(lv.ways)) || lv.ways > 32)
      ) {
        throw new RangeError(
          `cache: pseudo-LRU needs a power-of-two associativity up to 32 (${lv.name} has ${lv.ways})`,
        );
      }
      return sets;
    };
    this.sets = check(outer);
    this.ways = outer.ways;
    this.slots = this.sets * this.ways;
    this.capacity = outer.sizeBytes;
    this.#plru = geometry.replacement === "plru";
    this.#tag = new Float64Array(this.slots).fill(INVALID);
    this.#dirty = new Uint8Array(this.slots);
    this.#stamp = new Float64Array(this.slots);
    this.#plruBits = new Uint32Array(this.sets);
    this.#data = new Int32Array(this.slots * this.#lineWords);
    this.#bytes = new Uint8Array(this.#data.buffer);
    this.#fillEpoch = new Uint32Array(this.slots);
    for (const lv of geometry.levels.slice(0, -1)) {
      const sets = check(lv);
      const slots = sets * lv.ways;
      this.#inner.push({
        sets,
        ways: lv.ways,
        slotOf: new Int32Array(slots).fill(INVALID),
        stamp: new Float64Array(slots),
        innerOf: new Int32Array(this.slots).fill(INVALID),
      });
    }
    this.counters = {
      hits: geometry.levels.map(() => 0),
      fills: 0,
      writebacks: 0,
      evictions: 0,
      lineOps: 0,
      setWayOps: 0,
      discardedDirty: 0,
      snoops: 0,
    };
  }

  /** Valid lines held. */
  get validLines(): number {
    return this.#valid;
  }

  /** Dirty lines held. */
  get dirtyLines(): number {
    return this.#dirtyCount;
  }

  /** A copy of the counters (to diff around an operation). */
  snapshotCounters(): CacheCounters {
    return { ...this.counters, hits: [...this.counters.hits] };
  }

  /** Whether the line holding `phys` is cached, and dirty. For tests and reports. */
  probe(phys: number): { cached: boolean; dirty: boolean; stale: boolean } {
    const li = this.#lineIndex(phys);
    const s = this.#rmap.get(li);
    if (s < 0) return { cached: false, dirty: false, stale: false };
    return {
      cached: true,
      dirty: this.#dirty[s] === 1,
      stale: this.shadow.memEpoch.get(li) > this.#fillEpoch[s]!,
    };
  }

  // ---------------------------------------------------------------------------------
  // CPU loads and stores (cacheable mappings)

  /** A CPU load of `len` bytes at `phys` through the cache, into `dst[dstOff..]`. */
  read(phys: number, len: number, dst: Uint8Array, dstOff = 0): void {
    this.memory.check(phys, len);
    this.#resetFindings();
    const L = this.line;
    const checking = this.shadow.enabled;
    const memEpoch = this.shadow.memEpoch;
    let p = phys;
    const end = phys + len;
    while (p < end) {
      const li = this.#lineIndex(p);
      const o = p - (this.memory.base + li * L);
      const n = Math.min(L - o, end - p);
      const s = this.#access(li, false);
      if (checking) {
        const me = memEpoch.get(li);
        if (me > this.#fillEpoch[s]!) this.#note("staleRead", this.memory.base + li * L, me);
      }
      const from = s * L + o;
      const to = dstOff + (p - phys);
      if (n === L) dst.set(this.#bytes.subarray(from, from + n), to);
      else for (let i = 0; i < n; i++) dst[to + i] = this.#bytes[from + i]!;
      p += n;
    }
  }

  /** A CPU store of `len` bytes from `src[srcOff..]` to `phys` through the cache. */
  write(phys: number, src: Uint8Array, srcOff = 0, len = src.length - srcOff): void {
    this.memory.check(phys, len);
    this.#resetFindings();
    const L = this.line;
    let p = phys;
    const end = phys + len;
    while (p < end) {
      const li = this.#lineIndex(p);
      const o = p - (this.memory.base + li * L);
      const n = Math.min(L - o, end - p);
      const s = this.#access(li, n === L);
      const at = s * L + o;
      const from = srcOff + (p - phys);
      if (n === L) {
        this.#bytes.set(src.subarray(from, from + n), at);
        // The whole line is the CPU's now: nothing older survives in it to be stale.
        this.#fillEpoch[s] = this.shadow.epoch;
      } else {
        for (let i = 0; i < n; i++) this.#bytes[at + i] = src[from + i]!;
      }
      if (this.#dirty[s] === 0) {
        this.#dirty[s] = 1;
        this.#dirtyCount++;
      }
      p += n;
    }
  }

  /** A CPU store of a repeated byte (memset) through the cache. */
  fill(phys: number, len: number, value: number): void {
    const chunk = new Uint8Array(Math.min(len, 1 << 16)).fill(value);
    for (let done = 0; done < len; done += chunk.length) {
      const n = Math.min(chunk.length, len - done);
      this.write(phys + done, chunk, 0, n);
    }
  }

  // ---------------------------------------------------------------------------------
  // Maintenance by address range (DC CVAC / DC IVAC / DC CIVAC, PL310 range ops)

  /** Clean: write dirty lines in the range back to memory; they stay valid. */
  cleanRange(phys: number, len: number): void {
    this.#maintain(phys, len, true, false, false);
  }

  /**
   * Invalidate: drop lines in the range without writing them back. Lines only partly
   * covered at either edge are cleaned first, as arm64 dcache_inval_poc and ARMv7
   * v7_dma_inv_range do, so bytes outside the range are never lost.
   */
  invalidateRange(phys: number, len: number): void {
    this.#maintain(phys, len, false, true, true);
  }

  /** Clean and invalidate (flush) the range. */
  flushRange(phys: number, len: number): void {
    this.#maintain(phys, len, true, true, false);
  }

  // ---------------------------------------------------------------------------------
  // Whole-cache maintenance by set/way

  /** Clean every dirty line (by set/way). Every slot is visited. */
  cleanAll(): void {
    this.#resetFindings();
    this.counters.setWayOps += this.slots;
    if (this.#dirtyCount === 0) return;
    for (let s = 0; s < this.slots; s++) if (this.#dirty[s] === 1) this.#writeback(s);
  }

  /** Clean and invalidate every line (by set/way): the cache is empty afterwards. */
  flushAll(): void {
    this.#resetFindings();
    this.counters.setWayOps += this.slots;
    if (this.#valid === 0) return;
    for (let s = 0; s < this.slots; s++) {
      if (this.#tag[s]! < 0) continue;
      if (this.#dirty[s] === 1) this.#writeback(s);
      this.#drop(s);
    }
  }

  // ---------------------------------------------------------------------------------
  // What devices see

  /**
   * Visits the cached lines overlapping `[phys, phys+len)`: `visit(slot, linePhys)`.
   * Pages with no cached line are skipped without touching their lines.
   */
  forEachCachedLine(
    phys: number,
    len: number,
    visit: (slot: number, linePhys: number) => void,
  ): void {
    if (this.#valid === 0 || len <= 0) return;
    const L = this.line;
    const base = this.memory.base;
    const first = this.#lineIndex(phys);
    const last = this.#lineIndex(phys + len - 1);
    let li = first;
    while (li <= last) {
      const page = Math.floor(li / this.#linesPerPage);
      const pageEnd = Math.min(last + 1, (page + 1) * this.#linesPerPage);
      if (this.#pageCount.get(page) !== 0) {
        for (let l = li; l < pageEnd; l++) {
          const s = this.#rmap.get(l);
          if (s >= 0) visit(s, base + l * L);
        }
      }
      li = pageEnd;
    }
  }

  /** Whether a slot is dirty. */
  isDirty(slot: number): boolean {
    return this.#dirty[slot] === 1;
  }

  /** Dirty lines in a range, as a finding (or undefined): for non-coherent device reads and writes. */
  dirtyIn(phys: number, len: number): LineFinding | undefined {
    if (this.#dirtyCount === 0) return undefined;
    let f: LineFinding | undefined;
    this.forEachCachedLine(phys, len, (s, lp) => {
      if (this.#dirty[s] === 1) {
        if (f === undefined) f = { phys: lp, lines: 0, epoch: 0 };
        f.lines++;
      }
    });
    return f;
  }

  /**
   * A coherent device's read: overlays, onto bytes already read from memory into
   * `dst`, the dirty lines the CPU holds for the range (the snoop supplies them).
   */
  snoopRead(phys: number, len: number, dst: Uint8Array, dstOff = 0): void {
    if (this.#dirtyCount === 0) return;
    const L = this.line;
    const end = phys + len;
    this.forEachCachedLine(phys, len, (s, lp) => {
      this.counters.snoops++;
      if (this.#dirty[s] !== 1) return;
      const from = Math.max(lp, phys);
      const to = Math.min(lp + L, end);
      const at = s * L + (from - lp);
      dst.set(this.#bytes.subarray(at, at + (to - from)), dstOff + (from - phys));
    });
  }

  /**
   * A coherent device's write is about to land on `[phys, phys+len)`: cached copies are
   * invalidated (a partly covered dirty line is written back first so the bytes beside
   * the device's write survive).
   */
  snoopWrite(phys: number, len: number): void {
    if (this.#valid === 0) return;
    const L = this.line;
    const end = phys + len;
    const victims: number[] = [];
    this.forEachCachedLine(phys, len, (s, lp) => {
      this.counters.snoops++;
      const partial = lp < phys || lp + L > end;
      if (partial && this.#dirty[s] === 1) this.#writeback(s);
      victims.push(s);
    });
    for (const s of victims) this.#drop(s);
  }

  // ---------------------------------------------------------------------------------
  // Internals

  #lineIndex(phys: number): number {
    return Math.floor((phys - this.memory.base) / this.line);
  }

  #resetFindings(): void {
    this.findings.staleRead = undefined;
    this.findings.lostWrite = undefined;
  }

  #note(kind: keyof CacheFindings, linePhys: number, epoch: number): void {
    const f = this.findings[kind];
    if (f === undefined) this.findings[kind] = { phys: linePhys, lines: 1, epoch };
    else {
      f.lines++;
      if (epoch > f.epoch) f.epoch = epoch;
    }
  }

  #maintain(
    phys: number,
    len: number,
    clean: boolean,
    invalidate: boolean,
    edgesClean: boolean,
  ): void {
    this.memory.check(phys, len);
    this.#resetFindings();
    if (len <= 0) return;
    const L = this.line;
    const first = this.#lineIndex(phys);
    const last = this.#lineIndex(phys + len - 1);
    this.counters.lineOps += last - first + 1;
    if (this.#valid === 0) return;
    const base = this.memory.base;
    const end = phys + len;
    const lpp = this.#linesPerPage;
    let li = first;
    while (li <= last) {
      const page = Math.floor(li / lpp);
      const pageEnd = Math.min(last + 1, (page + 1) * lpp);
      if (this.#pageCount.get(page) !== 0) {
        const chunk = this.#rmap.chunkOf(li);
        for (let l = li; l < pageEnd; l++) {
          const s = chunk === undefined ? INVALID : this.#rmap.get(l);
          if (s < 0) continue;
          const dirty = this.#dirty[s] === 1;
          if (dirty) {
            const lp = base + l * L;
            const partial = edgesClean && (lp < phys || lp + L > end);
            if (clean || partial) this.#writeback(s);
            else this.counters.discardedDirty++;
          }
          if (invalidate) this.#drop(s);
        }
      }
      li = pageEnd;
    }
  }

  /** Finds or fills the line; returns its outer slot. */
  #access(li: number, fullOverwrite: boolean): number {
    let s = this.#rmap.get(li);
    if (s >= 0) {
      // Outer hit: find the innermost level that has it, fill the levels inside that.
      let hitLevel = this.#inner.length;
      for (let i = 0; i < this.#inner.length; i++) {
        const lv = this.#inner[i]!;
        const k = lv.innerOf[s]!;
        if (k >= 0) {
          lv.stamp[k] = ++this.#tick;
          hitLevel = i;
          break;
        }
      }
      this.counters.hits[hitLevel]!++;
      for (let i = 0; i < hitLevel; i++) this.#innerInsert(i, li, s);
      if (hitLevel === this.#inner.length) this.#touch(s);
      return s;
    }
    s = this.#allocate(li);
    this.counters.fills++;
    if (!fullOverwrite) this.#fillFromMemory(li, s);
    this.#fillEpoch[s] = this.shadow.epoch;
    for (let i = 0; i < this.#inner.length; i++) this.#innerInsert(i, li, s);
    return s;
  }

  #touch(s: number): void {
    if (!this.#plru) {
      this.#stamp[s] = ++this.#tick;
      return;
    }
    const set = Math.floor(s / this.ways);
    const way = s - set * this.ways;
    const levels = Math.log2(this.ways);
    let bits = this.#plruBits[set]!;
    let node = 1;
    for (let l = levels - 1; l >= 0; l--) {
      const dir = (way >>> l) & 1;
      // Point the node away from the way just used.
      if (dir === 0) bits |= 1 << node;
      else bits &= ~(1 << node);
      node = node * 2 + dir;
    }
    this.#plruBits[set] = bits;
  }

  #victimWay(set: number): number {
    const base = set * this.ways;
    for (let w = 0; w < this.ways; w++) if (this.#tag[base + w]! < 0) return w;
    if (this.#plru) {
      const bits = this.#plruBits[set]!;
      const levels = Math.log2(this.ways);
      let node = 1;
      let way = 0;
      for (let l = 0; l < levels; l++) {
        const dir = (bits >>> node) & 1;
        way = way * 2 + dir;
        node = node * 2 + dir;
      }
      return way;
    }
    let best = 0;
    let bestStamp = this.#stamp[base]!;
    for (let w = 1; w < this.ways; w++) {
      const st = this.#stamp[base + w]!;
      if (st < bestStamp) {
        bestStamp = st;
        best = w;
      }
    }
    return best;
  }

  #allocate(li: number): number {
    const set = li % this.sets;
    const s = set * this.ways + this.#victimWay(set);
    if (this.#tag[s]! >= 0) {
      this.counters.evictions++;
      if (this.#dirty[s] === 1) this.#writeback(s);
      this.#drop(s);
    }
    this.#tag[s] = li;
    this.#dirty[s] = 0;
    this.#rmap.set(li, s);
    const page = Math.floor(li / this.#linesPerPage);
    this.#pageCount.set(page, this.#pageCount.get(page) + 1);
    this.#valid++;
    this.#touch(s);
    return s;
  }

  #innerInsert(level: number, li: number, outerSlot: number): void {
    const lv = this.#inner[level]!;
    if (lv.innerOf[outerSlot]! >= 0) return;
    const set = li % lv.sets;
    const base = set * lv.ways;
    let way = -1;
    let bestStamp = Number.POSITIVE_INFINITY;
    for (let w = 0; w < lv.ways; w++) {
      const k = base + w;
      if (lv.slotOf[k]! < 0) {
        way = w;
        break;
      }
      if (lv.stamp[k]! < bestStamp) {
        bestStamp = lv.stamp[k]!;
        way = w;
      }
    }
    const k = base + way;
    const old = lv.slotOf[k]!;
    if (old >= 0) lv.innerOf[old] = INVALID;
    lv.slotOf[k] = outerSlot;
    lv.innerOf[outerSlot] = k;
    lv.stamp[k] = ++this.#tick;
  }

  #fillFromMemory(li: number, s: number): void {
    const W = this.#lineWords;
    const off = li * this.line;
    const ci = Math.floor(off / (1 << MEMORY_CHUNK_SHIFT));
    const words = this.memory.peekChunkWords(ci);
    const d = s * W;
    if (words === undefined) {
      this.#data.fill(0, d, d + W);
      return;
    }
    const w0 = (off - ci * (1 << MEMORY_CHUNK_SHIFT)) >>> 2;
    for (let i = 0; i < W; i++) this.#data[d + i] = words[w0 + i]!;
  }

  /** Writes a dirty slot back to memory, checking whether it destroys newer data. */
  #writeback(s: number): void {
    const li = this.#tag[s]!;
    const W = this.#lineWords;
    const off = li * this.line;
    const ci = Math.floor(off / (1 << MEMORY_CHUNK_SHIFT));
    const words = this.memory.chunkWords(ci);
    const w0 = (off - ci * (1 << MEMORY_CHUNK_SHIFT)) >>> 2;
    const d = s * W;
    for (let i = 0; i < W; i++) words[w0 + i] = this.#data[d + i]!;
    if (this.shadow.enabled) {
      const me = this.shadow.memEpoch.get(li);
      if (me > this.#fillEpoch[s]!) this.#note("lostWrite", this.memory.base + off, me);
    }
    // Line and memory agree from now on.
    this.#fillEpoch[s] = this.shadow.epoch;
    this.#dirty[s] = 0;
    this.#dirtyCount--;
    this.counters.writebacks++;
  }

  /** Invalidates a slot in every level (without writing it back). */
  #drop(s: number): void {
    const li = this.#tag[s]!;
    if (li < 0) return;
    if (this.#dirty[s] === 1) {
      this.#dirty[s] = 0;
      this.#dirtyCount--;
    }
    for (const lv of this.#inner) {
      const k = lv.innerOf[s]!;
      if (k >= 0) {
        lv.slotOf[k] = INVALID;
        lv.innerOf[s] = INVALID;
      }
    }
    this.#tag[s] = INVALID;
    this.#rmap.set(li, INVALID);
    const page = Math.floor(li / this.#linesPerPage);
    this.#pageCount.set(page, this.#pageCount.get(page) - 1);
    this.#valid--;
  }
}

/** Lines per page for a line size (used by callers that iterate pages). */
export function linesPerPage(lineSize: number): number {
  return PAGE_SIZE >>> Math.log2(lineSize);
}

export { PAGE_SHIFT };
