import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { fileURLToPath } from "node:url";
import type { CliIo } from "../../src/cli/io.js";
import type { PipelineSpec } from "../../src/pipelines/types.js";
import type { SweepRow } from "../../src/report/sweep-types.js";
import {
  createProgress,
  progressMode,
  RUNNER_ENV,
  runnerUrl,
  runSweep,
  type SweepTask,
} from "../../src/sweep/sweep.js";
import { DEFAULT_RUNNER_URL, errorRow, runTask, sweepRow } from "../../src/sweep/worker.js";
import { runPipeline as fixture } from "./fixture-runner.js";

export const FIXTURE = new URL("./fixture-runner.js", import.meta.url).href;
const THREAD_FIXTURE = new URL("./thread-fixture-runner.js", import.meta.url).href;

function task(i: number, spec: PipelineSpec = {}): SweepTask {
  return {
    params: { i },
    spec: {
      profile: "cortex-a9",
      strategy: "streaming",
      bufferBytes: 65536 << (i % 4),
      frames: 2,
      ...spec,
    },
  };
}

function captureIo(): CliIo & { stdout: string; stderr: string } {
  const io = {
    stdout: "",
    stderr: "",
    isTTY: false,
    cwd: process.cwd(),
    out(t: string) {
      io.stdout += t;
    },
    err(t: string) {
      io.stderr += t;
    },
  };
  return io;
}

describe("sweep worker rows", () => {
  test("a result becomes a compact row: verdict, counts, cost per frame by category", () => {
    const result = fixture({
      profile: "cortex-a9",
      strategy: "streaming",
      bufferBytes: 65536,
      frames: 4,
    });
    const r = sweepRow({ size: 65536 }, result);
    assert.equal(r.verdict, "coherent");
    assert.equal(r.frames, 4);
    assert.equal(r.framesOk, 4);
    assert.equal(r.violations, 0);
    assert.equal(r.bufferBytes, 65536);
    assert.equal(r.profile, "cortex-a9");
    assert.equal(r.perFrame["cache-maintenance"], result.costs["cache-maintenance"].ns / 4);
    const sum = Object.values(r.perFrame).reduce((a, b) => a + b, 0);
    assert.equal(r.totalPerFrameNs, sum);
    assert.equal("trace" in r, false, "no trace in a row");
  });

  test("a worker's run records no call sites (a row shows none); the spec is otherwise as given", () => {
    let seen: PipelineSpec | undefined;
    runTask(
      (spec) => {
        seen = spec;
        return fixture(spec);
      },
      { index: 0, params: {}, spec: { name: "p", profile: "cortex-a9", bufferBytes: 65536 } },
    );
    assert.deepEqual(seen, {
      name: "p",
      profile: "cortex-a9",
      bufferBytes: 65536,
      recordCallSites: false,
    });
  });

  test("an exception becomes the row's error, with zero figures", () => {
    const r = runTask(fixture, {
      index: 0,
      params: { a: 1 },
      spec: { name: "throw", bufferBytes: 4096 },
    });
    assert.equal(r.error, "fixture: asked to throw");
    assert.equal(r.totalPerFrameNs, 0);
    assert.equal(r.bufferBytes, 4096);
    assert.deepEqual(r.params, { a: 1 });
    assert.equal(errorRow({}, {}, "text").error, "text");
  });

  test("the runner module: option, environment, default next to the sweep code", () => {
    assert.equal(runnerUrl("file:///x/run.js"), "file:///x/run.js");
    assert.equal(runnerUrl("/abs/run.js"), "file:///abs/run.js");
    assert.equal(runnerUrl(""), DEFAULT_RUNNER_URL);
    assert.ok(DEFAULT_RUNNER_URL.endsWith("/src/pipelines/run.js"));
    assert.equal(RUNNER_ENV, "DMABUF_SWEEP_RUNNER");
  });
});

describe("sweep in worker threads", () => {
  test("rows come back in grid order whatever order the workers finish in", async () => {
    // Early points sleep longest, so later points finish first on the other workers.
    const tasks = Array.from({ length: 8 }, (_, i) => task(i, { seed: (8 - i) * 8 }));
    const finished: number[] = [];
    const rows = await runSweep(tasks, {
      jobs: 3,
      runner: FIXTURE,
      onRow: (_r, index) => finished.push(index),
    });
    assert.deepEqual(
      rows.map((r) => r.params["i"]),
      [0, 1, 2, 3, 4, 5, 6, 7],
    );
    assert.notDeepEqual(finished, [0, 1, 2, 3, 4, 5, 6, 7], "they did finish out of order");
    // The sleep is not part of a row: the same points without it, on one worker.
    const quick = tasks.map((t) => ({ ...t, spec: { ...t.spec, seed: 0 } }));
    const serial = await runSweep(quick, { jobs: 1, runner: fileURLToPath(FIXTURE) });
    assert.deepEqual(serial, rows, "one worker or three: the same rows");
    for (const [i, r] of rows.entries()) assert.deepEqual(r, fixtureRow(tasks[i]!));
  });

  test("a schedule changes the dispatch order, not the result order", async () => {
    const tasks = Array.from({ length: 5 }, (_, i) => task(i));
    const finished: number[] = [];
    const rows = await runSweep(tasks, {
      jobs: 1,
      runner: FIXTURE,
      schedule: [4, 3, 2, 1, 0],
      onRow: (_r, index) => finished.push(index),
    });
    assert.deepEqual(finished, [4, 3, 2, 1, 0]);
    assert.deepEqual(
      rows.map((r) => r.params["i"]),
      [0, 1, 2, 3, 4],
    );
    await assert.rejects(
      runSweep(tasks, { runner: FIXTURE, schedule: [0, 0, 1, 2, 3] }),
      /permutation/,
    );
  });

  test("from both ends: one worker takes the schedule's front in order, the others its back", async () => {
    const tasks = Array.from({ length: 9 }, (_, i) => task(i, { seed: 30 }));
    const schedule = [8, 7, 6, 5, 4, 3, 2, 1, 0];
    const byThread = new Map<string, number[]>();
    const rows = await runSweep(tasks, {
      jobs: 2,
      runner: THREAD_FIXTURE,
      schedule,
      fromBothEnds: true,
      onRow: (r, index) => {
        const list = byThread.get(r.profile) ?? [];
        list.push(index);
        byThread.set(r.profile, list);
      },
    });
    assert.deepEqual(
      rows.map((r) => r.params["i"]),
      [0, 1, 2, 3, 4, 5, 6, 7, 8],
    );
    // Each worker took a run of the schedule from its end, in order; together, all of it.
    // (A worker that started very late on a busy machine may have found nothing left.)
    const lists = [...byThread.values()];
    const front = lists.find((l) => l[0] === 8) ?? [];
    const back = lists.find((l) => l[0] === 0) ?? [];
    assert.equal(lists.length, (front.length > 0 ? 1 : 0) + (back.length > 0 ? 1 : 0));
    assert.deepEqual(front, schedule.slice(0, front.length));
    assert.deepEqual(back, schedule.slice(front.length).reverse());
    // One worker: all from the front.
    const finished: number[] = [];
    await runSweep(tasks.slice(0, 4), {
      jobs: 1,
      runner: THREAD_FIXTURE,
      schedule: [3, 1, 2, 0],
      fromBothEnds: true,
      onRow: (_r, index) => finished.push(index),
    });
    assert.deepEqual(finished, [3, 1, 2, 0]);
  });

  test("a point that throws or kills its worker is recorded; the others run", async () => {
    const tasks = [
      task(0),
      task(1, { name: "throw" }),
      task(2),
      task(3, { name: "exit" }),
      task(4),
    ];
    const rows = await runSweep(tasks, { jobs: 2, runner: FIXTURE });
    assert.equal(rows.length, 5);
    assert.equal(rows[1]!.error, "fixture: asked to throw");
    assert.match(rows[3]!.error ?? "", /worker exited with code 3/);
    for (const i of [0, 2, 4]) {
      assert.equal(rows[i]!.error, undefined);
      assert.equal(rows[i]!.verdict, "coherent");
    }
  });

  test("a runner module that cannot be loaded fails every row, not the sweep", async () => {
    const rows = await runSweep([task(0), task(1)], { runner: "/nonexistent/run.js" });
    for (const r of rows)
      assert.match(r.error ?? "", /cannot load runner module file:\/\/\/nonexistent\/run\.js/);
    const noExport = new URL("../../src/sweep/csv.js", import.meta.url).href;
    const [r] = await runSweep([task(0)], { runner: noExport });
    assert.match(r!.error ?? "", /does not export runPipeline/);
  });

  test("the runner comes from the environment when no option is given", async () => {
    const saved = process.env[RUNNER_ENV];
    process.env[RUNNER_ENV] = FIXTURE;
    try {
      const rows = await runSweep([task(0)]);
      assert.equal(rows[0]!.error, undefined);
    } finally {
      if (saved === undefined) delete process.env[RUNNER_ENV];
      else process.env[RUNNER_ENV] = saved;
    }
  });

  test("no points: no workers, no rows", async () => {
    assert.deepEqual(await runSweep([], { runner: FIXTURE }), []);
  });
});

function fixtureRow(t: SweepTask): SweepRow {
  return sweepRow(t.params, fixture(t.spec));
}

describe("sweep progress", () => {
  const failed = errorRow({}, {}, "x");
  const { error: _unused, ...good } = { ...failed, verdict: "coherent" as const };

  test("mode: nothing when quiet, a bar on a terminal, lines otherwise", () => {
    assert.equal(progressMode(true, true), "none");
    assert.equal(progressMode(false, true), "bar");
    assert.equal(progressMode(false, false), "lines");
  });

  test("lines: one per tenth of the way and at the end, counting failed runs apart from incoherent ones", () => {
    const io = captureIo();
    const p = createProgress(io, 20, "lines", "sweep");
    for (let i = 0; i < 20; i++) p.tick(i === 3 ? failed : good);
    p.stop();
    const lines = io.stderr.trimEnd().split("\n");
    assert.equal(lines.length, 10);
    assert.equal(lines[0], "sweep: 2/20 runs (10%), 0 not coherent");
    assert.equal(lines.at(-1), "sweep: 20/20 runs (100%), 0 not coherent, 1 failed");
    assert.equal(io.stdout, "");
  });

  test("lines: few points, a line each", () => {
    const io = captureIo();
    const p = createProgress(io, 3, "lines");
    for (let i = 0; i < 3; i++) p.tick(good);
    assert.equal(io.stderr.trimEnd().split("\n").length, 3);
  });

  test("none writes nothing; the bar draws on io.err and clears itself", () => {
    const io = captureIo();
    const q = createProgress(io, 5, "none");
    q.tick(good);
    q.stop();
    assert.equal(io.stderr, "");
    const b = createProgress(io, 2, "bar", "sweep");
    b.tick(good);
    b.tick(good);
    b.stop();
    assert.match(io.stderr, /sweep \[/);
    assert.equal(io.stdout, "");
  });
});
