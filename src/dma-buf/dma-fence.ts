/**
 * struct dma_fence: the kernel's cross-driver completion object
 * (drivers/dma-buf/dma-fence.c, include/linux/dma-fence.h).
 *
 * A fence belongs to a context (one per timeline, from dma_fence_context_alloc) and has a
 * seqno that orders it within that context. It goes from unsignalled to signalled exactly
 * once; the callbacks added with dma_fence_add_callback run then, once each, in the order
 * they were added, after the timestamp is recorded. An error may be attached before the
 * signal (dma_fence_set_error) and is reported by dma_fence_get_status.
 *
 * What the model does differently, on purpose:
 * - Determinism: no module-global counter. Contexts come from a
 *   {@link FenceContextAllocator} the caller owns (one per simulated kernel); timestamps
 *   come from the {@link VirtualClock} the fence was created with. The stub fence of
 *   dma_fence_get_stub is one per allocator.
 * - Waiting (dma_fence_wait_timeout) runs the virtual clock: events fire until the fence
 *   is signalled or the timeout has passed. Timeouts are in virtual nanoseconds, not
 *   jiffies. The model has no POSIX signals, so `intr` never yields -ERESTARTSYS. An
 *   infinite wait (MAX_SCHEDULE_TIMEOUT) that nothing on the clock can end throws: on a
 *   real kernel that task would hang forever.
 * - A kernel WARN_ON/BUG_ON that flags a caller bug (setting an error after the signal,
 *   comparing seqnos of different contexts, releasing a fence twice) throws an Error
 *   whose message names the Linux function, the way lockdep names a missing lock.
 * - Reference counting is optional: fences start with one reference; get()/put() count,
 *   and the final put() runs dma_fence_release (and ops.release) exactly once. Code that
 *   never calls put() simply lets the JS garbage collector have the fence. The counting
 *   follows Linux, because a released sw_sync point leaves its timeline: functions that
 *   return a new reference (dma_fence_get_stub, dma_resv_get_fences, sync_file_get_fence,
 *   dma_fence_unwrap_merge) take one; dma_fence_array_create and dma_fence_chain_init
 *   take over the caller's references and put them on release; a dma_resv holds one per
 *   slot.
 * - Seqnos are JS numbers: 64-bit seqnos are exact up to 2^53.
 */

import { ERRNO } from "../errno.js";
import type { Ns, VirtualClock } from "../machine/clock.js";
import { SimulationError } from "../machine/outcome.js";
import { FENCE_CAT } from "../machine/trace.js";

/** DMA_FENCE_FLAG_SIGNALED_BIT: the fence has signalled. */
export const DMA_FENCE_FLAG_SIGNALED_BIT = 0;
/** DMA_FENCE_FLAG_TIMESTAMP_BIT: the signal timestamp is valid. */
export const DMA_FENCE_FLAG_TIMESTAMP_BIT = 1;
/** DMA_FENCE_FLAG_ENABLE_SIGNAL_BIT: enable_signaling has been (or is being) called. */
export const DMA_FENCE_FLAG_ENABLE_SIGNAL_BIT = 2;
/** DMA_FENCE_FLAG_USER_BITS: first bit a fence implementation may use for itself. */
export const DMA_FENCE_FLAG_USER_BITS = 3;

/**
 * The trace track of a fence context: its init and signal instants and the waits on its
 * fences (the trace writer adds the driver and timeline to the name).
 */
export function fenceTrack(context: number): string {
  return `fence context ${context}`;
}

/** MAX_SCHEDULE_TIMEOUT: wait without a time limit. */
export const MAX_SCHEDULE_TIMEOUT: Ns = Number.POSITIVE_INFINITY;
/** MAX_ERRNO (include/linux/err.h): errors are -1 .. -4095. */
export const MAX_ERRNO = 4095;
/** EDEADLK (35): the error dma_fence_release sets on a fence freed with waiters. */
export const EDEADLK = 35;

/**
 * The fence context counter of one simulated kernel (dma_fence_context_alloc). Linux's
 * counter starts at 1 (context 0 is the stub fence's), so the first context is 1.
 */
export class FenceContextAllocator {
  #next = 1;

  /** dma_fence_context_alloc(num): reserves `num` consecutive contexts, returns the first. */
  alloc(num = 1): number {
    if (!Number.isInteger(num) || num <= 0) {
      throw new Error(`WARN_ON: dma_fence_context_alloc(${num}): need at least one context`);
    }
    const first = this.#next;
    this.#next += num;
    return first;
  }

  /** The context the next alloc() would return. */
  get next(): number {
    return this.#next;
  }
}

/** What fence-creating code of one simulated kernel needs: its clock and its contexts. */
export interface FenceEnv {
  readonly clock: VirtualClock;
  readonly contexts: FenceContextAllocator;
}

/** Convenience: a fresh {@link FenceEnv} on `clock`. */
export function fenceEnv(clock: VirtualClock): FenceEnv {
  return { clock, contexts: new FenceContextAllocator() };
}

/**
 * struct dma_fence_ops: what a fence implementation provides. Every callback gets the
 * fence it is called for, as in Linux.
 */
export interface DmaFenceOps {
  /** get_driver_name (mandatory). */
  getDriverName(fence: DmaFence): string;
  /** get_timeline_name (mandatory). */
  getTimelineName(fence: DmaFence): string;
  /**
   * enable_signaling: called once, on the first add_callback/wait/enable_sw_signaling.
   * Return false if the fence has already passed (it is then signalled at once).
   */
  enableSignaling?(fence: DmaFence): boolean;
  /** signaled: a peek at the hardware; true must stay true. May set the error. */
  signaled?(fence: DmaFence): boolean;
  /** release: called once, from the final put(). */
  release?(fence: DmaFence): void;
  /** set_deadline: a hint that the fence is wanted by `deadline` (absolute virtual ns). */
  setDeadline?(fence: DmaFence, deadline: Ns): void;
  /** use_64bit_seqno: compare seqnos as 64-bit numbers rather than wrapping 32-bit ones. */
  readonly use64bitSeqno?: boolean;
}

/** dma_fence_func_t. */
export type DmaFenceFunc = (fence: DmaFence, cb: DmaFenceCb) => void;

/**
 * struct dma_fence_cb: a callback registration. One registration can be on one fence at
 * a time; keep the object to remove it again (dma_fence_remove_callback).
 */
export class DmaFenceCb {
  constructor(readonly func: DmaFenceFunc) {}
}

/** The lower 32 bits of a non-negative integer seqno. */
function lower32(x: number): number {
  return (x % 0x1_0000_0000) >>> 0;
}

/**
 * __dma_fence_is_later(f1, f2, ops): is seqno `f1` after seqno `f2` on one timeline? With
 * 64-bit seqnos a plain compare; otherwise the lower 32 bits are compared with
 * wrap-around, `(int)(f1 - f2) > 0`, so 1 is later than 0xffffffff.
 */
export function seqnoIsLater(f1: number, f2: number, use64bitSeqno = false): boolean {
  if (use64bitSeqno) return f1 > f2;
  return ((lower32(f1) - lower32(f2)) | 0) > 0;
}

/** struct dma_fence and the functions of dma-fence.c that operate on one fence. */
export class DmaFence {
  readonly ops: DmaFenceOps;
  readonly clock: VirtualClock;
  readonly context: number;
  readonly seqno: number;
  #flags = 0;
  #error = 0;
  #timestamp: Ns | undefined;
  #cbList: DmaFenceCb[] = [];
  /** The callbacks being run by signal(), so that remove_callback can still unlink them. */
  #running: DmaFenceCb[] | null = null;
  #refcount = 1;

  /** dma_fence_init(fence, ops, lock, context, seqno), on the clock `clock`. */
  constructor(ops: DmaFenceOps, clock: VirtualClock, context: number, seqno: number) {
    if (!Number.isInteger(context) || context < 0) {
      throw new RangeError(`dma_fence_init: bad context ${context}`);
    }
    if (!Number.isInteger(seqno) || seqno < 0) {
      throw new RangeError(`dma_fence_init: bad seqno ${seqno}`);
    }
    this.ops = ops;
    this.clock = clock;
    this.context = context;
    this.seqno = seqno;
    const trace = clock.trace;
    if (trace?.enabled)
      trace.instant(fenceTrack(context), FENCE_CAT, "dma_fence_init", clock.now, {
        context,
        seqno,
      });
  }

  /** fence->flags, a bit mask of DMA_FENCE_FLAG_*. */
  get flags(): number {
    return this.#flags;
  }

  /** test_bit(bit, &fence->flags). */
  testBit(bit: number): boolean {
    return (this.#flags & (1 << bit)) !== 0;
  }

  /** set_bit(bit, &fence->flags), for implementation bits (>= DMA_FENCE_FLAG_USER_BITS). */
  setUserBit(bit: number): void {
    if (!Number.isInteger(bit) || bit < DMA_FENCE_FLAG_USER_BITS || bit > 30) {
      throw new RangeError(`set_bit: bit ${bit} is not a DMA_FENCE_FLAG_USER_BITS bit`);
    }
    this.#flags |= 1 << bit;
  }

  /** fence->error: 0, or the negative errno set before the signal. */
  get error(): number {
    return this.#error;
  }

  /** fence->timestamp: virtual ns of the signal, undefined while unsignalled. */
  get timestamp(): Ns | undefined {
    return this.#timestamp;
  }

  /** The SIGNALED bit alone, without asking ops.signaled (test_bit(SIGNALED_BIT)). */
  get signaledFlag(): boolean {
    return this.testBit(DMA_FENCE_FLAG_SIGNALED_BIT);
  }

  /** dma_fence_driver_name(). */
  get driverName(): string {
    return this.ops.getDriverName(this);
  }

  /** dma_fence_timeline_name(). */
  get timelineName(): string {
    return this.ops.getTimelineName(this);
  }

  /** dma_fence_is_container(): an array or a chain (overridden by those classes). */
  get isContainer(): boolean {
    return false;
  }

  /** The number of references held (kref). */
  get refcount(): number {
    return this.#refcount;
  }

  /** "driver:timeline:context:seqno", for messages. */
  toString(): string {
    return `${this.driverName}:${this.timelineName}:${this.context}:${this.seqno}`;
  }

  /**
   * dma_fence_set_error(): mark the fence as completed in error. Only before the signal,
   * and only with a negative errno (-1 .. -MAX_ERRNO); otherwise throws (Linux WARNs).
   */
  setError(error: number): void {
    if (this.signaledFlag) {
      throw new Error(`WARN_ON: dma_fence_set_error(${this}): fence already signalled`);
    }
    if (!Number.isInteger(error) || error >= 0 || error < -MAX_ERRNO) {
      throw new Error(`WARN_ON: dma_fence_set_error(${this}, ${error}): not a negative errno`);
    }
    this.#error = error;
  }

  /**
   * dma_fence_signal(): signal the fence at the clock's current time. Returns 0, or
   * -EINVAL if it was already signalled (then nothing happens: callbacks run only once).
   */
  signal(): number {
    return this.signalTimestamp(this.clock.now);
  }

  /**
   * dma_fence_signal_timestamp(): signal with an explicit timestamp. Sets SIGNALED, then
   * the timestamp and TIMESTAMP, then runs every callback once, in the order added.
   */
  signalTimestamp(timestamp: Ns): number {
    if (this.signaledFlag) return -ERRNO.EINVAL;
    this.#flags |= 1 << DMA_FENCE_FLAG_SIGNALED_BIT;
    const list = this.#cbList;
    this.#cbList = [];
    this.#timestamp = timestamp;
    this.#flags |= 1 << DMA_FENCE_FLAG_TIMESTAMP_BIT;
    const trace = this.clock.trace;
    if (trace?.enabled)
      trace.instant(fenceTrack(this.context), FENCE_CAT, "dma_fence_signal", this.clock.now, {
        context: this.context,
        seqno: this.seqno,
        driver: this.driverName,
        timeline: this.timelineName,
        ...(timestamp !== this.clock.now ? { timestamp } : {}),
        ...(this.#error !== 0 ? { error: this.#error } : {}),
      });
    this.#running = list;
    try {
      while (list.length > 0) {
        const cb = list.shift()!;
        cb.func(this, cb);
      }
    } finally {
      this.#running = null;
    }
    return 0;
  }

  /**
   * dma_fence_is_signaled(): the SIGNALED bit, or else ops.signaled(); a true answer from
   * ops.signaled signals the fence.
   */
  isSignaled(): boolean {
    if (this.signaledFlag) return true;
    if (this.ops.signaled?.(this)) {
      this.signal();
      return true;
    }
    return false;
  }

  /**
   * dma_fence_get_status(): 0 while pending, 1 when signalled without error, the negative
   * error when signalled with one.
   */
  getStatus(): number {
    if (!this.isSignaled()) return 0;
    return this.#error !== 0 ? this.#error : 1;
  }

  /** __dma_fence_enable_signaling(): true if the fence is still pending afterwards. */
  #enableSignaling(): boolean {
    const wasSet = this.testBit(DMA_FENCE_FLAG_ENABLE_SIGNAL_BIT);
    this.#flags |= 1 << DMA_FENCE_FLAG_ENABLE_SIGNAL_BIT;
    if (this.signaledFlag) return false;
    if (!wasSet && this.ops.enableSignaling !== undefined) {
      if (!this.ops.enableSignaling(this)) {
        this.signal();
        return false;
      }
    }
    return true;
  }

  /** dma_fence_enable_sw_signaling(): ask the implementation to signal in software. */
  enableSwSignaling(): void {
    if (this.signaledFlag) return;
    this.#enableSignaling();
  }

  /**
   * dma_fence_add_callback(): run `cb` when the fence signals. Returns 0, or -ENOENT if
   * the fence has already signalled (the callback is then *not* called). Enables
   * signalling.
   */
  addCallback(cb: DmaFenceCb): number {
    if (this.signaledFlag) return -ERRNO.ENOENT;
    if (this.#cbList.includes(cb)) {
      throw new Error(`dma_fence_add_callback(${this}): callback already registered`);
    }
    if (!this.#enableSignaling()) return -ERRNO.ENOENT;
    this.#cbList.push(cb);
    return 0;
  }

  /**
   * dma_fence_remove_callback(): unregister `cb`. True if it was still pending, false if
   * it has already run (or was never added).
   */
  removeCallback(cb: DmaFenceCb): boolean {
    for (const list of [this.#cbList, this.#running]) {
      if (list === null) continue;
      const i = list.indexOf(cb);
      if (i >= 0) {
        list.splice(i, 1);
        return true;
      }
    }
    return false;
  }

  /** True while `cb` is registered and has not run. */
  hasCallback(cb: DmaFenceCb): boolean {
    return this.#cbList.includes(cb) || (this.#running?.includes(cb) ?? false);
  }

  /**
   * dma_fence_wait_timeout() with dma_fence_default_wait(): enables signalling, then runs
   * the virtual clock until the fence is signalled or `timeout` ns have passed.
   *
   * Returns -EINVAL for a negative timeout; with timeout 0, 1 if signalled and 0 if not;
   * otherwise the remaining time (> 0; at least 1 when the fence signalled at the very
   * deadline) or 0 on timeout. With MAX_SCHEDULE_TIMEOUT the result on success is
   * MAX_SCHEDULE_TIMEOUT. `intr` is accepted for fidelity; the model has no signals.
   */
  waitTimeout(intr: boolean, timeout: Ns): number {
    void intr;
    if (!(timeout >= 0)) return -ERRNO.EINVAL;
    const ret = timeout > 0 ? timeout : 1;
    if (this.signaledFlag) return ret;
    if (!this.#enableSignaling()) return ret;
    if (timeout === 0) return this.isSignaled() ? 1 : 0;
    const start = this.clock.now;
    const left = waitOnClock(
      this.clock,
      timeout,
      () => this.isSignaled(),
      () => `${this}`,
    );
    const trace = this.clock.trace;
    if (trace?.enabled)
      trace.span(
        fenceTrack(this.context),
        FENCE_CAT,
        "dma_fence_wait",
        start,
        this.clock.now - start,
        { context: this.context, seqno: this.seqno, signaled: left > 0 },
      );
    return left;
  }

  /**
   * dma_fence_wait(): wait without a time limit. Returns 0, or a negative errno (never,
   * in the model: no signals). Throws if nothing on the clock can ever signal the fence.
   */
  wait(intr: boolean): number {
    const ret = this.waitTimeout(intr, MAX_SCHEDULE_TIMEOUT);
    return Math.min(ret, 0);
  }

  /**
   * dma_fence_set_deadline(): tell the implementation the fence is wanted by `deadline`
   * (absolute virtual ns). Ignored once signalled or without ops.setDeadline.
   */
  setDeadline(deadline: Ns): void {
    if (this.ops.setDeadline !== undefined && !this.isSignaled()) {
      this.ops.setDeadline(this, deadline);
    }
  }

  /** dma_fence_is_later(this, other): same context required (Linux WARNs; we throw). */
  isLater(other: DmaFence): boolean {
    if (this.context !== other.context) {
      throw new Error(
        `WARN_ON: dma_fence_is_later(${this}, ${other}): fences of different contexts`,
      );
    }
    return seqnoIsLater(this.seqno, other.seqno, this.ops.use64bitSeqno === true);
  }

  /** dma_fence_is_later_or_same(this, other). */
  isLaterOrSame(other: DmaFence): boolean {
    return this === other || this.isLater(other);
  }

  /**
   * dma_fence_later(f1, f2): of two fences of one context, the one that signals last, or
   * null if that one has already signalled.
   */
  static later(f1: DmaFence, f2: DmaFence): DmaFence | null {
    const last = f1.isLater(f2) ? f1 : f2;
    return last.isSignaled() ? null : last;
  }

  /** dma_fence_describe(): "driver timeline seq N [un]signalled" (no newline). */
  describe(): string {
    const state = this.isSignaled() ? "" : "un";
    return `${this.driverName} ${this.timelineName} seq ${this.seqno} ${state}signalled`;
  }

  /** dma_fence_get(): take a reference. */
  get(): this {
    if (this.#refcount <= 0) throw new Error(`dma_fence_get(${this}): fence already released`);
    this.#refcount++;
    return this;
  }

  /**
   * dma_fence_put(): drop a reference; the last one runs dma_fence_release: a fence
   * released unsignalled with callbacks pending gets -EDEADLK and is signalled (Linux
   * WARNs), then ops.release runs, once.
   */
  put(): void {
    if (this.#refcount <= 0) throw new Error(`dma_fence_put(${this}): fence already released`);
    this.#refcount--;
    if (this.#refcount > 0) return;
    if (this.#cbList.length > 0 && !this.signaledFlag) {
      this.#error = -EDEADLK;
      this.signal();
    }
    this.ops.release?.(this);
  }
}

/**
 * The wait loop shared by the fence waits: run the clock until `done()` or `timeout` ns
 * from now. Returns the remaining time (>= 1) on success, 0 on timeout.
 */
export function waitOnClock(
  clock: VirtualClock,
  timeout: Ns,
  done: () => boolean,
  what: () => string,
): number {
  if (timeout === MAX_SCHEDULE_TIMEOUT) {
    if (!clock.runUntilCondition(done)) {
      throw new SimulationError(
        "would-block-forever",
        `dma_fence_wait: waiting forever on ${what()}: nothing scheduled can ever signal it`,
      );
    }
    return MAX_SCHEDULE_TIMEOUT;
  }
  const deadline = clock.now + timeout;
  if (!clock.runUntilCondition(done, deadline)) return 0;
  return Math.max(1, deadline - clock.now);
}

/** Result of {@link dmaFenceWaitAnyTimeout}: `ret` as Linux, `idx` the first signalled. */
export interface WaitAnyResult {
  readonly ret: number;
  readonly idx: number | undefined;
}

/**
 * dma_fence_wait_any_timeout(): wait until any of `fences` signals. Returns -EINVAL for
 * an empty list or negative timeout; with timeout 0, 1 if one is signalled else 0;
 * otherwise the remaining time or 0 on timeout. `idx` is the first signalled fence's
 * index, meaningful on a positive return.
 */
export function dmaFenceWaitAnyTimeout(
  fences: readonly DmaFence[],
  intr: boolean,
  timeout: Ns,
): WaitAnyResult {
  void intr;
  if (fences.length === 0 || !(timeout >= 0)) return { ret: -ERRNO.EINVAL, idx: undefined };
  if (timeout === 0) {
    const i = fences.findIndex((f) => f.isSignaled());
    return i >= 0 ? { ret: 1, idx: i } : { ret: 0, idx: undefined };
  }
  const clock = fences[0]!.clock;
  const cbs: DmaFenceCb[] = [];
  let idx: number | undefined;
  let ret = timeout;
  try {
    for (let i = 0; i < fences.length; i++) {
      const cb = new DmaFenceCb(() => {});
      if (fences[i]!.addCallback(cb) !== 0) {
        idx = i;
        return { ret, idx };
      }
      cbs.push(cb);
    }
    const firstSignaled = (): boolean => {
      const i = fences.findIndex((f) => f.isSignaled());
      if (i < 0) return false;
      idx = i;
      return true;
    };
    const start = clock.now;
    ret = waitOnClock(clock, timeout, firstSignaled, () => `${fences.length} fences`);
    if (clock.trace?.enabled)
      clock.trace.span("fences", FENCE_CAT, "dma_fence_wait_any", start, clock.now - start, {
        fences: fences.map((f) => `${f.context}:${f.seqno}`).join(" "),
        signaled: ret > 0,
      });
    return { ret, idx: ret > 0 ? idx : undefined };
  } finally {
    cbs.forEach((cb, i) => {
      fences[i]!.removeCallback(cb);
    });
  }
}

/** dma_fence_stub_ops: driver and timeline "stub". */
const STUB_OPS: DmaFenceOps = {
  getDriverName: () => "stub",
  getTimelineName: () => "stub",
};

const stubs = new WeakMap<FenceContextAllocator, DmaFence>();

/**
 * dma_fence_get_stub(): the always-signalled stub fence (context 0, seqno 0), one per
 * simulated kernel; signalled, with its timestamp, on first use.
 */
export function dmaFenceGetStub(env: FenceEnv): DmaFence {
  let stub = stubs.get(env.contexts);
  if (stub === undefined) {
    stub = new DmaFence(STUB_OPS, env.clock, 0, 0);
    stub.signal();
    stubs.set(env.contexts, stub);
  }
  return stub.get();
}

/**
 * dma_fence_allocate_private_stub(timestamp): a new signalled stub fence on a fresh
 * context, with the given signal timestamp.
 */
export function dmaFenceAllocatePrivateStub(env: FenceEnv, timestamp: Ns): DmaFence {
  const fence = new DmaFence(STUB_OPS, env.clock, env.contexts.alloc(1), 0);
  fence.enableSwSignaling();
  fence.signalTimestamp(timestamp);
  return fence;
}
