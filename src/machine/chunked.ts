/**
 * Lazily allocated typed arrays indexed by a large number (a physical line or page).
 *
 * A simulated machine may have gigabytes of RAM; per-line shadow state for all of it
 * would cost more host memory than the machine has. These arrays allocate one chunk
 * the first time any index in it is written and read as zero elsewhere.
 */

import { hostBytes, hostChunk } from "./host-memory.js";

const CHUNK_BITS = 15;
const CHUNK_LEN = 1 << CHUNK_BITS;
const CHUNK_MASK = CHUNK_LEN - 1;

type TypedCtor<T> = {
  new (buffer: ArrayBufferLike, byteOffset: number, length: number): T;
  readonly BYTES_PER_ELEMENT: number;
};
interface TypedLike {
  [index: number]: number;
  readonly length: number;
  readonly buffer: ArrayBufferLike;
  readonly byteOffset: number;
  fill(value: number, start?: number, end?: number): this;
  set(values: ArrayLike<number>, offset?: number): void;
}

/**
 * The shared part. `get` and `set` are written out in each concrete class with the same
 * body. Why: a method shared by the Uint32, Int32 and Uint16 variants would see three
 * typed-array kinds at one element access and stay polymorphic (slower) on hot paths.
 */
abstract class Chunked<T extends TypedLike> {
  protected readonly chunks: (T | undefined)[] = [];
  readonly #ctor: TypedCtor<T>;
  protected readonly initial: number;
  /** Indices the array may be asked for ({@link flatView}); 0: unbounded. */
  readonly #length: number;
  /** The contiguous backing of every chunk, once {@link flatView} made it. */
  #flat: T | undefined;

  constructor(ctor: TypedCtor<T>, initial = 0, length = 0) {
    this.#ctor = ctor;
    this.initial = initial;
    // Whole chunks: each chunk is a view of CHUNK_LEN entries of the flat array.
    this.#length = Math.ceil(length / CHUNK_LEN) * CHUNK_LEN;
  }

  /**
   * One typed array of every index, each entry at its own place, with the chunks holding
   * `[from, to)` allocated: their entries read and write through it. Undefined when the
   * array is unbounded or larger than {@link FLAT_MAX}. Why: a loop over random indices
   * (a device write's speculative fills, tracked DMA's 16 Ki lines over 32 MiB) pays for
   * each access through a chunk a load of the chunk and of its view's bounds and data
   * before the entry's own host cache miss, and the host overlaps fewer of those misses:
   * tracked DMA's fills 1.59-1.62 -> 1.20-1.25 ms through one view. An entry of a chunk
   * not allocated is 0 there, not the initial value: callers read only `[from, to)` and
   * indices whose chunks they know to be allocated. Made at the first call: the chunks
   * so far are copied into it and become views of it; the host pages of the rest are
   * never touched (the memory is the kernel's zero pages until written).
   */
  flatView(from: number, to: number): T | undefined {
    if (this.#flat === undefined) {
      if (this.#length === 0 || this.#length > FLAT_MAX) return undefined;
      const ctor = this.#ctor;
      const pool = flatPool.get(ctor);
      const i = pool === undefined ? -1 : pool.findIndex((f) => f.length === this.#length);
      const flat = i >= 0 ? (pool!.splice(i, 1)[0] as T) : flatArray(ctor, this.#length);
      const free = freeChunks(ctor);
      for (let ci = 0; ci < this.chunks.length; ci++) {
        const c = this.chunks[ci];
        if (c === undefined) continue;
        const view = this.#view(flat, ci);
        view.set(c);
        this.chunks[ci] = view;
        if (free.length < FREE_CHUNKS_MAX) free.push(c);
      }
      this.#flat = flat;
    }
    for (let ci = from >>> CHUNK_BITS; ci < Math.ceil(to / CHUNK_LEN); ci++) this.chunk(ci);
    return this.#flat;
  }

  /** Chunk `ci`'s place in `flat`. */
  #view(flat: T, ci: number): T {
    const ctor = this.#ctor;
    return new ctor(
      flat.buffer,
      flat.byteOffset + ci * CHUNK_LEN * ctor.BYTES_PER_ELEMENT,
      CHUNK_LEN,
    );
  }

  abstract get(i: number): number;

  abstract set(i: number, v: number): void;

  /** Sets `[from, to)` to `v`, chunk by chunk (a typed-array fill per chunk). */
  fillRange(from: number, to: number, v: number): void {
    let i = from;
    while (i < to) {
      const ci = i >>> CHUNK_BITS;
      const end = Math.min(to, (ci + 1) * CHUNK_LEN);
      if (v === this.initial && this.chunks[ci] === undefined) {
        i = end;
        continue;
      }
      this.chunk(ci).fill(v, i & CHUNK_MASK, end - 1 - ci * CHUNK_LEN + 1);
      i = end;
    }
  }

  /** The chunk holding index `i`, or undefined if nothing there was ever written. */
  chunkOf(i: number): T | undefined {
    return this.chunks[i >>> CHUNK_BITS];
  }

  /** The chunk holding index `i`, allocated if need be (for loops that write many entries). */
  writableChunkOf(i: number): T {
    return this.chunk(i >>> CHUNK_BITS);
  }

  /** Number of allocated chunks (for memory accounting in benchmarks). */
  get allocatedChunks(): number {
    let n = 0;
    for (const c of this.chunks) if (c !== undefined) n++;
    return n;
  }

  protected chunk(ci: number): T {
    return this.chunks[ci] ?? this.newChunk(ci, this.initial);
  }

  /**
   * Allocates chunk `ci` (not allocated yet) with every entry `v`, in at most one fill:
   * a subclass's chunk that holds another value than the initial one when allocated
   * ({@link LineEpochs}' pending epoch) is not filled twice.
   */
  protected newChunk(ci: number, v: number): T {
    let c: T | undefined;
    if (this.#flat !== undefined) {
      // A pooled or new flat array is zero outside its allocated chunks.
      c = this.#view(this.#flat, ci);
      if (v !== 0) c.fill(v);
    } else {
      c = freeChunks(this.#ctor).pop() as T | undefined;
      if (c !== undefined) c.fill(v);
      else {
        // A piece of a huge-page slab (./host-memory.ts): fewer host page faults.
        const ctor = this.#ctor;
        const host = hostChunk(CHUNK_LEN * ctor.BYTES_PER_ELEMENT);
        c = new ctor(host.buffer, host.byteOffset, CHUNK_LEN);
        if (v !== 0) c.fill(v);
      }
    }
    this.chunks[ci] = c;
    return c;
  }

  /**
   * Gives every chunk to the next arrays of this kind (Machine.release): a machine per
   * run (the main job, sweeps) would otherwise fault in fresh host memory for its shadow
   * state every run. Nothing may use this array afterwards.
   */
  release(): void {
    const flat = this.#flat;
    if (flat !== undefined) {
      // Zero again where written, for the next array of this length.
      for (const c of this.chunks) c?.fill(0);
      const pool = flatPool.get(this.#ctor) ?? [];
      flatPool.set(this.#ctor, pool);
      if (pool.length >= FLAT_POOL_MAX) pool.shift(); // the oldest goes, as cache.ts's pools
      pool.push(flat);
      this.#flat = undefined;
    } else {
      const free = freeChunks(this.#ctor);
      for (const c of this.chunks)
        if (c !== undefined && free.length < FREE_CHUNKS_MAX) free.push(c);
    }
    this.chunks.length = 0;
  }
}

/**
 * The largest {@link Chunked.flatView}, in entries: 2^28 (1 GiB of Int32 for 16 GiB of
 * RAM in 64-byte lines), virtual memory of which only the written pages are backed.
 */
const FLAT_MAX = 2 ** 28;
/** Released flat arrays by kind, all zero, for the next array of the same length. */
const flatPool = new Map<unknown, TypedLike[]>();
const FLAT_POOL_MAX = 4;

/**
 * A new flat array of `length` entries, on the host's huge pages where it gives them
 * (./host-memory.ts): a chunk's first write then faults in one 2 MiB page instead of 32
 * small ones; pages never written stay unbacked.
 */
function flatArray<T>(ctor: TypedCtor<T>, length: number): T {
  const bytes = hostBytes(length * ctor.BYTES_PER_ELEMENT);
  return new ctor(bytes.buffer, bytes.byteOffset, length);
}

/** Released chunks by array kind, at most FREE_CHUNKS_MAX of each (128 KiB each at most). */
const freeChunkLists = new Map<unknown, TypedLike[]>();
const FREE_CHUNKS_MAX = 512;

function freeChunks(ctor: unknown): TypedLike[] {
  let l = freeChunkLists.get(ctor);
  if (l === undefined) {
    l = [];
    freeChunkLists.set(ctor, l);
  }
  return l;
}

export const CHUNK_SHIFT = CHUNK_BITS;
export const CHUNK_SIZE = CHUNK_LEN;

/** Lazily allocated Uint32 array. */
export class ChunkedU32 extends Chunked<Uint32Array> {
  constructor(initial = 0) {
    super(Uint32Array, initial);
  }

  get(i: number): number {
    const c = this.chunks[i >>> CHUNK_BITS];
    return c === undefined ? this.initial : c[i & CHUNK_MASK]!;
  }

  set(i: number, v: number): void {
    this.chunk(i >>> CHUNK_BITS)[i & CHUNK_MASK] = v;
  }
}

/** Lazily allocated Int32 array. */
export class ChunkedI32 extends Chunked<Int32Array> {
  /** `length`: the indices a {@link flatView} may cover (0: none, the array is unbounded). */
  constructor(initial = 0, length = 0) {
    super(Int32Array, initial, length);
  }

  get(i: number): number {
    const c = this.chunks[i >>> CHUNK_BITS];
    return c === undefined ? this.initial : c[i & CHUNK_MASK]!;
  }

  set(i: number, v: number): void {
    this.chunk(i >>> CHUNK_BITS)[i & CHUNK_MASK] = v;
  }
}

/** Lazily allocated Uint16 array. */
export class ChunkedU16 extends Chunked<Uint16Array> {
  /** `length`: the indices a {@link flatView} may cover (0: none, the array is unbounded). */
  constructor(initial = 0, length = 0) {
    super(Uint16Array, initial, length);
  }

  get(i: number): number {
    const c = this.chunks[i >>> CHUNK_BITS];
    return c === undefined ? this.initial : c[i & CHUNK_MASK]!;
  }

  set(i: number, v: number): void {
    this.chunk(i >>> CHUNK_BITS)[i & CHUNK_MASK] = v;
  }
}
