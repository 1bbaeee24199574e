/** Shared builders for the machine-layer tests. */

import fc from "fast-check";
import { type CacheGeometry, CpuCache } from "../../src/machine/cache.js";
import { CoherencyShadow } from "../../src/machine/coherency.js";
import { Machine } from "../../src/machine/machine.js";
import { PhysicalMemory } from "../../src/machine/memory.js";
import type { ProfileOverrides } from "../../src/machine/profiles.js";

export const KiB = 1024;
export const MiB = 1024 * KiB;
export const GiB = 1024 * MiB;

export interface CacheRig {
  readonly mem: PhysicalMemory;
  readonly shadow: CoherencyShadow;
  readonly cache: CpuCache;
}

/** A bare cache over a small RAM at a non-zero base (so base-relative bugs show). */
export function cacheRig(geometry: CacheGeometry, base = 0x1000_0000, size = 2 * MiB): CacheRig {
  const mem = new PhysicalMemory(base, size);
  const shadow = new CoherencyShadow();
  const cache = new CpuCache(geometry, mem, shadow);
  return { mem, shadow, cache };
}

/** One-level cache: `sets` x `ways` lines of `line` bytes. */
export function oneLevel(
  sets: number,
  ways: number,
  line = 64,
  replacement: CacheGeometry["replacement"] = "lru",
): CacheGeometry {
  return {
    lineSize: line,
    levels: [{ name: "L1", sizeBytes: sets * ways * line, ways }],
    replacement,
  };
}

/**
 * A geometry from the outer level's sets and ways and each inner level's `[sets, ways]`
 * (the property tests draw these and build their geometries here).
 */
export function layeredGeometry(g: {
  readonly line: number;
  readonly sets: number;
  readonly ways: number;
  readonly inner: readonly (readonly [number, number])[];
  readonly replacement: CacheGeometry["replacement"];
}): CacheGeometry {
  return {
    lineSize: g.line,
    levels: [
      ...g.inner.map(([s, w], i) => ({ name: `L${i + 1}`, sizeBytes: s * w * g.line, ways: w })),
      { name: "LLC", sizeBytes: g.sets * g.ways * g.line, ways: g.ways },
    ],
    replacement: g.replacement,
  };
}

/** Random small cache geometries (an optional tag-only L1 inside the data-holding L2). */
export function cacheGeometryArb(sets: readonly number[]): fc.Arbitrary<CacheGeometry> {
  return fc
    .record({
      line: fc.constantFrom(16, 32, 64),
      sets: fc.constantFrom(...sets),
      ways: fc.constantFrom(1, 2, 4),
      inner: fc.option(fc.constantFrom(1, 2), { nil: undefined }),
      replacement: fc.constantFrom<"lru" | "plru">("lru", "plru"),
    })
    .map(({ line, sets, ways, inner, replacement }) => ({
      lineSize: line,
      levels: [
        ...(inner === undefined ? [] : [{ name: "L1", sizeBytes: inner * line, ways: inner }]),
        { name: "L2", sizeBytes: sets * ways * line, ways },
      ],
      replacement,
    }));
}

/** A small arm64 machine: 64 MiB RAM, a tiny swiotlb and CMA, optional cache override. */
export function smallMachine(overrides: ProfileOverrides = {}, profile = "arm64"): Machine {
  return new Machine({
    profile,
    overrides: {
      ram: { base: 0x4000_0000, size: 64 * MiB },
      swiotlbBytes: 1 * MiB,
      cmaBytes: 4 * MiB,
      ...overrides,
    },
  });
}

/** Bytes 0..n-1 of a recognisable pattern starting at `seed`. */
export function pattern(n: number, seed: number): Uint8Array {
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) out[i] = (seed + i * 7) & 0xff;
  return out;
}

/** Equality of virtual times up to floating-point rounding. */
export function near(actual: number, expected: number, what = ""): void {
  if (Math.abs(actual - expected) > 1e-9 * Math.max(1, Math.abs(expected))) {
    throw new Error(`${what} expected ${expected}, got ${actual}`);
  }
}
