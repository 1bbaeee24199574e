/**
 * A pipeline run as a Chrome JSON trace (the "Trace Event Format" that chrome://tracing
 * and the Perfetto UI open): one process per kind of track (CPU, devices, buffers,
 * fences, the pipeline's own frames and counters), one thread per track, the machine's
 * spans as complete ("X") events, instants with thread scope, checker violations and
 * frame CRC results as instants, and the per-frame costs as counters.
 *
 * Times: the model's virtual nanoseconds become the format's microseconds. They are
 * rounded to whole nanoseconds first, so every `ts`/`dur` is k/1000 for an integer k and
 * a viewer converting back to ns gets exact integers (no 0.30000000000000004 spans that
 * overlap their neighbour by a rounding error).
 *
 * Perfetto wants the complete events of one thread properly nested. The model's tracks
 * are sequential by construction (a device runs one job at a time, the CPU one access),
 * but a pipeline may record overlapping spans on one track; those go to an extra thread
 * ("cam0 #2") instead of being silently mangled by the viewer.
 */

import type { Ns } from "../machine/clock.js";
import { COST_CATEGORIES } from "../machine/cost.js";
import { MAPPING_TRACK_SEPARATOR, type TraceEvent } from "../machine/trace.js";
import type { PipelineResult } from "../pipelines/types.js";
import { totalNs } from "./sharing-cost.js";

type ArgValue = string | number | boolean;

/** One event of the Chrome trace-event format. */
export interface ChromeTraceEvent {
  readonly name: string;
  readonly cat?: string;
  /** "M" metadata, "X" complete, "i" instant, "C" counter. */
  readonly ph: "M" | "X" | "i" | "C";
  /** Microseconds. */
  readonly ts: number;
  /** Microseconds, "X" only. */
  readonly dur?: number;
  readonly pid: number;
  readonly tid: number;
  /** Instant scope: "t" thread. */
  readonly s?: "t" | "p" | "g";
  readonly args?: Readonly<Record<string, ArgValue>>;
}

/** The object form of the format, as Perfetto and chrome://tracing accept it. */
export interface ChromeTrace {
  readonly traceEvents: readonly ChromeTraceEvent[];
  readonly displayTimeUnit: "ns";
  readonly metadata: Readonly<Record<string, ArgValue>>;
}

/** The processes tracks are grouped in, in display order (the pid is the index + 1). */
export const TRACE_PROCESSES = ["CPU", "devices", "buffers", "fences", "pipeline"] as const;
export type TraceProcess = (typeof TRACE_PROCESSES)[number];

/** Track of the frame CRC results (in process "pipeline"). */
export const FRAMES_TRACK = "frames";

/** Virtual ns to trace µs, through whole ns. */
export function nsToUs(ns: Ns): number {
  return Math.round(ns) / 1000;
}

/** Which process a track belongs to. */
export function classifyTrack(
  track: string,
  events: readonly TraceEvent[],
  bufferNames: ReadonlySet<string>,
): TraceProcess {
  if (track === "cpu" || /^cpu\d*$/.test(track)) return "CPU";
  if (track === FRAMES_TRACK) return "pipeline";
  if (bufferNames.has(track)) return "buffers";
  if (events.some((e) => e.cat === "ownership")) return "buffers";
  if (track === "fences" || (events.length > 0 && events.every((e) => e.cat === "fence"))) {
    return "fences";
  }
  return "devices";
}

function hex(n: number): string {
  return `0x${(n >>> 0).toString(16).padStart(8, "0")}`;
}

/** A track's events split into lanes whose complete events nest properly. */
function splitLanes(events: readonly TraceEvent[]): TraceEvent[][] {
  const order = events
    .map((e, i) => ({ e, i }))
    .sort(
      (a, b) =>
        Math.round(a.e.ts) - Math.round(b.e.ts) ||
        Math.round(b.e.dur ?? 0) - Math.round(a.e.dur ?? 0) ||
        a.i - b.i,
    );
  const lanes: { events: TraceEvent[]; open: number[] }[] = [];
  for (const { e } of order) {
    if (e.ph !== "X") {
      if (lanes.length === 0) lanes.push({ events: [], open: [] });
      lanes[0]!.events.push(e);
      continue;
    }
    const start = Math.round(e.ts);
    const end = Math.round(e.ts + (e.dur ?? 0));
    let placed = false;
    for (const lane of lanes) {
      while (lane.open.length > 0 && lane.open[lane.open.length - 1]! <= start) lane.open.pop();
      const top = lane.open[lane.open.length - 1];
      if (top === undefined || end <= top) {
        lane.open.push(end);
        lane.events.push(e);
        placed = true;
        break;
      }
    }
    if (!placed) lanes.push({ events: [e], open: [end] });
  }
  return lanes.map((l) => l.events);
}

/**
 * The run as a Chrome JSON trace. Deterministic: the same result gives the same events
 * in the same order.
 */
export function toChromeTrace(result: PipelineResult): ChromeTrace {
  const bufferNames = new Set(result.buffers.map((b) => b.name));
  const tracks = new Map<string, TraceEvent[]>();
  const trackOf = (name: string): TraceEvent[] => {
    let list = tracks.get(name);
    if (list === undefined) {
      list = [];
      tracks.set(name, list);
    }
    return list;
  };
  // CPU first, then buffers in the result's order, so their threads exist even when idle.
  trackOf("cpu");
  for (const e of result.trace) trackOf(e.track).push(e);
  for (const v of result.violations) trackOf(v.agent);
  for (const b of result.buffers) trackOf(b.name);
  // Frame results and the cost counters live here (always present: counters need a tid).
  trackOf(FRAMES_TRACK);

  // Threads: per process, the tracks in order of first appearance (buffers: result order).
  interface Thread {
    readonly track: string;
    readonly lane: number;
    readonly pid: number;
    readonly tid: number;
    readonly events: TraceEvent[];
  }
  const byProcess = new Map<TraceProcess, string[]>();
  for (const p of TRACE_PROCESSES) byProcess.set(p, []);
  for (const [track, events] of tracks) {
    byProcess.get(classifyTrack(track, events, bufferNames))!.push(track);
  }
  // Buffers in the result's order, each followed by its mappings ("cam0 / vivid-cap").
  const bufferOrder = result.buffers.map((b) => b.name);
  const rank = (track: string): number => {
    const i = bufferOrder.indexOf(bufferOfTrack(track));
    return i >= 0 ? i : bufferOrder.length;
  };
  byProcess.get("buffers")!.sort((a, b) => rank(a) - rank(b));

  const threads: Thread[] = [];
  /** The first thread of each track: where violations and frame results go. */
  const mainThread = new Map<string, Thread>();
  let nextTid = 1;
  TRACE_PROCESSES.forEach((proc, p) => {
    for (const track of byProcess.get(proc)!) {
      const lanes = splitLanes(tracks.get(track)!);
      if (lanes.length === 0) lanes.push([]);
      lanes.forEach((events, lane) => {
        const t: Thread = { track, lane, pid: p + 1, tid: nextTid++, events };
        threads.push(t);
        if (lane === 0) mainThread.set(track, t);
      });
    }
  });

  const meta: ChromeTraceEvent[] = [];
  const events: { ev: ChromeTraceEvent; seq: number }[] = [];
  const push = (ev: ChromeTraceEvent): void => {
    events.push({ ev, seq: events.length });
  };

  const usedPids = new Set(threads.map((t) => t.pid));
  TRACE_PROCESSES.forEach((proc, p) => {
    const pid = p + 1;
    if (!usedPids.has(pid)) return;
    meta.push({ name: "process_name", ph: "M", ts: 0, pid, tid: 0, args: { name: proc } });
    meta.push({ name: "process_sort_index", ph: "M", ts: 0, pid, tid: 0, args: { sort_index: p } });
  });
  threads.forEach((t, i) => {
    const base =
      t.pid === TRACE_PROCESSES.indexOf("fences") + 1
        ? fenceTrackName(t.track, tracks.get(t.track)!)
        : t.track;
    const name = t.lane === 0 ? base : `${base} #${t.lane + 1}`;
    meta.push({ name: "thread_name", ph: "M", ts: 0, pid: t.pid, tid: t.tid, args: { name } });
    meta.push({
      name: "thread_sort_index",
      ph: "M",
      ts: 0,
      pid: t.pid,
      tid: t.tid,
      args: { sort_index: i },
    });
  });

  // The machine's own events.
  for (const t of threads) {
    for (const e of t.events) {
      const start = Math.round(e.ts);
      const base = { name: e.name, cat: e.cat, pid: t.pid, tid: t.tid };
      if (e.ph === "X") {
        const end = Math.round(e.ts + Math.max(0, e.dur ?? 0));
        push({ ...base, ph: "X", ts: start / 1000, dur: (end - start) / 1000, ...withArgs(e) });
      } else if (e.ph === "i") {
        push({ ...base, ph: "i", ts: start / 1000, s: "t", ...withArgs(e) });
      } else {
        push({ ...base, ph: "C", ts: start / 1000, ...withArgs(e) });
      }
    }
  }

  // Violations, on the track of whoever acted.
  for (const v of result.violations) {
    const t = mainThread.get(v.agent)!;
    const args: Record<string, ArgValue> = { seq: v.seq, message: v.message, hint: v.hint };
    if (v.api !== undefined) args.api = v.api;
    if (v.region !== undefined) args.region = v.region;
    if (v.offset !== undefined) args.offset = v.offset;
    if (v.phys >= 0) args.phys = `0x${v.phys.toString(16)}`;
    args.len = v.len;
    push({
      name: v.kind,
      cat: "violation",
      ph: "i",
      ts: nsToUs(v.time),
      pid: t.pid,
      tid: t.tid,
      s: "t",
      args,
    });
  }

  // Frame results and per-frame costs.
  if (result.frames.length > 0) {
    const ft = mainThread.get(FRAMES_TRACK)!;
    const running: Record<string, number> = {};
    for (const c of COST_CATEGORIES) running[c] = 0;
    for (const f of result.frames) {
      push({
        name: f.ok ? `frame ${f.index} ok` : `frame ${f.index} CRC mismatch`,
        cat: "frame",
        ph: "i",
        ts: nsToUs(f.time),
        pid: ft.pid,
        tid: ft.tid,
        s: "t",
        args: { index: f.index, crc: hex(f.crc), expected: hex(f.expectedCrc), ok: f.ok },
      });
      const perFrame: Record<string, number> = {};
      for (const c of COST_CATEGORIES) {
        perFrame[c] = Math.round(f.costs[c].ns);
        running[c]! += f.costs[c].ns;
      }
      push({
        name: "cost per frame (ns)",
        cat: "cost",
        ph: "C",
        ts: nsToUs(f.time),
        pid: ft.pid,
        tid: ft.tid,
        args: perFrame,
      });
      push({
        name: "cost (ns, cumulative)",
        cat: "cost",
        ph: "C",
        ts: nsToUs(f.time),
        pid: ft.pid,
        tid: ft.tid,
        args: Object.fromEntries(COST_CATEGORIES.map((c) => [c, Math.round(running[c]!)])),
      });
    }
  }

  // The teardown after the last frame, as its own phase on the frames track.
  const td = result.teardown;
  if (td !== undefined) {
    const ft = mainThread.get(FRAMES_TRACK)!;
    push({
      name: "teardown",
      cat: "phase",
      ph: "X",
      ts: nsToUs(td.start),
      dur: nsToUs(td.start + td.elapsedNs) - nsToUs(td.start),
      pid: ft.pid,
      tid: ft.tid,
      args: { violations: td.violations, "cost (ns)": Math.round(totalNs(td.costs)) },
    });
  }

  events.sort((a, b) => a.ev.ts - b.ev.ts || (b.ev.dur ?? 0) - (a.ev.dur ?? 0) || a.seq - b.seq);
  const s = result.spec;
  const framesOk = result.frames.filter((f) => f.ok).length;
  const metadata: Record<string, ArgValue> = {
    generator: "dmabuf",
    name: s.name ?? s.pipeline,
    profile: s.profile,
    pipeline: s.pipeline,
    strategy: s.strategy,
    source: s.source,
    format: `${s.format} ${s.width}x${s.height}`,
    bufferBytes: s.bufferBytes,
    verdict: result.verdict,
    violations: result.violations.length,
    frames: result.frames.length,
    framesOk,
    elapsedNs: Math.round(result.elapsedNs),
    timeUnit: "virtual ns (shown as us/1000)",
  };
  if (s.fault !== undefined) metadata.fault = s.fault;
  return {
    traceEvents: [...meta, ...events.map((e) => e.ev)],
    displayTimeUnit: "ns",
    metadata,
  };
}

/** The buffer a buffer-process track belongs to: "cam0" for "cam0" and "cam0 / vivid-cap". */
function bufferOfTrack(track: string): string {
  const i = track.indexOf(MAPPING_TRACK_SEPARATOR);
  return i >= 0 ? track.slice(0, i) : track;
}

/** A fence context's thread, named with the driver and timeline its signals report. */
function fenceTrackName(track: string, events: readonly TraceEvent[]): string {
  const named = events.find((e) => e.args?.["driver"] !== undefined);
  if (named === undefined) return track;
  return `${track} (${named.args!["driver"]} ${named.args!["timeline"]})`;
}

function withArgs(e: TraceEvent): { args?: Readonly<Record<string, ArgValue>> } {
  return e.args !== undefined ? { args: e.args } : {};
}

/**
 * The trace as JSON text, one event per line (diffs stay readable). Byte-for-byte the
 * same for the same result. Open it in ui.perfetto.dev ("Open trace file").
 */
export function traceJson(result: PipelineResult): string {
  const t = toChromeTrace(result);
  const lines = t.traceEvents.map((e) => JSON.stringify(e));
  return `{"displayTimeUnit":"ns","metadata":${JSON.stringify(t.metadata)},"traceEvents":[\n${lines.join(",\n")}\n]}\n`;
}
