/**
 * Runs a sweep: every grid point's PipelineSpec on a pool of worker threads (one per
 * core by default, os.availableParallelism()), each point on a fresh simulated kernel.
 * Rows come back in grid order whatever order the workers finish in, so the output of a
 * sweep depends only on its input. Progress goes to stderr: a bar (cli-progress) on a
 * terminal, a line every tenth of the way otherwise, nothing when quiet.
 */

import { availableParallelism } from "node:os";
import { isAbsolute, resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { Worker } from "node:worker_threads";
import cliProgress from "cli-progress";
import type { CliIo } from "../cli/io.js";
import type { PipelineSpec } from "../pipelines/types.js";
import type { SweepRow } from "../report/sweep-types.js";
import type { GridValue } from "./grid.js";
import {
  DEFAULT_RUNNER_URL,
  errorRow,
  type WorkerConfig,
  type WorkerReply,
  type WorkerTask,
} from "./worker.js";

/** One grid point: the varied values (for the row) and the spec to run. */
export interface SweepTask {
  readonly params: Readonly<Record<string, GridValue>>;
  readonly spec: PipelineSpec;
}

/** Environment variable naming a runner module to use instead of src/pipelines/run.js. */
export const RUNNER_ENV = "DMABUF_SWEEP_RUNNER";

export interface SweepOptions {
  /** Worker threads; default os.availableParallelism(), never more than there are points. */
  readonly jobs?: number;
  /**
   * Module exporting `runPipeline(spec)` (a path, relative to the current directory, or
   * a file: URL). Default: $DMABUF_SWEEP_RUNNER, else the pipelines' runner.
   */
  readonly runner?: string;
  /**
   * The order points are handed to workers in (a permutation of the task indices), e.g.
   * the slowest first; rows are returned in task order whatever this is. Default: task order.
   */
  readonly schedule?: readonly number[];
  /**
   * The first worker takes points from the front of the schedule, every other worker
   * from its back, until they meet. Host memory is faulted in per thread (on some
   * machines a fresh 32 MiB costs more than running a small point), so with the biggest
   * points first only one worker's memory grows to the biggest point's; the others'
   * grow only to what the smaller points they take need. Default false: all from the front.
   */
  readonly fromBothEnds?: boolean;
  /** Called once per finished point, in completion order. */
  readonly onRow?: (row: SweepRow, index: number, done: number, total: number) => void;
}

/** The worker count a sweep uses by default. */
export function defaultJobs(): number {
  return Math.max(1, availableParallelism());
}

/** Parses `--jobs N`: a whole number from 1 to 256. */
export function parseJobs(text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  const n = Number(text);
  if (!/^\d+$/.test(text.trim()) || !Number.isInteger(n) || n < 1 || n > 256) {
    throw new RangeError(`--jobs must be a whole number from 1 to 256, not '${text}'`);
  }
  return n;
}

/** The runner module's URL from an option, the environment or the default. */
export function runnerUrl(runner: string | undefined = process.env[RUNNER_ENV]): string {
  if (runner === undefined || runner === "") return DEFAULT_RUNNER_URL;
  if (runner.startsWith("file:")) return runner;
  return pathToFileURL(isAbsolute(runner) ? runner : resolve(runner)).href;
}

const WORKER_URL = new URL("./worker.js", import.meta.url);

/**
 * Runs every task and resolves with one row per task, in task order. A run that throws,
 * or a worker that dies, gives that point a row with `error` set; the others go on.
 */
export function runSweep(
  tasks: readonly SweepTask[],
  options: SweepOptions = {},
): Promise<SweepRow[]> {
  const total = tasks.length;
  const rows: (SweepRow | undefined)[] = new Array(total);
  if (total === 0) return Promise.resolve([]);
  const jobs = Math.max(1, Math.min(options.jobs ?? defaultJobs(), total));
  const config: WorkerConfig = { runner: runnerUrl(options.runner) };
  const order = options.schedule ?? tasks.map((_, i) => i);
  if (
    order.length !== total ||
    new Set(order).size !== total ||
    order.some((i) => !(i >= 0 && i < total))
  ) {
    return Promise.reject(
      new RangeError("sweep: schedule must be a permutation of the task indices"),
    );
  }
  // Points not yet handed out are order[front..back].
  let front = 0;
  let back = total - 1;
  let done = 0;

  return new Promise<SweepRow[]>((resolvePromise, rejectPromise) => {
    const live = new Set<Worker>();
    let settled = false;

    const finish = (index: number, row: SweepRow): void => {
      if (rows[index] !== undefined) return;
      rows[index] = row;
      done++;
      try {
        options.onRow?.(row, index, done, total);
      } catch (e) {
        fail(e);
        return;
      }
      if (done === total) {
        settled = true;
        for (const w of live) void w.terminate();
        resolvePromise(rows as SweepRow[]);
      }
    };

    const fail = (e: unknown): void => {
      if (settled) return;
      settled = true;
      for (const w of live) void w.terminate();
      rejectPromise(e);
    };

    const start = (fromBack: boolean): void => {
      const worker = new Worker(WORKER_URL, { workerData: config });
      live.add(worker);
      let current: number | undefined;
      const feed = (): void => {
        if (front > back) {
          current = undefined;
          live.delete(worker);
          void worker.terminate();
          return;
        }
        current = fromBack ? order[back--]! : order[front++]!;
        const t = tasks[current]!;
        const task: WorkerTask = { index: current, params: t.params, spec: t.spec };
        worker.postMessage(task);
      };
      worker.on("message", (reply: WorkerReply) => {
        finish(reply.index, reply.row);
        if (!settled) feed();
      });
      // A worker that dies (out of memory, process.exit in a runner) costs its current
      // point only: record why and carry on with a fresh worker.
      const lost = (why: unknown): void => {
        if (!live.has(worker)) return;
        live.delete(worker);
        const index = current;
        current = undefined;
        if (index !== undefined && !settled) {
          finish(index, errorRow(tasks[index]!.params, tasks[index]!.spec, why));
          if (!settled && front <= back) start(fromBack);
        }
      };
      worker.on("error", (e) => lost(e));
      worker.on("exit", (code) => lost(new Error(`sweep worker exited with code ${code}`)));
      feed();
    };

    for (let i = 0; i < jobs; i++) start(options.fromBothEnds === true && i > 0);
  });
}

/** How progress is shown. */
export type ProgressMode = "bar" | "lines" | "none";

/** The mode for a command: none when quiet, a bar when stderr is a terminal, else lines. */
export function progressMode(
  quiet: boolean,
  stderrIsTTY = process.stderr.isTTY === true,
): ProgressMode {
  if (quiet) return "none";
  return stderrIsTTY ? "bar" : "lines";
}

/** Shows a sweep's progress; `tick` once per finished point, `stop` at the end. */
export interface SweepProgress {
  tick(row: SweepRow): void;
  stop(): void;
}

/**
 * Progress on `io.err`: a cli-progress bar (mode "bar"), a plain line at every tenth of
 * the points and at the end (mode "lines"; the same lines every time), or nothing.
 */
export function createProgress(
  io: CliIo,
  total: number,
  mode: ProgressMode,
  label = "sweep",
): SweepProgress {
  let done = 0;
  let incoherent = 0;
  let failed = 0;
  const count = (row: SweepRow): void => {
    done++;
    if (row.error !== undefined) failed++;
    else if (row.verdict !== "coherent") incoherent++;
  };
  // Failed runs did not finish: they are counted apart from the incoherent ones.
  const failedText = (): string => (failed > 0 ? `, ${failed} failed` : "");
  if (mode === "none" || total === 0) {
    return { tick: () => {}, stop: () => {} };
  }
  if (mode === "lines") {
    let lastTenth = 0;
    return {
      tick(row) {
        count(row);
        const tenth = Math.floor((done * 10) / total);
        if (tenth > lastTenth || done === total) {
          lastTenth = tenth;
          const pct = Math.floor((done * 100) / total);
          io.err(
            `${label}: ${done}/${total} runs (${pct}%), ${incoherent} not coherent${failedText()}\n`,
          );
        }
      },
      stop() {},
    };
  }
  // cli-progress writes to a stream; this one is io.err with the terminal's width.
  const stream = {
    isTTY: true,
    get columns(): number {
      return process.stderr.columns ?? 80;
    },
    write(text: string): boolean {
      io.err(text);
      return true;
    },
  };
  const bar = new cliProgress.SingleBar(
    {
      stream: stream as unknown as NodeJS.WritableStream,
      format: `${label} [{bar}] {value}/{total} runs | {incoherent} not coherent{failed} | eta {eta_formatted}`,
      hideCursor: true,
      clearOnComplete: true,
      etaBuffer: 16,
    },
    cliProgress.Presets.shades_classic,
  );
  bar.start(total, 0, { incoherent: 0, failed: "" });
  return {
    tick(row) {
      count(row);
      bar.update(done, { incoherent, failed: failedText() });
    },
    stop() {
      bar.stop();
    },
  };
}
