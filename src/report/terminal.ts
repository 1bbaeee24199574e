/**
 * The terminal report of one pipeline run (`dmabuf run`): the verdict first, then what
 * went wrong grouped by kind with the call that was missing, whether each frame the
 * display scanned out had the right CRC, and where the virtual time went.
 *
 * A broken 100-frame run repeats the same violation for every frame; those are folded
 * into one entry ("×100 frames") so the report stays a screenful.
 */

import type { CostCategory } from "../machine/cost.js";
import type { Violation } from "../machine/violations.js";
import type { FrameResult, PipelineResult } from "../pipelines/types.js";
import { fdBalanceLabel, maintenanceCoverage, syncBalance } from "./coverage.js";
import { crcHex } from "./json.js";
import { meanFrameCosts, SHARING_COST_CATEGORIES, sharingNs, totalNs } from "./sharing-cost.js";

export interface TerminalReportOptions {
  /** ANSI colours (only for a terminal). Default false. */
  readonly color?: boolean;
}

/** Frames listed one per line up to this many; above it a summary and the first mismatches. */
export const FULL_FRAME_TABLE_MAX = 16;
/** Mismatching frames listed when the run is longer than {@link FULL_FRAME_TABLE_MAX}. */
export const FIRST_MISMATCHES = 8;

const COST_LABELS: Readonly<Record<CostCategory, string>> = {
  "cache-maintenance": "cache maintenance",
  dma: "DMA",
  "cpu-access": "CPU access",
  bounce: "bounce copies",
  iommu: "IOMMU",
  wait: "waiting",
};

/** Report order: what the thread argues about first. */
const COST_ORDER: readonly CostCategory[] = [
  "cache-maintenance",
  "dma",
  "cpu-access",
  "bounce",
  "iommu",
  "wait",
];

/** Virtual time with a unit that keeps three significant figures: 850 ns, 12.3 µs, 4.56 ms. */
export function formatDuration(ns: number): string {
  if (ns === 0) return "0";
  // Pick the unit after rounding to three significant figures (999.96 µs is "1.00 ms").
  const r = Math.abs(Number(ns.toPrecision(3)));
  if (r < 1e3) return `${Number.isInteger(ns) ? ns : Number(ns.toPrecision(3))} ns`;
  const [div, unit] = r < 1e6 ? [1e3, "µs"] : r < 1e9 ? [1e6, "ms"] : [1e9, "s"];
  const v = ns / div;
  const a = Math.abs(Number(v.toPrecision(3)));
  return `${v.toFixed(a < 10 ? 2 : a < 100 ? 1 : 0)} ${unit}`;
}

/** Bytes in binary units: 512 B, 64 KiB, 1.17 MiB. */
export function formatSize(bytes: number): string {
  if (bytes === 0) return "0";
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let v = bytes;
  let u = 0;
  while (Math.abs(v) >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  if (u === 0) return `${Number.isInteger(v) ? v : v.toFixed(1)} B`;
  return `${Number.isInteger(v) ? v : v >= 100 ? v.toFixed(0) : v >= 10 ? v.toFixed(1) : v.toFixed(2)} ${units[u]}`;
}

/** A count with thousands separators; fractional means keep one decimal. */
function formatCount(n: number): string {
  if (n === 0) return "0";
  const r = Number.isInteger(n) || n >= 100 ? Math.round(n) : Math.round(n * 10) / 10;
  const [int, frac] = String(r).split(".");
  return int!.replace(/\B(?=(\d{3})+(?!\d))/g, ",") + (frac ? `.${frac}` : "");
}

/** "1–5, 7, 9–12", at most `max` pieces. */
export function formatRanges(sorted: readonly number[], max = 6): string {
  const parts: string[] = [];
  for (let i = 0; i < sorted.length; ) {
    let j = i;
    while (j + 1 < sorted.length && sorted[j + 1] === sorted[j]! + 1) j++;
    parts.push(j === i ? `${sorted[i]}` : `${sorted[i]}–${sorted[j]}`);
    i = j + 1;
  }
  return parts.length > max ? `${parts.slice(0, max).join(", ")}, …` : parts.join(", ");
}

interface Style {
  bold(s: string): string;
  red(s: string): string;
  green(s: string): string;
  yellow(s: string): string;
  dim(s: string): string;
}

function style(color: boolean): Style {
  const wrap =
    (code: string) =>
    (s: string): string =>
      color ? `\x1b[${code}m${s}\x1b[0m` : s;
  return {
    bold: wrap("1"),
    red: wrap("31"),
    green: wrap("32"),
    yellow: wrap("33"),
    dim: wrap("2"),
  };
}

function pad(s: string, n: number, right = false): string {
  const len = [...s].length;
  if (len >= n) return s;
  return right ? " ".repeat(n - len) + s : s + " ".repeat(n - len);
}

/** Columns padded to their widest cell; `right` marks right-aligned columns. */
function table(rows: readonly (readonly string[])[], right: readonly boolean[] = []): string[] {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => [...(r[i] ?? "")].length)));
  return rows.map((r) =>
    r
      .map((c, i) => pad(c, widths[i]!, right[i] === true))
      .join("  ")
      .trimEnd(),
  );
}

/** The frame a violation belongs to: the first frame scanned out at or after it. */
function frameOf(frames: readonly FrameResult[], time: number): number | undefined {
  let lo = 0;
  let hi = frames.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (frames[mid]!.time < time) lo = mid + 1;
    else hi = mid;
  }
  return lo < frames.length ? frames[lo]!.index : undefined;
}

/** Violations that differ only in buffer, offset, time or numbers in the message. */
interface ViolationGroup {
  readonly first: Violation;
  count: number;
  lastTime: number;
  readonly buffers: string[];
  readonly frames: Set<number>;
}

function groupKey(v: Violation): string {
  const masked = v.message.replace(/0x[0-9a-f]+|\d+/gi, "#");
  return [v.kind, v.api ?? "", v.agent, v.hint.replace(/0x[0-9a-f]+|\d+/gi, "#"), masked].join(
    "\u0000",
  );
}

/** Groups violations by kind (in order of first appearance), folding repeats. */
export function groupViolations(result: PipelineResult): Map<string, ViolationGroup[]> {
  const frames = [...result.frames].sort((a, b) => a.time - b.time);
  const byKind = new Map<string, ViolationGroup[]>();
  const byKey = new Map<string, ViolationGroup>();
  for (const v of result.violations) {
    const key = groupKey(v);
    let g = byKey.get(key);
    if (g === undefined) {
      g = { first: v, count: 0, lastTime: v.time, buffers: [], frames: new Set() };
      byKey.set(key, g);
      const list = byKind.get(v.kind) ?? [];
      list.push(g);
      byKind.set(v.kind, list);
    }
    g.count++;
    g.lastTime = Math.max(g.lastTime, v.time);
    if (v.region !== undefined && !g.buffers.includes(v.region)) g.buffers.push(v.region);
    const f = frameOf(frames, v.time);
    if (f !== undefined) g.frames.add(f);
  }
  return byKind;
}

function where(v: Violation): string {
  if (v.region !== undefined) return `${v.region} at offset 0x${(v.offset ?? 0).toString(16)}`;
  if (v.phys >= 0) return `phys 0x${v.phys.toString(16)}`;
  return "";
}

function violationSection(result: PipelineResult, st: Style): string[] {
  const out: string[] = [];
  out.push(st.bold(`Violations (${result.violations.length})`));
  for (const [kind, groups] of groupViolations(result)) {
    const n = groups.reduce((s, g) => s + g.count, 0);
    out.push(`  ${st.red(kind)}: ${n}`);
    for (const g of groups) {
      const v = g.first;
      const frames = [...g.frames].sort((a, b) => a - b);
      const head: string[] = [];
      if (g.count > 1) {
        head.push(
          frames.length === g.count
            ? `×${g.count} frames (${formatRanges(frames)})`
            : frames.length > 0
              ? `×${g.count} in ${frames.length} frame${frames.length === 1 ? "" : "s"} (${formatRanges(frames)})`
              : `×${g.count}`,
        );
      } else if (frames.length === 1) {
        head.push(`frame ${frames[0]}`);
      }
      if (v.api) head.push(`api ${v.api}`);
      head.push(`by ${v.agent}`);
      const w = where(v);
      if (w) head.push(w);
      if (v.len > 0) head.push(`${formatCount(v.len)} bytes`);
      head.push(
        g.count > 1 ? `first at ${formatDuration(v.time)}` : `at ${formatDuration(v.time)}`,
      );
      out.push(`    ${head.join(", ")}`);
      if (g.buffers.length > 1) {
        const shown = g.buffers.slice(0, 8).join(", ");
        out.push(`      buffers: ${shown}${g.buffers.length > 8 ? ", …" : ""}`);
      }
      out.push(`      ${v.message}`);
      if (v.hint) out.push(`      ${st.yellow("hint:")} ${v.hint}`);
    }
  }
  return out;
}

function frameRow(f: FrameResult, st: Style): string[] {
  return [
    String(f.index),
    formatDuration(f.time),
    crcHex(f.crc),
    crcHex(f.expectedCrc),
    f.ok ? st.green("ok") : st.red("WRONG"),
  ];
}

function frameSection(result: PipelineResult, st: Style): string[] {
  const frames = result.frames;
  const wrong = frames.filter((f) => !f.ok);
  const out = [st.bold("Frames (CRC-32 of what the display scanned out vs. the expected frame)")];
  if (frames.length === 0) {
    out.push("  no frame was displayed");
    return out;
  }
  const header = ["frame", "time", "crc", "expected", ""];
  if (frames.length <= FULL_FRAME_TABLE_MAX) {
    const rows = [header, ...frames.map((f) => frameRow(f, st))];
    for (const l of table(rows, [true, true])) out.push(`  ${l}`);
    if (wrong.length > 0) out.push(`  ${wrong.length} of ${frames.length} frames wrong`);
    return out;
  }
  if (wrong.length === 0) {
    out.push(`  all ${frames.length} frames match`);
    return out;
  }
  out.push(
    `  ${frames.length - wrong.length} of ${frames.length} frames match; ${wrong.length} wrong (${formatRanges(wrong.map((f) => f.index))})`,
  );
  const first = wrong.slice(0, FIRST_MISMATCHES);
  out.push(`  first ${first.length === 1 ? "mismatch" : `${first.length} mismatches`}:`);
  const rows = [header, ...first.map((f) => frameRow(f, st))];
  for (const l of table(rows, [true, true])) out.push(`  ${l}`);
  return out;
}

/** Multi-sink graphs: every sink's frames against what they should have been there. */
function sinkSection(result: PipelineResult, st: Style): string[] {
  const out = [st.bold(`Sinks (${result.sinks.length}; the frames above are the primary's)`)];
  const rows = result.sinks.map((k) => {
    const wrong = k.frames.filter((f) => !f.ok).map((f) => f.index);
    return [
      k.name,
      `${k.device} (${k.kind})${k.primary ? ", primary" : ""}`,
      `${k.frames.length - wrong.length}/${k.frames.length} frames correct`,
      wrong.length === 0 ? st.green("ok") : st.red(`WRONG: ${formatRanges(wrong)}`),
    ];
  });
  for (const l of table(rows)) out.push(`  ${l}`);
  return out;
}

function costSection(result: PipelineResult, st: Style): string[] {
  const mean = meanFrameCosts(result);
  const total = result.costs;
  const rows: string[][] = [["", "per frame", "ops", "bytes", "total", "ops", "bytes"]];
  let meanNs = 0;
  let runNs = 0;
  for (const c of COST_ORDER) {
    const m = mean[c];
    const t = total[c];
    meanNs += m.ns;
    runNs += t.ns;
    rows.push([
      COST_LABELS[c],
      formatDuration(m.ns),
      formatCount(m.ops),
      formatSize(m.bytes),
      formatDuration(t.ns),
      formatCount(t.ops),
      formatSize(t.bytes),
    ]);
  }
  rows.push(["total", formatDuration(meanNs), "", "", formatDuration(runNs), "", ""]);
  const out = [
    st.bold(`Costs (virtual time; per frame = mean over ${result.frames.length} frames)`),
    `  sharing cost per frame: ${formatDuration(sharingNs(mean))} (${SHARING_COST_CATEGORIES.map((c) => COST_LABELS[c]).join(" + ")}; ${formatDuration(sharingNs(total))} over the run)`,
    `  total per frame:        ${formatDuration(meanNs)} (all categories: device transfers and waiting included)`,
  ];
  for (const l of table(rows, [false, true, true, true, true, true, true])) out.push(`  ${l}`);
  const td = result.teardown;
  if (td !== undefined)
    out.push(
      `  teardown after the last frame (REQBUFS(0), RMFB, GEM_CLOSE, close; not in the figures above): ${formatDuration(totalNs(td.costs))}, sharing cost ${formatDuration(sharingNs(td.costs))}, ${td.violations} violation(s)`,
    );
  return out;
}

function coverageSection(result: PipelineResult, st: Style): string[] {
  const rows = maintenanceCoverage(result);
  if (rows.length === 0) return [];
  const table_: string[][] = [["calls", "asked", "maintained", "coverage", "site"]];
  const notes = new Map<number, string>();
  for (const r of rows) {
    table_.push([
      formatCount(r.calls),
      formatSize(r.requestedBytes),
      formatSize(r.maintainedBytes),
      r.maintainedBytes === 0 ? "none" : `${Math.floor(r.coverage * 100)}%`,
      r.site,
    ]);
    const g = r.firstGap;
    if (g !== undefined)
      notes.set(
        table_.length - 1,
        `first short call (#${g.atCall}): ${formatSize(g.maintainedBytes)} of ${formatSize(g.requestedBytes)}${g.picture !== undefined ? ` [${g.picture}]` : ""}`,
      );
  }
  const out = [
    st.bold(
      "Cache maintenance by call site (bytes each site was asked to cover, and covered; setup and teardown included)",
    ),
  ];
  table(table_, [true, true, true, true, false]).forEach((l, i) => {
    out.push(`  ${l}`);
    const n = notes.get(i);
    if (n !== undefined) out.push(`      ${st.yellow(n)}`);
  });
  return out;
}

function balanceSection(result: PipelineResult, st: Style): string[] {
  const rows = syncBalance(result);
  if (rows.length === 0) return [];
  const out = [st.bold("CPU access brackets (DMA_BUF_IOCTL_SYNC START/END per fd per frame)")];
  for (const b of rows) {
    const head = `  ${fdBalanceLabel(b)}: ${b.starts} START, ${b.ends} END in ${b.frames} frame${b.frames === 1 ? "" : "s"}`;
    if (b.unbalanced.length === 0) {
      out.push(`${head}: balanced`);
      continue;
    }
    const kinds = new Map<string, number[]>();
    for (const f of b.unbalanced) {
      const k = `${f.starts} START / ${f.ends} END`;
      kinds.set(k, [...(kinds.get(k) ?? []), f.frame]);
    }
    const what = [...kinds].map(
      ([k, fs]) => `frame${fs.length === 1 ? "" : "s"} ${formatRanges(fs)}: ${k}`,
    );
    out.push(`${head}: ${st.red("unbalanced")} (${what.join("; ")})`);
  }
  return out;
}

function describeRun(result: PipelineResult): string {
  const s = result.spec;
  const source = s.source === "dma-heap" ? `dma-heap (${s.heap})` : s.source;
  const parts = [
    `${s.pipeline} on ${s.profile}`,
    `${s.strategy} mapping`,
    `${source} buffers ×${s.buffers}`,
    `${s.width}x${s.height} ${s.format} (${formatSize(s.bufferBytes)})`,
    `${s.frames} frames at ${s.fps} fps`,
  ];
  const cpu = [s.cpuReads ? "reads" : "", s.cpuWrites ? "writes" : ""].filter(Boolean).join("+");
  if (cpu) parts.push(`CPU ${cpu}`);
  return `${s.name ? `${s.name}: ` : ""}${parts.join(", ")}`;
}

/** The terminal report of a run (no trailing newline). */
export function formatRunReport(
  result: PipelineResult,
  options: TerminalReportOptions = {},
): string {
  const st = style(options.color === true);
  const frames = result.frames.length;
  const wrong = result.frames.filter((f) => !f.ok).length;
  const kinds = new Set(result.violations.map((v) => v.kind)).size;
  const nv = result.violations.length;
  const vText = `${nv} violation${nv === 1 ? "" : "s"}${nv > 0 ? ` (${kinds} kind${kinds === 1 ? "" : "s"})` : ""}`;
  const fText =
    wrong > 0 ? `${wrong} of ${frames} frames wrong` : `${frames} of ${frames} frames correct`;
  const lines: string[] = [];
  lines.push(
    result.verdict === "coherent"
      ? `${st.bold(st.green("COHERENT"))}: ${vText}, ${fText}`
      : `${st.bold(st.red("INCOHERENT"))}: ${vText}, ${fText}`,
  );
  lines.push(st.dim(describeRun(result)));
  const s = result.spec;
  const extras: string[] = [];
  if (s.fault) extras.push(`deliberate fault: ${s.fault}`);
  if (s.hints?.noCacheInvalidate) extras.push("V4L2_BUF_FLAG_NO_CACHE_INVALIDATE");
  if (s.hints?.noCacheClean) extras.push("V4L2_BUF_FLAG_NO_CACHE_CLEAN");
  if (extras.length) lines.push(st.dim(extras.join("; ")));
  lines.push("");
  if (nv > 0) {
    lines.push(...violationSection(result, st), "");
  }
  lines.push(...frameSection(result, st), "");
  if (result.sinks.length > 1) lines.push(...sinkSection(result, st), "");
  const balance = balanceSection(result, st);
  if (balance.length > 0) lines.push(...balance, "");
  const coverage = coverageSection(result, st);
  if (coverage.length > 0) lines.push(...coverage, "");
  lines.push(...costSection(result, st), "");
  lines.push(
    `Elapsed: ${formatDuration(result.elapsedNs)} of virtual time (first QBUF to last frame displayed)`,
  );
  return lines.join("\n");
}
