/**
 * The lazily allocated arrays of src/machine/chunked.ts: a flat view (one typed array of
 * every index, the chunks its views) must read and write the same entries as the chunks,
 * whenever it is made, and a released array's flat memory must come back to the next
 * one as if new.
 */

import assert from "node:assert/strict";
import { describe, test } from "node:test";
import fc from "fast-check";
import { CHUNK_SIZE, ChunkedI32, ChunkedU16 } from "../../src/machine/chunked.js";

/** Four chunks and a part, so that views, ranges and the rounding up all show. */
const LENGTH = 4 * CHUNK_SIZE + 100;

type Op =
  | { kind: "set"; i: number; v: number }
  | { kind: "fill"; from: number; n: number; v: number }
  | { kind: "flat"; from: number; n: number; writes: { at: number; v: number }[] };

const index = fc.integer({ min: 0, max: LENGTH - 1 });
const value = fc.integer({ min: -5, max: 5 });
const opArb: fc.Arbitrary<Op> = fc.oneof(
  fc.record({ kind: fc.constant("set" as const), i: index, v: value }),
  fc.record({
    kind: fc.constant("fill" as const),
    from: index,
    n: fc.integer({ min: 0, max: 2 * CHUNK_SIZE }),
    v: value,
  }),
  fc.record({
    kind: fc.constant("flat" as const),
    from: index,
    n: fc.integer({ min: 1, max: CHUNK_SIZE }),
    writes: fc.array(fc.record({ at: fc.nat(), v: value }), { maxLength: 8 }),
  }),
);

describe("Chunked arrays with a flat view", () => {
  test("the view and the chunks are one array: every entry equals a plain model's", () => {
    fc.assert(
      fc.property(fc.array(opArb, { maxLength: 25 }), (ops) => {
        const a = new ChunkedI32(-1, LENGTH);
        const model = new Int32Array(LENGTH).fill(-1);
        for (const op of ops) {
          if (op.kind === "set") {
            a.set(op.i, op.v);
            model[op.i] = op.v;
          } else if (op.kind === "fill") {
            const to = Math.min(LENGTH, op.from + op.n);
            a.fillRange(op.from, to, op.v);
            model.fill(op.v, op.from, to);
          } else {
            const to = Math.min(LENGTH, op.from + op.n);
            const flat = a.flatView(op.from, to);
            assert.ok(flat !== undefined);
            // Within the range asked for, the view reads what the array holds...
            for (let i = op.from; i < to; i++) assert.equal(flat[i], model[i]);
            // ...and writes through to it.
            for (const w of op.writes) {
              const i = op.from + (w.at % (to - op.from));
              flat[i] = w.v;
              model[i] = w.v;
            }
          }
        }
        for (let i = 0; i < LENGTH; i += 97) assert.equal(a.get(i), model[i]);
        for (let i = 0; i < LENGTH; i++) if (a.get(i) !== model[i]) assert.fail(`entry ${i}`);
        a.release();
      }),
      { numRuns: 60 },
    );
  });

  test("a released array's flat memory comes back to the next one as new", () => {
    const a = new ChunkedU16(0, LENGTH);
    const flat = a.flatView(CHUNK_SIZE + 5, CHUNK_SIZE + 10);
    assert.ok(flat !== undefined);
    flat[CHUNK_SIZE + 7] = 9;
    a.set(3 * CHUNK_SIZE, 4);
    a.release();
    const b = new ChunkedU16(0, LENGTH);
    const again = b.flatView(0, LENGTH);
    assert.ok(again !== undefined);
    assert.equal(again, flat, "the pooled flat array is reused");
    for (let i = 0; i < LENGTH; i++) if (again[i] !== 0) assert.fail(`entry ${i} is ${again[i]}`);
    b.release();
    // With an initial value other than zero, a new chunk of a reused flat array holds it.
    const c = new ChunkedI32(-1, LENGTH);
    c.set(1, 2);
    c.flatView(0, 1);
    c.release();
    const d = new ChunkedI32(-1, LENGTH);
    const v = d.flatView(0, LENGTH);
    assert.ok(v !== undefined);
    for (let i = 0; i < LENGTH; i++) if (v[i] !== -1) assert.fail(`entry ${i} is ${v[i]}`);
    d.release();
  });

  test("an unbounded array has no flat view", () => {
    assert.equal(new ChunkedI32(-1).flatView(0, 10), undefined);
  });
});
