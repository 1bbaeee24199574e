/**
 * Runs one pipeline on a fresh simulated kernel, as a userspace program would: V4L2
 * capture from vivid, buffers shared as dma-bufs, PRIME import into the GPU and the
 * display, page flips and the display's pipe CRC. Nothing here reaches into the model
 * to move data; the drivers do the DMA, the caches do what caches do, and the result is
 * whatever the display read.
 */

import { faultPlan } from "../kernel/fault-inject.js";
import { Kernel } from "../kernel/kernel.js";
import type { ClockBudget } from "../machine/clock.js";
import { CostLedger } from "../machine/cost.js";
import type { TraceEvent } from "../machine/trace.js";
import { SimUapi } from "../uapi/sim.js";
import { type FrameGeometry, visibleCrc } from "./expected.js";
import { machineFor, type ResolvedSpec, resolveSpec } from "./spec.js";
import {
  CameraStage,
  CpuStage,
  DisplayStage,
  GpuStage,
  OutputStage,
  probeDrivers,
} from "./stages.js";
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
  const named = spec.faults ?? [];
  const plan = [...faultPlan(named), ...(spec.injections ?? [])];
  if (plan.length > 0 || spec.recordCallSites) kernel.machine.faults.arm(plan);
  const drivers = probeDrivers(kernel, spec);
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
  if (spec.pipeline === "cpu-output") {
    runCpuOutput(kernel, app, spec, drivers, record, steady);
  } else {
    runCapturePipeline(kernel, app, spec, drivers, record, steady, hooks);
  }

  const buffers: BufferInfo[] = kernel.dmaBuf.buffers.map((b) => ({
    name: b.name ?? `dmabuf${b.ino}`,
    size: b.size,
    exporter: b.expName,
    importers: b.attachments.map((a) => a.dev.name),
  }));
  checkFaultsTookEffect(named, m.faults.appliedCounts);
  const violations = m.violations.list;
  const verdict = violations.length === 0 && frames.every((f) => f.ok) ? "coherent" : "incoherent";
  const sink: SinkResult =
    spec.pipeline === "cpu-output"
      ? {
          name: "output",
          device: "vivid-out",
          kind: "output",
          primary: true,
          frames,
          ok: frames.every((f) => f.ok),
        }
      : {
          name: "display",
          device: "simdisplay",
          kind: "display",
          primary: true,
          frames,
          ok: frames.every((f) => f.ok),
        };
  const result: PipelineResult = {
    spec,
    verdict,
    violations,
    frames,
    sinks: [sink],
    buffers,
    costs: m.costs.snapshot(),
    elapsedNs: m.clock.now - start,
    trace: spec.trace ? (m.trace.events as readonly TraceEvent[]) : [],
    ...(m.faults.armed ? { callSites: m.faults.sites } : {}),
  };
  // The run is over: its host memory goes to the next run's machine.
  m.release();
  return result;
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
function checkFaultsTookEffect(named: readonly string[], applied: readonly number[]): void {
  let i = 0;
  for (const n of named) {
    const rules = faultPlan([n]).length;
    const hits = applied.slice(i, i + rules).reduce((a, b) => a + b, 0);
    i += rules;
    if (hits === 0)
      throw new RangeError(
        `fault '${n}' could not take effect: this pipeline never made the call it changes (see \`dmabuf list faults\`)`,
      );
  }
}

type Record3 = (index: number, crc: number, expectedCrc: number) => void;

function runCapturePipeline(
  kernel: Kernel,
  app: SimUapi,
  spec: ResolvedSpec,
  drivers: ReturnType<typeof probeDrivers>,
  record: Record3,
  steady: () => void,
  hooks: PipelineHooks,
): void {
  const camera = new CameraStage(app, kernel, spec);
  const cpu = new CpuStage(app, kernel, spec, camera);
  const display = new DisplayStage(app, kernel, spec, drivers.display);
  const gpu =
    spec.pipeline === "camera-gpu-display"
      ? new GpuStage(app, kernel, spec, display, drivers.gpu)
      : undefined;
  const camGeom: FrameGeometry = {
    width: spec.width,
    height: spec.height,
    stride: camera.bytesperline,
    bpp: spec.format === "YUYV" ? 2 : 4,
  };
  // Scanout: the camera buffers themselves (zero copy) or the GPU's output buffers.
  const camFbs = gpu
    ? []
    : camera.buffers.map((b) => display.importFramebuffer(b.fd, camera.bytesperline));
  const camGpu = gpu ? camera.buffers.map((b) => gpu.importBuffer(b.fd)) : [];

  camera.start();
  steady();
  // The buffer on screen cannot go back to the camera until the next one replaces it.
  let onScreen: number | undefined;
  for (let n = 0; n < spec.frames; n++) {
    const buf = camera.dequeue();
    const expected = camera.expectedFrame(buf.sequence);
    cpu.process(buf.index, n, expected, camGeom);
    hooks.afterCapture?.({ kernel, uapi: app, frame: n, bufferFd: camera.buffers[buf.index]!.fd });
    if (gpu) {
      const job = gpu.run(camGpu[buf.index]!, n, camera.bytesperline);
      const { crc } = display.show(job.fb);
      // The GPU has read the camera buffer once its fence signals; only then requeue it.
      gpu.wait(job.outFenceFd);
      camera.queue(buf.index);
      record(n, crc, visibleCrc(gpu.expectedOutput(expected, camGeom), gpu.outGeometry));
    } else {
      const { crc } = display.show(camFbs[buf.index]!);
      if (onScreen !== undefined) camera.queue(onScreen);
      onScreen = buf.index;
      record(n, crc, visibleCrc(expected, camGeom));
    }
  }
  camera.stop();
  display.stop();
}

function runCpuOutput(
  kernel: Kernel,
  app: SimUapi,
  spec: ResolvedSpec,
  drivers: ReturnType<typeof probeDrivers>,
  record: Record3,
  steady: () => void,
): void {
  const out = new OutputStage(app, kernel, spec, drivers.vivid);
  steady();
  for (let n = 0; n < spec.frames; n++) {
    const { crc, expected } = out.renderAndSend(n);
    record(n, crc, expected);
  }
  out.stop();
}
