// dma_fence_array (drivers/dma-buf/dma-fence-array.c) and the unwrap/merge helpers
// (ports of drivers/dma-buf/st-dma-fence-unwrap.c).
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import {
  DmaFence,
  DmaFenceCb,
  type DmaFenceOps,
  type FenceEnv,
  fenceEnv,
} from "../../src/dma-buf/dma-fence.js";
import {
  DmaFenceArray,
  dmaFenceArrayFirst,
  dmaFenceArrayNext,
  dmaFenceMatchContext,
  toDmaFenceArray,
} from "../../src/dma-buf/dma-fence-array.js";
import { DmaFenceChain } from "../../src/dma-buf/dma-fence-chain.js";
import { dmaFenceUnwrap, dmaFenceUnwrapMerge } from "../../src/dma-buf/dma-fence-unwrap.js";
import { ERRNO } from "../../src/errno.js";
import { VirtualClock } from "../../src/machine/clock.js";

const MOCK_OPS: DmaFenceOps = { getDriverName: () => "mock", getTimelineName: () => "mock" };

function newEnv(): FenceEnv {
  return fenceEnv(new VirtualClock());
}

function mockFence(env: FenceEnv, context = env.contexts.alloc(1), seqno = 1): DmaFence {
  return new DmaFence(MOCK_OPS, env.clock, context, seqno);
}

function mockArray(env: FenceEnv, fences: DmaFence[], signalOnAny = false): DmaFenceArray {
  return DmaFenceArray.create(env.clock, fences, env.contexts.alloc(1), 1, signalOnAny);
}

function mockChain(env: FenceEnv, prev: DmaFence | null, fence: DmaFence): DmaFenceChain {
  return new DmaFenceChain(env, prev, fence, 1);
}

describe("dma_fence_array", () => {
  test("signals when all fences have", () => {
    const env = newEnv();
    const fs = [mockFence(env), mockFence(env), mockFence(env)];
    const a = mockArray(env, fs);
    let fired = 0;
    a.addCallback(new DmaFenceCb(() => fired++));
    assert.equal(a.numPending, 3);
    fs[2]!.signal();
    fs[0]!.signal();
    assert.equal(a.isSignaled(), false);
    assert.equal(fired, 0);
    fs[1]!.signal();
    assert.equal(fired, 1);
    assert.equal(a.getStatus(), 1);
    assert.equal(a.driverName, "dma_fence_array");
    assert.equal(a.timelineName, "unbound");
  });

  test("signal_on_any signals on the first", () => {
    const env = newEnv();
    const fs = [mockFence(env), mockFence(env)];
    const a = mockArray(env, fs, true);
    a.enableSwSignaling();
    fs[1]!.signal();
    assert.equal(a.signaledFlag, true);
    fs[0]!.signal();
    assert.equal(a.getStatus(), 1);
  });

  test("children already signalled count when signalling is enabled", () => {
    const env = newEnv();
    const fs = [mockFence(env), mockFence(env)];
    fs[0]!.signal();
    fs[1]!.signal();
    const a = mockArray(env, fs);
    assert.equal(a.addCallback(new DmaFenceCb(() => {})), -ERRNO.ENOENT);
    assert.equal(a.signaledFlag, true);
  });

  test("polled without signalling enabled", () => {
    const env = newEnv();
    const fs = [mockFence(env), mockFence(env)];
    const a = mockArray(env, fs);
    fs[0]!.signal();
    assert.equal(a.isSignaled(), false);
    fs[1]!.setError(-ERRNO.EIO);
    fs[1]!.signal();
    assert.equal(a.isSignaled(), true);
    assert.equal(a.getStatus(), -ERRNO.EIO);
  });

  test("the first child error propagates", () => {
    const env = newEnv();
    const fs = [mockFence(env), mockFence(env), mockFence(env)];
    const a = mockArray(env, fs);
    a.enableSwSignaling();
    fs[1]!.setError(-ERRNO.ETIMEDOUT);
    fs[1]!.signal();
    fs[0]!.setError(-ERRNO.EIO);
    fs[0]!.signal();
    fs[2]!.signal();
    assert.equal(a.getStatus(), -ERRNO.ETIMEDOUT);
  });

  test("set_deadline is forwarded to every child", () => {
    const env = newEnv();
    const seen: number[] = [];
    const ops: DmaFenceOps = {
      ...MOCK_OPS,
      setDeadline: (f, d) => seen.push(f.context * 1000 + d),
    };
    const fs = [1, 2].map(() => new DmaFence(ops, env.clock, env.contexts.alloc(1), 1));
    mockArray(env, fs).setDeadline(5);
    assert.deepEqual(seen, [1005, 2005]);
  });

  test("no empty arrays, no containers inside", () => {
    const env = newEnv();
    assert.throws(() => mockArray(env, []), /at least one fence/);
    const inner = mockArray(env, [mockFence(env)]);
    assert.throws(() => mockArray(env, [inner]), /container/);
    assert.throws(() => mockArray(env, [mockChain(env, null, mockFence(env))]), /container/);
  });

  test("match_context, first/next, to_dma_fence_array", () => {
    const env = newEnv();
    const ctx = env.contexts.alloc(1);
    const fs = [mockFence(env, ctx, 1), mockFence(env, ctx, 2)];
    const a = mockArray(env, fs);
    assert.equal(dmaFenceMatchContext(a, ctx), true);
    assert.equal(dmaFenceMatchContext(mockArray(env, [fs[0]!, mockFence(env)]), ctx), false);
    assert.equal(dmaFenceArrayFirst(a), fs[0]);
    assert.equal(dmaFenceArrayNext(a, 1), fs[1]);
    assert.equal(dmaFenceArrayNext(a, 2), null);
    assert.equal(dmaFenceArrayFirst(fs[0]!), fs[0]);
    assert.equal(toDmaFenceArray(fs[0]), null);
    assert.equal(a.isContainer, true);
  });
});

describe("dma_fence_unwrap (st-dma-fence-unwrap.c)", () => {
  test("sanitycheck", () => {
    const env = newEnv();
    const f = mockFence(env);
    const chain = mockChain(env, null, mockArray(env, [f]));
    f.signal();
    assert.equal(chain.isSignaled(), true);
  });

  test("unwrap_array", () => {
    const env = newEnv();
    const f1 = mockFence(env);
    const f2 = mockFence(env);
    assert.deepEqual([...dmaFenceUnwrap(mockArray(env, [f1, f2]))], [f1, f2]);
  });

  test("unwrap_chain", () => {
    const env = newEnv();
    const f1 = mockFence(env);
    const f2 = mockFence(env);
    const chain = mockChain(env, mockChain(env, null, f1), f2);
    assert.deepEqual([...dmaFenceUnwrap(chain)], [f2, f1]);
  });

  test("unwrap_chain_array", () => {
    const env = newEnv();
    const f1 = mockFence(env);
    const f2 = mockFence(env);
    const chain = mockChain(env, null, mockArray(env, [f1, f2]));
    assert.deepEqual([...dmaFenceUnwrap(chain)], [f1, f2]);
  });

  test("unwrap of a plain fence is the fence", () => {
    const env = newEnv();
    const f = mockFence(env);
    assert.deepEqual([...dmaFenceUnwrap(f)], [f]);
  });

  test("unwrap_merge: two contexts give an array of both", () => {
    const env = newEnv();
    const f1 = mockFence(env);
    const f2 = mockFence(env);
    const m = dmaFenceUnwrapMerge(env, f1, f2);
    assert.ok(toDmaFenceArray(m));
    assert.deepEqual([...dmaFenceUnwrap(m)], [f1, f2]);
    assert.equal(m.seqno, 1);
    f1.signal();
    assert.equal(m.isSignaled(), false);
    f2.signal();
    assert.equal(m.isSignaled(), true);
  });

  test("unwrap_merge_duplicate: a fence merged with itself is itself", () => {
    const env = newEnv();
    const f1 = mockFence(env);
    assert.equal(dmaFenceUnwrapMerge(env, f1, f1), f1);
  });

  test("unwrap_merge_seqno: only the later fence of a context stays", () => {
    const env = newEnv();
    const c1 = env.contexts.alloc(1);
    const c2 = env.contexts.alloc(1);
    const f1 = mockFence(env, c1, 1);
    const f2 = mockFence(env, c1, 2);
    const f3 = mockFence(env, c2, 2);
    const f4 = mockFence(env, c2, 1);
    const m = dmaFenceUnwrapMerge(env, f1, f2, f3, f4);
    assert.deepEqual([...dmaFenceUnwrap(m)], [f2, f3]);
  });

  test("unwrap_merge_order: the result is sorted by context", () => {
    const env = newEnv();
    const f1 = mockFence(env);
    const f2 = mockFence(env);
    const a1 = mockArray(env, [f1, f2]);
    const a2 = mockArray(env, [f2, f1]);
    const m = dmaFenceUnwrapMerge(env, a2, a1);
    assert.deepEqual([...dmaFenceUnwrap(m)], [f1, f2]);
  });

  test("unwrap_merge_complex: arrays and chains flatten and dedupe", () => {
    const env = newEnv();
    const f1 = mockFence(env);
    const f2 = mockFence(env);
    const f3 = dmaFenceUnwrapMerge(env, f1, f2);
    const f4 = dmaFenceUnwrapMerge(env, f2, f1);
    const chain = mockChain(env, mockChain(env, null, f3), f4);
    const m = dmaFenceUnwrapMerge(env, chain, f1);
    assert.deepEqual([...dmaFenceUnwrap(m)], [f1, f2]);
  });

  test("signalled fences are dropped; all signalled gives a stub with the latest timestamp", () => {
    const env = newEnv();
    const f1 = mockFence(env);
    const f2 = mockFence(env);
    const f3 = mockFence(env);
    env.clock.advance(10);
    f1.signal();
    env.clock.advance(10);
    f2.signal();
    assert.equal(dmaFenceUnwrapMerge(env, f1, f2, f3), f3);
    env.clock.advance(10);
    const stub = dmaFenceUnwrapMerge(env, f1, f2);
    assert.equal(stub.isSignaled(), true);
    assert.equal(stub.timestamp, 20, "the last signalled fence's timestamp, not now");
    assert.equal(stub.driverName, "stub");
  });

  test("containers own their children's references and drop them on release", () => {
    const env = newEnv();
    let released = 0;
    const ops: DmaFenceOps = { ...MOCK_OPS, release: () => released++ };
    const f1 = new DmaFence(ops, env.clock, env.contexts.alloc(1), 1);
    const f2 = new DmaFence(ops, env.clock, env.contexts.alloc(1), 1);
    const merged = dmaFenceUnwrapMerge(env, f1, f2);
    assert.equal(f1.refcount, 2, "the merge took a reference for the array");
    f1.put();
    f2.put();
    assert.equal(released, 0);
    merged.put();
    assert.equal(released, 2);
    const g = new DmaFence(ops, env.clock, env.contexts.alloc(1), 1);
    const chain = mockChain(env, mockChain(env, null, mockFence(env)), g);
    chain.put();
    assert.equal(released, 3);
  });
});
