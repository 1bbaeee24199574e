/**
 * Unwrapping containers into their leaf fences, and merging them
 * (drivers/dma-buf/dma-fence-unwrap.c, include/linux/dma-fence-unwrap.h).
 *
 * dma_fence_unwrap_for_each walks a chain (with dma_fence_chain_walk, so signalled links
 * are skipped and cut out) and, for each link, the fences of the array it contains, or
 * the contained fence itself. Containers nest at most chain → array → fence.
 *
 * dma_fence_unwrap_merge flattens any number of fences into one: signalled leaves are
 * dropped (their latest timestamp is kept), the rest are sorted by context and only the
 * latest fence of each context is kept. No pending fence gives a private signalled stub
 * carrying that timestamp; exactly one gives that fence itself; several give a new
 * dma_fence_array (fresh context, seqno 1, signal on all). Like Linux, the result is a
 * new reference for the caller (an existing fence returned gets get()).
 */

import type { Ns } from "../machine/clock.js";
import { type DmaFence, dmaFenceAllocatePrivateStub, type FenceEnv } from "./dma-fence.js";
import { DmaFenceArray, dmaFenceArrayFirst, dmaFenceArrayNext } from "./dma-fence-array.js";
import { dmaFenceChainContained, dmaFenceChainWalk } from "./dma-fence-chain.js";

/**
 * dma_fence_unwrap_for_each(fence, cursor, head): every leaf fence of `head`, in the
 * kernel's order (chain from newest to oldest, array in index order).
 */
export function* dmaFenceUnwrap(head: DmaFence): Generator<DmaFence, void, undefined> {
  let chain: DmaFence | null = head;
  while (chain !== null) {
    const array = dmaFenceChainContained(chain);
    let index = 0;
    let f = dmaFenceArrayFirst(array);
    if (f === null) return;
    while (f !== null) {
      yield f;
      f = dmaFenceArrayNext(array, ++index);
    }
    chain = dmaFenceChainWalk(chain);
  }
}

/** The leaf fences of `head` as an array (counting them is what SYNC_IOC_FILE_INFO does). */
export function dmaFenceUnwrapAll(head: DmaFence): DmaFence[] {
  return [...dmaFenceUnwrap(head)];
}

/** fence_cmp(): by context, then the later fence first. */
function fenceCmp(a: DmaFence, b: DmaFence): number {
  if (a.context !== b.context) return a.context < b.context ? -1 : 1;
  if (b.isLater(a)) return 1;
  if (a.isLater(b)) return -1;
  return 0;
}

/**
 * __dma_fence_unwrap_merge / dma_fence_unwrap_merge(...fences): one fence that signals
 * when every leaf of every argument has. See the module comment for the result's shape.
 */
export function dmaFenceUnwrapMerge(env: FenceEnv, ...fences: DmaFence[]): DmaFence {
  let timestamp: Ns = 0;
  const pending: DmaFence[] = [];
  for (const head of fences) {
    for (const f of dmaFenceUnwrap(head)) {
      if (!f.isSignaled()) {
        pending.push(f);
      } else {
        const t = f.timestamp ?? env.clock.now;
        if (t > timestamp) timestamp = t;
      }
    }
  }
  if (pending.length === 0) return dmaFenceAllocatePrivateStub(env, timestamp);
  if (pending.length === 1) return pending[0]!.get();

  pending.sort(fenceCmp);
  // Keep only the most recent fence of each context.
  const kept: DmaFence[] = [pending[0]!];
  for (let i = 1; i < pending.length; i++) {
    if (pending[i]!.context !== kept[kept.length - 1]!.context) kept.push(pending[i]!);
  }
  if (kept.length === 1) return kept[0]!.get();
  return DmaFenceArray.create(
    env.clock,
    kept.map((f) => f.get()),
    env.contexts.alloc(1),
    1,
    false,
  );
}
