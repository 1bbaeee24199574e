// sw_sync (drivers/dma-buf/sw_sync.c) and ports of tools/testing/selftests/sync at
// small size: sync_alloc, sync_fence, sync_merge, sync_wait, sync_stress_*.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import fc from "fast-check";
import { DmaFence, DmaFenceCb, type FenceEnv, fenceEnv } from "../../src/dma-buf/dma-fence.js";
import { dmaFenceUnwrap } from "../../src/dma-buf/dma-fence-unwrap.js";
import { SwSyncTimeline, SyncPt } from "../../src/dma-buf/sw-sync.js";
import { SyncFile } from "../../src/dma-buf/sync-file.js";
import { KernelError } from "../../src/errno.js";
import { VirtualClock } from "../../src/machine/clock.js";
import { Prng } from "../../src/machine/prng.js";

function newEnv(): FenceEnv {
  return fenceEnv(new VirtualClock());
}

/** libsync's sw_sync_fence_create: a sync_file holding a new sync_pt. */
function fenceCreate(tl: SwSyncTimeline, value: number): SyncFile {
  const pt = tl.createFence(value);
  const file = SyncFile.create(pt);
  pt.put();
  return file;
}

/** libsync's sync_wait(fd, timeout): poll() with a timeout on the virtual clock. */
function syncWait(file: SyncFile, timeoutNs: number): number {
  if (file.poll() !== 0) return 1;
  return file.fence.waitTimeout(true, timeoutNs) > 0 ? 1 : 0;
}

/** sync_fence_count_with_status(fd, status). */
function countWithStatus(file: SyncFile, status: number): number {
  return file.info({ numFences: 64 }).fenceInfo.filter((i) => i.status === status).length;
}

const ACTIVE = 0;
const SIGNALED = 1;

function isErrno(code: string): (e: unknown) => boolean {
  return (e) => e instanceof KernelError && e.code === code;
}

describe("sw_sync timeline", () => {
  test("points signal in value order when the value reaches them", () => {
    const env = newEnv();
    const tl = new SwSyncTimeline(env, "tl");
    const order: number[] = [];
    const pts = [5, 1, 3, 2, 4].map((v) => {
      const pt = tl.createFence(v);
      pt.addCallback(new DmaFenceCb(() => order.push(v)));
      return pt;
    });
    assert.deepEqual(
      tl.pendingPoints.map((p) => p.seqno),
      [1, 2, 3, 4, 5],
    );
    tl.inc(3);
    assert.deepEqual(order, [1, 2, 3]);
    tl.inc(10);
    assert.deepEqual(order, [1, 2, 3, 4, 5]);
    assert.equal(tl.value, 13);
    assert.ok(pts.every((p) => p.isSignaled()));
    assert.equal(pts[0]!.driverName, "sw_sync");
    assert.equal(pts[0]!.timelineName, "tl");
    assert.equal(pts[0]!.context, tl.context);
  });

  test("a point at a value already reached is signalled at creation", () => {
    const env = newEnv();
    const tl = new SwSyncTimeline(env, "tl");
    env.clock.advance(77);
    assert.equal(tl.createFence(0).signaledFlag, true);
    tl.inc(4);
    const pt = tl.createFence(3);
    assert.equal(pt.signaledFlag, true);
    assert.equal(pt.timestamp, 77);
    assert.equal(tl.pendingPoints.length, 0);
  });

  test("a second point at a pending value is the same point", () => {
    const env = newEnv();
    const tl = new SwSyncTimeline(env, "tl");
    const a = tl.createFence(7);
    const b = tl.createFence(7);
    assert.equal(a, b);
    assert.equal(a.refcount, 2);
    assert.equal(tl.pendingPoints.length, 1);
  });

  test("32-bit wrap-around: values compare modulo 2^32", () => {
    const env = newEnv();
    const tl = new SwSyncTimeline(env, "tl");
    tl.inc(0xffff_fff0);
    const late = tl.createFence(0xffff_fff8);
    const wrapped = tl.createFence(2);
    assert.equal(wrapped.signaledFlag, false, "2 is after 0xfffffff0 on a wrapping timeline");
    assert.deepEqual(
      tl.pendingPoints.map((p) => p.seqno),
      [0xffff_fff8, 2],
    );
    tl.inc(8);
    assert.equal(late.isSignaled(), true);
    assert.equal(wrapped.isSignaled(), false);
    tl.inc(10);
    assert.equal(tl.value, 2);
    assert.equal(wrapped.isSignaled(), true);
  });

  test("SW_SYNC_IOC_INC takes a __u32, applied INT_MAX at a time", () => {
    const env = newEnv();
    const tl = new SwSyncTimeline(env, "tl");
    tl.inc(0xffff_ffff);
    assert.equal(tl.value, 0xffff_ffff);
    assert.throws(() => tl.inc(-1), RangeError);
    assert.throws(() => tl.createFence(2 ** 32), RangeError);
  });

  test("closing the timeline signals pending points with -ENOENT", () => {
    const env = newEnv();
    const tl = new SwSyncTimeline(env, "tl");
    const pt = tl.createFence(1);
    tl.release();
    assert.equal(pt.getStatus(), -2);
  });

  test("a released pending point leaves the timeline", () => {
    const env = newEnv();
    const tl = new SwSyncTimeline(env, "tl");
    const pt = tl.createFence(1);
    pt.put();
    assert.equal(tl.pendingPoints.length, 0);
  });

  test("deadlines: earliest kept; ENOENT without one; EINVAL for other fences", () => {
    const env = newEnv();
    const tl = new SwSyncTimeline(env, "tl");
    const pt = tl.createFence(1);
    assert.throws(() => tl.getDeadline(pt), isErrno("ENOENT"));
    pt.setDeadline(500);
    pt.setDeadline(900);
    assert.equal(tl.getDeadline(pt), 500);
    pt.setDeadline(200);
    assert.equal(tl.getDeadline(pt), 200);
    const other = new DmaFence(
      { getDriverName: () => "x", getTimelineName: () => "x" },
      env.clock,
      env.contexts.alloc(1),
      1,
    );
    assert.throws(() => tl.getDeadline(other), isErrno("EINVAL"));
    tl.inc(1);
    pt.setDeadline(100);
    assert.equal(tl.getDeadline(pt), 200, "ignored once signalled");
  });

  test("timeline names are cut to 31 bytes; contexts come from the kernel's allocator", () => {
    const env = newEnv();
    const a = new SwSyncTimeline(env, "n".repeat(40));
    const b = new SwSyncTimeline(env, "b");
    assert.equal(a.name.length, 31);
    assert.equal(b.context, a.context + 1);
  });
});

describe("selftests/sync", () => {
  test("sync_alloc: timeline, fence, negative cases", () => {
    const env = newEnv();
    const tl = new SwSyncTimeline(env, "alloc");
    const f = fenceCreate(tl, 1);
    assert.ok(f.fence instanceof SyncPt);
    assert.throws(() => tl.createFence(-1), RangeError);
  });

  test("sync_fence: test_fence_one_timeline_wait", () => {
    const env = newEnv();
    const tl = new SwSyncTimeline(env, "t");
    const fence = fenceCreate(tl, 5);
    assert.equal(syncWait(fence, 0), 0);
    tl.inc(1);
    assert.equal(syncWait(fence, 0), 0);
    tl.inc(4);
    assert.ok(syncWait(fence, 0) > 0);
    tl.inc(10);
    assert.ok(syncWait(fence, 0) > 0);
  });

  test("sync_fence: test_fence_one_timeline_merge", () => {
    const env = newEnv();
    const tl = new SwSyncTimeline(env, "t");
    const a = fenceCreate(tl, 1);
    const b = fenceCreate(tl, 2);
    const c = fenceCreate(tl, 3);
    let d = SyncFile.merge(env, "mergeFence", b, a);
    d = SyncFile.merge(env, "mergeFence", c, d);
    for (const f of [a, b, c, d]) assert.equal(countWithStatus(f, ACTIVE), 1);
    tl.inc(1);
    assert.equal(countWithStatus(a, SIGNALED), 1);
    assert.equal(countWithStatus(d, ACTIVE), 1);
    tl.inc(1);
    assert.equal(countWithStatus(b, SIGNALED), 1);
    assert.equal(countWithStatus(d, ACTIVE), 1);
    tl.inc(1);
    assert.equal(countWithStatus(c, SIGNALED), 1);
    assert.equal(countWithStatus(d, ACTIVE), 0);
    assert.equal(countWithStatus(d, SIGNALED), 1);
  });

  test("sync_merge: test_fence_merge_same_fence", () => {
    const env = newEnv();
    const tl = new SwSyncTimeline(env, "t");
    const fence = fenceCreate(tl, 5);
    const merged = SyncFile.merge(env, "mergeFence", fence, fence);
    assert.equal(countWithStatus(merged, ACTIVE), 1);
    tl.inc(5);
    assert.equal(countWithStatus(merged, SIGNALED), 1);
  });

  test("sync_wait: test_fence_multi_timeline_wait", () => {
    const env = newEnv();
    const [ta, tb, tc] = ["a", "b", "c"].map((n) => new SwSyncTimeline(env, n));
    const a = fenceCreate(ta!, 5);
    const b = fenceCreate(tb!, 5);
    const c = fenceCreate(tc!, 5);
    const merged = SyncFile.merge(env, "mergeFence", SyncFile.merge(env, "m", a, b), c);
    assert.equal(countWithStatus(merged, ACTIVE), 3);
    ta!.inc(5);
    assert.equal(countWithStatus(merged, ACTIVE), 2);
    assert.equal(countWithStatus(merged, SIGNALED), 1);
    assert.equal(syncWait(merged, 0), 0);
    tb!.inc(5);
    tc!.inc(5);
    assert.ok(syncWait(merged, 0) > 0);
  });

  test("sync_stress_merge at small size: random points on 8 timelines, 256 merges", () => {
    const env = newEnv();
    const rng = new Prng(1234);
    const timelines = Array.from({ length: 8 }, (_, i) => new SwSyncTimeline(env, `t${i}`));
    const latest = new Map<number, number>();
    let fence = fenceCreate(timelines[0]!, 1);
    latest.set(0, 1);
    for (let i = 0; i < 256; i++) {
      const t = rng.below(timelines.length);
      const point = 1 + rng.below(1000);
      latest.set(t, Math.max(latest.get(t) ?? 0, point));
      const tmp = fenceCreate(timelines[t]!, point);
      const merged = SyncFile.merge(env, "merge", tmp, fence);
      tmp.release();
      fence.release();
      fence = merged;
    }
    assert.equal(fence.info({ numFences: 0 }).numFences, latest.size);
    for (const [t, point] of latest) {
      assert.equal(syncWait(fence, 0), 0);
      timelines[t]!.inc(point);
    }
    assert.ok(syncWait(fence, 0) > 0);
  });

  test("sync_stress_consumer, serialised: producer increments on the clock, consumer waits", () => {
    const env = newEnv();
    const tl = new SwSyncTimeline(env, "producer");
    const iterations = 64;
    const consumed: number[] = [];
    for (let i = 1; i <= iterations; i++) {
      env.clock.after(100 * i, `inc ${i}`, () => tl.inc(1));
    }
    for (let i = 1; i <= iterations; i++) {
      const f = fenceCreate(tl, i);
      assert.ok(f.fence.waitTimeout(true, 1_000_000) > 0);
      assert.equal(env.clock.now, 100 * i);
      consumed.push(tl.value);
      f.release();
    }
    assert.deepEqual(
      consumed,
      Array.from({ length: iterations }, (_, i) => i + 1),
    );
  });

  test("sync_stress_parallelism, serialised: two waiters alternate on one timeline", () => {
    const env = newEnv();
    const tl = new SwSyncTimeline(env, "shared");
    let counter = 0;
    const iterations = 32;
    for (let i = 0; i < iterations; i++) {
      const mine = fenceCreate(tl, 2 * i + 1);
      const theirs = fenceCreate(tl, 2 * i + 2);
      env.clock.after(10, "a", () => {
        counter++;
        tl.inc(1);
      });
      assert.ok(mine.fence.waitTimeout(false, 1000) > 0);
      env.clock.after(10, "b", () => {
        counter++;
        tl.inc(1);
      });
      assert.ok(theirs.fence.waitTimeout(false, 1000) > 0);
      mine.release();
      theirs.release();
    }
    assert.equal(counter, 2 * iterations);
    assert.equal(tl.value, 2 * iterations);
  });
});

describe("sw_sync + merge properties (fast-check)", () => {
  type Op =
    | { kind: "create"; tl: number; value: number }
    | { kind: "inc"; tl: number; by: number }
    | { kind: "merge"; a: number; b: number };

  const opArb: fc.Arbitrary<Op> = fc.oneof(
    fc.record({
      kind: fc.constant("create" as const),
      tl: fc.nat({ max: 3 }),
      value: fc.nat({ max: 40 }),
    }),
    fc.record({
      kind: fc.constant("inc" as const),
      tl: fc.nat({ max: 3 }),
      by: fc.nat({ max: 8 }),
    }),
    fc.record({ kind: fc.constant("merge" as const), a: fc.nat(), b: fc.nat() }),
  );

  test("a merged fence is signalled iff all its components are; no context twice", () => {
    fc.assert(
      fc.property(fc.array(opArb, { maxLength: 60 }), (ops) => {
        const env = newEnv();
        const tls = [0, 1, 2, 3].map((i) => new SwSyncTimeline(env, `p${i}`));
        /** Each file with the sync_pts it stands for. */
        const files: { file: SyncFile; parts: DmaFence[] }[] = [];
        const check = (): void => {
          for (const { file, parts } of files) {
            const all = parts.every((p) => p.isSignaled());
            assert.equal(file.fence.isSignaled(), all);
            const leaves = [...dmaFenceUnwrap(file.fence)];
            const ctxs = leaves.map((l) => l.context);
            assert.equal(new Set(ctxs).size, ctxs.length, "one fence per context");
          }
        };
        for (const op of ops) {
          if (op.kind === "create") {
            const pt = tls[op.tl]!.createFence(op.value);
            files.push({ file: SyncFile.create(pt), parts: [pt] });
          } else if (op.kind === "inc") {
            tls[op.tl]!.inc(op.by);
          } else if (files.length > 0) {
            const a = files[op.a % files.length]!;
            const b = files[op.b % files.length]!;
            files.push({
              file: SyncFile.merge(env, "m", a.file, b.file),
              parts: [...a.parts, ...b.parts],
            });
          }
          check();
        }
        for (const tl of tls) tl.inc(64);
        check();
        assert.ok(files.every(({ file }) => file.fence.isSignaled()));
      }),
      { numRuns: 200, seed: 42 },
    );
  });
});
