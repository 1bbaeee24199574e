/**
 * Rows regrouped from the pieces a device's in-place read hands out (RowGather), and
 * the CRC of rows given one at a time (Crc32RowHasher): for random frames of repeated,
 * nearly repeated and new rows cut into random pieces, every row arrives whole, in
 * order, with the row before it still intact, and the CRC is crc32 of the packed rows.
 */

import assert from "node:assert/strict";
import { describe, test } from "node:test";
import fc from "fast-check";
import { Crc32RowHasher, crc32 } from "../../src/lib/crc32.js";
import { RowGather } from "../../src/lib/row-gather.js";

/** A frame of `rows` rows: each new, a copy of the one above, or a copy with one byte changed. */
const frameArb = fc
  .record({
    rowBytes: fc.integer({ min: 1, max: 40 }),
    kinds: fc.array(fc.constantFrom("new", "repeat", "near"), { minLength: 1, maxLength: 30 }),
    seed: fc.integer({ min: 1, max: 0xffff }),
    cuts: fc.array(fc.integer({ min: 0, max: 2000 }), { maxLength: 40 }),
  })
  .map(({ rowBytes, kinds, seed, cuts }) => {
    const out = new Uint8Array(rowBytes * kinds.length);
    let x = seed;
    const next = (): number => {
      x = (x * 1103515245 + 12345) >>> 0;
      return x >>> 24;
    };
    kinds.forEach((k, y) => {
      const at = y * rowBytes;
      if (y > 0 && k !== "new") {
        out.copyWithin(at, at - rowBytes, at);
        if (k === "near") out[at + (next() % rowBytes)] ^= 1 + (next() % 255);
      } else for (let i = 0; i < rowBytes; i++) out[at + i] = next();
    });
    const bounds = [...new Set(cuts.map((c) => c % (out.length + 1)))].sort((a, b) => a - b);
    return { rowBytes, frame: out, bounds };
  });

/** `frame` cut at `bounds`, each piece in a fresh array (as views of separate chunks would be). */
function pieces(frame: Uint8Array, bounds: readonly number[]): { bytes: Uint8Array; at: number }[] {
  const out: { bytes: Uint8Array; at: number }[] = [];
  let from = 0;
  for (const b of [...bounds, frame.length]) {
    if (b > from) out.push({ bytes: frame.slice(from, b), at: from });
    from = Math.max(from, b);
  }
  return out;
}

describe("RowGather", () => {
  test("every row whole, in order, the one before it intact; the CRC of the rows is crc32 of the frame", () => {
    fc.assert(
      fc.property(frameArb, ({ rowBytes, frame, bounds }) => {
        const rows = frame.length / rowBytes;
        const hasher = new Crc32RowHasher(rowBytes);
        let seen = 0;
        let prev: { bytes: Uint8Array; off: number } | undefined;
        const g = new RowGather(rowBytes, (bytes, off, y) => {
          assert.equal(y, seen++);
          const want = frame.subarray(y * rowBytes, (y + 1) * rowBytes);
          assert.deepEqual(bytes.subarray(off, off + rowBytes), want);
          if (prev !== undefined)
            assert.deepEqual(
              prev.bytes.subarray(prev.off, prev.off + rowBytes),
              frame.subarray((y - 1) * rowBytes, y * rowBytes),
              "the row above is still there",
            );
          prev = { bytes, off };
          hasher.row(bytes, off);
        });
        // Every other piece as part of a larger array, with other bytes around it (a
        // device's in-place read hands out DRAM's chunk and where the piece lies in it).
        for (const p of pieces(frame, bounds)) {
          if (p.at % 2 === 0) {
            g.push(p.bytes, p.at);
            continue;
          }
          const pad = (p.at % 5) + 1;
          const held = new Uint8Array(pad + p.bytes.length + 3).fill(0xee);
          held.set(p.bytes, pad);
          g.push(held, p.at, pad, p.bytes.length);
        }
        assert.equal(seen, rows);
        assert.equal(g.length, frame.length);
        assert.equal(hasher.value, crc32(frame));
      }),
      { numRuns: 500 },
    );
  });

  test("pieces out of order are refused", () => {
    const g = new RowGather(4, () => {});
    g.push(new Uint8Array(3), 0);
    assert.throws(() => g.push(new Uint8Array(3), 4), /piece at 4 after 3/);
  });
});
