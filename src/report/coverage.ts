/**
 * Two views users built by hand, computed here once for the terminal, JSON and HTML
 * reports:
 *
 * - **maintenance coverage**: for every cache-maintenance and sync call site of a run,
 *   the bytes its calls were asked to cover and the bytes their cache maintenance really
 *   covered, and for the first call that covered less, which bytes (a picture over the
 *   asked-for range): the byte-coverage model of amd/xdna-driver issue 1542;
 * - **CPU access balance**: DMA_BUF_IOCTL_SYNC START and END per fd per frame, with
 *   the frames where they do not pair up (fxd0h/libdrmtap issue 43: two STARTs and one
 *   END per frame).
 */

import type { FaultSiteStats } from "../machine/fault-inject.js";
import type { PipelineResult } from "../pipelines/types.js";

/** Cells of a coverage picture. */
export const COVERAGE_CELLS = 32;

export interface SiteCoverage {
  /** "<call> <- <caller>". */
  readonly site: string;
  readonly calls: number;
  readonly requestedBytes: number;
  /** Bytes the cache maintenance covered (0 on a coherent device: nothing to do). */
  readonly maintainedBytes: number;
  /** maintained / requested, 0..1 (1 when nothing was asked). */
  readonly coverage: number;
  /** Cache lines the calls found to write back or drop. */
  readonly linesAffected: number;
  /** The first call that covered less than asked: which one, and how much. */
  readonly firstGap?: {
    readonly atCall: number;
    readonly requestedBytes: number;
    readonly maintainedBytes: number;
    /**
     * The asked-for bytes in {@link COVERAGE_CELLS} cells: `#` maintained, `+` partly,
     * `.` not at all (present when the call point knew the ranges it was asked for).
     */
    readonly picture?: string;
  };
}

/** The coverage of every call site that was asked to cover bytes, in first-reached order. */
export function maintenanceCoverage(result: PipelineResult): SiteCoverage[] {
  return (result.callSites ?? [])
    .filter((s) => s.requestedBytes > 0)
    .map((s): SiteCoverage => {
      const g = s.firstGap;
      return {
        site: s.id,
        calls: s.calls,
        requestedBytes: s.requestedBytes,
        maintainedBytes: s.maintainedBytes,
        coverage: Math.min(1, s.maintainedBytes / s.requestedBytes),
        linesAffected: s.linesAffected,
        ...(g !== undefined
          ? {
              firstGap: {
                atCall: g.atCall,
                requestedBytes: g.requested,
                maintainedBytes: g.maintained,
                ...(g.requestedRanges !== undefined && g.maintainedRanges !== undefined
                  ? { picture: coveragePicture(g.requestedRanges, g.maintainedRanges) }
                  : {}),
              },
            }
          : {}),
      };
    });
}

type Ranges = NonNullable<NonNullable<FaultSiteStats["firstGap"]>["requestedRanges"]>;

/**
 * The asked-for ranges laid end to end in {@link COVERAGE_CELLS} cells; each cell says
 * whether the maintained ranges cover its bytes: all (`#`), some (`+`) or none (`.`).
 */
export function coveragePicture(requested: Ranges, maintained: Ranges): string {
  const total = requested.reduce((n, r) => n + r.len, 0);
  if (total === 0) return "";
  const cells = Math.min(COVERAGE_CELLS, total);
  const covered = new Float64Array(cells);
  const size = new Float64Array(cells);
  let base = 0;
  for (const r of requested) {
    // Bytes of r that the maintained ranges cover, by offset in the laid-out request.
    const marks: [number, number][] = [];
    for (const m of maintained) {
      const a = Math.max(r.phys, m.phys);
      const b = Math.min(r.phys + r.len, m.phys + m.len);
      if (a < b) marks.push([base + a - r.phys, base + b - r.phys]);
    }
    for (let c = 0; c < cells; c++) {
      const c0 = (c * total) / cells;
      const c1 = ((c + 1) * total) / cells;
      const a = Math.max(c0, base);
      const b = Math.min(c1, base + r.len);
      if (a >= b) continue;
      size[c]! += b - a;
      for (const [m0, m1] of marks) {
        const x = Math.max(a, m0);
        const y = Math.min(b, m1);
        if (x < y) covered[c]! += y - x;
      }
    }
    base += r.len;
  }
  let out = "";
  for (let c = 0; c < cells; c++)
    out += covered[c]! >= size[c]! ? "#" : covered[c]! > 0 ? "+" : ".";
  return out;
}

export interface FrameBalance {
  readonly frame: number;
  readonly starts: number;
  readonly ends: number;
}

/** The brackets one fd of one buffer made. */
export interface FdBalance {
  readonly buffer: string;
  /** The fd the DMA_BUF_IOCTL_SYNC calls were made on (-1 when not known). */
  readonly fd: number;
  /** The process, when the buffer's brackets come from more than one. */
  readonly pid?: number;
  readonly starts: number;
  readonly ends: number;
  /** Frames whose STARTs and ENDs do not pair up (an END missing, a START twice, an END alone). */
  readonly unbalanced: readonly FrameBalance[];
  /** Frames with any bracket. */
  readonly frames: number;
}

/**
 * START/END per fd per frame: each fd of a buffer brackets on its own (two fds of one
 * dma-buf, each with its bracket open, are two balanced streams, not two STARTs). A
 * frame spans from the previous frame's completion to its own (setup before frame 0
 * counts with frame 0, what follows the last frame with it); a bracket counts in the
 * frame its START falls in, so one that straddles a frame's completion is not split.
 * Within a frame an fd's brackets must alternate START, END, ..., and end closed.
 */
export function syncBalance(result: PipelineResult): FdBalance[] {
  const out: FdBalance[] = [];
  const frames = result.frames;
  const frameAt = (t: number): number => {
    for (let i = 0; i < frames.length; i++) if (t <= frames[i]!.time) return i;
    return Math.max(0, frames.length - 1);
  };
  for (const b of result.buffers) {
    const syncs = b.syncs ?? [];
    if (syncs.length === 0) continue;
    const pids = new Set(syncs.map((s) => s.pid));
    const byFd = new Map<string, { fd: number; pid: number; syncs: typeof syncs }>();
    for (const s of syncs) {
      const key = `${s.pid}:${s.fd}`;
      const e = byFd.get(key) ?? { fd: s.fd, pid: s.pid, syncs: [] };
      (e.syncs as (typeof s)[]).push(s);
      byFd.set(key, e);
    }
    for (const { fd, pid, syncs: mine } of byFd.values()) {
      const per = new Map<number, { starts: number; ends: number; ok: boolean }>();
      const at = (f: number) => {
        const e = per.get(f) ?? { starts: 0, ends: 0, ok: true };
        per.set(f, e);
        return e;
      };
      let open: number | undefined;
      for (const s of mine) {
        if (s.end) {
          // The END closes the bracket in the frame its START opened it.
          const e = at(open ?? frameAt(s.time));
          e.ends++;
          if (open === undefined) e.ok = false;
          open = undefined;
        } else {
          if (open !== undefined) at(open).ok = false;
          open = frameAt(s.time);
          at(open).starts++;
        }
      }
      if (open !== undefined) at(open).ok = false;
      const unbalanced: FrameBalance[] = [];
      for (const [frame, e] of [...per].sort((x, y) => x[0] - y[0]))
        if (!e.ok) unbalanced.push({ frame, starts: e.starts, ends: e.ends });
      out.push({
        buffer: b.name,
        fd,
        ...(pids.size > 1 ? { pid } : {}),
        starts: mine.filter((s) => !s.end).length,
        ends: mine.filter((s) => s.end).length,
        unbalanced,
        frames: per.size,
      });
    }
  }
  return out;
}

/** How a report names an fd's brackets: "cam0 fd 5" (with the process when several bracket one buffer). */
export function fdBalanceLabel(b: FdBalance): string {
  return `${b.buffer} fd ${b.fd}${b.pid !== undefined ? ` (pid ${b.pid})` : ""}`;
}
