/**
 * struct dma_resv: the reservation object of a buffer, its lock and the fences of the
 * work using it (drivers/dma-buf/dma-resv.c, include/linux/dma-resv.h).
 *
 * Every fence is stored with a usage: KERNEL (0, memory management: moves, clears),
 * WRITE (1, implicit-sync writers), READ (2, implicit-sync readers), BOOKKEEP (3, not
 * for implicit sync). A query for usage U sees every fence whose usage is <= U: asking
 * for READ returns KERNEL, WRITE and READ fences.
 *
 * Writers hold the lock (dma_resv_lock, a ww_mutex of reservation_ww_class). Before
 * adding fences they reserve slots (dma_resv_reserve_fences); the reservation lasts
 * until the unlock, as CONFIG_DEBUG_MUTEXES checks (dma_resv_reset_max_fences). Adding a
 * fence replaces an existing one when both are of one context, the new fence is the
 * same or later, and its usage is the same or stricter (lower); or when the existing
 * fence has signalled. Each slot holds a reference to its fence (taken on add, dropped
 * on replace and when a reservation drops signalled fences). Readers (get_fences,
 * test_signaled, wait_timeout, set_deadline) use the unlocked iteration, which skips
 * signalled fences; the locked iteration (dma_resv_for_each_fence) does not.
 *
 * Model choices: the ww_mutex is single-threaded. lock() on a free object takes it;
 * with the same acquire context again it returns -EALREADY; a younger context that
 * already holds other locks and meets an older holder gets -EDEADLK (wait-die, as
 * reservation_ww_class); anything that would sleep on the lock throws, since no other
 * thread could ever release it. Calls that need the lock and lack it throw an Error
 * naming dma_resv_lock, as lockdep's dma_resv_assert_held would. The kernel's WARN_ON
 * and BUG_ON on caller bugs (containers added, adding without a reserved slot) throw.
 */

import { ERRNO } from "../errno.js";
import type { Ns } from "../machine/clock.js";
import { SimulationError } from "../machine/outcome.js";
import type { DmaFence, FenceEnv } from "./dma-fence.js";
import { DmaFenceArray } from "./dma-fence-array.js";

/** DMA_RESV_USAGE_KERNEL: kernel memory management (evictions, clears). */
export const DMA_RESV_USAGE_KERNEL = 0;
/** DMA_RESV_USAGE_WRITE: implicit-sync writers. */
export const DMA_RESV_USAGE_WRITE = 1;
/** DMA_RESV_USAGE_READ: implicit-sync readers. */
export const DMA_RESV_USAGE_READ = 2;
/** DMA_RESV_USAGE_BOOKKEEP: tracked, but not for implicit sync. */
export const DMA_RESV_USAGE_BOOKKEEP = 3;

/** enum dma_resv_usage. */
export type DmaResvUsage =
  | typeof DMA_RESV_USAGE_KERNEL
  | typeof DMA_RESV_USAGE_WRITE
  | typeof DMA_RESV_USAGE_READ
  | typeof DMA_RESV_USAGE_BOOKKEEP;

/** The names dma_resv_describe prints for each usage. */
export const DMA_RESV_USAGE_NAMES: readonly string[] = ["kernel", "write", "read", "bookkeep"];

/** EALREADY (114): ww_mutex_lock with a context that already holds the lock. */
export const EALREADY = 114;
/** EDEADLK (35): ww_mutex_lock backoff: drop all locks and retry with lock_slow. */
export const EDEADLK = 35;

/**
 * dma_resv_usage_rw(write): the usage an implicit-sync access must wait for. A writer
 * waits for readers and writers (READ), a reader only for writers (WRITE).
 */
export function dmaResvUsageRw(write: boolean): DmaResvUsage {
  return write ? DMA_RESV_USAGE_READ : DMA_RESV_USAGE_WRITE;
}

function checkUsage(usage: number, fn: string): asserts usage is DmaResvUsage {
  if (
    !Number.isInteger(usage) ||
    usage < DMA_RESV_USAGE_KERNEL ||
    usage > DMA_RESV_USAGE_BOOKKEEP
  ) {
    throw new RangeError(`${fn}: bad dma_resv_usage ${usage}`);
  }
}

/** struct ww_class (reservation_ww_class): hands out acquire-context stamps in order. */
export class WwClass {
  #stamp = 0;
  constructor(readonly name = "reservation_ww_class") {}

  /** The next stamp: smaller stamps are older transactions. */
  nextStamp(): number {
    return ++this.#stamp;
  }
}

/** struct ww_acquire_ctx: one locking transaction over several reservation objects. */
export class WwAcquireCtx {
  readonly stamp: number;
  /** Locks currently held through this context. */
  acquired = 0;
  #done = false;

  /** ww_acquire_init(ctx, ww_class). */
  constructor(readonly wwClass: WwClass) {
    this.stamp = wwClass.nextStamp();
  }

  /** ww_acquire_done(): no more locks will be taken in this transaction. */
  done(): void {
    this.#done = true;
  }

  /** Whether done() was called. */
  get isDone(): boolean {
    return this.#done;
  }

  /** ww_acquire_fini(): the transaction is over; every lock must be released by now. */
  fini(): void {
    if (this.acquired !== 0) {
      throw new Error(`ww_acquire_fini: ${this.acquired} lock(s) still held by this context`);
    }
  }
}

/** One fence slot of the reservation list. */
export interface DmaResvEntry {
  readonly fence: DmaFence;
  readonly usage: DmaResvUsage;
}

/** One line of {@link DmaResv.describe}. */
export interface DmaResvFenceDescription {
  readonly usage: string;
  readonly driver: string;
  readonly timeline: string;
  readonly context: number;
  readonly seqno: number;
  readonly signaled: boolean;
}

interface Holder {
  readonly ctx: WwAcquireCtx | null;
}

/** struct dma_resv and the functions of dma-resv.c. */
export class DmaResv {
  readonly env: FenceEnv;
  readonly wwClass: WwClass;
  #entries: { fence: DmaFence; usage: DmaResvUsage }[] = [];
  /** dma_resv_list.max_fences; 0 before the first reservation. */
  #maxFences = 0;
  #holder: Holder | null = null;

  /** dma_resv_init(obj). `wwClass` defaults to a private reservation_ww_class. */
  constructor(env: FenceEnv, wwClass: WwClass = new WwClass()) {
    this.env = env;
    this.wwClass = wwClass;
  }

  // ---- the lock ----

  /** Whether the lock is held (dma_resv_is_locked). */
  get isLocked(): boolean {
    return this.#holder !== null;
  }

  /** The acquire context holding the lock (dma_resv_locking_ctx), null if none. */
  get lockingCtx(): WwAcquireCtx | null {
    return this.#holder?.ctx ?? null;
  }

  /**
   * dma_resv_lock(obj, ctx): take the lock. 0 on success; -EALREADY if `ctx` already
   * holds it; -EDEADLK if `ctx` must back off (wait-die). Throws where the real call
   * would sleep forever in a single-threaded model.
   */
  lock(ctx: WwAcquireCtx | null = null): number {
    if (ctx?.isDone) throw new Error("dma_resv_lock: ww_acquire_done() already called on ctx");
    const holder = this.#holder;
    if (holder === null) {
      this.#holder = { ctx };
      if (ctx !== null) ctx.acquired++;
      return 0;
    }
    if (ctx !== null && holder.ctx === ctx) return -EALREADY;
    if (ctx !== null && holder.ctx !== null && ctx.stamp > holder.ctx.stamp && ctx.acquired > 0) {
      return -EDEADLK;
    }
    throw new SimulationError(
      "deadlock",
      "dma_resv_lock: the reservation object is locked by someone else and nothing could release it (deadlock)",
    );
  }

  /** dma_resv_lock_interruptible(): as lock(); the model has no signals (no -EINTR). */
  lockInterruptible(ctx: WwAcquireCtx | null = null): number {
    return this.lock(ctx);
  }

  /** dma_resv_lock_slow(obj, ctx): after -EDEADLK, with every other lock dropped. */
  lockSlow(ctx: WwAcquireCtx): void {
    if (ctx.acquired !== 0) {
      throw new Error("dma_resv_lock_slow: drop every other lock of the context first");
    }
    const r = this.lock(ctx);
    if (r !== 0) throw new Error(`dma_resv_lock_slow: unexpected ${r}`);
  }

  /** dma_resv_trylock(): take the lock if free. */
  trylock(): boolean {
    if (this.#holder !== null) return false;
    this.#holder = { ctx: null };
    return true;
  }

  /**
   * dma_resv_unlock(): release the lock. Like a CONFIG_DEBUG_MUTEXES kernel, reserved
   * slots do not outlive the lock (dma_resv_reset_max_fences).
   */
  unlock(): void {
    this.assertHeld("dma_resv_unlock");
    this.#maxFences = this.#entries.length;
    const ctx = this.#holder!.ctx;
    if (ctx !== null) ctx.acquired--;
    this.#holder = null;
  }

  /** dma_resv_assert_held(): throws, naming `fn` and the missing dma_resv_lock. */
  assertHeld(fn: string): void {
    if (this.#holder === null) {
      throw new Error(
        `${fn}: dma_resv_lock() not held (lockdep: dma_resv_assert_held(obj) failed)`,
      );
    }
  }

  // ---- fences, under the lock ----

  /** dma_resv_list.num_fences. */
  get numFences(): number {
    return this.#entries.length;
  }

  /** dma_resv_list.max_fences: slots available before another reservation is needed. */
  get maxFences(): number {
    return this.#maxFences;
  }

  /**
   * dma_resv_reserve_fences(obj, num): make room for `num` more fences. 0, or -EINVAL for
   * num 0 (Linux WARNs). Growing the list drops the fences that have signalled.
   */
  reserveFences(num: number): number {
    this.assertHeld("dma_resv_reserve_fences");
    if (!Number.isInteger(num) || num < 0) throw new RangeError(`dma_resv_reserve_fences(${num})`);
    if (num === 0) return -ERRNO.EINVAL;
    let max: number;
    if (this.#maxFences > 0) {
      if (this.#entries.length + num <= this.#maxFences) return 0;
      max = Math.max(this.#entries.length + num, this.#maxFences * 2);
    } else {
      max = Math.max(4, 2 ** Math.ceil(Math.log2(num)));
    }
    const kept = this.#entries.filter((e) => !e.fence.isSignaled());
    const dropped = this.#entries.filter((e) => !kept.includes(e));
    this.#entries = kept;
    this.#maxFences = max;
    for (const e of dropped) e.fence.put();
    return 0;
  }

  /**
   * dma_resv_add_fence(obj, fence, usage): add `fence` in a reserved slot, or in place of
   * an older fence of its context with the same or a weaker usage, or of a signalled one.
   */
  addFence(fence: DmaFence, usage: DmaResvUsage): void {
    this.assertHeld("dma_resv_add_fence");
    checkUsage(usage, "dma_resv_add_fence");
    if (fence.isContainer) {
      throw new Error(
        `WARN_ON: dma_resv_add_fence(${fence}): containers must be added fence by fence (dma_fence_unwrap)`,
      );
    }
    for (const e of this.#entries) {
      if (
        (e.fence.context === fence.context && e.usage >= usage && fence.isLaterOrSame(e.fence)) ||
        e.fence.isSignaled()
      ) {
        const old = e.fence;
        e.fence = fence.get();
        e.usage = usage;
        old.put();
        return;
      }
    }
    if (this.#entries.length >= this.#maxFences) {
      throw new Error(
        `BUG_ON: dma_resv_add_fence(${fence}): no free slot; call dma_resv_reserve_fences() under this dma_resv_lock() first`,
      );
    }
    this.#entries.push({ fence: fence.get(), usage });
  }

  /**
   * dma_resv_replace_fences(obj, context, replacement, usage): every fence of `context`
   * becomes `replacement` with `usage`.
   */
  replaceFences(context: number, replacement: DmaFence, usage: DmaResvUsage): void {
    this.assertHeld("dma_resv_replace_fences");
    checkUsage(usage, "dma_resv_replace_fences");
    for (const e of this.#entries) {
      if (e.fence.context !== context) continue;
      const old = e.fence;
      e.fence = replacement.get();
      e.usage = usage;
      old.put();
    }
  }

  /**
   * dma_resv_for_each_fence(cursor, obj, usage, fence): every fence of usage <= `usage`,
   * signalled or not, in slot order. Needs the lock.
   */
  *fences(usage: DmaResvUsage): Generator<DmaResvEntry, void, undefined> {
    this.assertHeld("dma_resv_iter_first");
    checkUsage(usage, "dma_resv_iter_first");
    for (let i = 0; i < this.#entries.length; i++) {
      this.assertHeld("dma_resv_iter_next");
      const e = this.#entries[i]!;
      if (e.usage <= usage) yield { fence: e.fence, usage: e.usage };
    }
  }

  /**
   * dma_resv_for_each_fence_unlocked(cursor, fence): every *unsignalled* fence of usage
   * <= `usage`, in slot order. No lock needed.
   */
  *fencesUnlocked(usage: DmaResvUsage): Generator<DmaResvEntry, void, undefined> {
    checkUsage(usage, "dma_resv_iter_first_unlocked");
    const snapshot = this.#entries.map((e) => ({ fence: e.fence, usage: e.usage }));
    for (const e of snapshot) {
      if (!e.fence.isSignaled() && usage >= e.usage) yield e;
    }
  }

  /**
   * dma_resv_get_fences(obj, usage): the unsignalled fences of usage <= `usage`, each
   * with a new reference, as in Linux.
   */
  getFences(usage: DmaResvUsage): DmaFence[] {
    return [...this.fencesUnlocked(usage)].map((e) => e.fence.get());
  }

  /**
   * dma_resv_get_singleton(obj, usage): one fence for all of getFences(usage): null for
   * none, the fence itself for one, else a new dma_fence_array (fresh context, seqno 1).
   */
  getSingleton(usage: DmaResvUsage): DmaFence | null {
    const fences = this.getFences(usage);
    if (fences.length === 0) return null;
    if (fences.length === 1) return fences[0]!;
    return DmaFenceArray.create(this.env.clock, fences, this.env.contexts.alloc(1), 1, false);
  }

  /**
   * dma_resv_copy_fences(dst = this, src): replace this object's fences by src's
   * unsignalled ones (all usages). Needs this object's lock.
   */
  copyFences(src: DmaResv): number {
    this.assertHeld("dma_resv_copy_fences");
    const copied = [...src.fencesUnlocked(DMA_RESV_USAGE_BOOKKEEP)];
    const old = this.#entries;
    this.#entries = copied.map((e) => ({ fence: e.fence.get(), usage: e.usage }));
    this.#maxFences = copied.length;
    for (const e of old) e.fence.put();
    return 0;
  }

  /** dma_resv_fini(obj): drop the references to every fence. The object is dead after. */
  fini(): void {
    if (this.#holder !== null) throw new Error("dma_resv_fini: reservation object still locked");
    const old = this.#entries;
    this.#entries = [];
    this.#maxFences = 0;
    for (const e of old) e.fence.put();
  }

  /** dma_resv_test_signaled(obj, usage): have all fences of usage <= `usage` signalled? */
  testSignaled(usage: DmaResvUsage): boolean {
    for (const _ of this.fencesUnlocked(usage)) return false;
    return true;
  }

  /**
   * dma_resv_wait_timeout(obj, usage, intr, timeout): wait for every fence of usage <=
   * `usage`, one after the other, on the virtual clock. Returns the remaining time (> 0;
   * 1 when timeout was 0 and all had signalled), 0 on timeout, or a negative errno.
   */
  waitTimeout(usage: DmaResvUsage, intr: boolean, timeout: Ns): number {
    let ret = timeout > 0 ? timeout : 1;
    for (const { fence } of this.fencesUnlocked(usage)) {
      ret = fence.waitTimeout(intr, ret);
      if (ret <= 0) return ret;
    }
    return ret;
  }

  /** dma_resv_set_deadline(obj, usage, deadline): hint every fence of usage <= `usage`. */
  setDeadline(usage: DmaResvUsage, deadline: Ns): void {
    for (const { fence } of this.fencesUnlocked(usage)) fence.setDeadline(deadline);
  }

  /**
   * dma_resv_describe(obj, seq): the fences of usage <= `usage` (the kernel prints READ,
   * i.e. not BOOKKEEP), signalled or not. Needs the lock, like the debugfs caller.
   */
  describe(usage: DmaResvUsage = DMA_RESV_USAGE_READ): DmaResvFenceDescription[] {
    const out: DmaResvFenceDescription[] = [];
    for (const e of this.fences(usage)) {
      out.push({
        usage: DMA_RESV_USAGE_NAMES[e.usage]!,
        driver: e.fence.driverName,
        timeline: e.fence.timelineName,
        context: e.fence.context,
        seqno: e.fence.seqno,
        signaled: e.fence.isSignaled(),
      });
    }
    return out;
  }

  /** The seq_file text of dma_resv_describe: "\t<usage> fence:<dma_fence_describe>\n". */
  describeText(usage: DmaResvUsage = DMA_RESV_USAGE_READ): string {
    return this.describe(usage)
      .map(
        (d) =>
          `\t${d.usage} fence:${d.driver} ${d.timeline} seq ${d.seqno} ${d.signaled ? "" : "un"}signalled\n`,
      )
      .join("");
  }
}
