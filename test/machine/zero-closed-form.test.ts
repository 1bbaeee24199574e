/**
 * Zeroing in closed form against zeroing line by line. Random operation sequences (loads,
 * stores, device writes behind the cache, maintenance, and zeroing of long ranges or of
 * many page-sized ranges) are replayed on two identical caches — or machines — one with
 * the closed form allowed and one without, and after every operation every slot (tag,
 * dirty bit, fill epoch, bytes), the replacement state of every level, the reverse maps,
 * the counters, every DRAM byte and, on machines, the clock, the cost ledger, the trace
 * and the violations must be equal.
 */

import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { describe, test } from "node:test";
import fc from "fast-check";
import type { CacheGeometry } from "../../src/machine/cache.js";
import type { Machine } from "../../src/machine/machine.js";
import { PAGE_SIZE } from "../../src/machine/memory.js";
import { type CacheRig, cacheRig, KiB, layeredGeometry, MiB, smallMachine } from "./helpers.js";

const RAM = 512 * KiB;
const BASE = 0x1000_0000;

/** Small geometries, most of them ones the closed form applies to (inner levels dividing the outer). */
const geometryArb: fc.Arbitrary<CacheGeometry> = fc
  .record({
    line: fc.constantFrom(16, 32, 64),
    sets: fc.constantFrom(1, 2, 4, 8, 16),
    ways: fc.constantFrom(1, 2, 4, 8),
    inner: fc.constantFrom<[number, number][][]>(
      [],
      [[1, 1]],
      [[2, 2]],
      [[1, 2]],
      [
        [1, 1],
        [2, 2],
      ],
      [[3, 1]],
    ),
    replacement: fc.constantFrom<"lru" | "plru">("lru", "plru"),
  })
  .map(layeredGeometry);

type Op =
  | { kind: "read" | "clean" | "flush" | "invalidate"; off: number; len: number }
  | { kind: "write"; off: number; data: Uint8Array }
  | { kind: "dma"; off: number; len: number }
  | { kind: "zero"; off: number; rounds: number; extra: number }
  | { kind: "zeroRanges"; blocks: number[]; scale: number; tries: number[] };

const off = fc.nat(RAM - 1);
const opArb: fc.Arbitrary<Op> = fc.oneof(
  fc.record({
    kind: fc.constantFrom("read" as const, "clean" as const, "flush" as const),
    off,
    len: fc.nat(2048),
  }),
  fc.record({ kind: fc.constant("invalidate" as const), off, len: fc.nat(2048) }),
  fc.record({ kind: fc.constant("write" as const), off, data: fc.uint8Array({ maxLength: 300 }) }),
  fc.record({ kind: fc.constant("dma" as const), off, len: fc.nat(2048) }),
  {
    weight: 3,
    arbitrary: fc.record({
      kind: fc.constant("zero" as const),
      off,
      rounds: fc.integer({ min: 3, max: 12 }),
      extra: fc.nat(300),
    }),
  },
  {
    weight: 3,
    arbitrary: fc.record({
      kind: fc.constant("zeroRanges" as const),
      // Block numbers (of `scale` times the way size) in the order they are zeroed.
      blocks: fc.uniqueArray(fc.nat(63), { minLength: 1, maxLength: 40 }),
      scale: fc.constantFrom(1, 2, 4),
      tries: fc.array(fc.nat(40), { maxLength: 6 }),
    }),
  },
);

const clamp = (o: number, n: number): number => Math.max(0, Math.min(n, RAM - o));

/** The byte size of one way of the outer level: ranges aligned to it keep sets in step. */
function waySize(g: CacheGeometry): number {
  const outer = g.levels[g.levels.length - 1]!;
  return Math.max(...g.levels.map((l) => l.sizeBytes / l.ways), outer.sizeBytes / outer.ways);
}

function apply(r: CacheRig, g: CacheGeometry, op: Op): void {
  const c = r.cache;
  switch (op.kind) {
    case "read":
      c.read(BASE + op.off, clamp(op.off, op.len), new Uint8Array(op.len));
      break;
    case "write":
      c.write(BASE + op.off, op.data, 0, clamp(op.off, op.data.length));
      break;
    case "dma": {
      const n = clamp(op.off, op.len);
      if (n === 0) break;
      const epoch = r.shadow.beginWrite("dev", 0, "DMA write");
      r.mem.fill(BASE + op.off, n, 0xa5);
      const L = c.line;
      r.shadow.memEpoch.fillRange(
        Math.floor(op.off / L),
        Math.floor((op.off + n - 1) / L) + 1,
        epoch,
      );
      break;
    }
    case "clean":
      c.cleanRange(BASE + op.off, clamp(op.off, op.len));
      break;
    case "flush":
      c.flushRange(BASE + op.off, clamp(op.off, op.len));
      break;
    case "invalidate":
      c.invalidateRange(BASE + op.off, clamp(op.off, op.len));
      break;
    case "zero": {
      const len = clamp(op.off, op.rounds * c.capacity + op.extra);
      c.fill(BASE + op.off, len, 0);
      break;
    }
    case "zeroRanges": {
      const size = waySize(g) * op.scale;
      const ranges = op.blocks
        .map((b) => ({ phys: BASE + b * size, len: size }))
        .filter((x) => x.phys + x.len <= BASE + RAM);
      // Fast-forward attempts at the positions the test chose, as far as the test chose.
      let t = 0;
      for (let i = 0; i < ranges.length; ) {
        const at = op.tries[t];
        if (at !== undefined && i >= at % (ranges.length + 1)) {
          t++;
          const j = c.zeroFastForward(ranges, i, Math.min(ranges.length, i + 1 + at));
          if (j > i) {
            i = j;
            continue;
          }
        }
        c.fill(ranges[i]!.phys, ranges[i]!.len, 0);
        i++;
      }
      break;
    }
  }
}

/** Fails naming the first part of the state that differs, and where (not a megabyte dump). */
function sameState(a: unknown, b: unknown, when: string): void {
  const x = a as Record<string, unknown>;
  const y = b as Record<string, unknown>;
  const flat = (o: Record<string, unknown>): Record<string, unknown> =>
    "cache" in o ? { ...(o.cache as Record<string, unknown>), ...o, cache: undefined } : o;
  const fx = flat(x);
  const fy = flat(y);
  for (const k of Object.keys(fx)) {
    const u = JSON.stringify(fx[k]);
    const v = JSON.stringify(fy[k]);
    if (u === v) continue;
    let i = 0;
    while (i < u.length && u[i] === v[i]) i++;
    assert.fail(
      `${when}: ${k} differs at character ${i}: closed form ${u.slice(Math.max(0, i - 40), i + 60)} / line by line ${v.slice(Math.max(0, i - 40), i + 60)}`,
    );
  }
}

function cacheState(r: CacheRig): unknown {
  return {
    cache: r.cache.stateForTests(RAM / r.cache.line),
    dram: createHash("sha256").update(r.mem.slice(BASE, RAM)).digest("hex"),
  };
}

describe("closed-form zeroing equals zeroing line by line", () => {
  test("random operation sequences leave identical caches and DRAM", () => {
    let applied = 0;
    fc.assert(
      fc.property(geometryArb, fc.array(opArb, { minLength: 1, maxLength: 12 }), (g, ops) => {
        const fast = cacheRig(g, BASE, RAM);
        const slow = cacheRig(g, BASE, RAM);
        slow.cache.closedForms = false;
        for (const op of ops) {
          const before = fast.cache.closedFormLines;
          apply(fast, g, op);
          apply(slow, g, op);
          sameState(cacheState(fast), cacheState(slow), `after ${op.kind}`);
          if (fast.cache.closedFormLines > before) applied++;
        }
      }),
      { numRuns: Number(process.env.ZERO_RUNS ?? 100) },
    );
    // The property is about the closed form: it must have been exercised.
    assert.ok(applied > 50, `the closed form applied only ${applied} times`);
  });
});

describe("zeroPhysRanges equals zeroPhys of each range", () => {
  /** A machine with a small cache (closed form on or off). */
  function machine(g: CacheGeometry, closedForm: boolean): Machine {
    const m = smallMachine({
      ram: { base: 0x4000_0000, size: 4 * MiB },
      cache: g,
      cmaBytes: 512 * KiB,
      swiotlbBytes: 256 * KiB,
    });
    m.cache.closedForms = closedForm;
    m.trace.enabled = true;
    return m;
  }

  function machineState(m: Machine): unknown {
    return {
      cache: m.cache.stateForTests(m.memory.size / m.cache.line),
      dram: createHash("sha256").update(m.memory.slice(m.memory.base, m.memory.size)).digest("hex"),
      now: m.clock.now,
      costs: m.costs.snapshot(),
      trace: JSON.stringify(m.trace.events),
      violations: JSON.stringify(m.violations.list),
    };
  }

  test("heap-style allocations with clock events in between leave identical machines", () => {
    let fastForwarded = 0;
    fc.assert(
      fc.property(
        geometryArb,
        fc.array(
          fc.record({
            orders: fc.array(fc.constantFrom(0, 2, 4, 6), { minLength: 1, maxLength: 30 }),
            // A CPU store scheduled during the zeroing (at this many ns from now), or none.
            eventAt: fc.option(fc.double({ min: 0, max: 20_000, noNaN: true }), { nil: undefined }),
            eventOff: fc.nat(64 * KiB),
            write: fc.uint8Array({ minLength: 1, maxLength: 200 }),
          }),
          { minLength: 1, maxLength: 4 },
        ),
        (g, allocs) => {
          const ms = [machine(g, true), machine(g, false)];
          for (const a of allocs) {
            for (const m of ms) {
              const pfns = a.orders.map((o) => m.pages.alloc(o));
              const ranges = pfns.map((pfn, i) => ({
                phys: pfn * PAGE_SIZE,
                len: PAGE_SIZE << a.orders[i]!,
              }));
              if (a.eventAt !== undefined)
                m.clock.schedule(m.clock.now + a.eventAt, "cpu store", () =>
                  m.cpu.writePhys(
                    ranges[0]!.phys + (a.eventOff % ranges[0]!.len),
                    a.write,
                    0,
                    Math.min(a.write.length, ranges[0]!.len - (a.eventOff % ranges[0]!.len)),
                  ),
                );
              const before = m.cache.closedFormLines;
              m.cpu.zeroPhysRanges(ranges);
              m.clock.runUntil(m.clock.now + 30_000);
              if (m.cache.closedFormLines > before) fastForwarded++;
              for (const pfn of pfns) m.pages.free(pfn);
            }
            sameState(machineState(ms[0]!), machineState(ms[1]!), "after an allocation");
          }
        },
      ),
      { numRuns: Number(process.env.ZERO_RUNS ?? 40) },
    );
    assert.ok(fastForwarded > 10, `the closed form applied only ${fastForwarded} times`);
  });
});
