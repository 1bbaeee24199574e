import assert from "node:assert/strict";
import { describe, test } from "node:test";
import fc from "fast-check";
import { Machine } from "../../src/machine/machine.js";
import { BusError, copyBytes, PAGE_SIZE, PhysicalMemory } from "../../src/machine/memory.js";
import { GiB, MiB, pattern } from "./helpers.js";

const BASE = 0x4000_0000;

describe("PhysicalMemory", () => {
  test("rejects unaligned or empty geometry", () => {
    assert.throws(() => new PhysicalMemory(100, MiB), RangeError);
    assert.throws(() => new PhysicalMemory(0, MiB + 1), RangeError);
    assert.throws(() => new PhysicalMemory(0, 0), RangeError);
    assert.equal(PAGE_SIZE, 4096);
  });

  test("unwritten memory reads as zero and costs nothing", () => {
    const m = new PhysicalMemory(BASE, 64 * MiB);
    assert.equal(m.end, BASE + 64 * MiB);
    assert.deepEqual(m.slice(BASE + 12345, 16), new Uint8Array(16));
    assert.equal(m.residentBytes, 0);
  });

  test("a multi-GiB memory allocates only the chunks that are written", () => {
    const m = new PhysicalMemory(BASE, 8 * GiB);
    m.write(BASE, Uint8Array.of(1));
    m.write(BASE + 8 * GiB - 1, Uint8Array.of(2));
    m.write(BASE + 5 * GiB + 17, Uint8Array.of(3, 4));
    assert.equal(m.residentBytes, 3 * MiB);
    assert.equal(m.slice(BASE, 1)[0], 1);
    assert.equal(m.slice(BASE + 8 * GiB - 1, 1)[0], 2);
    assert.deepEqual(m.slice(BASE + 5 * GiB + 16, 4), Uint8Array.of(0, 3, 4, 0));
  });

  test("a 16 GiB machine boots without touching its RAM", () => {
    const m = new Machine({ profile: "x86-64" });
    assert.equal(m.memory.size, 16 * GiB);
    assert.equal(m.memory.residentBytes, 0);
    const hi = m.memory.end - 64;
    m.cpu.writePhys(hi, pattern(64, 9));
    m.cache.flushAll();
    assert.deepEqual(m.memory.slice(hi, 64), pattern(64, 9));
    assert.equal(m.memory.residentBytes, MiB);
  });

  test("read/write/slice across a 1 MiB chunk boundary", () => {
    const m = new PhysicalMemory(BASE, 4 * MiB);
    const at = BASE + MiB - 5;
    const data = pattern(10, 3);
    m.write(at, data);
    assert.equal(m.residentBytes, 2 * MiB);
    assert.deepEqual(m.slice(at, 10), data);
    assert.deepEqual(m.slice(at - 2, 14), Uint8Array.of(0, 0, ...data, 0, 0));
    // A write spanning three chunks.
    const big = pattern(2 * MiB + 10, 77);
    m.write(BASE + MiB - 5, big);
    assert.deepEqual(m.slice(BASE + MiB - 5, big.length), big);
    assert.equal(m.residentBytes, 4 * MiB);
  });

  test("srcOff/len on write and dstOff on read", () => {
    const m = new PhysicalMemory(BASE, MiB);
    const src = pattern(32, 1);
    m.write(BASE + 100, src, 4, 8);
    assert.deepEqual(m.slice(BASE + 100, 8), src.subarray(4, 12));
    assert.equal(m.slice(BASE + 108, 1)[0], 0);
    const dst = new Uint8Array(20).fill(0xee);
    m.read(BASE + 100, 8, dst, 6);
    assert.deepEqual(dst.subarray(6, 14), src.subarray(4, 12));
    assert.equal(dst[5], 0xee);
    assert.equal(dst[14], 0xee);
  });

  test("fill across a chunk boundary; filling untouched memory with zero allocates nothing", () => {
    const m = new PhysicalMemory(BASE, 4 * MiB);
    m.fill(BASE + 2 * MiB, MiB, 0);
    assert.equal(m.residentBytes, 0);
    m.fill(BASE + MiB - 3, 6, 0xab);
    assert.equal(m.residentBytes, 2 * MiB);
    assert.deepEqual(
      m.slice(BASE + MiB - 4, 8),
      Uint8Array.of(0, 0xab, 0xab, 0xab, 0xab, 0xab, 0xab, 0),
    );
    m.fill(BASE + MiB - 1, 2, 0);
    assert.deepEqual(m.slice(BASE + MiB - 2, 4), Uint8Array.of(0xab, 0, 0, 0xab));
  });

  test("bus error outside RAM, with the range in the error", () => {
    const m = new PhysicalMemory(BASE, MiB);
    const cases: [number, number][] = [
      [BASE - 1, 1],
      [BASE - 4, 8],
      [m.end, 1],
      [m.end - 2, 4],
      [BASE, -1],
      [0, 4],
    ];
    for (const [phys, len] of cases) {
      assert.equal(m.contains(phys, len), false, `contains(0x${phys.toString(16)}, ${len})`);
      const buf = new Uint8Array(16);
      assert.throws(
        () => m.read(phys, len, buf),
        (e: unknown) => e instanceof BusError && e.phys === phys && e.len === len,
      );
      if (len >= 0) assert.throws(() => m.slice(phys, len), BusError);
    }
    assert.throws(() => m.write(m.end - 1, new Uint8Array(2)), BusError);
    assert.throws(() => m.fill(BASE - 4096, 4096, 1), BusError);
    const e = new BusError(0x1000, 4);
    assert.equal(e.name, "BusError");
    assert.match(e.message, /0x1000\+4 is outside RAM/);
    // Nothing was written by a failed access.
    assert.equal(m.residentBytes, 0);
    assert.equal(m.contains(BASE, MiB), true);
    assert.equal(m.contains(m.end, 0), true);
  });

  test("lineWords / chunkWords expose the same bytes (little-endian words)", () => {
    const m = new PhysicalMemory(BASE, 4 * MiB);
    const at = BASE + MiB + 64;
    assert.equal(m.lineWords(at, false).words, undefined);
    assert.equal(m.peekChunkWords(1), undefined);
    m.write(at, Uint8Array.of(1, 2, 3, 4));
    const { words, index } = m.lineWords(at, false);
    assert.ok(words);
    assert.equal(index, 16);
    assert.equal(words[index], 0x04030201);
    assert.equal(m.chunkWords(1), words);
    const w = m.lineWords(BASE + 3 * MiB, true);
    assert.ok(w.words, "forWrite allocates");
    w.words[w.index] = 0x0d0c0b0a;
    assert.deepEqual(m.slice(BASE + 3 * MiB, 4), Uint8Array.of(0x0a, 0x0b, 0x0c, 0x0d));
  });

  test("property: random writes and fills read back like a flat array", () => {
    const SIZE = 3 * MiB;
    const WIN = 64 * 1024;
    // Operations cluster around the two chunk boundaries.
    const offset = fc.oneof(
      fc.integer({ min: MiB - WIN / 2, max: MiB + WIN / 2 }),
      fc.integer({ min: 2 * MiB - WIN / 2, max: 2 * MiB + WIN / 2 }),
    );
    const op = fc.oneof(
      fc.record({
        kind: fc.constant("write" as const),
        off: offset,
        data: fc.uint8Array({ minLength: 0, maxLength: 300 }),
      }),
      fc.record({
        kind: fc.constant("fill" as const),
        off: offset,
        len: fc.integer({ min: 0, max: 5000 }),
        value: fc.integer({ min: 0, max: 255 }),
      }),
      fc.record({
        kind: fc.constant("read" as const),
        off: offset,
        len: fc.integer({ min: 0, max: 3000 }),
      }),
    );
    fc.assert(
      fc.property(fc.array(op, { maxLength: 40 }), (ops) => {
        const m = new PhysicalMemory(BASE, SIZE);
        const ref = new Uint8Array(SIZE);
        for (const o of ops) {
          if (o.kind === "write") {
            m.write(BASE + o.off, o.data);
            ref.set(o.data, o.off);
          } else if (o.kind === "fill") {
            m.fill(BASE + o.off, o.len, o.value);
            ref.fill(o.value, o.off, o.off + o.len);
          } else {
            assert.deepEqual(m.slice(BASE + o.off, o.len), ref.subarray(o.off, o.off + o.len));
          }
        }
        for (const b of [MiB, 2 * MiB]) {
          assert.deepEqual(m.slice(BASE + b - WIN, 2 * WIN), ref.subarray(b - WIN, b + WIN));
        }
      }),
      { numRuns: 60 },
    );
  });

  test("property: memory built from released chunks reads back like a flat array (whole-chunk writes reuse a chunk uncleared)", () => {
    const SIZE = 3 * MiB;
    const op = fc.oneof(
      fc.record({
        kind: fc.constant("whole" as const),
        chunk: fc.integer({ min: 0, max: 2 }),
        seed: fc.integer({ min: 1, max: 255 }),
        fill: fc.boolean(),
      }),
      fc.record({
        kind: fc.constant("write" as const),
        off: fc.integer({ min: 0, max: SIZE - 300 }),
        data: fc.uint8Array({ minLength: 1, maxLength: 300 }),
      }),
      fc.record({ kind: fc.constant("release" as const) }),
    );
    fc.assert(
      fc.property(fc.array(op, { maxLength: 12 }), (ops) => {
        let m = new PhysicalMemory(BASE, SIZE);
        let ref = new Uint8Array(SIZE);
        for (const o of ops) {
          if (o.kind === "whole") {
            // Every byte of the chunk written: a pooled chunk is taken without clearing it.
            const at = o.chunk * MiB;
            if (o.fill) {
              m.fill(BASE + at, MiB, o.seed);
              ref.fill(o.seed, at, at + MiB);
            } else {
              const data = pattern(MiB, o.seed);
              m.write(BASE + at, data);
              ref.set(data, at);
            }
          } else if (o.kind === "write") {
            m.write(BASE + o.off, o.data);
            ref.set(o.data, o.off);
          } else {
            // The next machine's memory takes these chunks from the pool.
            m.release();
            m = new PhysicalMemory(BASE, SIZE);
            ref = new Uint8Array(SIZE);
          }
        }
        assert.ok(
          Buffer.compare(m.slice(BASE, SIZE), ref) === 0,
          "memory differs from the flat array",
        );
      }),
      { numRuns: 40 },
    );
  });
  test("property: long writes and reads, copied in pieces, read back like a flat array", () => {
    // Host copies of more than half a chunk go in pieces (memory.ts, copyBytes): ranges of
    // up to 2.5 MiB at any offset cross the pieces' and the chunks' boundaries, with source
    // and destination offsets, in place and through whole-chunk replacement (watched chunks).
    const SIZE = 4 * MiB;
    const at = fc.integer({ min: 0, max: SIZE });
    const long = fc.integer({ min: 0, max: (5 * MiB) / 2 });
    const op = fc.oneof(
      fc.record({ kind: fc.constant("write" as const), at, len: long, srcOff: fc.nat(4096) }),
      fc.record({ kind: fc.constant("read" as const), at, len: long, dstOff: fc.nat(4096) }),
      fc.record({ kind: fc.constant("watch" as const), chunk: fc.integer({ min: 0, max: 3 }) }),
    );
    const src = pattern((5 * MiB) / 2 + 4096, 7);
    fc.assert(
      fc.property(fc.array(op, { maxLength: 12 }), fc.boolean(), (ops, replace) => {
        const m = new PhysicalMemory(BASE, SIZE, replace ? 0 : 256);
        const kept: Int32Array[] = [];
        m.attachWatcher({
          beforeChange: () => {},
          replaced: (_ci, old) => {
            if (old !== undefined) kept.push(old);
          },
        });
        const ref = new Uint8Array(SIZE);
        let seed = 1;
        for (const o of ops) {
          if (o.kind === "watch") {
            m.watch(o.chunk);
            // The old words handed out come back as spares for the next replacement.
            for (const w of kept.splice(0)) m.recycle(w);
            continue;
          }
          const len = Math.min(o.len, SIZE - o.at);
          if (o.kind === "write") {
            // The pattern differs from byte to byte (and a byte of it each write), so a
            // piece landing in the wrong place shows.
            src[o.srcOff] = seed++;
            m.write(BASE + o.at, src, o.srcOff, len);
            ref.set(src.subarray(o.srcOff, o.srcOff + len), o.at);
          } else {
            const dst = new Uint8Array(o.dstOff + len + 3).fill(0xa5);
            m.read(BASE + o.at, len, dst, o.dstOff);
            const want = new Uint8Array(o.dstOff + len + 3).fill(0xa5);
            want.set(ref.subarray(o.at, o.at + len), o.dstOff);
            assert.ok(Buffer.compare(dst, want) === 0, "a read differs from the flat array");
          }
        }
        assert.ok(
          Buffer.compare(m.slice(BASE, SIZE), ref) === 0,
          "memory differs from the flat array",
        );
      }),
      { numRuns: 40 },
    );
  });

  test("property: copyBytes copies bytes and words as one set would, in pieces of at most 512 KiB", () => {
    // Element counts around the pieces' sizes (512 Ki bytes, 128 Ki words) and their
    // multiples, at any offsets; each set the copy makes is recorded.
    const PIECE = 512 * 1024;
    const sizes = (piece: number) =>
      fc.oneof(
        fc.integer({ min: 0, max: 3 * piece + 5 }),
        fc
          .tuple(fc.integer({ min: 0, max: 3 }), fc.integer({ min: -2, max: 2 }))
          .map(([k, d]) => Math.max(0, k * piece + d)),
      );
    for (const kind of [Uint8Array, Int32Array] as const) {
      const piece = PIECE / kind.BYTES_PER_ELEMENT;
      const src = new kind(3 * piece + 64);
      for (let i = 0; i < src.length; i++) src[i] = (i * 2654435761) | 0;
      fc.assert(
        fc.property(sizes(piece), fc.nat(40), fc.nat(40), (n, from, at) => {
          const dst = new kind(3 * piece + 100);
          const sets: number[] = [];
          // The copy's sets, recorded (an own property before the prototype's).
          Object.defineProperty(dst, "set", {
            value: (a: ArrayLike<number>, o?: number) => {
              sets.push(a.length);
              kind.prototype.set.call(dst, a, o);
            },
          });
          copyBytes(dst, at, src, from, n);
          const want = new kind(dst.length);
          want.set(src.subarray(from, from + n), at);
          assert.deepEqual(dst, want, `${kind.name}: ${n} from ${from} to ${at}`);
          const copied = sets.reduce((x, y) => x + y, 0);
          assert.equal(copied, n, "the elements copied");
          for (const len of sets) assert.ok(len <= piece, `a set of ${len} elements`);
        }),
        { numRuns: 60 },
      );
    }
  });
});
