/**
 * struct dma_fence_array: one fence standing for several
 * (drivers/dma-buf/dma-fence-array.c, include/linux/dma-fence-array.h).
 *
 * The array signals when all its fences have signalled, or, created with signal_on_any,
 * when the first one has. Enabling signalling registers one callback per child; a child
 * already signalled counts at once. The first child error seen becomes the array's error
 * (dma_fence_array_set_pending_error: only the first sticks). Driver name
 * "dma_fence_array", timeline "unbound". set_deadline is forwarded to every child.
 *
 * Differences from Linux: the array signals synchronously from the last child's callback
 * (Linux defers to irq_work); and when the array is only polled (dma_fence_is_signaled
 * without signalling enabled) the children's errors are propagated too, in index order,
 * where Linux's polled path leaves the error at 0. Arrays must not contain containers
 * (arrays or chains): Linux WARNs, the model throws.
 */

import type { VirtualClock } from "../machine/clock.js";
import {
  DMA_FENCE_FLAG_ENABLE_SIGNAL_BIT,
  DmaFence,
  DmaFenceCb,
  type DmaFenceOps,
} from "./dma-fence.js";

/** PENDING_ERROR: the array's error slot before any child reported. */
const PENDING_ERROR = 1;

/** struct dma_fence_array. Build with {@link DmaFenceArray.create}. */
export class DmaFenceArray extends DmaFence {
  /** The fences (array->fences), in the order given. */
  readonly fences: readonly DmaFence[];
  /** Whether the array signals on the first child (signal_on_any). */
  readonly signalOnAny: boolean;
  #numPending: number;
  #pendingError = PENDING_ERROR;
  readonly #cbs: DmaFenceCb[];

  static readonly #ops: DmaFenceOps = {
    getDriverName: () => "dma_fence_array",
    getTimelineName: () => "unbound",
    enableSignaling: (f) => DmaFenceArray.#of(f).#enableSignaling(),
    signaled: (f) => DmaFenceArray.#of(f).#signaled(),
    setDeadline: (f, deadline) => {
      for (const child of DmaFenceArray.#of(f).fences) child.setDeadline(deadline);
    },
    release: (f) => DmaFenceArray.#of(f).#release(),
  };

  static #of(f: DmaFence): DmaFenceArray {
    if (!(f instanceof DmaFenceArray)) throw new Error(`dma_fence_array_ops on ${f}`);
    return f;
  }

  /**
   * dma_fence_array_init(): prefer {@link DmaFenceArray.create}. `clock` timestamps the
   * array's own signal.
   */
  constructor(
    clock: VirtualClock,
    fences: readonly DmaFence[],
    context: number,
    seqno: number,
    signalOnAny: boolean,
  ) {
    if (fences.length === 0) {
      throw new Error("WARN_ON: dma_fence_array_create: an array needs at least one fence");
    }
    for (const f of fences) {
      if (f.isContainer) {
        throw new Error(
          `WARN_ON: dma_fence_array_create: ${f} is a container; flatten it (dma_fence_unwrap) first`,
        );
      }
    }
    super(DmaFenceArray.#ops, clock, context, seqno);
    this.fences = [...fences];
    this.signalOnAny = signalOnAny;
    this.#numPending = signalOnAny ? 1 : fences.length;
    this.#cbs = fences.map((child) => new DmaFenceCb(() => this.#childSignaled(child)));
  }

  /**
   * dma_fence_array_create(num_fences, fences, context, seqno, signal_on_any): a new
   * array fence over `fences`, taking over the caller's references to them.
   */
  static create(
    clock: VirtualClock,
    fences: readonly DmaFence[],
    context: number,
    seqno: number,
    signalOnAny: boolean,
  ): DmaFenceArray {
    return new DmaFenceArray(clock, fences, context, seqno, signalOnAny);
  }

  override get isContainer(): boolean {
    return true;
  }

  /** array->num_pending: children still awaited (<= 0 once the array may signal). */
  get numPending(): number {
    return this.#numPending;
  }

  /** dma_fence_array_release(): unhook from the children and drop their references. */
  #release(): void {
    this.fences.forEach((child, i) => {
      child.removeCallback(this.#cbs[i]!);
      child.put();
    });
  }

  /** dma_fence_array_set_pending_error(): the first non-zero error sticks. */
  #setPendingError(error: number): void {
    if (error !== 0 && this.#pendingError === PENDING_ERROR) this.#pendingError = error;
  }

  /** dma_fence_array_clear_pending_error(), then store the error before the signal. */
  #settleError(): void {
    if (this.#pendingError === PENDING_ERROR) this.#pendingError = 0;
    if (this.#pendingError < 0 && !this.signaledFlag && this.error === 0) {
      this.setError(this.#pendingError);
    }
  }

  /** dma_fence_array_cb_func(). */
  #childSignaled(child: DmaFence): void {
    this.#setPendingError(child.error);
    this.#numPending--;
    if (this.#numPending === 0) {
      this.#settleError();
      this.signal();
    }
  }

  /** dma_fence_array_enable_signaling(). */
  #enableSignaling(): boolean {
    for (let i = 0; i < this.fences.length; i++) {
      const child = this.fences[i]!;
      if (child.addCallback(this.#cbs[i]!) !== 0) {
        this.#setPendingError(child.error);
        this.#numPending--;
        if (this.#numPending === 0) {
          this.#settleError();
          return false;
        }
      }
    }
    return true;
  }

  /** dma_fence_array_signaled(). */
  #signaled(): boolean {
    if (this.#numPending <= 0) {
      this.#settleError();
      return true;
    }
    if (this.testBit(DMA_FENCE_FLAG_ENABLE_SIGNAL_BIT)) return false;
    let pending = this.#numPending;
    for (const child of this.fences) {
      if (child.isSignaled()) {
        this.#setPendingError(child.error);
        if (--pending === 0) {
          this.#settleError();
          return true;
        }
      }
    }
    return false;
  }
}

/** to_dma_fence_array(): the array, or null if `fence` is not one. */
export function toDmaFenceArray(fence: DmaFence | null | undefined): DmaFenceArray | null {
  return fence instanceof DmaFenceArray ? fence : null;
}

/** dma_fence_is_array(). */
export function dmaFenceIsArray(fence: DmaFence): boolean {
  return fence instanceof DmaFenceArray;
}

/**
 * dma_fence_match_context(): does `fence` (or, for an array, every fence in it) belong to
 * `context`?
 */
export function dmaFenceMatchContext(fence: DmaFence, context: number): boolean {
  const array = toDmaFenceArray(fence);
  if (array === null) return fence.context === context;
  return array.fences.every((f) => f.context === context);
}

/**
 * dma_fence_array_first(head): the first fence of an array, `head` itself if it is not
 * an array, null for null.
 */
export function dmaFenceArrayFirst(head: DmaFence | null): DmaFence | null {
  if (head === null) return null;
  const array = toDmaFenceArray(head);
  if (array === null) return head;
  return array.fences[0] ?? null;
}

/** dma_fence_array_next(head, index): fence `index` of the array, or null past the end. */
export function dmaFenceArrayNext(head: DmaFence | null, index: number): DmaFence | null {
  const array = toDmaFenceArray(head);
  if (array === null || index >= array.fences.length) return null;
  return array.fences[index] ?? null;
}
