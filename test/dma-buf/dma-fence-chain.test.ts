// Ports of drivers/dma-buf/st-dma-fence-chain.c at small size, on the virtual clock.
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
  DmaFenceChain,
  dmaFenceChainContained,
  dmaFenceChainFindSeqno,
  dmaFenceChainForEach,
  dmaFenceChainWalk,
  toDmaFenceChain,
} from "../../src/dma-buf/dma-fence-chain.js";
import { ERRNO } from "../../src/errno.js";
import { VirtualClock } from "../../src/machine/clock.js";
import { Prng } from "../../src/machine/prng.js";

const MOCK_OPS: DmaFenceOps = { getDriverName: () => "mock", getTimelineName: () => "mock" };

interface FenceChains {
  readonly fences: DmaFence[];
  readonly chains: DmaFenceChain[];
  readonly tail: DmaFenceChain;
}

/** fence_chains_init(): `count` mock fences (context 0, seqno 0) chained up. */
function fenceChains(env: FenceEnv, count: number, seqnoFn = (i: number) => i + 1): FenceChains {
  const fences: DmaFence[] = [];
  const chains: DmaFenceChain[] = [];
  let tail: DmaFenceChain | null = null;
  for (let i = 0; i < count; i++) {
    const f = new DmaFence(MOCK_OPS, env.clock, 0, 0);
    fences.push(f);
    tail = new DmaFenceChain(env, tail, f, seqnoFn(i));
    chains.push(tail);
  }
  return { fences, chains, tail: tail! };
}

function newEnv(): FenceEnv {
  return fenceEnv(new VirtualClock());
}

describe("dma_fence_chain (st-dma-fence-chain.c)", () => {
  test("sanitycheck", () => {
    const env = newEnv();
    const f = new DmaFence(MOCK_OPS, env.clock, 0, 0);
    const chain = new DmaFenceChain(env, null, f, 1);
    f.signal();
    assert.equal(chain.isSignaled(), true);
    assert.equal(chain.driverName, "dma_fence_chain");
    assert.equal(chain.timelineName, "unbound");
  });

  test("init: later seqno shares the context, otherwise a new context", () => {
    const env = newEnv();
    const fc = fenceChains(env, 3);
    assert.equal(fc.chains[1]!.context, fc.chains[0]!.context);
    assert.equal(fc.chains[2]!.prevSeqno, 2);
    assert.equal(fc.chains[0]!.prevSeqno, 0);
    const back = new DmaFenceChain(env, fc.tail, new DmaFence(MOCK_OPS, env.clock, 0, 0), 2);
    assert.notEqual(back.context, fc.tail.context);
    assert.equal(back.seqno, 3, "seqno never goes below the previous node's");
    assert.equal(back.prevSeqno, 0);
  });

  test("find_seqno", () => {
    const env = newEnv();
    const fc = fenceChains(env, 16);
    assert.deepEqual(dmaFenceChainFindSeqno(fc.tail, 0), { err: 0, fence: fc.tail });
    for (let i = 0; i < fc.chains.length; i++) {
      let r = dmaFenceChainFindSeqno(fc.tail, i + 1);
      assert.equal(r.err, 0);
      assert.equal(r.fence, fc.chains[i], `find_seqno(${i + 1})`);
      r = dmaFenceChainFindSeqno(fc.chains[i]!, i + 1);
      assert.equal(r.fence, fc.chains[i], "finding self");
      r = dmaFenceChainFindSeqno(fc.chains[i]!, i + 2);
      assert.equal(r.err, -ERRNO.EINVAL, "future fence");
      r = dmaFenceChainFindSeqno(fc.chains[i]!, i);
      assert.equal(r.err, 0);
      if (i > 0) assert.equal(r.fence, fc.chains[i - 1], "previous fence");
    }
  });

  test("find_signaled: a signalled point may be reported as null", () => {
    const env = newEnv();
    const fc = fenceChains(env, 2);
    fc.fences[0]!.signal();
    const r = dmaFenceChainFindSeqno(fc.tail, 1);
    assert.equal(r.err, 0);
    assert.ok(r.fence === null || r.fence === fc.chains[0]);
  });

  test("find_out_of_order: waits for everything up to the point", () => {
    const env = newEnv();
    const fc = fenceChains(env, 3);
    fc.fences[1]!.signal();
    const r = dmaFenceChainFindSeqno(fc.tail, 2);
    assert.equal(r.err, 0);
    assert.equal(r.fence, fc.chains[0]);
  });

  test("find_gap", () => {
    const env = newEnv();
    const fc = fenceChains(env, 16, (i) => 2 * i + 2);
    for (let i = 0; i < fc.chains.length; i++) {
      let r = dmaFenceChainFindSeqno(fc.tail, 2 * i + 1);
      assert.equal(r.err, 0);
      assert.equal(r.fence, fc.chains[i]);
      r = dmaFenceChainFindSeqno(r.fence!, 2 * i + 2);
      assert.equal(r.fence, fc.chains[i]);
    }
  });

  test("find_race, serialised: random finds and signals stay consistent", () => {
    const env = newEnv();
    const fc = fenceChains(env, 64);
    const rng = new Prng(7);
    for (let n = 0; n < 500; n++) {
      const seqno = 1 + rng.below(fc.chains.length);
      const r = dmaFenceChainFindSeqno(fc.tail, seqno);
      assert.equal(r.err, 0);
      if (r.fence !== null && r.fence.seqno === seqno) {
        assert.equal(dmaFenceChainFindSeqno(r.fence, seqno).err, 0);
      }
      if (r.fence !== null) assert.ok(r.fence.seqno <= seqno);
      fc.fences[rng.below(fc.chains.length - 1)]!.signal();
    }
  });

  test("signal_forward", () => {
    const env = newEnv();
    const fc = fenceChains(env, 32);
    for (let i = 0; i < fc.chains.length; i++) {
      fc.fences[i]!.signal();
      assert.equal(fc.chains[i]!.isSignaled(), true, `chain[${i}] signalled`);
      if (i + 1 < fc.chains.length) assert.equal(fc.chains[i + 1]!.isSignaled(), false);
    }
  });

  test("signal_backward", () => {
    const env = newEnv();
    const fc = fenceChains(env, 32);
    for (let i = fc.chains.length - 1; i >= 0; i--) {
      fc.fences[i]!.signal();
      if (i > 0) assert.equal(fc.chains[i]!.isSignaled(), false, `chain[${i}] too early`);
    }
    for (const c of fc.chains) assert.equal(c.isSignaled(), true);
  });

  for (const order of ["forward", "backward", "random"] as const) {
    test(`wait_${order}: the tail's wait returns once every fence has signalled`, () => {
      const env = newEnv();
      const fc = fenceChains(env, 64);
      const idx = fc.fences.map((_, i) => i);
      if (order === "backward") idx.reverse();
      if (order === "random") {
        const rng = new Prng(3);
        for (let k = idx.length - 1; k > 0; k--) {
          const j = rng.below(k + 1);
          [idx[k], idx[j]] = [idx[j]!, idx[k]!];
        }
      }
      idx.forEach((i, k) => {
        env.clock.after(10 * (k + 1), `signal ${i}`, () => fc.fences[i]!.signal());
      });
      let done = false;
      fc.tail.addCallback(new DmaFenceCb(() => (done = true)));
      assert.equal(fc.tail.wait(false), 0);
      assert.equal(done, true);
      assert.equal(env.clock.now, 640, "not before the last fence");
      assert.equal(fc.tail.timestamp, 640);
    });
  }

  test("walk cuts signalled links out of prev", () => {
    const env = newEnv();
    const fc = fenceChains(env, 4);
    fc.fences[1]!.signal();
    fc.fences[2]!.signal();
    assert.equal(dmaFenceChainWalk(fc.tail), fc.chains[0]);
    assert.equal(fc.tail.prev, fc.chains[0]);
    assert.deepEqual([...dmaFenceChainForEach(fc.tail)], [fc.tail, fc.chains[0]]);
    assert.equal(dmaFenceChainWalk(fc.fences[0]!), null, "not a chain");
    assert.equal(dmaFenceChainContained(fc.tail), fc.fences[3]);
    assert.equal(toDmaFenceChain(fc.fences[0]), null);
  });

  test("set_deadline reaches every fence still pending", () => {
    const env = newEnv();
    const seen: number[] = [];
    const ops: DmaFenceOps = { ...MOCK_OPS, setDeadline: (f) => seen.push(f.seqno) };
    let tail: DmaFenceChain | null = null;
    const fences = [1, 2, 3].map((s) => new DmaFence(ops, env.clock, 9, s));
    for (const f of fences) tail = new DmaFenceChain(env, tail, f, f.seqno);
    fences[1]!.signal();
    tail!.setDeadline(100);
    assert.deepEqual(seen, [3, 1]);
  });
});
