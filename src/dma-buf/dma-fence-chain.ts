/**
 * struct dma_fence_chain: a timeline of fences, as used by DRM timeline syncobjs
 * (drivers/dma-buf/dma-fence-chain.c, include/linux/dma-fence-chain.h).
 *
 * Each chain node wraps one fence (`fence`) and points at the previous node (`prev`). A
 * node signals when its own fence and every earlier node's fence have signalled.
 * Walking the chain (dma_fence_chain_walk) garbage-collects: links whose fence has
 * signalled are cut out of `prev`, so a walk only ever returns unsignalled work.
 *
 * dma_fence_chain_init reuses the previous node's context when the new seqno is later
 * (and records prev_seqno); otherwise it allocates a fresh context and keeps the seqno at
 * least the previous one. Chain seqnos are 64-bit (use_64bit_seqno). Driver name
 * "dma_fence_chain", timeline "unbound". Linux signals the node from irq_work after the
 * watched fence's callback; the model does it synchronously.
 */

import { ERRNO } from "../errno.js";
import {
  DmaFence,
  DmaFenceCb,
  type DmaFenceOps,
  type FenceEnv,
  seqnoIsLater,
} from "./dma-fence.js";

/** struct dma_fence_chain. */
export class DmaFenceChain extends DmaFence {
  #prev: DmaFence | null;
  /** chain->prev_seqno: the previous node's seqno when the context was shared, else 0. */
  readonly prevSeqno: number;
  /** chain->fence: the fence this node wraps. */
  readonly fence: DmaFence;
  /** chain->cb: the one callback a node keeps on the fence it currently watches. */
  readonly #cb: DmaFenceCb;

  static readonly #ops: DmaFenceOps = {
    getDriverName: () => "dma_fence_chain",
    getTimelineName: () => "unbound",
    enableSignaling: (f) => DmaFenceChain.#of(f).#enableSignaling(),
    signaled: (f) => DmaFenceChain.#of(f).#signaled(),
    setDeadline: (f, deadline) => {
      for (const link of dmaFenceChainForEach(DmaFenceChain.#of(f))) {
        dmaFenceChainContained(link).setDeadline(deadline);
      }
    },
    release: (f) => {
      const chain = DmaFenceChain.#of(f);
      chain.fence.removeCallback(chain.#cb);
      chain.#prev?.put();
      chain.#prev = null;
      chain.fence.put();
    },
    use64bitSeqno: true,
  };

  static #of(f: DmaFence): DmaFenceChain {
    if (!(f instanceof DmaFenceChain)) throw new Error(`dma_fence_chain_ops on ${f}`);
    return f;
  }

  /**
   * dma_fence_chain_init(chain, prev, fence, seqno): a node wrapping `fence` after
   * `prev` (null for the first node), taking over the caller's references to both.
   * Contexts for new timelines come from `env`.
   */
  constructor(env: FenceEnv, prev: DmaFence | null, fence: DmaFence, seqno: number) {
    const prevChain = toDmaFenceChain(prev);
    let context: number;
    let prevSeqno = 0;
    if (prevChain !== null && seqnoIsLater(seqno, prevChain.seqno, true)) {
      context = prevChain.context;
      prevSeqno = prevChain.seqno;
    } else {
      context = env.contexts.alloc(1);
      if (prevChain !== null) seqno = Math.max(prevChain.seqno, seqno);
    }
    super(DmaFenceChain.#ops, env.clock, context, seqno);
    this.#prev = prev;
    this.prevSeqno = prevSeqno;
    this.fence = fence;
    this.#cb = new DmaFenceCb(() => {
      // dma_fence_chain_cb + dma_fence_chain_irq_work: move on to the next fence.
      if (!this.#enableSignaling()) this.signal();
    });
  }

  override get isContainer(): boolean {
    return true;
  }

  /** dma_fence_chain_get_prev(): the previous link, as currently (re)linked. */
  get prev(): DmaFence | null {
    return this.#prev;
  }

  /**
   * The cmpxchg in dma_fence_chain_walk: replace `prev` if it is still `expected`; the
   * node takes a reference to the replacement and drops the one to `expected`.
   */
  replacePrev(expected: DmaFence, replacement: DmaFence | null): boolean {
    if (this.#prev !== expected) return false;
    this.#prev = replacement?.get() ?? null;
    expected.put();
    return true;
  }

  /** dma_fence_chain_enable_signaling(): watch the first unsignalled fence of the chain. */
  #enableSignaling(): boolean {
    for (const link of dmaFenceChainForEach(this)) {
      const f = dmaFenceChainContained(link);
      if (f.addCallback(this.#cb) === 0) return true;
    }
    return false;
  }

  /** dma_fence_chain_signaled(): every fence along the chain has signalled. */
  #signaled(): boolean {
    for (const link of dmaFenceChainForEach(this)) {
      if (!dmaFenceChainContained(link).isSignaled()) return false;
    }
    return true;
  }
}

/** to_dma_fence_chain(): the chain node, or null if `fence` is not one. */
export function toDmaFenceChain(fence: DmaFence | null | undefined): DmaFenceChain | null {
  return fence instanceof DmaFenceChain ? fence : null;
}

/** dma_fence_is_chain(). */
export function dmaFenceIsChain(fence: DmaFence): boolean {
  return fence instanceof DmaFenceChain;
}

/** dma_fence_chain_contained(): the wrapped fence of a node, or `fence` itself. */
export function dmaFenceChainContained(fence: DmaFence): DmaFence {
  const chain = toDmaFenceChain(fence);
  return chain !== null ? chain.fence : fence;
}

/**
 * dma_fence_chain_walk(fence): the next unsignalled link before `fence`, cutting
 * signalled links out of `fence`'s prev pointer on the way. Null at the end of the chain
 * or if `fence` is not a chain node.
 */
export function dmaFenceChainWalk(fence: DmaFence): DmaFence | null {
  const chain = toDmaFenceChain(fence);
  if (chain === null) return null;
  for (;;) {
    const prev = chain.prev;
    if (prev === null) return null;
    const prevChain = toDmaFenceChain(prev);
    let replacement: DmaFence | null;
    if (prevChain !== null) {
      if (!prevChain.fence.isSignaled()) return prev;
      replacement = prevChain.prev;
    } else {
      if (!prev.isSignaled()) return prev;
      replacement = null;
    }
    chain.replacePrev(prev, replacement);
  }
}

/**
 * dma_fence_chain_for_each(iter, head): `head`, then each link dma_fence_chain_walk
 * returns. The walk happens lazily, as in the kernel macro.
 */
export function* dmaFenceChainForEach(head: DmaFence): Generator<DmaFence, void, undefined> {
  let iter: DmaFence | null = head;
  while (iter !== null) {
    yield iter;
    iter = dmaFenceChainWalk(iter);
  }
}

/** Result of {@link dmaFenceChainFindSeqno}: `err` as Linux, `fence` the new *pfence. */
export interface FindSeqnoResult {
  readonly err: number;
  readonly fence: DmaFence | null;
}

/**
 * dma_fence_chain_find_seqno(pfence, seqno): the link to wait on for point `seqno` of
 * the chain at `fence`. seqno 0 returns `fence` unchanged; a non-chain or a chain whose
 * head is before `seqno` gives -EINVAL; a null fence means the point has signalled.
 */
export function dmaFenceChainFindSeqno(fence: DmaFence, seqno: number): FindSeqnoResult {
  if (seqno === 0) return { err: 0, fence };
  const chain = toDmaFenceChain(fence);
  if (chain === null || chain.seqno < seqno) return { err: -ERRNO.EINVAL, fence };
  let iter: DmaFence | null = chain;
  while (iter !== null) {
    const link = toDmaFenceChain(iter);
    if (iter.context !== chain.context || link === null || link.prevSeqno < seqno) break;
    iter = dmaFenceChainWalk(iter);
  }
  return { err: 0, fence: iter };
}
