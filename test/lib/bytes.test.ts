/**
 * The byte helpers of the data paths against their byte-by-byte definitions, on views
 * at every alignment and of every length.
 */

import assert from "node:assert/strict";
import { describe, test } from "node:test";
import fc from "fast-check";
import { xorBytes } from "../../src/lib/bytes.js";
import { stampBytes } from "../../src/pipelines/expected.js";

describe("xorBytes", () => {
  test("XORs every byte of the view and no byte outside it", () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ minLength: 0, maxLength: 70 }),
        fc.nat(7),
        fc.nat(9),
        fc.nat(255),
        (bytes, from, cut, v) => {
          const start = Math.min(from, bytes.length);
          const end = Math.max(start, bytes.length - cut);
          const want = bytes.slice();
          for (let i = start; i < end; i++) want[i] = want[i]! ^ v;
          xorBytes(bytes.subarray(start, end), v);
          assert.deepEqual(bytes, want);
        },
      ),
      { numRuns: 500 },
    );
  });

  test("a CPU stage's stamp is (255 - b) ^ key when it reads, the key when it only writes", () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ maxLength: 40 }),
        fc.nat(3),
        fc.nat(1000),
        fc.boolean(),
        (bytes, from, frameNo, reads) => {
          const view = bytes.subarray(Math.min(from, bytes.length));
          const key = (frameNo * 37 + 11) & 0xff;
          const want = Array.from(view, (b) => (reads ? (255 - b) ^ key : key));
          stampBytes(view, frameNo, reads);
          assert.deepEqual(Array.from(view), want);
        },
      ),
    );
  });
});
