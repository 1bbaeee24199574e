/**
 * Runs one pipeline on a fresh simulated kernel. (Being written: the drivers it runs on
 * land first; until then this refuses clearly.)
 */

import type { PipelineResult, PipelineSpec } from "./types.js";

export function runPipeline(spec: PipelineSpec): PipelineResult {
  throw new Error(`pipelines: runPipeline(${spec.pipeline ?? "default"}) is not wired yet`);
}
