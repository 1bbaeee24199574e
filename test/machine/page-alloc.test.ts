import assert from "node:assert/strict";
import { describe, test } from "node:test";
import fc from "fast-check";
import { KernelError } from "../../src/errno.js";
import { MAX_PAGE_ORDER, PageAllocator } from "../../src/machine/page-alloc.js";

const TOP = 1 << MAX_PAGE_ORDER;

function isKernelError(code: string): (e: unknown) => boolean {
  return (e) => e instanceof KernelError && e.code === code;
}

/** Allocates max-order blocks until ENOMEM; returns how many there were (and frees them). */
function countTopBlocks(a: PageAllocator): number {
  const got: number[] = [];
  for (;;) {
    try {
      got.push(a.alloc(MAX_PAGE_ORDER));
    } catch (e) {
      assert.ok(isKernelError("ENOMEM")(e));
      break;
    }
  }
  for (const p of got) a.free(p);
  return got.length;
}

describe("PageAllocator", () => {
  test("hands out naturally aligned blocks inside its range, without overlap", () => {
    const first = 0x40000; // 1 GiB / 4 KiB
    const a = new PageAllocator(first, 16 * TOP, 7);
    assert.equal(a.freePages, 16 * TOP);
    const owner = new Map<number, number>();
    const orders = [0, 3, 1, 10, 0, 5, 2, 9, 0, 0, 4, 7, 1, 6, 8, 0];
    let used = 0;
    for (const order of orders) {
      const pfn = a.alloc(order);
      assert.equal(pfn % (1 << order), 0, `order-${order} block at ${pfn} is aligned`);
      assert.ok(a.manages(pfn) && a.manages(pfn + (1 << order) - 1));
      for (let p = pfn; p < pfn + (1 << order); p++) {
        assert.equal(owner.has(p), false, `page ${p} handed out twice`);
        owner.set(p, pfn);
      }
      used += 1 << order;
      assert.equal(a.freePages, 16 * TOP - used);
    }
    assert.equal(a.manages(first - 1), false);
    assert.equal(a.manages(first + 16 * TOP), false);
  });

  test("top-order blocks come out scattered, in a seeded order", () => {
    const blocks = (seed: number): number[] => {
      const a = new PageAllocator(0, 32 * TOP, seed);
      return Array.from({ length: 32 }, () => a.alloc(MAX_PAGE_ORDER));
    };
    const one = blocks(1);
    assert.deepEqual(
      [...one].sort((x, y) => x - y),
      Array.from({ length: 32 }, (_, i) => i * TOP),
    );
    const ascending = one.every((p, i) => i === 0 || p > one[i - 1]!);
    assert.equal(ascending, false, "boot shuffles the free list");
    assert.deepEqual(blocks(1), one, "same seed, same order");
    assert.notDeepEqual(blocks(2), one, "another seed, another order");
  });

  test("a buffer of many pages is not physically contiguous", () => {
    const a = new PageAllocator(0, 64 * TOP, 1);
    // 3 MiB in 4 KiB pages and 64 KiB chunks, as a system heap would take it.
    const pfns: number[] = [];
    for (let i = 0; i < 4; i++) pfns.push(a.alloc(MAX_PAGE_ORDER));
    const contiguous = pfns.every((p, i) => i === 0 || p === pfns[i - 1]! + TOP);
    assert.equal(contiguous, false);
  });

  test("mixed orders from the same block, then all freed, coalesce back to top blocks", () => {
    const a = new PageAllocator(0, 4 * TOP, 3);
    const got: number[] = [];
    for (let i = 0; i < 4 * TOP; i += 1) {
      if (a.freePages === 0) break;
      const order = [0, 2, 1, 0, 3][i % 5]!;
      try {
        got.push(a.alloc(order));
      } catch {
        got.push(a.alloc(0));
      }
    }
    assert.equal(a.freePages, 0);
    assert.throws(() => a.alloc(0), isKernelError("ENOMEM"));
    // Free in a scrambled order.
    const order = got.map((p, i) => ({ p, k: (i * 7919) % got.length })).sort((x, y) => x.k - y.k);
    for (const { p } of order) a.free(p);
    assert.equal(a.freePages, 4 * TOP);
    assert.equal(countTopBlocks(a), 4, "every buddy merged back");
  });

  test("ENOMEM is a KernelError, not a crash, and names the order", () => {
    const a = new PageAllocator(0, TOP, 1);
    a.alloc(MAX_PAGE_ORDER);
    assert.equal(a.freePages, 0);
    assert.throws(
      () => a.alloc(0),
      (e: unknown) => e instanceof KernelError && e.code === "ENOMEM" && e.errno === 12,
    );
    assert.equal(a.freePages, 0, "a failed allocation changes nothing");
  });

  test("fragmentation: free pages but no block of the order asked for", () => {
    const a = new PageAllocator(0, 16, 1);
    const pages = Array.from({ length: 16 }, () => a.alloc(0));
    for (const p of pages) if (p % 2 === 0) a.free(p);
    assert.equal(a.freePages, 8);
    assert.throws(
      () => a.alloc(1),
      (e: unknown) =>
        e instanceof KernelError && e.code === "ENOMEM" && /8 pages free/.test(e.message),
    );
    assert.equal(a.alloc(0) % 2, 0);
  });

  test("bad orders and bad frees are EINVAL", () => {
    const a = new PageAllocator(100, 1000, 1);
    for (const o of [-1, 1.5, Number.NaN]) {
      assert.throws(() => a.alloc(o), isKernelError("EINVAL"), `order ${o}`);
    }
    // Above MAX_PAGE_ORDER __alloc_pages returns NULL: ENOMEM, as a 16384x16384 dumb buffer gets.
    assert.throws(() => a.alloc(MAX_PAGE_ORDER + 1), isKernelError("ENOMEM"));
    assert.throws(() => a.alloc(18), isKernelError("ENOMEM"));
    const p = a.alloc(2);
    assert.throws(() => a.free(p + 1), isKernelError("EINVAL"), "not the head of a block");
    assert.throws(() => a.free(99), isKernelError("EINVAL"), "never allocated");
    a.free(p);
    assert.throws(() => a.free(p), isKernelError("EINVAL"), "double free");
    assert.equal(a.freePages, 1000);
  });

  test("an unaligned range is carved into aligned blocks that never leave it", () => {
    const first = 3;
    const n = 3000;
    const a = new PageAllocator(first, n, 5);
    const seen = new Set<number>();
    for (let i = 0; i < n; i++) {
      const p = a.alloc(0);
      assert.ok(p >= first && p < first + n);
      assert.equal(seen.has(p), false);
      seen.add(p);
    }
    assert.throws(() => a.alloc(0), isKernelError("ENOMEM"));
    for (const p of seen) a.free(p);
    assert.equal(a.freePages, n);
    // [3, 3003) holds exactly the aligned 1024-page block at 1024 (2048+1024 > 3003).
    assert.equal(countTopBlocks(a), 1);
  });

  test("property: random alloc/free never overlaps, accounts exactly and coalesces fully", () => {
    const op = fc.oneof(
      fc.record({ alloc: fc.integer({ min: 0, max: MAX_PAGE_ORDER }) }),
      fc.record({ free: fc.nat() }),
    );
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 2000 }),
        fc.integer({ min: 1, max: 5000 }),
        fc.integer({ min: 0, max: 1000 }),
        fc.array(op, { maxLength: 120 }),
        (first, pages, seed, ops) => {
          const a = new PageAllocator(first, pages, seed);
          const tops = countTopBlocks(a);
          const live = new Map<number, number>(); // pfn -> order
          const owned = new Set<number>();
          let used = 0;
          for (const o of ops) {
            if ("alloc" in o) {
              let pfn: number;
              try {
                pfn = a.alloc(o.alloc);
              } catch (e) {
                assert.ok(isKernelError("ENOMEM")(e));
                continue;
              }
              const n = 1 << o.alloc;
              assert.equal(pfn % n, 0);
              for (let p = pfn; p < pfn + n; p++) {
                assert.ok(a.manages(p), `page ${p} outside [${first}, ${first + pages})`);
                assert.equal(owned.has(p), false);
                owned.add(p);
              }
              live.set(pfn, o.alloc);
              used += n;
            } else if (live.size > 0) {
              const keys = [...live.keys()];
              const pfn = keys[o.free % keys.length]!;
              const order = live.get(pfn)!;
              a.free(pfn);
              live.delete(pfn);
              for (let p = pfn; p < pfn + (1 << order); p++) owned.delete(p);
              used -= 1 << order;
            }
            assert.equal(a.freePages, pages - used);
          }
          for (const pfn of live.keys()) a.free(pfn);
          assert.equal(a.freePages, pages);
          assert.equal(countTopBlocks(a), tops);
        },
      ),
      { numRuns: 60 },
    );
  });
});
