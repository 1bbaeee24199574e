/**
 * DmaDevice.readSegmentsInPlace against readSegments on two machines given the same
 * history: random segments over a range spanning 1 MiB DRAM chunks (some never
 * written), with the CPU holding dirty lines, reads outside the device's window and
 * beyond its DMA mask. The pieces handed out hold exactly the bytes readSegments
 * copies, each within one chunk, in order; the violations and counters are the same.
 */

import assert from "node:assert/strict";
import { describe, test } from "node:test";
import fc from "fast-check";
import type { DmaSegment } from "../../src/machine/device.js";
import type { Machine } from "../../src/machine/machine.js";
import { MEMORY_CHUNK_SHIFT } from "../../src/machine/memory.js";
import { MiB, pattern, smallMachine } from "./helpers.js";

const CHUNK = 1 << MEMORY_CHUNK_SHIFT;
/** The window: 3 MiB from 5.5 MiB into RAM, so it spans four chunks. */
const WIN_OFF = 5 * MiB + MiB / 2;
const WIN = 3 * MiB;

type Op =
  | { kind: "cpu-write"; off: number; len: number; seed: number }
  | { kind: "dram-write"; off: number; len: number; seed: number }
  | { kind: "clean"; off: number; len: number }
  | { kind: "read"; segs: { off: number; len: number }[] };

const off = fc.integer({ min: -4096, max: WIN + 4096 });
const opArb: fc.Arbitrary<Op> = fc.oneof(
  fc.record({
    kind: fc.constant("cpu-write" as const),
    off: fc.integer({ min: 0, max: WIN - 1 }),
    len: fc.integer({ min: 1, max: 300 }),
    seed: fc.nat(255),
  }),
  fc.record({
    kind: fc.constant("dram-write" as const),
    off: fc.integer({ min: 0, max: WIN - 1 }),
    len: fc.integer({ min: 1, max: 200_000 }),
    seed: fc.nat(255),
  }),
  fc.record({
    kind: fc.constant("clean" as const),
    off: fc.integer({ min: 0, max: WIN - 1 }),
    len: fc.integer({ min: 1, max: 4096 }),
  }),
  fc.record({
    kind: fc.constant("read" as const),
    segs: fc.array(fc.record({ off, len: fc.integer({ min: 0, max: 2 * CHUNK }) }), {
      minLength: 1,
      maxLength: 5,
    }),
  }),
);

function rig(): { m: Machine; base: number } {
  const m = smallMachine();
  const base = m.memory.base + WIN_OFF;
  // A 32-bit mask over RAM at 1 GiB: offsets past it wrap (and are reported).
  const dev = m.addDevice("dev", { coherent: false, dmaBits: 32 });
  dev.addWindow({ dmaAddr: base, len: WIN, direction: "to-device", label: "buf" });
  return { m, base };
}

function apply(m: Machine, base: number, op: Exclude<Op, { kind: "read" }>): void {
  const len = Math.min(op.len, WIN - op.off);
  if (op.kind === "cpu-write") m.cpu.writePhys(base + op.off, pattern(len, op.seed));
  else if (op.kind === "dram-write") m.memory.write(base + op.off, pattern(len, op.seed));
  else m.maintain("clean", [{ phys: base + op.off, len }]);
}

function segments(base: number, segs: readonly { off: number; len: number }[]): DmaSegment[] {
  // Offsets past the window's end are given past 4 GiB: the access wraps (and is reported).
  return segs.map((s) => ({
    dmaAddr: s.off > WIN ? base + s.off + 2 ** 32 : base + s.off,
    len: Math.min(s.len, WIN + 4096 - Math.max(0, s.off)),
  }));
}

/** The physical address of byte `at` of the segments' bytes (a 32-bit mask wraps). */
function physAt(segs: readonly DmaSegment[], at: number): number {
  let rest = at;
  for (const s of segs) {
    if (rest < s.len) return (s.dmaAddr + rest) % 2 ** 32;
    rest -= s.len;
  }
  throw new RangeError(`byte ${at} is past the segments`);
}

const report = (m: Machine): string[] =>
  m.violations.list.map((v) => `${v.kind} ${v.agent} ${v.phys} ${v.len} ${v.message}`);

describe("DmaDevice.readSegmentsInPlace", () => {
  test("the bytes, violations and counters of readSegments, in views within one chunk", () => {
    fc.assert(
      fc.property(fc.array(opArb, { minLength: 1, maxLength: 12 }), (ops) => {
        const a = rig();
        const b = rig();
        for (const op of ops) {
          if (op.kind !== "read") {
            apply(a.m, a.base, op);
            apply(b.m, b.base, op);
            continue;
          }
          const segs = segments(a.base, op.segs);
          let copied: Uint8Array | undefined;
          let copyErr: unknown;
          try {
            copied = a.m.device("dev").readSegments(segs);
          } catch (e) {
            copyErr = e;
          }
          const total = segs.reduce((n, s) => n + s.len, 0);
          const seen = new Uint8Array(total);
          let pos = 0;
          let viewErr: unknown;
          try {
            const done = b.m.device("dev").readSegmentsInPlace(segs, (bytes, from, len, at) => {
              assert.equal(at, pos, "pieces in order, without gaps");
              // The piece's chunk, and where in it the piece starts in DRAM.
              const phys = physAt(segs, at);
              assert.equal(bytes.length, CHUNK);
              assert.equal(from, (phys - b.m.memory.base) % CHUNK);
              assert.ok(len > 0 && from + len <= CHUNK);
              seen.set(bytes.subarray(from, from + len), at);
              pos += len;
            });
            assert.equal(done, true);
          } catch (e) {
            viewErr = e;
          }
          assert.equal(String(viewErr), String(copyErr));
          if (copied !== undefined) {
            assert.equal(pos, total);
            assert.deepEqual(seen, copied);
          }
          assert.deepEqual(report(b.m), report(a.m));
          const da = a.m.device("dev");
          const db = b.m.device("dev");
          assert.deepEqual(
            [db.bytesRead, db.bytesReread, db.faults],
            [da.bytesRead, da.bytesReread, da.faults],
          );
        }
      }),
      { numRuns: 150 },
    );
  });

  test("a coherent master or one behind an IOMMU reads nothing in place", () => {
    const m = smallMachine();
    const base = m.memory.base + WIN_OFF;
    for (const dev of [
      m.addDevice("coh", { coherent: true }),
      m.addDevice("mmu", { coherent: false, iommu: true }),
    ]) {
      const visited: number[] = [];
      assert.equal(
        dev.readSegmentsInPlace([{ dmaAddr: base, len: 64 }], (_b, _from, _len, at) =>
          visited.push(at),
        ),
        false,
      );
      assert.deepEqual(visited, []);
      assert.equal(dev.bytesRead, 0);
    }
    assert.equal(m.violations.count, 0);
  });
});
