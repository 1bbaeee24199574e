/**
 * The plots of the HTML reports, rendered on the server as SVG text so the report needs
 * no script and no network: Vega-Lite charts (compiled to Vega and drawn by a headless
 * vega View with no renderer) for costs and sweeps, and a hand-drawn timeline of the
 * trace with one lane per track.
 *
 * Sizes are bounded whatever the run's length: the bar chart groups frames into at most
 * {@link MAX_BARS} bars, and the timeline merges what falls on the same pixel column, so
 * a lane has at most one rectangle per pixel per category.
 */

import { parse, View } from "vega";
import { compile, type TopLevelSpec } from "vega-lite";
import type { Ns } from "../machine/clock.js";
import { COST_CATEGORIES, type CostCategory } from "../machine/cost.js";
import type { TraceEvent } from "../machine/trace.js";
import type { PipelineResult } from "../pipelines/types.js";
import { rowSharingNs, wholeCacheCrossover } from "./sharing-cost.js";
import type { SweepReport, SweepRow } from "./sweep-types.js";
import { classifyTrack, FRAMES_TRACK, TRACE_PROCESSES } from "./trace.js";

/** Escapes text for HTML and SVG content and attribute values. */
export function escapeXml(text: string): string {
  return text
    .replace(/&/g, "&amp;")
    .replace(/</g, "&lt;")
    .replace(/>/g, "&gt;")
    .replace(/"/g, "&quot;")
    .replace(/'/g, "&#39;");
}

/** One colour per cost category, used by every plot and table swatch. */
export const CATEGORY_COLORS: Readonly<Record<CostCategory, string>> = {
  "cpu-access": "#4e79a7",
  "cache-maintenance": "#f28e2b",
  dma: "#59a14f",
  bounce: "#b07aa1",
  iommu: "#76b7b2",
  wait: "#bab0ac",
};

/** Colours of the trace categories in the timeline (machine categories match the costs). */
const TRACE_CAT_COLORS: Readonly<Record<string, string>> = {
  cpu: CATEGORY_COLORS["cpu-access"],
  cache: CATEGORY_COLORS["cache-maintenance"],
  dma: CATEGORY_COLORS.dma,
  bounce: CATEGORY_COLORS.bounce,
  iommu: CATEGORY_COLORS.iommu,
  wait: CATEGORY_COLORS.wait,
};

/** Owners of a buffer (cat "ownership" spans), by the pipelines' naming convention. */
const OWNER_COLORS: Readonly<Record<string, string>> = {
  userspace: "#d4c7b0",
  "vivid-cap": "#edc948",
  simgpu: "#ff9da7",
  simdisplay: "#9fd3cf",
  "cpu (DMA_BUF_SYNC)": "#a0bfe0",
  // What the kernel records: a begin/end_cpu_access bracket, a DMA API hand-over to the CPU.
  "cpu access": "#a0bfe0",
  cpu: "#c6dbef",
};
const EXTRA_OWNER_COLORS = ["#c5b0d5", "#c49c94", "#dbdb8d", "#9edae5", "#f7b6d2", "#c7c7c7"];

/** Colour of an ownership span: fixed for the known owners, else stable per name. */
export function ownerColor(owner: string): string {
  const known = OWNER_COLORS[owner];
  if (known !== undefined) return known;
  let h = 0;
  for (let i = 0; i < owner.length; i++) h = (h * 31 + owner.charCodeAt(i)) >>> 0;
  return EXTRA_OWNER_COLORS[h % EXTRA_OWNER_COLORS.length]!;
}

/** Compiles a Vega-Lite spec and renders it to SVG text, headless, with no network. */
export async function renderVegaLite(spec: TopLevelSpec): Promise<string> {
  const vega = compile(spec).spec;
  const view = new View(parse(vega), { renderer: "none" });
  try {
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}

/** "12.3 µs", "4.56 ms", "780 ns" for a virtual duration. */
export function formatNs(ns: Ns): string {
  const a = Math.abs(ns);
  if (a >= 1e9) return `${(ns / 1e9).toPrecision(3)} s`;
  if (a >= 1e6) return `${(ns / 1e6).toPrecision(3)} ms`;
  if (a >= 1e3) return `${(ns / 1e3).toPrecision(3)} µs`;
  return `${Number(ns.toPrecision(3))} ns`;
}

/** "4 KiB", "1.5 MiB", "100 B". */
export function formatBytes(n: number): string {
  if (n >= 1 << 30) return `${Number((n / (1 << 30)).toPrecision(3))} GiB`;
  if (n >= 1 << 20) return `${Number((n / (1 << 20)).toPrecision(3))} MiB`;
  if (n >= 1 << 10) return `${Number((n / (1 << 10)).toPrecision(3))} KiB`;
  return `${n} B`;
}

/** Vega expression labelling a byte axis the way {@link formatBytes} does. */
const BYTES_LABEL_EXPR =
  "datum.value >= 1073741824 ? format(datum.value / 1073741824, '~g') + ' GiB' : " +
  "datum.value >= 1048576 ? format(datum.value / 1048576, '~g') + ' MiB' : " +
  "datum.value >= 1024 ? format(datum.value / 1024, '~g') + ' KiB' : datum.value + ' B'";

const CATEGORY_SCALE = {
  domain: [...COST_CATEGORIES],
  range: COST_CATEGORIES.map((c) => CATEGORY_COLORS[c]),
};

const VL_SCHEMA = "https://vega.github.io/schema/vega-lite/v6.json";

/** Bars at most in the cost-per-frame chart; longer runs are grouped. */
export const MAX_BARS = 120;

/** Stacked bars: virtual time per frame by cost category (groups of frames for long runs). */
export async function costPerFramePlot(result: PipelineResult): Promise<string> {
  const frames = result.frames;
  const group = Math.max(1, Math.ceil(frames.length / MAX_BARS));
  const values: { order: number; frame: string; category: CostCategory; us: number }[] = [];
  for (let g = 0; g * group < frames.length; g++) {
    const part = frames.slice(g * group, (g + 1) * group);
    const first = part[0]!.index;
    const last = part[part.length - 1]!.index;
    const label = part.length === 1 ? `${first}` : `${first}–${last}`;
    for (const c of COST_CATEGORIES) {
      const ns = part.reduce((s, f) => s + f.costs[c].ns, 0) / part.length;
      if (ns > 0) values.push({ order: g, frame: label, category: c, us: ns / 1000 });
    }
  }
  const spec: TopLevelSpec = {
    $schema: VL_SCHEMA,
    title: group === 1 ? "Virtual time per frame" : `Virtual time per frame (mean of ${group})`,
    width: Math.min(900, Math.max(240, 18 * Math.ceil(frames.length / group))),
    height: 240,
    data: { values },
    mark: { type: "bar" },
    encoding: {
      x: {
        field: "frame",
        type: "ordinal",
        sort: { field: "order" },
        title: group === 1 ? "frame" : "frames",
        axis: { labelAngle: 0, labelOverlap: true },
      },
      y: { field: "us", type: "quantitative", aggregate: "sum", title: "µs per frame" },
      color: { field: "category", type: "nominal", scale: CATEGORY_SCALE, title: "cost" },
      order: { field: "category", sort: "ascending" },
    },
  };
  return renderVegaLite(spec);
}

// ---------------------------------------------------------------------------------------
// Timeline

/** Lanes at most in the timeline; further tracks are listed as left out. */
export const MAX_LANES = 48;

interface Lane {
  readonly track: string;
  readonly group: string;
  readonly events: TraceEvent[];
}

/** A nice step for about `target` ticks over `span` ns: 1, 2 or 5 times a power of ten. */
function tickStep(span: number, target: number): number {
  const raw = span / target;
  const p = 10 ** Math.floor(Math.log10(raw));
  for (const m of [1, 2, 5, 10]) if (m * p >= raw) return m * p;
  return 10 * p;
}

/**
 * The trace as a timeline: one lane per track (CPU, devices, buffers, fences, frames),
 * spans coloured by category (ownership spans by owner), fence and frame instants as
 * ticks, violations as red markers on the lane of whoever acted.
 */
export function timelineSvg(result: PipelineResult, width = 1100): string {
  const bufferNames = new Set(result.buffers.map((b) => b.name));
  const byTrack = new Map<string, TraceEvent[]>();
  const add = (track: string): TraceEvent[] => {
    let l = byTrack.get(track);
    if (l === undefined) {
      l = [];
      byTrack.set(track, l);
    }
    return l;
  };
  add("cpu");
  for (const e of result.trace) add(e.track).push(e);
  for (const v of result.violations) add(v.agent);
  for (const b of result.buffers) add(b.name);
  if (result.frames.length > 0) add(FRAMES_TRACK);

  const groups = new Map<string, string[]>();
  for (const p of TRACE_PROCESSES) groups.set(p, []);
  for (const [track, evs] of byTrack) {
    groups.get(classifyTrack(track, evs, bufferNames))!.push(track);
  }
  const bufferOrder = result.buffers.map((b) => b.name);
  const rank = (t: string): number =>
    bufferOrder.includes(t) ? bufferOrder.indexOf(t) : bufferOrder.length;
  groups.get("buffers")!.sort((a, b) => rank(a) - rank(b));
  let lanes: Lane[] = [];
  for (const [group, tracks] of groups) {
    for (const track of tracks) lanes.push({ track, group, events: byTrack.get(track)! });
  }
  const leftOut = Math.max(0, lanes.length - MAX_LANES);
  lanes = lanes.slice(0, MAX_LANES);
  const laneIndex = new Map(lanes.map((l, i) => [l.track, i]));

  // Time range.
  let t0 = Number.POSITIVE_INFINITY;
  let t1 = Number.NEGATIVE_INFINITY;
  const see = (a: number, b = a): void => {
    if (a < t0) t0 = a;
    if (b > t1) t1 = b;
  };
  for (const e of result.trace) see(e.ts, e.ts + (e.dur ?? 0));
  for (const v of result.violations) see(v.time);
  for (const f of result.frames) see(f.time);
  if (!Number.isFinite(t0)) {
    t0 = 0;
    t1 = Math.max(1, result.elapsedNs);
  }
  t0 = Math.min(t0, 0);
  if (t1 <= t0) t1 = t0 + 1;

  const labelW = 170;
  const plotW = width - labelW - 20;
  const laneH = 16;
  const laneGap = 5;
  const top = 28;
  const groupGap = 10;
  // Vertical position of each lane, with a gap between groups.
  const laneY: number[] = [];
  let y = top;
  lanes.forEach((l, i) => {
    if (i > 0 && lanes[i - 1]!.group !== l.group) y += groupGap;
    laneY.push(y);
    y += laneH + laneGap;
  });
  const axisY = y + 4;
  const height = axisY + 30;
  const xOf = (t: number): number => labelW + ((t - t0) / (t1 - t0)) * plotW;
  const out: string[] = [];
  const fmt = (n: number): string => n.toFixed(1);

  out.push(
    `<svg xmlns="http://www.w3.org/2000/svg" class="timeline" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="11">`,
  );
  out.push(`<rect width="${width}" height="${height}" fill="white"/>`);
  out.push(
    `<text x="${labelW}" y="14" font-size="13" font-weight="bold">Timeline (virtual time)</text>`,
  );

  // Lanes, labels and group names.
  lanes.forEach((l, i) => {
    const ly = laneY[i]!;
    const first = i === 0 || lanes[i - 1]!.group !== l.group;
    out.push(
      `<rect class="lane" x="${labelW}" y="${ly}" width="${plotW}" height="${laneH}" fill="#f4f4f4"/>`,
    );
    const label = l.track.length > 24 ? `${l.track.slice(0, 23)}…` : l.track;
    out.push(
      `<g><title>${escapeXml(`${l.group}: ${l.track}`)}</title><text class="lane-label" x="${labelW - 6}" y="${ly + laneH - 4}" text-anchor="end">${escapeXml(label)}</text></g>`,
    );
    if (first) {
      out.push(
        `<text x="4" y="${ly + laneH - 4}" fill="#777" font-style="italic">${escapeXml(l.group)}</text>`,
      );
    }
  });

  // Spans: exact (merged within half a pixel) while the whole timeline stays within
  // SPAN_BUDGET rectangles; else the densest lanes are drawn in bins of 1, 2, 4... px.
  const spansOf = lanes.map((l) =>
    l.events
      .filter((e) => e.ph === "X")
      .map((e, k) => ({ e, k }))
      .sort((a, b) => a.e.ts - b.e.ts || a.k - b.k)
      .map((x) => x.e),
  );
  const exact = spansOf.map((spans) => exactPieces(spans, xOf));
  let pieces = exact;
  let binned = lanes.map(() => 0);
  const count = (ps: readonly Piece[][]): number => ps.reduce((n, p) => n + p.length, 0);
  if (count(exact) > SPAN_BUDGET) {
    const share = SPAN_BUDGET / lanes.length;
    for (let bin = 1; ; bin *= 2) {
      binned = exact.map((p) => (p.length > share ? bin : 0));
      pieces = exact.map((p, i) =>
        binned[i]! > 0 ? binnedPieces(spansOf[i]!, xOf, labelW, plotW, bin) : p,
      );
      if (count(pieces) <= SPAN_BUDGET || bin >= plotW) break;
    }
  }
  lanes.forEach((l, i) => {
    const ly = laneY[i]!;
    const isOwnership = l.events.some((e) => e.cat === "ownership");
    for (const s of pieces[i]!) {
      const full = isOwnership ? laneH : laneH - 4;
      const h = s.subs !== undefined ? full / s.subs : full;
      const yy = (isOwnership ? ly : ly + 2) + (s.sub ?? 0) * h;
      const w = Math.max(0.6, s.x1 - s.x0);
      const title =
        binned[i]! > 0
          ? `${s.name} (in ${binned[i]} px bins; paler = less of the bin)`
          : s.n === 1
            ? `${s.name} (${formatNs(s.ns)})`
            : `${s.n} spans, ${s.name} (${formatNs(s.ns)} in all)`;
      const opacity =
        s.opacity !== undefined && s.opacity < 1 ? ` fill-opacity="${s.opacity}"` : "";
      out.push(
        `<rect class="span" x="${fmt(s.x0)}" y="${fmt(yy)}" width="${fmt(w)}" height="${fmt(h)}" fill="${s.color}"${opacity}><title>${escapeXml(title)}</title></rect>`,
      );
      if (isOwnership && w > 60 && s.n === 1 && binned[i] === 0) {
        const owner = s.name.slice(s.name.indexOf(":") + 2);
        const max = Math.floor(w / 6.5);
        const text = owner.length > max ? `${owner.slice(0, Math.max(1, max - 1))}…` : owner;
        out.push(
          `<text x="${fmt(s.x0 + 3)}" y="${ly + laneH - 4}" font-size="10" fill="#333" pointer-events="none">${escapeXml(text)}</text>`,
        );
      }
    }
  });

  // Instants (fences and the like): a thin tick per column, columns widened when dense.
  lanes.forEach((l, i) => {
    const ly = laneY[i]!;
    const instants = l.events.filter((e) => e.ph === "i");
    const bin = binFor(
      instants.map((e) => xOf(e.ts)),
      plotW,
    );
    const seen = new Map<number, { n: number; name: string }>();
    for (const e of instants) {
      const px = snap(xOf(e.ts), bin, labelW);
      const s = seen.get(px);
      if (s) s.n++;
      else seen.set(px, { n: 1, name: `${e.cat}: ${e.name}` });
    }
    for (const [px, s] of [...seen].sort((a, b) => a[0] - b[0])) {
      const title = s.n === 1 ? s.name : `${s.name} (+${s.n - 1} more)`;
      out.push(
        `<rect class="instant" x="${fmt(px - 0.5)}" y="${ly}" width="1.2" height="${laneH}" fill="#555"><title>${escapeXml(title)}</title></rect>`,
      );
    }
  });

  // Frame results on the frames lane: green ok, red CRC mismatch (mismatch wins a pixel).
  const fi = laneIndex.get(FRAMES_TRACK);
  if (fi !== undefined) {
    const ly = laneY[fi]!;
    const cols = new Map<number, { ok: number; bad: number; first: string }>();
    const bin = binFor(
      result.frames.map((f) => xOf(f.time)),
      plotW,
    );
    for (const f of result.frames) {
      const px = snap(xOf(f.time), bin, labelW);
      let c = cols.get(px);
      if (c === undefined) {
        c = { ok: 0, bad: 0, first: "" };
        cols.set(px, c);
      }
      if (f.ok) c.ok++;
      else {
        if (c.bad === 0)
          c.first = `frame ${f.index}: CRC 0x${hex8(f.crc)}, expected 0x${hex8(f.expectedCrc)}`;
        c.bad++;
      }
      if (c.first === "") c.first = `frame ${f.index} ok (CRC 0x${hex8(f.crc)})`;
    }
    for (const [px, c] of [...cols].sort((a, b) => a[0] - b[0])) {
      const bad = c.bad > 0;
      const n = c.ok + c.bad;
      const title = n === 1 ? c.first : `${c.first} (${n} frames here, ${c.bad} wrong)`;
      out.push(
        `<rect class="${bad ? "frame-bad" : "frame-ok"}" x="${fmt(px - 1.5)}" y="${ly}" width="3" height="${laneH}" fill="${bad ? "#d62728" : "#2ca02c"}"><title>${escapeXml(title)}</title></rect>`,
      );
    }
  }

  // Violations: a red triangle above the agent's lane.
  const marks = new Map<string, { n: number; text: string; x: number; ly: number }>();
  for (const v of result.violations) {
    const li = laneIndex.get(v.agent);
    if (li === undefined) continue;
    const px = Math.round(xOf(v.time));
    const key = `${li}:${px}`;
    const m = marks.get(key);
    if (m) m.n++;
    else marks.set(key, { n: 1, text: `${v.kind}: ${v.message}`, x: px, ly: laneY[li]! });
  }
  for (const m of [...marks.values()].sort((a, b) => a.ly - b.ly || a.x - b.x)) {
    const title = m.n === 1 ? m.text : `${m.text} (+${m.n - 1} more)`;
    out.push(
      `<path class="violation" d="M${m.x - 5},${m.ly - 3} L${m.x + 5},${m.ly - 3} L${m.x},${m.ly + 7} Z" fill="#d62728" stroke="white" stroke-width="0.8"><title>${escapeXml(title)}</title></path>`,
    );
  }

  // Time axis.
  const step = tickStep(t1 - t0, 8);
  out.push(
    `<line x1="${labelW}" x2="${labelW + plotW}" y1="${axisY}" y2="${axisY}" stroke="#888"/>`,
  );
  for (let t = Math.ceil(t0 / step) * step; t <= t1 + 1e-9; t += step) {
    const x = fmt(xOf(t));
    out.push(`<line x1="${x}" x2="${x}" y1="${axisY}" y2="${axisY + 4}" stroke="#888"/>`);
    out.push(
      `<text x="${x}" y="${axisY + 16}" text-anchor="middle" fill="#444">${escapeXml(formatNs(t))}</text>`,
    );
  }
  if (leftOut > 0) {
    out.push(
      `<text x="${labelW}" y="${height - 2}" fill="#a00">${leftOut} more track(s) not drawn</text>`,
    );
  }
  out.push("</svg>");
  return out.join("\n");
}

/** Span rectangles at most in one timeline. */
export const SPAN_BUDGET = 2500;
/** Instant ticks at most per lane. */
const TICKS_PER_LANE = 250;

/** A rectangle of the timeline: one span, spans merged, or a bin's main occupant. */
interface Piece {
  x0: number;
  x1: number;
  n: number;
  ns: number;
  name: string;
  color: string;
  opacity?: number;
  /** Strip `sub` of `subs` in the lane (binned lanes: one strip per colour). */
  sub?: number;
  subs?: number;
}

function spanColor(e: TraceEvent): string {
  return e.cat === "ownership" ? ownerColor(e.name) : (TRACE_CAT_COLORS[e.cat] ?? "#999999");
}

function spanLabel(e: TraceEvent): string {
  return e.cat === "ownership" ? `owned by: ${e.name}` : `${e.cat}: ${e.name}`;
}

/** Spans of one lane (sorted by start); neighbours of one colour within half a pixel merge. */
function exactPieces(spans: readonly TraceEvent[], xOf: (t: number) => number): Piece[] {
  const out: Piece[] = [];
  for (const e of spans) {
    const color = spanColor(e);
    const x0 = xOf(e.ts);
    const x1 = xOf(e.ts + (e.dur ?? 0));
    const p = out[out.length - 1];
    if (p !== undefined && p.color === color && x0 <= p.x1 + 0.5) {
      p.x1 = Math.max(p.x1, x1);
      p.n++;
      p.ns += e.dur ?? 0;
      if (p.n === 2 && e.cat !== "ownership") p.name = e.cat;
    } else {
      const q: Piece = { x0, x1, n: 1, ns: e.dur ?? 0, name: spanLabel(e), color };
      out.push(q);
    }
  }
  return out;
}

/**
 * Spans of one lane in bins of `bin` px, one strip per colour (so a rare category under a
 * frequent one stays visible), more opaque the more of the bin that colour covers; equal
 * neighbours are joined.
 */
function binnedPieces(
  spans: readonly TraceEvent[],
  xOf: (t: number) => number,
  left: number,
  width: number,
  bin: number,
): Piece[] {
  const nb = Math.max(1, Math.ceil(width / bin));
  const byColor = new Map<string, { cover: Float64Array; diff: Float64Array; label: string }>();
  for (const e of spans) {
    const color = spanColor(e);
    let c = byColor.get(color);
    if (c === undefined) {
      const label = e.cat === "ownership" ? spanLabel(e) : e.cat;
      c = { cover: new Float64Array(nb), diff: new Float64Array(nb + 1), label };
      byColor.set(color, c);
    }
    const a = Math.min(width, Math.max(0, xOf(e.ts) - left));
    const b = Math.min(width, Math.max(a, xOf(e.ts + (e.dur ?? 0)) - left));
    const ba = Math.min(nb - 1, Math.floor(a / bin));
    const bb = Math.min(nb - 1, Math.floor(b / bin));
    // Always visible: a span thinner than a hair still counts for a little.
    const len = Math.max(b - a, 0.05);
    if (ba === bb) {
      c.cover[ba]! += len;
    } else {
      c.cover[ba]! += (ba + 1) * bin - a;
      c.cover[bb]! += b - bb * bin;
      // Whole bins in between, through a difference array: O(1) per span.
      c.diff[ba + 1]! += bin;
      c.diff[bb]! -= bin;
    }
  }
  const out: Piece[] = [];
  const subs = byColor.size;
  let sub = 0;
  for (const [color, c] of byColor) {
    let run = 0;
    let prev: Piece | undefined;
    for (let k = 0; k < nb; k++) {
      run += c.diff[k]!;
      const frac = Math.min(1, (c.cover[k]! + run) / bin);
      if (frac <= 0) {
        prev = undefined;
        continue;
      }
      const opacity = frac >= 0.5 ? 1 : frac >= 0.1 ? 0.7 : 0.4;
      const x0 = left + k * bin;
      const x1 = left + Math.min(width, (k + 1) * bin);
      if (prev !== undefined && prev.opacity === opacity && prev.x1 === x0) {
        prev.x1 = x1;
        prev.n++;
      } else {
        prev = { x0, x1, n: 1, ns: 0, name: c.label, color, opacity, sub, subs };
        out.push(prev);
      }
    }
    sub++;
  }
  return out;
}

/** Bin width (px) so that marks at these x positions give at most TICKS_PER_LANE columns. */
function binFor(xs: readonly number[], width: number): number {
  const cols = new Set(xs.map((x) => Math.round(x))).size;
  return cols <= TICKS_PER_LANE ? 1 : Math.ceil(width / TICKS_PER_LANE);
}

/** The centre of the bin `x` falls in. */
function snap(x: number, bin: number, left: number): number {
  return bin === 1 ? Math.round(x) : left + (Math.floor((x - left) / bin) + 0.5) * bin;
}

function hex8(n: number): string {
  return (n >>> 0).toString(16).padStart(8, "0");
}

/** The colours the timeline uses for the tracks present, for a legend. */
export function timelineLegend(result: PipelineResult): { label: string; color: string }[] {
  const items: { label: string; color: string }[] = [];
  const cats = new Set(result.trace.filter((e) => e.ph === "X").map((e) => e.cat));
  const names: Record<string, string> = {
    cpu: "CPU access",
    cache: "cache maintenance",
    dma: "DMA transfer",
    bounce: "swiotlb bounce",
    iommu: "IOMMU",
    wait: "wait",
  };
  for (const [cat, label] of Object.entries(names)) {
    if (cats.has(cat)) items.push({ label, color: TRACE_CAT_COLORS[cat]! });
  }
  const owners = [...new Set(result.trace.filter((e) => e.cat === "ownership").map((e) => e.name))];
  for (const o of owners) items.push({ label: `owned by ${o}`, color: ownerColor(o) });
  if (result.trace.some((e) => e.ph === "i"))
    items.push({ label: "instant (fence, sync, …)", color: "#555" });
  if (result.frames.length > 0) {
    items.push({ label: "frame CRC ok", color: "#2ca02c" });
    if (result.frames.some((f) => !f.ok))
      items.push({ label: "frame CRC mismatch", color: "#d62728" });
  }
  if (result.violations.length > 0) items.push({ label: "violation", color: "#d62728" });
  return items;
}

// ---------------------------------------------------------------------------------------
// Sweeps

/**
 * Whether a varied key is one the main plot already shows (profile, strategy, buffer
 * size), plain as the main job names them or as a scenario path ("machine.profile",
 * "pipeline.strategy", "buffers.bufferBytes") as `dmabuf sweep --vary` names them.
 */
export function isMainSweepKey(key: string): boolean {
  const last = key.slice(key.lastIndexOf(".") + 1);
  return last === "profile" || last === "strategy" || last === "bufferBytes";
}

/** Rows that finished (failed runs have no figures to plot). */
function okRows(sweep: SweepReport): SweepRow[] {
  return sweep.rows.filter((r) => r.error === undefined);
}

/**
 * The y scale of the sweep plots: logarithmic, but with 0 drawn (a strategy that needs no
 * maintenance costs exactly 0): symlog with a constant of 0.01 µs is linear below 10 ns.
 */
const SHARING_Y_SCALE = { type: "symlog" as const, constant: 0.01 };

/** Profiles in first-seen order. */
export function sweepProfiles(sweep: SweepReport): string[] {
  return [...new Set(sweep.rows.map((r) => r.profile))];
}

/** The strategies in first-seen order (one colour each in every sweep plot). */
function strategyScale(sweep: SweepReport): { domain: string[]; range: string[] } {
  const palette = ["#4e79a7", "#e15759", "#59a14f", "#f28e2b", "#b07aa1", "#76b7b2", "#9c755f"];
  const domain = [...new Set(sweep.rows.map((r) => r.strategy))];
  return { domain, range: domain.map((_, i) => palette[i % palette.length]!) };
}

/**
 * The sweep's main plot for one profile: the sharing cost per frame against buffer size,
 * log-log (0 drawn at the bottom), one line per strategy; incoherent runs drawn as red
 * crosses.
 */
export async function sweepSizePlot(sweep: SweepReport, profile: string): Promise<string> {
  const others = sweepOtherKeys(sweep);
  const rows = okRows(sweep).filter((r) => r.profile === profile);
  const variantOf = (r: SweepRow): string =>
    others.map((k) => `${k}=${String(r.params[k] ?? "")}`).join(", ");
  const variants = [...new Set(rows.map(variantOf))];
  const values = rows.map((r) => ({
    bytes: r.bufferBytes,
    us: rowSharingNs(r) / 1000,
    strategy: r.strategy,
    verdict: r.verdict,
    // One line per strategy and combination of the other varied keys.
    line: `${r.strategy} ${variantOf(r)}`,
    variant: variantOf(r),
  }));
  const sizes = [...new Set(rows.map((r) => r.bufferBytes))].sort((a, b) => a - b);
  const cross = wholeCacheCrossover(sweep.rows, profile);
  const x = {
    field: "bytes",
    type: "quantitative" as const,
    scale: {
      type: "log" as const,
      nice: false,
      ...(sizes.length > 0 ? { domain: [sizes[0]! / 1.25, sizes[sizes.length - 1]! * 1.25] } : {}),
    },
    title: "buffer size",
    // Ticks at the sizes measured (powers of two, usually), not at powers of ten.
    axis: { labelExpr: BYTES_LABEL_EXPR, labelOverlap: true, grid: true, values: sizes },
  };
  const y = {
    field: "us",
    type: "quantitative" as const,
    scale: SHARING_Y_SCALE,
    title: "sharing cost, µs per frame",
  };
  const color = {
    field: "strategy",
    type: "nominal" as const,
    scale: strategyScale(sweep),
    title: "strategy",
  };
  const layers: NonNullable<Extract<TopLevelSpec, { layer: unknown }>["layer"]> = [
    {
      mark: { type: "line", strokeWidth: 2 },
      encoding: {
        x,
        y,
        color,
        detail: { field: "line" },
        ...(variants.length > 1 && variants.length <= 6
          ? { strokeDash: { field: "variant", type: "nominal" as const, title: others.join(", ") } }
          : {}),
      },
    },
    {
      transform: [{ filter: "datum.verdict === 'coherent'" }],
      mark: { type: "point", filled: true, size: 40 },
      encoding: { x, y, color },
    },
    {
      transform: [{ filter: "datum.verdict !== 'coherent'" }],
      mark: { type: "point", shape: "cross", filled: true, size: 90, color: "#d62728" },
      encoding: { x, y },
    },
  ];
  if (cross !== undefined) {
    const lo = Math.log(sizes[0] ?? cross.bytes);
    const hi = Math.log(sizes[sizes.length - 1] ?? cross.bytes);
    const rightHalf = hi > lo && (Math.log(cross.bytes) - lo) / (hi - lo) > 0.5;
    layers.push({
      data: {
        values: [
          { bytes: cross.bytes, label: `whole-cache wins from ${formatBytes(cross.bytes)}` },
        ],
      },
      layer: [
        {
          mark: { type: "rule", strokeDash: [4, 3], color: "#555" },
          encoding: { x },
        },
        {
          // Label on the side with room: left of the rule in the right half of the plot.
          mark: {
            type: "text",
            align: rightHalf ? "right" : "left",
            dx: rightHalf ? -4 : 4,
            dy: -4,
            baseline: "bottom",
            color: "#333",
          },
          encoding: {
            x,
            y: { value: 12 },
            text: { field: "label" },
          },
        },
      ],
    });
  }
  const spec: TopLevelSpec = {
    $schema: VL_SCHEMA,
    title: `${profile}: sharing cost per frame vs buffer size`,
    width: 640,
    height: 320,
    data: { values },
    layer: layers,
  };
  return renderVegaLite(spec);
}

/**
 * A plot for another varied key: time per frame against the key's values, one line per
 * strategy and buffer size, one column per profile.
 */
export async function sweepKeyPlot(sweep: SweepReport, key: string): Promise<string> {
  const rows = okRows(sweep).filter((r) => r.params[key] !== undefined);
  const numeric = rows.every((r) => typeof r.params[key] === "number");
  const values = rows.map((r) => ({
    value: numeric ? r.params[key] : String(r.params[key]),
    us: rowSharingNs(r) / 1000,
    strategy: r.strategy,
    profile: r.profile,
    size: formatBytes(r.bufferBytes),
    verdict: r.verdict,
  }));
  const profiles = sweepProfiles(sweep);
  const spec: TopLevelSpec = {
    $schema: VL_SCHEMA,
    title: `sharing cost per frame vs ${key}`,
    data: { values },
    mark: numeric ? { type: "line", point: true } : { type: "point", filled: true, size: 50 },
    width: 300,
    height: 220,
    encoding: {
      x: numeric
        ? { field: "value", type: "quantitative", title: key, scale: { zero: false } }
        : { field: "value", type: "nominal", title: key, axis: { labelAngle: 0 } },
      ...(numeric ? {} : { xOffset: { field: "strategy", type: "nominal" as const } }),
      y: {
        field: "us",
        type: "quantitative",
        scale: SHARING_Y_SCALE,
        title: "sharing cost, µs per frame",
      },
      color: { field: "strategy", type: "nominal", scale: strategyScale(sweep), title: "strategy" },
      detail: { field: "size", type: "nominal" },
      ...(profiles.length > 1
        ? { column: { field: "profile", type: "nominal" as const, title: "profile" } }
        : {}),
    },
  };
  return renderVegaLite(spec);
}

/** The keys that get their own plot. */
export function sweepOtherKeys(sweep: SweepReport): string[] {
  return sweep.keys.filter((k) => !isMainSweepKey(k));
}
