/**
 * `dmabuf run SCENARIO`: one scenario file, one pipeline run, one report. The exit
 * status makes it a CI check: 0 coherent, 1 violations or wrong frames, 2 bad input.
 */

import { writeFileSync } from "node:fs";
import { KernelError } from "../errno.js";
import { SimulationError } from "../machine/outcome.js";
import type { PipelineResult, PipelineSpec } from "../pipelines/types.js";
import { toJsonReport } from "../report/json.js";
import { formatRunReport } from "../report/terminal.js";
import {
  formatFieldPath,
  parseFieldPath,
  parseFieldValue,
  parseScenario,
  readScenarioData,
  type Scenario,
  ScenarioError,
  type ScenarioIssue,
  scenarioToSpec,
  setScenarioField,
} from "../scenarios/scenario.js";
import { geometryProblem } from "../sweep/validate.js";
import { parseCommandArgs, usageError } from "./args.js";
import { RUN_HELP } from "./help.js";
import { type CliIo, EXIT_BAD_INPUT, EXIT_OK, EXIT_VIOLATIONS } from "./io.js";
import { resolveScenarioArgument } from "./list.js";
import { OutputPathError, outputPath, prepareOutput } from "./output.js";

export type PipelineRunner = (spec: PipelineSpec) => PipelineResult;

/** A field set from the command line, and how it was written (for error messages). */
export interface FieldOverride {
  readonly path: string;
  readonly value: unknown;
  readonly origin: string;
}

/** Parses `--set FIELD=VALUE` into an override. @throws ScenarioError when there is no "=". */
export function parseSetArgument(arg: string): FieldOverride {
  const eq = arg.indexOf("=");
  if (eq <= 0) {
    throw new ScenarioError([
      {
        file: `--set ${arg}`,
        line: undefined,
        column: undefined,
        field: undefined,
        problem: "expected FIELD=VALUE, e.g. --set pipeline.strategy=coherent",
      },
    ]);
  }
  const path = arg.slice(0, eq).trim();
  parseFieldPath(path);
  return { path, value: parseFieldValue(arg.slice(eq + 1)), origin: `--set ${arg}` };
}

/**
 * Applies command-line overrides to scenario data and validates it. Problems in an
 * overridden field are reported against the option that set it, not the file's line.
 */
export function applyOverrides(
  src: { file: string; text: string; data: unknown },
  overrides: readonly FieldOverride[],
): Scenario {
  let data = src.data;
  for (const o of overrides) {
    try {
      data = setScenarioField(data, o.path, o.value);
    } catch (e) {
      if (e instanceof ScenarioError) throw relocate(e, overrides);
      throw e;
    }
  }
  try {
    return parseScenario(data, src);
  } catch (e) {
    if (e instanceof ScenarioError && overrides.length > 0) throw relocate(e, overrides);
    throw e;
  }
}

function relocate(e: ScenarioError, overrides: readonly FieldOverride[]): ScenarioError {
  const fields = overrides.map((o) => ({ field: formatFieldPath(parseFieldPath(o.path)), o }));
  const issues: ScenarioIssue[] = e.issues.map((i) => {
    const hit = [...fields]
      .reverse()
      .find(
        ({ field }) =>
          i.field !== undefined &&
          (i.field === field || i.field.startsWith(`${field}.`) || i.field.startsWith(`${field}[`)),
      );
    return hit ? { ...i, file: hit.o.origin, line: undefined, column: undefined } : i;
  });
  return new ScenarioError(issues);
}

/** Errors from building the machine or the pipeline that mean the scenario asks for the impossible. */
function isConfigurationError(e: unknown): e is Error {
  return e instanceof RangeError || e instanceof KernelError;
}

/**
 * The scenario a command names (a file, or a bundled one by name) with --profile,
 * --frames and --set applied, and the overrides (so later errors can be blamed on them).
 * A ScenarioError is printed and becomes exit status 2.
 */
export function loadScenarioArgument(
  arg: string,
  flags: { readonly profile?: string; readonly frames?: string; readonly set?: string[] },
  io: CliIo,
): { scenario: Scenario; overrides: readonly FieldOverride[] } | number {
  try {
    const src = readScenarioData(resolveScenarioArgument(arg, io.cwd), io.cwd);
    const overrides: FieldOverride[] = [];
    if (flags.profile !== undefined) {
      overrides.push({
        path: "machine.profile",
        value: flags.profile,
        origin: `--profile ${flags.profile}`,
      });
    }
    if (flags.frames !== undefined) {
      overrides.push({
        path: "pipeline.frames",
        value: parseFieldValue(flags.frames),
        origin: `--frames ${flags.frames}`,
      });
    }
    for (const s of flags.set ?? []) overrides.push(parseSetArgument(s));
    return { scenario: applyOverrides(src, overrides), overrides };
  } catch (e) {
    if (e instanceof ScenarioError) {
      io.err(`${e.message}\n`);
      return EXIT_BAD_INPUT;
    }
    throw e;
  }
}

/** `dmabuf run SCENARIO [options]`. `runner` replaces the pipeline runner (tests). */
export async function runCommand(
  argv: string[],
  io: CliIo,
  runner?: PipelineRunner,
): Promise<number> {
  const options = {
    help: { type: "boolean", short: "h" },
    json: { type: "boolean" },
    trace: { type: "string" },
    html: { type: "string" },
    profile: { type: "string" },
    frames: { type: "string" },
    set: { type: "string", multiple: true },
    "no-color": { type: "boolean" },
  } as const;
  const usage = (msg: string): number => usageError(io, "run", msg);
  const parsed = parseCommandArgs("run", argv, options, RUN_HELP, io);
  if (typeof parsed === "number") return parsed;
  const { values, positionals } = parsed;
  if (positionals.length === 0) return usage("missing SCENARIO (a .yaml or .json file)");
  if (positionals.length > 1) return usage(`unexpected argument '${positionals[1]}'`);

  const loaded = loadScenarioArgument(positionals[0]!, values, io);
  if (typeof loaded === "number") return loaded;
  const { scenario, overrides } = loaded;

  // Output paths are checked before the run (bare names go into out/).
  const tracePath =
    values.trace !== undefined ? outputPath(io.cwd, values.trace, values.trace) : undefined;
  const htmlPath =
    values.html !== undefined ? outputPath(io.cwd, values.html, values.html) : undefined;
  try {
    if (tracePath !== undefined) prepareOutput(tracePath, "trace");
    if (htmlPath !== undefined) prepareOutput(htmlPath, "HTML report");
  } catch (e) {
    if (!(e instanceof OutputPathError)) throw e;
    io.err(`dmabuf run: ${e.message}\n`);
    return EXIT_BAD_INPUT;
  }

  const wantTrace = values.trace !== undefined || values.html !== undefined;
  const spec = scenarioToSpec(scenario, wantTrace ? { trace: true } : {});
  // A frame the display cannot scan out is refused before anything is allocated.
  const geometry = geometryProblem(spec);
  if (geometry !== undefined) {
    const field = /^buffers\.\w+/.exec(geometry)?.[0];
    const origin = [...overrides].reverse().find((o) => field?.startsWith(o.path))?.origin;
    io.err(`${origin ?? `dmabuf run: ${positionals[0]}`}: ${geometry}\n`);
    return EXIT_BAD_INPUT;
  }
  const run = runner ?? (await import("../pipelines/run.js")).runPipeline;
  let result: PipelineResult;
  try {
    result = run(spec);
  } catch (e) {
    if (isConfigurationError(e)) {
      io.err(`dmabuf run: ${positionals[0]}: the pipeline cannot run: ${e.message}\n`);
      return EXIT_BAD_INPUT;
    }
    if (e instanceof SimulationError) {
      io.err(`dmabuf run: ${positionals[0]}: the run cannot finish (${e.kind}): ${e.message}\n`);
      return EXIT_BAD_INPUT;
    }
    throw e;
  }

  if (values.json) {
    io.out(`${JSON.stringify(toJsonReport(result), null, 2)}\n`);
  } else {
    const color = io.isTTY && values["no-color"] !== true && process.env["NO_COLOR"] === undefined;
    io.out(`${formatRunReport(result, { color })}\n`);
  }

  const write = (path: string, text: string, what: string): boolean => {
    try {
      writeFileSync(path, text);
      io.err(`dmabuf run: wrote ${what} to ${path}\n`);
      return true;
    } catch (e) {
      io.err(`dmabuf run: cannot write ${path}: ${(e as Error).message}\n`);
      return false;
    }
  };
  if (tracePath !== undefined) {
    const { traceJson } = await import("../report/trace.js");
    if (!write(tracePath, traceJson(result), "the trace (open it in ui.perfetto.dev)")) {
      return EXIT_BAD_INPUT;
    }
  }
  if (htmlPath !== undefined) {
    const { renderRunHtml } = await import("../report/html.js");
    if (!write(htmlPath, await renderRunHtml(result), "the HTML report")) return EXIT_BAD_INPUT;
  }
  return result.verdict === "coherent" ? EXIT_OK : EXIT_VIOLATIONS;
}
