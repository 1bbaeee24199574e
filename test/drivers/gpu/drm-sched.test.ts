/**
 * The GPU scheduler (drm-sched.ts) as a driver uses it: drm_sched_job_init, the explicit
 * and implicit dependencies, drm_sched_job_arm, drm_sched_entity_push_job, run_job and
 * free_job; in-order start; one fence timeline; and, over random jobs on random objects,
 * that no job starts before what it depends on has finished.
 */

import assert from "node:assert/strict";
import { test } from "node:test";
import fc from "fast-check";
import { DmaFence, type DmaFenceOps } from "../../../src/dma-buf/dma-fence.js";
import {
  DMA_RESV_USAGE_READ,
  DMA_RESV_USAGE_WRITE,
  DmaResv,
} from "../../../src/dma-buf/dma-resv.js";
import {
  DrmGpuScheduler,
  type DrmSchedJobOps,
  drmSchedAddFence,
} from "../../../src/drivers/gpu/drm/drm-sched.js";
import { Kernel } from "../../../src/kernel/kernel.js";

const ops: DmaFenceOps = {
  getDriverName: () => "test",
  getTimelineName: () => "test-ring",
  use64bitSeqno: true,
};

/** Whether `a` holds exactly the fences of `b` (by identity), in any order. */
function sameFences(a: readonly DmaFence[], b: readonly DmaFence[]): boolean {
  return a.length === b.length && a.every((f) => b.includes(f));
}

/** A job whose hardware work ends when the test says so. */
function manualJob(label: string, log: string[]) {
  const state: { done?: () => void } = {};
  const jobOps: DrmSchedJobOps = {
    label,
    run: (done) => {
      log.push(`run ${label}`);
      state.done = done;
    },
    free: () => log.push(`free ${label}`),
  };
  return { jobOps, finish: () => state.done!() };
}

/** A kernel, a scheduler on it, and a fence of another timeline for jobs to wait on. */
function setup() {
  const k = new Kernel({ profile: "arm64" });
  const sched = new DrmGpuScheduler(k, ops);
  const gate = new DmaFence(ops, k.machine.clock, k.fences.contexts.alloc(1), 1);
  return { k, sched, gate, log: [] as string[] };
}

test("drm_sched: init, dependency, arm, push: the job runs when its in-fence signals, free_job after its fence", () => {
  const { sched, gate: inFence, log } = setup();
  const a = manualJob("a", log);
  const job = sched.jobInit(a.jobOps);
  assert.throws(() => job.fence, /not armed/);
  assert.throws(() => job.push(), /not armed/);
  job.addDependency(inFence.get());
  const fence = job.arm();
  assert.equal(fence.context, sched.fenceContext);
  assert.equal(job.seqno, 1);
  assert.equal(fence.seqno, 1);
  assert.equal(fence.ops.getTimelineName(fence), "test-ring");
  assert.throws(() => job.arm(), /twice/);
  fence.get();
  job.push();
  assert.throws(() => job.addDependency(inFence), /already pushed/);
  assert.deepEqual(log, [], "waits for the in-fence");
  assert.equal(sched.pendingJobs, 1);
  inFence.signal();
  assert.deepEqual(log, ["run a"]);
  assert.equal(fence.isSignaled(), false);
  a.finish();
  assert.equal(fence.isSignaled(), true);
  assert.deepEqual(log, ["run a", "free a"]);
  assert.equal(sched.pendingJobs, 0);
  assert.equal(sched.jobsCompleted, 1);
  assert.equal(inFence.refcount, 1, "the job dropped its reference to the dependency");
  assert.equal(fence.refcount, 1, "the job dropped its reference to its fence; ours is left");
});

test("drm_sched: jobs start in push order, a later job waits for an earlier blocked one to start", () => {
  const { sched, gate, log } = setup();
  const a = manualJob("a", log);
  const b = manualJob("b", log);
  const ja = sched.jobInit(a.jobOps);
  ja.addDependency(gate.get());
  ja.arm();
  ja.push();
  const jb = sched.jobInit(b.jobOps);
  jb.arm();
  jb.push();
  assert.equal(jb.seqno, 2, "one timeline, seqnos in arm order");
  assert.deepEqual(log, [], "b has no dependency but a has not started");
  gate.signal();
  assert.deepEqual(log, ["run a", "run b"], "both handed to the hardware, in order");
  b.finish();
  a.finish();
  assert.deepEqual(log, ["run a", "run b", "free b", "free a"]);
  assert.equal(sched.jobsCompleted, 2);
});

test("drm_sched: implicit dependencies follow dma_resv_usage_rw (a reader waits for writers, a writer for everyone)", () => {
  const k = new Kernel({ profile: "arm64" });
  const other = new DrmGpuScheduler(k, ops);
  const sched = new DrmGpuScheduler(k, ops);
  const resv = new DmaResv(k.fences);
  const log: string[] = [];
  // On another ring: a writer, then a reader of the same object.
  const w = manualJob("w", log);
  const r = manualJob("r", log);
  const { fence: wf } = other.push(w.jobOps, [], [], [resv]);
  const jr = other.jobInit(r.jobOps);
  jr.arm();
  jr.push();
  const rf = jr.fence.get();
  drmSchedAddFence(resv, rf, DMA_RESV_USAGE_READ);
  assert.ok(sameFences(resv.getFences(DMA_RESV_USAGE_WRITE), [wf]));

  const reader = sched.jobInit({ label: "reader", run: () => {} });
  reader.addImplicitDependencies(resv, false);
  assert.ok(sameFences(reader.dependencies, [wf]), "a reader waits for the writer only");
  const writer = sched.jobInit({ label: "writer", run: () => {} });
  writer.addImplicitDependencies(resv, true);
  assert.ok(sameFences(writer.dependencies, [wf, rf]), "a writer waits for both");
  reader.cleanup();
  writer.cleanup();
  assert.equal(reader.dependencies.length + writer.dependencies.length, 0);
});

test("drm_sched: push() publishes READ on what a job reads and WRITE on what it writes (WRITE only when both)", () => {
  const k = new Kernel({ profile: "arm64" });
  const sched = new DrmGpuScheduler(k, ops);
  const src = new DmaResv(k.fences);
  const dst = new DmaResv(k.fences);
  const { fence } = sched.push({ label: "j", run: () => {} }, [], [src, dst], [dst]);
  assert.ok(sameFences(src.getFences(DMA_RESV_USAGE_READ), [fence]));
  assert.ok(sameFences(src.getFences(DMA_RESV_USAGE_WRITE), []));
  assert.ok(sameFences(dst.getFences(DMA_RESV_USAGE_WRITE), [fence]));
  assert.ok(sameFences(dst.getFences(DMA_RESV_USAGE_READ), [fence]), "one entry, as WRITE");
});

test("drm_sched (property): over random jobs on random objects, jobs start in order, after every fence they depend on, and each signals once", () => {
  const jobSpec = fc.record({
    reads: fc.subarray([0, 1, 2]),
    writes: fc.subarray([0, 1, 2]),
    ring: fc.integer({ min: 0, max: 1 }),
  });
  fc.assert(
    fc.property(
      fc.array(jobSpec, { minLength: 1, maxLength: 12 }),
      fc.array(fc.nat(), { minLength: 1, maxLength: 40 }),
      (specs, picks) => {
        const k = new Kernel({ profile: "arm64" });
        const rings = [new DrmGpuScheduler(k, ops), new DrmGpuScheduler(k, ops)];
        const objs = [0, 1, 2].map(() => new DmaResv(k.fences));
        const running: { i: number; done: () => void }[] = [];
        const started: number[][] = [[], []];
        const early: string[] = [];
        const jobs = specs.map((s, i) => {
          const sched = rings[s.ring]!;
          const job = sched.jobInit({
            label: `j${i}`,
            run: (done) => {
              for (const d of job.dependencies)
                if (!d.isSignaled()) early.push(`j${i} started before ${d} signalled`);
              started[s.ring]!.push(i);
              running.push({ i, done });
            },
          });
          for (const o of s.reads) job.addImplicitDependencies(objs[o]!, false);
          for (const o of s.writes) job.addImplicitDependencies(objs[o]!, true);
          const fence = job.arm().get();
          assert.equal(fence.context, sched.fenceContext);
          for (const o of s.reads)
            if (!s.writes.includes(o)) drmSchedAddFence(objs[o]!, fence, DMA_RESV_USAGE_READ);
          for (const o of s.writes) drmSchedAddFence(objs[o]!, fence, DMA_RESV_USAGE_WRITE);
          job.push();
          return { fence, ring: s.ring };
        });
        // Finish running jobs in a random order until none is left.
        let p = 0;
        while (running.length > 0) {
          const [r] = running.splice(picks[p++ % picks.length]! % running.length, 1);
          r!.done();
        }
        for (const ring of [0, 1]) {
          const mine = jobs.flatMap((j, i) => (j.ring === ring ? [i] : []));
          assert.deepEqual(started[ring], mine, "every job ran, in push order");
          assert.deepEqual(
            mine.map((i) => jobs[i]!.fence.seqno),
            mine.map((_, n) => n + 1),
            "seqnos 1, 2, ... per ring",
          );
          assert.equal(rings[ring]!.pendingJobs, 0);
          assert.equal(rings[ring]!.jobsCompleted, mine.length);
        }
        assert.deepEqual(early, []);
        for (const j of jobs) assert.ok(j.fence.isSignaled());
      },
    ),
    { numRuns: 150 },
  );
});

test("drm_sched_job_cleanup: an unarmed job drops its dependencies; an armed one must be pushed", () => {
  const { sched, gate, log } = setup();
  const refs = gate.refcount;
  const a = sched.jobInit(manualJob("a", log).jobOps);
  a.addDependency(gate.get());
  a.cleanup();
  assert.equal(gate.refcount, refs, "the dependency's reference is back");
  const b = manualJob("b", log);
  const armed = sched.jobInit(b.jobOps);
  armed.arm();
  assert.throws(() => armed.cleanup(), /is armed and must be pushed/);
  armed.push();
  b.finish();
  assert.deepEqual(log, ["run b", "free b"]);
});
