/**
 * Shared helpers for the DMA mapping API tests: machines, buffers, patterns and
 * counter snapshots. Not a test file itself (it registers no tests).
 */

import assert from "node:assert/strict";
import { DmaMappingApi } from "../../src/dma/mapping.js";
import type { CacheCounters } from "../../src/machine/cache.js";
import type { DmaDevice } from "../../src/machine/device.js";
import { Machine } from "../../src/machine/machine.js";
import { PAGE_SIZE } from "../../src/machine/memory.js";
import type { Profile } from "../../src/machine/profiles.js";
import { formatViolation, type Violation } from "../../src/machine/violations.js";

export const GiB = 1024 * 1024 * 1024;

/** The four architecture families the DMA code distinguishes. */
export const ARCH_PROFILES = ["cortex-a9", "arm64", "riscv64", "x86-64"] as const;
/** Profiles whose devices do not snoop by default. */
export const NONCOHERENT_PROFILES = ["cortex-a9", "arm64", "riscv64"] as const;

export interface Rig {
  readonly m: Machine;
  readonly dma: DmaMappingApi;
  readonly dev: DmaDevice;
}

export function rig(
  profile: string | Profile,
  dev: Partial<{ coherent: boolean; dmaBits: number; iommu: boolean; dmaOffset: number }> = {},
): Rig {
  const m = new Machine({ profile });
  const dma = new DmaMappingApi(m);
  return { m, dma, dev: m.addDevice("dev0", dev) };
}

/** A deterministic, recognisable byte pattern. */
export function pattern(len: number, seed: number): Uint8Array {
  const out = new Uint8Array(len);
  let x = (seed * 2654435761 + 12345) >>> 0;
  for (let i = 0; i < len; i++) {
    x = (x * 1103515245 + 12345) >>> 0;
    out[i] = (x >>> 16) & 0xff;
  }
  return out;
}

/** Physically contiguous memory from the CMA area (below 4 GiB on every profile). */
export function cmaBuffer(m: Machine, bytes: number): number {
  return m.cma.alloc(Math.ceil(bytes / PAGE_SIZE));
}

/** A page from the page allocator whose physical address is at or above `min`. */
export function pageAbove(m: Machine, min: number): number {
  for (let i = 0; i < 100_000; i++) {
    const phys = m.pages.alloc(0) * PAGE_SIZE;
    if (phys >= min) return phys;
  }
  throw new Error(`no page above 0x${min.toString(16)}`);
}

/** A page from the page allocator whose physical address is below `max`. */
export function pageBelow(m: Machine, max: number): number {
  for (let i = 0; i < 100_000; i++) {
    const phys = m.pages.alloc(0) * PAGE_SIZE;
    if (phys + PAGE_SIZE <= max) return phys;
  }
  throw new Error(`no page below 0x${max.toString(16)}`);
}

/** Cache counter deltas across `f`. */
export function countersDuring(m: Machine, f: () => void): CacheCounters {
  const before = m.cache.snapshotCounters();
  f();
  const after = m.cache.counters;
  return {
    hits: after.hits.map((h, i) => h - before.hits[i]!),
    fills: after.fills - before.fills,
    writebacks: after.writebacks - before.writebacks,
    evictions: after.evictions - before.evictions,
    lineOps: after.lineOps - before.lineOps,
    setWayOps: after.setWayOps - before.setWayOps,
    discardedDirty: after.discardedDirty - before.discardedDirty,
    snoops: after.snoops - before.snoops,
  };
}

/** Lines of `[phys, phys+len)` that the cache holds, and how many of them are dirty. */
export function cachedLines(
  m: Machine,
  phys: number,
  len: number,
): { cached: number; dirty: number } {
  const L = m.cache.line;
  let cached = 0;
  let dirty = 0;
  for (let p = Math.floor(phys / L) * L; p < phys + len; p += L) {
    const s = m.cache.probe(p);
    if (s.cached) cached++;
    if (s.dirty) dirty++;
  }
  return { cached, dirty };
}

/** Messages of the violations logged, for readable assertion failures. */
export function describe(vs: readonly Violation[]): string {
  return vs.map(formatViolation).join("\n");
}

export function assertNoViolations(m: Machine): void {
  assert.equal(m.violations.count, 0, describe(m.violations.list));
}

/** Violations whose message contains `text`. */
export function withMessage(m: Machine, text: string): Violation[] {
  return m.violations.list.filter((v) => v.message.includes(text));
}
