/**
 * The checker's shadow bookkeeping against plain references: OwnershipTracker.conflict
 * (an array of regions with each one's span, skipping those an access misses) answers
 * exactly what a scan of every region in the order they were added answers, and
 * CoherencyShadow.writer gives back each epoch's writer as it was opened. Random
 * histories of maps, hand-overs, unmaps, consistent buffers and accesses.
 */

import assert from "node:assert/strict";
import { describe, test } from "node:test";
import fc from "fast-check";
import {
  CoherencyShadow,
  type OwnedRegion,
  OwnershipTracker,
  type StreamingOwner,
} from "../../src/machine/coherency.js";

/** The answer of conflict() as a scan of every live region in the order added. */
function referenceConflict(
  regions: readonly OwnedRegion[],
  consistent: ReadonlyMap<number, number>,
  phys: number,
  len: number,
  write: boolean,
): OwnedRegion | undefined {
  const end = phys + len;
  const overlaps = (r: OwnedRegion): boolean =>
    r.ranges.some((x) => phys < x.phys + x.len && x.phys < end);
  let handedToCpu = 0;
  for (const r of regions)
    if (r.owner === "cpu" && r.since > handedToCpu && overlaps(r)) handedToCpu = r.since;
  let inConsistent = false;
  for (const [p, l] of consistent) if (phys >= p && phys + len <= p + l) inConsistent = true;
  for (const r of regions) {
    if (r.owner !== "device" || r.since < handedToCpu) continue;
    if (!write && r.deviceReadsOnly) continue;
    if (r.deviceCoherent === true && inConsistent) continue;
    if (overlaps(r)) return r;
  }
  return undefined;
}

type Op =
  | {
      kind: "add";
      ranges: { phys: number; len: number }[];
      readsOnly: boolean;
      coherent: boolean;
      device: number;
    }
  | { kind: "own"; which: number; owner: StreamingOwner }
  | { kind: "remove"; which: number }
  | { kind: "consistent"; phys: number; len: number }
  | { kind: "unconsistent"; which: number }
  | { kind: "access"; phys: number; len: number; write: boolean }
  | {
      kind: "edge";
      which: number;
      range: number;
      end: boolean;
      delta: number;
      len: number;
      write: boolean;
    };

/** Addresses in a small space, so that regions and accesses meet often. */
const at = fc.integer({ min: 0, max: 2048 });
const size = fc.integer({ min: 0, max: 900 });
const opArb: fc.Arbitrary<Op> = fc.oneof(
  {
    weight: 4,
    arbitrary: fc.record({
      kind: fc.constant("add" as const),
      ranges: fc.array(fc.record({ phys: at, len: size }), { minLength: 0, maxLength: 4 }),
      readsOnly: fc.boolean(),
      coherent: fc.boolean(),
      device: fc.nat(2),
    }),
  },
  {
    weight: 3,
    arbitrary: fc.record({
      kind: fc.constant("own" as const),
      which: fc.nat(),
      owner: fc.constantFrom<StreamingOwner>("cpu", "device"),
    }),
  },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant("remove" as const), which: fc.nat() }) },
  {
    weight: 1,
    arbitrary: fc.record({ kind: fc.constant("consistent" as const), phys: at, len: size }),
  },
  {
    weight: 1,
    arbitrary: fc.record({ kind: fc.constant("unconsistent" as const), which: fc.nat() }),
  },
  {
    // An access starting or ending at a byte next to a region's edge.
    weight: 4,
    arbitrary: fc.record({
      kind: fc.constant("edge" as const),
      which: fc.nat(),
      range: fc.nat(),
      end: fc.boolean(),
      delta: fc.integer({ min: -2, max: 2 }),
      len: fc.oneof(fc.integer({ min: 1, max: 3 }), fc.integer({ min: 1, max: 900 })),
      write: fc.boolean(),
    }),
  },
  {
    weight: 6,
    arbitrary: fc.record({
      kind: fc.constant("access" as const),
      phys: at,
      len: fc.integer({ min: 1, max: 900 }),
      write: fc.boolean(),
    }),
  },
);

describe("ownership conflicts", () => {
  test("conflict() answers what a scan of every region in order answers", () => {
    let found = 0;
    fc.assert(
      fc.property(fc.array(opArb, { minLength: 1, maxLength: 60 }), (ops) => {
        const o = new OwnershipTracker();
        o.declareCpuAccessOnly("dev2");
        const live: OwnedRegion[] = [];
        const consistent = new Map<number, number>();
        for (const op of ops) {
          if (op.kind === "add") {
            live.push(
              o.add({
                device: `dev${op.device}`,
                label: "buf",
                direction: op.readsOnly ? "DMA_TO_DEVICE" : "DMA_BIDIRECTIONAL",
                deviceReadsOnly: op.readsOnly,
                ranges: op.ranges,
                giveBackCall: "dma_unmap_single()",
                deviceCoherent: op.coherent,
              }),
            );
          } else if (op.kind === "own") {
            const r = live[op.which % Math.max(1, live.length)];
            if (r !== undefined) o.setOwner(r, op.owner);
          } else if (op.kind === "remove") {
            const i = op.which % Math.max(1, live.length);
            const r = live[i];
            if (r !== undefined) {
              o.remove(r.id);
              live.splice(i, 1);
            }
          } else if (op.kind === "consistent") {
            o.addConsistent(op.phys, op.len);
            consistent.set(op.phys, op.len);
          } else if (op.kind === "unconsistent") {
            const keys = [...consistent.keys()];
            const p = keys[op.which % Math.max(1, keys.length)];
            if (p !== undefined) {
              o.removeConsistent(p);
              consistent.delete(p);
            }
          } else {
            let phys = 0;
            if (op.kind === "access") phys = op.phys;
            else {
              const r = live[op.which % Math.max(1, live.length)];
              const x = r?.ranges[op.range % Math.max(1, r.ranges.length)];
              if (x === undefined) continue;
              phys = Math.max(
                0,
                (op.end ? x.phys + x.len : x.phys) + op.delta - (op.end ? 0 : op.len - 1),
              );
            }
            const want = referenceConflict(live, consistent, phys, op.len, op.write);
            const got = o.conflict(phys, op.len, op.write);
            assert.equal(got, want);
            if (want !== undefined) found++;
          }
          assert.equal(o.size, live.length);
        }
      }),
      { numRuns: 1000 },
    );
    // Conflicts were found, not only their absence.
    assert.ok(found > 150, `only ${found} conflicts found`);
  });

  test("writer(epoch) gives back each epoch's writer as it was opened", () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.record({
            agent: fc.constantFrom("cpu", "vivid-cap", "simgpu", "dma0"),
            what: fc.constantFrom("DMA write", "uncached store", "write-combined store"),
            time: fc.double({ min: 0, max: 1e12, noNaN: true }),
          }),
          { maxLength: 3000 },
        ),
        (writes) => {
          const s = new CoherencyShadow();
          const epochs = writes.map((w) => s.beginWrite(w.agent, w.time, w.what));
          assert.deepEqual(s.writer(0), { agent: "boot", time: 0, what: "initial contents" });
          for (const [i, e] of epochs.entries()) {
            assert.equal(e, i + 1);
            assert.deepEqual(s.writer(e), { ...writes[i] });
          }
          assert.equal(s.epoch, writes.length);
          for (const e of [-1, writes.length + 1, 0.5, Number.NaN])
            assert.deepEqual(s.writer(e), { agent: "?", time: 0, what: "?" });
        },
      ),
      { numRuns: 60 },
    );
  });
});
