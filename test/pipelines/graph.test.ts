/**
 * Pipelines as graphs: the bundled graph scenarios are coherent with the right syncs and
 * caught (wrong CRC and a named violation) with one sync removed; the four PipelineKinds
 * are sugar for graphs that give the same frames; bad graphs are refused before anything
 * runs, at the line of the field.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { test } from "node:test";
import { parse as yamlParse } from "yaml";
import { legacyGraph } from "../../src/pipelines/graph.js";
import { runPipeline } from "../../src/pipelines/run.js";
import type { GraphSpec, PipelineResult, PipelineSpec } from "../../src/pipelines/types.js";
import {
  loadScenarioFile,
  parseScenario,
  readScenarioData,
  ScenarioError,
  scenarioToSpec,
  setScenarioField,
} from "../../src/scenarios/scenario.js";

const EXAMPLES = join(process.cwd(), "examples", "scenarios");
const GRAPHS = [
  "camera-gpu-display-encoder",
  "isp-npu-display",
  "mixed-coherency-gpus",
  "two-gpus-sync-file",
];

function summary(r: PipelineResult): string {
  const kinds = [...new Set(r.violations.map((v) => v.kind))].join(",");
  const sinks = r.sinks.map(
    (s) => `${s.name} ${s.frames.filter((f) => f.ok).length}/${s.frames.length}`,
  );
  return `${r.verdict}; sinks: ${sinks.join(", ")}; violations: ${kinds || "none"}`;
}

for (const name of GRAPHS) {
  test(`graph ${name}: coherent at every sink with the right syncs`, () => {
    const r = runPipeline(scenarioToSpec(loadScenarioFile(join(EXAMPLES, `${name}.yaml`))));
    assert.equal(r.verdict, "coherent", summary(r));
    assert.ok(r.sinks.length >= 1);
    for (const s of r.sinks) {
      assert.ok(s.ok, `${s.name}: ${summary(r)}`);
      assert.ok(new Set(s.frames.map((f) => f.crc)).size > 1, `${s.name}: frames change`);
    }
    assert.equal(r.sinks[0]!.frames, r.frames, "frames are the primary sink's");
  });

  test(`graph ${name}: one sync removed is caught — wrong CRCs and a violation naming it`, () => {
    const src = readScenarioData(join(EXAMPLES, `${name}.yaml`));
    const data = setScenarioField(src.data, "pipeline.fault", "omit-sync-end");
    const r = runPipeline(scenarioToSpec(parseScenario(data, src)));
    assert.equal(r.verdict, "incoherent", summary(r));
    assert.ok(
      r.sinks.some((s) => s.frames.some((f) => !f.ok)),
      `a sink shows wrong frames: ${summary(r)}`,
    );
    assert.ok(
      r.violations.some((v) => v.kind === "stale-device-read" && /DMA_BUF_IOCTL_SYNC/.test(v.hint)),
      summary(r),
    );
  });
}

test("fan-out: the display and the encoder read the same GPU output and agree", () => {
  const r = runPipeline(
    scenarioToSpec(loadScenarioFile(join(EXAMPLES, "camera-gpu-display-encoder.yaml"))),
  );
  const [show, encode] = r.sinks;
  assert.equal(show?.name, "show");
  assert.equal(encode?.name, "encode");
  assert.equal(encode?.kind, "output");
  assert.deepEqual(
    show!.frames.map((f) => f.expectedCrc),
    encode!.frames.map((f) => f.expectedCrc),
  );
});

const SMALL: PipelineSpec = { width: 64, height: 48, frames: 4 };

for (const pipeline of ["camera-display", "camera-cpu-display", "camera-gpu-display"] as const) {
  test(`${pipeline} is sugar for its graph: the same frames and verdict`, () => {
    const spec: PipelineSpec = { ...SMALL, pipeline };
    const legacy = runPipeline(spec);
    const { pipeline: _kind, ...rest } = spec;
    const graph = runPipeline({ ...rest, graph: legacyGraph(spec) });
    assert.equal(graph.verdict, legacy.verdict);
    assert.deepEqual(
      graph.frames.map((f) => [f.crc, f.expectedCrc]),
      legacy.frames.map((f) => [f.crc, f.expectedCrc]),
    );
    assert.equal(graph.spec.pipeline, "graph");
  });
}

function refused(graph: GraphSpec, field: RegExp, problem: RegExp): void {
  assert.throws(
    () => runPipeline({ ...SMALL, graph }),
    (e: Error) => field.test(e.message) && problem.test(e.message),
  );
}

test("bad graphs are refused before anything runs, naming the field and why", () => {
  const base = legacyGraph({ pipeline: "camera-display" });
  refused(
    { ...base, stages: [...base.stages, { name: "x", device: "nope", inputs: ["capture"] }] },
    /graph\.stages\[2\]\.device/,
    /no device "nope"/,
  );
  refused(
    {
      ...base,
      stages: base.stages.map((s) => (s.name === "capture" ? { ...s, inputs: ["display"] } : s)),
    },
    /graph\.stages/,
    /a camera is a source|sink/,
  );
  refused(
    { ...base, devices: { ...base.devices, npu: { kind: "npu" } } },
    /graph\.devices\.npu\.kind/,
    /no driver in this model yet/,
  );
});

test("a graph error in a file points at its line and column", () => {
  const text = [
    "graph:",
    "  devices:",
    "    cam: { kind: camera }",
    "    lcd: { kind: display }",
    "  pools:",
    "    frames: { source: v4l2-mmap, count: 4 }",
    "  stages:",
    "    - { name: capture, device: cam, pool: frames }",
    "    - { name: show, device: lcdd, inputs: [capture] }",
    "",
  ].join("\n");
  try {
    parseScenario(yamlParse(text), { file: "g.yaml", text });
    assert.fail("accepted");
  } catch (e) {
    assert.ok(e instanceof ScenarioError);
    assert.equal(e.field, "graph.stages[1].device");
    assert.equal(e.line, 9);
    assert.match(e.message, /^g\.yaml:9:\d+: graph\.stages\[1\]\.device: no device "lcdd"/);
  }
});
