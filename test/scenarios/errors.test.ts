import assert from "node:assert/strict";
import { test } from "node:test";
import {
  loadScenarioFile,
  parseScenario,
  parseScenarioText,
  readScenarioData,
  ScenarioError,
} from "../../src/scenarios/scenario.js";
import { tempDir } from "./helpers.js";

/** Parses text as a scenario and returns the ScenarioError it must raise. */
function errorOf(file: string, text: string): ScenarioError {
  try {
    parseScenario(parseScenarioText(file, text), { file, text });
  } catch (e) {
    if (e instanceof ScenarioError) return e;
    throw e;
  }
  assert.fail(`${file} was accepted`);
}

const CAMERA = `# yaml-language-server: $schema=../../schema/scenario.schema.json
name: camera
description: a camera
machine:
  profile: arm64
buffers:
  width: 640
  height: 480
pipeline:
  kind: camera-display
  frames: 8
  strategy: streamin
`;

test("bad enum: file:line:col, field, the choices, and a suggestion", () => {
  const e = errorOf("camera.yaml", CAMERA);
  assert.equal(
    e.message,
    'camera.yaml:12:13: pipeline.strategy: expected one of "coherent", "streaming", "whole-cache", "cache-hints"; got "streamin" (did you mean "streaming"?)',
  );
  assert.equal(e.file, "camera.yaml");
  assert.equal(e.line, 12);
  assert.equal(e.column, 13);
  assert.equal(e.field, "pipeline.strategy");
});

test("unknown key: points at the key and suggests the field meant", () => {
  const e = errorOf("k.yaml", "pipeline:\n  kind: camera-display\n  frame: 8\n");
  assert.equal(
    e.message,
    'k.yaml:3:3: pipeline.frame: unknown field "frame" (did you mean "frames"?)',
  );
  assert.equal(e.field, "pipeline.frame");
  assert.deepEqual([e.line, e.column], [3, 3]);
});

test("unknown key with nothing close lists the known fields", () => {
  const e = errorOf("k.yaml", "buffers:\n  zzzzzz: 1\n");
  assert.match(
    e.message,
    /^k\.yaml:2:3: buffers\.zzzzzz: unknown field "zzzzzz"; expected one of: source, heap, width/,
  );
});

test("unknown key inside a list item", () => {
  const e = errorOf(
    "l.yaml",
    "machine:\n  cache:\n    levels:\n      - size: 32K\n        ways: 4\n",
  );
  assert.deepEqual(e.message.split("\n").sort(), [
    'l.yaml:4:9: machine.cache.levels[0].size: unknown field "size" (did you mean "sizeBytes"?)',
    "l.yaml:4:9: machine.cache.levels[0].sizeBytes: required field is missing",
  ]);
});

test("unknown top-level key", () => {
  const e = errorOf("t.yaml", "name: x\npipline:\n  frames: 2\n");
  assert.equal(
    e.message,
    't.yaml:2:1: pipline: unknown field "pipline" (did you mean "pipeline"?)',
  );
});

test("wrong type: a string where a number goes, and a boolean", () => {
  const e = errorOf("w.yaml", 'pipeline:\n  frames: "eight"\n  cpu:\n    reads: yes\n');
  assert.equal(e.issues.length, 2);
  assert.equal(
    e.message.split("\n")[0],
    'w.yaml:2:11: pipeline.frames: expected a number; got "eight"',
  );
  assert.equal(
    e.message.split("\n")[1],
    'w.yaml:4:12: pipeline.cpu.reads: expected true or false; got "yes"',
  );
  assert.deepEqual([e.file, e.line, e.column, e.field], ["w.yaml", 2, 11, "pipeline.frames"]);
});

test("integers and ranges", () => {
  assert.equal(
    errorOf("r.yaml", "pipeline:\n  frames: 1.5\n").message,
    "r.yaml:2:11: pipeline.frames: expected an integer; got 1.5",
  );
  assert.equal(
    errorOf("r.yaml", "pipeline:\n  frames: 0\n").message,
    "r.yaml:2:11: pipeline.frames: expected a number at least 1; got 0",
  );
  assert.equal(
    errorOf("r.yaml", "buffers:\n  width: 641\n").message,
    "r.yaml:2:10: buffers.width: expected an even width (YUYV pairs pixels); got 641",
  );
});

test("bad size string: names the accepted forms", () => {
  const e = errorOf("s.yaml", "machine:\n  cmaBytes: 32 parsecs\n");
  assert.match(
    e.message,
    /^s\.yaml:2:13: machine\.cmaBytes: expected a size: a number of bytes, or a string such as "64K", "512KiB", "32 MiB".*; got "32 parsecs"$/,
  );
  assert.equal(e.field, "machine.cmaBytes");
  const frac = errorOf("s.yaml", "buffers:\n  bufferBytes: 1.3K\n");
  assert.match(
    frac.message,
    /^s\.yaml:2:16: buffers\.bufferBytes: .*whole number of bytes below 2\^53; got "1\.3K"$/,
  );
  const neg = errorOf("s.yaml", "machine:\n  swiotlbBytes: true\n");
  assert.match(neg.message, /^s\.yaml:2:17: machine\.swiotlbBytes: expected a size.*; got true$/);
});

test("cache geometry the machine could not build is reported at the level", () => {
  const e = errorOf(
    "g.yaml",
    "machine:\n  profile: arm64\n  cache:\n    levels:\n      - { sizeBytes: 32KiB, ways: 2 }\n      - sizeBytes: 1000KiB\n        ways: 3\n",
  );
  const lines = e.message.split("\n");
  assert.equal(
    lines[0],
    "g.yaml:6:20: machine.cache.levels[1].sizeBytes: expected a whole number of 3-way sets of 64-byte lines (a multiple of 192 bytes); got 1024000 bytes",
  );
  assert.equal(
    lines[1],
    "g.yaml:7:15: machine.cache.levels[1].ways: expected a power of two of at most 32 (pseudo-LRU replacement); got 3",
  );
});

test("unknown profile suggests the closest", () => {
  const e = errorOf("p.yaml", "machine:\n  profile: arm65\n");
  assert.match(
    e.message,
    /^p\.yaml:2:12: machine\.profile: expected one of "cortex-a9", .*; got "arm65" \(did you mean "arm64"\?\)$/,
  );
});

test("YAML syntax error: yaml's own message at its position", () => {
  const e = errorOf("y.yaml", "name: x\npipeline:\n  frames: [1, 2\n  kind: camera-display\n");
  assert.equal(e.file, "y.yaml");
  assert.equal(e.field, undefined);
  assert.ok(e.line !== undefined && e.line >= 3, e.message);
  assert.match(e.message, new RegExp(`^y\\.yaml:${e.line}:${e.column}: YAML syntax error: `));
  const dup = errorOf("d.yaml", "name: a\nname: b\n");
  assert.equal(dup.message, "d.yaml:2:1: YAML syntax error: Map keys must be unique");
});

test("JSON syntax errors carry the line and column", () => {
  const e = errorOf("c.json", '{\n  "pipeline": {\n    "frames": 3,\n  }\n}\n');
  assert.equal(
    e.message,
    "c.json:4:3: JSON syntax error: expected a property name in double quotes; got '}'",
  );
  assert.deepEqual([e.line, e.column], [4, 3]);
  const e2 = errorOf("c.json", '{"pipeline": {"frames" 3}}');
  assert.equal(
    e2.message,
    "c.json:1:24: JSON syntax error: expected ':' after the property name; got '3'",
  );
  const e3 = errorOf("c.json", '{"name": "x"');
  assert.equal(
    e3.message,
    "c.json:1:13: JSON syntax error: unexpected end of file; expected ',' or '}' after the property value",
  );
});

test("JSON schema errors point into the JSON text too", () => {
  const e = errorOf("c.json", '{\n  "pipeline": {\n    "strategy": "coherant"\n  }\n}\n');
  assert.equal(e.line, 3);
  assert.equal(e.column, 17);
  assert.match(e.message, /did you mean "coherent"/);
});

test("top level must be a mapping; empty and comment-only files are errors", () => {
  assert.equal(
    errorOf("l.yaml", "- a\n- b\n").message,
    "l.yaml:1:1: expected a mapping of scenario fields; got a list",
  );
  assert.match(errorOf("e.yaml", "").message, /^e\.yaml:1:1: the file is empty/);
  assert.match(
    errorOf("e.yaml", "# just a comment\n").message,
    /^e\.yaml:1:1: the file has no content/,
  );
});

test("a missing file is a ScenarioError naming it, not an ENOENT stack", () => {
  const dir = tempDir();
  assert.throws(
    () => loadScenarioFile("nope.yaml", dir),
    (e: unknown) =>
      e instanceof ScenarioError &&
      e.message === "nope.yaml: cannot read the scenario: no such file" &&
      e.file === "nope.yaml" &&
      e.line === undefined,
  );
});

test("files: YAML or JSON by extension, else by content; errors carry the path as given", () => {
  const dir = tempDir({
    "a.yaml": "name: from-yaml\npipeline: { frames: 2 }\n",
    "b.json": '{ "pipeline": { "frames": 3 } }',
    "c.scenario": '{ "pipeline": { "frames": 4 } }',
    "bad.yml": "pipeline:\n  frames: -1\n",
  });
  assert.equal(loadScenarioFile("a.yaml", dir).pipeline?.frames, 2);
  const b = loadScenarioFile("b.json", dir);
  assert.equal(b.pipeline?.frames, 3);
  assert.equal(b.name, "b", "name defaults to the file name");
  assert.equal(loadScenarioFile("c.scenario", dir).pipeline?.frames, 4);
  assert.throws(
    () => loadScenarioFile("bad.yml", dir),
    (e: unknown) =>
      e instanceof ScenarioError &&
      e.message === "bad.yml:2:11: pipeline.frames: expected a number at least 1; got -1",
  );
  const raw = readScenarioData("a.yaml", dir);
  assert.equal(raw.file, "a.yaml");
  assert.deepEqual(raw.data, { name: "from-yaml", pipeline: { frames: 2 } });
});

test("every problem is listed, in file order, one per line", () => {
  const e = errorOf("m.yaml", "pipeline:\n  strategy: nope\n  fps: -3\nbuffers:\n  count: 99\n");
  const lines = e.message.split("\n");
  assert.equal(lines.length, 3);
  assert.deepEqual(
    lines.map((l) => l.split(": ")[0]),
    ["m.yaml:2:13", "m.yaml:3:8", "m.yaml:5:10"],
  );
});

test("without a source, errors name the field only", () => {
  assert.throws(
    () => parseScenario({ pipeline: { strategy: "streamin" } }),
    (e: unknown) =>
      e instanceof ScenarioError &&
      e.file === undefined &&
      e.field === "pipeline.strategy" &&
      e.message.startsWith('pipeline.strategy: expected one of "coherent"'),
  );
});
