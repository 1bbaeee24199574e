/**
 * A sweep worker: a worker thread (node:worker_threads) that imports the pipeline runner
 * once and runs the grid points its parent hands it, one at a time, replying with a
 * compact SweepRow per point (no traces, no violation list: the parent only needs the
 * figures). A point whose run throws is answered with a row carrying the error, so one
 * bad point never stops a sweep.
 *
 * The runner is a module exporting `runPipeline(spec)`; by default
 * src/pipelines/run.js next to this file in the compiled tree, or the module named by
 * the parent (tests point it at a fixture).
 */

import { isMainThread, parentPort, workerData } from "node:worker_threads";
import { COST_CATEGORIES, type CostCategory } from "../machine/cost.js";
import type { PipelineResult, PipelineSpec } from "../pipelines/types.js";
import { meanFrameCosts, sharingNs, totalNs } from "../report/sharing-cost.js";
import type { SweepRow } from "../report/sweep-types.js";
import type { GridValue } from "./grid.js";

/** One grid point to run. */
export interface WorkerTask {
  readonly index: number;
  readonly params: Readonly<Record<string, GridValue>>;
  readonly spec: PipelineSpec;
}

/** The answer to a task. */
export interface WorkerReply {
  readonly index: number;
  readonly row: SweepRow;
}

/** What the parent passes in `workerData`. */
export interface WorkerConfig {
  /** URL (file:) of the module exporting runPipeline. */
  readonly runner: string;
}

/** The function the runner module exports. */
export type RunPipeline = (spec: PipelineSpec) => PipelineResult;

/** The runner the sweep uses unless told otherwise: the pipelines' own, in this tree. */
export const DEFAULT_RUNNER_URL = new URL("../pipelines/run.js", import.meta.url).href;

function zeroPerFrame(): Record<CostCategory, number> {
  const out = {} as Record<CostCategory, number>;
  for (const c of COST_CATEGORIES) out[c] = 0;
  return out;
}

/** The row for a finished run: its verdict, counts, and cost per frame by category. */
export function sweepRow(
  params: Readonly<Record<string, GridValue>>,
  result: PipelineResult,
): SweepRow {
  const frames = result.frames.length;
  // The frames' own costs: setup (allocating and mapping the buffers) is not per frame.
  const mean = meanFrameCosts(result);
  const perFrame = zeroPerFrame();
  for (const c of COST_CATEGORIES) perFrame[c] = mean[c].ns;
  return {
    params,
    verdict: result.verdict,
    violations: result.violations.length,
    framesOk: result.frames.filter((f) => f.ok).length,
    frames,
    bufferBytes: result.spec.bufferBytes,
    profile: result.spec.profile,
    strategy: result.spec.strategy,
    perFrame,
    sharingPerFrameNs: sharingNs(perFrame),
    totalPerFrameNs: totalNs(perFrame),
  };
}

/**
 * The row for a run that threw: verdict "incoherent" (nothing was shown to be coherent),
 * zero figures, and the error's message.
 */
export function errorRow(
  params: Readonly<Record<string, GridValue>>,
  spec: PipelineSpec,
  error: unknown,
): SweepRow {
  const message = error instanceof Error ? error.message : String(error);
  return {
    params,
    verdict: "incoherent",
    violations: 0,
    framesOk: 0,
    frames: 0,
    bufferBytes: spec.bufferBytes ?? 0,
    profile: spec.profile ?? "arm64",
    strategy: spec.strategy ?? "",
    perFrame: zeroPerFrame(),
    sharingPerFrameNs: 0,
    totalPerFrameNs: 0,
    error: message || (error instanceof Error ? error.name : "error"),
  };
}

/** Runs one task with `run`; an exception becomes the row's error. */
export function runTask(run: RunPipeline, task: WorkerTask): SweepRow {
  try {
    // A row shows no call sites: the run need not record them.
    return sweepRow(task.params, run({ ...task.spec, recordCallSites: false }));
  } catch (e) {
    return errorRow(task.params, task.spec, e);
  }
}

/** Imports the runner module; on failure, a runner that reports why for every task. */
export async function loadRunner(url: string): Promise<RunPipeline> {
  try {
    const mod = (await import(url)) as { runPipeline?: unknown };
    if (typeof mod.runPipeline !== "function") {
      const why = `sweep: runner module ${url} does not export runPipeline`;
      return () => {
        throw new Error(why);
      };
    }
    return mod.runPipeline as RunPipeline;
  } catch (e) {
    const why = `sweep: cannot load runner module ${url}: ${e instanceof Error ? e.message : String(e)}`;
    return () => {
      throw new Error(why);
    };
  }
}

if (!isMainThread && parentPort !== null) {
  const port = parentPort;
  const config = workerData as WorkerConfig;
  const ready = loadRunner(config.runner);
  port.on("message", (task: WorkerTask) => {
    void ready.then((run) => {
      const reply: WorkerReply = { index: task.index, row: runTask(run, task) };
      port.postMessage(reply);
    });
  });
}
