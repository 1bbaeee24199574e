import assert from "node:assert/strict";
import { describe, test } from "node:test";
import fc from "fast-check";
import { type CacheGeometry, CpuCache, linesPerPage } from "../../src/machine/cache.js";
import { CoherencyShadow } from "../../src/machine/coherency.js";
import { BusError, PhysicalMemory } from "../../src/machine/memory.js";
import { cacheRig, MiB, oneLevel, pattern } from "./helpers.js";

const L = 64;

function bytes(n: number, v: number): Uint8Array {
  return new Uint8Array(n).fill(v);
}

describe("CpuCache geometry", () => {
  const mem = new PhysicalMemory(0, MiB);
  const shadow = new CoherencyShadow();
  const make = (g: CacheGeometry): CpuCache => new CpuCache(g, mem, shadow);

  test("rejects bad line sizes, no levels, fractional sets, non-power-of-two PLRU", () => {
    for (const line of [8, 24, 512]) assert.throws(() => make(oneLevel(4, 2, line)), RangeError);
    assert.throws(() => make({ lineSize: 64, levels: [], replacement: "lru" }), RangeError);
    assert.throws(
      () =>
        make({
          lineSize: 64,
          levels: [{ name: "L2", sizeBytes: 1000, ways: 2 }],
          replacement: "lru",
        }),
      /not a whole number/,
    );
    assert.throws(() => make(oneLevel(4, 3, 64, "plru")), /pseudo-LRU/);
    assert.throws(() => make(oneLevel(1, 64, 64, "plru")), /pseudo-LRU/);
    const lru3 = make(oneLevel(4, 3, 64, "lru"));
    assert.equal(lru3.slots, 12);
  });

  test("exposes sets, ways, slots and capacity of the outer level", () => {
    const c = make({
      lineSize: 32,
      levels: [
        { name: "L1D", sizeBytes: 1024, ways: 2 },
        { name: "L2", sizeBytes: 8192, ways: 4 },
      ],
      replacement: "plru",
    });
    assert.equal(c.line, 32);
    assert.equal(c.ways, 4);
    assert.equal(c.sets, 64);
    assert.equal(c.slots, 256);
    assert.equal(c.capacity, 8192);
    assert.deepEqual(c.counters.hits, [0, 0]);
    assert.equal(linesPerPage(32), 128);
  });
});

describe("CpuCache loads and stores", () => {
  test("misses fill, hits count, a read across lines touches each line", () => {
    const { cache, mem } = cacheRig(oneLevel(4, 2));
    const B = mem.base;
    cache.read(B, 1, new Uint8Array(1));
    assert.equal(cache.counters.fills, 1);
    assert.deepEqual(cache.counters.hits, [0]);
    cache.read(B + 10, 4, new Uint8Array(4));
    assert.deepEqual(cache.counters.hits, [1]);
    cache.read(B + L - 4, 8, new Uint8Array(8));
    assert.equal(cache.counters.fills, 2);
    assert.deepEqual(cache.counters.hits, [2]);
    assert.equal(cache.validLines, 2);
    assert.equal(cache.dirtyLines, 0);
    const snap = cache.snapshotCounters();
    snap.hits[0] = 99;
    snap.fills = 99;
    assert.deepEqual(cache.counters.hits, [2], "snapshots are copies");
    assert.equal(cache.counters.fills, 2);
  });

  test("per-level hit counters in a two-level hierarchy", () => {
    // L1: one set of 2 ways; L2: 8 sets of 2 ways.
    const { cache, mem } = cacheRig({
      lineSize: L,
      levels: [
        { name: "L1", sizeBytes: 2 * L, ways: 2 },
        { name: "L2", sizeBytes: 16 * L, ways: 2 },
      ],
      replacement: "lru",
    });
    const rd = (li: number): void => cache.read(mem.base + li * L, 1, new Uint8Array(1));
    rd(0);
    rd(1);
    rd(2); // L1 now holds 1, 2; L2 holds 0, 1, 2
    assert.deepEqual(cache.counters.hits, [0, 0]);
    assert.equal(cache.counters.fills, 3);
    rd(0); // L2 hit, back into L1 (evicting 1)
    rd(0); // L1 hit
    rd(2); // L1 hit
    rd(1); // L2 hit
    assert.deepEqual(cache.counters.hits, [2, 2]);
    assert.equal(cache.counters.fills, 3);
  });

  test("inclusion: evicting from the outer level removes the line from inner levels", () => {
    // L1: one set of 2 ways; L2: direct-mapped, 8 sets.
    const { cache, mem } = cacheRig({
      lineSize: L,
      levels: [
        { name: "L1", sizeBytes: 2 * L, ways: 2 },
        { name: "L2", sizeBytes: 8 * L, ways: 1 },
      ],
      replacement: "lru",
    });
    const rd = (li: number): void => cache.read(mem.base + li * L, 1, new Uint8Array(1));
    rd(0);
    rd(8); // same L2 set: evicts line 0 from L2 and so from L1
    assert.equal(cache.probe(mem.base).cached, false);
    rd(0);
    assert.equal(cache.counters.fills, 3, "line 0 is a miss, not an L1 hit");
    assert.deepEqual(cache.counters.hits, [0, 0]);
    assert.equal(cache.counters.evictions, 2);
  });

  test("three levels keep three hit counters", () => {
    const { cache, mem } = cacheRig({
      lineSize: L,
      levels: [
        { name: "L1", sizeBytes: 2 * L, ways: 2 },
        { name: "L2", sizeBytes: 4 * L, ways: 4 },
        { name: "L3", sizeBytes: 32 * L, ways: 4 },
      ],
      replacement: "plru",
    });
    for (let i = 0; i < 6; i++) cache.read(mem.base + i * L, 1, new Uint8Array(1));
    cache.read(mem.base + 5 * L, 1, new Uint8Array(1)); // L1
    cache.read(mem.base + 2 * L, 1, new Uint8Array(1)); // L2 (holds 2..5)
    cache.read(mem.base + 0 * L, 1, new Uint8Array(1)); // L3 only
    assert.deepEqual(cache.counters.hits, [1, 1, 1]);
  });

  test("write-allocate: a partial store fills the rest of the line from memory; DRAM waits", () => {
    const { cache, mem } = cacheRig(oneLevel(4, 2));
    const B = mem.base;
    mem.write(B, pattern(L, 1));
    cache.write(B + 4, Uint8Array.of(0xf0, 0xf1));
    assert.deepEqual(cache.probe(B), { cached: true, dirty: true, stale: false });
    assert.equal(cache.dirtyLines, 1);
    assert.deepEqual(mem.slice(B, L), pattern(L, 1), "DRAM unchanged until write-back");
    const expect = pattern(L, 1);
    expect[4] = 0xf0;
    expect[5] = 0xf1;
    const got = new Uint8Array(L);
    cache.read(B, L, got);
    assert.deepEqual(got, expect);
    cache.cleanRange(B, 1);
    assert.deepEqual(mem.slice(B, L), expect);
    assert.deepEqual(cache.probe(B), { cached: true, dirty: false, stale: false });
  });

  test("srcOff/len and dstOff are honoured", () => {
    const { cache, mem } = cacheRig(oneLevel(4, 2));
    const src = pattern(200, 5);
    cache.write(mem.base + 30, src, 50, 100);
    const dst = new Uint8Array(120).fill(0xee);
    cache.read(mem.base + 30, 100, dst, 10);
    assert.deepEqual(dst.subarray(10, 110), src.subarray(50, 150));
    assert.equal(dst[9], 0xee);
    assert.equal(dst[110], 0xee);
  });

  test("a stale line really returns the old bytes after memory changes behind it", () => {
    const { cache, mem, shadow } = cacheRig(oneLevel(4, 2));
    const B = mem.base + 3 * L;
    mem.write(B, bytes(L, 0x11));
    const first = new Uint8Array(L);
    cache.read(B, L, first);
    assert.deepEqual(first, bytes(L, 0x11));
    // A device writes DRAM behind the cache and the shadow records it.
    const epoch = shadow.beginWrite("dev", 0, "DMA write");
    mem.write(B, bytes(L, 0x22));
    shadow.memEpoch.set(3, epoch);
    const again = new Uint8Array(L);
    cache.read(B, L, again);
    assert.deepEqual(again, bytes(L, 0x11), "the cache answers with old bytes");
    assert.deepEqual(cache.findings.staleRead, { phys: B, lines: 1, epoch });
    assert.equal(cache.probe(B).stale, true);
    // Dropping it makes the next read fetch the new bytes.
    cache.invalidateRange(B, L);
    cache.read(B, L, again);
    assert.deepEqual(again, bytes(L, 0x22));
    assert.equal(cache.findings.staleRead, undefined);
    assert.equal(cache.probe(B).stale, false);
  });

  test("stale data is returned even with the checker off, just not reported", () => {
    const { cache, mem, shadow } = cacheRig(oneLevel(4, 2));
    shadow.enabled = false;
    cache.read(mem.base, 4, new Uint8Array(4));
    mem.write(mem.base, Uint8Array.of(1, 2, 3, 4));
    shadow.memEpoch.set(0, shadow.beginWrite("dev", 0, "DMA write"));
    const got = new Uint8Array(4);
    cache.read(mem.base, 4, got);
    assert.deepEqual(got, new Uint8Array(4));
    assert.equal(cache.findings.staleRead, undefined);
  });

  test("a full-line store makes a stale line fresh; a partial store does not", () => {
    const { cache, mem, shadow } = cacheRig(oneLevel(4, 2));
    const B = mem.base;
    cache.read(B, 2 * L, new Uint8Array(2 * L));
    const e = shadow.beginWrite("dev", 0, "DMA write");
    shadow.memEpoch.fillRange(0, 2, e);
    cache.write(B, bytes(L, 1));
    cache.write(B + L, bytes(4, 1));
    assert.equal(cache.probe(B).stale, false);
    assert.equal(cache.probe(B + L).stale, true);
    cache.cleanRange(B, 2 * L);
    assert.deepEqual(cache.findings.lostWrite, { phys: B + L, lines: 1, epoch: e });
    assert.equal(cache.probe(B + L).stale, false, "after write-back line and memory agree");
  });

  test("dirty victims are written back on eviction (LRU, 2 ways)", () => {
    const { cache, mem } = cacheRig(oneLevel(2, 2));
    const B = mem.base;
    const set0 = (k: number): number => B + k * 2 * L; // lines 0, 2, 4 share set 0
    cache.write(set0(0), bytes(L, 0xaa));
    cache.read(set0(1), 1, new Uint8Array(1));
    assert.equal(mem.slice(set0(0), 1)[0], 0);
    cache.read(set0(2), 1, new Uint8Array(1));
    assert.equal(cache.probe(set0(0)).cached, false);
    assert.deepEqual(mem.slice(set0(0), L), bytes(L, 0xaa));
    assert.equal(cache.counters.evictions, 1);
    assert.equal(cache.counters.writebacks, 1);
    assert.equal(cache.dirtyLines, 0);
    assert.equal(cache.validLines, 2);
    // A clean victim is evicted without a write-back.
    cache.read(set0(3), 1, new Uint8Array(1));
    assert.equal(cache.counters.evictions, 2);
    assert.equal(cache.counters.writebacks, 1);
  });

  test("LRU and tree-PLRU choose different victims", () => {
    const victimOf = (replacement: "lru" | "plru"): number[] => {
      const { cache, mem } = cacheRig(oneLevel(4, 4, L, replacement));
      const addr = (k: number): number => mem.base + k * 4 * L; // all in set 0
      for (const k of [0, 1, 2, 3, 2, 0, 4]) cache.read(addr(k), 1, new Uint8Array(1));
      return [0, 1, 2, 3, 4].filter((k) => !cache.probe(addr(k)).cached);
    };
    // Recency after 0,1,2,3,2,0 is 0 > 2 > 3 > 1: LRU evicts 1. The PLRU tree points
    // at the pair {2,3} (0 was used last) and inside it away from 2: it evicts 3.
    assert.deepEqual(victimOf("lru"), [1]);
    assert.deepEqual(victimOf("plru"), [3]);
  });

  test("property: replacement matches reference LRU and tree-PLRU models", () => {
    type Ref = { ways: (number | -1)[][]; stamp: number[][]; bits: number[]; tick: number };
    fc.assert(
      fc.property(
        fc.constantFrom<"lru" | "plru">("lru", "plru"),
        // Set counts that are powers of two (a line's set by mask) and that are not; up
        // to 32 ways (the deepest trees), lines enough for every set to overflow.
        fc
          .tuple(fc.constantFrom(1, 2, 3, 4, 6), fc.constantFrom(1, 2, 4, 8, 16, 32))
          .chain(([S, W]) =>
            fc.tuple(
              fc.constant(S),
              fc.constant(W),
              // Long enough for every set to overflow (fast-check keeps arrays short otherwise).
              fc.array(fc.integer({ min: 0, max: 3 * W * S }), {
                minLength: 3 * W,
                maxLength: 3 * W + 150,
              }),
            ),
          ),
        (repl, [SETS, W, seq]) => {
          const lines = 3 * W * SETS;
          const { cache, mem } = cacheRig(oneLevel(SETS, W, L, repl));
          const ref: Ref = {
            ways: Array.from({ length: SETS }, () => new Array<number | -1>(W).fill(-1)),
            stamp: Array.from({ length: SETS }, () => new Array<number>(W).fill(0)),
            bits: new Array<number>(SETS).fill(0),
            tick: 0,
          };
          const levels = Math.log2(W);
          const touch = (set: number, w: number): void => {
            ref.stamp[set]![w] = ++ref.tick;
            let node = 1;
            for (let l = levels - 1; l >= 0; l--) {
              const dir = (w >> l) & 1;
              // The node points at the half *not* just used.
              ref.bits[set] =
                dir === 0 ? ref.bits[set]! | (1 << node) : ref.bits[set]! & ~(1 << node);
              node = 2 * node + dir;
            }
          };
          const victim = (set: number): number => {
            const free = ref.ways[set]!.indexOf(-1);
            if (free >= 0) return free;
            if (repl === "lru") {
              const st = ref.stamp[set]!;
              return st.indexOf(Math.min(...st));
            }
            let node = 1;
            let w = 0;
            for (let l = 0; l < levels; l++) {
              const dir = (ref.bits[set]! >> node) & 1;
              w = 2 * w + dir;
              node = 2 * node + dir;
            }
            return w;
          };
          for (const li of seq) {
            const set = li % SETS;
            let w = ref.ways[set]!.indexOf(li);
            if (w < 0) {
              w = victim(set);
              ref.ways[set]![w] = li;
            }
            touch(set, w);
            cache.read(mem.base + li * L, 1, new Uint8Array(1));
            for (let k = 0; k <= lines; k++) {
              const want = ref.ways[k % SETS]!.includes(k);
              assert.equal(cache.probe(mem.base + k * L).cached, want, `line ${k} after ${li}`);
            }
          }
        },
      ),
      { numRuns: 120 },
    );
  });

  test("accesses outside RAM are bus errors and change nothing", () => {
    const { cache, mem } = cacheRig(oneLevel(4, 2));
    assert.throws(() => cache.read(mem.end - 1, 2, new Uint8Array(2)), BusError);
    assert.throws(() => cache.write(mem.base - 4, new Uint8Array(8)), BusError);
    assert.throws(() => cache.cleanRange(mem.end, 1), BusError);
    assert.equal(cache.validLines, 0);
    assert.equal(cache.counters.fills, 0);
  });

  test("stores across a memory chunk boundary, and a large fill, reach DRAM on flushAll", () => {
    const { cache, mem } = cacheRig(oneLevel(4, 2, 32, "plru"));
    const at = mem.base + MiB - 100;
    cache.write(at, pattern(200, 9));
    cache.fill(mem.base + 1000, 70_000, 0x5a);
    cache.flushAll();
    assert.deepEqual(mem.slice(at, 200), pattern(200, 9));
    assert.deepEqual(mem.slice(mem.base + 1000, 70_000), bytes(70_000, 0x5a));
    assert.equal(mem.slice(mem.base + 999, 1)[0], 0);
    assert.equal(mem.slice(mem.base + 71_000, 1)[0], 0);
  });
});

describe("CpuCache maintenance", () => {
  /** Lines 0..3 hold 0x11 in DRAM and 0xcc dirty in the cache. */
  function fourDirty(): ReturnType<typeof cacheRig> {
    const rig = cacheRig(oneLevel(8, 4));
    rig.mem.fill(rig.mem.base, 4 * L, 0x11);
    rig.cache.write(rig.mem.base + 1, bytes(4 * L - 1, 0xcc));
    return rig;
  }

  test("clean writes back whole lines touched by the range; they stay valid", () => {
    const { cache, mem } = fourDirty();
    const B = mem.base;
    cache.cleanRange(B + L + 10, 1);
    assert.equal(cache.counters.lineOps, 1);
    assert.equal(cache.counters.writebacks, 1);
    assert.deepEqual(mem.slice(B + L, L), bytes(L, 0xcc), "the whole line, not one byte");
    assert.deepEqual(mem.slice(B + 2 * L, L), bytes(L, 0x11));
    assert.deepEqual(cache.probe(B + L), { cached: true, dirty: false, stale: false });
    assert.equal(cache.dirtyLines, 3);
    assert.equal(cache.validLines, 4);
    // Cleaning again writes nothing.
    cache.cleanRange(B + L, L);
    assert.equal(cache.counters.writebacks, 1);
    assert.equal(cache.counters.lineOps, 2);
  });

  test("lineOps count every line in the range, cached or not, even on an empty cache", () => {
    const { cache, mem } = cacheRig(oneLevel(8, 4));
    cache.cleanRange(mem.base + 100 * L + 1, 10 * L); // 11 lines
    assert.equal(cache.counters.lineOps, 11);
    cache.invalidateRange(mem.base, 0);
    assert.equal(cache.counters.lineOps, 11, "an empty range is no operation");
    cache.flushRange(mem.base + 5 * 4096, 3 * 4096);
    assert.equal(cache.counters.lineOps, 11 + (3 * 4096) / L);
  });

  test("flush writes back and drops", () => {
    const { cache, mem } = fourDirty();
    const B = mem.base;
    cache.flushRange(B, 2 * L);
    assert.equal(cache.validLines, 2);
    assert.equal(cache.dirtyLines, 2);
    assert.equal(cache.counters.writebacks, 2);
    assert.equal(cache.probe(B).cached, false);
    assert.deepEqual(mem.slice(B + 1, 2 * L - 1), bytes(2 * L - 1, 0xcc));
    assert.equal(mem.slice(B, 1)[0], 0x11);
  });

  test("invalidate discards dirty data (counted) and the next read sees DRAM", () => {
    const { cache, mem } = fourDirty();
    const B = mem.base;
    cache.invalidateRange(B + L, L);
    assert.equal(cache.counters.discardedDirty, 1);
    assert.equal(cache.counters.writebacks, 0);
    assert.equal(cache.probe(B + L).cached, false);
    assert.equal(cache.validLines, 3);
    const got = new Uint8Array(L);
    cache.read(B + L, L, got);
    assert.deepEqual(got, bytes(L, 0x11), "the CPU's store is gone");
    // Invalidating clean lines discards nothing.
    cache.invalidateRange(B + L, L);
    assert.equal(cache.counters.discardedDirty, 1);
  });

  test("invalidate cleans dirty lines only partly covered at either edge, then drops them", () => {
    const { cache, mem } = fourDirty();
    const B = mem.base;
    // [B+10, B+2L+32): line 0 partial, line 1 whole, line 2 partial, line 3 outside.
    cache.invalidateRange(B + 10, 2 * L + 22);
    assert.equal(cache.counters.lineOps, 3);
    assert.equal(cache.counters.writebacks, 2);
    assert.equal(cache.counters.discardedDirty, 1);
    assert.deepEqual(mem.slice(B + 1, L - 1), bytes(L - 1, 0xcc), "line 0 written back");
    assert.deepEqual(mem.slice(B + L, L), bytes(L, 0x11), "line 1 discarded");
    assert.deepEqual(mem.slice(B + 2 * L, L), bytes(L, 0xcc), "line 2 written back");
    assert.deepEqual(mem.slice(B + 3 * L, L), bytes(L, 0x11), "line 3 untouched");
    for (const k of [0, 1, 2]) assert.equal(cache.probe(B + k * L).cached, false, `line ${k}`);
    assert.deepEqual(cache.probe(B + 3 * L), { cached: true, dirty: true, stale: false });
  });

  test("invalidate of a range inside one line cleans that line; aligned ranges discard", () => {
    const { cache, mem } = fourDirty();
    const B = mem.base;
    cache.invalidateRange(B + 2 * L + 5, 3);
    assert.equal(cache.counters.writebacks, 1);
    assert.equal(cache.counters.discardedDirty, 0);
    assert.deepEqual(mem.slice(B + 2 * L, L), bytes(L, 0xcc));
    cache.invalidateRange(B + 3 * L, L);
    assert.equal(cache.counters.discardedDirty, 1);
    assert.equal(cache.counters.writebacks, 1);
  });

  test("cleanAll / flushAll work by set/way over every slot", () => {
    const { cache, mem } = fourDirty();
    const B = mem.base;
    cache.read(B + 10 * L, 1, new Uint8Array(1));
    cache.cleanAll();
    assert.equal(cache.counters.setWayOps, cache.slots);
    assert.equal(cache.counters.writebacks, 4);
    assert.equal(cache.dirtyLines, 0);
    assert.equal(cache.validLines, 5);
    assert.deepEqual(mem.slice(B + 1, 4 * L - 1), bytes(4 * L - 1, 0xcc));
    cache.write(B, bytes(1, 0x77));
    cache.flushAll();
    assert.equal(cache.counters.setWayOps, 2 * cache.slots);
    assert.equal(cache.counters.writebacks, 5);
    assert.equal(cache.validLines, 0);
    assert.equal(mem.slice(B, 1)[0], 0x77);
    // Still charged per slot when there is nothing to do.
    cache.flushAll();
    cache.cleanAll();
    assert.equal(cache.counters.setWayOps, 4 * cache.slots);
    assert.equal(cache.counters.lineOps, 0);
  });

  test("forEachCachedLine and dirtyIn see exactly the cached lines of a range", () => {
    const { cache, mem } = cacheRig(oneLevel(16, 4));
    const B = mem.base;
    cache.read(B + 4096 - L, 1, new Uint8Array(1)); // last line of page 0
    cache.write(B + 4096 + L, bytes(L, 1)); // line 1 of page 1
    cache.read(B + 3 * 4096, 1, new Uint8Array(1)); // page 3
    const seen: number[] = [];
    cache.forEachCachedLine(B + 100, 3 * 4096 - 200, (_s, lp) => seen.push(lp - B));
    assert.deepEqual(seen, [4096 - L, 4096 + L]);
    assert.deepEqual(cache.dirtyIn(B, 4 * 4096), { phys: B + 4096 + L, lines: 1, epoch: 0 });
    assert.equal(cache.dirtyIn(B, 4096), undefined);
    const all: number[] = [];
    cache.forEachCachedLine(B, 4 * 4096, (s, lp) => {
      all.push(lp - B);
      assert.equal(cache.isDirty(s), lp === B + 4096 + L);
    });
    assert.deepEqual(all, [4096 - L, 4096 + L, 3 * 4096]);
  });

  test("a write-back run of 1 MiB is copied to DRAM in pieces of at most 512 KiB, by range or set/way", () => {
    // A cache of 1 MiB per way: a 1 MiB store lies in consecutive slots, one run of lines
    // consecutive in DRAM too (one DRAM chunk), which every write-back path copies at once.
    const data = pattern(MiB, 3);
    const ops: [string, (c: CpuCache, at: number) => void][] = [
      ["clean", (c, at) => c.cleanRange(at, MiB)],
      ["flush", (c, at) => c.flushRange(at, MiB)],
      ["cleanAll", (c) => c.cleanAll()],
      ["flushAll", (c) => c.flushAll()],
    ];
    for (const [what, op] of ops) {
      const { cache, mem } = cacheRig(oneLevel(16384, 2), 0x1000_0000, 4 * MiB);
      const at = mem.base + MiB;
      cache.write(at, data);
      assert.equal(cache.dirtyLines, 16384);
      // The host copies of more than a line pair (Int32Array sets), while the op runs.
      const sets: number[] = [];
      const set = Int32Array.prototype.set;
      Object.defineProperty(Int32Array.prototype, "set", {
        configurable: true,
        writable: true,
        value: function (this: Int32Array, a: ArrayLike<number>, o?: number) {
          if (a.length > 32) sets.push(a.length);
          return set.call(this, a, o);
        },
      });
      try {
        op(cache, at);
      } finally {
        delete (Int32Array.prototype as { set?: unknown }).set;
      }
      assert.equal(Int32Array.prototype.set, set);
      assert.deepEqual(sets, [MiB / 8, MiB / 8], `${what}: two pieces of 512 KiB`);
      assert.equal(cache.dirtyLines, 0);
      assert.ok(Buffer.compare(mem.slice(at, MiB), data) === 0, `${what}: DRAM holds the store`);
    }
  });

  test("a write-back run never crosses DRAM chunks, even where the next chunk's words would extend it", () => {
    // 16 sets of one way: line 0 (chunk 0, word 0) in slot 0 and line 16385 (chunk 1,
    // word 16: where line 1 would be in chunk 0) in slot 1, consecutive slots whose DRAM
    // words follow each other, but in different chunks: two copies, not one run.
    const ops: [string, (c: CpuCache, base: number) => void][] = [
      ["clean", (c, base) => c.cleanRange(base, 2 * MiB)],
      ["flush", (c, base) => c.flushRange(base, 2 * MiB)],
      ["cleanAll", (c) => c.cleanAll()],
      ["flushAll", (c) => c.flushAll()],
    ];
    for (const closedForms of [true, false])
      for (const [what, op] of ops) {
        const { cache, mem } = cacheRig(oneLevel(16, 1), 0x1000_0000, 4 * MiB);
        cache.closedForms = closedForms;
        const B = mem.base;
        const a = pattern(L, 1);
        const b = pattern(L, 101);
        cache.write(B, a);
        cache.write(B + MiB + L, b);
        op(cache, B);
        const how = `${what}${closedForms ? "" : ", line by line"}`;
        assert.deepEqual(mem.slice(B, L), a, `${how}: line 0`);
        assert.deepEqual(mem.slice(B + MiB + L, L), b, `${how}: line 16385, in chunk 1`);
        assert.deepEqual(mem.slice(B + L, L), new Uint8Array(L), `${how}: line 1 untouched`);
      }
  });

  test("a whole dirty page's run never crosses DRAM chunks either (a clean's page at a time)", () => {
    // 128 sets of one way: page 0 (chunk 0, words 0..1023) in slots 0..63 and page 257
    // (chunk 1, words 1024..2047: where page 1 would be in chunk 0) in slots 64..127. Both
    // wholly dirty in consecutive slots, so a clean takes each as one run at once; the
    // second follows the first in slots and words, but not in chunk: two copies.
    const ops: [string, (c: CpuCache, base: number) => void][] = [
      ["clean", (c, base) => c.cleanRange(base, 258 * 4096)],
      ["flush", (c, base) => c.flushRange(base, 258 * 4096)],
    ];
    for (const closedForms of [true, false])
      for (const [what, op] of ops) {
        const { cache, mem } = cacheRig(oneLevel(128, 1));
        cache.closedForms = closedForms;
        const B = mem.base;
        const a = pattern(4096, 1);
        const b = pattern(4096, 101);
        cache.write(B, a);
        cache.write(B + 257 * 4096, b);
        assert.equal(cache.dirtyLines, 128);
        op(cache, B);
        const how = `${what}${closedForms ? "" : ", line by line"}`;
        assert.equal(cache.dirtyLines, 0, `${how}: nothing dirty after`);
        assert.deepEqual(mem.slice(B, 4096), a, `${how}: page 0`);
        assert.deepEqual(mem.slice(B + 257 * 4096, 4096), b, `${how}: page 257, in chunk 1`);
        assert.deepEqual(
          mem.slice(B + 4096, 4096),
          new Uint8Array(4096),
          `${how}: page 1 untouched`,
        );
      }
  });
});
