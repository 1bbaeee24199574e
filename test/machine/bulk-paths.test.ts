/**
 * The engine's fast paths against their reference: every bulk or zero-page shortcut must
 * leave exactly the state the plain path leaves. Random operation sequences are replayed
 * on two identical caches, one through the fast path and one through the reference, and
 * every slot (which line, dirty or not), every counter, the findings and every DRAM byte
 * are compared after each operation.
 */

import assert from "node:assert/strict";
import { describe, test } from "node:test";
import fc from "fast-check";
import { type CacheGeometry, CpuCache } from "../../src/machine/cache.js";
import { CoherencyShadow } from "../../src/machine/coherency.js";
import { PhysicalMemory } from "../../src/machine/memory.js";
import { type CacheRig, cacheGeometryArb, cacheRig, MiB, pattern } from "./helpers.js";

/** The window straddles the first 1 MiB DRAM chunk boundary. */
const WIN = 16384;

const geometryArb = cacheGeometryArb([1, 2, 4, 8]);

/** Caches of hundreds of lines, which keep most of a batch of a few hundred fills. */
const bigGeometryArb: fc.Arbitrary<CacheGeometry> = fc
  .record({
    line: fc.constantFrom(16, 32, 64),
    sets: fc.constantFrom(16, 32, 64),
    ways: fc.constantFrom(4, 8),
    inner: fc.boolean(),
    replacement: fc.constantFrom<"lru" | "plru">("lru", "plru"),
  })
  .map(({ line, sets, ways, inner, replacement }) => ({
    lineSize: line,
    levels: [
      ...(inner ? [{ name: "L1", sizeBytes: 4 * 2 * line, ways: 2 }] : []),
      { name: "L2", sizeBytes: sets * ways * line, ways },
    ],
    replacement,
  }));

type Op =
  | { kind: "read" | "clean" | "flush" | "invalidate"; off: number; len: number }
  | { kind: "write"; off: number; data: Uint8Array }
  | { kind: "fill"; off: number; len: number; value: number }
  | { kind: "dma"; off: number; len: number; value: number }
  | { kind: "snoop"; off: number; len: number }
  | { kind: "cleanAll" | "flushAll" };

const off = fc.integer({ min: 0, max: WIN - 1 });
const len = fc.integer({ min: 0, max: 4096 });
const opArb: fc.Arbitrary<Op> = fc.oneof(
  {
    weight: 3,
    arbitrary: fc.record({
      kind: fc.constantFrom("read" as const, "clean" as const, "flush" as const),
      off,
      len,
    }),
  },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant("invalidate" as const), off, len }) },
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant("write" as const),
      off,
      data: fc.uint8Array({ maxLength: 300 }),
    }),
  },
  {
    weight: 4,
    arbitrary: fc.record({
      kind: fc.constant("fill" as const),
      off,
      len,
      // Mostly zero: clear_page is the case the zero-page paths serve.
      value: fc.oneof({ weight: 3, arbitrary: fc.constant(0) }, fc.integer({ min: 0, max: 255 })),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      kind: fc.constant("dma" as const),
      off,
      len,
      value: fc.constantFrom(0, 0x5a),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({ kind: fc.constantFrom("cleanAll" as const, "flushAll" as const) }),
  },
  // A coherent device's write: the lines it covers leave the cache (holes in their sets).
  { weight: 1, arbitrary: fc.record({ kind: fc.constant("snoop" as const), off, len }) },
);

const clampLen = (o: number, n: number): number => Math.max(0, Math.min(n, WIN - o));

/** Everything observable about a cache over the window. */
function state(r: CacheRig, w0: number): unknown {
  const slots: [number, number, boolean][] = [];
  r.cache.forEachCachedLine(w0, WIN, (slot, phys) => {
    slots.push([slot, phys, r.cache.isDirty(slot)]);
  });
  const probes: string[] = [];
  for (let o = 0; o < WIN; o += r.cache.line) {
    const p = r.cache.probe(w0 + o);
    probes.push(`${+p.cached}${+p.dirty}${+p.stale}`);
  }
  return {
    slots,
    probes: probes.join(""),
    valid: r.cache.validLines,
    dirty: r.cache.dirtyLines,
    counters: r.cache.counters,
    findings: JSON.stringify(r.cache.findings),
    dram: Buffer.from(r.mem.slice(w0 - 64, WIN + 128)).toString("hex"),
  };
}

/**
 * Every way the per-set mask says is invalid is, and when the cache says the mask is
 * exact, every invalid way has its bit (the victim choice then takes the lowest bit
 * without reading tags). Sets wider than 32 ways have no bits.
 */
function assertFreeMask(c: CpuCache): void {
  const st = c.stateForTests(0) as { tag: number[] };
  const { bits, exact } = c.freeBitsForTests();
  for (let set = 0; set < c.sets; set++) {
    let free = 0;
    if (c.ways <= 32)
      for (let w = 0; w < c.ways; w++) if (st.tag[w * c.sets + set]! < 0) free |= 1 << w;
    assert.equal((bits[set]! & ~free) >>> 0, 0, `set ${set}: a way marked invalid holds a line`);
    if (exact || c.ways > 32)
      assert.equal(bits[set]!, free >>> 0, `set ${set}: the invalid ways' bits`);
  }
}

function apply(r: CacheRig, w0: number, op: Op, fast: boolean): void {
  const c: CpuCache = r.cache;
  switch (op.kind) {
    case "read":
      c.read(w0 + op.off, clampLen(op.off, op.len), new Uint8Array(op.len));
      break;
    case "write":
      c.write(w0 + op.off, op.data, 0, clampLen(op.off, op.data.length));
      break;
    case "fill": {
      const n = clampLen(op.off, op.len);
      if (fast) c.fill(w0 + op.off, n, op.value);
      else c.write(w0 + op.off, new Uint8Array(n).fill(op.value));
      break;
    }
    case "dma": {
      // A device write behind the cache: DRAM and the shadow's epochs.
      const n = clampLen(op.off, op.len);
      const epoch = r.shadow.beginWrite("dev", 0, "DMA write");
      r.mem.write(w0 + op.off, new Uint8Array(n).fill(op.value));
      const base = r.mem.base;
      const L = c.line;
      if (n > 0)
        r.shadow.memEpoch.fillRange(
          Math.floor((w0 + op.off - base) / L),
          Math.floor((w0 + op.off + n - 1 - base) / L) + 1,
          epoch,
        );
      break;
    }
    case "snoop": {
      const n = clampLen(op.off, op.len);
      if (n > 0) {
        c.snoopWrite(w0 + op.off, n);
        r.mem.write(w0 + op.off, new Uint8Array(n).fill(0x77));
      }
      break;
    }
    case "clean":
      c.cleanRange(w0 + op.off, clampLen(op.off, op.len));
      break;
    case "flush":
      c.flushRange(w0 + op.off, clampLen(op.off, op.len));
      break;
    case "invalidate":
      c.invalidateRange(w0 + op.off, clampLen(op.off, op.len));
      break;
    case "cleanAll":
      c.cleanAll();
      break;
    case "flushAll":
      c.flushAll();
      break;
  }
}

/** Two identical caches over the window: `fast` with the closed forms, `ref` line by line. */
function closedFormPair(geometry: CacheGeometry): { fast: CacheRig; ref: CacheRig; w0: number } {
  const fast = cacheRig(geometry);
  const ref = cacheRig(geometry);
  ref.cache.closedForms = false;
  return { fast, ref, w0: fast.mem.base + MiB - WIN / 2 };
}

/** `op` on both caches; a load's bytes must agree. */
function applyBoth(fast: CacheRig, ref: CacheRig, w0: number, op: Op): void {
  if (op.kind === "read") {
    const n = clampLen(op.off, op.len);
    const out = [new Uint8Array(WIN), new Uint8Array(WIN)];
    fast.cache.read(w0 + op.off, n, out[0]!);
    ref.cache.read(w0 + op.off, n, out[1]!);
    assert.deepEqual(out[0], out[1], "the bytes loaded");
  } else {
    apply(fast, w0, op, true);
    apply(ref, w0, op, true);
  }
}

describe("fast paths equal their reference", () => {
  test("a fill (memset, clear_page) through the cache equals a write of the same bytes", () => {
    fc.assert(
      fc.property(
        geometryArb,
        fc.boolean(),
        fc.array(opArb, { maxLength: 40 }),
        (geometry, prefilled, ops) => {
          const fast = cacheRig(geometry);
          const ref = cacheRig(geometry);
          const w0 = fast.mem.base + MiB - WIN / 2;
          if (prefilled) {
            for (const r of [fast, ref]) r.mem.write(w0, new Uint8Array(WIN).fill(0x33));
          }
          for (const op of ops) {
            apply(fast, w0, op, true);
            apply(ref, w0, op, false);
            assert.deepEqual(state(fast, w0), state(ref, w0), JSON.stringify(op));
          }
          // The zero-page paths may only ever back less host memory, never more.
          assert.ok(fast.mem.residentBytes <= ref.mem.residentBytes);
        },
      ),
      { numRuns: 300 },
    );
  });
});

describe("closed forms of long sequential accesses and range maintenance", () => {
  /** Loads, stores and maintenance over the whole window (several times any generated cache) and beyond, mixed with the rest. */
  const longArb: fc.Arbitrary<Op> = fc.oneof(
    fc.record({
      kind: fc.constant("read" as const),
      off: fc.integer({ min: 0, max: 200 }),
      len: fc.integer({ min: WIN / 4, max: WIN }),
    }),
    fc
      .record({
        off: fc.integer({ min: 0, max: 200 }),
        len: fc.integer({ min: WIN / 4, max: WIN }),
        seed: fc.integer({ min: 1, max: 255 }),
      })
      .map(({ off, len, seed }) => ({
        kind: "write" as const,
        off,
        data: Uint8Array.from({ length: len }, (_, i) => (i * seed + (i >>> 7)) & 0xff),
      })),
    fc.record({
      kind: fc.constant("fill" as const),
      off: fc.integer({ min: 0, max: 200 }),
      len: fc.integer({ min: WIN / 4, max: WIN }),
      value: fc.constantFrom(0, 0xa5),
    }),
    // A flush of hundreds of pages around the window (written as a clean of no bytes).
    fc.constant({ kind: "clean" as const, off: 0, len: 0 }),
    // Maintenance of ranges many times the cache.
    fc.record({
      kind: fc.constantFrom("clean" as const, "flush" as const, "invalidate" as const),
      off: fc.integer({ min: 0, max: 200 }),
      len: fc.integer({ min: WIN / 4, max: WIN }),
    }),
  );

  test("equal the line-by-line path: every slot, dirty bit, counter, finding and DRAM byte", () => {
    let taken = 0;
    let runs = 0;
    fc.assert(
      fc.property(
        geometryArb,
        fc.array(fc.oneof({ weight: 2, arbitrary: longArb }, { weight: 3, arbitrary: opArb }), {
          maxLength: 16,
        }),
        (geometry, ops) => {
          const { fast, ref, w0 } = closedFormPair(geometry);
          for (const op of ops) {
            if (op.kind === "clean" && op.len === 0) {
              // A range of hundreds of pages around the window: only held pages visited.
              for (const r of [fast, ref]) r.cache.flushRange(w0 - 512 * 1024, WIN + 1024 * 1024);
            } else applyBoth(fast, ref, w0, op);
            assert.deepEqual(state(fast, w0), state(ref, w0), JSON.stringify(op.kind));
            assertFreeMask(fast.cache);
          }
          // What replacement does next depends on stamps and PLRU bits: a sweep shows it.
          for (const r of [fast, ref]) r.cache.read(w0, WIN, new Uint8Array(WIN));
          assert.deepEqual(state(fast, w0), state(ref, w0), "after a sweep");
          assert.equal(ref.cache.closedFormLines, 0);
          runs++;
          if (fast.cache.closedFormLines > 0) taken++;
        },
      ),
      { numRuns: 300 },
    );
    // The property is about the closed form: most runs must have taken it.
    assert.ok(taken > runs / 2, `closed form taken in ${taken} of ${runs} runs`);
  });

  test("a clean equals the line-by-line clean in every piece of state (fill epochs, lost writes, DRAM)", () => {
    // Dirty lines of distinct bytes scattered over the window or whole pages of them,
    // devices writing behind them, then cleans: the fast clean visits only dirty lines,
    // takes a whole dirty page in consecutive slots at once and stops at the last.
    const scattered = fc.record({
      kind: fc.constant("scatter" as const),
      lines: fc.array(fc.integer({ min: 0, max: WIN / 16 - 1 }), { minLength: 1, maxLength: 40 }),
      seed: fc.integer({ min: 1, max: 255 }),
    });
    const pages = fc.record({
      kind: fc.constant("pages" as const),
      page: fc.integer({ min: 0, max: WIN / 4096 - 1 }),
      count: fc.integer({ min: 1, max: 2 }),
      seed: fc.integer({ min: 1, max: 255 }),
      // Into an empty cache: each page's lines in consecutive slots of one way.
      fresh: fc.oneof({ weight: 3, arbitrary: fc.constant(true) }, fc.constant(false)),
      // Another page after them (with a page between, the next way's consecutive slots:
      // a run of slots that is not one of DRAM).
      also: fc.option(fc.constantFrom(1, 2), { nil: undefined }),
      // A device writing behind some of the lines before the clean (lost writes).
      device: fc.option(fc.record({ off: off, len: fc.integer({ min: 1, max: 8192 }) }), {
        nil: undefined,
      }),
      clean: fc.boolean(),
    });
    const pageGeometryArb: fc.Arbitrary<CacheGeometry> = fc
      .record({
        sets: fc.oneof({ weight: 2, arbitrary: fc.constant(64) }, fc.constant(128)),
        ways: fc.constantFrom(2, 4),
      })
      .map(({ sets, ways }) => ({
        lineSize: 64,
        levels: [
          { name: "L1", sizeBytes: 8 * 64, ways: 2 },
          { name: "L2", sizeBytes: sets * ways * 64, ways },
        ],
        replacement: "plru" as const,
      }));
    const cleanArb = fc.record({
      kind: fc.constant("clean" as const),
      off: fc.integer({ min: 0, max: 200 }),
      len: fc.integer({ min: 1, max: WIN }),
    });
    let cleaned = 0;
    fc.assert(
      fc.property(
        // Caches of hundreds of lines too, and of a page or more per way (a page stored in
        // sequence lies in consecutive slots).
        fc.oneof(geometryArb, bigGeometryArb, pageGeometryArb),
        fc.array(
          fc.oneof(
            { weight: 3, arbitrary: scattered },
            { weight: 3, arbitrary: cleanArb },
            { weight: 3, arbitrary: opArb },
            { weight: 2, arbitrary: longArb },
            { weight: 4, arbitrary: pages },
          ),
          { maxLength: 20 },
        ),
        (geometry, ops) => {
          const { fast, ref, w0 } = closedFormPair(geometry);
          const L = geometry.lineSize;
          const stateLines = (w0 - fast.mem.base + WIN) / L + 1;
          for (const op of ops) {
            if (op.kind === "scatter") {
              for (const l of op.lines) {
                const at = (l * 16) % WIN;
                const data = Uint8Array.from({ length: 16 }, (_, i) => (l * op.seed + i) & 0xff);
                for (const r of [fast, ref]) r.cache.write(w0 + at, data);
              }
            } else if (op.kind === "pages") {
              const n = Math.min(op.count * 4096, WIN - op.page * 4096);
              const data = Uint8Array.from(
                { length: n },
                (_, i) => (i * op.seed + (i >>> 6)) & 0xff,
              );
              for (const r of [fast, ref]) {
                if (op.fresh) r.cache.flushAll();
                r.cache.write(w0 + op.page * 4096, data);
                if (op.also !== undefined && op.page + op.also < WIN / 4096)
                  r.cache.write(w0 + (op.page + op.also) * 4096, data.subarray(0, 4096));
                if (op.device !== undefined)
                  apply(r, w0, { kind: "dma", value: 0x5a, ...op.device }, true);
                if (op.clean) r.cache.cleanRange(w0, WIN);
              }
              if (op.clean) cleaned++;
            } else {
              if (op.kind === "clean" && fast.cache.dirtyLines > 0) cleaned++;
              applyBoth(fast, ref, w0, op);
            }
            assert.deepEqual(
              fast.cache.stateForTests(stateLines),
              ref.cache.stateForTests(stateLines),
              op.kind,
            );
            assert.deepEqual(state(fast, w0), state(ref, w0), op.kind);
          }
        },
      ),
      { numRuns: 300 },
    );
    assert.ok(cleaned > 200, `cleans of dirty lines: ${cleaned}`);
  });

  test("take the closed form: a store four times the cache fills and evicts in bulk", () => {
    const r = cacheRig(
      {
        lineSize: 64,
        levels: [
          { name: "L1", sizeBytes: 1024, ways: 2 },
          { name: "L2", sizeBytes: 4096, ways: 4 },
        ],
        replacement: "plru",
      },
      0x1000_0000,
      4 * MiB,
    );
    const data = Uint8Array.from({ length: 16384 }, (_, i) => i & 0xff);
    r.cache.write(r.mem.base, data);
    assert.equal(r.cache.closedFormLines, 192, "three of the four cache-fulls in closed form");
    // The last cache-full is held dirty; the rest reached DRAM.
    assert.equal(r.cache.dirtyLines, 64);
    assert.deepEqual(r.mem.slice(r.mem.base, 12288), data.subarray(0, 12288));
    assert.equal(r.cache.counters.fills, 256);
    assert.equal(r.cache.counters.writebacks, 192);
    const back = new Uint8Array(16384);
    r.cache.read(r.mem.base, 16384, back);
    assert.deepEqual(back, data);
  });
});

/**
 * Replays random operations with batches of speculative fills on two caches, one through
 * `prefetchLines` and one through a `prefetch` per line, comparing every slot, stamp,
 * note, counter, finding in order and DRAM byte. Returns the lost writes found.
 */
function checkPrefetchLines(
  geometries: fc.Arbitrary<CacheGeometry>,
  batchArb: fc.Arbitrary<{ kind: "prefetch"; lines: number[]; note: number; heldFirst?: boolean }>,
  numRuns: number,
  ramBytes = 2 * MiB,
): number {
  let lost = 0;
  fc.assert(
    fc.property(
      geometries,
      fc.boolean(),
      fc.array(fc.oneof({ weight: 2, arbitrary: batchArb }, { weight: 3, arbitrary: opArb }), {
        maxLength: 30,
      }),
      (geometry, racing, ops) => {
        const fast = cacheRig(geometry, undefined, ramBytes);
        const ref = cacheRig(geometry, undefined, ramBytes);
        const w0 = fast.mem.base + MiB - WIN / 2;
        const L = geometry.lineSize;
        const lines0 = (w0 - fast.mem.base) / L;
        const windowLines = WIN / L;
        // Every line of DRAM different, so a fill that copies the wrong line shows.
        for (const r of [fast, ref]) r.mem.write(w0, pattern(WIN, 3));
        if (racing) {
          // The CPU's dirty lines under a device write: every one a lost write when a
          // fill evicts it.
          for (const r of [fast, ref]) {
            apply(r, w0, { kind: "fill", off: 0, len: WIN, value: 0x11 }, true);
            apply(r, w0, { kind: "dma", off: 0, len: WIN, value: 0x5a }, true);
          }
        }
        for (const op of ops) {
          if (op.kind !== "prefetch") {
            apply(fast, w0, op, true);
            apply(ref, w0, op, true);
          } else {
            // Filled as of just before a device write, as the speculation hook does.
            const epoch = fast.shadow.beginWrite("dev", 0, "DMA write");
            ref.shadow.beginWrite("dev", 0, "DMA write");
            // A batch may begin with a block (256 draws) of lines all cached already.
            const held: number[] = [];
            if (op.heldFirst === true)
              for (let l = 0; l < windowLines; l++)
                if (fast.cache.probe(w0 + l * L).cached) held.push(l);
            const first =
              held.length === 0
                ? []
                : Array.from({ length: 256 }, (_, i) => held[i % held.length]!);
            const lines = Float64Array.from(
              [...first, ...op.lines],
              (l) => lines0 + (l % windowLines),
            );
            const found: string[][] = [[], []];
            for (let k = 0; k < lines.length; ) {
              k = fast.cache.prefetchLines(lines, k, lines.length, epoch - 1, op.note);
              if (fast.cache.findings.lostWrite !== undefined)
                found[0]!.push(JSON.stringify(fast.cache.findings.lostWrite));
            }
            for (const li of lines) {
              ref.cache.prefetch(ref.mem.base + li * L, epoch - 1, op.note);
              if (ref.cache.findings.lostWrite !== undefined)
                found[1]!.push(JSON.stringify(ref.cache.findings.lostWrite));
            }
            assert.deepEqual(found[0], found[1], "lost writes, in order");
            lost += found[0]!.length;
          }
          if (op.kind !== "prefetch" && op !== ops[ops.length - 1]) continue;
          const notes = (r: CacheRig): (number | undefined)[] => {
            const out: (number | undefined)[] = [];
            for (let o = 0; o < WIN; o += L) out.push(r.cache.prefetchNoteOf(w0 + o));
            return out;
          };
          assert.deepEqual(notes(fast), notes(ref), "notes");
          const lines = (w0 - fast.mem.base + WIN) / L + 1;
          assert.deepEqual(
            fast.cache.stateForTests(lines),
            ref.cache.stateForTests(lines),
            op.kind,
          );
          assert.deepEqual(fast.mem.slice(w0, WIN), ref.mem.slice(w0, WIN), "DRAM");
          assertFreeMask(fast.cache);
        }
      },
    ),
    { numRuns },
  );
  return lost;
}

/**
 * A device write's speculative fills of `lines` on each rig, as the speculation hook
 * makes them (filled as of just before the write, going on after each lost write).
 */
function speculativeFills(rigs: readonly CacheRig[], lines: Float64Array): void {
  for (const r of rigs) {
    const epoch = r.shadow.beginWrite("dev", 0, "DMA write");
    for (let k = 0; k < lines.length; )
      k = r.cache.prefetchLines(lines, k, lines.length, epoch - 1, 7);
  }
}

describe("speculative fills in bulk", () => {
  test("prefetchLines equals a prefetch per line: every slot, stamp, note, counter, finding and DRAM byte", () => {
    const batchArb = fc.record({
      kind: fc.constant("prefetch" as const),
      // Lines of the window, with repeats (a draw may land on a line filled before).
      lines: fc.array(fc.integer({ min: 0, max: WIN / 16 - 1 }), { maxLength: 120 }),
      note: fc.integer({ min: 0, max: 1000 }),
    });
    const lost = checkPrefetchLines(geometryArb, batchArb, 150);
    // The stop-and-report path must have been exercised.
    assert.ok(lost > 0, "some fill's victim destroyed a device write");
  });

  test("in batches of many blocks (256 fills each) into caches of hundreds of lines, the same", () => {
    // Long batches over the window into a cache that keeps most of them, batches of lines
    // repeated, and batches whose first block is of lines cached already.
    const lineArb = fc.integer({ min: 0, max: WIN / 16 - 1 });
    const batchArb = fc.record({
      kind: fc.constant("prefetch" as const),
      lines: fc.oneof(
        fc.array(lineArb, { minLength: 257, maxLength: 1200 }),
        fc.array(lineArb, { minLength: 1, maxLength: 300 }).map((l) => [...l, ...l, ...l]),
      ),
      note: fc.integer({ min: 0, max: 1000 }),
      heldFirst: fc.boolean(),
    });
    checkPrefetchLines(bigGeometryArb, batchArb, 40);
  });

  test("on a RAM too large for one reverse-map view (Chunked.flatView), the same a line at a time", () => {
    const batchArb = fc.record({
      kind: fc.constant("prefetch" as const),
      lines: fc.array(fc.integer({ min: 0, max: WIN / 16 - 1 }), { maxLength: 300 }),
      note: fc.integer({ min: 0, max: 1000 }),
    });
    // 2^33 lines of 16 bytes or more: above the view's 2^28 entries whatever the line size.
    checkPrefetchLines(geometryArb, batchArb, 30, 2 ** 37);
  });
});

/**
 * How many times `run` fills all of `cache`'s tags with INVALID at once (the cache
 * emptied by whole-array fills, `#dropEverything`, rather than slot by slot): a spy on
 * Float64Array fills (the tags' kind) while it runs.
 */
function tagFills(cache: CpuCache, run: () => void): number {
  let fills = 0;
  const fill = Float64Array.prototype.fill;
  Object.defineProperty(Float64Array.prototype, "fill", {
    configurable: true,
    writable: true,
    value: function (this: Float64Array, v: number, from?: number, to?: number) {
      if (this.length === cache.slots && v === -1 && from === undefined && to === undefined)
        fills++;
      return fill.call(this, v, from, to);
    },
  });
  try {
    run();
  } finally {
    delete (Float64Array.prototype as { fill?: unknown }).fill;
  }
  return fills;
}

describe("invalidation of a range larger than the cache by walking the slots", () => {
  test("equals the page-by-page invalidation: every slot, inner level, reverse map, count and byte", () => {
    // Clean lines spread over the window (loads and speculative fills), some dirty ones,
    // then invalidates of ranges many times the cache: with no dirty line in the range
    // the slots are walked, else the pages; both must leave what the pages leave.
    const bigInvalidate = fc.record({
      kind: fc.constant("invalidate" as const),
      off: fc.integer({ min: 0, max: 200 }),
      len: fc.integer({ min: WIN / 2, max: WIN }),
    });
    const cleanAfter = fc.record({
      kind: fc.constant("clean" as const),
      off: fc.constant(0),
      len: fc.constant(WIN),
    });
    const fills = fc.record({
      kind: fc.constant("prefetch" as const),
      lines: fc.array(fc.integer({ min: 0, max: WIN / 16 - 1 }), { minLength: 1, maxLength: 80 }),
    });
    let walked = 0;
    fc.assert(
      fc.property(
        geometryArb,
        fc.array(
          fc.oneof(
            { weight: 2, arbitrary: bigInvalidate },
            { weight: 1, arbitrary: cleanAfter },
            { weight: 2, arbitrary: fills },
            { weight: 3, arbitrary: opArb },
          ),
          { maxLength: 30 },
        ),
        (geometry, ops) => {
          const { fast, ref, w0 } = closedFormPair(geometry);
          const L = geometry.lineSize;
          const lines0 = (w0 - fast.mem.base) / L;
          const windowLines = WIN / L;
          const stateLines = (w0 - fast.mem.base + WIN) / L + 1;
          for (const op of ops) {
            if (op.kind === "prefetch") {
              const lines = Float64Array.from(op.lines, (l) => lines0 + (l % windowLines));
              speculativeFills([fast, ref], lines);
            } else {
              if (op.kind === "invalidate" && op.len >= WIN / 2 && fast.cache.dirtyLines === 0)
                walked++;
              apply(fast, w0, op, true);
              apply(ref, w0, op, true);
            }
            assertSameRigs(fast, ref, w0, stateLines, op.kind);
          }
          assertSameAfterSweep(fast, ref, w0, stateLines);
        },
      ),
      { numRuns: 200 },
    );
    assert.ok(walked > 50, `large invalidates with nothing dirty: ${walked}`);
  });

  test("when every line held lies in the range, emptying the cache at once equals it too", () => {
    // The unmap of a buffer larger than the cache that holds nothing else: the window
    // invalidated (whole pages: the page counts say every line is inside; from a line's
    // offset or to one: the counts of the pages inside and the edge pages' lines say so),
    // sometimes with a line held outside the range: on the page after the window, or on
    // a partly covered edge page (the window's first or last line).
    const cover = fc.record({
      kind: fc.constant("cover" as const),
      off: fc.oneof(
        { weight: 3, arbitrary: fc.constant(0) },
        { weight: 1, arbitrary: fc.integer({ min: 1, max: 200 }) },
      ),
      trim: fc.oneof(
        { weight: 3, arbitrary: fc.constant(0) },
        { weight: 1, arbitrary: fc.integer({ min: 1, max: 200 }) },
      ),
      outside: fc.oneof(
        { weight: 3, arbitrary: fc.constant(undefined) },
        fc.constantFrom(WIN, 0, WIN - 1),
      ),
      // A device's write first: speculative fills all over the window.
      lines: fc.array(fc.integer({ min: 0, max: WIN / 16 - 1 }), { maxLength: 80 }),
    });
    const fills = fc.record({
      kind: fc.constant("prefetch" as const),
      lines: fc.array(fc.integer({ min: 0, max: WIN / 16 - 1 }), { minLength: 1, maxLength: 80 }),
    });
    let emptied = 0;
    let kept = 0;
    // Caches of 8 to 32 lines of 32 or 64 bytes: enough lines held for the whole-range
    // fills (at most 64 lines of the range per line held), the range over twice the cache.
    const coverGeometryArb = cacheGeometryArb([4, 8]).filter((g) => g.lineSize >= 32);
    fc.assert(
      fc.property(
        coverGeometryArb,
        fc.array(
          fc.oneof(
            { weight: 3, arbitrary: cover },
            { weight: 3, arbitrary: fills },
            { weight: 3, arbitrary: opArb },
          ),
          { maxLength: 30 },
        ),
        (geometry, ops) => {
          const { fast, ref, w0 } = closedFormPair(geometry);
          const L = geometry.lineSize;
          const lines0 = (w0 - fast.mem.base) / L;
          const windowLines = WIN / L;
          const stateLines = (w0 - fast.mem.base + WIN) / L + 2;
          for (const op of ops) {
            if (op.kind === "prefetch") {
              const lines = Float64Array.from(op.lines, (l) => lines0 + (l % windowLines));
              speculativeFills([fast, ref], lines);
            } else if (op.kind === "cover") {
              const lines = Float64Array.from(op.lines, (l) => lines0 + (l % windowLines));
              speculativeFills([fast, ref], lines);
              for (const r of [fast, ref]) {
                // The slot walk takes only ranges with no dirty line.
                r.cache.cleanRange(w0, WIN);
                if (op.outside !== undefined) r.cache.read(w0 + op.outside, 1, new Uint8Array(1));
              }
              const n = WIN - op.off - op.trim;
              let inside = 0;
              fast.cache.forEachCachedLine(w0 + op.off, n, () => inside++);
              // (The slot walk fills the reverse map whole only for enough lines held.)
              const rangeLines = Math.floor((op.off + n - 1) / L) - Math.floor(op.off / L) + 1;
              const empties = inside === fast.cache.validLines && rangeLines <= 64 * inside;
              if (empties) emptied++;
              else kept++;
              // The fast cache empties itself at once exactly when every line held is in
              // the range (a no there walks the slots to the same state, only slower).
              const atOnce = tagFills(fast.cache, () => fast.cache.invalidateRange(w0 + op.off, n));
              assert.equal(atOnce, empties ? 1 : 0, "the cache emptied at once");
              ref.cache.invalidateRange(w0 + op.off, n);
            } else {
              apply(fast, w0, op, true);
              apply(ref, w0, op, true);
            }
            assertSameRigs(fast, ref, w0, stateLines, op.kind);
          }
          assertSameAfterSweep(fast, ref, w0, stateLines);
        },
      ),
      { numRuns: 200 },
    );
    assert.ok(emptied > 50 && kept > 50, `emptied ${emptied}, kept ${kept}`);
  });

  test("with ranges inside a page, across two pages and at either end of RAM, the same", () => {
    // The test above always covers whole pages. Here a cache of 2 to 8 lines is emptied
    // by ranges inside one page (no page wholly inside, so #allHeldIn reads one page's
    // lines), over two edge pages with no whole page between, and from RAM offset 0 or up
    // to the end of RAM: three pages at either end of RAM, compared in full.
    const AREA = 3 * 4096;
    type Range = { end: boolean; off: number; len: number };
    // Mostly off both of the page's boundaries (no page wholly inside), sometimes from
    // its start or to its end (one edge empty).
    const inPage = fc
      .record({
        end: fc.boolean(),
        page: fc.integer({ min: 0, max: 2 }),
        a: fc.oneof(fc.constant(0), { weight: 4, arbitrary: fc.integer({ min: 1, max: 4095 }) }),
        b: fc.oneof(fc.constant(4096), { weight: 4, arbitrary: fc.integer({ min: 1, max: 4095 }) }),
      })
      .map(({ end, page, a, b }) => {
        const from = Math.min(a, b);
        return { end, off: page * 4096 + from, len: Math.max(1, Math.max(a, b) - from) };
      });
    const acrossTwo = fc
      .record({
        end: fc.boolean(),
        page: fc.integer({ min: 0, max: 1 }),
        from: fc.integer({ min: 1, max: 4095 }),
        to: fc.integer({ min: 1, max: 4095 }),
      })
      .map(({ end, page, from, to }) => ({
        end,
        off: page * 4096 + from,
        len: 4096 - from + to,
      }));
    const atStart = fc.integer({ min: 1, max: AREA }).map((len) => ({ end: false, off: 0, len }));
    const atEnd = fc
      .integer({ min: 1, max: AREA })
      .map((len) => ({ end: true, off: AREA - len, len }));
    const range: fc.Arbitrary<Range> = fc.oneof(inPage, acrossTwo, atStart, atEnd);
    const areaLine = fc.integer({ min: 0, max: AREA / 32 - 1 });
    const rangeOp = fc.record({
      kind: fc.constantFrom("read", "write", "clean", "flush", "invalidate"),
      range,
      seed: fc.integer({ min: 1, max: 255 }),
    });
    const fills = fc.record({
      kind: fc.constant("prefetch" as const),
      end: fc.boolean(),
      lines: fc.array(areaLine, { minLength: 1, maxLength: 12 }),
    });
    const cover = fc.record({
      kind: fc.constant("cover" as const),
      range,
      // Lines of the range filled first (mod its length), sometimes into an empty cache.
      fresh: fc.boolean(),
      lines: fc.array(fc.nat(), { maxLength: 16 }),
      // A line held outside: just before or after the range (its edge page's, when the
      // range is off page boundaries), or at the other end of RAM.
      outside: fc.oneof(
        { weight: 3, arbitrary: fc.constant(undefined) },
        fc.constantFrom("before", "after", "other"),
      ),
    });
    const tinyGeometryArb: fc.Arbitrary<CacheGeometry> = fc
      .record({
        line: fc.constantFrom(32, 64),
        shape: fc.constantFrom<[number, number]>(
          [1, 2],
          [2, 1],
          [1, 4],
          [2, 2],
          [4, 1],
          [1, 8],
          [2, 4],
          [4, 2],
          [8, 1],
        ),
        inner: fc.boolean(),
        replacement: fc.constantFrom<"lru" | "plru">("lru", "plru"),
      })
      .map(({ line, shape: [sets, ways], inner, replacement }) => ({
        lineSize: line,
        levels: [
          ...(inner ? [{ name: "L1", sizeBytes: line, ways: 1 }] : []),
          { name: "L2", sizeBytes: sets * ways * line, ways },
        ],
        replacement,
      }));
    // Per kind of range, how often #allHeldIn answered yes and no.
    const seen: Record<string, number> = {};
    const count = (what: string): void => {
      seen[what] = (seen[what] ?? 0) + 1;
    };
    fc.assert(
      fc.property(
        tinyGeometryArb,
        fc.array(
          fc.oneof(
            { weight: 5, arbitrary: cover },
            { weight: 2, arbitrary: fills },
            { weight: 3, arbitrary: rangeOp },
          ),
          { maxLength: 30 },
        ),
        (geometry, ops) => {
          const fast = cacheRig(geometry);
          const ref = cacheRig(geometry);
          ref.cache.closedForms = false;
          const L = geometry.lineSize;
          const lpp = 4096 / L;
          const base = fast.mem.base;
          const ramEnd = base + fast.mem.size;
          const ramLines = fast.mem.size / L;
          const areaLines = AREA / L;
          const at = (end: boolean): number => (end ? ramEnd - AREA : base);
          // Every line of DRAM different, so a write-back of the wrong line shows.
          for (const r of [fast, ref])
            for (const end of [false, true]) r.mem.write(at(end), pattern(AREA, end ? 5 : 3));
          const compare = (what: string): void => {
            assert.deepEqual(
              fast.cache.stateForTests(areaLines),
              ref.cache.stateForTests(areaLines),
              `${what}: state at RAM's start`,
            );
            assert.deepEqual(
              fast.cache.stateForTests(ramLines, ramLines - areaLines),
              ref.cache.stateForTests(ramLines, ramLines - areaLines),
              `${what}: state at RAM's end`,
            );
            for (const end of [false, true])
              assert.deepEqual(fast.mem.slice(at(end), AREA), ref.mem.slice(at(end), AREA), what);
            assertFreeMask(fast.cache);
            assertFreeMask(ref.cache);
          };
          for (const op of ops) {
            if (op.kind === "prefetch") {
              const first = (at(op.end) - base) / L;
              const lines = Float64Array.from(op.lines, (l) => first + (l % areaLines));
              speculativeFills([fast, ref], lines);
            } else if (op.kind === "cover") {
              const { end, off, len } = op.range;
              const phys = at(end) + off;
              const first = Math.floor((phys - base) / L);
              const last = Math.floor((phys + len - 1 - base) / L);
              const rangeLines = last - first + 1;
              const lines = Float64Array.from(op.lines, (l) => first + (l % rangeLines));
              if (op.fresh) for (const r of [fast, ref]) r.cache.flushAll();
              speculativeFills([fast, ref], lines);
              for (const r of [fast, ref]) {
                // The slot walk takes only ranges with no dirty line on their pages.
                for (const e of [false, true]) r.cache.cleanRange(at(e), AREA);
                const out =
                  op.outside === "before"
                    ? phys - L
                    : op.outside === "after"
                      ? phys + len + L - 1
                      : op.outside === "other"
                        ? at(!end) + 4096
                        : undefined;
                if (out !== undefined && out >= base && out < ramEnd)
                  r.cache.read(out, 1, new Uint8Array(1));
              }
              const p0 = Math.ceil(first / lpp);
              const p1 = Math.floor((last + 1) / lpp);
              let inside = 0;
              fast.cache.forEachCachedLine(phys, len, () => inside++);
              const held = fast.cache.validLines;
              // The slot walk: a range over twice the cache; #allHeldIn asked only with
              // the whole-range fills (at most 64 lines of the range per line held).
              const asked = rangeLines > 2 * fast.cache.slots && rangeLines <= 64 * held;
              const empties = asked && inside === held;
              const kind =
                phys === base
                  ? "atStart"
                  : phys + len === ramEnd
                    ? "atEnd"
                    : p1 < p0
                      ? "inPage"
                      : p1 === p0 && first % lpp !== 0 && (last + 1) % lpp !== 0
                        ? "acrossTwo"
                        : "other";
              if (asked) count(`${kind} ${empties ? "yes" : "no"}`);
              const atOnce = tagFills(fast.cache, () => fast.cache.invalidateRange(phys, len));
              assert.equal(atOnce, empties ? 1 : 0, "the cache emptied at once");
              ref.cache.invalidateRange(phys, len);
            } else {
              const { end, off, len } = op.range;
              const phys = at(end) + off;
              for (const r of [fast, ref]) {
                const c = r.cache;
                if (op.kind === "read") c.read(phys, len, new Uint8Array(len));
                else if (op.kind === "write") c.write(phys, pattern(len, op.seed));
                else if (op.kind === "clean") c.cleanRange(phys, len);
                else if (op.kind === "flush") c.flushRange(phys, len);
                else c.invalidateRange(phys, len);
              }
            }
            compare(op.kind);
          }
          // The replacement state decides what a sweep keeps.
          for (const r of [fast, ref])
            for (const end of [false, true]) r.cache.read(at(end), AREA, new Uint8Array(AREA));
          compare("after a sweep");
        },
      ),
      { numRuns: 500 },
    );
    // Every kind of range asked, and answered both ways.
    for (const kind of ["inPage", "acrossTwo", "atStart", "atEnd"])
      for (const answer of ["yes", "no"])
        assert.ok(
          (seen[`${kind} ${answer}`] ?? 0) >= 15,
          `${kind} ${answer}: ${JSON.stringify(seen)}`,
        );
  });
});

describe("sets wider than 32 ways", () => {
  test("have no free bits: a dropped way is found by its tag, and no line is overwritten", () => {
    // Before, a drop set bit `way & 31`: in a 64-way set the next fill took a way that
    // held a line, losing it without an eviction.
    fc.assert(
      fc.property(
        fc.constantFrom(33, 40, 64),
        fc.constantFrom<"lru">("lru"),
        fc.array(opArb, { maxLength: 40 }),
        (ways, replacement, ops) => {
          const r = cacheRig({
            lineSize: 64,
            levels: [{ name: "L2", sizeBytes: 2 * ways * 64, ways }],
            replacement,
          });
          const w0 = r.mem.base + MiB - WIN / 2;
          // Both sets full, then the operations (snoops and invalidates make holes).
          r.cache.read(w0, WIN, new Uint8Array(WIN));
          for (const op of ops) {
            apply(r, w0, op, true);
            let cached = 0;
            for (let o = 0; o < WIN; o += 64) if (r.cache.probe(w0 + o).cached) cached++;
            assert.equal(cached, r.cache.validLines, `${op.kind}: lines cached, by their slots`);
            assertFreeMask(r.cache);
          }
        },
      ),
      { numRuns: 100 },
    );
  });
});

describe("zero pages", () => {
  test("zeros stored into DRAM never written, directly or by write-back, cost no host memory", () => {
    const r = cacheRig(
      {
        lineSize: 64,
        levels: [{ name: "L2", sizeBytes: 64 * 1024, ways: 4 }],
        replacement: "lru",
      },
      0x1000_0000,
      8 * MiB,
    );
    // clear_page of 4 MiB through a 64 KiB cache: almost every line is evicted dirty.
    r.cache.fill(r.mem.base, 4 * MiB, 0);
    r.cache.flushAll();
    r.mem.write(r.mem.base + MiB, new Uint8Array(MiB));
    assert.equal(r.mem.residentBytes, 0);
    // A non-zero byte backs its chunk, and reads back.
    r.cache.fill(r.mem.base + 3, 1, 7);
    r.cache.flushAll();
    assert.equal(r.mem.residentBytes, MiB);
    assert.equal(r.mem.slice(r.mem.base, 8)[3], 7);
  });

  test("zeroing a whole chunk gives its host memory back; released memory reads as zero", () => {
    const m = new PhysicalMemory(0x4000_0000, 4 * MiB);
    m.fill(m.base, 2 * MiB, 0xab);
    assert.equal(m.residentBytes, 2 * MiB);
    m.fill(m.base + 100, MiB + 10, 0); // covers no whole chunk but the first's tail
    assert.equal(m.residentBytes, 2 * MiB);
    m.fill(m.base, MiB, 0);
    assert.equal(m.residentBytes, MiB);
    assert.deepEqual(m.slice(m.base + MiB - 4, 8), new Uint8Array(8));
    assert.equal(m.slice(m.base + MiB + 200, 1)[0], 0xab);
    m.release();
    assert.equal(m.residentBytes, 0);
    // A chunk reused from the pool is cleared before it backs other memory.
    const n = new PhysicalMemory(0x4000_0000, 4 * MiB);
    n.fill(n.base + 5, 1, 1);
    assert.deepEqual(n.slice(n.base, 8), Uint8Array.of(0, 0, 0, 0, 0, 1, 0, 0));
    assert.equal(n.slice(n.base + MiB - 1, 1)[0], 0);
  });
});

describe("memory's write sequence", () => {
  test("moves on every way memory can change and stays put on reads", () => {
    const r = cacheRig(
      { lineSize: 64, levels: [{ name: "L2", sizeBytes: 4096, ways: 2 }], replacement: "lru" },
      0x1000_0000,
      4 * MiB,
    );
    const m = r.mem;
    const changes: [string, () => void][] = [
      ["write", () => m.write(m.base, Uint8Array.of(1))],
      ["fill", () => m.fill(m.base + MiB, 10, 0)],
      ["write-back", () => r.cache.flushAll()],
      ["release", () => m.release()],
    ];
    r.cache.write(m.base + 64, Uint8Array.of(9));
    for (const [what, change] of changes) {
      const before = m.writeSeq;
      m.slice(m.base, 256);
      r.cache.read(m.base, 256, new Uint8Array(256));
      assert.equal(m.writeSeq, before, `reads before ${what}`);
      change();
      assert.notEqual(m.writeSeq, before, what);
    }
  });
});

/**
 * The two rigs alike over the window's first `stateLines` lines (every slot, dirty bit,
 * line's data, reverse-map entry, page count, counter, finding) and in DRAM, and each
 * cache's free-way bits true to its slots.
 */
function assertSameRigs(
  fast: CacheRig,
  ref: CacheRig,
  w0: number,
  stateLines: number,
  what: string,
): void {
  assert.deepEqual(fast.cache.stateForTests(stateLines), ref.cache.stateForTests(stateLines), what);
  assert.deepEqual(state(fast, w0), state(ref, w0), what);
  assertFreeMask(fast.cache);
  assertFreeMask(ref.cache);
}

/** A read of the whole window on both rigs, then their caches alike: the replacement state decides what a sweep keeps. */
function assertSameAfterSweep(fast: CacheRig, ref: CacheRig, w0: number, stateLines: number): void {
  for (const r of [fast, ref]) r.cache.read(w0, WIN, new Uint8Array(WIN));
  assert.deepEqual(
    fast.cache.stateForTests(stateLines),
    ref.cache.stateForTests(stateLines),
    "after a sweep",
  );
}

/** {@link applyBoth}, then every piece of state over the window (and a few lines around it) must agree. */
function applyAndCompare(fast: CacheRig, ref: CacheRig, w0: number, op: Op): void {
  applyBoth(fast, ref, w0, op);
  const L = fast.cache.line;
  const first = (w0 - fast.mem.base) / L - 4;
  const last = (w0 - fast.mem.base + WIN) / L + 4;
  assert.deepEqual(
    fast.cache.stateForTests(last, first),
    ref.cache.stateForTests(last, first),
    op.kind,
  );
  assert.deepEqual(state(fast, w0), state(ref, w0), op.kind);
}

describe("CPU bulk loads and stores in closed form", () => {
  /** Caches of up to a quarter of the window, so long accesses span several cache-fulls. */
  const runGeometryArb: fc.Arbitrary<CacheGeometry> = fc
    .record({
      line: fc.constantFrom(16, 32, 64),
      // Set counts that are not powers of two too (a 12 MiB L3): runs of lines then
      // cross the shadow's and the reverse map's chunk boundaries.
      sets: fc.constantFrom(4, 6, 8, 12, 16, 32, 64),
      ways: fc.constantFrom(1, 2, 4, 8),
      inner: fc.option(fc.record({ sets: fc.constantFrom(1, 2, 4), ways: fc.constantFrom(1, 2) }), {
        nil: undefined,
      }),
      replacement: fc.constantFrom<"lru" | "plru">("lru", "plru"),
    })
    .filter(({ line, sets, ways }) => sets * ways * line <= WIN / 4)
    .map(({ line, sets, ways, inner, replacement }) => ({
      lineSize: line,
      levels: [
        ...(inner === undefined
          ? []
          : [{ name: "L1", sizeBytes: inner.sets * inner.ways * line, ways: inner.ways }]),
        { name: "L2", sizeBytes: sets * ways * line, ways },
      ],
      replacement,
    }));
  const longOp = (max: number): fc.Arbitrary<Op> =>
    fc.oneof(
      fc.record({
        kind: fc.constant("read" as const),
        off: fc.integer({ min: 0, max }),
        len: fc.integer({ min: WIN / 4, max: WIN }),
      }),
      fc
        .record({
          off: fc.integer({ min: 0, max }),
          len: fc.integer({ min: WIN / 4, max: WIN }),
          seed: fc.integer({ min: 1, max: 255 }),
          zero: fc.boolean(),
        })
        .map(({ off, len, seed, zero }) => ({
          kind: "write" as const,
          off,
          data: Uint8Array.from({ length: len }, (_, i) =>
            zero ? 0 : (i * seed + (i >>> 7)) & 0xff,
          ),
        })),
      fc.record({
        kind: fc.constant("fill" as const),
        off: fc.integer({ min: 0, max }),
        len: fc.integer({ min: WIN / 4, max: WIN }),
        value: fc.constantFrom(0, 0xa5),
      }),
    );

  test("equal the line-by-line path in every piece of state: stamps, tree bits, inner levels, reverse map, fill epochs", () => {
    let taken = 0;
    fc.assert(
      fc.property(
        runGeometryArb,
        fc.array(
          fc.oneof(
            // Line-aligned starts (the same sets in the same order again) and any others.
            { weight: 2, arbitrary: longOp(0) },
            { weight: 2, arbitrary: longOp(300) },
            { weight: 3, arbitrary: opArb },
          ),
          { maxLength: 14 },
        ),
        (geometry, ops) => {
          const { fast, ref, w0 } = closedFormPair(geometry);
          for (const op of ops) applyAndCompare(fast, ref, w0, op);
          if (fast.cache.closedFormLines > 0) taken++;
        },
      ),
      { numRuns: 250 },
    );
    assert.ok(taken > 100, `closed form taken in ${taken} runs`);
  });

  test("loads and stores of lines held, after devices wrote behind the cache: the same stale lines, lost writes and state", () => {
    // Accesses within 2 KiB of the window (a cache's size or less): mostly hits (the bulk
    // hit loop), with device writes in between for the findings.
    const regionOp = fc.oneof(
      fc.record({
        kind: fc.constant("read" as const),
        off: fc.integer({ min: 0, max: WIN / 8 }),
        len: fc.integer({ min: 256, max: WIN / 8 }),
      }),
      fc.record({
        kind: fc.constant("dma" as const),
        off: fc.integer({ min: 0, max: WIN / 8 }),
        len: fc.integer({ min: 0, max: WIN / 8 }),
        value: fc.constantFrom(0, 0x5a),
      }),
      fc.record({
        kind: fc.constant("fill" as const),
        off: fc.integer({ min: 0, max: WIN / 8 }),
        len: fc.integer({ min: 0, max: WIN / 8 }),
        value: fc.constantFrom(0, 0xa5),
      }),
      fc
        .record({ off: fc.integer({ min: 0, max: WIN / 8 }), len: fc.integer({ max: WIN / 8 }) })
        .map(({ off, len }) => ({
          kind: "write" as const,
          off,
          data: pattern(Math.max(0, len), off),
        })),
    );
    let stale = 0;
    let lost = 0;
    fc.assert(
      fc.property(
        runGeometryArb,
        fc.array(fc.oneof({ weight: 4, arbitrary: regionOp }, { weight: 1, arbitrary: opArb }), {
          minLength: 10,
          maxLength: 30,
        }),
        (geometry, ops) => {
          const { fast, ref, w0 } = closedFormPair(geometry);
          for (const op of ops) {
            applyAndCompare(fast, ref, w0, op);
            if (fast.cache.findings.staleRead !== undefined) stale++;
            if (fast.cache.findings.lostWrite !== undefined) lost++;
          }
        },
      ),
      { numRuns: 200 },
    );
    assert.ok(stale > 50 && lost > 20, `stale reads ${stale}, lost writes ${lost}`);
  });

  test("a run of evicted lines across a chunk of the shadow names the same lost writes", () => {
    // 6 sets: lines 32766..32771 (the shadow's chunks are 32768 lines) are one way's run.
    const geometry: CacheGeometry = {
      lineSize: 32,
      levels: [{ name: "L2", sizeBytes: 6 * 2 * 32, ways: 2 }],
      replacement: "lru",
    };
    const found: string[] = [];
    for (const closedForms of [true, false]) {
      const r = cacheRig(geometry);
      r.cache.closedForms = closedForms;
      const b = r.mem.base;
      r.cache.write(b + 32766 * 32, pattern(12 * 32, 1));
      const epoch = r.shadow.beginWrite("dev", 0, "DMA write");
      r.mem.write(b + 32767 * 32, new Uint8Array(64).fill(9));
      r.shadow.memEpoch.fillRange(32767, 32769, epoch);
      // Four cache-fulls elsewhere: the held lines are evicted in closed form.
      r.cache.write(b + 40000 * 32, pattern(48 * 32, 2));
      found.push(JSON.stringify([r.cache.findings, r.cache.stateForTests(40100, 32760)]));
      if (closedForms) assert.ok(r.cache.closedFormLines > 0);
    }
    assert.equal(found[0], found[1]);
    assert.match(found[0]!, /"lostWrite":\{"phys":\d+,"lines":2,/);
  });
});

describe("speculative fills whose data is copied late", () => {
  /**
   * Two caches over 4 MiB of RAM, one its memory's watcher (a batch's line data is copied
   * when something reads it or before DRAM under it changes, and a whole-chunk write
   * hands the old chunk over instead), one over a memory that already has a watcher
   * (copied at once, as before). Random batches of fills near two chunk boundaries and
   * inside the chunks, device writes (partial, whole chunks, zeros of a whole chunk,
   * zeros into memory never written), memsets, CPU loads and stores, invalidates,
   * cleans, flushes and peeks: every byte read, every DRAM byte and, at random points
   * and at the end, every slot, stamp, note, counter and finding must agree.
   */
  const RAM = 4 * MiB;
  /** Bytes that never repeat with a period of a cache's way size (pattern's do, every 256). */
  const noise = (len: number, seed: number): Uint8Array => {
    const out = new Uint8Array(len);
    let x = seed * 0x9e3779b1 + 1;
    for (let k = 0; k < len; k++) {
      x ^= x << 13;
      x ^= x >>> 17;
      x ^= x << 5;
      out[k] = x & 0xff;
    }
    return out;
  };
  const spots = [MiB - 8192, MiB + MiB / 2, 2 * MiB - 8192, 3 * MiB - 16384];
  const SPOT = 16384;
  const at = fc
    .tuple(fc.integer({ min: 0, max: spots.length - 1 }), fc.integer({ min: 0, max: SPOT - 1 }))
    .map(([s, o]) => spots[s]! + o);
  type LateOp =
    | { kind: "prefetch"; lines: number[]; note: number }
    | { kind: "chunk"; ci: number; value: number; zeros: boolean }
    | { kind: "dma" | "memset" | "read" | "write" | "peek"; at: number; len: number; value: number }
    | { kind: "invalidate" | "clean" | "flush"; at: number; len: number }
    | { kind: "touch"; k: number; write: boolean; value: number }
    | { kind: "compare" };
  const n = fc.integer({ min: 1, max: 3000 });
  const lateOp: fc.Arbitrary<LateOp> = fc.oneof(
    {
      weight: 4,
      arbitrary: fc.record({
        kind: fc.constant("prefetch" as const),
        // Batches of 256 fills or more copy late; shorter ones at once.
        lines: fc.oneof(
          fc.array(at, { minLength: 1, maxLength: 300 }),
          fc.array(at, { minLength: 256, maxLength: 700 }),
        ),
        note: fc.integer({ min: 0, max: 1000 }),
      }),
    },
    {
      weight: 3,
      arbitrary: fc.record({
        kind: fc.constant("chunk" as const),
        ci: fc.integer({ min: 0, max: 3 }),
        value: fc.integer({ min: 0, max: 255 }),
        zeros: fc.boolean(),
      }),
    },
    {
      weight: 6,
      arbitrary: fc.record({
        kind: fc.constantFrom(
          "dma" as const,
          "memset" as const,
          "read" as const,
          "write" as const,
          "peek" as const,
        ),
        at,
        len: n,
        value: fc.integer({ min: 0, max: 255 }),
      }),
    },
    {
      weight: 3,
      arbitrary: fc.record({
        kind: fc.constantFrom("invalidate" as const, "clean" as const, "flush" as const),
        at: fc.oneof(at, fc.constant(0)),
        len: fc.oneof(n, fc.constant(RAM)),
      }),
    },
    // Loads and partial stores of lines the last batch filled (most may still be cached).
    {
      weight: 4,
      arbitrary: fc.record({
        kind: fc.constant("touch" as const),
        k: fc.nat(),
        write: fc.boolean(),
        value: fc.integer({ min: 0, max: 255 }),
      }),
    },
    { weight: 1, arbitrary: fc.constant({ kind: "compare" as const }) },
  );

  test("equal fills copied at once: every byte read, DRAM byte, slot, note, counter and finding", () => {
    let replaced = 0;
    fc.assert(
      fc.property(
        bigGeometryArb,
        fc.boolean(),
        // Small batches' entries kept before the dead ones are dropped (and all copied
        // when more than half live): small enough to be reached, or the default.
        fc.constantFrom(8, 64, 512, undefined),
        fc.array(lateOp, { maxLength: 40, size: "medium" }),
        (geometry, replaceNow, rowLimit, ops) => {
          const base = 0x1000_0000;
          // New host chunks for whole-chunk writes at once, or only after 256 of them
          // (before that the cache copies its lines out first and the write lands in place).
          const lateMem = new PhysicalMemory(base, RAM, replaceNow ? 0 : 256);
          const onceMem = new PhysicalMemory(base, RAM);
          // A watcher already there: the second cache copies its fills at once.
          onceMem.attachWatcher({ beforeChange: () => {}, replaced: () => {} });
          const rigs: CacheRig[] = [lateMem, onceMem].map((mem) => {
            const shadow = new CoherencyShadow();
            return { mem, shadow, cache: new CpuCache(geometry, mem, shadow) };
          });
          if (rowLimit !== undefined) rigs[0]!.cache.rowLimit = rowLimit;
          const L = geometry.lineSize;
          for (const r of rigs) r.mem.write(base, noise(RAM, 5));
          const ramLines = RAM / L;
          const compare = (what: string): void => {
            const [a, b] = rigs.map((r) => r.cache.stateForTests(0));
            assert.deepEqual(a, b, what);
            for (const s of spots)
              assert.deepEqual(
                rigs[0]!.cache.prefetchNoteOf(base + s),
                rigs[1]!.cache.prefetchNoteOf(base + s),
              );
          };
          let last: number[] = [];
          ops.forEach((op, i) => {
            const seenBy: string[][] = [[], []];
            rigs.forEach((r, ri) => {
              const seen = seenBy[ri]!;
              const c = r.cache;
              const clamp = (a: number, len: number): number => Math.min(len, RAM - a);
              switch (op.kind) {
                case "prefetch": {
                  const epoch = r.shadow.beginWrite("dev", 0, "DMA write");
                  const lines = Float64Array.from(op.lines, (a) => Math.floor(a / L) % ramLines);
                  const lost: string[] = [];
                  for (let k = 0; k < lines.length; ) {
                    k = c.prefetchLines(lines, k, lines.length, epoch - 1, op.note);
                    lost.push(JSON.stringify(c.findings.lostWrite));
                  }
                  seen.push(lost.join());
                  break;
                }
                case "chunk": {
                  // A device write of a whole 1 MiB chunk (the replacement path).
                  const epoch = r.shadow.beginWrite("dev", 0, "DMA write");
                  const data = op.zeros ? new Uint8Array(MiB) : noise(MiB, op.value + i);
                  r.mem.write(base + op.ci * MiB, data);
                  r.shadow.memEpoch.fillRange((op.ci * MiB) / L, ((op.ci + 1) * MiB) / L, epoch);
                  break;
                }
                case "dma": {
                  const len = clamp(op.at, op.len);
                  const epoch = r.shadow.beginWrite("dev", 0, "DMA write");
                  r.mem.write(base + op.at, noise(len, op.value + i));
                  r.shadow.memEpoch.fillRange(
                    Math.floor(op.at / L),
                    Math.floor((op.at + len - 1) / L) + 1,
                    epoch,
                  );
                  break;
                }
                case "memset":
                  // Zeros of a whole chunk give its host memory back (the drop path).
                  if (op.value < 32) r.mem.fill(base + (op.at & ~(MiB - 1)), MiB, 0);
                  else r.mem.fill(base + op.at, clamp(op.at, op.len), op.value);
                  break;
                case "read":
                case "peek": {
                  const len = clamp(op.at, op.len);
                  const out = new Uint8Array(len);
                  if (op.kind === "read") c.read(base + op.at, len, out);
                  else c.peek(base + op.at, len, out);
                  seen.push(Buffer.from(out).toString("hex"), JSON.stringify(c.findings));
                  break;
                }
                case "write":
                  c.write(base + op.at, noise(clamp(op.at, op.len), op.value + 7 * i));
                  seen.push(JSON.stringify(c.findings));
                  break;
                case "invalidate":
                  c.invalidateRange(base + op.at, clamp(op.at, op.len));
                  break;
                case "clean":
                  c.cleanRange(base + op.at, clamp(op.at, op.len));
                  break;
                case "flush":
                  c.flushRange(base + op.at, clamp(op.at, op.len));
                  break;
                case "touch":
                  for (let j = 0; j < Math.min(8, last.length); j++) {
                    const a = base + last[(op.k + j) % last.length]!;
                    if (op.write) c.write(a + (op.value % L), noise(1 + (j % 3), op.value + j));
                    else {
                      const out = new Uint8Array(L);
                      c.read(a, L, out);
                      seen.push(Buffer.from(out).toString("hex"));
                    }
                    seen.push(JSON.stringify(c.findings));
                  }
                  break;
                case "compare":
                  break;
              }
            });
            if (op.kind === "prefetch") last = op.lines.map((a) => a - (a % L));
            if (op.kind === "chunk") replaced++;
            assert.deepEqual(seenBy[0], seenBy[1], `${op.kind} #${i}`);
            for (const s of spots)
              assert.deepEqual(
                rigs[0]!.mem.slice(base + s, SPOT),
                rigs[1]!.mem.slice(base + s, SPOT),
                `DRAM after ${op.kind} #${i}`,
              );
            if (op.kind === "compare") compare(`#${i}`);
          });
          compare("end");
          assert.deepEqual(rigs[0]!.mem.slice(base, RAM), rigs[1]!.mem.slice(base, RAM), "DRAM");
        },
      ),
      // A failure is reported as found: shrinking batches of hundreds of fills takes long.
      { numRuns: 120, endOnFailure: true },
    );
    assert.ok(replaced > 50, `whole-chunk writes: ${replaced}`);
  });
});
