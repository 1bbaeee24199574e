import assert from "node:assert/strict";
import { describe, test } from "node:test";
import fc from "fast-check";
import { KernelError } from "../../src/errno.js";
import { ContiguousArea } from "../../src/machine/contiguous.js";

const BASE = 0x5000_0000;
const U = 4096;

function isKernelError(code: string): (e: unknown) => boolean {
  return (e) => e instanceof KernelError && e.code === code;
}

describe("ContiguousArea", () => {
  test("geometry", () => {
    const a = new ContiguousArea("cma", BASE, 16, U);
    assert.equal(a.size, 16 * U);
    assert.equal(a.freeUnits, 16);
    assert.equal(a.contains(BASE), true);
    assert.equal(a.contains(BASE + 16 * U - 1), true);
    assert.equal(a.contains(BASE + 16 * U), false);
    assert.equal(a.contains(BASE - 1), false);
  });

  test("first fit: runs are packed from the start and holes are reused", () => {
    const a = new ContiguousArea("cma", BASE, 16, U);
    const r0 = a.alloc(3);
    const r1 = a.alloc(2);
    const r2 = a.alloc(4);
    assert.deepEqual([r0, r1, r2], [BASE, BASE + 3 * U, BASE + 5 * U]);
    assert.equal(a.freeUnits, 7);
    a.free(r1);
    assert.equal(a.alloc(3), BASE + 9 * U, "the 2-unit hole is too small");
    assert.equal(a.alloc(1), BASE + 3 * U, "the hole is the first fit for 1 unit");
    assert.equal(a.alloc(1), BASE + 4 * U);
    assert.equal(a.freeUnits, 16 - 3 - 4 - 3 - 2);
  });

  test("alignment is in units from the start of the area", () => {
    const a = new ContiguousArea("cma", BASE, 32, U);
    assert.equal(a.alloc(1), BASE);
    assert.equal(a.alloc(2, 4), BASE + 4 * U);
    assert.equal(a.alloc(4, 8), BASE + 8 * U);
    assert.equal(a.alloc(1, 1), BASE + U);
    // Units 3, 6-7, 12-31 free; an 8-aligned run of 8 starts at 16.
    assert.equal(a.alloc(8, 8), BASE + 16 * U);
    // A run that is long enough but misaligned is skipped.
    a.free(BASE + 8 * U); // 8..11 free, plus 12..15
    assert.equal(a.alloc(6, 4), BASE + 8 * U, "6 units fit in 8..15");
    // Free now: 2, 3, 6, 7, 14, 15, 24..31. Unit 3 is free but not 2-aligned.
    assert.equal(a.alloc(1, 2), BASE + 2 * U);
    assert.equal(a.alloc(1, 2), BASE + 6 * U, "unit 3 is skipped: misaligned");
    assert.equal(a.alloc(2, 4), BASE + 24 * U, "14..15 is free but not 4-aligned");
  });

  test("an aligned run found after a used unit inside a candidate", () => {
    const a = new ContiguousArea("pool", BASE, 16, U);
    const x = a.alloc(1, 1); // unit 0
    a.alloc(1); // unit 1
    a.free(x); // 0 free, 1 used
    assert.equal(a.alloc(2, 2), BASE + 2 * U);
    assert.equal(a.alloc(1, 2), BASE, "unit 0 is free and aligned");
  });

  test("exhaustion is ENOMEM naming the area; freeing makes room again", () => {
    const a = new ContiguousArea("swiotlb", BASE, 8, 2048);
    const r = a.alloc(8);
    assert.equal(a.freeUnits, 0);
    assert.throws(
      () => a.alloc(1),
      (e: unknown) =>
        e instanceof KernelError &&
        e.code === "ENOMEM" &&
        /^ENOMEM: swiotlb: no 2048 contiguous bytes free \(0 free in all\)/.test(e.message),
    );
    a.free(r);
    assert.equal(a.alloc(8), BASE);
    const b = new ContiguousArea("cma", BASE, 8, U);
    b.alloc(2);
    b.alloc(2);
    b.free(BASE);
    assert.throws(() => b.alloc(5), isKernelError("ENOMEM"), "6 free but not 5 contiguous");
    assert.throws(() => b.alloc(9), isKernelError("ENOMEM"), "bigger than the area");
  });

  test("bad sizes and bad frees are EINVAL", () => {
    const a = new ContiguousArea("cma", BASE, 8, U);
    for (const n of [0, -1, 1.5, Number.NaN])
      assert.throws(() => a.alloc(n), isKernelError("EINVAL"));
    const r = a.alloc(4);
    assert.throws(() => a.free(r + U), isKernelError("EINVAL"), "middle of a run");
    assert.throws(() => a.free(BASE + 7 * U), isKernelError("EINVAL"), "never allocated");
    a.free(r);
    assert.throws(() => a.free(r), isKernelError("EINVAL"), "double free");
    assert.equal(a.freeUnits, 8);
  });

  test("property: matches a first-fit reference model exactly", () => {
    const UNITS = 64;
    const op = fc.oneof(
      fc.record({
        count: fc.integer({ min: 1, max: 20 }),
        align: fc.constantFrom(1, 2, 4, 8, 16),
      }),
      fc.record({ free: fc.nat() }),
    );
    fc.assert(
      fc.property(fc.array(op, { maxLength: 80 }), (ops) => {
        const a = new ContiguousArea("cma", BASE, UNITS, U);
        const used = new Uint8Array(UNITS);
        const runs = new Map<number, number>();
        for (const o of ops) {
          if ("count" in o) {
            let want = -1;
            for (let i = 0; i + o.count <= UNITS; i += o.align) {
              if (used.subarray(i, i + o.count).every((x) => x === 0)) {
                want = i;
                break;
              }
            }
            if (want < 0) {
              assert.throws(() => a.alloc(o.count, o.align), isKernelError("ENOMEM"));
            } else {
              assert.equal(a.alloc(o.count, o.align), BASE + want * U);
              used.fill(1, want, want + o.count);
              runs.set(want, o.count);
            }
          } else if (runs.size > 0) {
            const keys = [...runs.keys()];
            const i = keys[o.free % keys.length]!;
            a.free(BASE + i * U);
            used.fill(0, i, i + runs.get(i)!);
            runs.delete(i);
          }
          assert.equal(a.freeUnits, used.filter((x) => x === 0).length);
        }
      }),
      { numRuns: 150 },
    );
  });
});
