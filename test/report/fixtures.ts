/**
 * Hand-built pipeline results and sweeps for the report tests, shaped like what the
 * pipelines produce: camera -> CPU -> display on four buffers, with ownership spans per
 * buffer, DMA on the devices, cache maintenance and CPU access on "cpu", fence instants,
 * one missed DMA_BUF_IOCTL_SYNC(START) giving a stale read and a wrong frame.
 */

import assert from "node:assert/strict";
import {
  COST_CATEGORIES,
  type CostCategory,
  CostLedger,
  type CostSnapshot,
} from "../../src/machine/cost.js";
import type { TraceEvent } from "../../src/machine/trace.js";
import type { Violation } from "../../src/machine/violations.js";
import type { FrameResult, PipelineResult } from "../../src/pipelines/types.js";
import { sharingNs } from "../../src/report/sharing-cost.js";
import type { SweepReport, SweepRow } from "../../src/report/sweep-types.js";
import type { ChromeTrace, ChromeTraceEvent } from "../../src/report/trace.js";

export interface FixtureOptions {
  frames?: number;
  /** Frame whose CPU read is missing its sync (a violation and a wrong CRC); -1 for none. */
  badFrame?: number;
  /** Message of the violation (to test escaping). */
  message?: string;
  /** Record trace events (default true). */
  trace?: boolean;
  /** Add a span that partially overlaps another on the display's track. */
  overlap?: boolean;
}

function crc(i: number): number {
  return (Math.imul(i + 1, 0x9e3779b1) ^ 0x5bd1e995) >>> 0;
}

/** A realistic camera -> CPU -> display run. */
export function runFixture(opts: FixtureOptions = {}): PipelineResult {
  const nFrames = opts.frames ?? 8;
  const bad = opts.badFrame ?? 5;
  const traceOn = opts.trace ?? true;
  const size = 640 * 480 * 4;
  const nbuf = 4;
  const period = 33_333_333.333;
  const trace: TraceEvent[] = [];
  const frames: FrameResult[] = [];
  const violations: Violation[] = [];
  const total = CostLedger.empty();
  const span = (
    track: string,
    cat: string,
    name: string,
    ts: number,
    dur: number,
    args?: TraceEvent["args"],
  ): void => {
    if (traceOn) trace.push({ name, cat, ph: "X", ts, dur, track, ...(args ? { args } : {}) });
  };
  const instant = (
    track: string,
    cat: string,
    name: string,
    ts: number,
    args?: TraceEvent["args"],
  ): void => {
    if (traceOn) trace.push({ name, cat, ph: "i", ts, track, ...(args ? { args } : {}) });
  };
  for (let i = 0; i < nFrames; i++) {
    const buf = `cam${i % nbuf}`;
    const t0 = 1000 + i * period;
    const capture = size / 4; // 4 bytes per ns
    const costs: CostSnapshot = CostLedger.empty();
    span(buf, "ownership", "vivid-cap", t0, capture + 500);
    span("vivid-cap", "dma", `capture frame ${i}`, t0, capture, { bytes: size });
    costs.dma = { ns: capture, ops: 1, bytes: size };
    const done = t0 + capture;
    instant("fences", "fence", `vivid-cap:${i + 1} signalled`, done, { seqno: i + 1 });
    let t = done + 500;
    const syncOwner = "cpu (DMA_BUF_SYNC)";
    let cpuEnd = t;
    const inv = i === bad ? 0 : 76_800 * 1.2;
    const read = 1_200_000;
    const write = 300_000;
    const clean = 76_800 * 1.1;
    span(buf, "ownership", syncOwner, t, inv + read + write + clean);
    if (i !== bad) {
      span("cpu", "cache", "invalidate dma_sync_sg_for_cpu", t, inv, { bytes: size, whole: false });
      t += inv;
    }
    span("cpu", "cpu", `read ${buf}`, t, read, { bytes: size, attr: "cached" });
    if (i === bad) {
      violations.push({
        seq: violations.length,
        kind: "stale-cpu-read",
        time: t + 10,
        agent: "cpu",
        phys: 0x8000_0000 + (i % nbuf) * size,
        len: 4096,
        region: buf,
        offset: 0,
        message: opts.message ?? `the CPU read ${buf} lines cached before vivid-cap wrote them`,
        hint: "call DMA_BUF_IOCTL_SYNC(DMA_BUF_SYNC_START | DMA_BUF_SYNC_READ) before reading the mmap",
      });
    }
    t += read;
    span("cpu", "cpu", `write ${buf}`, t, write, { bytes: 4096, attr: "cached" });
    t += write;
    span("cpu", "cache", "clean dma_sync_sg_for_device", t, clean, { bytes: size, whole: false });
    t += clean;
    cpuEnd = t;
    costs["cache-maintenance"] = { ns: inv + clean, ops: 2, bytes: size * 2 };
    costs["cpu-access"] = { ns: read + write, ops: 2, bytes: size + 4096 };
    costs.wait = { ns: 2000, ops: 1, bytes: 0 };
    const scan = size / 8;
    span(buf, "ownership", "simdisplay", cpuEnd, scan + 200);
    span("simdisplay", "dma", `scanout ${buf}`, cpuEnd + 100, scan, { bytes: size });
    costs.dma.ns += scan;
    costs.dma.ops++;
    costs.dma.bytes += size;
    const when = cpuEnd + 100 + scan;
    instant("fences", "fence", `simdisplay:${i + 1} signalled`, when);
    instant("simdisplay", "frame", `scanout ${buf}`, when, { crc: crc(i) });
    span(buf, "ownership", "userspace", when + 200, 1000);
    const expected = crc(i);
    const got = i === bad ? crc(i - 1 + nbuf) : expected;
    frames.push({
      index: i,
      crc: got,
      expectedCrc: expected,
      ok: got === expected,
      time: when,
      costs,
    });
    for (const c of COST_CATEGORIES) {
      total[c].ns += costs[c].ns;
      total[c].ops += costs[c].ops;
      total[c].bytes += costs[c].bytes;
    }
  }
  if (opts.overlap && traceOn) {
    // Overlaps the first scanout partially: must go to its own lane in the trace.
    const first = trace.find((e) => e.track === "simdisplay" && e.ph === "X")!;
    span("simdisplay", "dma", "overlapping job", first.ts + (first.dur ?? 0) / 2, first.dur ?? 0, {
      bytes: 1,
    });
  }
  if (violations.length === 0 && bad >= 0 && bad < nFrames)
    throw new Error("fixture: no violation");
  const ok = frames.every((f) => f.ok) && violations.length === 0;
  return {
    spec: {
      name: "camera-cpu-display demo",
      profile: "arm64",
      pipeline: "camera-cpu-display",
      strategy: "streaming",
      source: "v4l2-mmap",
      heap: "system",
      width: 640,
      height: 480,
      format: "XR24",
      frames: nFrames,
      buffers: nbuf,
      fps: 30,
      cpuReads: true,
      cpuWrites: true,
      bufferBytes: size,
      trace: traceOn,
      ...(bad >= 0 && bad < nFrames ? { fault: "omit-sync-start" as const } : {}),
    },
    verdict: ok ? "coherent" : "incoherent",
    violations,
    frames,
    sinks: [
      {
        name: "display",
        device: "simdisplay",
        kind: "display",
        primary: true,
        frames,
        ok: frames.every((f) => f.ok),
      },
    ],
    buffers: Array.from({ length: nbuf }, (_, k) => ({
      name: `cam${k}`,
      size,
      exporter: "vivid",
      importers: ["simdisplay"],
    })),
    costs: total,
    elapsedNs: frames.length > 0 ? frames[frames.length - 1]!.time - 1000 : 0,
    trace,
  };
}

export const SWEEP_STRATEGIES = ["coherent", "streaming", "whole-cache", "cache-hints"] as const;
export const SWEEP_SIZES = [16384, 65536, 262144, 1048576, 4194304, 16777216];

/**
 * A sweep over profile x strategy x buffer size x source, with a cost model where
 * whole-cache flushing costs a constant and beats line-by-line maintenance from 1 MiB on
 * arm64 and from 4 MiB on riscv64; one incoherent run and one that failed.
 */
export function sweepFixture(title = "Maintenance strategies vs buffer size"): SweepReport {
  const rows: SweepRow[] = [];
  const profiles: [string, number][] = [
    ["arm64", 1],
    ["riscv64", 4],
  ];
  for (const [profile, scale] of profiles) {
    for (const source of ["v4l2-mmap", "dma-heap"]) {
      for (const strategy of SWEEP_STRATEGIES) {
        for (const bytes of SWEEP_SIZES) {
          const lines = bytes / 64;
          const perFrame = {} as Record<CostCategory, number>;
          for (const c of COST_CATEGORIES) perFrame[c] = 0;
          perFrame.dma = bytes / 4;
          perFrame["cpu-access"] = strategy === "coherent" ? lines * 40 : lines * 2;
          const lineMaint = lines * 3;
          // Whole-cache maintenance costs a constant once the range reaches the threshold.
          const threshold = 1048576 * scale;
          const wholeMaint = 30_000 * scale;
          perFrame["cache-maintenance"] =
            strategy === "streaming"
              ? lineMaint
              : strategy === "whole-cache"
                ? bytes >= threshold
                  ? wholeMaint
                  : lineMaint
                : strategy === "cache-hints"
                  ? lineMaint / 2
                  : 0;
          if (source === "dma-heap") perFrame.wait = 5000;
          const total = COST_CATEGORIES.reduce((s, c) => s + perFrame[c], 0);
          const incoherent =
            profile === "arm64" &&
            strategy === "cache-hints" &&
            bytes === 262144 &&
            source === "dma-heap";
          const failed =
            profile === "riscv64" &&
            strategy === "coherent" &&
            bytes === 16777216 &&
            source === "dma-heap";
          const row: SweepRow = {
            params: { profile, strategy, bufferBytes: bytes, source },
            verdict: incoherent || failed ? "incoherent" : "coherent",
            violations: incoherent ? 3 : 0,
            framesOk: incoherent ? 5 : failed ? 0 : 8,
            frames: failed ? 0 : 8,
            bufferBytes: bytes,
            profile,
            strategy,
            perFrame,
            sharingPerFrameNs: failed ? 0 : sharingNs(perFrame),
            totalPerFrameNs: failed ? 0 : total,
            ...(failed ? { error: "ENOMEM: dma_alloc_coherent: <no CMA> & no memory" } : {}),
          };
          rows.push(row);
        }
      }
    }
  }
  return {
    title,
    description: "Camera -> CPU -> display, 8 frames per run, every mapping strategy.",
    keys: ["profile", "strategy", "bufferBytes", "source"],
    rows,
  };
}

/** The structural rules Perfetto's JSON importer relies on. */
export function assertWellFormed(t: ChromeTrace): void {
  assert.equal(t.displayTimeUnit, "ns");
  const threadNames = new Map<string, string>();
  const processNames = new Map<number, string>();
  for (const e of t.traceEvents) {
    assert.ok(["M", "X", "i", "C"].includes(e.ph), `ph ${e.ph}`);
    assert.equal(typeof e.ts, "number");
    assert.ok(Number.isFinite(e.ts), `ts of ${e.name}`);
    assert.ok(Number.isInteger(e.pid) && e.pid > 0, `pid of ${e.name}`);
    assert.ok(Number.isInteger(e.tid) && e.tid >= 0, `tid of ${e.name}`);
    assert.equal(typeof e.name, "string");
    if (e.ph === "M" && e.name === "thread_name") {
      threadNames.set(`${e.pid}/${e.tid}`, String(e.args?.name));
    }
    if (e.ph === "M" && e.name === "process_name") processNames.set(e.pid, String(e.args?.name));
    if (e.ph === "X") {
      assert.equal(typeof e.dur, "number", `dur of ${e.name}`);
      assert.ok(e.dur! >= 0, `dur of ${e.name}`);
    }
    if (e.ph === "i") assert.equal(e.s, "t");
    // Whole nanoseconds: k/1000 µs.
    assert.ok(Math.abs(e.ts * 1000 - Math.round(e.ts * 1000)) < 1e-6, `ts ${e.ts} not whole ns`);
  }
  for (const e of t.traceEvents) {
    if (e.ph === "M") continue;
    assert.ok(
      threadNames.has(`${e.pid}/${e.tid}`),
      `no thread_name for ${e.pid}/${e.tid} (${e.name})`,
    );
    assert.ok(processNames.has(e.pid), `no process_name for pid ${e.pid}`);
  }
  // Complete events of one thread nest: each starts after the previous ends or inside it.
  const byThread = new Map<string, ChromeTraceEvent[]>();
  for (const e of t.traceEvents) {
    if (e.ph !== "X") continue;
    const k = `${e.pid}/${e.tid}`;
    byThread.set(k, [...(byThread.get(k) ?? []), e]);
  }
  for (const [k, list] of byThread) {
    const stack: number[] = [];
    for (const e of [...list].sort((a, b) => a.ts - b.ts || b.dur! - a.dur!)) {
      const s = Math.round(e.ts * 1000);
      const end = Math.round((e.ts + e.dur!) * 1000);
      while (stack.length > 0 && stack[stack.length - 1]! <= s) stack.pop();
      if (stack.length > 0)
        assert.ok(end <= stack[stack.length - 1]!, `${k}: ${e.name} overlaps its parent`);
      stack.push(end);
    }
  }
}
