/**
 * Runs one pipeline on a fresh simulated kernel, as a userspace program would: V4L2
 * capture from vivid, buffers shared as dma-bufs, PRIME import into the GPU and the
 * display, page flips and the display's pipe CRC. Nothing here reaches into the model
 * to move data; the drivers do the DMA, the caches do what caches do, and the result is
 * whatever the display read.
 */

import { faultPlan, layoutFault } from "../kernel/fault-inject.js";
import { Kernel } from "../kernel/kernel.js";
import type { ClockBudget } from "../machine/clock.js";
import { CostLedger } from "../machine/cost.js";
import { SimUapi } from "../uapi/sim.js";
import { graphSinks, legacyGraph, stageKind } from "./graph.js";
import { type GraphDrivers, probeGraph, runGraph } from "./graph-run.js";
import { machineFor, type ResolvedSpec, resolveSpec } from "./spec.js";
import { probeDrivers } from "./stages.js";
import type { BufferInfo, FrameResult, PipelineResult, PipelineSpec, SinkResult } from "./types.js";
import { assertSpecTakesEffect } from "./validity.js";

/** Custom steps for TypeScript users: called with the frame's CPU view between capture and display. */
export interface PipelineHooks {
  /**
   * After the CPU stage (or right after capture when the CPU does not touch the frame):
   * the kernel, the userspace process, and the frame number. Whatever the hook does to
   * the machine is seen by the checker and the display like any other access.
   */
  readonly afterCapture?: (ctx: {
    kernel: Kernel;
    uapi: SimUapi;
    frame: number;
    bufferFd: number;
  }) => void;
}

/** Runs a pipeline and reports what happened. Throws RangeError/KernelError on a spec the kernel refuses. */
export function runPipeline(input: PipelineSpec, hooks: PipelineHooks = {}): PipelineResult {
  assertSpecTakesEffect(input);
  const spec = resolveSpec(input);
  const { profile } = machineFor(spec);
  const kernel = new Kernel({ profile, trace: spec.trace ?? false });
  // The fault plan goes to the kernel before any driver allocates (the zeroing at
  // REQBUFS is a call site too).
  const graph = spec.graph ?? legacyGraph(spec);
  // The pipeline's named faults, then each stage's, scoped to the stage (FaultRule.scope).
  const named: { name: string; scope?: string }[] = [
    ...(spec.faults ?? []).map((name) => ({ name })),
    ...graph.stages.flatMap((st) => (st.faults ?? []).map((name) => ({ name, scope: st.name }))),
  ];
  const plan = [
    ...named.flatMap((f) =>
      faultPlan([f.name]).map((r) => (f.scope !== undefined ? { ...r, scope: f.scope } : r)),
    ),
    ...(spec.injections ?? []),
  ];
  // A run records its maintenance and sync call sites (the reports' coverage view) unless
  // told not to: each call costs a stack trace, and a sweep's rows do not show them.
  kernel.machine.faults.arm(plan, input.recordCallSites !== false, input.recordCallStacks === true);
  // Probed before the program starts, in the order the four pipelines always probed.
  const drivers = spec.graph ? probeGraph(kernel, spec, graph) : legacyDrivers(kernel, spec);
  const app = new SimUapi(kernel, "pipeline");
  const m = kernel.machine;
  m.clock.budget = runBudget(spec);
  const frames: FrameResult[] = [];
  const start = m.clock.now;
  let last = m.costs.snapshot();
  const record = (index: number, crc: number, expectedCrc: number): void => {
    const now = m.costs.snapshot();
    frames.push({
      index,
      crc,
      expectedCrc,
      ok: crc === expectedCrc,
      time: m.clock.now,
      costs: CostLedger.diff(now, last),
    });
    last = now;
  };

  // Per-frame costs start once the buffers exist: allocation and mapping are setup.
  const steady = (): void => {
    last = m.costs.snapshot();
  };
  const sinkFrames = new Map<string, FrameResult[]>();
  let sinks: SinkResult[];
  // Set when the teardown starts: the buffers as they were, the run's costs and end.
  let buffers: BufferInfo[] = [];
  let runCosts = m.costs.snapshot();
  let runEnd = m.clock.now;
  let runViolations = 0;
  {
    const sinkStages = graphSinks(graph);
    const primary = sinkStages[0]!;
    for (const s of sinkStages.slice(1)) sinkFrames.set(s.name, []);
    runGraph(
      kernel,
      app,
      spec,
      graph,
      drivers,
      (sink, n, r) => {
        if (sink === primary) {
          record(n, r.crc, r.expectedCrc);
          // The frame's costs close with the primary sink, which is recorded last.
          const f = frames[frames.length - 1]!;
          for (const s of sinkStages.slice(1)) {
            const list = sinkFrames.get(s.name)!;
            const o = list[list.length - 1]!;
            list[list.length - 1] = { ...o, costs: f.costs };
          }
        } else {
          sinkFrames.get(sink.name)!.push({
            index: n,
            crc: r.crc,
            expectedCrc: r.expectedCrc,
            ok: r.crc === r.expectedCrc,
            time: m.clock.now,
            costs: m.costs.snapshot(),
          });
        }
      },
      steady,
      new Map(),
      hooks.afterCapture
        ? (stage, n, fd) => {
            // As the four pipelines always did: after the CPU stage, else after capture.
            const at = graph.stages.some((s) => s.name === "cpu") ? "cpu" : "capture";
            if (stage.name === at)
              hooks.afterCapture!({ kernel, uapi: app, frame: n, bufferFd: fd });
          }
        : undefined,
      () => {
        // The run ends with the last frame and STREAMOFF; what follows is its teardown.
        buffers = bufferInfos(kernel);
        runCosts = m.costs.snapshot();
        runEnd = m.clock.now;
        runViolations = m.violations.list.length;
      },
    );
    sinks = sinkStages.map((s, i) => {
      const list = i === 0 ? frames : sinkFrames.get(s.name)!;
      return {
        name: s.name,
        device: s.device ?? "cpu",
        kind: stageKind(graph, s),
        primary: i === 0,
        frames: list,
        ok: list.every((f) => f.ok),
      };
    });
  }

  checkFaultsTookEffect(named, m.faults.appliedCounts);
  const violations = m.violations.list;
  const verdict = violations.length === 0 && sinks.every((k) => k.ok) ? "coherent" : "incoherent";
  const result: PipelineResult = {
    spec,
    verdict,
    violations,
    frames,
    sinks,
    buffers,
    costs: runCosts,
    elapsedNs: runEnd - start,
    teardown: {
      start: runEnd,
      elapsedNs: m.clock.now - runEnd,
      violations: m.violations.list.length - runViolations,
      costs: CostLedger.diff(m.costs.snapshot(), runCosts),
    },
    trace: spec.trace ? m.trace.finish(m.clock.now) : [],
    ...(m.faults.armed ? { callSites: m.faults.sites } : {}),
  };
  // The run is over: its host memory goes to the next run's machine.
  m.release();
  return result;
}

/** The live dma-bufs with their importers and DMA_BUF_IOCTL_SYNC calls, for reports. */
function bufferInfos(kernel: Kernel): BufferInfo[] {
  return kernel.dmaBuf.buffers.map((b) => ({
    name: b.name ?? `dmabuf${b.ino}`,
    size: b.size,
    exporter: b.expName,
    importers: b.attachments.map((a) => a.dev.name),
    ...(b.cpuAccessLog.length > 0 ? { syncs: [...b.cpuAccessLog] } : {}),
  }));
}

/**
 * A run's budget: generous for any pipeline that makes progress (a frame takes at most
 * a few interval-lengths of virtual time and a handful of clock events), so that only a
 * run that would never end in practice (a DMA at 1e-12 bytes/ns, a device that never
 * stops) hits it, and then with a SimulationError naming the budget.
 */
export function runBudget(spec: ResolvedSpec): ClockBudget {
  const frames = spec.frames;
  return {
    virtualNs: (3600 + 60 * frames) * 1e9,
    events: 1_000_000 + 10_000 * frames,
  };
}

/** A named fault whose rules never matched a call could not take effect: an error, not a silently identical run. */
function checkFaultsTookEffect(
  named: readonly { name: string; scope?: string }[],
  applied: readonly number[],
): void {
  let i = 0;
  for (const n of named) {
    const rules = faultPlan([n.name]).length;
    const hits = applied.slice(i, i + rules).reduce((a, b) => a + b, 0);
    i += rules;
    // A layout fault changes the program's memory, not a call: checked before the run
    // (validity.ts, layoutFaultConflicts), and it always applies to the stages it names.
    if (hits === 0 && layoutFault(n.name) === undefined)
      throw new RangeError(
        n.scope === undefined
          ? `fault '${n.name}' could not take effect: this pipeline never made the call it changes (see \`dmabuf list faults\`)`
          : `fault '${n.name}' of stage ${n.scope} could not take effect: that stage never made the call it changes (see \`dmabuf list faults\`)`,
      );
  }
}

/** The drivers the four PipelineKinds have always probed (vivid, simgpu, simdisplay), as a graph's. */
function legacyDrivers(kernel: Kernel, spec: ResolvedSpec): GraphDrivers {
  const d = probeDrivers(kernel, spec);
  return {
    vivid: new Map([
      ["vivid-cap", d.vivid],
      ["vivid-out", d.vivid],
    ]),
    gpu: new Map([["simgpu", d.gpu]]),
    display: new Map([["simdisplay", d.display]]),
    m2m: new Map(),
    npu: new Map(),
    encoder: new Map(),
  };
}
