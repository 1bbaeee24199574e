/**
 * PipelineResult fixtures for the CLI and report tests, built from the spec the CLI
 * passes to the runner (so `--frames` and `--set` show up in the result), until the
 * real runner's end-to-end tests take over.
 */

import type { CliIo } from "../../src/cli/io.js";
import { CostLedger, type CostSnapshot } from "../../src/machine/cost.js";
import type { Violation } from "../../src/machine/violations.js";
import type { FrameResult, PipelineResult, PipelineSpec } from "../../src/pipelines/types.js";

const FRAME_NS = 33_333_333;

function frameCosts(i: number): CostSnapshot {
  const c = CostLedger.empty();
  c["cache-maintenance"] = { ns: 41_000 + i, ops: 19_200, bytes: 1_228_800 };
  c.dma = { ns: 615_000, ops: 2, bytes: 2_457_600 };
  c["cpu-access"] = { ns: 0, ops: 0, bytes: 0 };
  c.wait = { ns: 1_500, ops: 1, bytes: 0 };
  return c;
}

function sum(frames: readonly FrameResult[]): CostSnapshot {
  const total = CostLedger.empty();
  for (const f of frames) {
    for (const k of Object.keys(total) as (keyof CostSnapshot)[]) {
      total[k].ns += f.costs[k].ns;
      total[k].ops += f.costs[k].ops;
      total[k].bytes += f.costs[k].bytes;
    }
  }
  total.iommu = { ns: 12_000, ops: 4, bytes: 0 };
  return total;
}

function resolved(spec: PipelineSpec): PipelineResult["spec"] {
  return {
    ...spec,
    profile: spec.profile ?? "arm64",
    pipeline: spec.pipeline ?? "camera-gpu-display",
    strategy: spec.strategy ?? "streaming",
    source: spec.source ?? "v4l2-mmap",
    heap: spec.heap ?? "system",
    width: spec.width ?? 640,
    height: spec.height ?? 480,
    format: spec.format ?? "XR24",
    frames: spec.frames ?? 8,
    buffers: spec.buffers ?? 4,
    fps: spec.fps ?? 30,
    cpuReads: spec.cpuReads ?? false,
    cpuWrites: spec.cpuWrites ?? false,
    bufferBytes: spec.bufferBytes ?? (spec.width ?? 640) * (spec.height ?? 480) * 4,
  };
}

/** Every frame right, no violations. */
export function coherentResult(spec: PipelineSpec = {}): PipelineResult {
  const s = resolved(spec);
  const frames: FrameResult[] = Array.from({ length: s.frames }, (_, i) => ({
    index: i,
    crc: (0x1a2b3c00 + i) >>> 0,
    expectedCrc: (0x1a2b3c00 + i) >>> 0,
    ok: true,
    time: (i + 1) * FRAME_NS,
    costs: frameCosts(i),
  }));
  return {
    spec: s,
    verdict: "coherent",
    violations: [],
    frames,
    sinks: [
      { name: "display", device: "simdisplay", kind: "display", primary: true, frames, ok: true },
    ],
    buffers: [
      { name: "cam0", size: s.bufferBytes, exporter: "vivid", importers: ["display"] },
      { name: "cam1", size: s.bufferBytes, exporter: "vivid", importers: ["display"] },
    ],
    costs: sum(frames),
    elapsedNs: s.frames * FRAME_NS,
    trace: [],
  };
}

/**
 * From frame 1 on, the CPU reads a stale line of every frame (one violation per frame,
 * rotating over four buffers) and the frame is wrong; plus one V4L2 misuse.
 */
export function incoherentResult(spec: PipelineSpec = {}): PipelineResult {
  const base = coherentResult(spec);
  const frames = base.frames.map((f) =>
    f.index === 0 ? f : { ...f, crc: (f.crc ^ 0xdeadbeef) >>> 0, ok: false },
  );
  const violations: Violation[] = [];
  for (const f of frames.slice(1)) {
    violations.push({
      seq: violations.length,
      kind: "stale-cpu-read",
      time: f.time - 1_000_000,
      agent: "cpu",
      phys: 0x4000_0000 + f.index * 0x200000,
      len: 4096,
      region: `cam${f.index % 4}`,
      offset: 0x1000,
      message: `the CPU read ${64} lines cached before the device wrote them (epoch ${f.index})`,
      hint: "DMA_BUF_IOCTL_SYNC(DMA_BUF_SYNC_START | DMA_BUF_SYNC_READ) before reading",
    });
  }
  violations.push({
    seq: violations.length,
    kind: "api-misuse",
    api: "v4l2",
    time: 5_000,
    agent: "cpu",
    phys: -1,
    len: 0,
    message: "V4L2_BUF_FLAG_NO_CACHE_INVALIDATE set on a buffer the CPU reads",
    hint: "drop V4L2_BUF_FLAG_NO_CACHE_INVALIDATE from QBUF",
  });
  return { ...base, verdict: "incoherent", frames, violations };
}

/** A runner that returns the coherent fixture unless the spec has a fault. */
export function fixtureRunner(spec: PipelineSpec): PipelineResult {
  return spec.fault !== undefined ? incoherentResult(spec) : coherentResult(spec);
}

/** A CliIo that records what a command printed. */
export function captureIo(cwd: string, isTTY = false): CliIo & { stdout: string; stderr: string } {
  const io = {
    stdout: "",
    stderr: "",
    isTTY,
    cwd,
    out(t: string) {
      io.stdout += t;
    },
    err(t: string) {
      io.stderr += t;
    },
  };
  return io;
}
