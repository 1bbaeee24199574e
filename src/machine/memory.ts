/**
 * Byte-accurate physical memory (DRAM).
 *
 * Storage is real host memory, allocated lazily in 1 MiB chunks on first write, so a
 * machine with gigabytes of RAM costs only what a scenario touches. Unwritten memory
 * reads as zero, and zero pages cost nothing: storing zeros into a chunk never written
 * (clear_page of a fresh buffer, a write-back of zeroed lines) leaves it unbacked, and
 * zeroing a whole chunk gives its host memory back. Chunks of a machine that is
 * {@link PhysicalMemory.release}d go to a pool the next machine takes them from (host
 * page faults on fresh memory cost more than clearing a reused chunk). Addresses are physical; nothing here knows about caches: the CPU cache
 * and DMA devices both sit on top of this.
 */

import { hostChunk } from "./host-memory.js";

export const PAGE_SHIFT = 12;
/** 4 KiB pages, as on every architecture profile modelled. */
export const PAGE_SIZE = 1 << PAGE_SHIFT;

const CHUNK_SHIFT = 20;
const CHUNK = 1 << CHUNK_SHIFT;
const CHUNK_MASK = CHUNK - 1;

/**
 * Released 1 MiB chunks, reused (cleared) by the next machine. At most 512 MiB kept. New
 * chunks are pieces of huge-page slabs (./host-memory.ts): a chunk is a view, not always
 * all of its ArrayBuffer.
 */
const chunkPool: Uint8Array[] = [];
const POOL_MAX = 512;
/** Spare chunks a memory keeps for whole-chunk replacements (PhysicalMemory.recycle). */
const SPARES_MAX = 64;
/** Whole-chunk writes of watched chunks before a memory takes new host chunks for them. */
const REPLACE_AFTER = 256;

/**
 * Largest piece one host copy moves: half a chunk. Why: glibc's memmove on AMD CPUs uses
 * `rep movsb` only for copies smaller than the L2 cache (sysdeps/x86/dl-cacheinfo.h,
 * rep_movsb_stop_threshold: 1 MiB on Zen 4 and 5) and its vector loop from there up; on
 * the development host (Zen 5, glibc 2.36) a cold 32 MiB copy in pieces just under 1 MiB
 * took 10-20% less time than in 1 MiB pieces. Where memmove does not switch there (Intel's
 * threshold is the non-temporal one), half a chunk costs one more call per MiB.
 */
const COPY_PIECE = CHUNK >>> 1;

/**
 * `dst.set(src.subarray(from, from + n), at)`, in pieces of at most {@link COPY_PIECE}
 * bytes: of bytes here, of words for the cache's write-backs (cache.ts, copyWords; `at`,
 * `from` and `n` count elements). The two ranges must not overlap (a forward copy in
 * pieces would differ from `set`).
 */
export function copyBytes<T extends Uint8Array | Int32Array>(
  dst: T,
  at: number,
  src: T,
  from: number,
  n: number,
): void {
  const piece = COPY_PIECE / src.BYTES_PER_ELEMENT;
  while (n > piece) {
    dst.set(src.subarray(from, from + piece), at);
    at += piece;
    from += piece;
    n -= piece;
  }
  dst.set(src.subarray(from, from + n), at);
}

/** The Int32 view of a chunk's host memory (which may be a piece of a larger buffer). */
function chunkWords(c: Uint8Array): Int32Array {
  return new Int32Array(c.buffer, c.byteOffset, CHUNK >>> 2);
}

/** What a chunk never written reads as, for {@link PhysicalMemory.view} (never written to). */
let zeroChunk: Uint8Array | undefined;

/** Whether `a[from..to)` is all zero. */
function allZero(a: Uint8Array, from: number, to: number): boolean {
  let i = from;
  // Word at a time where the view is aligned (a frame is megabytes).
  if ((a.byteOffset + i) % 4 === 0 && to - i >= 64) {
    const w = new Int32Array(a.buffer, a.byteOffset + i, (to - i) >>> 2);
    for (let k = 0; k < w.length; k++) if (w[k] !== 0) return false;
    i += w.length * 4;
  }
  for (; i < to; i++) if (a[i] !== 0) return false;
  return true;
}

/**
 * Who keeps bytes of memory for later and must see them before they change (the CPU
 * cache: a speculative fill's line data is copied out of DRAM only when something reads
 * the line, src/machine/cache.ts): told before a chunk it watches changes.
 */
export interface ChunkWatcher {
  /** Chunk `ci` is about to change in place (or be dropped): copy out what is needed now. */
  beforeChange(ci: number): void;
  /**
   * Chunk `ci` was just replaced whole by a write into other host memory: `old` holds the
   * words it had (undefined: it read as zero), the watcher's until it gives them back
   * with {@link PhysicalMemory.recycle}.
   */
  replaced(ci: number, old: Int32Array | undefined): void;
}

/** Raised for an access outside RAM: a bus error on real hardware. */
export class BusError extends Error {
  constructor(
    readonly phys: number,
    readonly len: number,
  ) {
    super(`bus error: physical range 0x${phys.toString(16)}+${len} is outside RAM`);
    this.name = "BusError";
  }
}

/** Pages per 1 MiB chunk. */
const CHUNK_PAGES = CHUNK >>> PAGE_SHIFT;

export class PhysicalMemory {
  readonly #bytes: (Uint8Array | undefined)[];
  readonly #words: (Int32Array | undefined)[];
  #writeSeq = 0;
  /** The one {@link ChunkWatcher}, and per chunk whether it watches it (allocated at the first watch). */
  #watcher: ChunkWatcher | undefined;
  #watched: Uint8Array | undefined;
  /**
   * Per chunk, per page: the {@link writeSeq} of the last write known to have touched
   * the page (made when a page of the chunk is first written; undefined: none since).
   */
  readonly #pageSeq: (Float64Array | undefined)[];
  /**
   * Per chunk: the {@link writeSeq} of the last write to some part of it not known more
   * precisely (a word view handed out for writing, the chunk dropped).
   */
  readonly #chunkSeq: Float64Array;

  /**
   * @param base physical address of the first byte of RAM (page aligned)
   * @param size bytes of RAM (a multiple of the page size)
   * @param replaceAfter whole-chunk writes of watched chunks before new host chunks are
   *   taken for them (see #mayReplace; tests set 0 to take that path at once)
   */
  constructor(
    readonly base: number,
    readonly size: number,
    readonly replaceAfter = REPLACE_AFTER,
  ) {
    if (base % PAGE_SIZE !== 0 || size % PAGE_SIZE !== 0 || size <= 0) {
      throw new RangeError(`memory: base and size must be positive multiples of ${PAGE_SIZE}`);
    }
    const n = Math.ceil(size / CHUNK);
    this.#bytes = new Array<Uint8Array | undefined>(n);
    this.#words = new Array<Int32Array | undefined>(n);
    this.#pageSeq = new Array<Float64Array | undefined>(n);
    this.#chunkSeq = new Float64Array(n);
  }

  /**
   * Changes whenever any byte of memory may have changed (a write, a fill, a write view
   * handed out, a release). Equal values at two times mean memory is byte for byte the
   * same: a display scanning out the same frame again knows its CRC without hashing.
   */
  get writeSeq(): number {
    return this.#writeSeq;
  }

  /**
   * The {@link writeSeq} of the last write that may have changed a byte of
   * `[phys, phys+len)` (0: none since the machine booted). Tracked per 4 KiB page (per
   * 1 MiB chunk for the cache's write views): a range whose value is at most `s` holds
   * byte for byte what it held when writeSeq was `s`, whatever was written elsewhere.
   */
  lastWriteIn(phys: number, len: number): number {
    if (len <= 0) return 0;
    this.check(phys, len);
    const p0 = Math.floor((phys - this.base) / PAGE_SIZE);
    const p1 = Math.floor((phys - this.base + len - 1) / PAGE_SIZE);
    let last = 0;
    for (let p = p0; p <= p1; ) {
      const ci = Math.floor(p / CHUNK_PAGES);
      const end = Math.min(p1 + 1, (ci + 1) * CHUNK_PAGES);
      const c = this.#chunkSeq[ci]!;
      if (c > last) last = c;
      const pages = this.#pageSeq[ci];
      if (pages !== undefined)
        for (let i = p - ci * CHUNK_PAGES, e = end - ci * CHUNK_PAGES; i < e; i++)
          if (pages[i]! > last) last = pages[i]!;
      p = end;
    }
    return last;
  }

  /** Marks the pages of `[off, off+len)` (offsets into RAM) written at the current writeSeq. */
  #stamp(off: number, len: number): void {
    const seq = this.#writeSeq;
    const p1 = Math.floor((off + len - 1) / PAGE_SIZE);
    for (let p = Math.floor(off / PAGE_SIZE); p <= p1; ) {
      const ci = Math.floor(p / CHUNK_PAGES);
      const end = Math.min(p1 + 1, (ci + 1) * CHUNK_PAGES);
      let pages = this.#pageSeq[ci];
      if (pages === undefined) {
        pages = new Float64Array(CHUNK_PAGES);
        this.#pageSeq[ci] = pages;
      }
      pages.fill(seq, p - ci * CHUNK_PAGES, end - ci * CHUNK_PAGES);
      p = end;
    }
  }

  /** One past the last physical address of RAM. */
  get end(): number {
    return this.base + this.size;
  }

  /** Host bytes actually allocated to back this memory. */
  get residentBytes(): number {
    let n = 0;
    for (const c of this.#bytes) if (c !== undefined) n += CHUNK;
    return n;
  }

  contains(phys: number, len: number): boolean {
    return phys >= this.base && len >= 0 && phys + len <= this.end;
  }

  check(phys: number, len: number): void {
    if (!this.contains(phys, len)) throw new BusError(phys, len);
  }

  /** Copies `len` bytes at `phys` into `dst[dstOff..]`. */
  read(phys: number, len: number, dst: Uint8Array, dstOff = 0): void {
    this.check(phys, len);
    let off = phys - this.base;
    let done = 0;
    while (done < len) {
      const ci = Math.floor(off / CHUNK);
      const co = off & CHUNK_MASK;
      const n = Math.min(len - done, CHUNK - co);
      const c = this.#bytes[ci];
      if (c === undefined) dst.fill(0, dstOff + done, dstOff + done + n);
      else copyBytes(dst, dstOff + done, c, co, n);
      done += n;
      off += n;
    }
  }

  /**
   * Copies `len` bytes from `src[srcOff..]` to `phys`. `held`: the caller knows the last
   * `held` of them to be what memory holds there already (a frame written again over
   * itself, src/machine/row-notes.ts): they are not copied, but count as written
   * ({@link writeSeq}, {@link lastWriteIn}).
   */
  write(phys: number, src: Uint8Array, srcOff = 0, len = src.length - srcOff, held = 0): void {
    this.check(phys, len);
    this.#writeSeq++;
    if (len > 0) this.#stamp(phys - this.base, len);
    let off = phys - this.base;
    let done = 0;
    const copy = len - Math.min(len, Math.max(0, held));
    while (done < copy) {
      const ci = Math.floor(off / CHUNK);
      const co = off & CHUNK_MASK;
      const n = Math.min(copy - done, CHUNK - co);
      const from = srcOff + done;
      // Zeros stored into a zero page leave it one.
      if (this.#bytes[ci] !== undefined || !allZero(src, from, from + n)) {
        if (
          n === CHUNK &&
          this.#watched !== undefined &&
          this.#watched[ci] === 1 &&
          this.#mayReplace(ci)
        )
          this.#replace(ci, src, from);
        else copyBytes(this.#chunk(ci, n === CHUNK), co, src, from, n);
      }
      done += n;
      off += n;
    }
  }

  /**
   * The host bytes of the 1 MiB chunk of DRAM that holds `[phys, phys+len)`, without a
   * copy: the range is at `(phys - base) % 1 MiB` in them. Of zeros for a chunk never
   * written; undefined when the range does not lie within one chunk (the caller copies
   * with {@link read}). For a reader that uses the bytes at once (a device hashing or
   * converting what it reads) and only those of the range: the bytes are read-only and
   * hold what memory holds until memory is next written. Why the whole chunk: a view of
   * the range is an object per row read, thousands a frame.
   */
  chunkView(phys: number, len: number): Uint8Array | undefined {
    this.check(phys, len);
    const off = phys - this.base;
    if ((off & CHUNK_MASK) + len > CHUNK) return undefined;
    const c = this.#bytes[Math.floor(off / CHUNK)];
    if (c !== undefined) return c;
    zeroChunk ??= new Uint8Array(CHUNK);
    return zeroChunk;
  }

  /** Sets `len` bytes at `phys` to `value`. */
  fill(phys: number, len: number, value: number): void {
    this.check(phys, len);
    this.#writeSeq++;
    if (len > 0) this.#stamp(phys - this.base, len);
    let off = phys - this.base;
    let done = 0;
    while (done < len) {
      const ci = Math.floor(off / CHUNK);
      const co = off & CHUNK_MASK;
      const n = Math.min(len - done, CHUNK - co);
      if (value === 0 && n === CHUNK) this.#drop(ci);
      else if (value !== 0 || this.#bytes[ci] !== undefined)
        this.#chunk(ci, n === CHUNK).fill(value, co, co + n);
      done += n;
      off += n;
    }
  }

  /** Reads `len` bytes into a new array (convenience for tests and reports). */
  slice(phys: number, len: number): Uint8Array {
    const out = new Uint8Array(len);
    this.read(phys, len, out);
    return out;
  }

  /**
   * The 32-bit word view and word index of the aligned line at `phys`, for the cache
   * model's line fills and write-backs (a line never crosses a 1 MiB chunk).
   * Returns undefined for a chunk never written (it reads as zero).
   */
  lineWords(phys: number, forWrite: boolean): { words: Int32Array | undefined; index: number } {
    const off = phys - this.base;
    const ci = Math.floor(off / CHUNK);
    const index = (off & CHUNK_MASK) >>> 2;
    if (forWrite) {
      this.#chunk(ci);
      this.#writeSeq++;
      this.#stamp(off, 1);
    }
    return { words: this.#words[ci], index };
  }

  /**
   * Word view of chunk `ci` (allocating it), for hot loops that hoist the lookup. For
   * writing: use {@link peekChunkWords} to read.
   */
  chunkWords(ci: number): Int32Array {
    this.#chunk(ci);
    this.#writeSeq++;
    this.#chunkSeq[ci] = this.#writeSeq;
    return this.#words[ci]!;
  }

  /** Word view of chunk `ci` or undefined if it was never written. */
  peekChunkWords(ci: number): Int32Array | undefined {
    return this.#words[ci];
  }

  /**
   * Makes `w` the watcher of this memory's chunks; false (nothing changed) when there
   * is one already (several caches over one memory in tests: the others copy eagerly).
   */
  attachWatcher(w: ChunkWatcher): boolean {
    if (this.#watcher !== undefined) return false;
    this.#watcher = w;
    return true;
  }

  /** Ends `w`'s watch (a released cache): it watches no chunk any more. */
  detachWatcher(w: ChunkWatcher): void {
    if (this.#watcher !== w) return;
    this.#watcher = undefined;
    this.#watched = undefined;
  }

  /**
   * The watcher is told before chunk `ci` next changes (once: the watch ends there).
   * Returns whether the chunk was not watched already.
   */
  watch(ci: number): boolean {
    this.#watched ??= new Uint8Array(this.#bytes.length);
    if (this.#watched[ci] === 1) return false;
    this.#watched[ci] = 1;
    return true;
  }

  /** Ends the watch of chunk `ci`. */
  unwatch(ci: number): void {
    if (this.#watched !== undefined) this.#watched[ci] = 0;
  }

  /** Takes back the words {@link ChunkWatcher.replaced} handed out (their host memory is reused). */
  recycle(words: Int32Array): void {
    const c = new Uint8Array(words.buffer, words.byteOffset, CHUNK);
    if (this.#spares.length < SPARES_MAX) this.#spares.push(c);
    else if (chunkPool.length < POOL_MAX) chunkPool.push(c);
  }

  /**
   * Host chunks given back by the watcher, for this memory's next whole-chunk
   * replacement: kept here rather than in the shared pool, which fresh chunks elsewhere
   * would drain, so that replacements cost host page faults only for as many chunks as
   * are replaced at once, once.
   */
  readonly #spares: Uint8Array[] = [];
  /** Whole-chunk writes of watched chunks that held data (see {@link #mayReplace}). */
  #replaceable = 0;

  /**
   * Whether a write of all of watched chunk `ci` goes to other host memory: always for a
   * chunk never backed (it takes a chunk anyway); else with a spare chunk, or once this
   * memory has had REPLACE_AFTER such writes. Why wait: a fresh 1 MiB chunk costs its
   * host page faults (several milliseconds on a VM), the copies it saves tens of
   * microseconds per write; only a machine that streams whole chunks again and again (a
   * camera's frames, a long DMA benchmark) earns it back. Until then the watcher copies
   * what it needs first (ChunkWatcher.beforeChange) and the write lands in place.
   */
  #mayReplace(ci: number): boolean {
    if (this.#bytes[ci] === undefined || this.#spares.length > 0) return true;
    return ++this.#replaceable > this.replaceAfter;
  }

  /**
   * A write of all of watched chunk `ci`: the bytes go to other host memory (a spare,
   * the pool's or a fresh chunk), and the old host memory to the watcher, which keeps
   * what it needs of it without a copy and gives it back as a spare.
   */
  #replace(ci: number, src: Uint8Array, from: number): void {
    const old = this.#words[ci];
    const c =
      (old === undefined ? undefined : this.#spares.pop()) ?? chunkPool.pop() ?? hostChunk(CHUNK);
    copyBytes(c, 0, src, from, CHUNK);
    this.#bytes[ci] = c;
    this.#words[ci] = chunkWords(c);
    this.#watched![ci] = 0;
    this.#watcher!.replaced(ci, old);
  }

  /** Tells the watcher that chunk `ci` is about to change, if it watches it. */
  #changing(ci: number): void {
    const w = this.#watched;
    if (w !== undefined && w[ci] === 1) {
      w[ci] = 0;
      this.#watcher!.beforeChange(ci);
    }
  }

  /**
   * Gives all host memory back to the pool: the memory reads as zero afterwards. For a
   * machine whose run is over (nothing may hold a chunk's view across this call).
   */
  release(): void {
    for (let ci = 0; ci < this.#bytes.length; ci++) this.#drop(ci);
    for (const b of this.#spares) if (chunkPool.length < POOL_MAX) chunkPool.push(b);
    this.#spares.length = 0;
  }

  /** Chunk `ci` reads as zero again; its host memory goes to the pool. */
  #drop(ci: number): void {
    const c = this.#bytes[ci];
    if (c === undefined) return;
    this.#changing(ci);
    this.#writeSeq++;
    this.#chunkSeq[ci] = this.#writeSeq;
    this.#bytes[ci] = undefined;
    this.#words[ci] = undefined;
    if (chunkPool.length < POOL_MAX) chunkPool.push(c);
  }

  /**
   * Chunk `ci`, backed (from the pool, cleared, or fresh) if it was not. `whole`: the
   * caller is about to write every byte of it, so a pooled chunk is not cleared first.
   */
  #chunk(ci: number, whole = false): Uint8Array {
    this.#changing(ci);
    let c = this.#bytes[ci];
    if (c === undefined) {
      const pooled = chunkPool.pop();
      c = pooled ?? hostChunk(CHUNK);
      if (pooled !== undefined && !whole) c.fill(0);
      this.#bytes[ci] = c;
      this.#words[ci] = chunkWords(c);
    }
    return c;
  }
}

export const MEMORY_CHUNK_SHIFT = CHUNK_SHIFT;
