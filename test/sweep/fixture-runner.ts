/**
 * A stand-in for src/pipelines/run.ts in the sweep tests: a fake but deterministic
 * PipelineResult computed from the spec with the profile's cost figures, so sweeps,
 * ordering, CSV and the commands can be tested without the drivers. Special names make
 * it misbehave: "throw" throws, "exit" ends its worker thread. `seed` makes it sleep
 * that many milliseconds first (to make workers finish out of order).
 * DMABUF_FIXTURE_INCOHERENT names a strategy whose runs come out incoherent,
 * DMABUF_FIXTURE_THROW one whose runs throw.
 */

import { CostLedger, type CostSnapshot } from "../../src/machine/cost.js";
import { PROFILES } from "../../src/machine/profiles.js";
import type { FrameResult, PipelineResult, PipelineSpec } from "../../src/pipelines/types.js";

export function runPipeline(spec: PipelineSpec): PipelineResult {
  if (spec.name === "throw" || process.env["DMABUF_FIXTURE_THROW"] === (spec.strategy ?? "")) {
    throw new RangeError("fixture: asked to throw");
  }
  if (spec.name === "exit") process.exit(3);
  if (spec.seed !== undefined && spec.seed > 0) {
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, spec.seed);
  }
  const profileName = spec.profile ?? "arm64";
  const p = PROFILES[profileName];
  if (p === undefined) throw new RangeError(`fixture: unknown profile '${profileName}'`);
  const strategy = spec.strategy ?? "streaming";
  const width = spec.width ?? 1024;
  const bytes = spec.bufferBytes ?? width * (spec.height ?? 480) * 4;
  const frameCount = spec.frames ?? 8;
  const lines = bytes / p.cache.lineSize;
  const slots = p.cache.levels.at(-1)!.sizeBytes / p.cache.lineSize;
  const c = p.costs;
  // Four hand-overs per frame (camera, GPU in, GPU out, display).
  const perLine = 4 * (lines * c.lineOpNs + c.rangeOpNs);
  const wholeCache = 4 * (slots * c.setWayOpNs + c.rangeOpNs);
  const maintenance =
    strategy === "streaming" ? perLine : strategy === "whole-cache" ? wholeCache : 0;
  const dma = 3 * (p.device.setupNs + bytes / p.device.bandwidthBytesPerNs);
  const incoherent =
    spec.fault !== undefined || process.env["DMABUF_FIXTURE_INCOHERENT"] === strategy;

  const perFrame = CostLedger.empty();
  perFrame["cache-maintenance"].ns = maintenance;
  perFrame.dma.ns = dma;
  const frames: FrameResult[] = [];
  const total: CostSnapshot = CostLedger.empty();
  for (let i = 0; i < frameCount; i++) {
    const ok = !(incoherent && i === 0);
    frames.push({
      index: i,
      crc: ok ? 0x1234 + i : 0xdead,
      expectedCrc: 0x1234 + i,
      ok,
      time: (i + 1) * 33_000_000,
      costs: perFrame,
    });
    total["cache-maintenance"].ns += maintenance;
    total.dma.ns += dma;
  }
  return {
    spec: {
      ...spec,
      profile: profileName,
      pipeline: spec.pipeline ?? "camera-gpu-display",
      strategy,
      source: spec.source ?? "v4l2-mmap",
      heap: spec.heap ?? "system",
      width,
      height: Math.floor(bytes / (width * 4)),
      format: spec.format ?? "XR24",
      frames: frameCount,
      buffers: spec.buffers ?? 4,
      fps: spec.fps ?? 30,
      cpuReads: spec.cpuReads ?? false,
      cpuWrites: spec.cpuWrites ?? false,
      bufferBytes: bytes,
    },
    verdict: incoherent ? "incoherent" : "coherent",
    violations: incoherent
      ? [
          {
            seq: 0,
            kind: "stale-device-read",
            time: 0,
            agent: "display",
            phys: 0,
            len: 64,
            message: "fixture: the display read memory the CPU held dirty",
            hint: "fixture",
          },
        ]
      : [],
    frames,
    sinks: [
      { name: "display", device: "simdisplay", kind: "display", primary: true, frames, ok: true },
    ],
    buffers: [],
    costs: total,
    elapsedNs: frameCount * 33_000_000,
    trace: [],
  };
}
