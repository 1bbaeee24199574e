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
 *
 * Slot numbers. The public slot number (what {@link CpuCache.forEachCachedLine} passes
 * and {@link CpuCache.isDirty} takes) is `set * ways + way`. Internally every per-slot
 * array is indexed way-major instead, `way * sets + set`. Why: consecutive physical
 * lines fall in consecutive sets, and a buffer cached in order lands in the same way of
 * each, so its tags, flags and bytes sit next to each other in host memory. Range
 * maintenance then walks the arrays sequentially and copies runs of lines with one
 * memcpy, instead of striding (1 KiB per line through the data of a 64 MiB cache).
 */

import { CHUNK_SIZE, ChunkedI32, ChunkedU16 } from "./chunked.js";
import type { CoherencyShadow } from "./coherency.js";
import {
  type ChunkWatcher,
  copyBytes,
  MEMORY_CHUNK_SHIFT,
  PAGE_SHIFT,
  PAGE_SIZE,
  type PhysicalMemory,
} from "./memory.js";

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
  /** {@link setMaskOf}`(sets)`. */
  readonly setMask: number;
  readonly ways: number;
  /** Outer-level slot held by each inner slot, or -1. */
  readonly slotOf: Int32Array;
  readonly stamp: Float64Array;
  /** Inner slot holding each outer slot, or -1. */
  readonly innerOf: Int32Array;
}

const INVALID = -1;

/**
 * `i % n` for non-negative integers below 2^52 (line and slot indices). Why not `%`: the
 * indices are doubles to V8 (they may pass 2^31), and a double `%` is a call into C's
 * fmod, several times slower than this on the per-line paths.
 */
function mod(i: number, n: number): number {
  return (i - Math.floor(i / n) * n) | 0;
}

/** The mask {@link setIndex} takes for `sets` sets: `sets - 1` for a power of two, else -1. */
function setMaskOf(sets: number): number {
  return (sets & (sets - 1)) === 0 ? sets - 1 : -1;
}

/**
 * The set of line `li` among `sets` sets, `mask` being {@link setMaskOf}`(sets)`: `li & mask`
 * for a power of two (exact for every integer below 2^53: `&` takes `li` modulo 2^32,
 * which `sets` divides), else {@link mod}. Why: `mod` divides doubles, some 20 cycles at
 * the head of every fill's chain of dependent loads (set, replacement bits, victim).
 */
function setIndex(li: number, sets: number, mask: number): number {
  return mask >= 0 ? li & mask : mod(li, sets);
}

/**
 * Copies `n` words from `src[from..]` to `dst[to..]`: a plain loop for a line or two,
 * typed-array copies (memmove) for longer runs, where the subarray view pays off, in the
 * pieces memory.ts's copies take (copyBytes: below the L2 size, where glibc uses `rep movsb`).
 */
function copyWords(src: Int32Array, from: number, dst: Int32Array, to: number, n: number): void {
  if (n <= 32) for (let i = 0; i < n; i++) dst[to + i] = src[from + i]!;
  else copyBytes(dst, to, src, from, n);
}

/** Whether words `[from, from+n)` of `a` are all zero. */
function isZero(a: Int32Array, from: number, n: number): boolean {
  for (let i = from, end = from + n; i < end; i++) if (a[i] !== 0) return false;
  return true;
}

/**
 * An Int32 view of all of `a`'s buffer (to copy whole words in and out of it), when the
 * word at `a[off]` is aligned and word indices stay small integers (buffers under 2 GiB).
 */
function wordView(a: Uint8Array, off: number): Int32Array | undefined {
  const bytes = a.buffer.byteLength;
  if ((a.byteOffset + off) % 4 !== 0 || bytes >= 2 ** 31) return undefined;
  return new Int32Array(a.buffer, 0, bytes >>> 2);
}

/**
 * The lowest invalid way of a set with one. A way whose bit is set in `known` (ways known
 * invalid, `CpuCache` `#setFree`) is, without reading its tag; when the bits are `exact`
 * (every invalid way has one) the lowest bit is the answer, no tag read. Otherwise the
 * other ways' tags are read (`sets` slots apart) up to the first bit.
 */
function lowestInvalidWay(
  known: number,
  exact: boolean,
  tag: Float64Array,
  set: number,
  sets: number,
  ways: number,
): number {
  if (exact && known !== 0) return 31 - Math.clz32(known & -known);
  let w = 0;
  for (let s = set; w < ways; w++, s += sets) if (((known >>> w) & 1) !== 0 || tag[s]! < 0) break;
  return w;
}

/** The way tree pseudo-LRU evicts next in a full set, from the set's tree bits. */
function plruVictim(bits: number, levels: number): number {
  let node = 1;
  let way = 0;
  for (let l = 0; l < levels; l++) {
    const dir = (bits >>> node) & 1;
    way = way * 2 + dir;
    node = node * 2 + dir;
  }
  return way;
}

/**
 * The ways of a full tree-PLRU set with tree bits `bits` in the order its next `ways`
 * misses replace them (into `out`); false when the state would not repeat after them
 * (each way once, and the tree back where it began).
 */
function plruVictimOrder(bits: number, ways: number, levels: number, out: Int32Array): boolean {
  let b = bits;
  let seen = 0;
  for (let m = 0; m < ways; m++) {
    const way = plruVictim(b, levels);
    out[m] = way;
    seen |= 1 << way;
    b = plruTouched(b, way, levels);
  }
  return b === bits && seen === 2 ** ways - 1;
}

/**
 * Per way, the masks that make {@link plruTouched} two operations: `(bits & keep[way]) |
 * set[way]`. Shared by every cache with the same tree depth.
 */
interface PlruMasks {
  readonly keep: Int32Array;
  readonly set: Int32Array;
}
const plruMaskTables = new Map<number, PlruMasks>();

function plruMasks(levels: number): PlruMasks {
  let t = plruMaskTables.get(levels);
  if (t === undefined) {
    const ways = 2 ** levels;
    const keep = new Int32Array(ways);
    const set = new Int32Array(ways);
    for (let w = 0; w < ways; w++) {
      set[w] = plruTouched(0, w, levels);
      keep[w] = plruTouched(-1, w, levels);
    }
    t = { keep, set };
    plruMaskTables.set(levels, t);
  }
  return t;
}

/** The set's tree bits after `way` is used: every node on its path points away from it. */
function plruTouched(bits: number, way: number, levels: number): number {
  let node = 1;
  for (let l = levels - 1; l >= 0; l--) {
    const dir = (way >>> l) & 1;
    if (dir === 0) bits |= 1 << node;
    else bits &= ~(1 << node);
    node = node * 2 + dir;
  }
  return bits;
}

/**
 * Lines zeroed in order, as pieces of consecutive RAM lines: piece `i` starts at RAM
 * line `line[i]` and holds positions `[at[i], at[i+1])` of the sequence.
 */
interface ZeroRun {
  readonly line: number[];
  readonly at: number[];
}

/** The RAM lines at positions `[from, from + n)` of a run. */
function runLines(run: ZeroRun, from: number, n: number): Float64Array {
  const out = new Float64Array(n);
  let i = 0;
  forRunPieces(run, from, from + n, (li, len) => {
    for (let j = 0; j < len; j++) out[i++] = li + j;
  });
  return out;
}

/** Visits the pieces of positions `[from, to)` of a run as (first RAM line, lines). */
function forRunPieces(
  run: ZeroRun,
  from: number,
  to: number,
  f: (line: number, lines: number) => void,
): void {
  // Binary search for the piece holding `from`.
  let lo = 0;
  let hi = run.line.length - 1;
  while (lo < hi) {
    const mid = (lo + hi + 1) >>> 1;
    if (run.at[mid]! <= from) lo = mid;
    else hi = mid - 1;
  }
  for (let i = lo; i < run.line.length && run.at[i]! < to; i++) {
    const a = Math.max(from, run.at[i]!);
    const b = Math.min(to, run.at[i + 1]!);
    if (b > a) f(run.line[i]! + (a - run.at[i]!), b - a);
  }
}

/** Whether no two pieces of a run share a line (each line is zeroed once). */
function disjointRun(run: ZeroRun): boolean {
  const order = run.line.map((_, i) => i).sort((x, y) => run.line[x]! - run.line[y]!);
  for (let k = 1; k < order.length; k++) {
    const prev = order[k - 1]!;
    const len = run.at[prev + 1]! - run.at[prev]!;
    if (run.line[prev]! + len > run.line[order[k]!]!) return false;
  }
  return true;
}

function gcd(a: number, b: number): number {
  while (b !== 0) [a, b] = [b, a % b];
  return a;
}

const MEM_CHUNK = 1 << MEMORY_CHUNK_SHIFT;

/**
 * Lines per block of speculative fills whose host memory is touched before it is used
 * (reverse-map entries, DRAM lines): small enough to stay in the host's cache, large
 * enough for the host to overlap the misses.
 */
const PREFETCH_BLOCK = 256;

/**
 * Batches of fewer speculative fills copy their line data at once: late copies pay off
 * when a device write covers whole 1 MiB DRAM chunks (512 fills at arm64's rate of 1/32),
 * and a short write (a GPU's row) changes the chunk under its fills right away.
 */
const LATE_MIN_FILLS = 256;
/** Late copies for a batch whose lines span at most this many 1 MiB chunks (one device write's). */
const LATE_MAX_CHUNKS = 4096;
/** The default `CpuCache.rowLimit`: small batches' entries kept for late copies (#addRows). */
const ROW_MAX = 1 << 16;

/**
 * A slot-walking invalidation sets the reverse map and page counts of its whole range at
 * once when the range has at most this many lines per line the cache holds (4 bytes
 * written in sequence per entry against a random write per line dropped).
 */
const RMAP_FILL_PER_LINE = 64;

/** Where loads made only to bring host memory into the host's cache leave their value (so they stay). */
const touchSink = { value: 0 };

/**
 * A pending copy of dirty lines to DRAM (a write-back run): `runLen` lines from data word
 * `runData` to word `runMem` of DRAM chunk `wordsCi` (fetched, and so allocated, only when
 * a line is written back). It grows while the next line written back is slot `nextS` at
 * word `nextW` of the same chunk; it never crosses DRAM chunks. A class: one shape for
 * every caller of `#runAdd`.
 */
class CopyRun {
  runData = 0;
  runMem = 0;
  runLen = 0;
  nextS = -1;
  nextW = -1;
  wordsCi = -1;
}

/** The state of one range maintenance operation, carried from page to page. */
interface RangeOp {
  readonly clean: boolean;
  readonly invalidate: boolean;
  readonly first: number;
  readonly last: number;
  readonly partialFirst: boolean;
  readonly partialLast: boolean;
  readonly epochNow: number;
  readonly run: CopyRun;
  writebacks: number;
  discarded: number;
  /** Dirty bits cleared and lines dropped in the current page. */
  cleared: number;
  dropped: number;
}
const CH_MASK = CHUNK_SIZE - 1;

/**
 * Line-data buffers of released caches, reused by the next cache of the same size. They
 * need no clearing: a slot's data is only read while the slot is valid, and every fill
 * writes the whole line first. Each keeps its map of host pages that may hold a
 * non-zero byte (see `CpuCache` `#dataUsed`).
 */
const dataPool: { readonly buffer: ArrayBuffer; readonly used: Uint8Array }[] = [];
const DATA_POOL_MAX = 4;

/** Bytes of line data per entry of a cache's `#dataUsed` map: the host's page. */
const DATA_PAGE_SHIFT = 12;

/**
 * Per-slot and per-set state of a cache, arrays that a released cache gives to the next
 * cache of the same shape (a 64 MiB cache's are about 34 MiB: fresh ones cost host page
 * faults on every machine booted). Taken back, they are reset to a new cache's values.
 */
interface SlotState {
  readonly shape: string;
  readonly tag: Float64Array;
  readonly dirty: Uint8Array;
  readonly stamp: Float64Array;
  readonly setValid: Uint16Array;
  readonly setFree: Uint32Array;
  readonly plruBits: Uint32Array;
  readonly fillEpoch: Uint32Array;
  readonly inInner: Uint8Array;
  readonly inner: InnerLevel[];
}
const slotStatePool: SlotState[] = [];
const SLOT_STATE_POOL_MAX = 2;

function takeSlotState(
  shape: string,
  slots: number,
  sets: number,
  innerDims: readonly { sets: number; ways: number; slots: number }[],
  allFree: number,
): SlotState {
  const i = slotStatePool.findIndex((p) => p.shape === shape);
  if (i < 0)
    return {
      shape,
      tag: new Float64Array(slots).fill(INVALID),
      dirty: new Uint8Array(slots),
      stamp: new Float64Array(slots),
      setValid: new Uint16Array(sets),
      setFree: new Uint32Array(sets).fill(allFree),
      plruBits: new Uint32Array(sets),
      fillEpoch: new Uint32Array(slots),
      inInner: new Uint8Array(slots),
      inner: innerDims.map((d) => ({
        sets: d.sets,
        setMask: setMaskOf(d.sets),
        ways: d.ways,
        slotOf: new Int32Array(d.slots).fill(INVALID),
        stamp: new Float64Array(d.slots),
        innerOf: new Int32Array(slots).fill(INVALID),
      })),
    };
  const st = slotStatePool.splice(i, 1)[0]!;
  st.tag.fill(INVALID);
  st.dirty.fill(0);
  st.stamp.fill(0);
  st.setValid.fill(0);
  st.setFree.fill(allFree);
  st.plruBits.fill(0);
  st.fillEpoch.fill(0);
  st.inInner.fill(0);
  for (const lv of st.inner) {
    lv.slotOf.fill(INVALID);
    lv.stamp.fill(0);
    lv.innerOf.fill(INVALID);
  }
  return st;
}

export class CpuCache {
  readonly line: number;
  readonly #lineWords: number;
  readonly #linesPerPage: number;
  readonly sets: number;
  /** {@link setMaskOf}`(sets)`. */
  readonly #setMask: number;
  readonly ways: number;
  readonly slots: number;
  /** Bytes of the outer (data-holding) level. */
  readonly capacity: number;
  readonly #plru: boolean;
  /** log2(ways), the depth of the pseudo-LRU tree. */
  readonly #plruLevels: number;
  /** {@link plruTouched} as masks per way. */
  readonly #plruMasks: PlruMasks;

  // Outer level, one entry per slot, indexed way-major (see the header comment).
  readonly #tag: Float64Array; // RAM line index or -1
  readonly #dirty: Uint8Array;
  /** LRU stamps, indexed set-major (`set * ways + way`): the victim search reads a whole set. */
  readonly #stamp: Float64Array;
  /**
   * Valid ways per set. Why: with way-major slots the ways of a set lie far apart in
   * host memory; a full set (the steady state) skips the scan for an invalid way.
   */
  readonly #setValid: Uint16Array;
  /**
   * Per set, a bit for each way known invalid, every invalid way's while `#freeExact`
   * (sets of up to 32 ways; always 0 for wider sets, whose ways have no bit). Why: a fill into a set with holes takes the
   * lowest invalid way, and the ways of a set lie `sets` slots apart, so each tag read is
   * a host cache line: after the unmap of a buffer a non-coherent device wrote (its
   * speculative fills dropped), most sets have holes, and a GPU's next row of fills read
   * up to a set's every tag to find one. A drop sets its way's bit (`#freeBit`), except
   * in a page-by-page invalidation, which marks the bits inexact instead.
   */
  readonly #setFree: Uint32Array;
  /** `#setFree` of an empty set. */
  readonly #allFree: number;
  /**
   * Whether every invalid way has its `#setFree` bit (a page-by-page invalidation leaves
   * them unset; the slot walk of a large one sets them all again).
   */
  #freeExact = true;
  /** The `#setFree` bit of a way (0 in sets wider than 32 ways, which have no bits). */
  #freeBit(way: number): number {
    return this.#allFree === 0 ? 0 : 1 << way;
  }
  readonly #plruBits: Uint32Array; // per set
  /** Line data by slot. Every write to it marks its pages in `#dataUsed` (`#markData`, `#fillData`). */
  readonly #data: Int32Array;
  readonly #bytes: Uint8Array;
  /**
   * Per host page of `#data` (4 KiB), 1 when it may hold a non-zero byte, 0 when it is
   * all zero. Why: a fresh buffer is zero and costs no host memory until written, and
   * a new machine's kernel fills its cache with zeroed lines (x86-64-64m: 64 MiB of
   * them); storing zeros into, or reading zeros out of, a page known zero is skipped,
   * so it is never faulted in. Every write of line data marks its page (`#markData`).
   */
  readonly #dataUsed: Uint8Array;
  /** log2 of the slots per entry of `#dataUsed`. */
  readonly #slotPageShift: number;
  readonly #fillEpoch: Uint32Array;
  /**
   * Per slot, the note the last speculative fill into it carried (-1: none), allocated at
   * the first one. A note is told apart from a later occupant of the slot by the fill
   * epoch it names: every other fill, store or write-back gives a slot a newer epoch.
   */
  #prefetchNote: Float64Array | undefined;
  /** The arrays above (and the inner levels'), handed to the next cache of this shape at release. */
  readonly #slotState: SlotState;
  #tick = 0;
  #released = false;
  #valid = 0;
  #dirtyCount = 0;

  // Reverse maps: RAM line index -> slot, RAM page index -> lines cached in that page.
  readonly #rmap: ChunkedI32;
  readonly #pageCount: ChunkedU16;
  /** RAM page index -> dirty lines cached in that page (lets clean and dirtyIn skip pages). */
  readonly #pageDirty = new ChunkedU16(0);
  readonly #inner: InnerLevel[] = [];
  /** `#inner[i].innerOf` and `.slotOf`, hoisted for the drop loops. */
  readonly #innerOf: Int32Array[] = [];
  readonly #innerSlotOf: Int32Array[] = [];
  /**
   * Per outer slot, how many inner levels hold the line. Why: dropping a line must
   * remove it from every inner level, but inner levels are small and almost every line
   * a range operation drops is in none; one byte read tells, instead of one read per level.
   */
  readonly #inInner: Uint8Array;
  /**
   * The least common multiple of every level's set count (0 when above 2^40): zeroing
   * is periodic only over ranges whose lines keep every set index in step.
   */
  readonly #setModulus: number;

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
    this.#rmap = new ChunkedI32(INVALID, Math.ceil(memory.size / L));
    this.#pageCount = new ChunkedU16(0, Math.ceil(memory.size / PAGE_SIZE));
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
    this.#setMask = setMaskOf(this.sets);
    this.ways = outer.ways;
    this.slots = this.sets * this.ways;
    this.capacity = outer.sizeBytes;
    this.#plru = geometry.replacement === "plru";
    this.#plruLevels = Math.log2(this.ways);
    this.#plruMasks = plruMasks(this.#plru ? this.#plruLevels : 0);
    this.#allFree = this.ways > 32 ? 0 : this.ways === 32 ? 0xffffffff : 2 ** this.ways - 1;
    const innerDims = geometry.levels.slice(0, -1).map((lv) => {
      const sets = check(lv);
      return { sets, ways: lv.ways, slots: sets * lv.ways };
    });
    // The slot state of a released cache of the same shape, reset, else new arrays.
    const shape = `${this.sets}x${this.ways}:${innerDims.map((d) => `${d.sets}x${d.ways}`).join(",")}`;
    this.#slotState = takeSlotState(shape, this.slots, this.sets, innerDims, this.#allFree);
    const st = this.#slotState;
    this.#tag = st.tag;
    this.#dirty = st.dirty;
    this.#stamp = st.stamp;
    this.#setValid = st.setValid;
    this.#setFree = st.setFree;
    this.#plruBits = st.plruBits;
    const bytes = this.slots * L;
    const pooled = dataPool.findIndex((b) => b.buffer.byteLength === bytes);
    const reused = pooled >= 0 ? dataPool.splice(pooled, 1)[0]! : undefined;
    this.#data = new Int32Array(reused?.buffer ?? new ArrayBuffer(bytes));
    this.#bytes = new Uint8Array(this.#data.buffer);
    this.#dataUsed = reused?.used ?? new Uint8Array(Math.ceil(bytes / (1 << DATA_PAGE_SHIFT)));
    this.#slotPageShift = Math.max(0, DATA_PAGE_SHIFT - Math.log2(L));
    this.#fillEpoch = st.fillEpoch;
    this.#inInner = st.inInner;
    for (const lv of st.inner) this.#inner.push(lv);
    let mod = this.sets;
    for (const lv of this.#inner) mod = mod > 2 ** 40 ? mod : (mod / gcd(mod, lv.sets)) * lv.sets;
    this.#setModulus = mod > 2 ** 40 ? 0 : mod;
    for (const lv of this.#inner) {
      this.#innerOf.push(lv.innerOf);
      this.#innerSlotOf.push(lv.slotOf);
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
    this.#watcher = {
      beforeChange: (ci) => this.#settle(ci),
      replaced: (ci, old) => {
        this.#snapshots[ci] = old ?? null;
        this.#snapshotChunks.push(ci);
      },
    };
    this.#lazy = memory.attachWatcher(this.#watcher);
  }

  /** Gives the line data to the next cache (Machine.release): this cache is not used again. */
  release(): void {
    if (this.#released) return;
    this.#released = true;
    // The lines not copied yet are never read now: give the memory kept for them back.
    this.#bigN = 0;
    this.#rowN = 0;
    this.#rowChunks.length = 0;
    this.#endWatch();
    this.memory.detachWatcher(this.#watcher);
    if (dataPool.length >= DATA_POOL_MAX) dataPool.shift();
    dataPool.push({ buffer: this.#data.buffer as ArrayBuffer, used: this.#dataUsed });
    if (slotStatePool.length >= SLOT_STATE_POOL_MAX) slotStatePool.shift();
    slotStatePool.push(this.#slotState);
    this.#rmap.release();
    this.#pageCount.release();
    this.#pageDirty.release();
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

  /** Hazard hook: the epoch the line holding `phys` was filled at, if it is cached. */
  fillEpochOf(phys: number): number | undefined {
    const s = this.#rmap.get(this.#lineIndex(phys));
    return s < 0 ? undefined : this.#fillEpoch[s];
  }

  /**
   * Hazard hook: a speculative line fill (a hardware prefetch through the cacheable
   * linear map, src/machine/speculation.ts). Fills the line holding `phys` from memory
   * as it is now, if it is not cached, and records it as filled at `fillEpoch` (the
   * moment before a device's transfer lands, so the line is stale once it has). No CPU
   * counters move but `fills` and `evictions`: nothing waited for it. Returns whether a
   * line was filled; a dirty victim written back over device data is in `findings`.
   */
  prefetch(phys: number, fillEpoch: number, note = -1): boolean {
    this.memory.check(phys, 1);
    if (this.#lazyN !== 0) this.#settle(-1);
    this.#resetFindings();
    const li = this.#lineIndex(phys);
    if (this.#rmap.get(li) >= 0) return false;
    const s = this.#access(li, false);
    this.#fillEpoch[s] = fillEpoch;
    this.#notes()[s] = note;
    return true;
  }

  /**
   * Hazard hook: the note the speculative fill of the line holding `phys` carried, if
   * that line is cached and a speculative fill put it into its slot (compare its epoch
   * with {@link fillEpochOf} to know it is still that fill's line).
   */
  prefetchNoteOf(phys: number): number | undefined {
    const notes = this.#prefetchNote;
    if (notes === undefined) return undefined;
    const s = this.#rmap.get(this.#lineIndex(phys));
    return s < 0 || notes[s]! < 0 ? undefined : notes[s];
  }

  #notes(): Float64Array {
    this.#prefetchNote ??= new Float64Array(this.slots).fill(-1);
    return this.#prefetchNote;
  }

  /**
   * Hazard hook: the speculative fills of a device write in bulk, exactly
   * `prefetch(base + lines[k] * line, fillEpoch, note)` for k from `from` upwards, in
   * order (the same victims, replacement state, counters and DRAM), but with the line
   * data of the lines still held at the end copied later (#settle: when something reads
   * or refills a slot, or before DRAM under them changes; usually never, since the DMA
   * API invalidates them first), instead of per fill. Why that is the same: a fill reads
   * DRAM as it is at that moment, and within the loop DRAM only changes by write-backs of
   * dirty victims, which are lines other than those held by fills (a line is in one slot
   * at a time, and a filled line is clean), so each line still held at the end finds in
   * DRAM what it found when it was filled; a slot's data is read by nothing in the loop;
   * after it, #settle keeps the DRAM of the moment. `lines` are RAM line indices (from the base of RAM),
   * each inside RAM. Stops after the first fill whose victim's write-back destroyed a
   * device write (in `findings.lostWrite`, to be reported before going on) and returns
   * the index after the last line done; the lines filled are the growth of `counters.fills`.
   * `lo` and `hi`: bounds of every line of the batch when the caller knows them (a device
   * write's line range; a caller that goes on after each lost write would otherwise have
   * each call find them by a pass over the rest of the batch).
   */
  prefetchLines(
    lines: Float64Array,
    from: number,
    to: number,
    fillEpoch: number,
    note: number,
    lo = Number.NaN,
    hi = Number.NaN,
  ): number {
    this.#resetFindings();
    // A small batch (a GPU's row) keeps its fills' data for later in per-chunk lists
    // (#addRows), with earlier small batches' entries. A big batch copies the data of the
    // big batch before it first (its scratch is reused). Everything is copied first when
    // a chunk was replaced whole since (the entries' source is its old words, and this
    // batch's would be the new ones) or the lists would pass their limit.
    const small = this.#lazy && to - from < LATE_MIN_FILLS;
    // (With no entry left, that ends the watch of a chunk replaced since: its old words
    // must not become the source of this batch's fills.)
    if (this.#snapshotChunks.length !== 0) this.#settle(-1);
    else if (!small && this.#bigN !== 0) this.#settleBig(-1);
    if (small && this.#rowN + (to - from) > this.rowLimit) {
      this.#compactRows();
      if (this.#rowN + (to - from) > this.rowLimit / 2) this.#settle(-1);
    }
    // The reverse map and page counts as one view each over the batch's lines (and the
    // lines cached already, the victims, whose chunks exist): see Chunked.flatView.
    if (Number.isNaN(lo) || Number.isNaN(hi)) {
      lo = Number.POSITIVE_INFINITY;
      hi = -1;
      for (let i = from; i < to; i++) {
        const li = lines[i]!;
        if (li < lo) lo = li;
        if (li > hi) hi = li;
      }
    }
    const lpp = this.#linesPerPage;
    const rmap = this.#rmap.flatView(lo, hi + 1);
    const pageCount =
      rmap === undefined
        ? undefined
        : this.#pageCount.flatView(Math.floor(lo / lpp), Math.floor(hi / lpp) + 1);
    if (rmap === undefined || pageCount === undefined) {
      // RAM too large for one view: the plain path, a line at a time.
      const base = this.memory.base;
      for (let k = from; k < to; k++) {
        this.prefetch(base + lines[k]! * this.line, fillEpoch, note);
        if (this.findings.lostWrite !== undefined) return k + 1;
      }
      return to;
    }
    const notes = this.#notes();
    const fillEpochs = this.#fillEpoch;
    const nInner = this.#inner.length;
    const pending = small ? this.#smallSlot : this.#pendingFills(to - from);
    const pendingLine = small ? this.#smallLine : this.#pendingLine;
    const sets = this.sets;
    const setMask = this.#setMask;
    const ways = this.ways;
    const tag = this.#tag;
    const dirty = this.#dirty;
    const setValid = this.#setValid;
    const setFree = this.#setFree;
    const exact = this.#freeExact;
    const plruBits = this.#plruBits;
    const stamp = this.#stamp;
    const plru = this.#plru;
    const levels = this.#plruLevels;
    const plruKeep = this.#plruMasks.keep;
    const plruSet = this.#plruMasks.set;
    const inInner = this.#inInner;
    let fills = 0;
    let evictions = 0;
    let np = 0;
    let k = from;
    if (to - from >= this.slots >>> 2) this.#warmSlots(notes);
    while (k < to) {
      // The reverse-map entries of a block of lines first, in a loop of independent loads
      // that the host overlaps: the fills below then find them in the host's cache
      // instead of waiting for each (the fills are scattered over the whole buffer). A
      // block, not the whole batch: a batch's entries would not all stay in the host's cache.
      const blockEnd = Math.min(to, k + PREFETCH_BLOCK);
      let held = 0;
      for (let i = k; i < blockEnd; i++) if (rmap[lines[i]!]! >= 0) held++;
      if (held === blockEnd - k) {
        k = blockEnd; // every line is cached already: nothing to fill
        continue;
      }
      let stop = false;
      while (k < blockEnd) {
        const li = lines[k++]!;
        if (rmap[li]! >= 0) continue;
        // #allocate(li), written out: the victim, its write-back and #drop, the new line.
        const set = setIndex(li, sets, setMask);
        let way: number;
        // A set with a hole takes an invalid way: its tag is not read (after the unmap of a
        // buffer the device wrote, most sets have holes, and each tag is a host cache miss).
        const full = setValid[set]! >= ways;
        if (!full) way = lowestInvalidWay(setFree[set]!, exact, tag, set, sets, ways);
        else if (plru) way = plruVictim(plruBits[set]!, levels);
        else way = this.#victimWay(set);
        const s = way * sets + set;
        if (full) {
          const old = tag[s]!;
          evictions++;
          if (dirty[s] === 1) this.#writebackNoting(s);
          if (inInner[s] !== 0) this.#dropInner(s);
          rmap[old] = INVALID;
          pageCount[Math.floor(old / lpp)]!--;
        } else {
          setValid[set]!++;
          this.#valid++;
        }
        setFree[set]! &= ~(1 << way);
        tag[s] = li;
        dirty[s] = 0;
        rmap[li] = s;
        pageCount[Math.floor(li / lpp)]!++;
        if (plru) plruBits[set] = (plruBits[set]! & plruKeep[way]!) | plruSet[way]!;
        else stamp[set * ways + way] = ++this.#tick;
        fills++;
        fillEpochs[s] = fillEpoch;
        // The slot is in no inner level now (invalid, or its line just dropped from them):
        // placed without reading its inner slots or count.
        if (nInner !== 0) {
          for (let i = 0; i < nInner; i++) this.#innerPlace(i, li, s);
          inInner[s] = nInner;
        }
        notes[s] = note;
        pending[np] = s;
        pendingLine[np++] = li;
        if (this.findings.lostWrite !== undefined) {
          stop = true;
          break;
        }
      }
      if (stop) break;
    }
    this.counters.fills += fills;
    this.counters.evictions += evictions;
    if (small) {
      this.#addRows(np);
      return k;
    }
    this.#bigN = np;
    if (!this.#lazy || np < LATE_MIN_FILLS) {
      this.#settleBig(-1);
      return k;
    }
    // The line data is copied when something reads it or before DRAM under it changes
    // (#settle): memory tells this cache before it changes a chunk holding one of these
    // lines. Most never are: the DMA API invalidates them once the transfer is done.
    // The entries are grouped by DRAM chunk (a counting sort; the order of copies does
    // not matter, each slot's live entry being the one for the line it holds), so that a
    // chunk about to change settles its own lines only.
    // The chunks of the batch's lines (some may hold no entry: they are skipped below).
    const L = this.line;
    const c0 = Math.floor((lo * L) / MEM_CHUNK);
    const span = Math.floor((hi * L) / MEM_CHUNK) - c0 + 1;
    if (span > LATE_MAX_CHUNKS) {
      this.#settleBig(-1); // lines from all over RAM (not one device write): copy now
      return k;
    }
    if (this.#chunkStart.length < span + 1) this.#chunkStart = new Int32Array(span + 1);
    const start = this.#chunkStart;
    start.fill(0, 0, span + 1);
    for (let i = 0; i < np; i++) start[Math.floor((pendingLine[i]! * L) / MEM_CHUNK) - c0 + 1]!++;
    for (let c = 0; c < span; c++) start[c + 1]! += start[c]!;
    if (this.#sortedSlot.length < np) {
      this.#sortedSlot = new Int32Array(pending.length);
      this.#sortedLine = new Float64Array(pending.length);
    }
    const slotOut = this.#sortedSlot;
    const lineOut = this.#sortedLine;
    for (let i = 0; i < np; i++) {
      const at = start[Math.floor((pendingLine[i]! * L) / MEM_CHUNK) - c0]!++;
      slotOut[at] = pending[i]!;
      lineOut[at] = pendingLine[i]!;
    }
    // (start[c] is now where chunk c + 1's entries begin: shift back.)
    for (let c = span; c > 0; c--) start[c] = start[c - 1]!;
    start[0] = 0;
    this.#sortedSlot = pending;
    this.#sortedLine = pendingLine;
    this.#pending = slotOut;
    this.#pendingLine = lineOut;
    this.#lazyChunk0 = c0;
    this.#lazySpan = span;
    const memory = this.memory;
    for (let c = 0; c < span; c++)
      if (start[c + 1]! > start[c]! && memory.watch(c0 + c)) this.#watchedChunks.push(c0 + c);
    return k;
  }

  /**
   * Reads the per-slot arrays a speculative fill writes, one word per host cache line, in
   * order. Why: a batch of fills as large as a quarter of the cache touches most of their
   * host lines, each first at a random fill, after the device's transfer has pushed them
   * out of the host's caches: a miss per line that the fill waits for. A sequential pass
   * lets the host's prefetcher bring them in at memory bandwidth (tracked DMA's 16 Ki
   * fills: see docs/architecture.md). Changes nothing.
   */
  #warmSlots(notes: Float64Array): void {
    const n = this.slots;
    const tag = this.#tag;
    const fillEpoch = this.#fillEpoch;
    const dirty = this.#dirty;
    const inInner = this.#inInner;
    let t = 0;
    for (let i = 0; i < n; i += 8) t += tag[i]! + notes[i]!;
    for (let i = 0; i < n; i += 16) t += fillEpoch[i]!;
    for (let i = 0; i < n; i += 64) t += dirty[i]! + inInner[i]!;
    for (const io of this.#innerOf) for (let i = 0; i < n; i += 16) t += io[i]!;
    touchSink.value = t;
  }

  /**
   * Copies the line data of the speculative fills not copied yet (the big batch's,
   * `#pending[0..#bigN)` with their lines in `#pendingLine`, and the small batches' in
   * their per-chunk lists), or of those in memory chunk `ci` only when `ci >= 0`
   * (it is about to change), from DRAM as it was when they were filled: the chunk's
   * words, or those a write of the whole chunk replaced since (`#snapshots`). Why that
   * is exact: after a batch nothing fills a slot or reads a slot's data before this runs
   * (every operation that does settles first; maintenance reads dirty lines only, and
   * these are clean), and DRAM under them changes only after this ran for its chunk or
   * by a whole-chunk replacement that keeps the old words. A slot no longer holding its
   * fill's line was dropped since (or filled again later in the batch): skipped.
   */
  #settle(ci: number): void {
    if (this.#rowN !== 0) {
      if (ci >= 0) this.#settleRows(ci);
      else for (const c of this.#rowChunks) this.#settleRows(c);
    }
    this.#settleBig(ci);
    if (ci < 0) {
      this.#rowN = 0;
      this.#rowChunks.length = 0;
      this.#endWatch();
    }
  }

  /**
   * #settle's part for the big batch's entries (`#pending[0..#bigN)`); with `ci < 0`
   * all of them, and the small batches' entries stay (memory still tells of their chunks).
   */
  #settleBig(ci: number): void {
    let from = 0;
    let n = this.#bigN;
    if (ci >= 0) {
      // Only that chunk's entries (grouped by chunk in prefetchLines).
      const c = ci - this.#lazyChunk0;
      if (n === 0 || c < 0 || c >= this.#lazySpan) return;
      from = this.#chunkStart[c]!;
      n = this.#chunkStart[c + 1]!;
    }
    const slots = this.#pending;
    const lines = this.#pendingLine;
    const tag = this.#tag;
    const L = this.line;
    const W = this.#lineWords;
    // A block at a time: first the two ends of each source line (the host's cache lines
    // need not be aligned with the model's), loads the host overlaps, then the copies.
    for (let b = from; b < n; b += PREFETCH_BLOCK) {
      const bEnd = Math.min(n, b + PREFETCH_BLOCK);
      let touched = 0;
      for (let i = b; i < bEnd; i++) {
        const s = slots[i]!;
        if (s < 0 || tag[s] !== lines[i]) continue;
        const off = lines[i]! * L;
        const c = Math.floor(off / MEM_CHUNK);
        if (ci >= 0 && c !== ci) continue;
        const words = this.#lazySource(c);
        const w = (off - c * MEM_CHUNK) >>> 2;
        if (words !== undefined) touched |= words[w]! | words[w + W - 1]!;
      }
      touchSink.value = touched;
      for (let i = b; i < bEnd; i++) {
        const s = slots[i]!;
        if (s < 0 || tag[s] !== lines[i]) continue;
        const off = lines[i]! * L;
        const c = Math.floor(off / MEM_CHUNK);
        if (ci >= 0 && c !== ci) continue;
        if (ci >= 0) slots[i] = INVALID; // done
        this.#lineFrom(s, this.#lazySource(c), (off - c * MEM_CHUNK) >>> 2);
      }
    }
    if (ci < 0) {
      this.#bigN = 0;
      // No entry left: memory need not tell of any chunk (as before small batches waited).
      if (this.#rowN === 0) this.#endWatch();
    }
  }

  /**
   * Moves a small batch's `np` entries (`#smallSlot`, `#smallLine`) to the lists of their
   * DRAM chunks, whose changes memory is to tell first. Why: a GPU writes a frame a row at
   * a time, each row a device write with a few fills, and a row written over the same
   * bytes (a frame of the same key, src/machine/row-notes.ts) leaves DRAM as it was: its
   * fills' data need not be copied until something reads them, and the DMA API drops them
   * first. Copied at once, each was a read of DRAM that had left the host's cache.
   */
  #addRows(np: number): void {
    if (np === 0) return;
    const need = this.#rowN + np;
    if (this.#rowSlot.length < need) {
      const size = Math.max(need, 2 * this.#rowSlot.length, 1024);
      const slot = new Int32Array(size);
      const line = new Float64Array(size);
      const next = new Int32Array(size);
      slot.set(this.#rowSlot.subarray(0, this.#rowN));
      line.set(this.#rowLine.subarray(0, this.#rowN));
      next.set(this.#rowNext.subarray(0, this.#rowN));
      this.#rowSlot = slot;
      this.#rowLine = line;
      this.#rowNext = next;
    }
    if (this.#rowHead.length === 0) {
      const chunks = Math.ceil(this.memory.size / MEM_CHUNK);
      this.#rowHead = new Int32Array(chunks).fill(INVALID);
      this.#rowTail = new Int32Array(chunks);
    }
    const pending = this.#smallSlot;
    const pendingLine = this.#smallLine;
    const memory = this.memory;
    let e = this.#rowN;
    for (let i = 0; i < np; i++, e++) {
      const c = this.#linkRow(e, pending[i]!, pendingLine[i]!);
      if (c >= 0 && memory.watch(c)) this.#watchedChunks.push(c);
    }
    this.#rowN = e;
  }

  /**
   * Appends entry `e` (slot `slot`, line `li`) to the list of its line's DRAM chunk;
   * returns the chunk when the entry starts its list, else -1.
   */
  #linkRow(e: number, slot: number, li: number): number {
    const c = Math.floor((li * this.line) / MEM_CHUNK);
    this.#rowSlot[e] = slot;
    this.#rowLine[e] = li;
    this.#rowNext[e] = INVALID;
    const head = this.#rowHead;
    const tail = this.#rowTail;
    const started = head[c]! < 0;
    if (started) {
      head[c] = e;
      this.#rowChunks.push(c);
    } else this.#rowNext[tail[c]!] = e;
    tail[c] = e;
    return started ? c : -1;
  }

  /**
   * Drops the small batches' entries that need no copy any more (copied already, or
   * their slot no longer holds their line), the others kept in their lists in order.
   * Why: entries pile up over frames, and most of their lines are dropped by the DMA API
   * or evicted by later fills before anything reads them; only those still held need
   * their data, and copying them all when the lists are full would copy those.
   */
  #compactRows(): void {
    const rowSlot = this.#rowSlot;
    const rowLine = this.#rowLine;
    const head = this.#rowHead;
    const tag = this.#tag;
    for (const c of this.#rowChunks) head[c] = INVALID;
    this.#rowChunks.length = 0;
    let w = 0;
    for (let e = 0; e < this.#rowN; e++) {
      const s = rowSlot[e]!;
      const li = rowLine[e]!;
      if (s < 0 || tag[s] !== li) continue;
      this.#linkRow(w++, s, li);
    }
    this.#rowN = w;
  }

  /**
   * Copies the data of the small batches' entries of memory chunk `ci` (see #addRows)
   * still held, as #settle does, and empties its list. A block at a time: the source lines
   * first, loads the host overlaps, then the copies.
   */
  #settleRows(ci: number): void {
    const head = this.#rowHead;
    let e = head[ci]!;
    if (e < 0) return;
    head[ci] = INVALID;
    const words = this.#lazySource(ci);
    const rowSlot = this.#rowSlot;
    const rowLine = this.#rowLine;
    const rowNext = this.#rowNext;
    const tag = this.#tag;
    const L = this.line;
    const W = this.#lineWords;
    const base = ci * MEM_CHUNK;
    while (e >= 0) {
      let touched = 0;
      let x = e;
      for (let j = 0; j < PREFETCH_BLOCK && x >= 0; j++, x = rowNext[x]!) {
        if (words === undefined || tag[rowSlot[x]!] !== rowLine[x]) continue;
        const w = (rowLine[x]! * L - base) >>> 2;
        touched |= words[w]! | words[w + W - 1]!;
      }
      touchSink.value = touched;
      for (; e !== x; e = rowNext[e]!) {
        const s = rowSlot[e]!;
        rowSlot[e] = INVALID; // done (#compactRows drops it)
        if (tag[s] !== rowLine[e]) continue; // dropped or refilled since
        this.#lineFrom(s, words, (rowLine[e]! * L - base) >>> 2);
      }
    }
  }

  /** The words speculative fills of memory chunk `ci` copy (undefined: zeros). */
  #lazySource(ci: number): Int32Array | undefined {
    const snap = this.#snapshots[ci];
    if (snap === undefined) return this.memory.peekChunkWords(ci);
    return snap ?? undefined;
  }

  /** Ends the watch of memory's chunks and gives back the words of those replaced. */
  #endWatch(): void {
    // (Setting an array's length is a runtime call even when it is 0 already: this runs
    // after every device write's speculative fills, a GPU's row writes thousands a frame.)
    if (this.#watchedChunks.length !== 0) {
      for (const ci of this.#watchedChunks) this.memory.unwatch(ci);
      this.#watchedChunks.length = 0;
    }
    if (this.#snapshotChunks.length !== 0) {
      for (const ci of this.#snapshotChunks) {
        const words = this.#snapshots[ci];
        if (words !== undefined && words !== null) this.memory.recycle(words);
        this.#snapshots[ci] = undefined;
      }
      this.#snapshotChunks.length = 0;
    }
  }

  /** Whether this cache is its memory's watcher: speculative fills copy their data late. */
  readonly #lazy: boolean;
  readonly #watcher: ChunkWatcher;
  /**
   * Speculative fills whose data may not be copied yet: the big batch's (`#bigN`) and
   * the small batches' entries (`#rowN`). Every operation that reads or fills a slot
   * settles them first when this is not 0.
   */
  get #lazyN(): number {
    return this.#bigN + this.#rowN;
  }
  /** The big batch's entries: `#pending[0..#bigN)`. */
  #bigN = 0;
  /**
   * Small batches' entries (#addRows): slot, line and the next entry of the same DRAM
   * chunk (-1: the last); `#rowN` used since the last full settle. Per memory chunk, its
   * list's first and last entry (`#rowHead` -1: none); `#rowChunks` the chunks given a
   * list since (a chunk may appear more than once).
   */
  #rowSlot = new Int32Array(0);
  #rowLine = new Float64Array(0);
  #rowNext = new Int32Array(0);
  #rowN = 0;
  #rowHead = new Int32Array(0);
  #rowTail = new Int32Array(0);
  readonly #rowChunks: number[] = [];
  /** Memory chunks watched for them. */
  readonly #watchedChunks: number[] = [];
  /** Per memory chunk replaced whole since, its old words (null: it read as zero). */
  readonly #snapshots: (Int32Array | null | undefined)[] = [];
  readonly #snapshotChunks: number[] = [];
  /** Scratch for {@link prefetchLines}: the lines filled, in order (with `#pending`). */
  #pendingLine = new Float64Array(0);
  /** The late entries' first DRAM chunk, how many chunks they span, where each chunk's begin. */
  #lazyChunk0 = 0;
  #lazySpan = 0;
  #chunkStart = new Int32Array(0);
  /** Scratch for grouping the entries by chunk (swapped with `#pending`/`#pendingLine`). */
  #sortedSlot = new Int32Array(0);
  #sortedLine = new Float64Array(0);

  /** Scratch for {@link prefetchLines}: the slots filled, in order. */
  #pending = new Int32Array(0);

  /** Scratch for {@link prefetchLines}: a small batch's slots and lines, in order. */
  readonly #smallSlot = new Int32Array(LATE_MIN_FILLS);
  readonly #smallLine = new Float64Array(LATE_MIN_FILLS);

  #pendingFills(n: number): Int32Array<ArrayBuffer> {
    if (this.#pending.length < n) {
      this.#pending = new Int32Array(Math.max(n, 2 * this.#pending.length));
      this.#pendingLine = new Float64Array(this.#pending.length);
    }
    return this.#pending;
  }

  /**
   * Hazard hook: the bytes a CPU load of `[phys, phys+len)` would return, with no side
   * effect at all (no fill, no counters, no replacement update, no findings). For the
   * checker's swiotlb comparison and the fault injector's proofs; never on a hot path.
   */
  peek(phys: number, len: number, dst: Uint8Array): void {
    if (this.#lazyN !== 0) this.#settle(-1);
    this.memory.read(phys, len, dst, 0);
    const L = this.line;
    const base = this.memory.base;
    const end = phys + len;
    for (let p = phys; p < end; ) {
      const li = this.#lineIndex(p);
      const lineStart = base + li * L;
      const n = Math.min(lineStart + L, end) - p;
      const s = this.#rmap.get(li);
      if (s >= 0) {
        const from = s * L + (p - lineStart);
        dst.set(this.#bytes.subarray(from, from + n), p - phys);
      }
      p += n;
    }
  }

  /**
   * Forgets which pages of line data are known to be zero (see `#dataUsed`): every store
   * and write-back then touches the data itself, the plain path tests compare with.
   */
  forgetZeroPages(): void {
    this.#dataUsed.fill(1);
  }

  /** Host pages of line data that may hold a non-zero byte (the others were never faulted in by this model). */
  get dataPagesInUse(): number {
    let n = 0;
    for (const u of this.#dataUsed) n += u;
    return n;
  }

  /**
   * The per-set bits of ways known invalid and whether every invalid way has one. A hint
   * the victim choice uses to skip tag reads, not state: two caches in the same state may
   * differ in it (a page-by-page invalidation leaves bits unset, a slot walk sets them).
   * For tests.
   */
  freeBitsForTests(): { bits: number[]; exact: boolean } {
    return { bits: Array.from(this.#setFree), exact: this.#freeExact };
  }

  /**
   * Every piece of the cache's state, copied: slots (tags, dirty bits, fill epochs, the
   * bytes of valid lines, replacement state), inner levels, counters, and the reverse
   * maps for RAM lines `[from, lines)` (and their pages). For tests that require two
   * caches to be identical (the closed-form zeroing against the line-by-line path); never
   * on a hot path.
   */
  stateForTests(lines: number, from = 0): Record<string, unknown> {
    if (this.#lazyN !== 0) this.#settle(-1);
    const L = this.line;
    const data: string[] = [];
    for (let s = 0; s < this.slots; s++)
      data.push(
        this.#tag[s]! < 0
          ? ""
          : Buffer.from(this.#bytes.subarray(s * L, s * L + L)).toString("hex"),
      );
    const rmap: number[] = [];
    const pages: number[] = [];
    for (let li = from; li < lines; li++) rmap.push(this.#rmap.get(li));
    for (
      let pg = Math.floor(from / this.#linesPerPage);
      pg < Math.ceil(lines / this.#linesPerPage);
      pg++
    )
      pages.push(this.#pageCount.get(pg), this.#pageDirty.get(pg));
    return {
      tag: Array.from(this.#tag),
      dirty: Array.from(this.#dirty),
      fillEpoch: Array.from(this.#fillEpoch),
      data,
      stamp: this.#plru ? [] : Array.from(this.#stamp),
      plruBits: Array.from(this.#plruBits),
      setValid: Array.from(this.#setValid),
      inner: this.#inner.map((lv) => ({
        slotOf: Array.from(lv.slotOf),
        stamp: Array.from(lv.stamp),
        innerOf: Array.from(lv.innerOf),
      })),
      inInner: Array.from(this.#inInner),
      tick: this.#tick,
      valid: this.#valid,
      dirtyCount: this.#dirtyCount,
      counters: this.snapshotCounters(),
      findings: JSON.stringify(this.findings),
      rmap,
      pages,
    };
  }

  // ---------------------------------------------------------------------------------
  // CPU loads and stores (cacheable mappings)

  /** A CPU load of `len` bytes at `phys` through the cache, into `dst[dstOff..]`. */
  read(phys: number, len: number, dst: Uint8Array, dstOff = 0): void {
    this.memory.check(phys, len);
    if (this.#lazyN !== 0) this.#settle(-1);
    this.#resetFindings();
    const L = this.line;
    const W = this.#lineWords;
    const base = this.memory.base;
    const checking = this.shadow.enabled;
    const memEpoch = this.shadow.memEpoch;
    const fillEpoch = this.#fillEpoch;
    const data = this.#data;
    const bytes = this.#bytes;
    // Whole lines land at word-aligned places of dst (or none do): copy them by words.
    const aligned = (dst.byteOffset + dstOff - phys) % 4 === 0;
    let dst32: Int32Array | undefined;
    let viewed = false;
    let p = phys;
    const end = phys + len;
    let tryAt = this.closedForms ? this.#lineIndex(phys) : Number.POSITIVE_INFINITY;
    while (p < end) {
      const li = this.#lineIndex(p);
      const o = p - (base + li * L);
      const n = Math.min(L - o, end - p);
      if (n === L && li >= tryAt) {
        tryAt = li + this.slots;
        const J = this.#steadyLines(li, end);
        const done = J > 0 ? this.#steadyRun(li, J, false, dst, dstOff + (p - phys), 0) : 0;
        if (done > 0) {
          p += done * L;
          continue;
        }
      }
      if (n === L && this.closedForms) {
        const upTo = Math.min(Math.floor((end - base) / L), tryAt > li ? tryAt : end);
        const done = this.#hitRun(li, upTo, false, dst, dstOff + (p - phys), 0);
        if (done > 0) {
          p += done * L;
          continue;
        }
      }
      const s = this.#access(li, false);
      if (checking) {
        const c = memEpoch.chunkOf(li);
        const me = c === undefined ? 0 : c[li & CH_MASK]!;
        if (me > fillEpoch[s]!) this.#note("staleRead", base + li * L, me);
      }
      const from = s * L + o;
      const to = dstOff + (p - phys);
      if (n === L && aligned && !viewed) {
        dst32 = wordView(dst, to);
        viewed = true;
      }
      if (n === L && dst32 !== undefined) {
        const dw = (dst.byteOffset + to) >>> 2;
        const d = s * W;
        for (let i = 0; i < W; i++) dst32[dw + i] = data[d + i]!;
      } else if (n === L) dst.set(bytes.subarray(from, from + n), to);
      else for (let i = 0; i < n; i++) dst[to + i] = bytes[from + i]!;
      p += n;
    }
  }

  /** A CPU store of `len` bytes from `src[srcOff..]` to `phys` through the cache. */
  write(phys: number, src: Uint8Array, srcOff = 0, len = src.length - srcOff): void {
    if (this.#lazyN !== 0) this.#settle(-1);
    this.#store(phys, len, src, srcOff, 0);
  }

  /**
   * A CPU store of a repeated byte (memset; clear_page when `value` is 0) through the
   * cache: exactly a {@link write} of `len` bytes equal to `value`, as one operation,
   * without a source buffer (zeroing a 32 MiB buffer used to allocate a 32 MiB array).
   */
  fill(phys: number, len: number, value: number): void {
    if (this.#lazyN !== 0) this.#settle(-1);
    this.#store(phys, len, undefined, 0, value & 0xff);
  }

  /**
   * Whole lines `[li, end)` of a load (`store` false: bytes into `buf[at..]`) or a store
   * (from `buf[at..]`, or all `value` without `buf`), for as long as the outer level
   * holds each line: exactly {@link #access}'s hit path per line (the innermost level
   * holding it is stamped, the levels inside it take it, the outer level is touched when
   * no inner level had it) and the load's stale check or the store's dirty marking, in
   * one loop; the bytes move a run of consecutive slots at a time (a buffer cached in
   * order is one run). Hits evict nothing and move no line, so copying after the
   * bookkeeping is the same. Returns the lines done (0: the first line is not held).
   */
  #hitRun(
    li: number,
    end: number,
    store: boolean,
    buf: Uint8Array | undefined,
    at: number,
    value: number,
  ): number {
    const L = this.line;
    const sets = this.sets;
    const ways = this.ways;
    const rmap = this.#rmap;
    const inner = this.#inner;
    const nInner = inner.length;
    const hits = this.counters.hits;
    const plru = this.#plru;
    const masks = this.#plruMasks;
    const plruBits = this.#plruBits;
    const stamp = this.#stamp;
    const dirty = this.#dirty;
    const fillEpoch = this.#fillEpoch;
    const epoch = this.shadow.epoch;
    const me = !store && this.shadow.enabled ? this.shadow.memEpoch : undefined;
    const base = this.memory.base;
    const lpp = this.#linesPerPage;
    let tick = this.#tick;
    let c = rmap.chunkOf(li);
    let n = 0;
    // The pending copy: lines `runAt..` of the run in slots `runSlot..runSlot+runLen`.
    let runSlot = 0;
    let runLen = 0;
    let runAt = 0;
    for (let line = li; line < end; line++, n++) {
      if ((line & CH_MASK) === 0) c = rmap.chunkOf(line);
      const s = c === undefined ? INVALID : c[line & CH_MASK]!;
      if (s < 0) break;
      let hitLevel = nInner;
      for (let i = 0; i < nInner; i++) {
        const lv = inner[i]!;
        const k = lv.innerOf[s]!;
        if (k >= 0) {
          lv.stamp[k] = ++tick;
          hitLevel = i;
          break;
        }
      }
      hits[hitLevel]!++;
      if (hitLevel > 0) {
        this.#tick = tick;
        for (let i = 0; i < hitLevel; i++) this.#innerInsert(i, line, s);
        tick = this.#tick;
      }
      if (hitLevel === nInner) {
        // #touch
        const way = Math.floor(s / sets);
        const set = s - way * sets;
        if (plru) plruBits[set] = (plruBits[set]! & masks.keep[way]!) | masks.set[way]!;
        else stamp[set * ways + way] = ++tick;
      }
      if (store) {
        // The whole line is the CPU's now: nothing older survives in it to be stale.
        fillEpoch[s] = epoch;
        if (dirty[s] === 0) {
          dirty[s] = 1;
          this.#dirtyCount++;
          const page = Math.floor(line / lpp);
          this.#pageDirty.set(page, this.#pageDirty.get(page) + 1);
        }
      } else if (me !== undefined) {
        const mc = me.chunkOf(line);
        const e = mc === undefined ? 0 : mc[line & CH_MASK]!;
        if (e > fillEpoch[s]!) this.#note("staleRead", base + line * L, e);
      }
      if (runLen > 0 && s === runSlot + runLen) runLen++;
      else {
        if (runLen > 0) this.#copyRun(store, buf, at + runAt * L, runSlot, runLen, value);
        runSlot = s;
        runLen = 1;
        runAt = n;
      }
    }
    if (runLen > 0) this.#copyRun(store, buf, at + runAt * L, runSlot, runLen, value);
    this.#tick = tick;
    return n;
  }

  /** The bytes of whole lines in slots `[s, s+n)`: into `buf[at..]` (a load) or from it (a store; all `value` without `buf`). */
  #copyRun(
    store: boolean,
    buf: Uint8Array | undefined,
    at: number,
    s: number,
    n: number,
    value: number,
  ): void {
    const L = this.line;
    if (!store) buf!.set(this.#bytes.subarray(s * L, (s + n) * L), at);
    else if (buf !== undefined) {
      this.#bytes.set(buf.subarray(at, at + n * L), s * L);
      this.#markData(s, s + n);
    } else this.#fillData((value * 0x01010101) | 0, s, s + n);
  }

  // ---------------------------------------------------------------------------------
  // Zeroing many ranges in closed form (clear_page of a heap's gigabytes)
  //
  // One long access takes the closed form of #steadyRun. A heap's buffer is zeroed range
  // by range (1 MiB blocks, each a separate access smaller than the cache), so here the
  // closed form spans accesses. Why it is exact: zeroing whole lines that are not cached,
  // in an order that visits every set of every level round-robin (ranges aligned to each
  // level's way size), is periodic once the cache holds nothing but the last `slots`
  // lines zeroed, dirty, all zero, filled at the current epoch, each set's lines in the
  // replacement order of their zeroing (LRU stamps ascending; for tree pseudo-LRU, the
  // order the tree evicts them in: `ways` misses in a full set visit every way once and
  // leave the tree bits as they were), and each inner level holding the last of them in
  // the same way. Then every line zeroed misses, evicts the line zeroed `slots` lines
  // before it (dirty, all zero: a write-back of zeros, and no lost write since nothing
  // is newer than the current epoch), takes its slot and its inner slots, and ticks the
  // replacement clock the same number of times. So k rounds of `slots` lines leave:
  // tags k rounds further along the sequence, the stamps the misses give, DRAM of the
  // evicted lines zero, fills, evictions and write-backs + k·slots. Every precondition
  // is checked on the state itself (#zeroJump); when one fails the ranges are zeroed one
  // by one. test/machine/zero-closed-form.test.ts replays random operation sequences
  // both ways and compares every slot, DRAM byte, and on machines the clock and costs.

  /**
   * clear_page() over many ranges, the continuation of a sequence of {@link fill}s of
   * zero: `ranges[0..done)` have just been zeroed by `fill`, in order. Applies the
   * zeroing of `ranges[done..j)` in closed form for the largest `j <= upTo` for which
   * the result is provably what line-by-line fills give, and returns `j` (`done` when
   * it cannot prove it). The counters move as the fills would (no hits; one fill, one
   * eviction and one write-back per line); the caller charges each range.
   */
  zeroFastForward(
    ranges: readonly { readonly phys: number; readonly len: number }[],
    done: number,
    upTo: number,
  ): number {
    if (!this.closedForms || done <= 0 || upTo <= done || this.#setModulus === 0) return done;
    if (this.#lazyN !== 0) this.#settle(-1);
    const L = this.line;
    const base = this.memory.base;
    const slots = this.slots;
    const whole = (r: { phys: number; len: number }): boolean =>
      r.len > 0 && (r.phys - base) % L === 0 && r.len % L === 0;
    // The window: ranges before `done` holding at least the last `slots` lines.
    let j0 = done;
    let lines = 0;
    while (j0 > 0 && lines < slots && whole(ranges[j0 - 1]!)) {
      j0--;
      lines += ranges[j0]!.len / L;
    }
    if (lines < slots) return done;
    const run: ZeroRun = { line: [], at: [0] };
    let c = -1;
    let j = j0;
    for (; j < upTo; j++) {
      const r = ranges[j]!;
      if (!whole(r)) break;
      const li = (r.phys - base) / L;
      const v = run.at[run.at.length - 1]!;
      // Every level's set index must follow the position in the run.
      const cc = (((li - v) % this.#setModulus) + this.#setModulus) % this.#setModulus;
      if (c < 0) c = cc;
      else if (cc !== c) break;
      run.line.push(li);
      run.at.push(v + r.len / L);
    }
    if (j <= done) return done;
    const p = run.at[done - j0]!;
    let m = j;
    while (m > done && (run.at[m - j0]! - p) % slots !== 0) m--;
    if (m === done) return done;
    run.line.length = m - j0;
    run.at.length = m - j0 + 1;
    if (!disjointRun(run) || !this.#zeroJump(run, p, (run.at[m - j0]! - p) / slots)) return done;
    return m;
  }

  /**
   * Applies `k` rounds of `slots` zeroed lines, positions `[p, p + k·slots)` of `run`,
   * in closed form, after checking that the state is the steady state described above
   * for the window `[p - slots, p)`. Returns false (nothing changed) when it is not.
   */
  #zeroJump(run: ZeroRun, p: number, k: number): boolean {
    const sets = this.sets;
    const ways = this.ways;
    const slots = this.slots;
    const W = this.#lineWords;
    if (k <= 0 || p < slots || p + k * slots > run.at[run.at.length - 1]!) return false;
    if (this.#valid !== slots) return false;
    for (const lv of this.#inner) {
      const cap = lv.sets * lv.ways;
      if (cap >= slots || slots % cap !== 0) return false;
    }
    const epoch = this.shadow.epoch;
    const dirty = this.#dirty;
    const fillEpoch = this.#fillEpoch;
    const data = this.#data;
    const used = this.#dataUsed;
    const sh = this.#slotPageShift;
    const stamp = this.#stamp;
    const winLines = runLines(run, p - slots, slots);
    // win[i]: the slot holding the window's i-th line.
    const win = new Int32Array(slots);
    for (let i = 0; i < slots; i++) {
      const s = this.#rmap.get(winLines[i]!);
      if (
        s < 0 ||
        dirty[s] !== 1 ||
        fillEpoch[s] !== epoch ||
        !(used[s >>> sh] === 0 || isZero(data, s * W, W))
      )
        return false;
      win[i] = s;
    }
    // Lines `sets` apart share a set; their replacement order is their zeroing order.
    for (let i = sets; i < slots; i++) {
      const s = win[i]!;
      const t = win[i - sets]!;
      const set = s % sets;
      if (set !== t % sets) return false;
      if (!this.#plru) {
        const st = stamp[set * ways + (s - set) / sets]!;
        if (!(st > stamp[set * ways + (t - set) / sets]!)) return false;
      }
    }
    if (this.#plru) {
      for (let i = 0; i < sets; i++) {
        const set = win[i]! % sets;
        const bits0 = this.#plruBits[set]!;
        let bits = bits0;
        for (let w = 0; w < ways; w++) {
          const way = plruVictim(bits, this.#plruLevels);
          if (way * sets + set !== win[i + w * sets]) return false;
          bits = plruTouched(bits, way, this.#plruLevels);
        }
        if (bits !== bits0) return false;
      }
    }
    for (const lv of this.#inner) {
      const cap = lv.sets * lv.ways;
      const ks = new Int32Array(cap);
      for (let t = 0; t < cap; t++) {
        const s = win[slots - cap + t]!;
        const kk = lv.innerOf[s]!;
        if (kk < 0 || lv.slotOf[kk] !== s) return false;
        ks[t] = kk;
      }
      for (let t = lv.sets; t < cap; t++) {
        const kk = ks[t]!;
        const prev = ks[t - lv.sets]!;
        if (Math.floor(kk / lv.ways) !== Math.floor(prev / lv.ways)) return false;
        if (!(lv.stamp[kk]! > lv.stamp[prev]!)) return false;
      }
    }
    // The state is periodic: apply k rounds.
    const L = this.line;
    const base = this.memory.base;
    const shift = k * slots;
    const lpp = this.#linesPerPage;
    // Write-backs of zeros: the window and every line zeroed and evicted in between.
    forRunPieces(run, p - slots, p - slots + shift, (li, n) =>
      this.memory.fill(base + li * L, n * L, 0),
    );
    for (let i = 0; i < slots; i++) {
      const li = winLines[i]!;
      this.#rmap.set(li, INVALID);
      const page = Math.floor(li / lpp);
      this.#pageCount.set(page, this.#pageCount.get(page) - 1);
      this.#pageDirty.set(page, this.#pageDirty.get(page) - 1);
    }
    const newLines = runLines(run, p - slots + shift, slots);
    for (let i = 0; i < slots; i++) {
      const li = newLines[i]!;
      const s = win[i]!;
      this.#tag[s] = li;
      this.#rmap.set(li, s);
      const page = Math.floor(li / lpp);
      this.#pageCount.set(page, this.#pageCount.get(page) + 1);
      this.#pageDirty.set(page, this.#pageDirty.get(page) + 1);
    }
    // Replacement stamps as the misses give them: per line, the outer LRU touch, then one
    // tick per inner level. (Not the window's stamps shifted: a hit ticks differently.)
    const outerTick = this.#plru ? 0 : 1;
    const T = outerTick + this.#inner.length;
    // The tick before the window's new i-th line was zeroed.
    const before = (i: number): number => this.#tick + (shift - slots + i) * T;
    if (!this.#plru)
      for (let i = 0; i < slots; i++) {
        const s = win[i]!;
        const set = s % sets;
        stamp[set * ways + (s - set) / sets] = before(i) + 1;
      }
    this.#inner.forEach((lv, level) => {
      const cap = lv.sets * lv.ways;
      for (let i = slots - cap; i < slots; i++)
        lv.stamp[lv.innerOf[win[i]!]!] = before(i) + outerTick + 1 + level;
    });
    this.#tick += shift * T;
    this.counters.fills += shift;
    this.counters.evictions += shift;
    this.counters.writebacks += shift;
    this.closedFormLines += shift;
    this.#resetFindings();
    return true;
  }

  /**
   * The store loop of {@link write} and {@link fill}: bytes come from `src[srcOff..]`, or
   * are all `value` when `src` is undefined.
   */
  #store(
    phys: number,
    len: number,
    src: Uint8Array | undefined,
    srcOff: number,
    value: number,
  ): void {
    this.memory.check(phys, len);
    this.#resetFindings();
    const L = this.line;
    const W = this.#lineWords;
    const base = this.memory.base;
    const fillEpoch = this.#fillEpoch;
    const dirty = this.#dirty;
    const data = this.#data;
    const bytes = this.#bytes;
    const used = this.#dataUsed;
    const sh = this.#slotPageShift;
    const value32 = (value * 0x01010101) | 0;
    const aligned = src !== undefined && (src.byteOffset + srcOff - phys) % 4 === 0;
    let src32: Int32Array | undefined;
    let viewed = false;
    let p = phys;
    const end = phys + len;
    let tryAt = this.closedForms ? this.#lineIndex(phys) : Number.POSITIVE_INFINITY;
    while (p < end) {
      const li = this.#lineIndex(p);
      const o = p - (base + li * L);
      const n = Math.min(L - o, end - p);
      if (n === L && li >= tryAt) {
        tryAt = li + this.slots;
        const J = this.#steadyLines(li, end);
        const done = J > 0 ? this.#steadyRun(li, J, true, src, srcOff + (p - phys), value) : 0;
        if (done > 0) {
          p += done * L;
          continue;
        }
      }
      if (n === L && this.closedForms) {
        const upTo = Math.min(Math.floor((end - base) / L), tryAt > li ? tryAt : end);
        const done = this.#hitRun(li, upTo, true, src, srcOff + (p - phys), value);
        if (done > 0) {
          p += done * L;
          continue;
        }
      }
      if (n === L && src === undefined && this.closedForms && this.#valid < this.slots) {
        const b = Math.floor((end - base) / L);
        const done = this.#fillInvalid(li, b, value32);
        if (done > 0) {
          // The closed form's tries the lines after `li` would have made (each fails: a
          // set with an invalid way is not the steady state).
          if (tryAt < li + done) {
            let t = Math.max(li + 1, tryAt);
            while (t < li + done) t += this.slots;
            tryAt = t;
          }
          p += done * L;
          continue;
        }
      }
      const s = this.#access(li, n === L);
      const at = s * L + o;
      const from = srcOff + (p - phys);
      if (n === L) {
        // Zeros stored into a page known to be zero change nothing (see #dataUsed).
        if (src === undefined) {
          if (value32 !== 0 || used[s >>> sh] !== 0) data.fill(value32, s * W, s * W + W);
        } else {
          if (aligned && !viewed) {
            src32 = wordView(src, from);
            viewed = true;
          }
          if (src32 !== undefined) {
            const sw = (src.byteOffset + from) >>> 2;
            const d = s * W;
            for (let i = 0; i < W; i++) data[d + i] = src32[sw + i]!;
          } else bytes.set(src.subarray(from, from + n), at);
        }
        // The whole line is the CPU's now: nothing older survives in it to be stale.
        fillEpoch[s] = this.shadow.epoch;
      } else if (src === undefined) {
        if (value !== 0 || used[s >>> sh] !== 0) bytes.fill(value, at, at + n);
      } else for (let i = 0; i < n; i++) bytes[at + i] = src[from + i]!;
      if (src !== undefined || value !== 0) used[s >>> sh] = 1;
      if (dirty[s] === 0) {
        dirty[s] = 1;
        this.#dirtyCount++;
        const page = Math.floor(li / this.#linesPerPage);
        this.#pageDirty.set(page, this.#pageDirty.get(page) + 1);
      }
      p += n;
    }
  }

  /**
   * Whole-line stores of one repeated word (a memset; clear_page) to lines `[li, end)`,
   * for as long as each line misses and its set has an invalid way: a cache filling up,
   * as a new machine's does while the kernel zeroes its first buffers. The outer level
   * is done line by line as {@link #access} does it (first invalid way, the replacement
   * touch, one tick per level); the inner levels once per inner set at the end. Why that
   * is the same: nothing is evicted from the outer level, so an inner level only sees
   * inserts, each with a newer stamp than anything it holds; a set's inserts therefore go
   * to its ways in one fixed order (its invalid ways by index, then its valid ones by
   * stamp, then round again), and only the last `ways` of them stay. Returns the lines
   * done, 0 when the first line does not qualify.
   */
  #fillInvalid(li: number, end: number, value32: number): number {
    const sets = this.sets;
    const ways = this.ways;
    const tag = this.#tag;
    const dirty = this.#dirty;
    const setValid = this.#setValid;
    const setFree = this.#setFree;
    const fillEpoch = this.#fillEpoch;
    const rmap = this.#rmap;
    const inner = this.#inner;
    const nInner = inner.length;
    const plru = this.#plru;
    const T = (plru ? 0 : 1) + nInner;
    const tick0 = this.#tick;
    const epoch = this.shadow.epoch;
    let n = 0;
    // Slots [runFrom, runTo) take value32 as their data, filled at once: a new cache's
    // sets fill a way at a time, so consecutive lines go to consecutive slots.
    let runFrom = 0;
    let runTo = 0;
    for (let line = li; line < end; line++, n++) {
      if (rmap.get(line) >= 0) break;
      const set = setIndex(line, sets, this.#setMask);
      if (setValid[set]! >= ways) break;
      // The lowest invalid way, as #victimWay finds it.
      const way = lowestInvalidWay(setFree[set]!, this.#freeExact, tag, set, sets, ways);
      const s = way * sets + set;
      let held = false;
      for (let i = 0; i < nInner; i++) if (inner[i]!.innerOf[s]! >= 0) held = true;
      if (held) break;
      tag[s] = line;
      dirty[s] = 1;
      setValid[set]!++;
      setFree[set]! &= ~(1 << way);
      rmap.set(line, s);
      if (plru) this.#plruBits[set] = plruTouched(this.#plruBits[set]!, way, this.#plruLevels);
      else this.#stamp[set * ways + way] = tick0 + n * T + 1;
      fillEpoch[s] = epoch;
      if (s !== runTo) {
        if (runTo > runFrom) this.#fillData(value32, runFrom, runTo);
        runFrom = s;
        runTo = s;
      }
      runTo++;
    }
    if (runTo > runFrom) this.#fillData(value32, runFrom, runTo);
    if (n === 0) return 0;
    this.#settleFilled(li, n, tick0, T);
    return n;
  }

  /**
   * The rest of {@link #fillInvalid} once lines `[li, li+n)` are in the outer level: the
   * per-page counts, the counters, and the inner levels settled once per set. Apart from
   * the fill loop, so that the optimizing compiler, which compiles the loop while it runs
   * (on-stack replacement), is not sent back by code here that had not run yet.
   */
  #settleFilled(li: number, n: number, tick0: number, T: number): void {
    const rmap = this.#rmap;
    const inner = this.#inner;
    const nInner = inner.length;
    const plru = this.#plru;
    // Per page, the lines now held and dirty.
    const lpp = this.#linesPerPage;
    for (let page = Math.floor(li / lpp); page * lpp < li + n; page++) {
      const k = Math.min(li + n, (page + 1) * lpp) - Math.max(li, page * lpp);
      this.#pageCount.set(page, this.#pageCount.get(page) + k);
      this.#pageDirty.set(page, this.#pageDirty.get(page) + k);
    }
    this.#valid += n;
    this.#dirtyCount += n;
    this.counters.fills += n;
    // The inner levels: per set, its inserts in order go to the ways of `order`, cyclically.
    const order = new Int32Array(Math.max(1, ...inner.map((lv) => lv.ways)));
    for (let level = 0; level < nInner; level++) {
      const lv = inner[level]!;
      const lw = lv.ways;
      for (let t = 0; t < Math.min(n, lv.sets); t++) {
        const set = mod(li + t, lv.sets);
        const base = set * lw;
        const m = Math.floor((n - 1 - t) / lv.sets) + 1;
        // Invalid ways by index, then valid ones by stamp (oldest first).
        let o = 0;
        for (let w = 0; w < lw; w++) if (lv.slotOf[base + w]! < 0) order[o++] = w;
        const firstValid = o;
        for (let w = 0; w < lw; w++) if (lv.slotOf[base + w]! >= 0) order[o++] = w;
        const byStamp = order.subarray(firstValid, lw);
        byStamp.sort((a, b) => lv.stamp[base + a]! - lv.stamp[base + b]!);
        // The lines held before and evicted by the first inserts.
        for (let j = 0; j < Math.min(m, lw); j++) {
          const old = lv.slotOf[base + order[j]!]!;
          if (old >= 0) {
            lv.innerOf[old] = INVALID;
            this.#inInner[old]!--;
            lv.slotOf[base + order[j]!] = INVALID;
          }
        }
        // The last `ways` inserts stay.
        for (let j = Math.max(0, m - lw); j < m; j++) {
          const q = t + j * lv.sets;
          const s = rmap.get(li + q);
          const k = base + order[j % lw]!;
          lv.slotOf[k] = s;
          lv.innerOf[s] = k;
          this.#inInner[s]!++;
          lv.stamp[k] = tick0 + q * T + (plru ? 0 : 1) + 1 + level;
        }
      }
    }
    this.#tick = tick0 + n * T;
  }

  // ---------------------------------------------------------------------------------
  // Long sequential accesses in closed form

  /**
   * Whether sequential loads and stores may take the closed form ({@link #steadyRun}),
   * maintenance of a range far larger than the cache may visit only what it holds, a
   * clean may take its own loop and stop at the last dirty line (`#cleanPage`), and an
   * invalidate of every line held may empty the cache at once (`#dropEverything`).
   * Always on in use; the equivalence tests turn it off to get the line-by-line path.
   */
  closedForms = true;

  /**
   * Small batches' entries kept for late copies (#addRows) before those that need no copy
   * any more are dropped (#compactRows), and all copied if more than half are left. Tests
   * make it small to reach both.
   */
  rowLimit = ROW_MAX;

  /** Lines moved in closed form so far (for tests and the bench: that it is taken). */
  closedFormLines = 0;

  /** Whole lines from `li` to the last line wholly before `end`, in whole cache-fulls. */
  #steadyLines(li: number, end: number): number {
    const endLine = Math.floor((end - this.memory.base) / this.line);
    return Math.floor((endLine - li) / this.slots) * this.slots;
  }

  /**
   * Lines `[P, P+J)` of a sequential load (`store` false, bytes into `buf[at..]`) or
   * store (from `buf[at..]`, or all `value` without `buf`), J a whole number of
   * cache-fulls, done at once where the line-by-line path is provably the same. Returns
   * the lines done: fewer than J when a later cache-full holds a line cached now, 0
   * (nothing changed) when the closed form does not apply. Tried at the first whole line
   * of an access and once per cache-full after.
   *
   * The condition: every slot is valid and none holds a line of the run, and every
   * inner slot is valid. Then every line of the run misses everywhere, and each set's
   * victims repeat with period `ways`: LRU evicts in stamp order and each fill becomes
   * the newest; tree-PLRU, from any state, visits every way once in `ways` misses and
   * ends in the state it began in (each node of the tree is flipped an even number of
   * times). The inner levels (LRU) likewise. So the first cache-full of misses evicts
   * the lines held now, in an order read off the replacement state (written back in
   * that order, with their lost-write findings); every line of the run but the last
   * cache-full is filled and evicted again (a store's bytes reach DRAM, a load's come
   * from it: one copy either way, the cache's write-backs and fills touching other
   * lines); the last cache-full ends up in the slots the victim order gives, stamped
   * with the ticks the line-by-line path would have given them. Counters move by the
   * same amounts: J fills, J evictions, and the write-backs. What the argument needs
   * and the state does not guarantee is checked, not assumed: PLRU's period, and that
   * each line an inner level holds leaves it before the outer level evicts it (an
   * outer eviction would otherwise leave a hole the inner level fills first).
   */
  #steadyRun(
    P: number,
    J: number,
    store: boolean,
    buf: Uint8Array | undefined,
    at: number,
    value: number,
  ): number {
    const slots = this.slots;
    const L = this.line;
    if (this.#valid !== slots) return 0;
    // No line of the first cache-full may be held now (it would be a hit).
    J = this.#runWithoutHits(P, J);
    if (J === 0) return 0;
    // Victim order per set for the next `ways` misses: order[set * ways + m].
    const order = this.#victimOrders();
    if (order === undefined) return 0;
    const inner = this.#inner;
    const innerOrders: Int32Array[] = [];
    for (const lv of inner) {
      const io = this.#innerVictimOrder(lv, P, order);
      if (io === undefined) return 0;
      innerOrders.push(io);
    }

    // The checks hold: now the run, as the line-by-line path would leave it. (Each
    // step is its own method: V8 optimizes those with feedback from every call, where
    // one long function would be compiled on the stack and thrown away at each new loop.)
    const tick0 = this.#tick;
    const T = (this.#plru ? 0 : 1) + inner.length;
    const nRuns = this.#stepRuns(P, order);
    let writebacks = this.#evictHeld(nRuns);
    this.#dirtyCount -= writebacks;
    const base = this.memory.base;
    // 2. Lines filled and evicted within the run: one copy to or from DRAM.
    const through = (J - slots) * L;
    if (!store) this.memory.read(base + P * L, J * L, buf!, at);
    else if (through > 0) {
      if (buf !== undefined) this.memory.write(base + P * L, buf, at, through);
      else this.memory.fill(base + P * L, through, value);
      writebacks += J - slots;
    }
    this.counters.writebacks += writebacks;
    this.counters.fills += J;
    this.counters.evictions += J;
    this.#placeLast(nRuns, P, J, store, buf, at + through, value, tick0, T);
    if (store) this.#dirtyCount += slots;
    this.#inInner.fill(0);
    for (let i = 0; i < inner.length; i++) this.#placeInner(i, innerOrders[i]!, P, J, tick0, T);
    this.#tick = tick0 + J * T;
    this.closedFormLines += J;
    return J;
  }

  /** Every set's victim order for its next `ways` misses (`[set * ways + m]`), or undefined if one would not repeat. */
  #victimOrders(): Int32Array | undefined {
    const order = this.#scratch(0, this.slots);
    const ways = this.ways;
    this.#orderUniform = false;
    if (!this.#plru) {
      for (let set = 0; set < this.sets; set++) this.#lruVictimOrder(set, order);
      return order;
    }
    // Tree-PLRU: the order is a function of the set's tree bits, and the sets of a long
    // run go through the same few states: each state's order is worked out once.
    const memo = this.#plruOrders;
    const bitsOf = this.#plruBits;
    const sets = this.sets;
    for (let set = 0; set < sets; ) {
      const bits = bitsOf[set]!;
      let o = memo.get(bits);
      if (o === undefined) {
        const fresh = new Int32Array(ways);
        o = plruVictimOrder(bits, ways, this.#plruLevels, fresh) ? fresh : null;
        if (memo.size >= 4096) memo.clear();
        memo.set(bits, o);
      }
      if (o === null) return undefined;
      // The sets from here in the same state: the first row, then copies doubling.
      let to = set + 1;
      while (to < sets && bitsOf[to] === bits) to++;
      const at = set * ways;
      for (let m = 0; m < ways; m++) order[at + m] = o[m]!;
      for (let done = ways; done < (to - set) * ways; done *= 2)
        order.copyWithin(at + done, at, at + Math.min(done, (to - set) * ways - done));
      if (set === 0 && to === sets) this.#orderUniform = true;
      set = to;
    }
    return order;
  }

  /**
   * Whether the last {@link #victimOrders} gave every set the same order (tree-PLRU sets
   * all in one state, as a long sequential access leaves them): a cache-full's steps
   * then go to two runs of slots per way, with no need to compare the sets' orders.
   */
  #orderUniform = false;

  /** Tree bits -> the ways in the order the next `ways` misses replace them (null: not periodic). */
  readonly #plruOrders = new Map<number, Int32Array | null>();

  /**
   * The step of a run from line P at which outer slot `s`'s line is evicted: step
   * q = m * S + r is set (P + r) % S's miss m, which replaces way `order[set * ways + m]`.
   */
  #evictionStep(P: number, order: Int32Array, s: number): number {
    const S = this.sets;
    const ways = this.ways;
    const way = Math.floor(s / S);
    const set = s - way * S;
    let m = 0;
    while (order[set * ways + m] !== way) m++;
    return m * S + mod(set - mod(P, S) + S, S);
  }

  /**
   * `J`, or 0 when a line held now is in the first cache-full of the run (it would hit).
   * A line held further on is no hit: the first cache-full gives every set `ways` misses,
   * which replace each of its ways once (the period), so that line is evicted, and
   * written back if dirty, before the run reaches it, and then misses like the rest.
   */
  #runWithoutHits(P: number, J: number): number {
    // Page by page: a page holding no line is skipped on its count.
    const lpp = this.#linesPerPage;
    const end = P + this.slots;
    for (let li = P; li < end; ) {
      const page = Math.floor(li / lpp);
      const next = Math.min(end, (page + 1) * lpp);
      if (this.#pageCount.get(page) !== 0)
        for (; li < next; li++) if (this.#rmap.get(li) >= 0) return 0;
      li = next;
    }
    return J;
  }

  /**
   * An inner level's victim order for a run from line P (LRU: ways by stamp, oldest
   * first; stamps are distinct ticks), or undefined when the closed form does not hold
   * for it: a geometry whose sets do not divide the outer level's or that is not
   * smaller, an invalid inner slot, or a line the outer level would evict (step
   * {@link #evictionStep}) before the inner level has let it go.
   */
  #innerVictimOrder(lv: InnerLevel, P: number, order: Int32Array): Int32Array | undefined {
    const si = lv.sets * lv.ways;
    if (si >= this.slots || this.sets % lv.sets !== 0) return undefined;
    const io = this.#scratch(1 + this.#inner.indexOf(lv), si);
    const stamp = lv.stamp;
    for (let set = 0; set < lv.sets; set++) {
      const b = set * lv.ways;
      for (let w = 0; w < lv.ways; w++) {
        if (lv.slotOf[b + w]! < 0) return undefined;
        io[b + w] = w;
      }
      // Insertion sort by stamp: a set has a few ways.
      for (let x = b + 1; x < b + lv.ways; x++) {
        const w = io[x]!;
        let y = x - 1;
        while (y >= b && stamp[b + io[y]!]! > stamp[b + w]!) {
          io[y + 1] = io[y]!;
          y--;
        }
        io[y + 1] = w;
      }
      const first = mod(set - mod(P, lv.sets) + lv.sets, lv.sets);
      for (let m = 0; m < lv.ways; m++) {
        const leaves = first + m * lv.sets; // the step at which way io[b+m] is refilled
        if (leaves >= this.#evictionStep(P, order, lv.slotOf[b + io[b + m]!]!)) return undefined;
      }
    }
    return io;
  }

  /**
   * The steps of a cache-full from line P, in runs that go to consecutive slots: step
   * q = m * S + k is set (P + k) % S's miss m, which takes way `order[set * ways + m]`;
   * steps of one miss whose sets follow each other (without wrapping) and agree on the
   * way are a run. After a long sequential access every set is in the same replacement
   * state, so a cache-full is two runs per way. Fills {@link #runs} with
   * `[first step, steps, first slot]` per run, in step order, and returns how many.
   */
  #stepRuns(P: number, order: Int32Array): number {
    const S = this.sets;
    const ways = this.ways;
    const p0 = P % S;
    const uniform = this.#orderUniform;
    let runs = this.#runs;
    let n = 0;
    for (let m = 0; m < ways; m++)
      for (let k = 0; k < S; ) {
        const set = p0 + k < S ? p0 + k : p0 + k - S;
        const way = order[set * ways + m]!;
        let len = 1;
        if (uniform) len = Math.min(S - k, S - set);
        else while (k + len < S && set + len < S && order[(set + len) * ways + m] === way) len++;
        if (3 * n + 3 > runs.length) {
          const grown = new Int32Array(Math.max(96, 2 * runs.length));
          grown.set(runs);
          runs = grown;
          this.#runs = runs;
        }
        runs[3 * n] = m * S + k;
        runs[3 * n + 1] = len;
        runs[3 * n + 2] = way * S + set;
        n++;
        k += len;
      }
    return n;
  }

  /** {@link #stepRuns}' output, reused from call to call. */
  #runs = new Int32Array(0);

  /**
   * Work arrays of the closed form, by use (0: outer victim orders, 1 + i: inner level
   * i's), kept from call to call and not cleared (each use writes what it reads). Why:
   * a fresh typed array of kilobytes costs its host pages' faults, 25-100 us for a 1 MiB
   * cache's victim orders on this kind of VM, as much as the rest of a 4 MiB store.
   */
  readonly #scratchArrays: Int32Array[] = [];

  #scratch(use: number, n: number): Int32Array {
    let a = this.#scratchArrays[use];
    if (a === undefined || a.length < n) {
      a = new Int32Array(n);
      this.#scratchArrays[use] = a;
    }
    return a;
  }

  /**
   * Step 1 of #steadyRun: the first cache-full of misses evicts what is held, in step
   * order (#allocate's #writeback and #drop, less what #placeLast overwrites anyway),
   * run by run of {@link #stepRuns}. A run whose slots hold consecutive lines (a buffer
   * cached in order) is done in bulk: its dirty lines in one copy per stretch (and DRAM
   * chunk), reverse map and page counts by range; the lost-write check stays per line,
   * in step order, so the findings name the same first line. Other runs go line by line.
   * Returns the write-backs (the caller takes them off #dirtyCount: nothing follows the
   * loop here, so V8's on-stack compilation of it meets no code without feedback).
   */
  #evictHeld(nRuns: number): number {
    const runs = this.#runs;
    const W = this.#lineWords;
    const tag = this.#tag;
    const dirty = this.#dirty;
    const fillEpoch = this.#fillEpoch;
    const pageCount = this.#pageCount;
    const pageDirty = this.#pageDirty;
    const rmap = this.#rmap;
    const base = this.memory.base;
    const L = this.line;
    const me = this.shadow.enabled ? this.shadow.memEpoch : undefined;
    let writebacks = 0;
    for (let x = 0; x < nRuns; x++) {
      const n = runs[3 * x + 1]!;
      const s0 = runs[3 * x + 2]!;
      const li0 = tag[s0]!;
      let i = 1;
      while (i < n && tag[s0 + i] === li0 + i) i++;
      if (i < n) {
        // Lines in no order: one at a time.
        for (let k = 0; k < n; k++) writebacks += this.#evictOne(s0 + k);
        continue;
      }
      for (let a = 0; a < n; ) {
        if (dirty[s0 + a] !== 1) {
          a++;
          continue;
        }
        let b = a + 1;
        while (b < n && dirty[s0 + b] === 1) b++;
        // Lines li0+a .. li0+b-1, dirty, in slots s0+a .. s0+b-1.
        if (me !== undefined)
          for (let k = a; k < b; ) {
            // A shadow chunk at a time; none: no device wrote there.
            const c = me.chunkOf(li0 + k);
            const to = Math.min(b, k + CH_MASK + 1 - ((li0 + k) & CH_MASK));
            if (c !== undefined)
              for (; k < to; k++) {
                const e = c[(li0 + k) & CH_MASK]!;
                if (e > fillEpoch[s0 + k]!) this.#note("lostWrite", base + (li0 + k) * L, e);
              }
            k = to;
          }
        for (let k = a; k < b; ) {
          const off = (li0 + k) * L;
          const ci = Math.floor(off / MEM_CHUNK);
          const lines = Math.min(b - k, ((ci + 1) * MEM_CHUNK - off) / L);
          this.#copyOut(ci, (s0 + k) * W, (off - ci * MEM_CHUNK) >>> 2, lines * W);
          k += lines;
        }
        dirty.fill(0, s0 + a, s0 + b);
        this.#pageCountsAdd(pageDirty, li0 + a, li0 + b, -1);
        writebacks += b - a;
        a = b;
      }
      rmap.fillRange(li0, li0 + n, INVALID);
      this.#pageCountsAdd(pageCount, li0, li0 + n, -1);
    }
    return writebacks;
  }

  /** `sign` times the lines of `[from, to)` in each page, added to a per-page count. */
  #pageCountsAdd(counts: ChunkedU16, from: number, to: number, sign: number): void {
    const lpp = this.#linesPerPage;
    for (let li = from; li < to; ) {
      const page = Math.floor(li / lpp);
      const end = Math.min(to, (page + 1) * lpp);
      counts.set(page, counts.get(page) + sign * (end - li));
      li = end;
    }
  }

  /** One line of {@link #evictHeld}: slot `s`'s line leaves (written back if dirty). Returns the write-backs. */
  #evictOne(s: number): number {
    const li = this.#tag[s]!;
    const L = this.line;
    const W = this.#lineWords;
    const page = Math.floor(li / this.#linesPerPage);
    const pi = page & CH_MASK;
    let wb = 0;
    if (this.#dirty[s] === 1) {
      const off = li * L;
      const ci = Math.floor(off / MEM_CHUNK);
      this.#copyOut(ci, s * W, (off - ci * MEM_CHUNK) >>> 2, W);
      if (this.shadow.enabled) {
        const c = this.shadow.memEpoch.chunkOf(li);
        const e = c === undefined ? 0 : c[li & CH_MASK]!;
        if (e > this.#fillEpoch[s]!) this.#note("lostWrite", this.memory.base + off, e);
      }
      this.#dirty[s] = 0;
      this.#pageDirty.chunkOf(page)![pi]!--;
      wb = 1;
    }
    // (The page and reverse-map chunks of a cached line exist.)
    this.#rmap.chunkOf(li)![li & CH_MASK] = INVALID;
    this.#pageCount.chunkOf(page)![pi]!--;
    return wb;
  }

  /**
   * Step 3 of #steadyRun: the last cache-full of the run. Line P+J-slots+r goes to the
   * way its set's victim order names for miss floor(r / S) (J / S misses per set, a
   * multiple of `ways`), with the bytes from `buf[from..]` (or `value`) and the stamp
   * the line-by-line path gives it; run by run of {@link #stepRuns}, whose lines and
   * slots are both consecutive: tags, flags and bytes by range.
   */
  #placeLast(
    nRuns: number,
    P: number,
    J: number,
    store: boolean,
    buf: Uint8Array | undefined,
    from: number,
    value: number,
    tick0: number,
    T: number,
  ): void {
    const runs = this.#runs;
    const S = this.sets;
    const ways = this.ways;
    const slots = this.slots;
    const L = this.line;
    const W = this.#lineWords;
    const tag = this.#tag;
    const dirty = this.#dirty;
    const fillEpoch = this.#fillEpoch;
    const data = this.#data;
    const bytes = this.#bytes;
    const stamp = this.#stamp;
    const rmap = this.#rmap;
    const epoch = this.shadow.epoch;
    const src32 = buf === undefined ? undefined : wordView(buf, from);
    const sw0 = buf === undefined ? 0 : (buf.byteOffset + from) >>> 2;
    const value32 = (value * 0x01010101) | 0;
    const lru = !this.#plru;
    const mark = store ? 1 : 0;
    const l0 = P + J - slots;
    // The lines are consecutive: per-page counts move a page at a time.
    this.#pageCountsAdd(this.#pageCount, l0, l0 + slots, 1);
    if (store) this.#pageCountsAdd(this.#pageDirty, l0, l0 + slots, 1);
    for (let x = 0; x < nRuns; x++) {
      // Steps r0 .. r0+n-1: lines l0+r0.., slots s0.. (sets set0.., one way).
      const r0 = runs[3 * x]!;
      const n = runs[3 * x + 1]!;
      const s0 = runs[3 * x + 2]!;
      const li0 = l0 + r0;
      for (let i = 0; i < n; i++) tag[s0 + i] = li0 + i;
      dirty.fill(mark, s0, s0 + n);
      fillEpoch.fill(epoch, s0, s0 + n);
      for (let i = 0; i < n; ) {
        const li = li0 + i;
        const rm = rmap.writableChunkOf(li);
        const at = li & CH_MASK;
        const k = Math.min(n - i, CH_MASK + 1 - at);
        for (let j = 0; j < k; j++) rm[at + j] = s0 + i + j;
        i += k;
      }
      if (src32 !== undefined) {
        const sw = sw0 + r0 * W;
        data.set(src32.subarray(sw, sw + n * W), s0 * W);
        this.#markData(s0, s0 + n);
      } else if (buf !== undefined) {
        bytes.set(buf.subarray(from + r0 * L, from + (r0 + n) * L), s0 * L);
        this.#markData(s0, s0 + n);
      } else this.#fillData(value32, s0, s0 + n);
      if (lru) {
        const way = Math.floor(s0 / S);
        const set0 = s0 - way * S;
        const t0 = tick0 + (J - slots + r0) * T + 1;
        for (let i = 0; i < n; i++) stamp[(set0 + i) * ways + way] = t0 + i * T;
      }
    }
  }

  /** Step 4 of #steadyRun: inner level `i` holds the last lines of the run, in the ways its victim order `io` names. */
  #placeInner(i: number, io: Int32Array, P: number, J: number, tick0: number, T: number): void {
    const lv = this.#inner[i]!;
    const si = lv.sets * lv.ways;
    const rmap = this.#rmap;
    const inInner = this.#inInner;
    const first = this.#plru ? 1 : 2;
    lv.innerOf.fill(INVALID);
    for (let r = 0; r < si; r++) {
      const x = J - si + r; // step of the run
      const li = P + x;
      const set = mod(li, lv.sets);
      const k = set * lv.ways + io[set * lv.ways + (Math.floor(x / lv.sets) % lv.ways)]!;
      const o = rmap.get(li);
      lv.slotOf[k] = o;
      lv.innerOf[o] = k;
      lv.stamp[k] = tick0 + x * T + first + i;
      inInner[o]!++;
    }
  }

  /** The ways of a full LRU set in the order its next `ways` misses replace them (into `order[set * ways ..]`): by stamp, oldest first. */
  #lruVictimOrder(set: number, order: Int32Array): void {
    const ways = this.ways;
    const b = set * ways;
    const stamp = this.#stamp;
    for (let x = b; x < b + ways; x++) {
      // Insertion sort by stamp: a set has a few ways.
      const w = x - b;
      let y = x - 1;
      while (y >= b && stamp[b + order[y]!]! > stamp[b + w]!) {
        order[y + 1] = order[y]!;
        y--;
      }
      order[y + 1] = w;
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
    this.#setWay(false);
  }

  /** Clean and invalidate every line (by set/way): the cache is empty afterwards. */
  flushAll(): void {
    this.#resetFindings();
    this.counters.setWayOps += this.slots;
    if (this.#valid === 0) return;
    this.#setWay(true);
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
    // (The visitor may read the lines.)
    if (this.#lazyN !== 0) this.#settle(-1);
    this.#forEachCached(phys, len, (s, lp) => visit(this.#publicSlot(s), lp));
  }

  /** Whether a slot is dirty. */
  isDirty(slot: number): boolean {
    if (!Number.isInteger(slot) || slot < 0 || slot >= this.slots) return false;
    const set = Math.floor(slot / this.ways);
    return this.#dirty[(slot - set * this.ways) * this.sets + set] === 1;
  }

  /** Dirty lines in a range, as a finding (or undefined): for non-coherent device reads and writes. */
  dirtyIn(phys: number, len: number): LineFinding | undefined {
    if (this.#dirtyCount === 0) return undefined;
    if (this.#valid === 0 || len <= 0) return undefined;
    const L = this.line;
    const base = this.memory.base;
    const lpp = this.#linesPerPage;
    const dirty = this.#dirty;
    const first = this.#lineIndex(phys);
    const last = this.#lineIndex(phys + len - 1);
    let f: LineFinding | undefined;
    let li = first;
    while (li <= last) {
      const page = Math.floor(li / lpp);
      const pageEnd = Math.min(last + 1, (page + 1) * lpp);
      if (this.#pageDirty.get(page) !== 0) {
        const rm = this.#rmap.chunkOf(li)!;
        for (let l = li; l < pageEnd; l++) {
          const s = rm[l & CH_MASK]!;
          if (s >= 0 && dirty[s] === 1) {
            if (f === undefined) f = { phys: base + l * L, lines: 0, epoch: 0 };
            f.lines++;
          }
        }
      }
      li = pageEnd;
    }
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
    this.#forEachCached(phys, len, (s, lp) => {
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
    this.#forEachCached(phys, len, (s, lp) => {
      this.counters.snoops++;
      const partial = lp < phys || lp + L > end;
      if (partial && this.#dirty[s] === 1) this.#writebackNoting(s);
      victims.push(s);
    });
    for (const s of victims) this.#drop(s);
  }

  // ---------------------------------------------------------------------------------
  // Internals

  #lineIndex(phys: number): number {
    return Math.floor((phys - this.memory.base) / this.line);
  }

  /** The public slot number (`set * ways + way`) of internal slot `s`. */
  #publicSlot(s: number): number {
    const way = Math.floor(s / this.sets);
    return (s - way * this.sets) * this.ways + way;
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

  /** Visits cached lines of a range with internal slot numbers, skipping empty pages. */
  #forEachCached(phys: number, len: number, visit: (s: number, linePhys: number) => void): void {
    if (this.#valid === 0 || len <= 0) return;
    const L = this.line;
    const base = this.memory.base;
    const lpp = this.#linesPerPage;
    const first = this.#lineIndex(phys);
    const last = this.#lineIndex(phys + len - 1);
    let li = first;
    while (li <= last) {
      const page = Math.floor(li / lpp);
      const pageEnd = Math.min(last + 1, (page + 1) * lpp);
      if (this.#pageCount.get(page) !== 0) {
        for (let l = li; l < pageEnd; l++) {
          const s = this.#rmap.get(l);
          if (s >= 0) visit(s, base + l * L);
        }
      }
      li = pageEnd;
    }
  }

  /**
   * Range maintenance. Behaves as a per-line loop calling #writeback and #drop, but is
   * written out flat for speed: pages with no cached line (and, for a clean, no dirty
   * line) are skipped; per page, the reverse-map, memory-epoch and DRAM chunk lookups
   * are hoisted out of the line loop (#maintainPage); the copies of dirty lines to DRAM
   * are gathered into runs (lines contiguous both in DRAM and in #data, within one DRAM
   * chunk) and done with one copy per run. Deferring the copies is safe: nothing here
   * reads DRAM or the line data (invalidation does not touch the data), and the
   * bookkeeping (findings, epochs, counters) still happens line by line in order.
   */
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
    // An invalidate of a range much larger than the cache with no dirty line in it: drop
    // the lines it holds by walking the slots (what is dropped does not depend on order
    // when nothing is written back or discarded).
    if (
      invalidate &&
      !clean &&
      this.closedForms &&
      last - first + 1 > 2 * this.slots &&
      this.#noDirtyIn(first, last)
    ) {
      this.#dropAllIn(first, last);
      return;
    }
    const base = this.memory.base;
    const end = phys + len;
    const lpp = this.#linesPerPage;
    const pageCount = this.#pageCount;
    const pageDirty = this.#pageDirty;
    const st: RangeOp = {
      clean,
      invalidate,
      first,
      last,
      // Only the first and last lines can be partly covered.
      partialFirst: edgesClean && base + first * L < phys,
      partialLast: edgesClean && base + last * L + L > end,
      epochNow: this.shadow.epoch,
      run: new CopyRun(),
      writebacks: 0,
      discarded: 0,
      cleared: 0,
      dropped: 0,
    };
    // A range whose pages cost more to step through than the slots to walk and the lines
    // held to sort: visit only the pages holding a cached line, so that the work follows
    // what the cache holds rather than the size of the range (the same pages, in the
    // same order).
    const held =
      this.closedForms && this.slots + 16 * this.#valid < (4 * (last - first + 1)) / lpp
        ? this.#heldPages(first, last)
        : undefined;
    let hi = 0;
    let li = first;
    for (;;) {
      if (held !== undefined) {
        if (hi === held.length) break;
        li = Math.max(first, held[hi++]! * lpp);
      } else if (li > last) break;
      const page = Math.floor(li / lpp);
      const pageEnd = Math.min(last + 1, (page + 1) * lpp);
      const cached = pageCount.get(page);
      const dirtyHere = cached === 0 ? 0 : pageDirty.get(page);
      // Without invalidation only dirty lines are affected: a page with none is skipped.
      if (cached !== 0 && (invalidate || dirtyHere !== 0)) {
        st.cleared = 0;
        st.dropped = 0;
        if (invalidate || !this.closedForms) this.#maintainPage(st, li, pageEnd, cached, dirtyHere);
        else this.#cleanPage(st, li, pageEnd, dirtyHere);
        if (st.cleared > 0) {
          pageDirty.set(page, dirtyHere - st.cleared);
          this.#dirtyCount -= st.cleared;
          // A clean has nothing left to do once no line is dirty: the pages further on
          // would all be skipped (a 32 MiB map whose CPU-written head is its first 1 MiB).
          if (!invalidate && this.closedForms && this.#dirtyCount === 0) break;
        }
        if (st.dropped > 0) {
          pageCount.set(page, cached - st.dropped);
          this.#valid -= st.dropped;
          if (this.#valid === 0) break;
        }
      }
      li = pageEnd;
    }
    this.#runFlush(st.run);
    this.counters.writebacks += st.writebacks;
    this.counters.discardedDirty += st.discarded;
  }

  /**
   * Whether lines `[first, last]` hold no dirty line (by the per-page counts; without
   * looking when the range is so large that walking its pages costs more than the slots).
   */
  #noDirtyIn(first: number, last: number): boolean {
    if (this.#dirtyCount === 0) return true;
    const lpp = this.#linesPerPage;
    const p0 = Math.floor(first / lpp);
    const p1 = Math.floor(last / lpp);
    if (p1 - p0 > this.slots) return false;
    const pageDirty = this.#pageDirty;
    for (let page = p0; page <= p1; page++) if (pageDirty.get(page) !== 0) return false;
    return true;
  }

  /**
   * Drops every line of `[first, last]` the cache holds, none of them dirty: exactly what
   * the page-by-page invalidation does (#maintainPage's #drop of each line, the reverse
   * map and per-page counts), by walking the slots. Afterwards no line of the range is
   * cached, so every reverse-map entry of the range is INVALID and every page wholly
   * inside it counts 0: those are set by whole-range fills (one sequential write per
   * entry, where a write per line dropped lands somewhere random in the map: the unmap
   * of a buffer a device wrote, holding its speculative fills all over it), the reverse
   * map and counts only when the range's entries are not many more than the lines the
   * cache holds (a fill must not cost more than the walk). The edge pages, which may hold
   * lines outside the range, are counted down line by line.
   */
  #dropAllIn(first: number, last: number): void {
    const tag = this.#tag;
    const inInner = this.#inInner;
    const setValid = this.#setValid;
    const rmap = this.#rmap;
    const pageCount = this.#pageCount;
    const lpp = this.#linesPerPage;
    const sets = this.sets;
    const setFree = this.#setFree;
    const bits = this.#allFree !== 0;
    // The walk reads every tag: it gives every invalid way its bit, so they are exact after.
    const fix = bits && !this.#freeExact;
    const fillMap = last - first + 1 <= RMAP_FILL_PER_LINE * this.#valid;
    // Pages [p0, p1) lie wholly inside the range (none when it is not filled whole).
    const p0 = fillMap ? Math.ceil(first / lpp) : 0;
    const p1 = fillMap ? Math.floor((last + 1) / lpp) : 0;
    if (fillMap && this.#allHeldIn(first, last)) {
      this.#dropEverything(first, last);
      return;
    }
    let dropped = 0;
    for (let way = 0, s = 0; way < this.ways; way++)
      for (let set = 0; set < sets; set++, s++) {
        const li = tag[s]!;
        if (li < first || li > last) {
          if (fix && li < 0) setFree[set]! |= 1 << way;
          continue;
        }
        if (inInner[s] !== 0) this.#dropInner(s);
        tag[s] = INVALID;
        setValid[set]!--;
        if (bits) setFree[set]! |= 1 << way;
        if (!fillMap) rmap.set(li, INVALID);
        const page = Math.floor(li / lpp);
        if (page < p0 || page >= p1) pageCount.set(page, pageCount.get(page) - 1);
        dropped++;
      }
    this.#valid -= dropped;
    this.#freeExact = true;
    if (fillMap) {
      rmap.fillRange(first, last + 1, INVALID);
      if (p1 > p0) pageCount.fillRange(p0, p1, 0);
    }
  }

  /**
   * Whether every line the cache holds lies in `[first, last]`: a sum of the page counts
   * of the pages wholly inside, plus the lines held of a partly covered page at either
   * edge (by the reverse map). Why not a read of every tag: for a range off page
   * boundaries (an unmap from a line's offset) that read cost as much as the slot walk
   * it is there to spare, and the walk followed it whenever the answer was no.
   */
  #allHeldIn(first: number, last: number): boolean {
    const lpp = this.#linesPerPage;
    // Pages [p0, p1) lie wholly inside the range; the lines before and after are edges.
    const p0 = Math.ceil(first / lpp);
    const p1 = Math.floor((last + 1) / lpp);
    if (p1 < p0) return this.#heldIn(first, last + 1) === this.#valid; // inside one page
    let n = this.#heldIn(first, p0 * lpp) + this.#heldIn(p1 * lpp, last + 1);
    for (let p = p0; p < p1; ) {
      const c = this.#pageCount.chunkOf(p);
      const end = Math.min(p1, (Math.floor(p / CHUNK_SIZE) + 1) * CHUNK_SIZE);
      if (c !== undefined) for (let i = p & CH_MASK, e = i + (end - p); i < e; i++) n += c[i]!;
      p = end;
    }
    return n === this.#valid;
  }

  /** How many of lines `[from, to)`, all in one page, the cache holds (by the reverse map). */
  #heldIn(from: number, to: number): number {
    if (from >= to || this.#pageCount.get(Math.floor(from / this.#linesPerPage)) === 0) return 0;
    // A page never straddles a chunk of the reverse map.
    const rm = this.#rmap.chunkOf(from)!;
    let n = 0;
    for (let l = from; l < to; l++) if (rm[l & CH_MASK]! >= 0) n++;
    return n;
  }

  /**
   * #dropAllIn when every line the cache holds lies in `[first, last]` and none is dirty
   * (the unmap of a buffer larger than the cache that a device wrote, its speculative
   * fills and the CPU's head all inside it): the cache ends empty, so the per-slot and
   * per-set state is set by whole-array fills instead of slot by slot. The same state as
   * the slot walk: every tag INVALID, every set empty with every way's free bit (exact),
   * the inner levels without the dropped slots, and the reverse map and page counts of
   * the range (no line outside it was cached) INVALID and 0.
   */
  #dropEverything(first: number, last: number): void {
    // Every inner line is one of the dropped slots': the inner levels end empty too.
    for (let i = 0; i < this.#innerOf.length; i++) {
      this.#innerOf[i]!.fill(INVALID);
      this.#innerSlotOf[i]!.fill(INVALID);
    }
    this.#inInner.fill(0);
    this.#tag.fill(INVALID);
    this.#setValid.fill(0);
    if (this.#allFree !== 0) this.#setFree.fill(this.#allFree);
    this.#valid = 0;
    this.#freeExact = true;
    const lpp = this.#linesPerPage;
    this.#rmap.fillRange(first, last + 1, INVALID);
    this.#pageCount.fillRange(Math.floor(first / lpp), Math.floor(last / lpp) + 1, 0);
  }

  /** The pages, ascending and each once, holding a cached line of lines `[first, last]`. */
  #heldPages(first: number, last: number): Float64Array {
    const tag = this.#tag;
    const lpp = this.#linesPerPage;
    const found = new Float64Array(this.#valid);
    let n = 0;
    for (let s = 0; s < this.slots; s++) {
      const t = tag[s]!;
      if (t >= first && t <= last) found[n++] = Math.floor(t / lpp);
    }
    const pages = found.subarray(0, n).sort();
    let m = 0;
    for (let i = 0; i < n; i++) if (i === 0 || pages[i] !== pages[i - 1]) pages[m++] = pages[i]!;
    return pages.subarray(0, m);
  }

  /**
   * The lines `[li, pageEnd)` of one page for #maintain. A separate method so that it is
   * called thousands of times per operation and gets optimized with feedback from every
   * mode, rather than as on-stack replacement of one long loop.
   */
  #maintainPage(
    st: RangeOp,
    li: number,
    pageEnd: number,
    cachedHere: number,
    dirtyHere: number,
  ): void {
    const L = this.line;
    const W = this.#lineWords;
    const tag = this.#tag;
    const dirty = this.#dirty;
    const fillEpoch = this.#fillEpoch;
    const inInner = this.#inInner;
    const clean = st.clean;
    const invalidate = st.invalidate;
    const first = st.first;
    const last = st.last;
    const partialFirst = st.partialFirst;
    const partialLast = st.partialLast;
    const epochNow = st.epochNow;
    // A page never straddles a chunk of the reverse map, the epoch map or DRAM.
    const rm = this.#rmap.chunkOf(li)!;
    const me = this.shadow.enabled ? this.shadow.memEpoch.chunkOf(li) : undefined;
    const ci = Math.floor((li * L) / MEM_CHUNK);
    // DRAM word (in chunk ci) of line l is pageWord + (l - li) * W.
    const pageWord = (li * L - ci * MEM_CHUNK) >>> 2;
    const run = st.run;
    const setValid = this.#setValid;
    const sets = this.sets;
    // Lines dropped here leave their ways' free bits unset (a bit per line slowed the
    // invalidation of a range by a fifth): the bits are not exact any more.
    if (st.invalidate) this.#freeExact = false;
    let cleared = 0;
    let dropped = 0;
    let writebacks = 0;
    let discarded = 0;
    let stop = pageEnd;
    // Line l is in set l % sets: consecutive lines, consecutive sets.
    for (let l = li, set = mod(li, sets); l < pageEnd; l++, set = set + 1 === sets ? 0 : set + 1) {
      const s = rm[l & CH_MASK]!;
      if (s < 0) continue;
      if (dirty[s] === 1) {
        if (clean || (l === first && partialFirst) || (l === last && partialLast)) {
          // #writeback(s), with the copy deferred into the run.
          this.#runAdd(run, ci, s, pageWord + (l - li) * W, 1);
          // (No epoch chunk: memory there was never written behind the cache.)
          if (me !== undefined) {
            const e = me[l & CH_MASK]!;
            if (e > fillEpoch[s]!) this.#note("lostWrite", this.memory.base + l * L, e);
          }
          // A slot about to be dropped needs no fill epoch: #access sets it on the next fill,
          // and nothing reads it while the slot is invalid.
          if (!invalidate) fillEpoch[s] = epochNow;
          dirty[s] = 0;
          cleared++;
          writebacks++;
        } else {
          // Thrown away (this is an invalidate): #drop below would clear the dirty bit.
          dirty[s] = 0;
          cleared++;
          discarded++;
        }
      }
      if (invalidate) {
        // #drop(s) (its dirty-bit part is done above; the free bit left unset: see above)
        if (inInner[s] !== 0) this.#dropInner(s);
        tag[s] = INVALID;
        setValid[set]!--;
        if (++dropped === cachedHere) {
          // The page's last cached line: none is left further on.
          stop = l + 1;
          break;
        }
      } else if (cleared === dirtyHere) break; // clean only: no dirty line left here
    }
    // Every cached line of the page range was dropped; the others were INVALID already.
    if (invalidate) rm.fill(INVALID, li & CH_MASK, ((stop - 1) & CH_MASK) + 1);
    st.cleared = cleared;
    st.dropped = dropped;
    st.writebacks += writebacks;
    st.discarded += discarded;
  }

  /**
   * #maintainPage for a clean (no invalidation, so no partly covered edge to treat apart):
   * only the dirty lines of the page are visited, the loop holding nothing else.
   */
  #cleanPage(st: RangeOp, li: number, pageEnd: number, dirtyHere: number): void {
    const L = this.line;
    const W = this.#lineWords;
    const dirty = this.#dirty;
    const fillEpoch = this.#fillEpoch;
    const epochNow = st.epochNow;
    const rm = this.#rmap.chunkOf(li)!;
    const me = this.shadow.enabled ? this.shadow.memEpoch.chunkOf(li) : undefined;
    const ci = Math.floor((li * L) / MEM_CHUNK);
    const w0 = (li * L - ci * MEM_CHUNK) >>> 2;
    const run = st.run;
    let cleared = 0;
    const n = pageEnd - li;
    const whole =
      n === this.#linesPerPage && dirtyHere === n ? this.#consecutiveSlots(rm, li, n, me) : -1;
    if (whole >= 0) {
      // A whole page dirty in consecutive slots (a CPU's sequential store): one run, and
      // the slots' dirty bits and fill epochs set by fills.
      const s0 = rm[li & CH_MASK]!;
      this.#runAdd(run, ci, s0, w0, n);
      if (whole === 1 && me !== undefined)
        for (let k = 0, o = li & CH_MASK; k < n; k++) {
          const e = me[o + k]!;
          if (e > fillEpoch[s0 + k]!) this.#note("lostWrite", this.memory.base + (li + k) * L, e);
        }
      fillEpoch.fill(epochNow, s0, s0 + n);
      dirty.fill(0, s0, s0 + n);
      cleared = n;
    } else
      for (let l = li, w = w0; l < pageEnd; l++, w += W) {
        const s = rm[l & CH_MASK]!;
        if (s < 0 || dirty[s] !== 1) continue;
        this.#runAdd(run, ci, s, w, 1);
        if (me !== undefined) {
          const e = me[l & CH_MASK]!;
          if (e > fillEpoch[s]!) this.#note("lostWrite", this.memory.base + l * L, e);
        }
        fillEpoch[s] = epochNow;
        dirty[s] = 0;
        if (++cleared === dirtyHere) break;
      }
    st.cleared = cleared;
    st.dropped = 0;
    st.writebacks += cleared;
  }

  /**
   * Adds `n` lines, slots `s..` at DRAM words `w..` of chunk `ci`, to the write-back run
   * `run`: it grows when they follow its last line both in the line data and in DRAM,
   * else the run so far is copied out and a new one starts with them. The one copy of
   * the accumulation for the range maintenance (#maintainPage, #cleanPage) and set/way
   * (#setWay).
   */
  #runAdd(run: CopyRun, ci: number, s: number, w: number, n: number): void {
    const W = this.#lineWords;
    if (s === run.nextS && w === run.nextW && ci === run.wordsCi) run.runLen += n;
    else {
      this.#runFlush(run);
      run.wordsCi = ci;
      run.runData = s * W;
      run.runMem = w;
      run.runLen = n;
    }
    run.nextS = s + n;
    run.nextW = w + n * W;
  }

  /** Copies the pending write-back run to DRAM, if any (it is empty afterwards). */
  #runFlush(run: CopyRun): void {
    if (run.runLen > 0)
      this.#copyOut(run.wordsCi, run.runData, run.runMem, run.runLen * this.#lineWords);
    run.runLen = 0;
    // No line may continue a flushed run: #runAdd would grow it from its stale start.
    run.nextS = -1;
  }

  /**
   * Whether lines `[li, li+n)` (in one chunk of the reverse map `rm`) lie in consecutive
   * slots: -1 if not, else 1 if one of them has a lost write to note (memory's epoch `me`
   * newer than its fill), 0 if none. One pass for both.
   */
  #consecutiveSlots(rm: Int32Array, li: number, n: number, me: Uint32Array | undefined): number {
    const o = li & CH_MASK;
    const s0 = rm[o]!;
    const fillEpoch = this.#fillEpoch;
    let lost = 0;
    if (me === undefined) {
      for (let k = 1; k < n; k++) if (rm[o + k] !== s0 + k) return -1;
    } else
      for (let k = 0; k < n; k++) {
        if (rm[o + k] !== s0 + k) return -1;
        if (me[o + k]! > fillEpoch[s0 + k]!) lost = 1;
      }
    return lost;
  }

  /**
   * Copies `n` words of line data from `from` to word `to` of DRAM chunk `ci`. A chunk
   * never written is a zero page: zeros written back to it leave it unbacked.
   */
  #copyOut(ci: number, from: number, to: number, n: number): void {
    const known = this.#dataKnownZero(from, n);
    // A chunk never written stays a zero page under zeros; otherwise take the write view.
    if (this.memory.peekChunkWords(ci) === undefined && (known || isZero(this.#data, from, n)))
      return;
    // Zeros known from #dataUsed are not read out of pages never faulted in.
    if (known) this.memory.chunkWords(ci).fill(0, to, to + n);
    else copyWords(this.#data, from, this.memory.chunkWords(ci), to, n);
  }

  /** Whether words `[from, from+n)` of the line data are zero by `#dataUsed` alone (no read). */
  #dataKnownZero(from: number, n: number): boolean {
    const used = this.#dataUsed;
    const last = (from + n - 1) >>> (DATA_PAGE_SHIFT - 2);
    for (let p = from >>> (DATA_PAGE_SHIFT - 2); p <= last; p++) if (used[p] !== 0) return false;
    return true;
  }

  /** The line data of slots `[from, to)` may hold non-zero bytes from now on (see `#dataUsed`). */
  #markData(from: number, to: number): void {
    const sh = this.#slotPageShift;
    this.#dataUsed.fill(1, from >>> sh, ((to - 1) >>> sh) + 1);
  }

  /**
   * Stores `value32` into every word of slots `[from, to)`: zeros only into the pages
   * that may hold a non-zero byte (see `#dataUsed`); any other value marks the pages.
   */
  #fillData(value32: number, from: number, to: number): void {
    const W = this.#lineWords;
    const sh = this.#slotPageShift;
    if (value32 !== 0) {
      this.#data.fill(value32, from * W, to * W);
      this.#markData(from, to);
      return;
    }
    const used = this.#dataUsed;
    const per = 1 << sh;
    for (let s = from; s < to; ) {
      const p = s >>> sh;
      const next = Math.min(to, (p + 1) * per);
      if (used[p] !== 0) this.#data.fill(0, s * W, next * W);
      s = next;
    }
  }

  /** Removes outer slot `s` from every inner level. */
  #dropInner(s: number): void {
    const innerOf = this.#innerOf;
    for (let i = 0; i < innerOf.length; i++) {
      const io = innerOf[i]!;
      const k = io[s]!;
      if (k >= 0) {
        this.#innerSlotOf[i]![k] = INVALID;
        io[s] = INVALID;
      }
    }
    this.#inInner[s] = 0;
  }

  /**
   * Set/way clean (and invalidate, with `drop`) of every slot. The loop runs in internal
   * (way-major) order so that line data and DRAM are walked sequentially and runs of
   * lines are copied at once; the lost-write finding is assembled so that it comes out as
   * if the slots had been visited in public slot order (the first line reported is the
   * one in the lowest public slot; the count and newest epoch do not depend on order).
   * Write-backs of different lines touch different bytes, so their order is invisible.
   */
  #setWay(drop: boolean): void {
    const L = this.line;
    const base = this.memory.base;
    const slots = this.slots;
    const tag = this.#tag;
    const dirty = this.#dirty;
    const fillEpoch = this.#fillEpoch;
    const rmap = this.#rmap;
    const pageCount = this.#pageCount;
    const pageDirty = this.#pageDirty;
    const lpp = this.#linesPerPage;
    const inInner = this.#inInner;
    const checking = this.shadow.enabled;
    const memEpoch = this.shadow.memEpoch;
    const epochNow = this.shadow.epoch;
    let lostLines = 0;
    let lostEpoch = 0;
    let lostPhys = 0;
    let lostSlot = Number.POSITIVE_INFINITY;
    let writebacks = 0;
    const run = new CopyRun();
    for (let s = 0; s < slots; s++) {
      const li = tag[s]!;
      if (li < 0) continue;
      if (dirty[s] === 1) {
        const off = li * L;
        const ci = Math.floor(off / MEM_CHUNK);
        this.#runAdd(run, ci, s, (off - ci * MEM_CHUNK) >>> 2, 1);
        if (checking) {
          const c = memEpoch.chunkOf(li);
          const e = c === undefined ? 0 : c[li & CH_MASK]!;
          if (e > fillEpoch[s]!) {
            lostLines++;
            if (e > lostEpoch) lostEpoch = e;
            const p = this.#publicSlot(s);
            if (p < lostSlot) {
              lostSlot = p;
              lostPhys = base + off;
            }
          }
        }
        fillEpoch[s] = epochNow;
        dirty[s] = 0;
        writebacks++;
        const page = Math.floor(li / lpp);
        pageDirty.set(page, pageDirty.get(page) - 1);
      }
      if (drop) {
        if (inInner[s] !== 0) this.#dropInner(s);
        tag[s] = INVALID;
        rmap.set(li, INVALID);
        const page = Math.floor(li / lpp);
        pageCount.set(page, pageCount.get(page) - 1);
        this.#valid--;
      }
    }
    this.#runFlush(run);
    if (drop) {
      // every valid line was dropped
      this.#setValid.fill(0);
      this.#setFree.fill(this.#allFree);
      this.#freeExact = true;
    }
    this.#dirtyCount -= writebacks;
    this.counters.writebacks += writebacks;
    if (lostLines > 0)
      this.findings.lostWrite = { phys: lostPhys, lines: lostLines, epoch: lostEpoch };
  }

  /** Finds or fills the line; returns its outer slot. */
  #access(li: number, fullOverwrite: boolean): number {
    const c = this.#rmap.chunkOf(li);
    let s = c === undefined ? INVALID : c[li & CH_MASK]!;
    const inner = this.#inner;
    const nInner = inner.length;
    if (s >= 0) {
      // Outer hit: find the innermost level that has it, fill the levels inside that.
      let hitLevel = nInner;
      for (let i = 0; i < nInner; i++) {
        const lv = inner[i]!;
        const k = lv.innerOf[s]!;
        if (k >= 0) {
          lv.stamp[k] = ++this.#tick;
          hitLevel = i;
          break;
        }
      }
      this.counters.hits[hitLevel]!++;
      for (let i = 0; i < hitLevel; i++) this.#innerInsert(i, li, s);
      if (hitLevel === nInner) this.#touch(s);
      return s;
    }
    s = this.#allocate(li);
    this.counters.fills++;
    if (!fullOverwrite) this.#fillFromMemory(li, s);
    this.#fillEpoch[s] = this.shadow.epoch;
    for (let i = 0; i < nInner; i++) this.#innerInsert(i, li, s);
    return s;
  }

  #touch(s: number): void {
    const way = Math.floor(s / this.sets);
    const set = s - way * this.sets;
    if (!this.#plru) {
      this.#stamp[set * this.ways + way] = ++this.#tick;
      return;
    }
    const m = this.#plruMasks;
    this.#plruBits[set] = (this.#plruBits[set]! & m.keep[way]!) | m.set[way]!;
  }

  #victimWay(set: number): number {
    const sets = this.sets;
    const ways = this.ways;
    const tag = this.#tag;
    if (this.#setValid[set]! < ways)
      return lowestInvalidWay(this.#setFree[set]!, this.#freeExact, tag, set, sets, ways);
    if (this.#plru) return plruVictim(this.#plruBits[set]!, this.#plruLevels);
    const stamp = this.#stamp;
    const at = set * ways;
    let best = 0;
    let bestStamp = stamp[at]!;
    for (let w = 1; w < ways; w++) {
      const st = stamp[at + w]!;
      if (st < bestStamp) {
        bestStamp = st;
        best = w;
      }
    }
    return best;
  }

  #allocate(li: number): number {
    const set = setIndex(li, this.sets, this.#setMask);
    const s = this.#victimWay(set) * this.sets + set;
    if (this.#tag[s]! >= 0) {
      this.counters.evictions++;
      if (this.#dirty[s] === 1) this.#writebackNoting(s);
      this.#drop(s);
    }
    this.#tag[s] = li;
    this.#dirty[s] = 0;
    this.#setValid[set]!++;
    this.#setFree[set]! &= ~(1 << ((s - set) / this.sets));
    this.#rmap.set(li, s);
    const page = Math.floor(li / this.#linesPerPage);
    this.#pageCount.set(page, this.#pageCount.get(page) + 1);
    this.#valid++;
    this.#touch(s);
    return s;
  }

  #innerInsert(level: number, li: number, outerSlot: number): void {
    if (this.#inner[level]!.innerOf[outerSlot]! >= 0) return;
    this.#innerPlace(level, li, outerSlot);
    this.#inInner[outerSlot]!++;
  }

  /**
   * Puts outer slot `outerSlot` (line `li`), which `level` does not hold, into `level`:
   * into an invalid way or over the least recently used one. The caller counts it in
   * `#inInner[outerSlot]`.
   */
  #innerPlace(level: number, li: number, outerSlot: number): void {
    const lv = this.#inner[level]!;
    const set = setIndex(li, lv.sets, lv.setMask);
    const base = set * lv.ways;
    const slotOf = lv.slotOf;
    const stamp = lv.stamp;
    let way = -1;
    let bestStamp = Number.POSITIVE_INFINITY;
    for (let w = 0; w < lv.ways; w++) {
      const k = base + w;
      if (slotOf[k]! < 0) {
        way = w;
        break;
      }
      if (stamp[k]! < bestStamp) {
        bestStamp = stamp[k]!;
        way = w;
      }
    }
    const k = base + way;
    const old = slotOf[k]!;
    if (old >= 0) {
      lv.innerOf[old] = INVALID;
      this.#inInner[old]!--;
    }
    slotOf[k] = outerSlot;
    lv.innerOf[outerSlot] = k;
    stamp[k] = ++this.#tick;
  }

  #fillFromMemory(li: number, s: number): void {
    const off = li * this.line;
    const ci = Math.floor(off / MEM_CHUNK);
    this.#lineFrom(s, this.memory.peekChunkWords(ci), (off - ci * MEM_CHUNK) >>> 2);
  }

  /**
   * Slot `s`'s line data from DRAM words `words[w0..]` (undefined: a chunk never
   * written, zeros: into a page of line data known zero they change nothing, see
   * `#dataUsed`).
   */
  #lineFrom(s: number, words: Int32Array | undefined, w0: number): void {
    const W = this.#lineWords;
    const d = s * W;
    const data = this.#data;
    const page = s >>> this.#slotPageShift;
    if (words === undefined) {
      if (this.#dataUsed[page] !== 0) data.fill(0, d, d + W);
      return;
    }
    this.#dataUsed[page] = 1;
    // Four words a step (a line is at least 16 bytes): fewer loop checks per line.
    for (let i = 0; i < W; i += 4) {
      data[d + i] = words[w0 + i]!;
      data[d + i + 1] = words[w0 + i + 1]!;
      data[d + i + 2] = words[w0 + i + 2]!;
      data[d + i + 3] = words[w0 + i + 3]!;
    }
  }

  /** #writeback, noting a destroyed device write in the findings. */
  #writebackNoting(s: number): void {
    const lost = this.#writeback(s);
    if (lost !== 0) this.#note("lostWrite", this.memory.base + this.#tag[s]! * this.line, lost);
  }

  /**
   * Writes a dirty slot back to memory. Returns the epoch of newer memory contents it
   * overwrote (a destroyed device write), or 0; the caller notes it.
   */
  #writeback(s: number): number {
    const li = this.#tag[s]!;
    const W = this.#lineWords;
    const off = li * this.line;
    const ci = Math.floor(off / MEM_CHUNK);
    const w0 = (off - ci * MEM_CHUNK) >>> 2;
    const d = s * W;
    const data = this.#data;
    const known = this.#dataUsed[s >>> this.#slotPageShift] === 0;
    // (A zero line written back to DRAM never written stays a zero page: no host memory.)
    if (this.memory.peekChunkWords(ci) !== undefined || !(known || isZero(data, d, W))) {
      const words = this.memory.chunkWords(ci);
      // Zeros known from #dataUsed are not read out of a page never faulted in.
      if (known) words.fill(0, w0, w0 + W);
      else for (let i = 0; i < W; i++) words[w0 + i] = data[d + i]!;
    }
    let lost = 0;
    if (this.shadow.enabled) {
      const me = this.shadow.memEpoch.get(li);
      if (me > this.#fillEpoch[s]!) lost = me;
    }
    // Line and memory agree from now on.
    this.#fillEpoch[s] = this.shadow.epoch;
    this.#dirty[s] = 0;
    this.#dirtyCount--;
    const page = Math.floor(li / this.#linesPerPage);
    this.#pageDirty.set(page, this.#pageDirty.get(page) - 1);
    this.counters.writebacks++;
    return lost;
  }

  /** Invalidates a slot in every level (without writing it back). */
  #drop(s: number): void {
    const li = this.#tag[s]!;
    if (li < 0) return;
    const page = Math.floor(li / this.#linesPerPage);
    if (this.#dirty[s] === 1) {
      this.#dirty[s] = 0;
      this.#dirtyCount--;
      this.#pageDirty.set(page, this.#pageDirty.get(page) - 1);
    }
    if (this.#inInner[s] !== 0) this.#dropInner(s);
    this.#tag[s] = INVALID;
    this.#rmap.set(li, INVALID);
    this.#pageCount.set(page, this.#pageCount.get(page) - 1);
    this.#valid--;
    const way = Math.floor(s / this.sets);
    const set = s - way * this.sets;
    this.#setValid[set]!--;
    this.#setFree[set]! |= this.#freeBit(way);
  }
}

/** Lines per page for a line size (used by callers that iterate pages). */
export function linesPerPage(lineSize: number): number {
  return PAGE_SIZE >>> Math.log2(lineSize);
}

export { PAGE_SHIFT };
