/**
 * Property tests: the cache is transparent to the CPU (with clean/flush maintenance
 * only), and invalidation makes what a device wrote visible.
 */

import assert from "node:assert/strict";
import { describe, test } from "node:test";
import fc from "fast-check";
import type { Machine } from "../../src/machine/machine.js";
import { PAGE_SIZE } from "../../src/machine/memory.js";
import { cacheGeometryArb, cacheRig, MiB, pattern, smallMachine } from "./helpers.js";

const WIN = 8192;

const geometryArb = cacheGeometryArb([1, 2, 4]);

type Op =
  | { kind: "read"; off: number; len: number }
  | { kind: "write"; off: number; data: Uint8Array }
  | { kind: "fill"; off: number; len: number; value: number }
  | { kind: "clean" | "flush"; off: number; len: number }
  | { kind: "cleanAll" | "flushAll" };

const off = fc.integer({ min: 0, max: WIN - 1 });
const len = fc.integer({ min: 0, max: 300 });
const opArb: fc.Arbitrary<Op> = fc.oneof(
  { weight: 4, arbitrary: fc.record({ kind: fc.constant("read" as const), off, len }) },
  {
    weight: 4,
    arbitrary: fc.record({
      kind: fc.constant("write" as const),
      off,
      data: fc.uint8Array({ maxLength: 200 }),
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant("fill" as const),
      off,
      len,
      value: fc.integer({ min: 0, max: 255 }),
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({ kind: fc.constantFrom("clean" as const, "flush" as const), off, len }),
  },
  {
    weight: 1,
    arbitrary: fc.record({ kind: fc.constantFrom("cleanAll" as const, "flushAll" as const) }),
  },
);

/** Clamps an operation's length to the window. */
function clampLen(o: number, n: number): number {
  return Math.max(0, Math.min(n, WIN - o));
}

describe("cache properties", () => {
  test("transparency: CPU reads equal a flat reference; after flushAll DRAM does too", () => {
    fc.assert(
      fc.property(geometryArb, fc.array(opArb, { maxLength: 60 }), (geometry, ops) => {
        const { cache, mem } = cacheRig(geometry);
        // The window straddles the first 1 MiB memory chunk boundary.
        const W0 = mem.base + MiB - WIN / 2;
        const ref = pattern(WIN, 0x3c);
        mem.write(W0, ref);
        const L = cache.line;
        const checkCleanLines = (): void => {
          // Any line that is not dirty in the cache must already be right in DRAM.
          for (let o = 0; o < WIN; o += L) {
            if (cache.probe(W0 + o).dirty) continue;
            assert.deepEqual(mem.slice(W0 + o, L), ref.subarray(o, o + L), `clean line +${o}`);
          }
        };
        for (const op of ops) {
          switch (op.kind) {
            case "read": {
              const n = clampLen(op.off, op.len);
              const got = new Uint8Array(n);
              cache.read(W0 + op.off, n, got);
              assert.deepEqual(got, ref.subarray(op.off, op.off + n));
              break;
            }
            case "write": {
              const n = clampLen(op.off, op.data.length);
              cache.write(W0 + op.off, op.data, 0, n);
              ref.set(op.data.subarray(0, n), op.off);
              break;
            }
            case "fill": {
              const n = clampLen(op.off, op.len);
              cache.fill(W0 + op.off, n, op.value);
              ref.fill(op.value, op.off, op.off + n);
              break;
            }
            case "clean":
            case "flush": {
              const n = clampLen(op.off, op.len);
              if (op.kind === "clean") cache.cleanRange(W0 + op.off, n);
              else cache.flushRange(W0 + op.off, n);
              for (let o = op.off; o < op.off + n; o++) {
                assert.equal(cache.probe(W0 + o).dirty, false);
                if (op.kind === "flush") assert.equal(cache.probe(W0 + o).cached, false);
              }
              checkCleanLines();
              break;
            }
            case "cleanAll":
              cache.cleanAll();
              assert.equal(cache.dirtyLines, 0);
              checkCleanLines();
              break;
            case "flushAll":
              cache.flushAll();
              assert.equal(cache.validLines, 0);
              break;
          }
          assert.ok(cache.dirtyLines <= cache.validLines);
          assert.ok(cache.validLines <= cache.slots);
        }
        assert.equal(cache.counters.discardedDirty, 0);
        assert.equal(cache.findings.lostWrite, undefined);
        checkCleanLines();
        cache.flushAll();
        assert.equal(cache.validLines, 0);
        assert.equal(cache.dirtyLines, 0);
        assert.deepEqual(mem.slice(W0, WIN), ref);
      }),
      { numRuns: 150 },
    );
  });

  test("transparency through a cached CPU mapping of scattered pages", () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.oneof(
            fc.record({ read: fc.constant(true), off: fc.nat(3 * PAGE_SIZE - 1), len }),
            fc.record({
              read: fc.constant(false),
              off: fc.nat(3 * PAGE_SIZE - 1),
              data: fc.uint8Array({ maxLength: 300 }),
            }),
          ),
          { maxLength: 40 },
        ),
        (ops) => {
          const m = smallMachine({
            cache: {
              lineSize: 32,
              levels: [
                { name: "L1", sizeBytes: 128, ways: 2 },
                { name: "L2", sizeBytes: 512, ways: 4 },
              ],
              replacement: "plru",
            },
          });
          const pfns = [m.pages.alloc(0), m.pages.alloc(1) + 1, m.pages.alloc(0)];
          const ranges = pfns.map((p) => ({ phys: p * PAGE_SIZE, len: PAGE_SIZE }));
          const map = m.cpu.map(ranges, "cached", "buf");
          const N = 3 * PAGE_SIZE;
          const ref = new Uint8Array(N);
          for (const o of ops) {
            if (o.read) {
              const n = Math.min(o.len, N - o.off);
              assert.deepEqual(m.cpu.read(map, o.off, n), ref.subarray(o.off, o.off + n));
            } else {
              const n = Math.min(o.data.length, N - o.off);
              m.cpu.write(map, o.off, o.data, 0, n);
              ref.set(o.data.subarray(0, n), o.off);
            }
          }
          m.cache.flushAll();
          ranges.forEach((r, i) => {
            assert.deepEqual(
              m.memory.slice(r.phys, r.len),
              ref.subarray(i * PAGE_SIZE, (i + 1) * PAGE_SIZE),
            );
          });
          assert.equal(m.violations.count, 0);
        },
      ),
      { numRuns: 40 },
    );
  });

  /** A machine with a small cache and a bidirectional window over a 4-page buffer. */
  function dmaRig(coherent: boolean): { m: Machine; buf: number; N: number } {
    const m = smallMachine({
      cache: {
        lineSize: 64,
        levels: [
          { name: "L1", sizeBytes: 256, ways: 2 },
          { name: "L2", sizeBytes: 2048, ways: 4 },
        ],
        replacement: "lru",
      },
    });
    const buf = m.pages.alloc(2) * PAGE_SIZE;
    const N = 4 * PAGE_SIZE;
    const dev = m.addDevice("dev", { coherent, dmaBits: 64 });
    dev.addWindow({ dmaAddr: buf, len: N, direction: "bidirectional", label: "buf" });
    return { m, buf, N };
  }

  const cpuOps = fc.array(
    fc.record({
      off: fc.nat(4 * PAGE_SIZE - 1),
      data: fc.uint8Array({ maxLength: 500 }),
      read: fc.boolean(),
    }),
    { maxLength: 20 },
  );

  test("invalidate: after a device writes DRAM and the CPU invalidates, the CPU reads the device's bytes", () => {
    fc.assert(
      fc.property(
        cpuOps,
        fc.constantFrom<"clean" | "flush">("clean", "flush"),
        fc.nat(4 * PAGE_SIZE - 1),
        fc.uint8Array({ minLength: 1, maxLength: 3000 }),
        (ops, mapOp, devOff, devData) => {
          const { m, buf, N } = dmaRig(false);
          const dev = m.device("dev");
          const ref = new Uint8Array(N);
          for (const o of ops) {
            const n = Math.min(o.data.length, N - o.off);
            if (o.read)
              assert.deepEqual(m.cpu.readPhys(buf + o.off, n), ref.subarray(o.off, o.off + n));
            else {
              m.cpu.writePhys(buf + o.off, o.data, 0, n);
              ref.set(o.data.subarray(0, n), o.off);
            }
          }
          // dma_map_single(..., DMA_BIDIRECTIONAL): clean (or flush) for the device.
          m.maintain(mapOp, [{ phys: buf, len: N }]);
          assert.deepEqual(dev.read(buf, N), ref, "the device sees the CPU's bytes");
          const n = Math.min(devData.length, N - devOff);
          dev.write(buf + devOff, devData, 0, n);
          ref.set(devData.subarray(0, n), devOff);
          // dma_sync_single_for_cpu over exactly the bytes the device wrote.
          m.maintain("invalidate", [{ phys: buf + devOff, len: n }]);
          assert.deepEqual(m.cpu.readPhys(buf, N), ref);
          assert.equal(m.violations.count, 0, m.violations.list.map((v) => v.message).join("\n"));
        },
      ),
      { numRuns: 60 },
    );
  });

  test("without the invalidate, lines cached before the device write are stale and reported", () => {
    fc.assert(
      fc.property(fc.nat(4 * PAGE_SIZE - 64), (off) => {
        const { m, buf } = dmaRig(false);
        const dev = m.device("dev");
        const before = m.cpu.readPhys(buf + off, 1)[0];
        dev.write(buf + off, Uint8Array.of(0xa5));
        assert.equal(m.cpu.readPhys(buf + off, 1)[0], before);
        assert.equal(m.violations.ofKind("stale-cpu-read").length, 1);
      }),
      { numRuns: 20 },
    );
  });

  test("a coherent device needs no maintenance: every view equals the reference", () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.record({
            who: fc.constantFrom("cpu-r", "cpu-w", "dev-r", "dev-w"),
            off: fc.nat(4 * PAGE_SIZE - 1),
            data: fc.uint8Array({ maxLength: 400 }),
          }),
          { maxLength: 40 },
        ),
        (ops) => {
          const { m, buf, N } = dmaRig(true);
          const dev = m.device("dev");
          const ref = new Uint8Array(N);
          for (const o of ops) {
            const n = Math.min(o.data.length, N - o.off);
            const at = buf + o.off;
            if (o.who === "cpu-r")
              assert.deepEqual(m.cpu.readPhys(at, n), ref.subarray(o.off, o.off + n));
            else if (o.who === "dev-r")
              assert.deepEqual(dev.read(at, n), ref.subarray(o.off, o.off + n));
            else {
              if (o.who === "cpu-w") m.cpu.writePhys(at, o.data, 0, n);
              else dev.write(at, o.data, 0, n);
              ref.set(o.data.subarray(0, n), o.off);
            }
          }
          assert.deepEqual(m.cpu.readPhys(buf, N), ref);
          m.cache.flushAll();
          assert.deepEqual(m.memory.slice(buf, N), ref);
          assert.equal(m.violations.count, 0);
        },
      ),
      { numRuns: 60 },
    );
  });
});
