/**
 * The four PipelineKinds as bundled graph scenarios: each `<kind>-graph.yaml` spells out
 * the graph `pipeline.kind: <kind>` is sugar for, and gives the same result as the
 * `<kind>.yaml` scenario field for field — frames (CRCs, times, per-frame costs),
 * sinks, violations, buffers, total costs, elapsed time and every trace event — so the
 * reports differ only where they print the spec (the graph, "graph" for the kind). The
 * `<kind>.yaml` reports themselves are byte-identical to before graphs (test/golden).
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { test } from "node:test";
import { legacyGraph } from "../../src/pipelines/graph.js";
import { runPipeline } from "../../src/pipelines/run.js";
import type { PipelineResult } from "../../src/pipelines/types.js";
import { loadScenarioFile, scenarioToSpec } from "../../src/scenarios/scenario.js";

const EXAMPLES = join(process.cwd(), "examples", "scenarios");

function run(name: string): { result: PipelineResult; graph: unknown } {
  const spec = scenarioToSpec(loadScenarioFile(join(EXAMPLES, `${name}.yaml`)));
  const result = runPipeline({ ...spec, trace: true });
  return { result, graph: spec.graph ?? legacyGraph(spec) };
}

/** Everything a report is made of, but the spec. */
function outcome(r: PipelineResult): string {
  const { spec: _spec, ...rest } = r;
  return JSON.stringify(rest);
}

for (const kind of ["camera-display", "camera-cpu-display", "camera-gpu-display", "cpu-output"]) {
  test(`${kind}-graph.yaml is ${kind}.yaml spelled out: the same graph and the same result`, () => {
    const legacy = run(kind);
    const graph = run(`${kind}-graph`);
    assert.equal(legacy.result.spec.pipeline, kind);
    assert.equal(graph.result.spec.pipeline, "graph");
    const norm = (g: unknown): unknown =>
      JSON.parse(JSON.stringify(g, (k, v) => (k === "primary" ? undefined : v)));
    assert.deepEqual(norm(graph.graph), norm(legacy.graph));
    assert.ok(legacy.result.trace.length > 0);
    assert.equal(outcome(graph.result), outcome(legacy.result));
  });
}
