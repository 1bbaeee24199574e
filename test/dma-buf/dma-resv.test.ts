// Ports of drivers/dma-buf/st-dma-resv.c (every usage), plus the add/replace rule, slot
// reservation, the lock checks and the readers.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import {
  DmaFence,
  type DmaFenceOps,
  type FenceEnv,
  fenceEnv,
} from "../../src/dma-buf/dma-fence.js";
import { toDmaFenceArray } from "../../src/dma-buf/dma-fence-array.js";
import { DmaFenceChain } from "../../src/dma-buf/dma-fence-chain.js";
import {
  DMA_RESV_USAGE_BOOKKEEP,
  DMA_RESV_USAGE_KERNEL,
  DMA_RESV_USAGE_READ,
  DMA_RESV_USAGE_WRITE,
  DmaResv,
  type DmaResvUsage,
  dmaResvUsageRw,
  EALREADY,
  EDEADLK,
  WwAcquireCtx,
  WwClass,
} from "../../src/dma-buf/dma-resv.js";
import { SwSyncTimeline } from "../../src/dma-buf/sw-sync.js";
import { ERRNO } from "../../src/errno.js";
import { VirtualClock } from "../../src/machine/clock.js";

const OPS: DmaFenceOps = { getDriverName: () => "selftest", getTimelineName: () => "selftest" };
const USAGES: DmaResvUsage[] = [
  DMA_RESV_USAGE_KERNEL,
  DMA_RESV_USAGE_WRITE,
  DMA_RESV_USAGE_READ,
  DMA_RESV_USAGE_BOOKKEEP,
];

function newEnv(): FenceEnv {
  return fenceEnv(new VirtualClock());
}

function fence(env: FenceEnv, context = env.contexts.alloc(1), seqno = 1): DmaFence {
  return new DmaFence(OPS, env.clock, context, seqno);
}

/** Lock, reserve one slot, add `f` with `usage`. */
function withFence(env: FenceEnv, f: DmaFence, usage: DmaResvUsage, unlock = true): DmaResv {
  const resv = new DmaResv(env);
  assert.equal(resv.lock(), 0);
  assert.equal(resv.reserveFences(1), 0);
  resv.addFence(f, usage);
  if (unlock) resv.unlock();
  return resv;
}

describe("dma_resv (st-dma-resv.c)", () => {
  test("usage numbers are Linux's", () => {
    assert.deepEqual(USAGES, [0, 1, 2, 3]);
    assert.equal(dmaResvUsageRw(true), DMA_RESV_USAGE_READ);
    assert.equal(dmaResvUsageRw(false), DMA_RESV_USAGE_WRITE);
  });

  test("sanitycheck: lock and unlock", () => {
    const env = newEnv();
    const f = fence(env);
    f.signal();
    const resv = new DmaResv(env);
    assert.equal(resv.lock(), 0);
    assert.equal(resv.isLocked, true);
    resv.unlock();
    assert.equal(resv.isLocked, false);
  });

  for (const usage of USAGES) {
    test(`test_signaling(usage ${usage})`, () => {
      const env = newEnv();
      const f = fence(env);
      const resv = withFence(env, f, usage, false);
      assert.equal(resv.testSignaled(usage), false, "unexpectedly signalled");
      f.signal();
      assert.equal(resv.testSignaled(usage), true, "not reporting signalled");
      resv.unlock();
    });

    test(`test_for_each(usage ${usage})`, () => {
      const env = newEnv();
      const f = fence(env);
      const resv = withFence(env, f, usage, false);
      const seen = [...resv.fences(usage)];
      assert.equal(seen.length, 1);
      assert.equal(seen[0]!.fence, f);
      assert.equal(seen[0]!.usage, usage);
      f.signal();
      assert.equal([...resv.fences(usage)].length, 1, "locked iteration keeps signalled fences");
      resv.unlock();
    });

    test(`test_for_each_unlocked(usage ${usage})`, () => {
      const env = newEnv();
      const f = fence(env);
      const resv = withFence(env, f, usage);
      const seen = [...resv.fencesUnlocked(usage)];
      assert.deepEqual(seen, [{ fence: f, usage }]);
      f.signal();
      assert.deepEqual([...resv.fencesUnlocked(usage)], [], "unlocked iteration skips them");
    });

    test(`test_get_fences(usage ${usage})`, () => {
      const env = newEnv();
      const f = fence(env);
      const resv = withFence(env, f, usage);
      assert.deepEqual(resv.getFences(usage), [f]);
    });
  }

  test("a query for usage U sees the fences of usage <= U", () => {
    const env = newEnv();
    const resv = new DmaResv(env);
    resv.lock();
    resv.reserveFences(4);
    const fs = USAGES.map((u) => {
      const f = fence(env);
      resv.addFence(f, u);
      return f;
    });
    resv.unlock();
    for (const u of USAGES) assert.deepEqual(resv.getFences(u), fs.slice(0, u + 1));
    fs[0]!.signal();
    assert.equal(resv.testSignaled(DMA_RESV_USAGE_KERNEL), true);
    assert.equal(resv.testSignaled(DMA_RESV_USAGE_WRITE), false);
  });
});

describe("dma_resv: add, replace, reserve", () => {
  test("same context: a later fence replaces the earlier one", () => {
    const env = newEnv();
    const ctx = env.contexts.alloc(1);
    const resv = withFence(env, fence(env, ctx, 1), DMA_RESV_USAGE_WRITE, false);
    const f2 = fence(env, ctx, 2);
    resv.addFence(f2, DMA_RESV_USAGE_WRITE);
    assert.equal(resv.numFences, 1);
    assert.deepEqual(resv.getFences(DMA_RESV_USAGE_BOOKKEEP), [f2]);
    resv.unlock();
  });

  test("same context, weaker usage does not replace a stricter one", () => {
    const env = newEnv();
    const ctx = env.contexts.alloc(1);
    const resv = withFence(env, fence(env, ctx, 1), DMA_RESV_USAGE_WRITE, false);
    resv.reserveFences(1);
    resv.addFence(fence(env, ctx, 2), DMA_RESV_USAGE_READ);
    assert.equal(resv.numFences, 2);
    resv.unlock();
  });

  test("same context, earlier seqno does not replace", () => {
    const env = newEnv();
    const ctx = env.contexts.alloc(1);
    const resv = withFence(env, fence(env, ctx, 5), DMA_RESV_USAGE_READ, false);
    resv.reserveFences(1);
    resv.addFence(fence(env, ctx, 4), DMA_RESV_USAGE_READ);
    assert.equal(resv.numFences, 2);
    resv.unlock();
  });

  test("a signalled fence's slot is reused without a reservation", () => {
    const env = newEnv();
    const old = fence(env);
    const resv = withFence(env, old, DMA_RESV_USAGE_READ, false);
    old.signal();
    resv.unlock();
    resv.lock();
    const f = fence(env);
    resv.addFence(f, DMA_RESV_USAGE_BOOKKEEP);
    assert.equal(resv.numFences, 1);
    resv.unlock();
  });

  test("adding without reserving is a BUG naming dma_resv_reserve_fences", () => {
    const env = newEnv();
    const resv = new DmaResv(env);
    resv.lock();
    assert.throws(() => resv.addFence(fence(env), DMA_RESV_USAGE_READ), /dma_resv_reserve_fences/);
    resv.reserveFences(1);
    resv.addFence(fence(env), DMA_RESV_USAGE_READ);
    resv.unlock();
    resv.lock();
    assert.throws(
      () => resv.addFence(fence(env), DMA_RESV_USAGE_READ),
      /dma_resv_reserve_fences/,
      "the reservation does not outlive the unlock",
    );
    resv.unlock();
  });

  test("reserve: at least 4 slots, then doubling; 0 is -EINVAL", () => {
    const env = newEnv();
    const resv = new DmaResv(env);
    resv.lock();
    assert.equal(resv.reserveFences(0), -ERRNO.EINVAL);
    resv.reserveFences(1);
    assert.equal(resv.maxFences, 4);
    for (let i = 0; i < 4; i++) resv.addFence(fence(env), DMA_RESV_USAGE_READ);
    resv.reserveFences(1);
    assert.equal(resv.maxFences, 8);
    resv.reserveFences(9);
    assert.equal(resv.maxFences, 16);
    resv.unlock();
  });

  test("containers are refused", () => {
    const env = newEnv();
    const resv = new DmaResv(env);
    resv.lock();
    resv.reserveFences(1);
    const chain = new DmaFenceChain(env, null, fence(env), 1);
    assert.throws(() => resv.addFence(chain, DMA_RESV_USAGE_READ), /container/);
    resv.unlock();
  });

  test("replace_fences swaps every fence of a context", () => {
    const env = newEnv();
    const ctx = env.contexts.alloc(1);
    const resv = withFence(env, fence(env, ctx, 1), DMA_RESV_USAGE_BOOKKEEP, false);
    const repl = fence(env);
    resv.replaceFences(ctx, repl, DMA_RESV_USAGE_KERNEL);
    assert.deepEqual([...resv.fences(DMA_RESV_USAGE_KERNEL)], [{ fence: repl, usage: 0 }]);
    resv.unlock();
  });

  test("copy_fences copies the unsignalled fences with their usage", () => {
    const env = newEnv();
    const a = fence(env);
    const b = fence(env);
    const src = new DmaResv(env);
    src.lock();
    src.reserveFences(2);
    src.addFence(a, DMA_RESV_USAGE_WRITE);
    src.addFence(b, DMA_RESV_USAGE_BOOKKEEP);
    src.unlock();
    b.signal();
    const dst = new DmaResv(env);
    assert.throws(() => dst.copyFences(src), /dma_resv_lock/);
    dst.lock();
    dst.copyFences(src);
    assert.deepEqual([...dst.fences(DMA_RESV_USAGE_BOOKKEEP)], [{ fence: a, usage: 1 }]);
    dst.unlock();
  });
});

describe("dma_resv: lock checks and ww_mutex", () => {
  test("writers need the lock; the error names dma_resv_lock", () => {
    const env = newEnv();
    const resv = new DmaResv(env);
    assert.throws(() => resv.reserveFences(1), /dma_resv_reserve_fences: dma_resv_lock\(\)/);
    assert.throws(() => resv.addFence(fence(env), DMA_RESV_USAGE_READ), /dma_resv_lock/);
    assert.throws(() => [...resv.fences(DMA_RESV_USAGE_READ)], /dma_resv_lock/);
    assert.throws(() => resv.unlock(), /dma_resv_unlock/);
    assert.throws(() => resv.describe(), /dma_resv_lock/);
  });

  test("ww_mutex: -EALREADY, -EDEADLK for the younger, trylock", () => {
    const env = newEnv();
    const ww = new WwClass();
    const a = new DmaResv(env, ww);
    const b = new DmaResv(env, ww);
    const older = new WwAcquireCtx(ww);
    const younger = new WwAcquireCtx(ww);
    assert.equal(a.lock(older), 0);
    assert.equal(a.lock(older), -EALREADY);
    assert.equal(b.lock(younger), 0);
    assert.equal(a.lock(younger), -EDEADLK, "younger dies");
    b.unlock();
    assert.equal(younger.acquired, 0);
    assert.throws(() => a.lock(younger), /deadlock/, "acquired 0: would sleep");
    assert.equal(a.trylock(), false);
    a.unlock();
    a.lockSlow(younger);
    assert.equal(a.lockingCtx, younger);
    a.unlock();
    older.fini();
    younger.fini();
    assert.equal(a.trylock(), true);
    a.unlock();
  });
});

describe("dma_resv: readers", () => {
  test("get_singleton: null, the fence, or an array", () => {
    const env = newEnv();
    const resv = new DmaResv(env);
    assert.equal(resv.getSingleton(DMA_RESV_USAGE_BOOKKEEP), null);
    const a = fence(env);
    const b = fence(env);
    resv.lock();
    resv.reserveFences(2);
    resv.addFence(a, DMA_RESV_USAGE_WRITE);
    assert.equal(resv.getSingleton(DMA_RESV_USAGE_READ), a);
    resv.addFence(b, DMA_RESV_USAGE_READ);
    resv.unlock();
    const s = resv.getSingleton(DMA_RESV_USAGE_READ)!;
    const arr = toDmaFenceArray(s);
    assert.ok(arr);
    assert.deepEqual(arr.fences, [a, b]);
    assert.equal(resv.getSingleton(DMA_RESV_USAGE_WRITE), a);
    a.signal();
    assert.equal(s.isSignaled(), false);
    b.signal();
    assert.equal(s.isSignaled(), true);
  });

  test("wait_timeout waits for each fence on the clock", () => {
    const env = newEnv();
    const a = fence(env);
    const b = fence(env);
    const resv = new DmaResv(env);
    resv.lock();
    resv.reserveFences(2);
    resv.addFence(a, DMA_RESV_USAGE_WRITE);
    resv.addFence(b, DMA_RESV_USAGE_BOOKKEEP);
    resv.unlock();
    env.clock.after(100, "a", () => a.signal());
    env.clock.after(300, "b", () => b.signal());
    assert.equal(resv.waitTimeout(DMA_RESV_USAGE_READ, true, 1000), 900);
    assert.equal(env.clock.now, 100, "BOOKKEEP is not waited for at READ");
    assert.equal(resv.waitTimeout(DMA_RESV_USAGE_BOOKKEEP, true, 50), 0);
    assert.equal(env.clock.now, 150);
    // Linux turns timeout 0 into a 1-jiffy wait per fence (ret = timeout ?: 1): 1 ns here.
    assert.equal(resv.waitTimeout(DMA_RESV_USAGE_BOOKKEEP, true, 0), 0);
    assert.equal(env.clock.now, 151);
    assert.equal(resv.waitTimeout(DMA_RESV_USAGE_BOOKKEEP, true, 1000), 851);
    assert.equal(resv.waitTimeout(DMA_RESV_USAGE_BOOKKEEP, true, 0), 1);
  });

  test("set_deadline hints the unsignalled fences of the usage", () => {
    const env = newEnv();
    const seen: number[] = [];
    const ops: DmaFenceOps = { ...OPS, setDeadline: (f, d) => seen.push(f.seqno * 1000 + d) };
    const resv = new DmaResv(env);
    resv.lock();
    resv.reserveFences(2);
    resv.addFence(new DmaFence(ops, env.clock, env.contexts.alloc(1), 1), DMA_RESV_USAGE_WRITE);
    resv.addFence(new DmaFence(ops, env.clock, env.contexts.alloc(1), 2), DMA_RESV_USAGE_READ);
    resv.unlock();
    resv.setDeadline(DMA_RESV_USAGE_WRITE, 7);
    assert.deepEqual(seen, [1007]);
  });

  test("describe: usage, names, seqno, state; BOOKKEEP hidden by default", () => {
    const env = newEnv();
    const a = fence(env, env.contexts.alloc(1), 3);
    const b = fence(env, env.contexts.alloc(1), 4);
    const resv = new DmaResv(env);
    resv.lock();
    resv.reserveFences(2);
    resv.addFence(a, DMA_RESV_USAGE_WRITE);
    resv.addFence(b, DMA_RESV_USAGE_BOOKKEEP);
    a.signal();
    assert.equal(resv.describeText(), "\twrite fence:selftest selftest seq 3 signalled\n");
    const all = resv.describe(DMA_RESV_USAGE_BOOKKEEP);
    assert.deepEqual(
      all.map((d) => [d.usage, d.driver, d.timeline, d.seqno, d.signaled]),
      [
        ["write", "selftest", "selftest", 3, true],
        ["bookkeep", "selftest", "selftest", 4, false],
      ],
    );
    resv.unlock();
  });

  test("the resv holds its own reference: a sw_sync point put by its importer stays live", () => {
    const env = newEnv();
    const tl = new SwSyncTimeline(env, "t");
    const pt = tl.createFence(1);
    const resv = withFence(env, pt, DMA_RESV_USAGE_WRITE);
    pt.put();
    assert.equal(tl.pendingPoints.length, 1, "not released");
    tl.inc(1);
    assert.equal(resv.testSignaled(DMA_RESV_USAGE_WRITE), true);
    resv.fini();
    assert.equal(pt.refcount, 0);
  });
});
