/**
 * The GPU scheduler's job flow (drivers/gpu/drm/scheduler/sched_main.c), reduced to one
 * in-order ring per device: a job collects its dependencies at submit
 * (drm_sched_job_add_dependency, drm_sched_job_add_implicit_dependencies: a job reading
 * an object waits for its writers, a job writing it waits for everyone), publishes its
 * finished fence in the objects' reservations (READ usage on what it reads, WRITE on
 * what it writes), and runs once every dependency has signalled and every earlier job
 * has started. The driver's run callback does the DMA and calls `done` at the end, which
 * signals the fence.
 *
 * Used by the model's accelerator (drivers/accel/simnpu); simgpu has the same flow
 * written out in its own file.
 */

import { DmaFence, DmaFenceCb, type DmaFenceOps } from "../../../dma-buf/dma-fence.js";
import {
  DMA_RESV_USAGE_READ,
  DMA_RESV_USAGE_WRITE,
  type DmaResv,
} from "../../../dma-buf/dma-resv.js";
import type { DriverHost } from "../../host.js";

/** A job as the driver hands it to the scheduler. */
export interface DrmSchedJob {
  /** For traces and messages. */
  readonly label: string;
  /** Starts the job's hardware work; call `done` when it has finished. */
  run(done: () => void): void;
}

interface QueuedJob {
  readonly job: DrmSchedJob;
  readonly fence: DmaFence;
  readonly deps: DmaFence[];
  started: boolean;
}

/** dma_resv_add_fence under the lock, with the slot reserved first. */
export function drmSchedAddFence(
  resv: DmaResv,
  fence: DmaFence,
  usage: typeof DMA_RESV_USAGE_READ | typeof DMA_RESV_USAGE_WRITE,
): void {
  resv.lock();
  try {
    resv.reserveFences(1);
    resv.addFence(fence, usage);
  } finally {
    resv.unlock();
  }
}

/** struct drm_gpu_scheduler with one run queue: a fence timeline and jobs in order. */
export class DrmGpuScheduler {
  /** dma_fence_context_alloc(1): the scheduler's one timeline. */
  readonly fenceContext: number;
  #seqno = 0;
  readonly #queue: QueuedJob[] = [];
  jobsCompleted = 0;

  constructor(
    readonly host: DriverHost,
    readonly fenceOps: DmaFenceOps,
  ) {
    this.fenceContext = host.fences.contexts.alloc(1);
  }

  /** Jobs submitted and not finished. */
  get pendingJobs(): number {
    return this.#queue.length;
  }

  /**
   * drm_sched_job_init + the dependencies + drm_sched_job_arm + drm_sched_entity_push_job:
   * `explicit` are in-fences (sync_file), `reads`/`writes` the reservations the job reads
   * and writes. Returns the job's finished fence (a new reference for the caller) and its
   * seqno; the fence is already in the reservations.
   */
  push(
    job: DrmSchedJob,
    explicit: readonly DmaFence[],
    reads: readonly DmaResv[],
    writes: readonly DmaResv[],
  ): { fence: DmaFence; seqno: number } {
    const deps = [...explicit];
    for (const r of reads) deps.push(...r.getFences(DMA_RESV_USAGE_WRITE));
    for (const w of writes) deps.push(...w.getFences(DMA_RESV_USAGE_READ));
    const seqno = ++this.#seqno;
    const fence = new DmaFence(this.fenceOps, this.host.machine.clock, this.fenceContext, seqno);
    for (const r of reads) if (!writes.includes(r)) drmSchedAddFence(r, fence, DMA_RESV_USAGE_READ);
    for (const w of writes) drmSchedAddFence(w, fence, DMA_RESV_USAGE_WRITE);
    const q: QueuedJob = { job, fence, deps, started: false };
    this.#queue.push(q);
    for (const f of deps) f.addCallback(new DmaFenceCb(() => this.#pump()));
    fence.get();
    this.#pump();
    return { fence, seqno };
  }

  /** drm_sched_main: start queued jobs in order once their dependencies have signalled. */
  #pump(): void {
    for (;;) {
      const q = this.#queue.find((j) => !j.started);
      if (q === undefined || !q.deps.every((f) => f.isSignaled())) return;
      q.started = true;
      q.job.run(() => this.#done(q));
    }
  }

  /** drm_sched_job_done: signal, drop the job, run what waited. */
  #done(q: QueuedJob): void {
    q.fence.signal();
    this.#queue.splice(this.#queue.indexOf(q), 1);
    this.jobsCompleted++;
    for (const f of q.deps) f.put();
    q.fence.put();
    this.#pump();
  }
}
