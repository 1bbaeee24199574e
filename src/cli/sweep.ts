/**
 * `dmabuf sweep SCENARIO --vary key=v1,v2 ...`: one scenario run over a grid of field
 * values, in parallel worker threads, summarised as a table and written as CSV, JSON
 * and an HTML report.
 *
 * Each grid point is the scenario file's data with the varied fields set
 * (src/sweep/grid.ts `setPath`), validated by the scenario schema exactly as a file
 * would be, then turned into a PipelineSpec; so `--vary machine.profile=...` means what
 * `machine: { profile: ... }` means in the file.
 *
 * Exit status: 2 for bad input (options, the scenario file, a --vary key or value, a
 * grid point the schema rejects, an output file that cannot be written); 1 when a run
 * failed, or a run of a grid point without `pipeline.fault` (one that expects coherence)
 * came out incoherent; else 0. Grid points with a fault are expected to go wrong and do
 * not count.
 */

import { readFileSync } from "node:fs";
import { writeFile } from "node:fs/promises";
import { resolve } from "node:path";
import { parseArgs } from "node:util";
import { SIZED_FRAME_WIDTH } from "../pipelines/spec.js";
import { conclusionsText } from "../report/conclusions.js";
import { renderSweepHtml } from "../report/html.js";
import { rowSharingNs } from "../report/sharing-cost.js";
import type { SweepReport, SweepRow } from "../report/sweep-types.js";
import {
  didYouMean,
  parseScenario,
  readScenarioData,
  ScenarioError,
  scenarioToSpec,
} from "../scenarios/scenario.js";
import { scenarioJsonSchema } from "../scenarios/schema.js";
import { sweepCsv, sweepJson } from "../sweep/csv.js";
import {
  cartesianGrid,
  GridError,
  type GridPoint,
  type GridValueKind,
  parseVary,
  setPath,
  type VaryAxis,
} from "../sweep/grid.js";
import {
  gridFingerprint,
  type MergedSweep,
  mergeShards,
  parseShard,
  parseShardFile,
  SHARD_FORMAT,
  SHARD_VERSION,
  ShardError,
  type ShardFile,
  type ShardSpec,
  shardIndices,
  shardJson,
} from "../sweep/shard.js";
import {
  createProgress,
  parseJobs,
  progressMode,
  runSweep,
  type SweepTask,
} from "../sweep/sweep.js";
import { geometryProblem } from "../sweep/validate.js";
import { type CliIo, EXIT_BAD_INPUT, EXIT_OK, EXIT_VIOLATIONS } from "./io.js";
import { resolveScenarioArgument } from "./list.js";
import { OutputPathError, outputPath, prepareOutput } from "./output.js";

const HELP = `dmabuf sweep - run a scenario over a grid of field values

Usage:
  dmabuf sweep SCENARIO --vary KEY=V1,V2,... [--vary KEY=...]...
               [--csv FILE] [--json FILE] [--html FILE] [--jobs N] [--quiet]
               [--shard K/N] [--dry-run]

SCENARIO is a .yaml/.yml/.json file, or the name of a bundled example
('dmabuf list scenarios').

KEY is a field of the scenario file as a dotted path (pipeline.strategy,
buffers.bufferBytes, machine.profile, machine.maintenance.thresholdBytes,
devices.gpu.coherent, machine.cache.levels.1.sizeBytes ...). Values are typed by
the schema: numbers, sizes (64K, 512KiB, 32 MiB: binary units), true/false,
names. An item A..B*F is a geometric range (64KiB..32MiB*2), A..B+S an
arithmetic one (1..16+1), A..B steps by 1.

The grid is every combination, in the order of nested loops written in argument
order (the first --vary changes slowest). It is checked whole before anything
runs: a point the schema refuses, a frame the display cannot scan out, or a
buffer size that is not a whole number of the frame's lines stops the sweep up
front, naming the point and field. When buffers.bufferBytes is varied without
buffers.width/height, each frame is made from its size (the output says so).
Runs go to worker threads, one per CPU unless --jobs says otherwise; rows are
always in grid order.

Options:
  --vary KEY=VALUES  a field and its values (repeatable)
  --csv FILE         write the rows as CSV (one column per varied key, verdict,
                     violations, frames_ok, frames, ns per frame by category,
                     sharing, total)
  --json FILE        write the sweep as JSON (what --html renders)
  --html FILE        write the HTML report (plots per profile, crossover, all rows)
                     A bare file name goes into out/ (ignored by git); a path
                     with a directory is used as given. Paths are checked
                     before anything runs; the files written are printed.
  --jobs N           worker threads (default: one per CPU)
  --shard K/N        run only shard K of N (grid points K-1, K-1+N, ...) and
                     write them as a shard file (--json FILE, default
                     out/shard-K-of-N.json); 'dmabuf merge' of all N gives
                     what one machine running the whole grid gives, byte for
                     byte (docs/sweeps.md: array jobs on Slurm, Kubernetes, CI)
  --quiet            no progress on stderr
  --dry-run          check the scenario, the whole grid and the output paths,
                     say how many runs there would be, run nothing
  -h, --help         this text

Exit status: 0 when every run that expects coherence (no pipeline.fault) was
coherent; 1 when one was not, or a run failed; 2 for bad input.

Example:
  dmabuf sweep camera-gpu-display \\
    --vary machine.profile=cortex-a9,x86-64-64m \\
    --vary pipeline.strategy=streaming,whole-cache \\
    --vary buffers.bufferBytes=64KiB..32MiB*2 --csv sweep.csv --html sweep.html
`;

type JsonSchemaNode = {
  type?: string | string[];
  properties?: Record<string, JsonSchemaNode>;
  items?: JsonSchemaNode;
  anyOf?: JsonSchemaNode[];
  oneOf?: JsonSchemaNode[];
  enum?: unknown[];
};

let schemaRoot: JsonSchemaNode | undefined;

function schema(): JsonSchemaNode {
  schemaRoot ??= scenarioJsonSchema() as JsonSchemaNode;
  return schemaRoot;
}

function branches(n: JsonSchemaNode): JsonSchemaNode[] {
  return n.anyOf ?? n.oneOf ?? [n];
}

function typesOf(n: JsonSchemaNode): string[] {
  return branches(n).flatMap((b) =>
    b.type === undefined ? [] : Array.isArray(b.type) ? b.type : [b.type],
  );
}

/** What the schema says about a dotted field path. */
export interface SchemaField {
  /** How --vary values for it are typed. */
  readonly kind: GridValueKind;
  /** Allowed values, when the field is an enumeration. */
  readonly values?: readonly string[];
}

/**
 * Looks a dotted path up in the scenario schema. Throws GridError naming the key when no
 * such field exists (with the closest name) or when it is a table rather than a value.
 */
export function schemaField(key: string): SchemaField {
  let node = schema();
  const segs = key.split(".");
  for (let i = 0; i < segs.length; i++) {
    const seg = segs[i]!;
    const here = segs.slice(0, i).join(".");
    const obj = branches(node).find((b) => b.properties !== undefined);
    const arr = branches(node).find((b) => b.items !== undefined);
    if (obj?.properties !== undefined && Object.hasOwn(obj.properties, seg)) {
      node = obj.properties[seg]!;
    } else if (arr?.items !== undefined && /^\d+$/.test(seg)) {
      node = arr.items;
    } else if (obj?.properties !== undefined) {
      const known = Object.keys(obj.properties).filter((k) => k !== "$schema");
      const guess = didYouMean(seg, known);
      throw new GridError(
        `--vary ${key}: no field '${seg}'${here ? ` in ${here}` : ""}${guess ? ` (did you mean ${[here, guess].filter(Boolean).join(".")}?)` : `; fields: ${known.join(", ")}`}`,
      );
    } else {
      throw new GridError(`--vary ${key}: '${here}' is a single value; it has no field '${seg}'`);
    }
  }
  const types = typesOf(node);
  const obj = branches(node).find((b) => b.properties !== undefined);
  if (obj?.properties !== undefined) {
    throw new GridError(
      `--vary ${key}: is a table of fields; vary one of them (${Object.keys(obj.properties).join(", ")})`,
    );
  }
  if (types.includes("array")) {
    throw new GridError(`--vary ${key}: is a list; vary one item by index (${key}.0...)`);
  }
  // Sizes are integer-or-string unions: their values are read as numbers (64KiB too).
  if (types.includes("integer") || types.includes("number")) return { kind: "number" };
  if (types.includes("boolean")) return { kind: "boolean" };
  const values = branches(node).flatMap((b) =>
    (b.enum ?? []).filter((v): v is string => typeof v === "string"),
  );
  return values.length > 0 ? { kind: "string", values } : { kind: "string" };
}

/** Parses the --vary arguments against the schema: known fields, typed values, enum members. */
export function parseVaryArgs(args: readonly string[]): VaryAxis[] {
  const fields = new Map<string, SchemaField>();
  const axes = args.map((a) =>
    parseVary(a, (key) => {
      const f = schemaField(key);
      fields.set(key, f);
      return f.kind;
    }),
  );
  for (const axis of axes) {
    const allowed = fields.get(axis.key)?.values;
    if (allowed === undefined) continue;
    for (const v of axis.values) {
      if (typeof v === "string" && !allowed.includes(v)) {
        const guess = didYouMean(v, allowed);
        throw new GridError(
          `--vary ${axis.key}: '${v}': expected one of ${allowed.join(", ")}${guess ? ` (did you mean ${guess}?)` : ""}`,
        );
      }
    }
  }
  return axes;
}

function describePoint(p: GridPoint): string {
  return Object.entries(p.params)
    .map(([k, v]) => `${k}=${String(v)}`)
    .join(" ");
}

/**
 * When the grid varies buffers.bufferBytes but not the frame's width or height, the
 * geometry follows each size (SIZED_FRAME_WIDTH pixels wide, doubled until the display
 * can scan the frame out) rather than the file's width, which would make most sizes
 * either too tall for the display or not a whole number of lines. Returns the scenario
 * data without buffers.width/height and a note saying so, or undefined when nothing is
 * set aside.
 */
export function sizeSetsGeometry(
  data: unknown,
  keys: readonly string[],
): { data: unknown; note: string } | undefined {
  if (!keys.includes("buffers.bufferBytes")) return undefined;
  if (keys.includes("buffers.width") || keys.includes("buffers.height")) return undefined;
  const buffers = (data as { buffers?: unknown } | null)?.buffers;
  if (typeof buffers !== "object" || buffers === null || Array.isArray(buffers)) return undefined;
  const { width, height, ...rest } = buffers as Record<string, unknown>;
  if (width === undefined && height === undefined) return undefined;
  const given = [
    width !== undefined ? `width ${String(width)}` : "",
    height !== undefined ? `height ${String(height)}` : "",
  ]
    .filter(Boolean)
    .join(", ");
  return {
    data: { ...(data as Record<string, unknown>), buffers: rest },
    note: `buffers.bufferBytes is varied, so each run's frame is made from its size (${SIZED_FRAME_WIDTH} pixels wide, doubled until the display can scan it out); the file's buffers ${given} are set aside. Vary buffers.width too to fix the width.`,
  };
}

/** "machine.cache.levels[1].ways" -> "machine.cache.levels.1.ways", to compare with --vary keys. */
function dotted(field: string): string {
  return field.replace(/\[(\d+)\]/g, ".$1");
}

/**
 * The grid point's scenario data validated and turned into a spec. A schema error about
 * a varied field is reported against the --vary argument; others against the file.
 */
function pointTask(
  point: GridPoint,
  base: { file: string; text: string; data: unknown },
): { task: SweepTask; expectsCoherence: boolean } {
  let data = base.data;
  for (const [k, v] of Object.entries(point.params)) data = setPath(data, k, v);
  try {
    const scenario = parseScenario(data, base);
    return {
      task: { params: point.params, spec: scenarioToSpec(scenario) },
      expectsCoherence: scenario.pipeline?.fault === undefined,
    };
  } catch (e) {
    if (!(e instanceof ScenarioError)) throw e;
    const lines = e.issues.map((iss) => {
      const f = iss.field === undefined ? undefined : dotted(iss.field);
      const key =
        f === undefined
          ? undefined
          : Object.keys(point.params).find((k) => f === k || f.startsWith(`${k}.`));
      if (key !== undefined)
        return `--vary ${key}=${String(point.params[key])}: ${f}: ${iss.problem}`;
      const where = [iss.file, iss.line, iss.column].filter((x) => x !== undefined).join(":");
      return `${[where, iss.field, iss.problem].filter((x) => x !== undefined && x !== "").join(": ")} (grid point ${describePoint(point)})`;
    });
    throw new GridError(lines.join("\n"));
  }
}

function us(ns: number): string {
  const v = ns / 1000;
  if (v === 0) return "0";
  if (v >= 100) return v.toFixed(0);
  if (v >= 10) return v.toFixed(1);
  return v.toFixed(2);
}

/** The summary table: one line per grid point, in grid order. */
export function summaryTable(report: SweepReport, expects: readonly boolean[]): string {
  const header = [
    "#",
    ...report.keys,
    "verdict",
    "violations",
    "frames ok",
    "sharing µs/frame",
    "total µs/frame",
  ];
  const rows = report.rows.map((r, i) => {
    const verdict =
      r.error !== undefined
        ? "FAILED"
        : r.verdict === "coherent"
          ? "coherent"
          : expects[i] === false
            ? "incoherent (expected)"
            : "INCOHERENT";
    return [
      String(i),
      ...report.keys.map((k) => String(r.params[k] ?? "")),
      verdict,
      String(r.violations),
      `${r.framesOk}/${r.frames}`,
      r.error !== undefined ? "-" : us(rowSharingNs(r)),
      r.error !== undefined ? "-" : us(r.totalPerFrameNs),
    ];
  });
  const all = [header, ...rows];
  const widths = header.map((_, c) => Math.max(...all.map((r) => r[c]!.length)));
  const numeric = new Set([
    0,
    header.length - 1,
    header.length - 2,
    header.length - 3,
    header.length - 4,
  ]);
  const lines = all.map((r) =>
    r
      .map((cell, c) => (numeric.has(c) ? cell.padStart(widths[c]!) : cell.padEnd(widths[c]!)))
      .join("  ")
      .trimEnd(),
  );
  const errors = report.rows
    .map((r, i) => (r.error !== undefined ? `  #${i}: ${r.error.split("\n")[0]}` : undefined))
    .filter((l): l is string => l !== undefined);
  return `${lines.join("\n")}\n${errors.length > 0 ? `\nFailed runs:\n${errors.join("\n")}\n` : ""}`;
}

function badInput(io: CliIo, message: string): number {
  io.err(`dmabuf sweep: ${message}\nTry 'dmabuf sweep --help'.\n`);
  return EXIT_BAD_INPUT;
}

/** A file a sweep or merge writes: where, what it is, and how to render it. */
type SweepOutput = readonly [
  path: string,
  what: string,
  render: (r: SweepReport) => Promise<string>,
];

/**
 * The output files asked for, their paths checked before anything runs (bare names go
 * into out/). @throws OutputPathError
 */
export function sweepOutputs(
  cwd: string,
  files: { csv?: string | undefined; json?: string | undefined; html?: string | undefined },
): SweepOutput[] {
  const wanted: [string | undefined, string, (r: SweepReport) => Promise<string>][] = [
    [files.csv, "CSV", async (r) => sweepCsv(r)],
    [files.json, "JSON", async (r) => sweepJson(r)],
    [files.html, "HTML report", (r) => renderSweepHtml(r)],
  ];
  const out: SweepOutput[] = [];
  for (const [file, what, render] of wanted) {
    if (file === undefined) continue;
    const path = outputPath(cwd, file, file);
    prepareOutput(path, what);
    out.push([path, what, render]);
  }
  return out;
}

/**
 * What a whole sweep prints and writes once its rows are in, the same whether one machine
 * ran them or `dmabuf merge` put shards together: the table, the files, the verdict.
 * Resolves with the exit status.
 */
export async function finishSweep(
  io: CliIo,
  command: string,
  report: SweepReport,
  expects: readonly boolean[],
  notes: readonly string[],
  outputs: readonly SweepOutput[],
): Promise<number> {
  const rows = report.rows;
  io.out(`${report.title}: ${rows.length} run${rows.length === 1 ? "" : "s"}\n\n`);
  for (const n of notes) io.out(`Note: ${n}\n\n`);
  io.out(summaryTable(report, expects));
  io.out(conclusionsText(report));

  const written: string[] = [];
  for (const [path, what, render] of outputs) {
    try {
      await writeFile(path, await render(report));
    } catch (e) {
      io.err(`dmabuf ${command}: cannot write the ${what} to ${path}: ${(e as Error).message}\n`);
      return EXIT_BAD_INPUT;
    }
    written.push(`${what}: ${path}`);
  }
  if (written.length > 0) io.out(`\n${written.join("\n")}\n`);

  const failed = rows.filter((r) => r.error !== undefined).length;
  const unexpected = rows.filter(
    (r, i) => r.error === undefined && r.verdict !== "coherent" && expects[i],
  ).length;
  const expectedBad = rows.filter(
    (r, i) => r.error === undefined && r.verdict !== "coherent" && !expects[i],
  ).length;
  const parts = [`${rows.length - failed - unexpected - expectedBad} coherent`];
  if (unexpected > 0) parts.push(`${unexpected} INCOHERENT`);
  if (expectedBad > 0) parts.push(`${expectedBad} incoherent as their fault expects`);
  if (failed > 0) parts.push(`${failed} failed`);
  io.out(`\nVerdict: ${parts.join(", ")}\n`);
  return failed > 0 || unexpected > 0 ? EXIT_VIOLATIONS : EXIT_OK;
}

/** `dmabuf sweep`. Resolves with the exit status. */
export async function sweepCommand(argv: string[], io: CliIo): Promise<number> {
  const options = {
    help: { type: "boolean", short: "h" },
    vary: { type: "string", multiple: true },
    csv: { type: "string" },
    json: { type: "string" },
    html: { type: "string" },
    jobs: { type: "string" },
    shard: { type: "string" },
    quiet: { type: "boolean", short: "q" },
    "dry-run": { type: "boolean" },
  } as const;
  let values: {
    help?: boolean;
    vary?: string[];
    csv?: string;
    json?: string;
    html?: string;
    jobs?: string;
    shard?: string;
    quiet?: boolean;
    "dry-run"?: boolean;
  };
  let positionals: string[];
  let jobs: number | undefined;
  let shard: ShardSpec | undefined;
  try {
    const parsed = parseArgs({ args: argv, options, allowPositionals: true, strict: true });
    values = parsed.values;
    positionals = parsed.positionals;
    jobs = parseJobs(values.jobs);
    if (values.shard !== undefined) shard = parseShard(values.shard);
  } catch (e) {
    return badInput(io, (e as Error).message);
  }
  if (values.help) {
    io.out(HELP);
    return EXIT_OK;
  }
  if (positionals.length !== 1) {
    return badInput(
      io,
      positionals.length === 0
        ? "which scenario? (a YAML or JSON file)"
        : `one scenario at a time, not ${positionals.length}`,
    );
  }
  if (shard !== undefined && (values.csv !== undefined || values.html !== undefined)) {
    return badInput(
      io,
      "a shard holds part of the grid: write its rows with --json, then 'dmabuf merge' the shards into CSV, JSON and HTML",
    );
  }

  const notes: string[] = [];
  let tasks: SweepTask[];
  let expects: boolean[];
  let keys: string[];
  let title: string;
  let description: string | undefined;
  try {
    const file = readScenarioData(resolveScenarioArgument(positionals[0]!, io.cwd), io.cwd);
    const axes = parseVaryArgs(values.vary ?? []);
    keys = axes.map((a) => a.key);
    const points = cartesianGrid(axes);
    const fitted = sizeSetsGeometry(file.data, keys);
    const base = fitted === undefined ? file : { ...file, data: fitted.data };
    if (fitted !== undefined) notes.push(fitted.note);
    const built = points.map((p) => pointTask(p, base));
    // The whole grid is checked before anything runs (every shard checks all of it).
    const problems: string[] = [];
    built.forEach((b, i) => {
      const why = geometryProblem(b.task.spec);
      if (why !== undefined) problems.push(`grid point ${describePoint(points[i]!)}: ${why}`);
    });
    if (problems.length > 0) {
      const shown = problems.slice(0, 8);
      if (problems.length > shown.length) shown.push(`... and ${problems.length - 8} more`);
      throw new GridError(
        `${problems.length} of ${points.length} grid points cannot run, nothing was run:\n  ${shown.join("\n  ")}`,
      );
    }
    tasks = built.map((b) => b.task);
    expects = built.map((b) => b.expectsCoherence);
    const name = tasks[0]?.spec.name ?? positionals[0]!;
    title = `sweep: ${name}`;
    const d = (base.data as { description?: unknown } | null)?.description;
    description = typeof d === "string" ? d : undefined;
  } catch (e) {
    if (e instanceof GridError || e instanceof ScenarioError) {
      io.err(`dmabuf sweep: ${e.message}\n`);
      return EXIT_BAD_INPUT;
    }
    throw e;
  }

  let outputs: SweepOutput[];
  let shardPath: string | undefined;
  try {
    if (shard !== undefined) {
      shardPath = outputPath(io.cwd, values.json, `shard-${shard.index}-of-${shard.count}.json`);
      prepareOutput(shardPath, "shard file");
      outputs = [];
    } else {
      outputs = sweepOutputs(io.cwd, values);
    }
  } catch (e) {
    if (!(e instanceof OutputPathError)) throw e;
    io.err(`dmabuf sweep: ${e.message}\n`);
    return EXIT_BAD_INPUT;
  }

  const mine = shard === undefined ? tasks.map((_, i) => i) : shardIndices(tasks.length, shard);
  if (values["dry-run"]) {
    const share =
      shard === undefined ? "" : ` (shard ${shard.index}/${shard.count} of ${tasks.length})`;
    io.out(
      `dmabuf sweep: ${mine.length} run${mine.length === 1 ? "" : "s"}${share}: the scenario, every grid point and the output paths are valid; nothing was run (--dry-run)\n`,
    );
    return EXIT_OK;
  }
  const label = shard === undefined ? "sweep" : `sweep ${shard.index}/${shard.count}`;
  const progress = createProgress(io, mine.length, progressMode(values.quiet === true), label);
  let rows: SweepRow[];
  try {
    rows = await runSweep(
      mine.map((i) => tasks[i]!),
      {
        ...(jobs !== undefined ? { jobs } : {}),
        onRow: (row) => progress.tick(row),
      },
    );
  } finally {
    progress.stop();
  }
  const report: SweepReport = {
    title,
    ...(description !== undefined ? { description } : {}),
    keys,
    rows,
  };
  if (shard === undefined || shardPath === undefined) {
    return finishSweep(io, "sweep", report, expects, notes, outputs);
  }

  // A shard: its rows and where they sit in the grid, for `dmabuf merge`.
  const file: ShardFile = {
    format: SHARD_FORMAT,
    version: SHARD_VERSION,
    shard,
    points: tasks.length,
    grid: gridFingerprint(tasks, expects),
    report,
    indices: mine,
    expects: mine.map((i) => expects[i]!),
    notes,
  };
  try {
    await writeFile(shardPath, shardJson(file));
  } catch (e) {
    io.err(`dmabuf sweep: cannot write the shard file to ${shardPath}: ${(e as Error).message}\n`);
    return EXIT_BAD_INPUT;
  }
  const failed = rows.filter((r) => r.error !== undefined).length;
  const bad = rows.filter(
    (r, i) => r.error === undefined && r.verdict !== "coherent" && file.expects[i],
  ).length;
  io.out(
    `${title}: shard ${shard.index}/${shard.count}: ${rows.length} of ${tasks.length} runs (${rows.length - failed - bad} as expected${bad > 0 ? `, ${bad} INCOHERENT` : ""}${failed > 0 ? `, ${failed} failed` : ""})\n` +
      `Shard file: ${shardPath}\n` +
      `Merge all ${shard.count} with: dmabuf merge SHARD_FILES... [--csv FILE] [--json FILE] [--html FILE]\n`,
  );
  return failed > 0 || bad > 0 ? EXIT_VIOLATIONS : EXIT_OK;
}

const MERGE_HELP = `dmabuf merge - put the shards of a sweep back together

Usage:
  dmabuf merge SHARD_FILE... [--csv FILE] [--json FILE] [--html FILE]

Reads the shard files written by 'dmabuf sweep ... --shard K/N --json FILE' on
N machines (or N jobs of a scheduler's array) and prints and writes exactly what
one machine running the whole sweep would have: the same table, the same CSV,
JSON and HTML byte for byte, the same verdict and exit status. Every shard 1..N
must be given once, all of one sweep (same scenario, same --vary).

Options:
  --csv FILE, --json FILE, --html FILE   as for 'dmabuf sweep' (bare names go
                                         into out/)
  -h, --help                             this text

Exit status: as 'dmabuf sweep' (0 coherent, 1 a run incoherent or failed, 2 bad
input: a missing, duplicate or foreign shard).
`;

/** `dmabuf merge SHARD_FILE...`. Resolves with the exit status. */
export async function mergeCommand(argv: string[], io: CliIo): Promise<number> {
  const options = {
    help: { type: "boolean", short: "h" },
    csv: { type: "string" },
    json: { type: "string" },
    html: { type: "string" },
  } as const;
  let values: { help?: boolean; csv?: string; json?: string; html?: string };
  let positionals: string[];
  try {
    const parsed = parseArgs({ args: argv, options, allowPositionals: true, strict: true });
    values = parsed.values;
    positionals = parsed.positionals;
  } catch (e) {
    io.err(`dmabuf merge: ${(e as Error).message}\nTry 'dmabuf merge --help'.\n`);
    return EXIT_BAD_INPUT;
  }
  if (values.help) {
    io.out(MERGE_HELP);
    return EXIT_OK;
  }
  let merged: MergedSweep;
  let outputs: SweepOutput[];
  try {
    const files = positionals.map((name) => {
      let text: string;
      try {
        text = readFileSync(resolve(io.cwd, name), "utf8");
      } catch (e) {
        throw new ShardError(
          `${name}: cannot read: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`,
        );
      }
      return { name, shard: parseShardFile(name, text) };
    });
    merged = mergeShards(files);
    outputs = sweepOutputs(io.cwd, values);
  } catch (e) {
    if (e instanceof ShardError || e instanceof OutputPathError) {
      io.err(`dmabuf merge: ${e.message}\n`);
      return EXIT_BAD_INPUT;
    }
    throw e;
  }
  return finishSweep(io, "merge", merged.report, merged.expects, merged.notes, outputs);
}
