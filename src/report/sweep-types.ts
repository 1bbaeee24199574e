/**
 * The contract between a parameter sweep (which runs many pipelines over a grid of
 * specs) and the sweep report (src/report/html.ts, `renderSweepHtml`). Plain data, so a
 * sweep can also be saved as JSON and rendered later.
 */

import type { CostCategory } from "../machine/cost.js";
import type { Verdict } from "../pipelines/types.js";

/** One grid point: one pipeline run, summarised. */
export interface SweepRow {
  /** The varied fields' values for this run (keys are SweepReport.keys). */
  params: Record<string, string | number | boolean>;
  verdict: Verdict;
  /** Number of checker violations. */
  violations: number;
  /** Frames whose CRC matched the expected CRC. */
  framesOk: number;
  frames: number;
  bufferBytes: number;
  /** Architecture profile name ("arm64", ...). */
  profile: string;
  /** Mapping strategy ("coherent", "streaming", "whole-cache", "cache-hints"). */
  strategy: string;
  /** Virtual ns per frame, by cost category. */
  perFrame: Record<CostCategory, number>;
  /**
   * The sharing cost per frame (src/report/sharing-cost.ts): cache maintenance, CPU
   * access, bounce and IOMMU. What tables, plots, the crossover and rankings use.
   */
  sharingPerFrameNs: number;
  /** Sum of `perFrame` over every category (device transfers and waiting included). */
  totalPerFrameNs: number;
  /**
   * Set when the run failed (threw) instead of finishing: the row is a failure, not an
   * incoherent run, and its figures are zero.
   */
  error?: string;
}

/** A whole sweep: what was varied and one row per grid point. */
export interface SweepReport {
  title: string;
  description?: string;
  /** The varied fields, in grid order ("bufferBytes", "strategy", "profile", ...). */
  keys: string[];
  rows: SweepRow[];
}
