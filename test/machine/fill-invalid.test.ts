/**
 * Filling a cache that has room (a new machine's cache while the kernel zeroes its first
 * buffers) in bulk against line by line: random geometries with up to two inner levels of
 * any associativity, a random history that leaves some lines held, dirty, evicted or
 * invalidated (holes in sets, inner levels partly full), then memsets of long and short
 * ranges; after each, every slot, replacement stamp, PLRU bit, inner slot, reverse-map
 * entry, page count, counter and DRAM byte must be equal, and a sweep afterwards must
 * find the same.
 */

import assert from "node:assert/strict";
import { describe, test } from "node:test";
import fc from "fast-check";
import type { CacheGeometry } from "../../src/machine/cache.js";
import { type CacheRig, cacheRig, KiB, layeredGeometry } from "./helpers.js";

const geometryArb: fc.Arbitrary<CacheGeometry> = fc
  .record({
    line: fc.constantFrom(16, 32, 64),
    sets: fc.constantFrom(1, 2, 4, 8, 16),
    ways: fc.constantFrom(1, 2, 4, 8),
    inner: fc.constantFrom<[number, number][][]>(
      [],
      [[1, 1]],
      [[2, 2]],
      [[1, 4]],
      [[3, 2]],
      [
        [1, 2],
        [2, 4],
      ],
    ),
    replacement: fc.constantFrom<"lru" | "plru">("lru", "plru"),
  })
  .map(layeredGeometry);

type Op =
  | { kind: "read" | "write" | "invalidate" | "flush"; off: number; len: number }
  | { kind: "fill"; off: number; len: number; value: number };

const WIN = 32 * KiB;
const off = fc.nat(WIN - 1);
const opArb: fc.Arbitrary<Op> = fc.oneof(
  fc.record({
    kind: fc.constantFrom(
      "read" as const,
      "write" as const,
      "invalidate" as const,
      "flush" as const,
    ),
    off,
    len: fc.nat(2048),
  }),
  fc.record({
    kind: fc.constant("fill" as const),
    off,
    len: fc.integer({ min: 0, max: WIN }),
    value: fc.constantFrom(0, 0x5a),
  }),
);

function apply(r: CacheRig, w0: number, op: Op): void {
  const n = Math.max(0, Math.min(op.len, WIN - op.off));
  const at = w0 + op.off;
  if (op.kind === "read") r.cache.read(at, n, new Uint8Array(n));
  else if (op.kind === "write") r.cache.write(at, new Uint8Array(n).fill(op.off & 0xff));
  else if (op.kind === "invalidate") r.cache.invalidateRange(at, n);
  else if (op.kind === "flush") r.cache.flushRange(at, n);
  else if (op.kind === "fill") r.cache.fill(at, n, op.value);
}

describe("filling a cache with room in bulk", () => {
  test("equals filling it line by line: every slot, stamp, inner slot, map, counter and DRAM byte", () => {
    fc.assert(
      fc.property(
        geometryArb,
        fc.array(opArb, { minLength: 1, maxLength: 12 }),
        (geometry, ops) => {
          const fast = cacheRig(geometry);
          const ref = cacheRig(geometry);
          ref.cache.closedForms = false;
          const w0 = fast.mem.base + 64 * KiB;
          const lines = (64 * KiB + WIN) / geometry.lineSize;
          for (const op of ops) {
            apply(fast, w0, op);
            apply(ref, w0, op);
            assert.deepEqual(
              fast.cache.stateForTests(lines),
              ref.cache.stateForTests(lines),
              op.kind,
            );
            assert.deepEqual(fast.mem.slice(w0, WIN), ref.mem.slice(w0, WIN));
          }
          for (const r of [fast, ref]) r.cache.read(w0, WIN, new Uint8Array(WIN));
          assert.deepEqual(
            fast.cache.stateForTests(lines),
            ref.cache.stateForTests(lines),
            "after a sweep",
          );
        },
      ),
      { numRuns: 200 },
    );
  });
});
