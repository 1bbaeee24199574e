/**
 * The main job (`npx dmabuf` with no arguments): the question of the 2011 dma-buf thread
 * (Linaro-mm-sig, "[RFC v2 1/2] dma-buf: Introduce dma buffer sharing mechanism"), run.
 *
 * A camera -> GPU -> display pipeline whose buffers the CPU never touches, shared four
 * ways: consistent memory, streaming with per-line maintenance, streaming with the whole
 * cache cleaned/flushed by set/way for every range, and streaming with the V4L2
 * NO_CACHE_CLEAN/NO_CACHE_INVALIDATE hints. On the thread's two machines: a Cortex-A9
 * with a 512 KiB PL310 L2 and an x86-64 with a 64 MiB cache, over buffer sizes from
 * 64 KiB to 32 MiB. The answer: the cost per frame of each, the size from which flushing
 * the whole cache beats going line by line (Arnd's sidenote: "whether it makes sense to
 * flush individual cache lines or the entire cache is a decision best left to the
 * architectures"), and that every run stayed coherent.
 */

import { writeFile } from "node:fs/promises";
import { parseArgs } from "node:util";
import { setFlagsFromString } from "node:v8";
import { PROFILES } from "../machine/profiles.js";
import { MAPPING_STRATEGIES, type MappingStrategy, type PipelineSpec } from "../pipelines/types.js";
import { cheapestStrategy, rowSharingNs, wholeCacheCrossover } from "../report/sharing-cost.js";
import type { SweepReport, SweepRow } from "../report/sweep-types.js";
import { formatBytes } from "../sweep/format.js";
import {
  createProgress,
  parseJobs,
  progressMode,
  runSweep,
  type SweepTask,
} from "../sweep/sweep.js";
import { type CliIo, EXIT_BAD_INPUT, EXIT_OK, EXIT_VIOLATIONS } from "./io.js";
import { OutputPathError, outputPath, prepareOutput } from "./output.js";

const KiB = 1024;
const MiB = 1024 * KiB;

/** One machine of the thread, as the main job runs it. */
export interface MainJobMachine {
  readonly profile: string;
  /** What the table heading says about it. */
  readonly label: string;
  readonly devices?: PipelineSpec["devices"];
}

/**
 * The thread's two machines. x86 devices snoop the caches, so with the profile's devices
 * nothing would ever be flushed and the question would not arise; the camera, GPU and
 * display are made non-snooping engines (as integrated GPUs and display engines are on
 * their non-snooped path), kept coherent by clflush/wbinvd as drm_cache.c does.
 */
export const MAIN_JOB_MACHINES: readonly MainJobMachine[] = [
  { profile: "cortex-a9", label: "cortex-a9: 32-bit ARM, 512 KiB PL310 L2" },
  {
    profile: "x86-64-64m",
    label: "x86-64-64m: 64 MiB L3, camera/GPU/display made non-coherent",
    devices: {
      camera: { coherent: false },
      gpu: { coherent: false },
      display: { coherent: false },
    },
  },
];

/** 64 KiB, 128 KiB, ... 32 MiB. */
export const MAIN_JOB_SIZES: readonly number[] = Array.from(
  { length: 10 },
  (_, i) => (64 * KiB) << i,
);
/** `--quick`: the ends of the span and two points between. */
export const MAIN_JOB_QUICK_SIZES: readonly number[] = [64 * KiB, 512 * KiB, 4 * MiB, 32 * MiB];
/** Frames per run, and the V4L2 queue depth: enough for every buffer to be reused. */
export const MAIN_JOB_FRAMES = 3;
export const MAIN_JOB_BUFFERS = 2;

/** V8's `--max-inlined-bytecode-size-cumulative` for the main job (V8's default: 920). */
export const MAIN_JOB_INLINE_BUDGET = 230;

/** The grid keys of the main job's report, in grid order. */
export const MAIN_JOB_KEYS = ["profile", "strategy", "bufferBytes"] as const;

/** The main job's grid: profile (slowest), strategy, size (fastest). */
export function mainJobTasks(sizes: readonly number[] = MAIN_JOB_SIZES): SweepTask[] {
  const tasks: SweepTask[] = [];
  for (const m of MAIN_JOB_MACHINES) {
    for (const strategy of MAPPING_STRATEGIES) {
      for (const bufferBytes of sizes) {
        const spec: PipelineSpec = {
          name: `main-job ${m.profile} ${strategy} ${formatBytes(bufferBytes)}`,
          profile: m.profile,
          pipeline: "camera-gpu-display",
          strategy,
          bufferBytes,
          frames: MAIN_JOB_FRAMES,
          buffers: MAIN_JOB_BUFFERS,
          cpuReads: false,
          cpuWrites: false,
          ...(m.devices !== undefined ? { devices: m.devices } : {}),
        };
        tasks.push({ params: { profile: m.profile, strategy, bufferBytes }, spec });
      }
    }
  }
  return tasks;
}

/** A series of the log-log chart. */
export interface ChartSeries {
  readonly symbol: string;
  readonly label: string;
  /** One value per x position; undefined = no point, 0 = drawn on the "0" line. */
  readonly values: readonly (number | undefined)[];
}

/**
 * A small log-log chart: x positions are the (geometric) sizes, equally spaced; y is
 * log10 of the value, two rows per decade; each series has its own column within a
 * size's group, so no point hides another. Zero values go on a separate "0" line.
 */
export function asciiLogLogChart(
  xLabels: readonly string[],
  series: readonly ChartSeries[],
  yUnit: string,
): string {
  const positive = series.flatMap((s) =>
    s.values.filter((v): v is number => v !== undefined && v > 0),
  );
  const group = Math.max(series.length + 1, ...xLabels.map((l) => l.length + 1));
  const lines: string[] = [];
  const rows: string[][] = [];
  let labels: string[] = [];
  if (positive.length > 0) {
    const lo = Math.floor(Math.log10(Math.min(...positive)));
    let hi = Math.ceil(Math.log10(Math.max(...positive)));
    if (hi === lo) hi = lo + 1;
    const nRows = (hi - lo) * 2 + 1;
    for (let r = 0; r < nRows; r++) rows.push(new Array(xLabels.length * group).fill(" "));
    labels = rows.map((_, r) => {
      const exp = hi - r / 2;
      return Number.isInteger(exp) ? formatDecade(exp) : "";
    });
    series.forEach((s, si) => {
      s.values.forEach((v, xi) => {
        if (v === undefined || v <= 0) return;
        const r = Math.round((hi - Math.log10(v)) * 2);
        rows[r]![xi * group + si] = s.symbol;
      });
    });
  }
  const zero = new Array(xLabels.length * group).fill(" ");
  let anyZero = false;
  series.forEach((s, si) => {
    s.values.forEach((v, xi) => {
      if (v === 0) {
        zero[xi * group + si] = s.symbol;
        anyZero = true;
      }
    });
  });
  const width = Math.max(4, ...labels.map((l) => l.length));
  lines.push(`${" ".repeat(width)}  ${yUnit} (log scale)`);
  rows.forEach((row, r) => {
    lines.push(`${labels[r]!.padStart(width)} |${row.join("").trimEnd()}`);
  });
  if (anyZero) lines.push(`${"0".padStart(width)} |${zero.join("").trimEnd()}`);
  lines.push(`${" ".repeat(width)} +${"-".repeat(xLabels.length * group)}`);
  lines.push(
    `${" ".repeat(width)}  ${xLabels
      .map((l) => l.padEnd(group))
      .join("")
      .trimEnd()}`,
  );
  lines.push(`${" ".repeat(width)}  ${series.map((s) => `${s.symbol} ${s.label}`).join("   ")}`);
  return lines.join("\n");
}

function formatDecade(exp: number): string {
  const v = 10 ** exp;
  if (v >= 1e6) return `1e${exp}`;
  if (v >= 1) return String(v);
  return v.toPrecision(1);
}

function pad(s: string, n: number, right = false): string {
  return right ? s.padStart(n) : s.padEnd(n);
}

/** Columns separated by two spaces; the first left-aligned, the rest right-aligned. */
function table(rows: readonly (readonly string[])[]): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  return rows
    .map((r) =>
      r
        .map((c, i) => pad(c, widths[i]!, i > 0))
        .join("  ")
        .trimEnd(),
    )
    .join("\n");
}

function us(ns: number): string {
  const v = ns / 1000;
  if (v === 0) return "0";
  if (v >= 100) return v.toFixed(0);
  if (v >= 10) return v.toFixed(1);
  return v.toFixed(2);
}

const SYMBOLS: Readonly<Record<MappingStrategy, string>> = {
  coherent: "c",
  streaming: "l",
  "whole-cache": "W",
  "cache-hints": "h",
};

const STRATEGY_HEADINGS: Readonly<Record<MappingStrategy, string>> = {
  coherent: "coherent",
  streaming: "per-line",
  "whole-cache": "whole-cache",
  "cache-hints": "cache-hints",
};

const HELP = `dmabuf - the 2011 dma-buf thread's question, answered by running it

Usage:
  dmabuf [--quick] [--html FILE] [--jobs N] [--quiet]

Runs a camera -> GPU -> display pipeline whose buffers the CPU never touches, with
four ways of sharing them:
  coherent     consistent memory (dma_alloc_coherent): no cache maintenance
  per-line     streaming mapping, cache maintenance line by line ("streaming")
  whole-cache  streaming, every range cleaned/flushed as the whole cache by set/way
  cache-hints  streaming plus V4L2_BUF_FLAG_NO_CACHE_CLEAN / NO_CACHE_INVALIDATE
on a Cortex-A9 (512 KiB L2) and an x86-64 with a 64 MiB cache (its camera, GPU
and display made non-coherent), for buffers of 64 KiB to 32 MiB. Prints the CPU
cost per frame of each, the size from which whole-cache flushing beats per-line,
a log-log chart, and writes an HTML report.

Options:
  --quick      four sizes instead of ten (64 KiB, 512 KiB, 4 MiB, 32 MiB)
  --html FILE  where the HTML report goes (default: out/dmabuf-report.html; a
               bare file name also goes into out/)
  --jobs N     worker threads (default: one per CPU)
  --quiet      no progress on stderr
  -h, --help   this text

Other commands: dmabuf demo, dmabuf list, dmabuf sweep --help.
Exit status: 0 when every run was coherent; 1 when one was not (or failed); 2 for
bad input.
`;

/** Runs the main job. Resolves with the exit status. */
export async function defaultJobCommand(argv: string[], io: CliIo): Promise<number> {
  const options = {
    help: { type: "boolean", short: "h" },
    quick: { type: "boolean" },
    quiet: { type: "boolean", short: "q" },
    html: { type: "string" },
    jobs: { type: "string" },
  } as const;
  let values: { help?: boolean; quick?: boolean; quiet?: boolean; html?: string; jobs?: string };
  let jobs: number | undefined;
  try {
    const parsed = parseArgs({ args: argv, options, allowPositionals: false, strict: true });
    values = parsed.values;
    jobs = parseJobs(values.jobs);
  } catch (e) {
    io.err(`dmabuf: ${(e as Error).message}\nTry 'dmabuf --help'.\n`);
    return EXIT_BAD_INPUT;
  }
  if (values.help) {
    io.out(HELP);
    return EXIT_OK;
  }
  const htmlPath = outputPath(io.cwd, values.html, "dmabuf-report.html");
  try {
    prepareOutput(htmlPath, "HTML report");
  } catch (e) {
    if (!(e instanceof OutputPathError)) throw e;
    io.err(`dmabuf: ${e.message}\n`);
    return EXIT_BAD_INPUT;
  }
  const sizes = values.quick ? MAIN_JOB_QUICK_SIZES : MAIN_JOB_SIZES;
  const tasks = mainJobTasks(sizes);
  // V8's optimizing compiler runs on helper threads that share the machine's cores with
  // the workers, and compiles the model's hot code once per worker (again after each
  // deoptimization). A quarter of its default budget of bytecode inlined into one
  // function. Half of it (460): the helper threads 3.2 -> 2.8 s of CPU, the workers' own
  // time as it was, 10.2 -> 9.7 s in all (December 2026, five runs each way back to back
  // on the shared machine). A quarter: the 80 runs in one thread, helper threads 1.31-1.74
  // -> 1.07-1.38 s, the thread itself 3.6-5.1 -> 3.7-5.2 s (five runs each way, load
  // 4-4.5); `npx dmabuf` 8.4-11.1 -> 8.5-10.1 s in all (four alternating pairs, load 4.5-6;
  // an eighth made the thread slower). The flag only steers the compiler (no figure
  // changes); it applies to every compile from now on, the workers' included.
  setFlagsFromString(`--max-inlined-bytecode-size-cumulative=${MAIN_JOB_INLINE_BUDGET}`);

  // Big buffers first from one end (after a few small runs), small ones from the other:
  // the slowest runs do not end up last on one worker, and only one worker faults in the
  // host memory of the biggest runs (see mainJobSchedule).
  const progress = createProgress(io, tasks.length, progressMode(values.quiet === true), "dmabuf");
  // The HTML renderer (vega) takes a core for a few hundred ms to load. Not before the
  // workers start, which would wait for it; nor once the last runs are in: the last two
  // runs end close together, so that left the loading alone at the end of the job with
  // the render (last row to exit: 0.63-1.1 s -> 0.43-0.5 s, three alternating runs each
  // at load 5-7, December 2026). From the first row on, it shares the cores with the runs.
  let html: Promise<typeof import("../report/html.js")> | undefined;
  const loadHtml = (): Promise<typeof import("../report/html.js")> => {
    html ??= import("../report/html.js");
    return html;
  };
  let rows: SweepRow[];
  try {
    rows = await runSweep(tasks, {
      ...(jobs !== undefined ? { jobs } : {}),
      schedule: mainJobSchedule(tasks),
      fromBothEnds: true,
      onRow: (row) => {
        progress.tick(row);
        // A failure to load is reported where the report is written.
        loadHtml().catch(() => {});
      },
    });
  } finally {
    progress.stop();
  }

  const report: SweepReport = {
    title:
      "Per-line or whole-cache flushing? Camera -> GPU -> display, the CPU never touching the buffers",
    description:
      "The question of the 2011 dma-buf thread, run: the CPU cost per frame of sharing a camera -> GPU -> display pipeline's buffers as consistent memory, as streaming memory maintained line by line, as streaming memory with the whole cache cleaned/flushed by set/way for every range, and with the V4L2 NO_CACHE_CLEAN/NO_CACHE_INVALIDATE hints, on a Cortex-A9 with a 512 KiB L2 and an x86-64 with a 64 MiB L3 whose camera, GPU and display are non-coherent.",
    keys: [...MAIN_JOB_KEYS],
    rows,
  };

  io.out(renderText(report, sizes));

  const bad = rows.filter((r) => r.error !== undefined || r.verdict !== "coherent");
  try {
    await writeFile(htmlPath, await (await loadHtml()).renderSweepHtml(report));
    io.out(`\nHTML report: ${htmlPath}\n`);
  } catch (e) {
    io.err(`dmabuf: cannot write the HTML report to ${htmlPath}: ${(e as Error).message}\n`);
    return EXIT_BAD_INPUT;
  }
  return bad.length > 0 ? EXIT_VIOLATIONS : EXIT_OK;
}

function sizeOf(t: SweepTask): number {
  return t.spec.bufferBytes ?? 0;
}

/**
 * The order the main job hands its runs out in, with `fromBothEnds` (the first worker
 * takes from the front, the other from the back): the runs of the smallest size first
 * (one per machine and strategy), then all the others biggest first.
 *
 * Biggest first, so that only one worker grows its host memory to the biggest runs'
 * (see runSweep's `fromBothEnds`). The smallest runs before them, so that this worker's
 * first big run is not its first run: V8 optimizes the model's hot code with what it has
 * seen run so far. A worker whose first run was a 32 MiB one ran most of it unoptimized,
 * optimized the hot loops with one strategy's feedback and then deoptimized and
 * recompiled them at each new one (the 80 runs in one thread, December 2026: 392-403
 * optimizing compiles and 184-409 deoptimizations; 307 and 63 after the eight 64 KiB
 * runs, which take a few milliseconds each once warm).
 */
export function mainJobSchedule(tasks: readonly SweepTask[]): number[] {
  const bySize = tasks
    .map((_, i) => i)
    .sort((a, b) => sizeOf(tasks[b]!) - sizeOf(tasks[a]!) || a - b);
  if (bySize.length === 0) return [];
  const smallest = sizeOf(tasks[bySize.at(-1)!]!);
  const first = bySize.filter((i) => sizeOf(tasks[i]!) === smallest);
  return [...first, ...bySize.filter((i) => sizeOf(tasks[i]!) !== smallest)];
}

/** The text answer: a table, the crossover and a chart per machine, then the verdicts. */
export function renderText(report: SweepReport, sizes: readonly number[]): string {
  const out: string[] = [];
  const rows = report.rows;
  const find = (profile: string, strategy: MappingStrategy, size: number): SweepRow | undefined =>
    rows.find(
      (r) => r.profile === profile && r.strategy === strategy && r.params["bufferBytes"] === size,
    );
  const value = (r: SweepRow | undefined): number | undefined =>
    r === undefined || r.error !== undefined ? undefined : rowSharingNs(r);
  const frames = rows.find((r) => r.error === undefined)?.frames ?? MAIN_JOB_FRAMES;

  out.push(`${report.title}\n`);
  out.push(
    `${rows.length} runs: ${MAIN_JOB_MACHINES.length} machines x ${MAPPING_STRATEGIES.length} strategies x ${sizes.length} buffer sizes, ${frames} frames each.`,
  );
  out.push(
    "Figures: CPU time per frame spent on sharing (cache maintenance, CPU access, bounce, IOMMU), in µs;",
  );
  out.push("the devices' own transfer time is the same for every strategy and is left out.\n");

  for (const m of MAIN_JOB_MACHINES) {
    const p = PROFILES[m.profile];
    out.push(`${m.label}${p ? ` (line ${p.cache.lineSize} B)` : ""}`);
    const header = ["size", ...MAPPING_STRATEGIES.map((s) => STRATEGY_HEADINGS[s]), ""];
    const cross = wholeCacheCrossover(rows, m.profile)?.bytes;
    const body = sizes.map((size) => {
      const cells = MAPPING_STRATEGIES.map((st) => {
        const r = find(m.profile, st, size);
        if (r === undefined) return "-";
        if (r.error !== undefined) return "error";
        return `${us(rowSharingNs(r))}${r.verdict === "coherent" ? "" : "!"}`;
      });
      const mark =
        cross !== undefined && size === cross ? "<- whole-cache cheaper from here on" : "";
      return [formatBytes(size), ...cells, mark];
    });
    out.push(table([header, ...body]));
    out.push(
      cross === undefined
        ? `  whole-cache flushing cheaper than per-line: never in range (${formatBytes(sizes[0]!)}–${formatBytes(sizes.at(-1)!)})`
        : `  whole-cache flushing cheaper than per-line: from ${formatBytes(cross)} up`,
    );
    const cheapest = cheapestStrategy(rows, m.profile, sizes.at(-1)!);
    if (cheapest !== undefined) {
      const names = cheapest.strategies.map((s) => STRATEGY_HEADINGS[s as MappingStrategy] ?? s);
      out.push(
        `  cheapest at ${formatBytes(sizes.at(-1)!)}: ${names.join(" and ")} (${us(cheapest.sharingNs)} µs per frame)`,
      );
    }
    out.push("");
    out.push(
      asciiLogLogChart(
        sizes.map(shortSize),
        MAPPING_STRATEGIES.map((st) => ({
          symbol: SYMBOLS[st],
          label: STRATEGY_HEADINGS[st],
          values: sizes
            .map((s) => value(find(m.profile, st, s)))
            .map((v) => (v === undefined ? undefined : v / 1000)),
        })),
        "µs per frame",
      ),
    );
    out.push("");
  }

  out.push(
    "On x86 the profile's devices snoop the caches, so nothing would ever be flushed and the\n" +
      "question would be moot; the run makes the camera, GPU and display non-snooping engines,\n" +
      "which drivers keep coherent with clflush (per line) or wbinvd (whole cache), drm_cache.c.\n" +
      "What whole-cache flushing costs other work (refilling a cache that was thrown away)\n" +
      "is not in these figures: nothing else runs on the CPU here.\n",
  );

  const bad = rows.filter((r) => r.error !== undefined || r.verdict !== "coherent");
  if (bad.length === 0) {
    out.push(
      `Coherence: all ${rows.length} runs coherent (no checker violations, every frame's CRC as expected).`,
    );
  } else {
    out.push(
      `Coherence: ${bad.length} of ${rows.length} runs NOT coherent or failed (marked ! or error above):`,
    );
    const name = (r: SweepRow): string =>
      `${r.profile} ${r.strategy} ${formatBytes(r.bufferBytes || Number(r.params["bufferBytes"]))}`;
    for (const r of bad) {
      if (r.error !== undefined) continue;
      out.push(
        `  ${name(r)}: ${r.violations} violation${r.violations === 1 ? "" : "s"}, ${r.framesOk}/${r.frames} frames as expected`,
      );
    }
    // Failed runs grouped by message: one broken step usually fails every run alike.
    const byError = new Map<string, SweepRow[]>();
    for (const r of bad) {
      if (r.error === undefined) continue;
      const list = byError.get(r.error) ?? [];
      list.push(r);
      byError.set(r.error, list);
    }
    for (const [message, list] of byError) {
      const which =
        list.length <= 3
          ? list.map(name).join(", ")
          : `${list.length} runs: ${list.slice(0, 2).map(name).join(", ")}, ...`;
      out.push(`  failed (${which}): ${message}`);
    }
  }
  return `${out.join("\n")}\n`;
}

function shortSize(n: number): string {
  return n >= MiB ? `${n / MiB}M` : `${n / KiB}K`;
}
