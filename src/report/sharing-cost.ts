/**
 * "Sharing cost per frame": the one figure every view ranks by. It is the CPU time a
 * frame spends on sharing its buffers with devices — cache maintenance, CPU access
 * (where an uncached or write-combined mapping pays its penalty), swiotlb bounce copies
 * and IOMMU map/unmap — and leaves out the devices' own transfers and the time spent
 * waiting for them or for the next frame, which are the same whatever the sharing
 * strategy. The total over every category is shown beside it, labelled as such.
 *
 * The terminal, JSON and HTML run reports, the sweep table, CSV, JSON and HTML, the main
 * job, the whole-cache crossover and the "cheapest" ranking all take it from here, so
 * they cannot disagree.
 */

import { COST_CATEGORIES, type CostCategory, type CostSnapshot } from "../machine/cost.js";
import type { PipelineResult } from "../pipelines/types.js";
import type { SweepRow } from "./sweep-types.js";

/** The categories that make up the sharing cost. */
export const SHARING_COST_CATEGORIES: readonly CostCategory[] = [
  "cache-maintenance",
  "cpu-access",
  "bounce",
  "iommu",
];

/** What the figure means, for reports and help texts. */
export const SHARING_COST_DEFINITION =
  "CPU time spent on sharing per frame: cache maintenance, CPU access (uncached-access penalties included), bounce copies and IOMMU work; the devices' own transfers and waiting are left out";

/** The label of the total beside it. */
export const TOTAL_COST_LABEL = "total (all categories, device transfers and waiting included)";

/** ns by category, as a snapshot or as plain figures. */
type ByCategory = Readonly<Record<CostCategory, number | { readonly ns: number }>>;

function nsOf(v: number | { readonly ns: number }): number {
  return typeof v === "number" ? v : v.ns;
}

/** The sharing cost of a set of figures (per frame or total). */
export function sharingNs(costs: ByCategory): number {
  let ns = 0;
  for (const c of SHARING_COST_CATEGORIES) ns += nsOf(costs[c]);
  return ns;
}

/** Every category summed. */
export function totalNs(costs: ByCategory): number {
  let ns = 0;
  for (const c of COST_CATEGORIES) ns += nsOf(costs[c]);
  return ns;
}

/**
 * Mean cost per displayed frame, per category: the frames' own costs (setting up and
 * tearing down the buffers is not per frame). Every "per frame" figure is this.
 */
export function meanFrameCosts(result: Pick<PipelineResult, "frames">): CostSnapshot {
  const out = {} as CostSnapshot;
  const n = result.frames.length;
  for (const c of COST_CATEGORIES) {
    let ns = 0;
    let ops = 0;
    let bytes = 0;
    for (const f of result.frames) {
      ns += f.costs[c].ns;
      ops += f.costs[c].ops;
      bytes += f.costs[c].bytes;
    }
    out[c] = n === 0 ? { ns: 0, ops: 0, bytes: 0 } : { ns: ns / n, ops: ops / n, bytes: bytes / n };
  }
  return out;
}

/** A sweep row's sharing cost per frame. */
export function rowSharingNs(row: Pick<SweepRow, "perFrame">): number {
  return sharingNs(row.perFrame);
}

/** Rows that finished and were coherent: the only ones a ranking or crossover may use. */
function usable(rows: readonly SweepRow[], profile: string): SweepRow[] {
  return rows.filter(
    (r) => r.profile === profile && r.error === undefined && r.verdict === "coherent",
  );
}

/** Mean sharing cost per buffer size of one strategy (mean over other varied keys). */
function bySize(rows: readonly SweepRow[], strategy: string): Map<number, number> {
  const acc = new Map<number, { s: number; n: number }>();
  for (const r of rows) {
    if (r.strategy !== strategy) continue;
    const a = acc.get(r.bufferBytes) ?? { s: 0, n: 0 };
    a.s += rowSharingNs(r);
    a.n++;
    acc.set(r.bufferBytes, a);
  }
  return new Map([...acc].map(([k, a]) => [k, a.s / a.n]));
}

/** Where whole-cache flushing starts to win on one profile. */
export interface Crossover {
  readonly bytes: number;
  /** Sharing cost per frame of whole-cache and of per-line (streaming) at that size. */
  readonly wholeNs: number;
  readonly streamingNs: number;
}

/**
 * The smallest buffer size from which "whole-cache" has a lower sharing cost than
 * "streaming" (per line) at that size and at every larger size of the profile's rows.
 * A size where either is missing, failed or incoherent ends the search (nothing can be
 * said beyond it). Undefined when whole-cache never wins at the top of the range.
 */
export function wholeCacheCrossover(
  rows: readonly SweepRow[],
  profile: string,
): Crossover | undefined {
  const mine = usable(rows, profile);
  const sizes = [
    ...new Set(rows.filter((r) => r.profile === profile).map((r) => r.bufferBytes)),
  ].sort((a, b) => a - b);
  const whole = bySize(mine, "whole-cache");
  const streaming = bySize(mine, "streaming");
  let from: number | undefined;
  for (let i = sizes.length - 1; i >= 0; i--) {
    const b = sizes[i]!;
    const w = whole.get(b);
    const s = streaming.get(b);
    if (w === undefined || s === undefined || !(w < s)) break;
    from = b;
  }
  if (from === undefined) return undefined;
  return { bytes: from, wholeNs: whole.get(from)!, streamingNs: streaming.get(from)! };
}

/** The strategies with the lowest sharing cost at one size (ties together), and the runner-up. */
export interface Cheapest {
  readonly strategies: readonly string[];
  readonly sharingNs: number;
  /** Total per frame (all categories) of the first of them, shown beside. */
  readonly totalNs: number;
  readonly runnerUp?: { readonly strategy: string; readonly sharingNs: number };
}

/**
 * The cheapest coherent strategy by sharing cost at one profile and size (mean over
 * other varied keys). Undefined when no coherent run is there.
 */
export function cheapestStrategy(
  rows: readonly SweepRow[],
  profile: string,
  size: number,
): Cheapest | undefined {
  const here = usable(rows, profile).filter((r) => r.bufferBytes === size);
  const strategies = [...new Set(here.map((r) => r.strategy))];
  if (strategies.length === 0) return undefined;
  const cost = strategies.map((s) => {
    const list = here.filter((r) => r.strategy === s);
    const mean = (f: (r: SweepRow) => number): number =>
      list.reduce((t, r) => t + f(r), 0) / list.length;
    return { s, sharing: mean(rowSharingNs), total: mean((r) => r.totalPerFrameNs) };
  });
  const sorted = [...cost].sort((a, b) => a.sharing - b.sharing);
  const best = sorted[0]!;
  const ties = sorted.filter((c) => c.sharing === best.sharing);
  const next = sorted.find((c) => c.sharing !== best.sharing);
  return {
    strategies: ties.map((c) => c.s),
    sharingNs: best.sharing,
    totalNs: best.total,
    ...(next !== undefined ? { runnerUp: { strategy: next.s, sharingNs: next.sharing } } : {}),
  };
}
