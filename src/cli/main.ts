#!/usr/bin/env node
/**
 * The `dmabuf` command: dispatches to the main job (no arguments), `run`, `sweep`,
 * `list`, `schema`, `demo` and `help`. {@link main} runs in-process (tests, sweep
 * workers); the bin entry calls it with the process's arguments and streams.
 */

import { realpathSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { didYouMean } from "../lib/did-you-mean.js";
import { PROFILES } from "../machine/profiles.js";
import { formatViolation } from "../machine/violations.js";
import type { PipelineResult, PipelineSpec } from "../pipelines/types.js";
import { usageError } from "./args.js";
import { argError, COMMAND_HELP, DEMO_HELP, MAIN_HELP, SCHEMA_HELP, VERSION } from "./help.js";
import { type CliIo, EXIT_BAD_INPUT, EXIT_OK, EXIT_VIOLATIONS, processIo } from "./io.js";

// Each command's module is imported when the command runs: the scenario schema (zod),
// the pipelines and the HTML renderer take a core for most of a second to load, and the
// main job starts its workers sooner without them.

export const COMMANDS = [
  "run",
  "mutate",
  "sweep",
  "merge",
  "list",
  "schema",
  "demo",
  "help",
] as const;

export interface MainDeps {
  /** Replaces the pipeline runner of `run` (tests inject fixtures). */
  readonly runPipeline?: (spec: PipelineSpec) => PipelineResult;
}

function pad(s: string, n: number): string {
  return s.length >= n ? s : s + " ".repeat(n - s.length);
}

function table(rows: string[][]): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  return rows
    .map((r) =>
      r
        .map((c, i) => pad(c, widths[i]!))
        .join("  ")
        .trimEnd(),
    )
    .join("\n");
}

/** The stale-data demonstration (src/scenarios/stale-data.ts) as a table. */
async function demo(io: CliIo, profiles: string[], size: number): Promise<number> {
  const { runStaleDataDemo } = await import("../scenarios/stale-data.js");
  const cases = runStaleDataDemo(profiles, size);
  io.out(
    `Stale data, and the sync that prevents it (${size / 1024} KiB buffer, streaming DMA mapping)\n\n`,
  );
  const rows = [
    ["profile", "flow", "required call", "made?", "wrong bytes", "violations", "cache maint."],
  ];
  let ok = true;
  for (const c of cases) {
    const kinds = [...new Set(c.violations.map((v) => v.kind))].join(",") || "-";
    rows.push([
      c.profile,
      c.flow,
      c.call,
      c.synced ? "yes" : "NO",
      `${c.wrongBytes}/${c.size}`,
      kinds,
      `${(c.maintenanceNs / 1000).toFixed(1)} us`,
    ]);
    if (c.synced && (c.wrongBytes > 0 || c.violations.length > 0)) ok = false;
    if (!c.synced && c.wrongBytes > 0 && c.violations.length === 0) ok = false;
  }
  io.out(`${table(rows)}\n`);
  const example = cases.find((c) => !c.synced && c.wrongBytes > 0 && c.violations.length > 0);
  if (example) {
    io.out(
      `\nWhat the checker says (${example.profile}, ${example.flow}, without ${example.call}):\n`,
    );
    for (const v of example.violations) io.out(`  ${formatViolation(v)}\n`);
  }
  io.out(
    `\nOn coherent machines (x86-64) the device snoops the caches, so nothing is stale even without the call;\n` +
      `the checker still reports CPU access to a buffer the device owns, which is a bug on any machine.\n` +
      `On 32-bit ARM, mapping DMA_FROM_DEVICE already invalidates the buffer, but lines the CPU fetches\n` +
      `speculatively while the device writes are stale again: only the sync after the DMA makes it safe.\n`,
  );
  io.out(
    `\nVerdict: ${ok ? "every synced case coherent, every wrong byte caught" : "MODEL INCONSISTENT"}\n`,
  );
  return ok ? EXIT_OK : EXIT_VIOLATIONS;
}

function demoCommand(argv: string[], io: CliIo): number | Promise<number> {
  let values: { help?: boolean; profile?: string[]; size?: string };
  try {
    values = parseArgs({
      args: argv,
      options: {
        help: { type: "boolean", short: "h" },
        profile: { type: "string", multiple: true },
        size: { type: "string" },
      },
      allowPositionals: false,
      strict: true,
    }).values;
  } catch (e) {
    return usageError(io, "demo", argError(e));
  }
  if (values.help) {
    io.out(DEMO_HELP);
    return EXIT_OK;
  }
  const profiles = values.profile ?? ["cortex-a9", "arm64", "riscv64", "x86-64"];
  for (const p of profiles) {
    if (PROFILES[p] === undefined) {
      const guess = didYouMean(p, Object.keys(PROFILES));
      return usageError(
        io,
        "demo",
        `unknown profile '${p}'${guess ? ` (did you mean '${guess}'?)` : ""}; see 'dmabuf list profiles'`,
      );
    }
  }
  const size = values.size === undefined ? 64 * 1024 : Number(values.size);
  if (!Number.isInteger(size) || size < 64 || size > 64 * 1024 * 1024) {
    return usageError(
      io,
      "demo",
      `--size must be a whole number of bytes from 64 to 67108864, not '${values.size}'`,
    );
  }
  return demo(io, profiles, size);
}

async function schemaCommand(argv: string[], io: CliIo): Promise<number> {
  let help: boolean | undefined;
  try {
    help = parseArgs({
      args: argv,
      options: { help: { type: "boolean", short: "h" } },
      allowPositionals: false,
      strict: true,
    }).values.help;
  } catch (e) {
    return usageError(io, "schema", argError(e));
  }
  io.out(help ? SCHEMA_HELP : (await import("../scenarios/schema.js")).scenarioJsonSchemaText());
  return EXIT_OK;
}

async function helpCommand(argv: string[], io: CliIo): Promise<number> {
  const [topic, extra] = argv;
  if (topic === "--help" || topic === "-h") {
    io.out(COMMAND_HELP["help"]!);
    return EXIT_OK;
  }
  if (extra !== undefined) return usageError(io, "help", `unexpected argument '${extra}'`);
  if (topic === undefined) {
    io.out(MAIN_HELP);
    return EXIT_OK;
  }
  if (topic === "sweep") return (await import("./sweep.js")).sweepCommand(["--help"], io);
  if (topic === "merge") return (await import("./sweep.js")).mergeCommand(["--help"], io);
  const text = COMMAND_HELP[topic];
  if (text === undefined) {
    const guess = didYouMean(topic, COMMANDS);
    return usageError(
      io,
      "help",
      `unknown command '${topic}'${guess ? ` (did you mean '${guess}'?)` : ""}`,
    );
  }
  io.out(text);
  return EXIT_OK;
}

async function dispatch(argv: string[], io: CliIo, deps: MainDeps): Promise<number> {
  const first = argv[0];
  if (first === undefined) {
    return (await import("./default-job.js")).defaultJobCommand([], io);
  }
  if (first === "--help" || first === "-h") {
    io.out(MAIN_HELP);
    return EXIT_OK;
  }
  if (first === "--version" || first === "-V") {
    io.out(`dmabuf ${VERSION}\n`);
    return EXIT_OK;
  }
  // Options without a command belong to the main job (`dmabuf --quick`).
  if (first.startsWith("-")) {
    return (await import("./default-job.js")).defaultJobCommand(argv, io);
  }
  const rest = argv.slice(1);
  switch (first) {
    case "run":
      return (await import("./run.js")).runCommand(rest, io, deps.runPipeline);
    case "sweep":
      return (await import("./sweep.js")).sweepCommand(rest, io);
    case "mutate":
      return (await import("./mutate.js")).mutateCommand(rest, io);
    case "merge":
      return (await import("./sweep.js")).mergeCommand(rest, io);
    case "list":
      return (await import("./list.js")).listCommand(rest, io);
    case "schema":
      return schemaCommand(rest, io);
    case "demo":
      return demoCommand(rest, io);
    case "help":
      return helpCommand(rest, io);
    default: {
      const guess = didYouMean(first, COMMANDS);
      return usageError(
        io,
        undefined,
        `unknown command '${first}'${guess ? ` (did you mean '${guess}'?)` : ""}`,
      );
    }
  }
}

/**
 * Runs the `dmabuf` command with `argv` (without the program name) on `io`; resolves
 * with the exit status. A {@link ScenarioError} anywhere is printed as its message
 * alone (exit 2).
 */
export async function main(argv: string[], io: CliIo, deps: MainDeps = {}): Promise<number> {
  try {
    return await dispatch(argv, io, deps);
  } catch (e) {
    // Whatever threw a ScenarioError has loaded its module already.
    const { ScenarioError } = await import("../scenarios/scenario.js");
    if (e instanceof ScenarioError) {
      io.err(`${e.message}\n`);
      return EXIT_BAD_INPUT;
    }
    throw e;
  }
}

/** Whether this module is the process's entry point (not imported by a test or worker). */
function isMainModule(): boolean {
  const entry = process.argv[1];
  if (entry === undefined) return false;
  try {
    return realpathSync(entry) === realpathSync(fileURLToPath(import.meta.url));
  } catch {
    return false;
  }
}

if (isMainModule()) {
  // A closed pipe (`dmabuf list | head`) ends output quietly, as it does for any Unix tool.
  process.stdout.on("error", (e: NodeJS.ErrnoException) => {
    if (e.code === "EPIPE") process.exit(process.exitCode ?? 0);
    throw e;
  });
  main(process.argv.slice(2), processIo()).then(
    (code) => {
      process.exitCode = code;
    },
    (e: unknown) => {
      process.stderr.write(`dmabuf: internal error: ${(e as Error)?.stack ?? String(e)}\n`);
      process.exitCode = EXIT_BAD_INPUT;
    },
  );
}
