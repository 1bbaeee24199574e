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
import { simnpuCompute } from "../../src/drivers/accel/simnpu/simnpu.js";
import { vim2mProcess } from "../../src/drivers/media/test-drivers/vim2m.js";
import { vividTestPattern } from "../../src/drivers/media/test-drivers/vivid/vivid.js";
import { SIMNPU_OP_CONV3X3 } from "../../src/include/uapi/simnpu-accel.js";
import { V4L2_PIX_FMT_XBGR32, V4L2_PIX_FMT_YUYV } from "../../src/include/uapi/videodev2.js";
import { crc32 } from "../../src/lib/crc32.js";
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
/**
 * The issue's graph scenarios, each with the one sync a test removes: the stage that
 * makes it, and the violation that must name the consequence. The sync is removed two
 * ways: as the stage's own userspace mistake (`fault`), and as a named kernel fault
 * armed for that stage only (`faults`, scoped by the fault injector).
 */
const GRAPHS: readonly {
  name: string;
  stage: string;
  fault: "omit-sync-start" | "omit-sync-end";
  named: string;
  violation: string;
}[] = [
  // ISP (m2m) -> NPU, the display fanned out from the ISP's output; the program reads
  // the NPU's result without invalidating its cache first.
  {
    name: "isp-npu-display",
    stage: "results",
    fault: "omit-sync-start",
    named: "invalidate-before-only",
    violation: "stale-cpu-read",
  },
  // camera -> GPU composite of two sources -> display and encoder; the CPU's stamp of
  // the second source is never cleaned for the GPU.
  {
    name: "camera-gpu-display-encoder",
    stage: "stamp",
    fault: "omit-sync-end",
    named: "lost-sync-end",
    violation: "stale-device-read",
  },
  // Two NPUs of one kind; the CPU's overlay is never cleaned for the first.
  {
    name: "two-npus",
    stage: "overlay",
    fault: "omit-sync-end",
    named: "lost-sync-end",
    violation: "stale-device-read",
  },
  // A non-coherent NPU behind an IOMMU next to a coherent GPU: only the NPU suffers.
  {
    name: "mixed-coherency-npu-gpu",
    stage: "stamp",
    fault: "omit-sync-end",
    named: "lost-sync-end",
    violation: "stale-device-read",
  },
];

function summary(r: PipelineResult): string {
  const kinds = [...new Set(r.violations.map((v) => v.kind))].join(",");
  const sinks = r.sinks.map(
    (s) => `${s.name} ${s.frames.filter((f) => f.ok).length}/${s.frames.length}`,
  );
  return `${r.verdict}; sinks: ${sinks.join(", ")}; violations: ${kinds || "none"}`;
}

/** The scenario with one field of one stage set. */
function withStageField(name: string, stage: string, key: string, value: unknown): PipelineResult {
  const src = readScenarioData(join(EXAMPLES, `${name}.yaml`));
  const stages = (src.data as { graph: { stages: { name: string }[] } }).graph.stages;
  const i = stages.findIndex((s) => s.name === stage);
  assert.ok(i >= 0, `${name} has a stage ${stage}`);
  const data = setScenarioField(src.data, `graph.stages[${i}].${key}`, value);
  return runPipeline(scenarioToSpec(parseScenario(data, src)));
}

for (const name of [...GRAPHS.map((x) => x.name), "two-gpus-sync-file"]) {
  test(`graph ${name}: coherent at every sink with the right syncs`, () => {
    const r = runPipeline(scenarioToSpec(loadScenarioFile(join(EXAMPLES, `${name}.yaml`))));
    assert.equal(r.verdict, "coherent", summary(r));
    assert.deepEqual(r.violations, []);
    assert.ok(r.sinks.length >= 1);
    for (const s of r.sinks) {
      assert.ok(s.ok, `${s.name}: ${summary(r)}`);
      assert.ok(new Set(s.frames.map((f) => f.crc)).size > 1, `${s.name}: frames change`);
    }
    assert.equal(r.sinks[0]!.frames, r.frames, "frames are the primary sink's");
  });
}

for (const g of GRAPHS) {
  for (const [how, key, value] of [
    [`${g.fault} by stage ${g.stage}`, "fault", g.fault],
    [`named fault ${g.named} armed for stage ${g.stage} only`, "faults", [g.named]],
  ] as const) {
    test(`graph ${g.name}: one sync removed (${how}) is caught — wrong CRCs and ${g.violation}`, () => {
      const r = withStageField(g.name, g.stage, key, value);
      assert.equal(r.verdict, "incoherent", summary(r));
      assert.ok(
        r.sinks.some((s) => s.frames.some((f) => !f.ok)),
        `a sink shows wrong frames: ${summary(r)}`,
      );
      assert.ok(
        r.violations.some((v) => v.kind === g.violation),
        `a ${g.violation} violation: ${summary(r)}`,
      );
    });
  }
}

test("mixed coherency: the sync the NPU needs is the one the coherent GPU does not", () => {
  const r = withStageField("mixed-coherency-npu-gpu", "stamp", "fault", "omit-sync-end");
  const show = r.sinks.find((s) => s.name === "show")!;
  const results = r.sinks.find((s) => s.name === "results")!;
  assert.ok(show.ok, "the coherent GPU snoops the CPU's dirty lines");
  assert.ok(!results.ok, "the non-coherent NPU reads DRAM without them");
  assert.ok(r.violations.every((v) => v.agent !== "gpu"));
});

test("a stage's named fault applies to that stage only", () => {
  // lost-sync-end armed for the display's stage: the display makes no DMA_BUF_IOCTL_SYNC.
  assert.throws(
    () => withStageField("two-npus", "show", "faults", ["lost-sync-end"]),
    /fault 'lost-sync-end' of stage show could not take effect/,
  );
});

test("fan-out and fan-in: the display and the encoder read the GPU's composite of two cameras", () => {
  const r = runPipeline(
    scenarioToSpec(loadScenarioFile(join(EXAMPLES, "camera-gpu-display-encoder.yaml"))),
  );
  const [show, encode] = r.sinks;
  assert.equal(show?.name, "show");
  assert.equal(encode?.name, "encode");
  assert.equal(encode?.kind, "encoder");
  assert.ok(r.buffers.some((b) => b.name === "composed0" && b.importers.includes("enc")));
  assert.ok(r.buffers.some((b) => b.name === "inset0" && b.importers.includes("gpu")));
  assert.ok(r.buffers.some((b) => b.name === "frames0" && b.importers.includes("gpu")));
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

const FAN_IN: GraphSpec = {
  devices: {
    a: { kind: "camera" },
    b: { kind: "camera" },
    gpu: { kind: "gpu" },
    lcd: { kind: "display" },
  },
  pools: {
    pa: { source: "v4l2-mmap", count: 3 },
    pb: { source: "v4l2-mmap", count: 3 },
    out: { source: "gem-dumb", count: 3 },
  },
  stages: [
    { name: "ca", device: "a", inputs: [], pool: "pa" },
    { name: "cb", device: "b", inputs: [], pool: "pb" },
    { name: "mix", device: "gpu", inputs: ["ca", "cb"], pool: "out", op: "copy" },
    { name: "show", device: "lcd", inputs: ["mix"] },
  ],
};

test("fan-in: a GPU composite of two sources is the first input's op with the second blended over it", () => {
  // The second source is a camera whose top 8 lines the CPU overwrites (write-only).
  const graph: GraphSpec = {
    ...FAN_IN,
    stages: [
      FAN_IN.stages[0]!,
      FAN_IN.stages[1]!,
      { name: "draw", inputs: ["cb"], cpu: { read: false, write: true, lines: 8 } },
      { name: "mix", device: "gpu", inputs: ["ca", "draw"], pool: "out", op: "invert" },
      FAN_IN.stages[3]!,
    ],
  };
  const r = runPipeline({ ...SMALL, graph });
  assert.equal(r.verdict, "coherent", summary(r));
  // Independently: frame n of each camera is vivid's pattern for sequence n; the CPU
  // fills its 8 lines with (37n + 11) & 0xff; the composite is (255 - a + b + 1) >> 1.
  const fmt = { width: 64, height: 48, bytesperline: 256, pixelformat: V4L2_PIX_FMT_XBGR32 };
  for (const f of r.frames) {
    const a = vividTestPattern(fmt, f.index);
    const b = vividTestPattern(fmt, f.index);
    b.fill((f.index * 37 + 11) & 0xff, 0, 8 * 256);
    const want = a.map((x, i) => (255 - x + b[i]! + 1) >> 1);
    assert.equal(f.expectedCrc, crc32(want), `frame ${f.index}`);
  }
  assert.ok(new Set(r.frames.map((f) => f.crc)).size > 1);
});

test("wrong fan-in is refused, naming the field and why", () => {
  const stage = (over: Partial<GraphSpec["stages"][number]>): GraphSpec => ({
    ...FAN_IN,
    stages: FAN_IN.stages.map((s) => (s.name === "mix" ? { ...s, ...over } : s)),
  });
  refused(stage({ inputs: ["ca", "ca"] }), /graph\.stages\[2\]\.inputs\[1\]/, /read twice/);
  refused(
    {
      ...FAN_IN,
      devices: { ...FAN_IN.devices, c: { kind: "camera" } },
      pools: { ...FAN_IN.pools, pc: { source: "v4l2-mmap", count: 3 } },
      stages: [
        { name: "cc", device: "c", inputs: [], pool: "pc" },
        ...stage({ inputs: ["ca", "cb", "cc"] }).stages,
      ],
    },
    /graph\.stages\[3\]\.inputs/,
    /reads one input, or composites two/,
  );
  refused(
    {
      ...FAN_IN,
      pools: { ...FAN_IN.pools, pb: { source: "v4l2-mmap", count: 3, format: "YUYV" } },
    },
    /graph\.stages\[2\]\.inputs\[1\]/,
    /blended over the first as XRGB8888.*holds YUYV/,
  );
  refused(
    {
      ...FAN_IN,
      stages: [
        ...FAN_IN.stages.slice(0, 3),
        { name: "show", device: "lcd", inputs: ["mix", "ca"] },
      ],
    },
    /graph\.stages\[3\]\.inputs/,
    /a display reads one input \(fan-in is a gpu stage's\)/,
  );
  refused(
    {
      ...FAN_IN,
      stages: [
        ...FAN_IN.stages,
        { name: "peek", inputs: ["ca", "cb"], cpu: { read: true, write: false } },
      ],
    },
    /graph\.stages\[4\]\.inputs/,
    /CPU stage works in place on one input's buffer/,
  );
});

test("misspelt input, device, pool and fault names get a did-you-mean", () => {
  const with1 = (over: Partial<GraphSpec["stages"][number]>): GraphSpec => ({
    ...FAN_IN,
    stages: FAN_IN.stages.map((s) => (s.name === "mix" ? { ...s, ...over } : s)),
  });
  refused(
    with1({ inputs: ["ca", "cbb"] }),
    /graph\.stages\[2\]\.inputs\[1\]/,
    /no stage named "cbb" \(did you mean "cb"\?\)/,
  );
  refused(
    with1({ device: "gpuu" }),
    /graph\.stages\[2\]\.device/,
    /no device "gpuu" in graph\.devices \(did you mean "gpu"\?\)/,
  );
  refused(
    with1({ pool: "outt" }),
    /graph\.stages\[2\]\.pool/,
    /no pool "outt" in graph\.pools \(did you mean "out"\?\)/,
  );
  refused(with1({ device: "zzzzzz" }), /graph\.stages\[2\]\.device/, /\(known: a, b, gpu, lcd\)/);
  refused(
    with1({ faults: ["lost-sync-ned"] }),
    /graph\.stages\[2\]\.faults\[0\]/,
    /did you mean "lost-sync-end"/,
  );
});

test("isp-npu-display: the NPU's result read back is what simnpu computes from the ISP's conversion of vivid's pattern", () => {
  const r = runPipeline(scenarioToSpec(loadScenarioFile(join(EXAMPLES, "isp-npu-display.yaml"))));
  const results = r.sinks.find((s) => s.name === "results")!;
  const raw = { width: 320, height: 240, bytesperline: 640, pixelformat: V4L2_PIX_FMT_YUYV };
  const out = {
    width: 320,
    height: 240,
    pixelformat: V4L2_PIX_FMT_YUYV,
    bytesperline: 640,
    sizeimage: 640 * 240,
  };
  const cap = {
    width: 320,
    height: 240,
    pixelformat: V4L2_PIX_FMT_XBGR32,
    bytesperline: 1280,
    sizeimage: 1280 * 240,
  };
  for (const f of results.frames) {
    const rgb = vim2mProcess(vividTestPattern(raw, f.index), out, cap);
    const blur = simnpuCompute(SIMNPU_OP_CONV3X3, rgb, {
      width: 320,
      height: 240,
      cpp: 4,
      inPitch: 1280,
    });
    // The program reads the top quarter of the tensor (fraction 0.25: 60 rows).
    assert.equal(f.expectedCrc, crc32(blur.subarray(0, 1280 * 60)), `frame ${f.index}`);
    assert.equal(f.crc, f.expectedCrc);
  }
});
