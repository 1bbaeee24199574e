/**
 * The GPU scheduler's job flow (drivers/gpu/drm/scheduler/sched_main.c, sched_entity.c),
 * reduced to one in-order ring per device with one entity. A driver's submit ioctl does
 * what a DRM driver does with drm_sched:
 *
 * 1. {@link DrmGpuScheduler.jobInit} (drm_sched_job_init) with the driver's run_job and
 *    free_job;
 * 2. {@link DrmSchedJob.addDependency} for in-fences (drm_sched_job_add_dependency) and
 *    {@link DrmSchedJob.addImplicitDependencies} per object
 *    (drm_sched_job_add_implicit_dependencies: a job reading an object waits for its
 *    writers, a job writing it waits for everyone, dma_resv_usage_rw);
 * 3. {@link DrmSchedJob.arm} (drm_sched_job_arm): the job's fence and seqno on the
 *    scheduler's timeline, which the driver publishes in the objects' reservations
 *    ({@link drmSchedAddFence}) and may hand out as a sync_file;
 * 4. {@link DrmSchedJob.push} (drm_sched_entity_push_job).
 *
 * A pushed job runs once every dependency has signalled and every earlier job has
 * started; its run_job does the DMA and calls `done` at the end, which signals the fence
 * (drm_sched_job_done), then free_job drops the driver's references.
 * {@link DrmGpuScheduler.push} is the whole sequence in one call for drivers that publish
 * READ on what a job reads and WRITE on what it writes.
 *
 * Where this differs from drm_sched, on purpose (the reports depend on it):
 * - one fence per job, the finished fence, on a context of its own (drm_sched allocates
 *   two per entity: scheduled and finished), with the driver's fence ops (driver and
 *   timeline name) rather than "drm_sched" and the scheduler's name;
 * - a dependency on an earlier job of the same scheduler is waited for until it has
 *   finished: drm_sched_entity_add_dependency_cb drops fences of the job's own entity and
 *   waits only for the scheduled fence of another entity's job on the same scheduler,
 *   relying on the ring's order. The model starts a job (its DMA mapping and its
 *   transfer) only when what it reads has been written;
 * - no credit limit: every job whose dependencies have signalled is handed to the
 *   hardware, whose DMA queue orders the transfers;
 * - dependencies are not de-duplicated per context (drm_sched_job_add_dependency keeps
 *   the later fence of a context); a job waits for all of them either way.
 *
 * Used by the model's GPU (simgpu) and accelerator (drivers/accel/simnpu).
 */

import { DmaFence, DmaFenceCb, type DmaFenceOps } from "../../../dma-buf/dma-fence.js";
import {
  DMA_RESV_USAGE_READ,
  DMA_RESV_USAGE_WRITE,
  type DmaResv,
  dmaResvUsageRw,
} from "../../../dma-buf/dma-resv.js";
import type { DriverHost } from "../../host.js";

/** A job's backend callbacks (struct drm_sched_backend_ops, per job). */
export interface DrmSchedJobOps {
  /** For traces and messages. */
  readonly label: string;
  /** run_job: starts the job's hardware work; call `done` when it has finished. */
  run(done: () => void): void;
  /** free_job: after the fence has signalled, drop what the driver held for the job. */
  free?(): void;
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

/** struct drm_sched_job: one job from drm_sched_job_init to its end. */
export class DrmSchedJob {
  /** The dependencies, each a reference the job drops when it has finished. */
  readonly #deps: DmaFence[] = [];
  #fence: DmaFence | undefined;
  #seqno = 0;
  #pushed = false;
  /** Handed to run_job. */
  started = false;

  /** @internal Made by {@link DrmGpuScheduler.jobInit}. */
  constructor(
    readonly sched: DrmGpuScheduler,
    readonly ops: DrmSchedJobOps,
  ) {}

  /** The job's fence (s_fence->finished), set by {@link arm}. */
  get fence(): DmaFence {
    if (this.#fence === undefined) throw new Error(`drm_sched: ${this.ops.label} is not armed`);
    return this.#fence;
  }
  /** The fence's seqno on the scheduler's timeline, set by {@link arm}. */
  get seqno(): number {
    return this.#seqno;
  }
  get dependencies(): readonly DmaFence[] {
    return this.#deps;
  }

  /** drm_sched_job_add_dependency: wait for `fence` (the job takes over this reference). */
  addDependency(fence: DmaFence): void {
    this.#notPushed("drm_sched_job_add_dependency");
    this.#deps.push(fence);
  }

  /**
   * drm_sched_job_add_implicit_dependencies: the fences of `resv` a job accessing the
   * object must wait for, dma_resv_usage_rw(write): a writer waits for every reader and
   * writer (READ usage), a reader for the writers (WRITE usage).
   */
  addImplicitDependencies(resv: DmaResv, write: boolean): void {
    this.#notPushed("drm_sched_job_add_implicit_dependencies");
    this.#deps.push(...resv.getFences(dmaResvUsageRw(write)));
  }

  /**
   * drm_sched_job_arm: the job's fence, the next seqno of the scheduler's timeline. The
   * fence is the job's reference, valid until the job has finished: take another
   * (get()) to keep it past {@link push}.
   */
  arm(): DmaFence {
    if (this.#fence !== undefined) throw new Error(`drm_sched_job_arm: ${this.ops.label} twice`);
    this.#seqno = this.sched.nextSeqno();
    this.#fence = new DmaFence(
      this.sched.fenceOps,
      this.sched.host.machine.clock,
      this.sched.fenceContext,
      this.#seqno,
    );
    return this.#fence;
  }

  /** drm_sched_entity_push_job: queue the armed job; it may start at once. */
  push(): void {
    this.#notPushed("drm_sched_entity_push_job");
    if (this.#fence === undefined)
      throw new Error(`drm_sched_entity_push_job: ${this.ops.label} is not armed`);
    this.#pushed = true;
    this.sched.queue(this);
  }

  /**
   * drm_sched_job_cleanup: drop the dependencies' references. A driver calls it on its
   * error path only while the job is not armed: drm_sched_job_arm is the point of no
   * return (the fence exists and may be published), after which the job must be pushed
   * and is cleaned up when it has finished (sched_main.c).
   */
  cleanup(): void {
    if (this.#fence !== undefined && !this.#pushed)
      throw new Error(`drm_sched_job_cleanup: ${this.ops.label} is armed and must be pushed`);
    for (const f of this.#deps) f.put();
    this.#deps.length = 0;
  }

  #notPushed(what: string): void {
    if (this.#pushed) throw new Error(`${what}: ${this.ops.label} was already pushed`);
  }
}

/** struct drm_gpu_scheduler with one run queue: a fence timeline and jobs in order. */
export class DrmGpuScheduler {
  /** dma_fence_context_alloc(1): the scheduler's one timeline. */
  readonly fenceContext: number;
  #seqno = 0;
  readonly #queue: DrmSchedJob[] = [];
  jobsCompleted = 0;

  constructor(
    readonly host: DriverHost,
    readonly fenceOps: DmaFenceOps,
  ) {
    this.fenceContext = host.fences.contexts.alloc(1);
  }

  /** Jobs pushed and not finished. */
  get pendingJobs(): number {
    return this.#queue.length;
  }

  /** drm_sched_job_init: a job of this scheduler, to collect dependencies, arm and push. */
  jobInit(ops: DrmSchedJobOps): DrmSchedJob {
    return new DrmSchedJob(this, ops);
  }

  /** @internal The entity's fence_seq (atomic_inc_return in drm_sched_fence_init). */
  nextSeqno(): number {
    return ++this.#seqno;
  }

  /**
   * The whole flow for a job that reads `reads` and writes `writes`: init, `explicit`
   * in-fences (sync_file) and the implicit dependencies, arm, the fence into the
   * reservations (READ on what it only reads, WRITE on what it writes), push. Returns
   * the job's fence (a new reference for the caller) and its seqno.
   */
  push(
    ops: DrmSchedJobOps,
    explicit: readonly DmaFence[],
    reads: readonly DmaResv[],
    writes: readonly DmaResv[],
  ): { fence: DmaFence; seqno: number } {
    const job = this.jobInit(ops);
    for (const f of explicit) job.addDependency(f);
    for (const r of reads) job.addImplicitDependencies(r, false);
    for (const w of writes) job.addImplicitDependencies(w, true);
    const fence = job.arm();
    for (const r of reads) if (!writes.includes(r)) drmSchedAddFence(r, fence, DMA_RESV_USAGE_READ);
    for (const w of writes) drmSchedAddFence(w, fence, DMA_RESV_USAGE_WRITE);
    fence.get();
    job.push();
    return { fence, seqno: job.seqno };
  }

  /** @internal drm_sched_entity_push_job's half: the job joins the run queue. */
  queue(job: DrmSchedJob): void {
    this.#queue.push(job);
    for (const f of job.dependencies) f.addCallback(new DmaFenceCb(() => this.#pump()));
    this.#pump();
  }

  /** drm_sched_run_job_work: start queued jobs in order once their dependencies have signalled. */
  #pump(): void {
    for (;;) {
      const job = this.#queue.find((j) => !j.started);
      if (job === undefined || !job.dependencies.every((f) => f.isSignaled())) return;
      job.started = true;
      job.ops.run(() => this.#done(job));
    }
  }

  /** drm_sched_job_done, then free_job: signal, drop the job, run what waited. */
  #done(job: DrmSchedJob): void {
    job.fence.signal();
    this.#queue.splice(this.#queue.indexOf(job), 1);
    this.jobsCompleted++;
    job.cleanup();
    job.fence.put();
    job.ops.free?.();
    this.#pump();
  }
}
