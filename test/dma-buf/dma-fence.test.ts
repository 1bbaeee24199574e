// Ports of drivers/dma-buf/st-dma-fence.c, plus the model's own rules (virtual-clock
// waits, deadlines, wrap-around seqno compare, release).
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import {
  DMA_FENCE_FLAG_ENABLE_SIGNAL_BIT,
  DMA_FENCE_FLAG_SIGNALED_BIT,
  DMA_FENCE_FLAG_TIMESTAMP_BIT,
  DmaFence,
  DmaFenceCb,
  type DmaFenceOps,
  dmaFenceAllocatePrivateStub,
  dmaFenceGetStub,
  dmaFenceWaitAnyTimeout,
  EDEADLK,
  FenceContextAllocator,
  type FenceEnv,
  fenceEnv,
  MAX_SCHEDULE_TIMEOUT,
  seqnoIsLater,
} from "../../src/dma-buf/dma-fence.js";
import { ERRNO } from "../../src/errno.js";
import { VirtualClock } from "../../src/machine/clock.js";

const MOCK_OPS: DmaFenceOps = { getDriverName: () => "mock", getTimelineName: () => "mock" };

function setup(): { env: FenceEnv; clock: VirtualClock } {
  const clock = new VirtualClock();
  return { env: fenceEnv(clock), clock };
}

function mockFence(env: FenceEnv, seqno = 0, ops: DmaFenceOps = MOCK_OPS): DmaFence {
  return new DmaFence(ops, env.clock, env.contexts.alloc(1), seqno);
}

describe("dma_fence (st-dma-fence.c)", () => {
  test("sanitycheck: create, signal, put", () => {
    const { env } = setup();
    const f = mockFence(env);
    assert.equal(f.signal(), 0);
    f.put();
    assert.equal(f.refcount, 0);
  });

  test("test_signaling: signal once; a second signal is -EINVAL", () => {
    const { env } = setup();
    const f = mockFence(env);
    f.enableSwSignaling();
    assert.equal(f.isSignaled(), false);
    assert.equal(f.signal(), 0);
    assert.equal(f.isSignaled(), true);
    assert.equal(f.signal(), -ERRNO.EINVAL);
  });

  test("test_add_callback: callback runs on signal", () => {
    const { env } = setup();
    const f = mockFence(env);
    let seen = 0;
    assert.equal(f.addCallback(new DmaFenceCb(() => seen++)), 0);
    assert.equal(seen, 0);
    f.signal();
    assert.equal(seen, 1);
    f.signal();
    assert.equal(seen, 1, "callbacks run once");
  });

  test("test_late_add_callback: -ENOENT after signal, callback not called", () => {
    const { env } = setup();
    const f = mockFence(env);
    f.enableSwSignaling();
    f.signal();
    let seen = false;
    assert.equal(f.addCallback(new DmaFenceCb(() => (seen = true))), -ERRNO.ENOENT);
    assert.equal(seen, false);
  });

  test("test_rm_callback: removed callback is not called", () => {
    const { env } = setup();
    const f = mockFence(env);
    let seen = false;
    const cb = new DmaFenceCb(() => (seen = true));
    assert.equal(f.addCallback(cb), 0);
    assert.equal(f.removeCallback(cb), true);
    f.signal();
    assert.equal(seen, false);
  });

  test("test_late_rm_callback: removing after signal returns false", () => {
    const { env } = setup();
    const f = mockFence(env);
    let seen = false;
    const cb = new DmaFenceCb(() => (seen = true));
    f.addCallback(cb);
    f.signal();
    assert.equal(seen, true);
    assert.equal(f.removeCallback(cb), false);
  });

  test("test_status: 0 pending, 1 signalled", () => {
    const { env } = setup();
    const f = mockFence(env);
    f.enableSwSignaling();
    assert.equal(f.getStatus(), 0);
    f.signal();
    assert.equal(f.getStatus(), 1);
  });

  test("test_error: the error shows in the status only after the signal", () => {
    const { env } = setup();
    const f = mockFence(env);
    f.enableSwSignaling();
    f.setError(-ERRNO.EIO);
    assert.equal(f.error, -ERRNO.EIO);
    assert.equal(f.getStatus(), 0);
    f.signal();
    assert.equal(f.getStatus(), -ERRNO.EIO);
  });

  test("test_wait: timeout 0 reports 0 before, 1 after the signal", () => {
    const { env } = setup();
    const f = mockFence(env);
    f.enableSwSignaling();
    assert.equal(f.waitTimeout(false, 0), 0);
    f.signal();
    assert.equal(f.waitTimeout(false, 0), 1);
  });

  test("test_wait_timeout: times out, then succeeds when a timer signals it", () => {
    const { env, clock } = setup();
    const f = mockFence(env);
    assert.equal(f.waitTimeout(false, 1000), 0);
    assert.equal(clock.now, 1000, "a timed-out wait waited its whole timeout");
    clock.after(500, "signal", () => f.signal());
    const ret = f.waitTimeout(false, 2000);
    assert.equal(ret, 1500);
    assert.equal(clock.now, 1500);
    assert.equal(f.timestamp, 1500);
  });

  test("test_stub: the stub is always signalled", () => {
    const { env } = setup();
    for (let i = 0; i < 64; i++) {
      const f = dmaFenceGetStub(env);
      assert.equal(f.isSignaled(), true);
      assert.equal(f.context, 0);
      assert.equal(f.driverName, "stub");
    }
    assert.equal(dmaFenceGetStub(env), dmaFenceGetStub(env), "one stub per kernel");
  });
});

describe("dma_fence: model rules", () => {
  test("callbacks run in the order added, after the timestamp is set", () => {
    const { env, clock } = setup();
    clock.advance(42);
    const f = mockFence(env);
    const order: number[] = [];
    for (let i = 0; i < 5; i++) {
      f.addCallback(
        new DmaFenceCb((fence) => {
          assert.equal(fence.timestamp, 42);
          assert.equal(fence.testBit(DMA_FENCE_FLAG_TIMESTAMP_BIT), true);
          order.push(i);
        }),
      );
    }
    f.signal();
    assert.deepEqual(order, [0, 1, 2, 3, 4]);
  });

  test("a callback removed by an earlier callback during the signal does not run", () => {
    const { env } = setup();
    const f = mockFence(env);
    let ran = false;
    const second = new DmaFenceCb(() => (ran = true));
    f.addCallback(new DmaFenceCb((fence) => assert.equal(fence.removeCallback(second), true)));
    f.addCallback(second);
    f.signal();
    assert.equal(ran, false);
  });

  test("flags: ENABLE_SIGNAL on first add_callback, SIGNALED and TIMESTAMP on signal", () => {
    const { env } = setup();
    const f = mockFence(env);
    assert.equal(f.flags, 0);
    f.addCallback(new DmaFenceCb(() => {}));
    assert.equal(f.testBit(DMA_FENCE_FLAG_ENABLE_SIGNAL_BIT), true);
    f.signal();
    assert.equal(f.testBit(DMA_FENCE_FLAG_SIGNALED_BIT), true);
    assert.equal(f.testBit(DMA_FENCE_FLAG_TIMESTAMP_BIT), true);
  });

  test("enable_signaling runs once; returning false signals at once", () => {
    const { env } = setup();
    let calls = 0;
    const ops: DmaFenceOps = {
      ...MOCK_OPS,
      enableSignaling: () => {
        calls++;
        return false;
      },
    };
    const f = mockFence(env, 0, ops);
    assert.equal(f.addCallback(new DmaFenceCb(() => {})), -ERRNO.ENOENT);
    assert.equal(f.signaledFlag, true);
    f.enableSwSignaling();
    assert.equal(calls, 1);
  });

  test("ops.signaled is consulted and signals the fence", () => {
    const { env, clock } = setup();
    let hwDone = false;
    const f = mockFence(env, 0, { ...MOCK_OPS, signaled: () => hwDone });
    assert.equal(f.isSignaled(), false);
    clock.advance(10);
    hwDone = true;
    assert.equal(f.signaledFlag, false);
    assert.equal(f.isSignaled(), true);
    assert.equal(f.signaledFlag, true);
    assert.equal(f.timestamp, 10);
  });

  test("set_error: only negative errnos, only before the signal", () => {
    const { env } = setup();
    const f = mockFence(env);
    assert.throws(() => f.setError(0), /dma_fence_set_error/);
    assert.throws(() => f.setError(5), /dma_fence_set_error/);
    assert.throws(() => f.setError(-5000), /dma_fence_set_error/);
    f.signal();
    assert.throws(() => f.setError(-ERRNO.EIO), /already signalled/);
  });

  test("wait: negative timeout is -EINVAL", () => {
    const { env } = setup();
    assert.equal(mockFence(env).waitTimeout(true, -1), -ERRNO.EINVAL);
  });

  test("wait forever returns MAX_SCHEDULE_TIMEOUT, or throws when nothing can signal", () => {
    const { env, clock } = setup();
    const f = mockFence(env);
    clock.after(7, "irq", () => f.signal());
    assert.equal(f.waitTimeout(true, MAX_SCHEDULE_TIMEOUT), MAX_SCHEDULE_TIMEOUT);
    assert.equal(f.wait(true), 0);
    const g = mockFence(env);
    assert.throws(() => g.wait(false), /waiting forever/);
  });

  test("a fence signalled exactly at the deadline counts as success", () => {
    const { env, clock } = setup();
    const f = mockFence(env);
    clock.after(100, "irq", () => f.signal());
    assert.equal(f.waitTimeout(false, 100), 1);
  });

  test("seqno compare: 32-bit wraps, 64-bit does not", () => {
    assert.equal(seqnoIsLater(2, 1), true);
    assert.equal(seqnoIsLater(1, 2), false);
    assert.equal(seqnoIsLater(1, 1), false);
    assert.equal(seqnoIsLater(0, 0xffff_ffff), true, "0 follows 0xffffffff");
    assert.equal(seqnoIsLater(0x8000_0000, 0), false, "half the space away is earlier");
    assert.equal(seqnoIsLater(0x7fff_ffff, 0), true);
    assert.equal(seqnoIsLater(0x1_0000_0001, 0x1_0000_0000), true, "lower 32 bits");
    assert.equal(seqnoIsLater(0, 0xffff_ffff, true), false);
    assert.equal(seqnoIsLater(0x1_0000_0000, 0xffff_ffff, true), true);
  });

  test("is_later / later need one context", () => {
    const { env } = setup();
    const ctx = env.contexts.alloc(1);
    const a = new DmaFence(MOCK_OPS, env.clock, ctx, 1);
    const b = new DmaFence(MOCK_OPS, env.clock, ctx, 2);
    assert.equal(b.isLater(a), true);
    assert.equal(a.isLaterOrSame(a), true);
    assert.equal(DmaFence.later(a, b), b);
    b.signal();
    assert.equal(DmaFence.later(a, b), null, "the later one signalled");
    assert.throws(() => a.isLater(mockFence(env)), /different contexts/);
  });

  test("context allocator: first context 1, consecutive ranges, per kernel", () => {
    const a = new FenceContextAllocator();
    assert.equal(a.alloc(1), 1);
    assert.equal(a.alloc(3), 2);
    assert.equal(a.alloc(1), 5);
    assert.equal(new FenceContextAllocator().alloc(), 1);
    assert.throws(() => a.alloc(0), /dma_fence_context_alloc/);
  });

  test("set_deadline reaches ops.setDeadline only while unsignalled", () => {
    const { env } = setup();
    const seen: number[] = [];
    const f = mockFence(env, 0, { ...MOCK_OPS, setDeadline: (_f, d) => seen.push(d) });
    f.setDeadline(1000);
    f.signal();
    f.setDeadline(2000);
    assert.deepEqual(seen, [1000]);
  });

  test("wait_any: index of the first to signal, remaining time", () => {
    const { env, clock } = setup();
    const fs = [mockFence(env), mockFence(env), mockFence(env)];
    assert.deepEqual(dmaFenceWaitAnyTimeout(fs, true, 0), { ret: 0, idx: undefined });
    clock.after(300, "b", () => fs[1]!.signal());
    clock.after(200, "c", () => fs[2]!.signal());
    const r = dmaFenceWaitAnyTimeout(fs, true, 1000);
    assert.deepEqual(r, { ret: 800, idx: 2 });
    assert.deepEqual(dmaFenceWaitAnyTimeout(fs, true, 0), { ret: 1, idx: 2 });
    assert.deepEqual(dmaFenceWaitAnyTimeout(fs, true, 50), { ret: 50, idx: 2 });
    assert.equal(dmaFenceWaitAnyTimeout([], true, 10).ret, -ERRNO.EINVAL);
    assert.equal(fs[0]!.hasCallback(new DmaFenceCb(() => {})), false);
  });

  test("wait_any: timeout", () => {
    const { env, clock } = setup();
    const fs = [mockFence(env), mockFence(env)];
    assert.equal(dmaFenceWaitAnyTimeout(fs, false, 100).ret, 0);
    assert.equal(clock.now, 100);
  });

  test("private stub: fresh context, given timestamp", () => {
    const { env } = setup();
    const s = dmaFenceAllocatePrivateStub(env, 1234);
    assert.equal(s.isSignaled(), true);
    assert.equal(s.timestamp, 1234);
    assert.notEqual(s.context, 0);
    assert.equal(s.testBit(DMA_FENCE_FLAG_ENABLE_SIGNAL_BIT), true);
  });

  test("describe", () => {
    const { env } = setup();
    const f = mockFence(env, 7);
    assert.equal(f.describe(), "mock mock seq 7 unsignalled");
    f.signal();
    assert.equal(f.describe(), "mock mock seq 7 signalled");
  });

  test("release runs once; pending callbacks get -EDEADLK", () => {
    const { env } = setup();
    let released = 0;
    const f = mockFence(env, 0, { ...MOCK_OPS, release: () => released++ });
    let status = 0;
    f.addCallback(new DmaFenceCb((fence) => (status = fence.getStatus())));
    f.get();
    f.put();
    assert.equal(released, 0);
    f.put();
    assert.equal(released, 1);
    assert.equal(status, -EDEADLK);
    assert.throws(() => f.put(), /already released/);
  });
});
