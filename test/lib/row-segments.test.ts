/**
 * A frame's rows as DMA segments in one pass equal dmaSegmentsSlice row by row, for any
 * segments (empty ones included), geometry and rows past the buffer's end; the lists
 * kept per buffer and geometry are the lists of what is asked now.
 */

import assert from "node:assert/strict";
import { describe, test } from "node:test";
import fc from "fast-check";
import { dmaSegmentsSlice } from "../../src/dma/scatterlist.js";
import { DmaRowLists, dmaRowSegments } from "../../src/lib/row-segments.js";
import type { DmaSegment } from "../../src/machine/device.js";

const segments = fc.array(
  fc.record({
    dmaAddr: fc.nat(1 << 20),
    len: fc.oneof(fc.constant(0), fc.integer({ min: 1, max: 40 })),
  }),
  { maxLength: 12 },
);
const geometry = fc.record({
  base: fc.nat(30),
  pitch: fc.nat(24),
  rowBytes: fc.nat(24),
  height: fc.nat(12),
});

/** The definition: dmaSegmentsSlice of each row. */
function perRow(
  segs: readonly DmaSegment[],
  g: { base: number; pitch: number; rowBytes: number; height: number },
): DmaSegment[] {
  const out: DmaSegment[] = [];
  for (let y = 0; y < g.height; y++) dmaSegmentsSlice(segs, g.base + y * g.pitch, g.rowBytes, out);
  return out;
}

describe("dmaRowSegments", () => {
  test("equals dmaSegmentsSlice row by row", () => {
    fc.assert(
      fc.property(segments, geometry, (segs, g) => {
        assert.deepEqual(
          dmaRowSegments(segs, g.base, g.pitch, g.rowBytes, g.height),
          perRow(segs, g),
        );
      }),
      { numRuns: 2000 },
    );
  });
});

describe("DmaRowLists", () => {
  test("gives the rows of what is asked, the same array again for the same buffer and geometry", () => {
    fc.assert(
      fc.property(
        fc.array(segments, { minLength: 1, maxLength: 4 }),
        // Geometries that differ from a first one in one field each.
        geometry.chain((g0) =>
          fc
            .array(
              fc.tuple(fc.constantFrom("base", "pitch", "rowBytes", "height" as const), fc.nat(24)),
              { maxLength: 3 },
            )
            .map((changes) => [g0, ...changes.map(([k, v]) => ({ ...g0, [k]: v }))]),
        ),
        fc.array(fc.tuple(fc.nat(3), fc.nat(2), fc.boolean()), { minLength: 1, maxLength: 30 }),
        fc.integer({ min: 1, max: 5 }),
        (buffers, geometries, asks, max) => {
          const lists = new DmaRowLists(max);
          for (const [b, gi, fresh] of asks) {
            const segs = buffers[b % buffers.length]!;
            const g = geometries[gi % geometries.length]!;
            // A fresh array with the same segments is the same buffer.
            const asked = fresh ? segs.map((s) => ({ ...s })) : segs;
            const rows = lists.rows(asked, g.base, g.pitch, g.rowBytes, g.height);
            assert.deepEqual(rows, perRow(segs, g));
            assert.equal(lists.rows(segs, g.base, g.pitch, g.rowBytes, g.height), rows);
          }
          // A buffer changed in place after it was asked for is another buffer.
          const segs = buffers[0]!.map((s) => ({ ...s }));
          const g = geometries[0]!;
          lists.rows(segs, g.base, g.pitch, g.rowBytes, g.height);
          if (segs.length > 0) {
            segs[0] = { dmaAddr: segs[0]!.dmaAddr + 4096, len: segs[0]!.len };
            assert.deepEqual(
              lists.rows(segs, g.base, g.pitch, g.rowBytes, g.height),
              perRow(segs, g),
            );
          }
        },
      ),
    );
  });
});
