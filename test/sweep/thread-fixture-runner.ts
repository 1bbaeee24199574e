/**
 * The sweep fixture runner, with the worker thread that ran each point written into the
 * row's profile (`thread-N`): the sweep tests see which worker took which point.
 */

import { threadId } from "node:worker_threads";
import type { PipelineResult, PipelineSpec } from "../../src/pipelines/types.js";
import { runPipeline as fixture } from "./fixture-runner.js";

export function runPipeline(spec: PipelineSpec): PipelineResult {
  const result = fixture(spec);
  return { ...result, spec: { ...result.spec, profile: `thread-${threadId}` } };
}
