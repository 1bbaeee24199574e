import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import type { PipelineSpec } from "../../src/pipelines/types.js";
import { MAPPING_STRATEGIES, PIPELINE_FAULTS, PIPELINE_KINDS } from "../../src/pipelines/types.js";
import {
  defineScenario,
  loadScenarioFile,
  parseFieldValue,
  parseScenario,
  readScenarioData,
  runScenario,
  ScenarioError,
  scenarioToSpec,
  setScenarioField,
} from "../../src/scenarios/scenario.js";
import {
  parseSize,
  ScenarioSchema,
  scenarioJsonSchema,
  scenarioJsonSchemaText,
} from "../../src/scenarios/schema.js";
import { coherentResult } from "../cli/fixtures.js";
import { repoRoot } from "./helpers.js";

const root = repoRoot();
const examples = join(root, "examples", "scenarios");
const exampleFiles = readdirSync(examples).filter((f) => f.endsWith(".yaml"));

test("the required example scenarios exist", () => {
  for (const name of [
    "camera-display",
    "camera-cpu-display",
    "camera-gpu-display",
    "lying-hint",
    "missing-sync-end",
    "cortex-a9-whole-cache",
    "my-soc",
  ]) {
    assert.ok(exampleFiles.includes(`${name}.yaml`), name);
  }
});

test("every example scenario validates, has a description and the schema modeline", () => {
  for (const f of exampleFiles) {
    const text = readFileSync(join(examples, f), "utf8");
    assert.equal(
      text.split("\n")[0],
      "# yaml-language-server: $schema=../../schema/scenario.schema.json",
      f,
    );
    const s = loadScenarioFile(join(examples, f));
    assert.ok(s.description && s.description.length > 40, `${f}: description`);
    assert.equal(s.name, f.replace(/\.yaml$/, ""), `${f}: name matches the file`);
  }
});

test("examples say what they are about", () => {
  const load = (n: string) => scenarioToSpec(loadScenarioFile(join(examples, `${n}.yaml`)));
  assert.equal(load("camera-display").pipeline, "camera-display");
  assert.equal(load("camera-display").profile, "arm64");
  const lying = load("lying-hint");
  assert.equal(lying.fault, "lying-no-cache-invalidate");
  assert.equal(lying.cpuReads, true);
  assert.equal(load("missing-sync-end").fault, "omit-sync-end");
  const a9 = load("cortex-a9-whole-cache");
  assert.equal(a9.profile, "cortex-a9");
  assert.equal(a9.strategy, "whole-cache");
  assert.deepEqual(a9.overrides?.maintenance, { thresholdBytes: 512 * 1024 });
  assert.equal(load("camera-gpu-display").pipeline, "camera-gpu-display");
});

test("my-soc sets every machine field the schema has", () => {
  const { data } = readScenarioData(join(examples, "my-soc.yaml"));
  const machine = (data as { machine: Record<string, Record<string, unknown>> }).machine;
  const schema = scenarioJsonSchema() as {
    properties: {
      machine: { properties: Record<string, { properties?: Record<string, unknown> }> };
    };
  };
  for (const [k, sub] of Object.entries(schema.properties.machine.properties)) {
    assert.ok(k in machine, `machine.${k}`);
    for (const kk of Object.keys(sub.properties ?? {})) {
      // maintenance.kind only restates the strategy; setting it would refuse the others.
      if (k === "maintenance" && kk === "kind") continue;
      assert.ok(kk in machine[k]!, `machine.${k}.${kk}`);
    }
  }
});

test("scenarioToSpec maps every section and leaves out what was not written", () => {
  // Schema only: the fields are chosen to exercise every mapping, not to take effect together.
  const s = ScenarioSchema.parse({
    name: "soc",
    machine: {
      profile: "cortex-a9",
      cache: {
        lineSize: 32,
        levels: [
          { sizeBytes: "32K", ways: 4 },
          { name: "PL310", sizeBytes: "1 MiB", ways: 16 },
        ],
      },
      maintenance: { kind: "per-line" },
      coherentAttr: "uncached",
      swiotlbBytes: 0,
      cmaBytes: "128MiB",
      ram: { base: "0x1000_0000", size: "2GiB" },
      costs: { lineOpNs: 10, hitNs: [4, 18] },
      device: {
        coherent: false,
        dmaBits: 32,
        iommu: true,
        bandwidth: 2,
        setupNs: 500,
        dmaOffset: 0,
      },
    },
    buffers: {
      source: "dma-heap",
      heap: "cma",
      width: 1024,
      format: "YUYV",
      bufferBytes: "2MiB",
      count: 3,
    },
    devices: { gpu: { coherent: true, bandwidth: 9 }, display: { dmaBits: 64 } },
    pipeline: {
      kind: "camera-gpu-display",
      frames: 5,
      fps: 60,
      strategy: "cache-hints",
      cpu: { reads: false, writes: true },
      hints: { noCacheInvalidate: true },
      fault: "lying-no-cache-clean",
    },
    seed: 7,
  });
  const spec = scenarioToSpec(s);
  const expected: PipelineSpec = {
    name: "soc",
    profile: "cortex-a9",
    overrides: {
      cache: {
        lineSize: 32,
        levels: [
          { name: "L1D", sizeBytes: 32768, ways: 4 },
          { name: "PL310", sizeBytes: 1048576, ways: 16 },
        ],
      },
      maintenance: { kind: "per-line" },
      coherentAttr: "uncached",
      swiotlbBytes: 0,
      cmaBytes: 128 * 1024 * 1024,
      ram: { base: 0x1000_0000, size: 2 * 1024 ** 3 },
      costs: { lineOpNs: 10, hitNs: [4, 18] },
      device: {
        coherent: false,
        dmaBits: 32,
        iommu: true,
        bandwidthBytesPerNs: 2,
        setupNs: 500,
        dmaOffset: 0,
      },
    },
    pipeline: "camera-gpu-display",
    strategy: "cache-hints",
    source: "dma-heap",
    heap: "cma",
    width: 1024,
    format: "YUYV",
    bufferBytes: 2 * 1024 * 1024,
    frames: 5,
    buffers: 3,
    fps: 60,
    cpuReads: false,
    cpuWrites: true,
    hints: { noCacheInvalidate: true },
    devices: { gpu: { coherent: true, bandwidthBytesPerNs: 9 }, display: { dmaBits: 64 } },
    fault: "lying-no-cache-clean",
    seed: 7,
  };
  assert.deepEqual(spec, expected);
  assert.deepEqual(scenarioToSpec(defineScenario({})), {});
  assert.deepEqual(
    scenarioToSpec(defineScenario({ pipeline: { frames: 2 } }), { trace: true, frames: 9 }),
    {
      frames: 9,
      trace: true,
    },
  );
});

test("the schema's enums are the pipeline contract's", () => {
  const schema = scenarioJsonSchema() as {
    properties: { pipeline: { properties: Record<string, { enum?: string[] }> } };
  };
  const p = schema.properties.pipeline.properties;
  assert.deepEqual(p["kind"]!.enum, [...PIPELINE_KINDS]);
  assert.deepEqual(p["strategy"]!.enum, [...MAPPING_STRATEGIES]);
  assert.deepEqual(p["fault"]!.enum, [...PIPELINE_FAULTS]);
});

test("the committed JSON Schema is the generated one (regenerate: node scripts/gen-schema.mjs)", () => {
  // Compared as JSON, key order included (the committed file is formatted by Biome).
  const committed = readFileSync(join(root, "schema", "scenario.schema.json"), "utf8");
  const s = JSON.parse(committed) as Record<string, unknown>;
  assert.equal(JSON.stringify(s), JSON.stringify(JSON.parse(scenarioJsonSchemaText())));
  assert.equal(s["$schema"], "https://json-schema.org/draft/2020-12/schema");
  assert.ok(typeof s["$id"] === "string" && typeof s["title"] === "string");
  assert.ok(typeof s["description"] === "string");
  assert.equal(s["additionalProperties"], false);
});

test("every field in the JSON Schema has a description", () => {
  const missing: string[] = [];
  const walk = (node: Record<string, unknown>, path: string): void => {
    const props = node["properties"] as Record<string, Record<string, unknown>> | undefined;
    for (const [k, v] of Object.entries(props ?? {})) {
      if (typeof v["description"] !== "string") missing.push(`${path}${k}`);
      walk(v, `${path}${k}.`);
      const items = v["items"] as Record<string, unknown> | undefined;
      if (items) walk(items, `${path}${k}[].`);
    }
  };
  walk(scenarioJsonSchema(), "");
  assert.deepEqual(missing, []);
});

test("sizes: numbers, binary units, hex", () => {
  const cases: [string, number | undefined][] = [
    ["4096", 4096],
    ["64K", 65536],
    ["64k", 65536],
    ["512KiB", 524288],
    ["512 KB", 524288],
    ["32 MiB", 33554432],
    ["1.5M", 1572864],
    ["4GiB", 4 * 1024 ** 3],
    ["0x4000_0000", 0x4000_0000],
    ["1_000", 1000],
    ["12 parsecs", undefined],
    ["1.3K", undefined],
    ["K", undefined],
    ["-4K", undefined],
  ];
  for (const [text, bytes] of cases) assert.equal(parseSize(text), bytes, text);
  assert.equal(defineScenario({ machine: { cmaBytes: "64K" } }).machine?.cmaBytes, 65536);
  assert.equal(defineScenario({ machine: { cmaBytes: 1234 } }).machine?.cmaBytes, 1234);
});

test("setScenarioField: dotted paths, list indices, no mutation, errors through values", () => {
  const data = {
    pipeline: { frames: 2 },
    machine: {
      cache: {
        levels: [
          { sizeBytes: 1, ways: 1 },
          { sizeBytes: 2, ways: 2 },
        ],
      },
    },
  };
  const a = setScenarioField(data, "pipeline.strategy", "coherent");
  assert.deepEqual((a as typeof data & { pipeline: { strategy: string } }).pipeline, {
    frames: 2,
    strategy: "coherent",
  });
  assert.deepEqual(data.pipeline, { frames: 2 }, "input untouched");
  const b = setScenarioField(data, "machine.cache.levels.1.ways", 8) as typeof data;
  assert.equal(b.machine.cache.levels[1]!.ways, 8);
  const c = setScenarioField(data, "machine.cache.levels[0].ways", 4) as typeof data;
  assert.equal(c.machine.cache.levels[0]!.ways, 4);
  const d = setScenarioField({}, "devices.gpu.coherent", true);
  assert.deepEqual(d, { devices: { gpu: { coherent: true } } });
  assert.throws(() => setScenarioField(data, "pipeline.frames.x", 1), ScenarioError);
  assert.throws(() => setScenarioField(data, "__proto__.x", 1), ScenarioError);
  assert.throws(() => setScenarioField(data, "a..b", 1), ScenarioError);
});

test("field values from the command line read as YAML scalars", () => {
  assert.equal(parseFieldValue("true"), true);
  assert.equal(parseFieldValue("64"), 64);
  assert.equal(parseFieldValue("1.5"), 1.5);
  assert.equal(parseFieldValue("64K"), "64K");
  assert.equal(parseFieldValue("streaming"), "streaming");
  assert.deepEqual(parseFieldValue("[2, 10]"), [2, 10]);
  assert.equal(parseFieldValue(""), "");
  assert.equal(parseFieldValue("a: b: c"), "a: b: c");
});

test("the sweep's path: read, set by dotted path, validate with positions", () => {
  const src = readScenarioData(join(examples, "camera-display.yaml"));
  const varied = setScenarioField(src.data, "pipeline.strategy", "whole-cache");
  assert.equal(scenarioToSpec(parseScenario(varied, src)).strategy, "whole-cache");
  const bad = setScenarioField(src.data, "pipeline.strategy", "nope");
  assert.throws(
    () => parseScenario(bad, src),
    (e: unknown) =>
      e instanceof ScenarioError &&
      e.field === "pipeline.strategy" &&
      e.line === 17 &&
      /got "nope"/.test(e.message),
  );
});

test("runScenario hands the spec to the runner, with trace when asked", () => {
  let seen: PipelineSpec | undefined;
  const r = runScenario(defineScenario({ name: "x", pipeline: { frames: 3 } }), {
    trace: true,
    runner: (spec) => {
      seen = spec;
      return coherentResult(spec);
    },
  });
  assert.deepEqual(seen, { name: "x", frames: 3, trace: true });
  assert.equal(r.frames.length, 3);
});
