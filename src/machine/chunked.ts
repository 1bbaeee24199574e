/**
 * Lazily allocated typed arrays indexed by a large number (a physical line or page).
 *
 * A simulated machine may have gigabytes of RAM; per-line shadow state for all of it
 * would cost more host memory than the machine has. These arrays allocate one chunk
 * the first time any index in it is written and read as zero elsewhere.
 */

import { hostChunk } from "./host-memory.js";

const CHUNK_BITS = 15;
const CHUNK_LEN = 1 << CHUNK_BITS;
const CHUNK_MASK = CHUNK_LEN - 1;

type TypedCtor<T> = {
  new (buffer: ArrayBuffer, byteOffset: number, length: number): T;
  readonly BYTES_PER_ELEMENT: number;
};
interface TypedLike {
  [index: number]: number;
  fill(value: number, start?: number, end?: number): this;
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

  constructor(ctor: TypedCtor<T>, initial = 0) {
    this.#ctor = ctor;
    this.initial = initial;
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
    let c = this.chunks[ci];
    if (c === undefined) {
      const free = freeChunks(this.#ctor);
      c = free.pop() as T | undefined;
      if (c !== undefined) c.fill(this.initial);
      else {
        // A piece of a huge-page slab (./host-memory.ts): fewer host page faults.
        const ctor = this.#ctor;
        const host = hostChunk(CHUNK_LEN * ctor.BYTES_PER_ELEMENT);
        c = new ctor(host.buffer, host.byteOffset, CHUNK_LEN);
        if (this.initial !== 0) c.fill(this.initial);
      }
      this.chunks[ci] = c;
    }
    return c;
  }

  /**
   * Gives every chunk to the next arrays of this kind (Machine.release): a machine per
   * run (the main job, sweeps) would otherwise fault in fresh host memory for its shadow
   * state every run. Nothing may use this array afterwards.
   */
  release(): void {
    const free = freeChunks(this.#ctor);
    for (const c of this.chunks) if (c !== undefined && free.length < FREE_CHUNKS_MAX) free.push(c);
    this.chunks.length = 0;
  }
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
  constructor(initial = 0) {
    super(Int32Array, initial);
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
  constructor(initial = 0) {
    super(Uint16Array, initial);
  }

  get(i: number): number {
    const c = this.chunks[i >>> CHUNK_BITS];
    return c === undefined ? this.initial : c[i & CHUNK_MASK]!;
  }

  set(i: number, v: number): void {
    this.chunk(i >>> CHUNK_BITS)[i & CHUNK_MASK] = v;
  }
}
