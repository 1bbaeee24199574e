/**
 * DRAM row notes (DmaDevice.writeRows, DmaDevice.knownSameRows, src/machine/row-notes.ts)
 * against the plain path. Random histories on two machines, one writing frames through
 * writeRows and one with the same writes alone: DRAM, violations and counters stay the
 * same after every step (the note changes nothing the machine does). Whenever a reader
 * is told rows are equal to the row above, DRAM really holds them equal, whatever
 * happened since the write: other DMA writes, CPU stores written back by a clean or by
 * the speculative fills' evictions, direct DRAM writes, overlapping pieces, a write
 * that faulted. And a note that should hold does.
 */

import assert from "node:assert/strict";
import { describe, test } from "node:test";
import fc from "fast-check";
import { dmaSegmentsSlice } from "../../src/dma/scatterlist.js";
import type { DmaSegment } from "../../src/machine/device.js";
import type { Machine } from "../../src/machine/machine.js";
import { MEMORY_CHUNK_SHIFT } from "../../src/machine/memory.js";
import { MiB, pattern, smallMachine } from "./helpers.js";

/** The window: 96 KiB straddling a 1 MiB DRAM chunk boundary, 8 MiB into RAM. */
const WIN_OFF = 8 * MiB - 32 * 1024;
const WIN = 96 * 1024;
const CHUNK = 1 << MEMORY_CHUNK_SHIFT;

interface Piece {
  readonly off: number;
  readonly len: number;
}

/** A frame: rows of `rowBytes`, row y a copy of row y - 1 where `dup[y]`, claims a subset of those. */
interface Frame {
  readonly rowBytes: number;
  readonly seeds: number[];
  readonly dup: boolean[];
  readonly claim: boolean[];
}

type Op =
  | { kind: "noted"; pieces: Piece[]; frame: Frame; foreign: Piece | null }
  | OtherOp
  | { kind: "read"; which: number; cut: number; pieces: Piece[]; rowBytes: number };

const pieceArb = fc.record({
  off: fc.integer({ min: 0, max: WIN - 1 }),
  len: fc.integer({ min: 1, max: 24 * 1024 }),
});
const rowBytesArb = fc.constantFrom(16, 48, 64, 1000, 4096);
const frameArb: fc.Arbitrary<Frame> = rowBytesArb.chain((rowBytes) =>
  fc.integer({ min: 1, max: 24 }).chain((rows) =>
    fc.record({
      rowBytes: fc.constant(rowBytes),
      seeds: fc.array(fc.nat(3), { minLength: rows, maxLength: rows }),
      dup: fc.array(fc.boolean(), { minLength: rows, maxLength: rows }),
      claim: fc.array(fc.boolean(), { minLength: rows, maxLength: rows }),
    }),
  ),
);
const rangeArb = {
  off: fc.integer({ min: 0, max: WIN - 1 }),
  len: fc.integer({ min: 1, max: 9000 }),
};
/** Sometimes, memory written by someone else in the middle of a frame's write. */
const foreignArb = fc.oneof(
  { weight: 4, arbitrary: fc.constant(null) },
  { weight: 1, arbitrary: pieceArb },
);

type OtherOp =
  | { kind: "dma-write" | "dram-write" | "cpu-write"; off: number; len: number; seed: number }
  | { kind: "clean"; off: number; len: number };

/** Writes to the window by the device, directly to DRAM and by the CPU; cleans. */
function otherOpArbs(weight: number): fc.WeightedArbitrary<OtherOp>[] {
  return [
    {
      weight,
      arbitrary: fc.record({
        kind: fc.constantFrom("dma-write" as const, "dram-write" as const, "cpu-write" as const),
        ...rangeArb,
        seed: fc.nat(255),
      }),
    },
    { weight: 1, arbitrary: fc.record({ kind: fc.constant("clean" as const), ...rangeArb }) },
  ];
}

/**
 * The writes of `src` across `segs` by the device (as writeSegments), memory written by
 * someone else after piece `after` when `foreign` is given.
 */
function frameWrites(
  m: Machine,
  base: number,
  segs: readonly DmaSegment[],
  src: Uint8Array,
  foreign: Piece | null,
  after: number,
): () => void {
  return () => {
    const dev = m.device("dev");
    let at = 0;
    for (const [i, s] of segs.entries()) {
      if (at >= src.length) break;
      const n = Math.min(s.len, src.length - at);
      dev.write(s.dmaAddr, src, at, n);
      at += n;
      if (i === after && foreign !== null)
        m.memory.write(base + foreign.off, pattern(Math.min(foreign.len, WIN - foreign.off), 77));
    }
  };
}

const opArb: fc.Arbitrary<Op> = fc.oneof(
  {
    weight: 4,
    arbitrary: fc.record({
      kind: fc.constant("noted" as const),
      // Mostly whole pages in some order (a scattered buffer), else anything.
      pieces: fc.oneof(
        fc
          .uniqueArray(fc.integer({ min: 0, max: WIN / 4096 - 1 }), { minLength: 1, maxLength: 8 })
          .map((pages) => pages.map((p) => ({ off: p * 4096, len: 4096 }))),
        fc.array(pieceArb, { minLength: 1, maxLength: 4 }),
      ),
      frame: frameArb,
      // Memory written by someone else after the first piece (a write-back in the middle).
      foreign: foreignArb,
    }),
  },
  ...otherOpArbs(3),
  {
    weight: 5,
    arbitrary: fc.record({
      kind: fc.constant("read" as const),
      which: fc.nat(),
      cut: fc.nat(30_000),
      pieces: fc.array(pieceArb, { minLength: 1, maxLength: 3 }),
      rowBytes: rowBytesArb,
    }),
  },
);

/**
 * A machine; `tiny`: a 4 KiB cache whose speculative fills (half the lines a device
 * writes) evict the CPU's dirty lines into DRAM in the middle of a device's write.
 */
function rig(tiny = false): { m: Machine; base: number } {
  const m = smallMachine(
    tiny
      ? {
          cache: {
            lineSize: 64,
            levels: [{ name: "L2", sizeBytes: 4096, ways: 2 }],
            replacement: "lru",
          },
          speculativeFillRate: 0.5,
        }
      : {},
  );
  const base = m.memory.base + WIN_OFF;
  const dev = m.addDevice("dev", { coherent: false });
  dev.addWindow({ dmaAddr: base, len: WIN, direction: "bidirectional", label: "buf" });
  return { m, base };
}

/** The frame's bytes and, per row, whether its source knows it equal to the row above. */
function frameBytes(f: Frame): { src: Uint8Array; same: Uint8Array } {
  const R = f.rowBytes;
  const rows = f.seeds.length;
  const src = new Uint8Array(R * rows);
  const same = new Uint8Array(rows);
  for (let y = 0; y < rows; y++) {
    if (y > 0 && f.dup[y]) src.copyWithin(y * R, (y - 1) * R, y * R);
    else src.set(pattern(R, f.seeds[y]!), y * R);
    // Claims only what is true of the source (a seed repeated makes a row equal by chance).
    const equal =
      y > 0 && Buffer.compare(src.subarray(y * R, (y + 1) * R), src.subarray((y - 1) * R, y * R));
    same[y] = f.claim[y] && equal === 0 ? 1 : 0;
  }
  return { src, same };
}

const segsOf = (base: number, pieces: readonly Piece[]): DmaSegment[] =>
  pieces.map((p) => ({ dmaAddr: base + p.off, len: Math.min(p.len, WIN - p.off) }));

/** The stream `segs` names, as DRAM holds it now. */
function dramStream(m: Machine, segs: readonly DmaSegment[]): Uint8Array {
  const total = segs.reduce((n, s) => n + s.len, 0);
  const out = new Uint8Array(total);
  let at = 0;
  for (const s of segs) {
    m.memory.read(s.dmaAddr + m.device("dev").config.dmaOffset, s.len, out, at);
    at += s.len;
  }
  return out;
}

const report = (m: Machine): string[] =>
  m.violations.list.map((v) => `${v.kind} ${v.agent} ${v.phys} ${v.len} ${v.message}`);

function apply(m: Machine, base: number, op: Exclude<Op, { kind: "noted" | "read" }>): void {
  const len = Math.min(op.len, WIN - op.off);
  const phys = base + op.off;
  if (op.kind === "dma-write") m.device("dev").write(phys, pattern(len, op.seed));
  else if (op.kind === "dram-write") m.memory.write(phys, pattern(len, op.seed));
  else if (op.kind === "cpu-write") m.cpu.writePhys(phys, pattern(len, op.seed));
  else m.maintain("clean", [{ phys, len }]);
}

describe("DRAM row notes", () => {
  test("change nothing the machine does, and claim only rows DRAM holds equal", () => {
    let told = 0;
    fc.assert(
      fc.property(fc.boolean(), fc.array(opArb, { minLength: 1, maxLength: 14 }), (tiny, ops) => {
        const a = rig(tiny);
        const b = rig(tiny);
        const noted: { segs: DmaSegment[]; rowBytes: number; bytes: number }[] = [];
        for (const op of ops) {
          if (op.kind === "noted") {
            const segs = segsOf(a.base, op.pieces);
            const { src, same } = frameBytes(op.frame);
            const writes = (m: Machine) => frameWrites(m, a.base, segs, src, op.foreign, 0);
            a.m.device("dev").writeRows({ rowBytes: op.frame.rowBytes, same }, writes(a.m));
            writes(b.m)();
            const total = segs.reduce((n, s) => n + s.len, 0);
            noted.push({ segs, rowBytes: op.frame.rowBytes, bytes: Math.min(total, src.length) });
          } else if (op.kind === "read") {
            // Mostly a noted write's pieces (cut short sometimes), else anything.
            let segs: DmaSegment[];
            let rowBytes = op.rowBytes;
            const n = noted[op.which % (noted.length + 1)];
            if (n === undefined) segs = segsOf(a.base, op.pieces);
            else {
              rowBytes = n.rowBytes;
              segs = [];
              // What was written, or less.
              let left = op.cut === 0 ? n.bytes : Math.min(n.bytes, op.cut);
              for (const s of n.segs) {
                if (left <= 0) break;
                segs.push({ dmaAddr: s.dmaAddr, len: Math.min(s.len, left) });
                left -= s.len;
              }
            }
            const known = a.m.device("dev").knownSameRows(segs, rowBytes);
            if (known === undefined) continue;
            const bytes = dramStream(a.m, segs);
            assert.ok(known.length <= Math.floor(bytes.length / rowBytes));
            assert.equal(known[0] ?? 0, 0);
            for (let y = 1; y < known.length; y++) {
              if (known[y] === 0) continue;
              told++;
              const row = bytes.subarray(y * rowBytes, (y + 1) * rowBytes);
              const above = bytes.subarray((y - 1) * rowBytes, y * rowBytes);
              assert.deepEqual(row, above, `row ${y} claimed equal to the row above`);
            }
          } else {
            apply(a.m, a.base, op);
            apply(b.m, b.base, op);
          }
          assert.deepEqual(
            a.m.memory.slice(a.base, WIN),
            b.m.memory.slice(b.base, WIN),
            "DRAM is the same",
          );
          assert.deepEqual(report(a.m), report(b.m));
          const [da, db] = [a.m.device("dev"), b.m.device("dev")];
          assert.deepEqual([da.bytesWritten, da.faults], [db.bytesWritten, db.faults]);
        }
      }),
      { numRuns: 300 },
    );
    // The property was exercised: some rows were claimed and checked.
    assert.ok(told > 100, `only ${told} claimed rows were checked`);
  });

  test("a note holds until a byte of its pages is written, not when the CPU only caches a store", () => {
    const { m, base } = rig();
    const dev = m.device("dev");
    const R = 1024;
    const rows = 40;
    const src = new Uint8Array(R * rows);
    for (let y = 0; y < rows; y++) src.set(pattern(R, y < 20 ? 1 : 2), y * R);
    const same = new Uint8Array(rows).fill(1);
    same[0] = 0;
    same[20] = 0;
    // Pages out of order, one of them across the chunk boundary's far side.
    const pages = [3, 0, 9, 1, 5, 2, 8, 4, 6, 7];
    const segs = pages.map((p) => ({ dmaAddr: base + p * 4096, len: 4096 }));
    dev.writeRows({ rowBytes: R, same }, () => dev.writeSegments(segs, src));
    assert.deepEqual(dev.knownSameRows(segs, R), same);
    // Another reader's row length, or the pieces in another order: nothing known.
    assert.equal(dev.knownSameRows(segs, 512), undefined);
    assert.equal(dev.knownSameRows([...segs].reverse(), R), undefined);
    // Cut short: the rows it holds whole.
    assert.deepEqual(dev.knownSameRows(segs.slice(0, 3), R), same.subarray(0, 12));
    // Memory elsewhere written: still known.
    m.memory.write(base + 12 * 4096, pattern(4096, 9));
    assert.deepEqual(dev.knownSameRows(segs, R), same);
    // A CPU store stays in the cache: DRAM unchanged, still known; cleaned, it lands.
    m.cpu.writePhys(base + 2 * 4096 + 100, pattern(8, 3));
    assert.deepEqual(dev.knownSameRows(segs, R), same);
    m.maintain("clean", [{ phys: base + 2 * 4096, len: 4096 }]);
    assert.equal(dev.knownSameRows(segs, R), undefined);
    // Written again whole: known again; then one byte of one page by DMA: gone.
    dev.writeRows({ rowBytes: R, same }, () => dev.writeSegments(segs, src));
    assert.deepEqual(dev.knownSameRows(segs, R), same);
    dev.write(base + 9 * 4096 + 17, pattern(1, 5));
    assert.equal(dev.knownSameRows(segs, R), undefined);
  });

  test("no note for overlapping pieces, a write that threw, or a reader that does not see DRAM alone", () => {
    const { m, base } = rig();
    const dev = m.device("dev");
    const R = 64;
    const src = new Uint8Array(R * 8).fill(7);
    const same = new Uint8Array(8).fill(1);
    // The second piece writes over the first's last row.
    const overlapping = [
      { dmaAddr: base, len: 256 },
      { dmaAddr: base + 192, len: 256 },
    ];
    dev.writeRows({ rowBytes: R, same }, () => dev.writeSegments(overlapping, src));
    assert.equal(dev.knownSameRows(overlapping, R), undefined);
    const segs = [{ dmaAddr: base + CHUNK / 2, len: 512 }];
    assert.throws(() =>
      dev.writeRows({ rowBytes: R, same }, () => {
        dev.writeSegments(segs, src);
        throw new Error("stop");
      }),
    );
    assert.equal(dev.knownSameRows(segs, R), undefined);
    dev.writeRows({ rowBytes: R, same }, () => dev.writeSegments(segs, src));
    assert.ok(dev.knownSameRows(segs, R) !== undefined);
    // Memory written by someone else while the device wrote (a dirty line written back
    // by a speculative fill's eviction): the pieces may no longer hold what was written.
    const two = [
      { dmaAddr: base + 3 * 4096, len: 256 },
      { dmaAddr: base + 5 * 4096, len: 256 },
    ];
    dev.writeRows({ rowBytes: R, same }, () => {
      dev.write(two[0]!.dmaAddr, src, 0, 256);
      m.memory.write(two[0]!.dmaAddr + 70, pattern(3, 1));
      dev.write(two[1]!.dmaAddr, src, 256, 256);
    });
    assert.equal(dev.knownSameRows(two, R), undefined);
    const coh = m.addDevice("coh", { coherent: true });
    const mmu = m.addDevice("mmu", { coherent: false, iommu: true });
    assert.equal(coh.knownSameRows(segs, R), undefined);
    assert.equal(mmu.knownSameRows(segs, R), undefined);
  });
});

/** A frame of key `key` (one of a few), its first `rows` rows drawn for `seq`, the rest the key's. */
interface Keyed {
  readonly key: number;
  readonly seq: number;
  readonly rows: number;
}

type HeldOp =
  | {
      kind: "frame";
      buf: number;
      frame: Keyed;
      claimed: boolean;
      foreign: Piece | null;
      named: number;
    }
  | OtherOp;

/** Three buffers of 10 scattered pages each in the window (the last runs past a chunk boundary). */
const BUFFERS: readonly (readonly number[])[] = [
  [3, 0, 9, 1, 5, 2, 8, 4, 6, 7],
  [10, 11, 12, 13, 14, 15, 16, 17, 18, 19],
  [23, 21, 20, 22, 8, 9, 10, 11, 12, 13],
];
const KEY_ROW = 1000;
const KEY_ROWS = 40;

function keyedBytes(f: Keyed): Uint8Array {
  const out = new Uint8Array(KEY_ROW * KEY_ROWS);
  for (let y = 0; y < KEY_ROWS; y++)
    out.set(pattern(KEY_ROW, y < f.rows ? f.seq * 31 + y : f.key * 17 + (y >> 3)), y * KEY_ROW);
  return out;
}

const heldOpArb: fc.Arbitrary<HeldOp> = fc.oneof(
  {
    weight: 6,
    arbitrary: fc.record({
      kind: fc.constant("frame" as const),
      buf: fc.constantFrom(0, 0, 1, 2),
      frame: fc.record({
        key: fc.nat(1),
        seq: fc.nat(5),
        rows: fc.integer({ min: 0, max: KEY_ROWS / 2 }),
      }),
      // Said what it is (else written as any frame), and the stream it names exact or not.
      claimed: fc.constantFrom(true, true, true, false),
      named: fc.constantFrom(-1, -1, 0, 1),
      foreign: foreignArb,
    }),
  },
  ...otherOpArbs(2),
);

describe("DRAM row notes: a frame written over another of its key", () => {
  test("leaves DRAM, violations and counters as writing it whole", () => {
    let heldBytes = 0;
    fc.assert(
      fc.property(fc.array(heldOpArb, { minLength: 1, maxLength: 12 }), (ops) => {
        const a = rig();
        const b = rig();
        for (const op of ops) {
          if (op.kind !== "frame") {
            apply(a.m, a.base, op);
            apply(b.m, b.base, op);
          } else {
            const src = keyedBytes(op.frame);
            const segs = BUFFERS[op.buf]!.map((p) => ({ dmaAddr: a.base + p * 4096, len: 4096 }));
            const writes = (m: Machine) => frameWrites(m, a.base, segs, src, op.foreign, 2);
            const same = new Uint8Array(KEY_ROWS);
            const content = {
              key: `key ${op.frame.key}`,
              seq: op.frame.seq,
              rows: op.frame.rows,
            };
            // The stream named: the frame's bytes, or (a driver's mistake) another buffer's.
            const named = op.named < 0 ? op.buf : op.named;
            const stream = dmaSegmentsSlice(
              BUFFERS[named]!.map((p) => ({ dmaAddr: a.base + p * 4096, len: 4096 })),
              0,
              src.length,
            );
            const held0 = heldOf(a.m);
            a.m
              .device("dev")
              .writeRows(
                { rowBytes: KEY_ROW, same, ...(op.claimed ? { content } : {}) },
                writes(a.m),
                stream,
              );
            heldBytes += heldOf(a.m) - held0;
            writes(b.m)();
          }
          assert.deepEqual(a.m.memory.slice(a.base, WIN), b.m.memory.slice(b.base, WIN));
          assert.deepEqual(report(a.m), report(b.m));
          const [da, db] = [a.m.device("dev"), b.m.device("dev")];
          assert.deepEqual([da.bytesWritten, da.faults], [db.bytesWritten, db.faults]);
          assert.equal(a.m.memory.writeSeq, b.m.memory.writeSeq);
        }
      }),
      { numRuns: 300 },
    );
    // The shortcut was taken: bytes were left as DRAM held them. Unseeded runs hold
    // about 1.0-1.6 MB in all; the bound is far below that so the check cannot flake.
    assert.ok(heldBytes > 1e5, `only ${heldBytes} bytes held`);
  });
});

describe("DRAM row notes: a frame written over another whose top rows changed", () => {
  test("the rows below the pages written since are not copied, and DRAM is the new frame", () => {
    const { m, base } = rig();
    const dev = m.device("dev");
    const segs = BUFFERS[1]!.map((p) => ({ dmaAddr: base + p * 4096, len: 4096 }));
    const frame = (seq: number): Uint8Array => keyedBytes({ key: 0, seq, rows: 3 });
    const write = (seq: number): void => {
      const src = frame(seq);
      dev.writeRows(
        { rowBytes: KEY_ROW, same: new Uint8Array(KEY_ROWS), content: { key: "k", seq, rows: 3 } },
        () => dev.writeSegments(segs, src),
        dmaSegmentsSlice(segs, 0, src.length),
      );
    };
    write(0);
    // The first rows change in place, into the frame's second page (an uncached store:
    // a cache's write-back would count its whole 1 MiB DRAM chunk as written).
    m.memory.write(base + 10 * 4096, pattern(5000, 9));
    // A reader of the whole frame is told nothing now.
    assert.equal(dev.knownSameRows(segs, KEY_ROW), undefined);
    const held0 = heldOf(m);
    write(1);
    const held = heldOf(m) - held0;
    // Everything from the third page on (the CPU's stamp reached into the second).
    assert.equal(held, KEY_ROW * KEY_ROWS - 2 * 4096);
    assert.deepEqual(m.memory.slice(base + 10 * 4096, KEY_ROW * KEY_ROWS), frame(1));
  });
});

/** Bytes memory.write was told it already held, on machine `m` (counted by a wrapper). */
function heldOf(m: Machine): number {
  const mem = m.memory as typeof m.memory & { heldCount?: number };
  if (mem.heldCount === undefined) {
    mem.heldCount = 0;
    const write = mem.write.bind(mem);
    mem.write = (phys, src, srcOff, len, held = 0) => {
      const n = len ?? src.length - (srcOff ?? 0);
      write(phys, src, srcOff, len, held);
      mem.heldCount! += Math.min(n, held);
    };
  }
  return mem.heldCount;
}
