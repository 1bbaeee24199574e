/**
 * Host memory on huge pages (src/machine/host-memory.ts): whatever the host gives, the
 * bytes handed out are fresh zeros of the size asked, word aligned, and no two pieces
 * share a byte (DRAM chunks and shadow chunks are pieces of one slab).
 */

import assert from "node:assert/strict";
import { describe, test } from "node:test";
import fc from "fast-check";
import { HOST_SLAB_BYTES, hostBytes, hostChunk } from "../../src/machine/host-memory.js";

const MiB = 1024 * 1024;

describe("host memory", () => {
  test("hostBytes: `len` zero bytes, word aligned", () => {
    for (const len of [0, 1, 4096, 2 * MiB - 1, 2 * MiB, 5 * MiB + 3]) {
      const a = hostBytes(len);
      assert.equal(a.length, len);
      assert.equal(a.byteOffset % 8, 0);
      assert.ok(a.every((b) => b === 0));
    }
  });

  test("property: hostChunk's pieces are fresh zeros and never overlap", () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.oneof(
            fc.constantFrom(MiB, 128 * 1024, 64 * 1024),
            fc.integer({ min: 1, max: 4096 }).map((n) => n * 8),
          ),
          { minLength: 1, maxLength: 80 },
        ),
        (sizes) => {
          const pieces = sizes.map((n) => hostChunk(n));
          pieces.forEach((p, i) => {
            assert.equal(p.length, sizes[i]);
            assert.equal(p.byteOffset % 8, 0);
            // Fresh: nothing written before (the previous pieces are all stamped below).
            assert.equal(p[0], 0);
            assert.equal(p[p.length - 1], 0);
            p.fill((i % 255) + 1);
          });
          // Each piece still holds its own stamp: no later piece wrote into it.
          pieces.forEach((p, i) => {
            assert.equal(p[0], (i % 255) + 1);
            assert.equal(p[p.length - 1], (i % 255) + 1);
          });
        },
      ),
      { numRuns: 40 },
    );
  });

  test("hostChunk refuses sizes it cannot cut from a slab", () => {
    assert.throws(() => hostChunk(12), RangeError);
    assert.throws(() => hostChunk(HOST_SLAB_BYTES + 8), RangeError);
  });
});
