/**
 * The PRNG's bulk draw against its one-at-a-time reference: the speculative fills of
 * every device write draw their lines through `drawBelow`, and a different value would
 * move a fill (and change reports).
 */

import assert from "node:assert/strict";
import { test } from "node:test";
import fc from "fast-check";
import { Prng } from "../../src/machine/prng.js";

test("drawBelow gives the values of that many below() calls, and leaves the same state", () => {
  fc.assert(
    fc.property(
      fc.integer({ min: 0, max: 2 ** 32 - 1 }),
      fc.integer({ min: 0, max: 300 }),
      // Bounds of every size: small ones, a device write's lines, and up to 2^32 - 1.
      fc.oneof(
        fc.integer({ min: 1, max: 64 }),
        fc.integer({ min: 1, max: 2 ** 20 }),
        fc.integer({ min: 1, max: 2 ** 32 - 1 }),
      ),
      fc.integer({ min: 0, max: 2 ** 40 }),
      (seed, count, n, base) => {
        const a = new Prng(seed);
        const b = new Prng(seed);
        const out = new Float64Array(count + 1).fill(-1);
        a.drawBelow(out, count, n, base);
        for (let k = 0; k < count; k++) assert.equal(out[k], base + b.below(n), `draw ${k}`);
        assert.equal(out[count], -1, "nothing written past count");
        assert.equal(a.nextU32(), b.nextU32(), "the state after");
      },
    ),
    { numRuns: 300 },
  );
});
