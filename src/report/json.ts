/**
 * The machine-readable report of one pipeline run (`dmabuf run --json`): the same facts
 * as the terminal report, as stable JSON for CI scripts and notebooks. Keys come out in
 * a fixed order (objects are built field by field; the spec's keys are sorted), so two
 * runs of the same scenario give byte-identical reports.
 */

import { COST_CATEGORIES, type CostCategory, type CostSnapshot } from "../machine/cost.js";
import type { ViolationKind } from "../machine/violations.js";
import type { BufferInfo, FrameResult, PipelineResult, Verdict } from "../pipelines/types.js";
import { type FdBalance, maintenanceCoverage, type SiteCoverage, syncBalance } from "./coverage.js";
import { meanFrameCosts, SHARING_COST_CATEGORIES, sharingNs, totalNs } from "./sharing-cost.js";

export { meanFrameCosts } from "./sharing-cost.js";

/** Bumped when a field changes meaning or goes away (adding fields does not bump it). */
export const JSON_REPORT_VERSION = 1;

export interface JsonCostEntry {
  readonly ns: number;
  readonly ops: number;
  readonly bytes: number;
}

export type JsonCosts = { readonly [C in CostCategory]: JsonCostEntry };

export interface JsonViolation {
  readonly seq: number;
  readonly kind: ViolationKind;
  /** For api-misuse and leak: "dma-api", "dma-buf", "v4l2", "drm"...; else null. */
  readonly api: string | null;
  /** The buffer (registered region) the first affected byte is in, or null. */
  readonly buffer: string | null;
  /** Offset in that buffer, or null. */
  readonly offset: number | null;
  /** Bytes affected. */
  readonly length: number;
  /** Physical address of the first affected byte, or null when none applies. */
  readonly phys: number | null;
  /** Virtual time of discovery, ns. */
  readonly time: number;
  /** "cpu" or a device name. */
  readonly agent: string;
  readonly message: string;
  /** The call that was missing or misused. */
  readonly hint: string;
}

export interface JsonFrame {
  readonly index: number;
  /** CRC-32 the display computed, as a number and as "0x%08x". */
  readonly crc: number;
  readonly crcHex: string;
  readonly expectedCrc: number;
  readonly expectedCrcHex: string;
  readonly ok: boolean;
  /** Virtual time of scanout, ns. */
  readonly time: number;
  readonly costs: JsonCosts;
}

export interface JsonReport {
  readonly tool: "dmabuf";
  readonly schemaVersion: number;
  /** The scenario's name, or null. */
  readonly scenario: string | null;
  /** The spec as run, every default filled in, keys sorted. */
  readonly spec: Readonly<Record<string, unknown>>;
  readonly verdict: Verdict;
  readonly summary: {
    readonly violations: number;
    /** Violation counts by kind, kinds in alphabetical order. */
    readonly violationsByKind: Readonly<Record<string, number>>;
    readonly frames: number;
    readonly framesOk: number;
    readonly framesWrong: number;
  };
  readonly violations: readonly JsonViolation[];
  readonly frames: readonly JsonFrame[];
  readonly buffers: readonly BufferInfo[];
  /**
   * Present only for graphs with more than one sink: each sink's frames (the top-level
   * `frames` are the primary sink's), so single-sink reports keep their shape.
   */
  readonly sinks?: readonly {
    readonly name: string;
    readonly device: string;
    readonly kind: string;
    readonly primary: boolean;
    readonly ok: boolean;
    readonly frames: readonly JsonFrame[];
  }[];
  readonly costs: {
    readonly categories: readonly CostCategory[];
    /** Mean over the displayed frames, per category. */
    readonly perFrame: JsonCosts;
    /** Sum over the run (setup, the frames and STREAMOFF; the teardown is `teardown`), per category. */
    readonly total: JsonCosts;
    /** Every category, per frame (mean over the displayed frames) and over the run. */
    readonly perFrameNs: number;
    readonly totalNs: number;
    /** The categories of the sharing cost (src/report/sharing-cost.ts). */
    readonly sharingCategories: readonly CostCategory[];
    /** The sharing cost per frame (mean over the displayed frames) and over the run. */
    readonly sharingPerFrameNs: number;
    readonly sharingTotalNs: number;
  };
  /** Virtual time from the first QBUF to the last frame displayed, ns. */
  readonly elapsedNs: number;
  /**
   * The program's teardown after the last frame (REQBUFS(0), RMFB, GEM_CLOSE, munmap,
   * close), apart from the run's figures: when it started, how long it took, its
   * violations (the last ones of `violations`) and costs.
   */
  readonly teardown?: {
    readonly startNs: number;
    readonly elapsedNs: number;
    readonly violations: number;
    readonly costs: JsonCosts;
    readonly totalNs: number;
    readonly sharingNs: number;
  };
  /** DMA_BUF_IOCTL_SYNC START/END per fd per frame, with the frames where they do not pair up (src/report/coverage.ts). */
  readonly cpuAccessBrackets: readonly FdBalance[];
  /** Every cache-maintenance and sync call site: bytes asked for and covered, the first short call's picture. */
  readonly maintenance: readonly SiteCoverage[];
}

/** "0x%08x" */
export function crcHex(crc: number): string {
  return `0x${(crc >>> 0).toString(16).padStart(8, "0")}`;
}

/** Copies a value for JSON with object keys sorted and non-finite numbers as null. */
function sortedJson(v: unknown): unknown {
  if (typeof v === "number") return Number.isFinite(v) ? v : null;
  if (Array.isArray(v)) return v.map(sortedJson);
  if (v !== null && typeof v === "object") {
    const out: Record<string, unknown> = {};
    for (const k of Object.keys(v).sort()) {
      const x = (v as Record<string, unknown>)[k];
      if (x !== undefined) out[k] = sortedJson(x);
    }
    return out;
  }
  return v;
}

function costs(s: CostSnapshot): JsonCosts {
  const out = {} as Record<CostCategory, JsonCostEntry>;
  for (const c of COST_CATEGORIES) {
    const e = s[c];
    out[c] = { ns: e.ns, ops: e.ops, bytes: e.bytes };
  }
  return out;
}

/** The JSON report of a run. */
export function toJsonReport(result: PipelineResult): JsonReport {
  const byKind: Record<string, number> = {};
  for (const v of result.violations) byKind[v.kind] = (byKind[v.kind] ?? 0) + 1;
  const violationsByKind: Record<string, number> = {};
  for (const k of Object.keys(byKind).sort()) violationsByKind[k] = byKind[k]!;
  const framesOk = result.frames.filter((f) => f.ok).length;
  const perFrame = costs(meanFrameCosts(result));
  const total = costs(result.costs);
  return {
    tool: "dmabuf",
    schemaVersion: JSON_REPORT_VERSION,
    scenario: result.spec.name ?? null,
    spec: sortedJson(result.spec) as Record<string, unknown>,
    verdict: result.verdict,
    summary: {
      violations: result.violations.length,
      violationsByKind,
      frames: result.frames.length,
      framesOk,
      framesWrong: result.frames.length - framesOk,
    },
    violations: result.violations.map((v) => ({
      seq: v.seq,
      kind: v.kind,
      api: v.api ?? null,
      buffer: v.region ?? null,
      offset: v.offset ?? null,
      length: v.len,
      phys: v.phys >= 0 ? v.phys : null,
      time: v.time,
      agent: v.agent,
      message: v.message,
      hint: v.hint,
    })),
    frames: result.frames.map(jsonFrame),
    buffers: result.buffers.map((b) => ({
      name: b.name,
      size: b.size,
      exporter: b.exporter,
      importers: [...b.importers],
    })),
    ...(result.sinks.length > 1
      ? {
          sinks: result.sinks.map((k) => ({
            name: k.name,
            device: k.device,
            kind: k.kind,
            primary: k.primary,
            ok: k.ok,
            frames: k.frames.map(jsonFrame),
          })),
        }
      : {}),
    costs: {
      categories: [...COST_CATEGORIES],
      perFrame,
      total,
      perFrameNs: totalNs(perFrame),
      totalNs: totalNs(total),
      sharingCategories: [...SHARING_COST_CATEGORIES],
      sharingPerFrameNs: sharingNs(perFrame),
      sharingTotalNs: sharingNs(total),
    },
    elapsedNs: result.elapsedNs,
    ...(result.teardown !== undefined
      ? {
          teardown: {
            startNs: result.teardown.start,
            elapsedNs: result.teardown.elapsedNs,
            violations: result.teardown.violations,
            costs: costs(result.teardown.costs),
            totalNs: totalNs(result.teardown.costs),
            sharingNs: sharingNs(result.teardown.costs),
          },
        }
      : {}),
    cpuAccessBrackets: syncBalance(result),
    maintenance: maintenanceCoverage(result),
  };
}

function jsonFrame(f: FrameResult): JsonFrame {
  return {
    index: f.index,
    crc: f.crc >>> 0,
    crcHex: crcHex(f.crc),
    expectedCrc: f.expectedCrc >>> 0,
    expectedCrcHex: crcHex(f.expectedCrc),
    ok: f.ok,
    time: f.time,
    costs: costs(f.costs),
  };
}
