/**
 * sw_sync: software timelines for testing explicit synchronisation
 * (drivers/dma-buf/sw_sync.c, drivers/dma-buf/sync_debug.h).
 *
 * A timeline (one per open of <debugfs>/sync/sw_sync) has its own fence context and a
 * 32-bit value starting at 0. SW_SYNC_IOC_CREATE_FENCE makes a sync_pt: a fence whose
 * seqno is the requested value; it is signalled as soon as the timeline's value reaches
 * it (32-bit wrap-around compare), at once if it already has. Creating a point at a value
 * that already has a pending point returns that same point. SW_SYNC_IOC_INC advances the
 * value (in steps of at most INT_MAX) and signals the pending points in value order.
 * Closing the timeline signals the points still pending, with -ENOENT.
 *
 * Deadlines (dma_fence_set_deadline on a sync_pt) keep the earliest one given;
 * SW_SYNC_GET_DEADLINE reports it, ENOENT when none was set, EINVAL for a fence that is
 * not a sync_pt. Driver name "sw_sync", timeline name the timeline's (31 bytes at most).
 */

import { ERRNO, KernelError } from "../errno.js";
import type { Ns } from "../machine/clock.js";
import {
  DMA_FENCE_FLAG_USER_BITS,
  DmaFence,
  type DmaFenceOps,
  type FenceEnv,
  seqnoIsLater,
} from "./dma-fence.js";
import { strscpy } from "./sync-file.js";

/** SW_SYNC_HAS_DEADLINE_BIT: a deadline has been set on the sync_pt. */
export const SW_SYNC_HAS_DEADLINE_BIT = DMA_FENCE_FLAG_USER_BITS;
/** INT_MAX: the largest single step sync_timeline_signal is given. */
const INT_MAX = 0x7fff_ffff;

/** struct sync_pt: a fence on a sw_sync timeline. Made by {@link SwSyncTimeline.createFence}. */
export class SyncPt extends DmaFence {
  readonly timeline: SwSyncTimeline;
  #deadline: Ns | undefined;

  static readonly ops: DmaFenceOps = {
    getDriverName: () => "sw_sync",
    getTimelineName: (f) => SyncPt.#of(f).timeline.name,
    enableSignaling: () => true,
    signaled: (f) => !seqnoIsLater(f.seqno, SyncPt.#of(f).timeline.value),
    release: (f) => SyncPt.#of(f).timeline.unlinkPoint(SyncPt.#of(f)),
    setDeadline: (f, deadline) => SyncPt.#of(f).#setDeadline(deadline),
  };

  static #of(f: DmaFence): SyncPt {
    if (!(f instanceof SyncPt)) throw new Error(`timeline_fence_ops on ${f}`);
    return f;
  }

  /** dma_fence_init(&pt->base, &timeline_fence_ops, &obj->lock, obj->context, value). */
  constructor(timeline: SwSyncTimeline, value: number) {
    super(SyncPt.ops, timeline.env.clock, timeline.context, value);
    this.timeline = timeline;
  }

  /** pt->deadline, undefined unless SW_SYNC_HAS_DEADLINE_BIT is set. */
  get deadline(): Ns | undefined {
    return this.#deadline;
  }

  /** timeline_fence_set_deadline(): keep the earliest deadline. */
  #setDeadline(deadline: Ns): void {
    if (this.testBit(SW_SYNC_HAS_DEADLINE_BIT)) {
      if (deadline < this.#deadline!) this.#deadline = deadline;
    } else {
      this.#deadline = deadline;
      this.setUserBit(SW_SYNC_HAS_DEADLINE_BIT);
    }
  }
}

/** dma_fence_to_sync_pt(): the sync_pt, or null if `fence` is not one. */
export function dmaFenceToSyncPt(fence: DmaFence): SyncPt | null {
  return fence instanceof SyncPt ? fence : null;
}

/** struct sync_timeline and the sw_sync ioctls on it. */
export class SwSyncTimeline {
  readonly env: FenceEnv;
  /** obj->context, from dma_fence_context_alloc(1). */
  readonly context: number;
  /** obj->name (char name[32]). */
  readonly name: string;
  #value = 0;
  /** obj->pt_list: pending points in value order. */
  #ptList: SyncPt[] = [];
  #closed = false;

  /** sync_timeline_create(name). */
  constructor(env: FenceEnv, name: string) {
    this.env = env;
    this.context = env.contexts.alloc(1);
    this.name = strscpy(name);
  }

  /** obj->value: the last value signalled, 32-bit. */
  get value(): number {
    return this.#value;
  }

  /** The pending points, in signalling order. */
  get pendingPoints(): readonly SyncPt[] {
    return [...this.#ptList];
  }

  /**
   * sync_pt_create(obj, value) (SW_SYNC_IOC_CREATE_FENCE): a point at `value` (u32). An
   * already-reached value gives a signalled point; a value with a pending point gives
   * that point (with a new reference).
   */
  createFence(value: number): SyncPt {
    if (this.#closed) throw new Error("sw_sync: timeline already released");
    if (!Number.isInteger(value) || value < 0 || value > 0xffff_ffff) {
      throw new RangeError(`SW_SYNC_IOC_CREATE_FENCE: value ${value} is not a __u32`);
    }
    const pt = new SyncPt(this, value);
    if (pt.isSignaled()) return pt;
    let i = 0;
    for (; i < this.#ptList.length; i++) {
      const other = this.#ptList[i]!;
      const cmp = (value - other.seqno) | 0;
      if (cmp === 0 && other.refcount > 0) return other.get();
      if (cmp < 0) break;
    }
    this.#ptList.splice(i, 0, pt);
    return pt;
  }

  /**
   * sync_timeline_signal(obj, inc): advance the value by `inc` and signal, in order, the
   * pending points it has reached.
   */
  signal(inc: number): void {
    this.#value = (this.#value + inc) >>> 0;
    while (this.#ptList.length > 0) {
      const pt = this.#ptList[0]!;
      if (seqnoIsLater(pt.seqno, this.#value)) break;
      this.#ptList.shift();
      pt.signal();
    }
  }

  /** sw_sync_ioctl_inc() (SW_SYNC_IOC_INC): advance by a __u32, INT_MAX at a time. */
  inc(value: number): void {
    if (!Number.isInteger(value) || value < 0 || value > 0xffff_ffff) {
      throw new RangeError(`SW_SYNC_IOC_INC: ${value} is not a __u32`);
    }
    while (value > INT_MAX) {
      this.signal(INT_MAX);
      value -= INT_MAX;
    }
    this.signal(value);
  }

  /** timeline_fence_release(): a released point leaves the pending list. */
  unlinkPoint(pt: SyncPt): void {
    const i = this.#ptList.indexOf(pt);
    if (i >= 0) this.#ptList.splice(i, 1);
  }

  /**
   * sw_sync_debugfs_release(): closing the timeline signals every pending point with
   * -ENOENT.
   */
  release(): void {
    if (this.#closed) throw new Error("sw_sync_debugfs_release: released twice");
    this.#closed = true;
    const pts = this.#ptList;
    this.#ptList = [];
    for (const pt of pts) {
      pt.setError(-ERRNO.ENOENT);
      pt.signal();
    }
  }

  /**
   * sw_sync_ioctl_get_deadline() (SW_SYNC_GET_DEADLINE) on the fence of a sync_file:
   * the earliest deadline set. EINVAL if `fence` is not a sync_pt, ENOENT if no deadline
   * was set. As in Linux, the point may belong to any sw_sync timeline, not only this one.
   */
  getDeadline(fence: DmaFence): Ns {
    const pt = dmaFenceToSyncPt(fence);
    if (pt === null) throw new KernelError("EINVAL", "SW_SYNC_GET_DEADLINE: not a sw_sync fence");
    if (!pt.testBit(SW_SYNC_HAS_DEADLINE_BIT)) {
      throw new KernelError("ENOENT", "SW_SYNC_GET_DEADLINE: no deadline set on this fence");
    }
    return pt.deadline!;
  }
}
