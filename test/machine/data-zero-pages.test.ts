/**
 * The cache's map of line-data pages known to be zero (CpuCache `#dataUsed`) against the
 * plain path that stores and reads every byte: random geometries whose line data spans
 * several host pages, random histories of CPU stores (zero and non-zero), memsets, loads,
 * cache maintenance, device writes to DRAM, speculative fills, and machines released and
 * booted again (the next cache takes the
 * released one's line data, with whatever bytes it left there, from the pool); after
 * each step every slot, line byte, counter and DRAM byte must be equal, and so must
 * what the CPU reads.
 */

import assert from "node:assert/strict";
import { describe, test } from "node:test";
import fc from "fast-check";
import type { CacheGeometry } from "../../src/machine/cache.js";
import { type CacheRig, cacheRig, KiB, layeredGeometry } from "./helpers.js";

const geometryArb: fc.Arbitrary<CacheGeometry> = fc
  .record({
    line: fc.constantFrom(16, 64),
    sets: fc.constantFrom(16, 64, 128),
    ways: fc.constantFrom(1, 2, 4),
    inner: fc.constantFrom<[number, number][][]>([], [[4, 2]]),
    replacement: fc.constantFrom<"lru" | "plru">("lru", "plru"),
  })
  .map(layeredGeometry);

type Op =
  | {
      kind: "read" | "invalidate" | "flush" | "clean" | "prefetch" | "reboot";
      off: number;
      len: number;
    }
  | { kind: "write" | "fill" | "dram"; off: number; len: number; value: number };

const WIN = 64 * KiB;
const off = fc.nat(WIN - 1);
const opArb: fc.Arbitrary<Op> = fc.oneof(
  fc.record({
    kind: fc.constantFrom(
      "read" as const,
      "invalidate" as const,
      "flush" as const,
      "clean" as const,
      "prefetch" as const,
      "reboot" as const,
    ),
    off,
    len: fc.nat(8 * KiB),
  }),
  fc.record({
    kind: fc.constantFrom("write" as const, "fill" as const, "dram" as const),
    off,
    len: fc.integer({ min: 0, max: WIN }),
    value: fc.constantFrom(0, 0, 0x5a),
  }),
);

/** Applies `op`; a reboot releases the cache and returns a new one on the same memory. */
function apply(r: CacheRig, w0: number, op: Op, plain: boolean): CacheRig {
  const n = Math.max(0, Math.min(op.len, WIN - op.off));
  const at = w0 + op.off;
  if (op.kind === "read") {
    const out = new Uint8Array(n);
    r.cache.read(at, n, out);
    return r;
  }
  if (op.kind === "write") r.cache.write(at, new Uint8Array(n).fill(op.value));
  else if (op.kind === "fill") r.cache.fill(at, n, op.value);
  else if (op.kind === "invalidate") r.cache.invalidateRange(at, n);
  else if (op.kind === "flush") r.cache.flushRange(at, n);
  else if (op.kind === "clean") r.cache.cleanRange(at, n);
  else if (op.kind === "dram") r.mem.fill(at, n, op.value);
  else if (op.kind === "prefetch") {
    // Speculative fills (a device write's hazard), their line data copied late.
    const L = r.cache.line;
    const first = Math.floor((at - r.mem.base) / L);
    const lines = Float64Array.from(
      { length: Math.min(64, Math.ceil(n / L)) },
      (_, i) => first + i,
    );
    for (let k = 0; k < lines.length; ) k = r.cache.prefetchLines(lines, k, lines.length, 0, 1);
  } else {
    // The lines it held are written back first, as a machine's would be before reuse.
    // Only the tracked cache gives its line data to the pool: the next tracked cache
    // takes a buffer a tracked one left, bytes and map (the plain one may take one
    // too, and forgets its map).
    r.cache.flushRange(w0, WIN);
    if (!plain) r.cache.release();
    const next = cacheRig(r.cache.geometry, r.mem.base, r.mem.size);
    next.mem.write(w0, r.mem.slice(w0, WIN));
    if (plain) next.cache.forgetZeroPages();
    return next;
  }
  return r;
}

function readAll(r: CacheRig, w0: number): Uint8Array {
  const out = new Uint8Array(WIN);
  r.cache.read(w0, WIN, out);
  return out;
}

describe("line-data pages known to be zero", () => {
  test("change nothing: every slot, line byte, counter, DRAM byte and CPU load as on the plain path", () => {
    fc.assert(
      fc.property(
        geometryArb,
        fc.array(opArb, { minLength: 1, maxLength: 14 }),
        (geometry, ops) => {
          let fast = cacheRig(geometry);
          let ref = cacheRig(geometry);
          ref.cache.forgetZeroPages();
          const w0 = fast.mem.base + 64 * KiB;
          const lines = (64 * KiB + WIN) / geometry.lineSize;
          for (const op of ops) {
            fast = apply(fast, w0, op, false);
            ref = apply(ref, w0, op, true);
            assert.deepEqual(
              fast.cache.stateForTests(lines),
              ref.cache.stateForTests(lines),
              op.kind,
            );
            assert.deepEqual(fast.mem.slice(w0, WIN), ref.mem.slice(w0, WIN), op.kind);
          }
          assert.deepEqual(readAll(fast, w0), readAll(ref, w0), "loads after");
          assert.deepEqual(
            fast.cache.stateForTests(lines),
            ref.cache.stateForTests(lines),
            "after a sweep",
          );
          fast.cache.release();
        },
      ),
      { numRuns: 150 },
    );
  });

  test("a speculative fill's late copy of non-zero DRAM marks its page: zeros stored after it land", () => {
    const geometry: CacheGeometry = {
      lineSize: 64,
      levels: [{ name: "LLC", sizeBytes: 64 * KiB, ways: 4 }],
      replacement: "lru",
    };
    const r = cacheRig(geometry);
    const w0 = r.mem.base + 8 * KiB;
    r.mem.fill(w0, 4 * KiB, 0x5a);
    const first = (w0 - r.mem.base) / 64;
    const lines = Float64Array.from({ length: 64 }, (_, i) => first + i);
    for (let k = 0; k < lines.length; ) k = r.cache.prefetchLines(lines, k, lines.length, 0, 1);
    const got = new Uint8Array(4 * KiB);
    r.cache.read(w0, 4 * KiB, got);
    assert.ok(
      got.every((b) => b === 0x5a),
      "the fills hold DRAM's bytes",
    );
    assert.ok(r.cache.dataPagesInUse > 0);
    r.cache.fill(w0, 4 * KiB, 0);
    r.cache.read(w0, 4 * KiB, got);
    assert.ok(
      got.every((b) => b === 0),
      "zeros stored over the filled lines are read back",
    );
    r.cache.release();
  });

  test("a long store in closed form marks the pages of the lines it leaves in the cache", () => {
    // Bytes from a word-aligned source and from one that is not (copied another way),
    // each into a cache of a size no other test here uses: its line data comes fresh.
    for (const [ways, skew] of [
      [3, 0],
      [5, 1],
    ] as const) {
      const size = ways * KiB;
      const geometry: CacheGeometry = {
        lineSize: 64,
        levels: [{ name: "LLC", sizeBytes: size, ways }],
        replacement: "lru",
      };
      const r = cacheRig(geometry);
      const w0 = r.mem.base + 16 * KiB;
      // Every slot valid, none holding the run: the store's whole cache-fulls go at once.
      r.cache.read(r.mem.base, size, new Uint8Array(size));
      const src = new Uint8Array(3 * size + skew).fill(0x5a).subarray(skew);
      r.cache.write(w0, src);
      assert.ok(r.cache.closedFormLines > 0, "the closed form was taken");
      r.cache.flushRange(w0, 3 * size);
      assert.ok(
        r.mem.slice(w0, 3 * size).every((b) => b === 0x5a),
        "every line reached DRAM with its bytes",
      );
      r.cache.release();
    }
  });

  test("zeroing into a new cache faults in none of its line data; a non-zero store does", () => {
    const geometry: CacheGeometry = {
      lineSize: 64,
      levels: [
        { name: "L1", sizeBytes: 4 * KiB, ways: 2 },
        { name: "LLC", sizeBytes: 256 * KiB, ways: 4 },
      ],
      replacement: "lru",
    };
    const r = cacheRig(geometry);
    const w0 = r.mem.base;
    // More than the cache holds: the cache fills with room, then evicts zeroed lines.
    r.cache.fill(w0, 512 * KiB, 0);
    r.cache.flushRange(w0, 512 * KiB);
    r.cache.fill(w0, 128 * KiB, 0);
    assert.equal(r.cache.dataPagesInUse, 0);
    const back = new Uint8Array(128 * KiB).fill(1);
    r.cache.read(w0, 128 * KiB, back);
    assert.ok(back.every((b) => b === 0));
    r.cache.write(w0 + 4 * KiB, new Uint8Array(64).fill(7));
    assert.equal(r.cache.dataPagesInUse, 1);
    // A new cache given this one's line data keeps knowing which page holds bytes.
    r.cache.release();
    const next = cacheRig(geometry, r.mem.base, r.mem.size);
    assert.equal(next.cache.dataPagesInUse, 1);
    next.cache.fill(w0, 256 * KiB, 0);
    const out = new Uint8Array(256 * KiB).fill(1);
    next.cache.read(w0, 256 * KiB, out);
    assert.ok(out.every((b) => b === 0));
    next.cache.release();
  });
});
