/**
 * The shadow's per-line epochs (`LineEpochs`, which records a write of whole chunks as
 * one epoch per chunk and fills the entries when first touched) against a plain
 * `ChunkedU32` filled at once: every read, through `get` or a chunk's array, must see the
 * same values after any sequence of fills, stores and chunk writes.
 */

import assert from "node:assert/strict";
import { test } from "node:test";
import fc from "fast-check";
import { CHUNK_SIZE, ChunkedU32 } from "../../src/machine/chunked.js";
import { LineEpochs } from "../../src/machine/coherency.js";

const CHUNKS = 4;
const N = CHUNKS * CHUNK_SIZE;

/** An index near a chunk boundary (where whole-chunk and partial fills meet), or anywhere. */
const index = fc.oneof(
  fc
    .tuple(fc.integer({ min: 0, max: CHUNKS }), fc.integer({ min: -3, max: 3 }))
    .map(([c, d]) => Math.min(N, Math.max(0, c * CHUNK_SIZE + d))),
  fc.integer({ min: 0, max: N }),
);
const value = fc.oneof(fc.constant(0), fc.integer({ min: 1, max: 9 }), fc.constant(2 ** 32 - 1));

type Op =
  | { kind: "fill"; a: number; b: number; v: number }
  | { kind: "set" | "writeChunk"; i: number; v: number }
  | { kind: "get" | "readChunk"; i: number }
  | { kind: "release" };

const opArb: fc.Arbitrary<Op> = fc.oneof(
  {
    weight: 4,
    arbitrary: fc.record({ kind: fc.constant("fill" as const), a: index, b: index, v: value }),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constantFrom("set" as const, "writeChunk" as const),
      i: fc.integer({ min: 0, max: N - 1 }),
      v: value,
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constantFrom("get" as const, "readChunk" as const),
      i: fc.integer({ min: 0, max: N - 1 }),
    }),
  },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant("release" as const) }) },
);

/** What a chunk's array says of index `i` (undefined array: the initial value). */
function viaChunk(c: ChunkedU32, i: number): number {
  const a = c.chunkOf(i);
  return a === undefined ? 0 : a[i % CHUNK_SIZE]!;
}

test("LineEpochs reads like a ChunkedU32 filled at once", () => {
  fc.assert(
    fc.property(fc.array(opArb, { maxLength: 30 }), (ops) => {
      let lazy = new LineEpochs();
      let plain = new ChunkedU32();
      for (const o of ops) {
        if (o.kind === "fill") {
          const from = Math.min(o.a, o.b);
          const to = Math.max(o.a, o.b);
          lazy.fillRange(from, to, o.v);
          plain.fillRange(from, to, o.v);
        } else if (o.kind === "set") {
          lazy.set(o.i, o.v);
          plain.set(o.i, o.v);
        } else if (o.kind === "writeChunk") {
          lazy.writableChunkOf(o.i)[o.i % CHUNK_SIZE] = o.v;
          plain.writableChunkOf(o.i)[o.i % CHUNK_SIZE] = o.v;
        } else if (o.kind === "get") {
          assert.equal(lazy.get(o.i), plain.get(o.i), `get(${o.i})`);
        } else if (o.kind === "readChunk") {
          assert.equal(viaChunk(lazy, o.i), viaChunk(plain, o.i), `chunkOf(${o.i})`);
        } else {
          lazy.release();
          plain.release();
          lazy = new LineEpochs();
          plain = new ChunkedU32();
        }
      }
      // Every index, through get and through the arrays (which fills the pending chunks).
      for (let i = 0; i < N; i++) assert.equal(lazy.get(i), plain.get(i), `get(${i}) at the end`);
      for (let i = 0; i < N; i++)
        assert.equal(viaChunk(lazy, i), viaChunk(plain, i), `chunkOf(${i}) at the end`);
    }),
    { numRuns: 150 },
  );
});

test("a pending chunk's array is filled once, whether parked or taken from the free list", () => {
  // Chunks on the free list (a released array's), so that the pending chunks take them.
  const old = new ChunkedU32();
  for (let ci = 0; ci < 3; ci++) old.set(ci * CHUNK_SIZE, 5);
  // Its arrays, to tell one taken from the free list from a fresh allocation (which fills
  // once too, and so would pass the counts below on its own).
  const released = new Set<Uint32Array | undefined>();
  for (let ci = 0; ci < 3; ci++) released.add(old.chunkOf(ci * CHUNK_SIZE));
  assert.ok(!released.has(undefined));
  old.release();
  // Fills of whole chunks, counted on Uint32Array (the chunks' kind) while the test runs.
  let fills = 0;
  const proto = Uint32Array.prototype as { fill: Uint32Array["fill"] };
  const fill = proto.fill;
  Object.defineProperty(Uint32Array.prototype, "fill", {
    configurable: true,
    writable: true,
    value: function (this: Uint32Array, v: number, from?: number, to?: number) {
      if (this.length === CHUNK_SIZE && (from ?? 0) === 0 && (to ?? CHUNK_SIZE) === CHUNK_SIZE)
        fills++;
      return fill.call(this, v, from, to);
    },
  });
  try {
    const e = new LineEpochs();
    // Chunk 0 never allocated (its array from the free list), chunk 1 parked.
    e.set(CHUNK_SIZE + 3, 1);
    const before = fills;
    e.fillRange(0, 2 * CHUNK_SIZE, 7);
    assert.equal(fills, before, "a whole-chunk write fills nothing yet");
    assert.equal(e.get(5), 7);
    assert.equal(viaChunk(e, 5), 7);
    assert.equal(fills, before + 1, "chunk 0: one fill");
    assert.ok(released.has(e.chunkOf(5)), "chunk 0's array came from the free list");
    assert.equal(viaChunk(e, CHUNK_SIZE + 3), 7);
    assert.equal(fills, before + 2, "chunk 1 (parked): one fill");
    e.release();
  } finally {
    delete (Uint32Array.prototype as { fill?: unknown }).fill;
  }
  assert.equal(Uint32Array.prototype.fill, fill);
});
