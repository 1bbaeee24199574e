import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import {
  defaultJobCommand,
  MAIN_JOB_QUICK_SIZES,
  MAIN_JOB_SIZES,
  mainJobSchedule,
  mainJobTasks,
} from "../../src/cli/default-job.js";
import type { CliIo } from "../../src/cli/io.js";
import { main } from "../../src/cli/main.js";
import { schemaField, sweepCommand } from "../../src/cli/sweep.js";
import { COST_CATEGORIES, type CostCategory } from "../../src/machine/cost.js";
import { wholeCacheCrossover } from "../../src/report/sharing-cost.js";
import type { SweepRow } from "../../src/report/sweep-types.js";
import { RUNNER_ENV } from "../../src/sweep/sweep.js";

/** A row whose sharing cost is `ns` of cache maintenance; undefined = a failed run. */
function sharingRow(strategy: string, bytes: number, ns: number | undefined): SweepRow {
  const perFrame = {} as Record<CostCategory, number>;
  for (const c of COST_CATEGORIES) perFrame[c] = 0;
  perFrame["cache-maintenance"] = ns ?? 0;
  perFrame.dma = 1e9;
  return {
    params: { strategy, bytes },
    verdict: ns === undefined ? "incoherent" : "coherent",
    violations: 0,
    framesOk: 1,
    frames: 1,
    bufferBytes: bytes,
    profile: "p",
    strategy,
    perFrame,
    sharingPerFrameNs: ns ?? 0,
    totalPerFrameNs: (ns ?? 0) + 1e9,
    ...(ns === undefined ? { error: "boom" } : {}),
  };
}

// Until the pipelines' runner is final these tests run on the fixture runner.
process.env[RUNNER_ENV] = new URL("./fixture-runner.js", import.meta.url).href;

const dir = mkdtempSync(join(tmpdir(), "dmabuf-sweep-"));
after(() => rmSync(dir, { recursive: true, force: true }));

function captureIo(): CliIo & { stdout: string; stderr: string } {
  const io = {
    stdout: "",
    stderr: "",
    isTTY: false,
    cwd: dir,
    out(t: string) {
      io.stdout += t;
    },
    err(t: string) {
      io.stderr += t;
    },
  };
  return io;
}

async function withIncoherent<T>(strategy: string, f: () => Promise<T>): Promise<T> {
  process.env["DMABUF_FIXTURE_INCOHERENT"] = strategy;
  try {
    return await f();
  } finally {
    delete process.env["DMABUF_FIXTURE_INCOHERENT"];
  }
}

const SCENARIO = `# a test scenario
name: sweep-test
description: camera to GPU to display, swept
machine:
  profile: cortex-a9
buffers:
  bufferBytes: 64K
pipeline:
  kind: camera-gpu-display
  frames: 2
`;
writeFileSync(join(dir, "s.yaml"), SCENARIO);
writeFileSync(join(dir, "throws.yaml"), SCENARIO.replace("name: sweep-test", "name: throw"));

describe("main job (npx dmabuf)", () => {
  test("the grid: two machines x four strategies x 64 KiB..32 MiB, CPU not touching buffers", () => {
    assert.equal(MAIN_JOB_SIZES[0], 64 * 1024);
    assert.equal(MAIN_JOB_SIZES.at(-1), 32 * 1024 * 1024);
    const tasks = mainJobTasks();
    assert.equal(tasks.length, 2 * 4 * 10);
    for (const t of tasks) {
      assert.equal(t.spec.pipeline, "camera-gpu-display");
      assert.equal(t.spec.cpuReads, false);
      assert.equal(t.spec.cpuWrites, false);
    }
    const x86 = tasks.filter((t) => t.spec.profile === "x86-64-64m");
    assert.equal(x86.length, 40);
    for (const t of x86) {
      assert.deepEqual(t.spec.devices, {
        camera: { coherent: false },
        gpu: { coherent: false },
        display: { coherent: false },
      });
    }
  });

  test("the schedule: every run once, the smallest size's runs first, then biggest first", () => {
    for (const sizes of [MAIN_JOB_SIZES, MAIN_JOB_QUICK_SIZES]) {
      const tasks = mainJobTasks(sizes);
      const order = mainJobSchedule(tasks);
      assert.deepEqual(
        [...order].sort((a, b) => a - b),
        tasks.map((_, i) => i),
      );
      const size = (i: number): number => tasks[i]!.spec.bufferBytes!;
      const warm = tasks.length / sizes.length;
      assert.ok(order.slice(0, warm).every((i) => size(i) === sizes[0]));
      const rest = order.slice(warm).map(size);
      assert.equal(rest[0], sizes.at(-1));
      for (let k = 1; k < rest.length; k++) assert.ok(rest[k - 1]! >= rest[k]!);
      assert.ok(!rest.includes(sizes[0]!));
    }
    assert.deepEqual(mainJobSchedule([]), []);
  });

  test("crossover: the size from which whole-cache stays cheaper", () => {
    const sizes = [1, 2, 4, 8];
    const rows = (line: (number | undefined)[], whole: number[]): SweepRow[] =>
      sizes.flatMap((b, i) => [
        sharingRow("streaming", b, line[i]),
        sharingRow("whole-cache", b, whole[i]),
      ]);
    const at = (line: (number | undefined)[], whole: number[]) =>
      wholeCacheCrossover(rows(line, whole), "p")?.bytes;
    assert.equal(at([1, 5, 9, 20], [3, 4, 5, 6]), 2);
    assert.equal(at([1, 5, 4, 20], [3, 4, 5, 6]), 8, "must stay cheaper");
    assert.equal(at([1, 2, 3, 4], [5, 6, 7, 8]), undefined);
    assert.equal(at([9, 9, 9, undefined], [1, 1, 1, 1]), undefined, "failed run");
  });

  test("--quick: tables, crossover per machine, chart, all coherent, HTML written", async () => {
    const io = captureIo();
    const code = await defaultJobCommand(["--quick", "--quiet", "--html", "r.html"], io);
    assert.equal(code, 0, io.stderr);
    const out = io.stdout;
    assert.match(out, /cortex-a9: 32-bit ARM, 512 KiB PL310 L2/);
    assert.match(out, /x86-64-64m: 64 MiB L3, camera\/GPU\/display made non-coherent/);
    assert.match(out, /size\s+coherent\s+per-line\s+whole-cache\s+cache-hints/);
    // The fixture's figures: per-line passes one whole-cache pass at 512 KiB on the A9,
    // never below 64 MiB on the x86.
    assert.match(out, /whole-cache flushing cheaper than per-line: from 512 KiB up/);
    assert.match(
      out,
      /whole-cache flushing cheaper than per-line: never in range \(64 KiB–32 MiB\)/,
    );
    assert.match(out, /512 KiB .*<- whole-cache cheaper from here on/);
    assert.match(out, /µs per frame \(log scale\)/);
    assert.match(out, /non-snooping engines/);
    assert.match(out, /all 32 runs coherent/);
    assert.equal(io.stderr, "", "--quiet: nothing on stderr");
    const html = readFileSync(join(dir, "out", "r.html"), "utf8");
    assert.match(html, /<html/i);
    assert.match(
      out,
      new RegExp(`HTML report: ${join(dir, "out", "r.html").replaceAll(".", "\\.")}`),
    );
  });

  test("an incoherent run makes it exit 1 and is listed", async () => {
    const io = captureIo();
    const code = await withIncoherent("cache-hints", () =>
      defaultJobCommand(["--quick", "--html", "bad.html", "--jobs", "2"], io),
    );
    assert.equal(code, 1);
    assert.match(io.stdout, /8 of 32 runs NOT coherent or failed/);
    assert.match(io.stdout, /cortex-a9 cache-hints 64 KiB: 1 violation, 2\/3 frames as expected/);
    assert.match(io.stdout, /0!/, "marked in the table");
    assert.match(io.stderr, /dmabuf: 32\/32 runs \(100%\), 8 not coherent/, "progress lines");
  });

  test("failed runs make it exit 1, grouped by message", async () => {
    const io = captureIo();
    process.env["DMABUF_FIXTURE_THROW"] = "whole-cache";
    let code: number;
    try {
      code = await defaultJobCommand(["--quick", "--quiet", "--html", "failed.html"], io);
    } finally {
      delete process.env["DMABUF_FIXTURE_THROW"];
    }
    assert.equal(code, 1);
    assert.match(io.stdout, /8 of 32 runs NOT coherent or failed/);
    assert.match(
      io.stdout,
      /failed \(8 runs: cortex-a9 whole-cache 64 KiB, cortex-a9 whole-cache 512 KiB, \.\.\.\): fixture: asked to throw/,
    );
    assert.match(io.stdout, /whole-cache flushing cheaper than per-line: never in range/);
    assert.match(io.stdout, /\s+error\s+/, "marked in the table");
  });

  test("--help, bad options", async () => {
    const io = captureIo();
    assert.equal(await defaultJobCommand(["--help"], io), 0);
    assert.match(io.stdout, /Usage:\n {2}dmabuf \[--quick\]/);
    const bad = captureIo();
    assert.equal(await defaultJobCommand(["--frobnicate"], bad), 2);
    assert.match(bad.stderr, /frobnicate/);
    const jobs = captureIo();
    assert.equal(await defaultJobCommand(["--jobs", "0"], jobs), 2);
    assert.match(jobs.stderr, /--jobs must be a whole number from 1 to 256, not '0'/);
  });
});

describe("dmabuf sweep", () => {
  test("runs the grid, prints a row per point in grid order, writes CSV, JSON and HTML", async () => {
    const io = captureIo();
    const code = await sweepCommand(
      [
        "s.yaml",
        "--vary",
        "pipeline.strategy=streaming,whole-cache",
        "--vary",
        "buffers.bufferBytes=64KiB..256KiB*2",
        "--csv",
        "out.csv",
        "--json",
        "out.json",
        "--html",
        "out.html",
        "--quiet",
      ],
      io,
    );
    assert.equal(code, 0, io.stderr);
    const lines = io.stdout.split("\n");
    const header = lines.findIndex((l) => l.startsWith("#  pipeline.strategy"));
    assert.ok(header >= 0, io.stdout);
    const body = lines.slice(header + 1, header + 7);
    assert.deepEqual(
      body.map((l) => l.split(/\s+/).slice(0, 3)),
      [
        ["0", "streaming", "65536"],
        ["1", "streaming", "131072"],
        ["2", "streaming", "262144"],
        ["3", "whole-cache", "65536"],
        ["4", "whole-cache", "131072"],
        ["5", "whole-cache", "262144"],
      ],
    );
    assert.match(io.stdout, /Verdict: 6 coherent\n/);
    assert.match(
      io.stdout,
      new RegExp(`CSV: ${join(dir, "out", "out.csv").replaceAll(".", "\\.")}`),
    );
    const csv = readFileSync(join(dir, "out", "out.csv"), "utf8").split("\r\n");
    assert.equal(
      csv[0],
      "pipeline.strategy,buffers.bufferBytes,verdict,violations,frames_ok,frames,cpu-access_ns,cache-maintenance_ns,dma_ns,bounce_ns,iommu_ns,wait_ns,sharing_ns,total_ns,error",
    );
    assert.equal(csv.length, 8, "header, six rows, and the empty string after the last CRLF");
    assert.match(csv[1]!, /^streaming,65536,coherent,0,2,2,/);
    const json = JSON.parse(readFileSync(join(dir, "out", "out.json"), "utf8"));
    assert.deepEqual(json.keys, ["pipeline.strategy", "buffers.bufferBytes"]);
    assert.equal(json.title, "sweep: sweep-test");
    assert.equal(json.description, "camera to GPU to display, swept");
    assert.equal(json.rows[5].profile, "cortex-a9");
    assert.equal(json.rows[5].strategy, "whole-cache");
    assert.equal(json.rows[5].bufferBytes, 262144);
    assert.match(readFileSync(join(dir, "out", "out.html"), "utf8"), /<html/i);
  });

  test("same input, same output, whatever the number of workers", async () => {
    const args = [
      "s.yaml",
      "--vary",
      "machine.profile=cortex-a9,arm64,riscv64",
      "--vary",
      "buffers.bufferBytes=4K,1M",
      "--quiet",
    ];
    const a = captureIo();
    const b = captureIo();
    assert.equal(await sweepCommand([...args, "--jobs", "1", "--json", "a.json"], a), 0);
    assert.equal(await sweepCommand([...args, "--jobs", "3", "--json", "b.json"], b), 0);
    assert.equal(
      readFileSync(join(dir, "out", "a.json"), "utf8"),
      readFileSync(join(dir, "out", "b.json"), "utf8"),
    );
  });

  test("exit 1 for an unexpected incoherent run; a fault's incoherence is expected", async () => {
    const io = captureIo();
    const code = await withIncoherent("whole-cache", () =>
      sweepCommand(["s.yaml", "--vary", "pipeline.strategy=streaming,whole-cache", "--quiet"], io),
    );
    assert.equal(code, 1);
    assert.match(io.stdout, /whole-cache\s+INCOHERENT/);
    assert.match(io.stdout, /Verdict: 1 coherent, 1 INCOHERENT/);

    const faults = captureIo();
    const ok = await sweepCommand(
      [
        "s.yaml",
        "--vary",
        "pipeline.kind=camera-cpu-display",
        "--vary",
        "pipeline.fault=omit-sync-end,lying-no-cache-invalidate",
        "--quiet",
      ],
      faults,
    );
    assert.equal(ok, 0, faults.stdout);
    assert.match(faults.stdout, /incoherent \(expected\)/);
    assert.match(faults.stdout, /2 incoherent as their fault expects/);
  });

  test("a run that fails is recorded and makes it exit 1", async () => {
    const io = captureIo();
    const code = await sweepCommand(
      ["throws.yaml", "--vary", "pipeline.frames=1,2", "--quiet"],
      io,
    );
    assert.equal(code, 1);
    assert.match(io.stdout, /FAILED/);
    assert.match(io.stdout, /#0: fixture: asked to throw/);
    assert.match(io.stdout, /2 failed/);
  });

  test("the grid is checked whole before anything runs: geometry the display cannot show", async () => {
    writeFileSync(
      join(dir, "wide.yaml"),
      "name: wide\nbuffers:\n  width: 640\n  height: 480\npipeline:\n  kind: camera-gpu-display\n",
    );
    const io = captureIo();
    const code = await sweepCommand(
      ["wide.yaml", "--vary", "buffers.width=1024", "--vary", "buffers.bufferBytes=100000,32MiB"],
      io,
    );
    assert.equal(code, 2);
    assert.match(io.stderr, /2 of 2 grid points cannot run, nothing was run/);
    assert.match(io.stderr, /\(100000\) is not a whole number of 1024-pixel XR24 lines/);
    assert.match(
      io.stderr,
      /32 MiB at buffers.width 1024 makes a frame 8192 lines tall; the display scans out at most 4096/,
    );
    assert.doesNotMatch(io.stderr, /runs \(/, "nothing ran");

    // Varying the size alone: the frame is made from each size, and the output says so.
    const fit = captureIo();
    const ok = await sweepCommand(
      ["wide.yaml", "--quiet", "--vary", "buffers.bufferBytes=64KiB,32MiB"],
      fit,
    );
    assert.equal(ok, 0, fit.stderr);
    assert.match(
      fit.stdout,
      /Note: buffers.bufferBytes is varied.*width 640, height 480 are set aside/,
    );
    assert.match(fit.stdout, /\b65536\b[^\n]*coherent/);
    assert.match(fit.stdout, /\b33554432\b[^\n]*coherent/);
  });

  test("--shard K/N on N machines + merge gives the single-machine result byte for byte", async () => {
    const grid = [
      "s.yaml",
      "--quiet",
      "--vary",
      "pipeline.strategy=streaming,whole-cache,cache-hints",
      "--vary",
      "buffers.bufferBytes=64KiB..1MiB*2",
    ];
    const one = captureIo();
    const single = await sweepCommand(
      [...grid, "--csv", "one.csv", "--json", "one.json", "--html", "one.html"],
      one,
    );
    assert.equal(single, 0, one.stderr);
    const shards: string[] = [];
    for (const k of [3, 1, 2]) {
      const io = captureIo();
      const code = await sweepCommand([...grid, "--shard", `${k}/3`, "--jobs", String(k)], io);
      assert.equal(code, 0, io.stderr);
      assert.match(io.stdout, new RegExp(`shard ${k}/3: 5 of 15 runs`));
      shards.push(join(dir, "out", `shard-${k}-of-3.json`));
    }
    const merged = captureIo();
    const code = await main(
      ["merge", ...shards, "--csv", "m.csv", "--json", "m.json", "--html", "m.html"],
      merged,
    );
    assert.equal(code, single);
    for (const ext of ["csv", "json", "html"]) {
      assert.equal(
        readFileSync(join(dir, "out", `m.${ext}`), "utf8"),
        readFileSync(join(dir, "out", `one.${ext}`), "utf8"),
        `${ext} byte for byte`,
      );
    }
    const withoutPaths = (t: string) => t.replace(/^(CSV|JSON|HTML report): .*$/gm, "$1");
    assert.equal(withoutPaths(merged.stdout), withoutPaths(one.stdout));

    // Missing, duplicate and foreign shards are refused by name.
    const missing = captureIo();
    assert.equal(await main(["merge", shards[0]!, shards[1]!], missing), 2);
    assert.match(missing.stderr, /shard 2\/3 missing/);
    const twice = captureIo();
    assert.equal(await main(["merge", shards[0]!, shards[0]!, shards[1]!], twice), 2);
    assert.match(twice.stderr, /both shard 3\/3/);
    const other = captureIo();
    await sweepCommand(["s.yaml", "--quiet", "--shard", "2/3", "--json", "other.json"], other);
    const foreign = captureIo();
    assert.equal(
      await main(["merge", shards[0]!, join(dir, "out", "other.json"), shards[1]!], foreign),
      2,
    );
    assert.match(foreign.stderr, /shard of another sweep/);
    const bad = captureIo();
    assert.equal(await sweepCommand([...grid, "--shard", "4/3"], bad), 2);
    assert.match(bad.stderr, /K must be from 1 to N \(3\)/);
  });

  test("output paths: checked before anything runs; bare names go into out/", async () => {
    const bad = captureIo();
    const code = await sweepCommand(
      ["s.yaml", "--vary", "pipeline.frames=1,2", "--html", "/proc/version/x.html"],
      bad,
    );
    assert.equal(code, 2);
    assert.match(bad.stderr, /cannot write the HTML report to \/proc\/version\/x\.html/);
    assert.doesNotMatch(bad.stderr, /runs \(/, "nothing ran");
    assert.equal(bad.stdout, "");

    const io = captureIo();
    assert.equal(await sweepCommand(["s.yaml", "--quiet", "--csv", "s.csv"], io), 0);
    assert.match(readFileSync(join(dir, "out", "s.csv"), "utf8"), /^verdict,/);
    assert.match(io.stdout, new RegExp(`CSV: ${join(dir, "out", "s.csv").replaceAll(".", "\\.")}`));
  });

  test("a sweep with no --vary runs the scenario once; progress lines on stderr", async () => {
    const io = captureIo();
    assert.equal(await sweepCommand(["s.yaml"], io), 0);
    assert.match(io.stdout, /1 run\n/);
    assert.match(io.stderr, /sweep: 1\/1 runs \(100%\), 0 not coherent/);
  });

  test("the schema types values and names fields", () => {
    assert.deepEqual(schemaField("buffers.bufferBytes"), { kind: "number" });
    assert.deepEqual(schemaField("pipeline.cpu.reads"), { kind: "boolean" });
    assert.equal(schemaField("machine.profile").kind, "string");
    assert.ok(schemaField("machine.profile").values?.includes("cortex-a9"));
    assert.deepEqual(schemaField("machine.cache.levels.1.sizeBytes"), { kind: "number" });
    assert.deepEqual(schemaField("name"), { kind: "string" });
  });

  const BAD: [string[], RegExp][] = [
    [[], /which scenario\?/],
    [["a.yaml", "b.yaml"], /one scenario at a time/],
    [["missing.yaml"], /missing\.yaml: cannot read the scenario: no such file/],
    [
      ["s.yaml", "--vary", "pipeline.stratgy=streaming"],
      /--vary pipeline\.stratgy: no field 'stratgy' in pipeline \(did you mean pipeline\.strategy\?\)/,
    ],
    [
      ["s.yaml", "--vary", "pipeline.strategy=streming"],
      /--vary pipeline\.strategy: 'streming': expected one of coherent, streaming, .*\(did you mean streaming\?\)/,
    ],
    [
      ["s.yaml", "--vary", "buffers.bufferBytes=64K,big"],
      /--vary buffers\.bufferBytes: 'big': expected a number or a size/,
    ],
    [
      ["s.yaml", "--vary", "pipeline.cpu.reads=maybe"],
      /--vary pipeline\.cpu\.reads: 'maybe': expected true or false/,
    ],
    [["s.yaml", "--vary", "machine=arm64"], /--vary machine: is a table of fields/],
    [["s.yaml", "--vary", "machine.profile.x=1"], /'machine\.profile' is a single value/],
    [
      ["s.yaml", "--vary", "pipeline.frames=1,0"],
      /--vary pipeline\.frames=0: pipeline\.frames: expected a number at least 1/,
    ],
    [
      ["s.yaml", "--vary", "pipeline.frames=1", "--vary", "pipeline.frames=2"],
      /the key is varied twice/,
    ],
    [["s.yaml", "--vary", "pipeline.frames"], /expected KEY=VALUE/],
    [["s.yaml", "--jobs", "x"], /--jobs must be a whole number/],
    [["s.yaml", "--nope"], /nope/],
  ];
  for (const [args, message] of BAD) {
    test(`bad input, exit 2: ${args.join(" ") || "(nothing)"}`, async () => {
      const io = captureIo();
      assert.equal(await sweepCommand(args, io), 2);
      assert.match(io.stderr, message);
      assert.equal(io.stdout, "");
    });
  }

  test("an output that cannot be written: exit 2, naming the file", async () => {
    const io = captureIo();
    assert.equal(await sweepCommand(["s.yaml", "--quiet", "--csv", "/proc/version/x.csv"], io), 2);
    assert.match(io.stderr, /cannot write the CSV to \/proc\/version\/x\.csv/);
  });

  test("--help", async () => {
    const io = captureIo();
    assert.equal(await sweepCommand(["--help"], io), 0);
    assert.match(io.stdout, /dmabuf sweep SCENARIO --vary KEY=V1,V2/);
  });
});
