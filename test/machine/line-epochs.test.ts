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
