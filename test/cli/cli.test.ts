import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { main } from "../../src/cli/main.js";
import type { PipelineSpec } from "../../src/pipelines/types.js";
import type { JsonReport } from "../../src/report/json.js";
import { scenarioJsonSchemaText } from "../../src/scenarios/schema.js";
import { repoRoot, tempDir } from "../scenarios/helpers.js";
import { captureIo, coherentResult, fixtureRunner, incoherentResult } from "./fixtures.js";

/** The escape character that starts an ANSI colour sequence. */
const ESC = "\u001b";

const root = repoRoot();
const example = (n: string) => join(root, "examples", "scenarios", `${n}.yaml`);

async function dmabuf(argv: string[], cwd = root, runPipeline = fixtureRunner) {
  const io = captureIo(cwd);
  const code = await main(argv, io, { runPipeline });
  return { code, out: io.stdout, err: io.stderr };
}

function noStack(text: string): void {
  assert.doesNotMatch(text, /\n\s+at .+[:(]/, "no stack trace");
  assert.doesNotMatch(text, /Error:/);
}

test("run: coherent scenario exits 0 with the terminal report", async () => {
  const r = await dmabuf(["run", example("camera-display")]);
  assert.equal(r.code, 0, r.err);
  assert.match(r.out, /^COHERENT: 0 violations, 8 of 8 frames correct\n/);
  assert.match(r.out, /cache maintenance/);
  assert.equal(r.err, "");
  assert.ok(!r.out.includes(ESC), "no colour when not a terminal");
});

test("run: violations or wrong frames exit 1", async () => {
  const r = await dmabuf(["run", example("missing-sync-end")]);
  assert.equal(r.code, 1);
  assert.match(r.out, /^INCOHERENT: 8 violations \(2 kinds\), 7 of 8 frames wrong\n/);
  assert.match(r.out, /stale-cpu-read: 7\n\s+×7 frames \(1–7\)/);
});

test("run: a bundled example can be named without its path", async () => {
  const r = await dmabuf(["run", "camera-gpu-display"]);
  assert.equal(r.code, 0, r.err);
  assert.match(r.out, /camera-gpu-display: camera-gpu-display on arm64/);
});

test("run: bad input exits 2 and prints the compiler-style message, no stack", async () => {
  const dir = tempDir({
    "camera.yaml": "name: c\npipeline:\n  kind: camera-display\n  strategy: streamin\n",
    "syntax.yaml": "pipeline: [\n",
    "empty.yaml": "",
    "bad.json": '{ "pipeline": { "frames": 1, } }',
  });
  const cases: [string[], RegExp][] = [
    [
      ["run", "camera.yaml"],
      /^camera\.yaml:4:13: pipeline\.strategy: expected one of .*\(did you mean "streaming"\?\)\n$/,
    ],
    [["run", "syntax.yaml"], /^syntax\.yaml:\d+:\d+: YAML syntax error: /],
    [["run", "empty.yaml"], /^empty\.yaml:1:1: the file is empty/],
    [
      ["run", "bad.json"],
      /^bad\.json:1:30: JSON syntax error: expected a property name in double quotes; got '}'\n$/,
    ],
    [
      ["run", "missing.yaml"],
      /^missing\.yaml: cannot read the scenario: no such file, and no bundled scenario of that name \(did you mean .missing-sync-end.\?\); see .dmabuf list scenarios.\n$/,
    ],
  ];
  for (const [argv, re] of cases) {
    const r = await dmabuf(argv, dir);
    assert.equal(r.code, 2, argv.join(" "));
    assert.equal(r.out, "");
    assert.match(r.err, re);
    noStack(r.err);
  }
});

test("run: configuration the machine rejects is bad input too (exit 2, no stack)", async () => {
  const r = await dmabuf(["run", example("camera-display")], root, () => {
    throw new RangeError("machine: RAM of 1073741824 bytes is too small for the reserved areas");
  });
  assert.equal(r.code, 2);
  assert.match(
    r.err,
    /camera-display\.yaml: the pipeline cannot run: machine: RAM of 1073741824 bytes is too small/,
  );
  noStack(r.err);
});

test("run: --set, --profile and --frames reach the spec; their errors name the option", async () => {
  let seen: PipelineSpec | undefined;
  const spy = (spec: PipelineSpec) => {
    seen = spec;
    return coherentResult(spec);
  };
  const ok = await dmabuf(
    [
      "run",
      example("camera-display"),
      "--profile",
      "cortex-a9",
      "--frames",
      "3",
      "--set",
      "pipeline.strategy=coherent",
      "--set",
      "devices.display.coherent=true",
      "--set",
      "machine.cmaBytes=128MiB",
    ],
    root,
    spy,
  );
  assert.equal(ok.code, 0, ok.err);
  assert.equal(seen?.profile, "cortex-a9");
  assert.equal(seen?.frames, 3);
  assert.equal(seen?.strategy, "coherent");
  assert.deepEqual(seen?.devices, { display: { coherent: true } });
  assert.equal(seen?.overrides?.cmaBytes, 128 * 1024 * 1024);
  assert.equal(seen?.trace, undefined);

  const bad = await dmabuf([
    "run",
    example("camera-display"),
    "--set",
    "pipeline.strategy=streamin",
  ]);
  assert.equal(bad.code, 2);
  assert.equal(
    bad.err,
    '--set pipeline.strategy=streamin: pipeline.strategy: expected one of "coherent", "streaming", "whole-cache", "cache-hints"; got "streamin" (did you mean "streaming"?)\n',
  );
  const frames = await dmabuf(["run", example("camera-display"), "--frames", "many"]);
  assert.equal(frames.code, 2);
  assert.equal(frames.err, '--frames many: pipeline.frames: expected a number; got "many"\n');
  const prof = await dmabuf(["run", example("camera-display"), "--profile", "arm65"]);
  assert.match(prof.err, /^--profile arm65: machine\.profile: .*\(did you mean "arm64"\?\)\n$/);
  const noEq = await dmabuf(["run", example("camera-display"), "--set", "pipeline.frames"]);
  assert.equal(noEq.code, 2);
  assert.match(noEq.err, /--set pipeline\.frames: expected FIELD=VALUE/);
  const unknown = await dmabuf(["run", example("camera-display"), "--set", "pipeline.frame=3"]);
  assert.match(unknown.err, /unknown field "frame" \(did you mean "frames"\?\)/);
});

test("run --json: the JSON report on stdout, nothing else", async () => {
  const r = await dmabuf(["run", example("missing-sync-end"), "--json", "--frames", "3"]);
  assert.equal(r.code, 1);
  const j = JSON.parse(r.out) as JsonReport;
  assert.equal(j.tool, "dmabuf");
  assert.equal(j.schemaVersion, 1);
  assert.equal(j.scenario, "missing-sync-end");
  assert.equal(j.verdict, "incoherent");
  assert.equal(j.spec["fault"], "omit-sync-end");
  assert.deepEqual(j.summary, {
    violations: 3,
    violationsByKind: { "api-misuse": 1, "stale-cpu-read": 2 },
    frames: 3,
    framesOk: 1,
    framesWrong: 2,
  });
  assert.deepEqual(Object.keys(j.violations[0]!), [
    "seq",
    "kind",
    "api",
    "buffer",
    "offset",
    "length",
    "phys",
    "time",
    "agent",
    "message",
    "hint",
  ]);
  const f = j.frames[1]!;
  assert.equal(f.ok, false);
  assert.match(f.crcHex, /^0x[0-9a-f]{8}$/);
  assert.equal(Number.parseInt(f.crcHex, 16), f.crc);
  assert.equal(Number.parseInt(f.expectedCrcHex, 16), f.expectedCrc);
  assert.deepEqual(Object.keys(j.costs.total), [
    "cpu-access",
    "cache-maintenance",
    "dma",
    "bounce",
    "iommu",
    "wait",
  ]);
  assert.equal(typeof j.elapsedNs, "number");
  const again = await dmabuf(["run", example("missing-sync-end"), "--json", "--frames", "3"]);
  assert.equal(again.out, r.out, "deterministic");
});

test("run --trace writes the trace file and asks the runner to record", async () => {
  const dir = tempDir();
  let traced: boolean | undefined;
  const r = await dmabuf(["run", example("camera-display"), "--trace", "t.json"], dir, (spec) => {
    traced = spec.trace;
    return coherentResult(spec);
  });
  assert.equal(r.code, 0, r.err);
  assert.equal(traced, true);
  // A bare name goes into out/, where it cannot break the project's lint.
  assert.ok(existsSync(join(dir, "out", "t.json")));
  JSON.parse(readFileSync(join(dir, "out", "t.json"), "utf8"));
  assert.match(r.err, /wrote the trace .*out\/t\.json/);
});

test("run: usage errors name the option and point to --help", async () => {
  const cases: [string[], string][] = [
    [["run"], "dmabuf run: missing SCENARIO (a .yaml or .json file)\nTry 'dmabuf run --help'.\n"],
    [
      ["run", "a.yaml", "--bogus"],
      "dmabuf run: unknown option '--bogus'\nTry 'dmabuf run --help'.\n",
    ],
    [
      ["run", "a.yaml", "b.yaml"],
      "dmabuf run: unexpected argument 'b.yaml'\nTry 'dmabuf run --help'.\n",
    ],
    [
      ["run", "a.yaml", "--trace"],
      "dmabuf run: option '--trace <value>' argument missing\nTry 'dmabuf run --help'.\n",
    ],
    [["frobnicate"], "dmabuf: unknown command 'frobnicate'\nTry 'dmabuf --help'.\n"],
    [["lst"], "dmabuf: unknown command 'lst' (did you mean 'list'?)\nTry 'dmabuf --help'.\n"],
    [["list", "--all"], "dmabuf list: unknown option '--all'\nTry 'dmabuf list --help'.\n"],
    [["schema", "x"], "dmabuf schema: unexpected argument 'x'\nTry 'dmabuf schema --help'.\n"],
    [
      ["demo", "--size", "3"],
      "dmabuf demo: --size must be a whole number of bytes from 64 to 67108864, not '3'\nTry 'dmabuf demo --help'.\n",
    ],
    [["help", "nope"], "dmabuf help: unknown command 'nope'\nTry 'dmabuf help --help'.\n"],
  ];
  for (const [argv, err] of cases) {
    const r = await dmabuf(argv);
    assert.equal(r.code, 2, argv.join(" "));
    assert.equal(r.err, err);
    assert.equal(r.out, "");
  }
});

test("--help on every command, help COMMAND, --version", async () => {
  const top = await dmabuf(["--help"]);
  assert.equal(top.code, 0);
  for (const c of ["run", "sweep", "list", "schema", "demo", "help"]) {
    assert.match(top.out, new RegExp(`dmabuf ${c}`), c);
  }
  for (const c of ["run", "list", "schema", "demo", "help"]) {
    const a = await dmabuf([c, "--help"]);
    assert.equal(a.code, 0, c);
    assert.match(a.out, new RegExp(`^Usage: dmabuf ${c}`), c);
    const h = await dmabuf(["help", c]);
    assert.equal(h.out, a.out, `help ${c}`);
    const short = await dmabuf([c, "-h"]);
    assert.equal(short.out, a.out, `${c} -h`);
  }
  assert.equal((await dmabuf(["help"])).out, top.out);
  const v = await dmabuf(["--version"]);
  assert.equal(v.code, 0);
  assert.match(v.out, /^dmabuf \d+\.\d+\.\d+\n$/);
  const pkg = JSON.parse(readFileSync(join(root, "package.json"), "utf8")) as { version: string };
  assert.equal(v.out, `dmabuf ${pkg.version}\n`);
});

test("list: every section, and one at a time", async () => {
  const all = await dmabuf(["list"]);
  assert.equal(all.code, 0);
  for (const title of [
    "Profiles (machine.profile)",
    "Scenarios (",
    "Heaps (",
    "Devices (",
    "Mapping strategies (pipeline.strategy)",
    "Pipelines (pipeline.kind)",
    "Deliberate faults (pipeline.fault)",
    "Buffer sources (buffers.source)",
    "Graph device kinds (graph.devices.NAME.kind",
  ]) {
    assert.ok(all.out.includes(title), title);
  }
  const profiles = await dmabuf(["list", "profiles"]);
  assert.match(profiles.out, /^Profiles/);
  assert.match(profiles.out, /\n {2}cortex-a9 +arm +32-bit ARM Cortex-A9/);
  assert.doesNotMatch(profiles.out, /Scenarios/);
  const scenarios = await dmabuf(["list", "scenarios"]);
  for (const n of ["camera-display", "lying-hint", "my-soc", "cortex-a9-whole-cache"]) {
    assert.match(scenarios.out, new RegExp(`\\n {2}${n} +\\S`), n);
  }
  assert.match(scenarios.out, /NO_CACHE_INVALIDATE/);
  const strategies = await dmabuf(["list", "strategies"]);
  for (const s of ["coherent", "streaming", "whole-cache", "cache-hints"]) {
    assert.match(strategies.out, new RegExp(`\\n {2}${s} `));
  }
  const faults = await dmabuf(["list", "faults"]);
  assert.match(faults.out, /omit-sync-end +Leave out DMA_BUF_IOCTL_SYNC\(END\)/);
  const heaps = await dmabuf(["list", "heaps"]);
  assert.match(heaps.out, /system/);
  assert.match(heaps.out, /cma/);
  assert.match((await dmabuf(["list", "devices"])).out, /camera[\s\S]*gpu[\s\S]*display/);
  assert.match((await dmabuf(["list", "pipelines"])).out, /camera-gpu-display/);
  const bad = await dmabuf(["list", "profile"]);
  assert.equal(bad.code, 2);
  assert.match(bad.err, /^dmabuf list: unknown section 'profile' \(did you mean 'profiles'\?\)/);
});

test("schema prints the JSON Schema that is committed", async () => {
  const r = await dmabuf(["schema"]);
  assert.equal(r.code, 0);
  assert.equal(r.out, scenarioJsonSchemaText());
  const committed = readFileSync(join(root, "schema", "scenario.schema.json"), "utf8");
  assert.equal(JSON.stringify(JSON.parse(r.out)), JSON.stringify(JSON.parse(committed)));
});

test("fixtures: the incoherent one is incoherent in the ways the report shows", () => {
  const r = incoherentResult({ frames: 4 });
  assert.equal(r.verdict, "incoherent");
  assert.equal(r.frames.filter((f) => !f.ok).length, 3);
});

test("scenario names from the docs resolve from any directory; a typo gets a did-you-mean", async () => {
  const dir = tempDir();
  const named = await dmabuf(["run", "my-soc.yaml"], dir);
  assert.equal(named.code, 0, named.err);
  const bare = await dmabuf(["run", "camera-gpu-display"], dir);
  assert.equal(bare.code, 0, bare.err);
  const typo = await dmabuf(["run", "camera-gpu-dispaly"], dir);
  assert.equal(typo.code, 2);
  assert.match(
    typo.err,
    /no bundled scenario of that name \(did you mean 'camera-gpu-display'\?\)/,
  );
  const sweep = await dmabuf(["sweep", "lying-hnt.yaml"], dir);
  assert.equal(sweep.code, 2);
  assert.match(sweep.err, /did you mean 'lying-hint'\?/);
});
