/**
 * `dmabuf list [SECTION]`: what a scenario file can name, with a line on each.
 */

import { existsSync, readdirSync } from "node:fs";
import { basename, dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { NAMED_FAULTS } from "../kernel/fault-inject.js";
import { PROFILES } from "../machine/profiles.js";
import {
  GRAPH_DEVICE_KINDS,
  GRAPH_GPU_OPS,
  GRAPH_KINDS_AVAILABLE,
  GRAPH_NPU_OPS,
} from "../pipelines/graph.js";
import type { GraphDeviceKind } from "../pipelines/types.js";
import { MAPPING_STRATEGIES, PIPELINE_FAULTS, PIPELINE_KINDS } from "../pipelines/types.js";
import { didYouMean, readScenarioData, ScenarioError } from "../scenarios/scenario.js";
import {
  BUFFER_SOURCES,
  DEVICE_DESCRIPTIONS,
  FAULT_DESCRIPTIONS,
  GRAPH_BUFFER_SOURCES,
  HEAP_DESCRIPTIONS,
  PIPELINE_DESCRIPTIONS,
  SOURCE_DESCRIPTIONS,
  STRATEGY_DESCRIPTIONS,
} from "../scenarios/schema.js";
import { argError, LIST_HELP } from "./help.js";
import { type CliIo, EXIT_BAD_INPUT, EXIT_OK } from "./io.js";

export const LIST_SECTIONS = [
  "profiles",
  "scenarios",
  "heaps",
  "devices",
  "strategies",
  "pipelines",
  "faults",
  "sources",
  "kinds",
] as const;
export type ListSection = (typeof LIST_SECTIONS)[number];

const SCENARIO_DIR = join("examples", "scenarios");

/**
 * The bundled example scenarios' directory: found by walking up from this module (the
 * package root holds examples/scenarios), else under `cwd`.
 */
export function examplesDir(cwd: string): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const candidate = join(dir, SCENARIO_DIR);
    if (existsSync(candidate)) return candidate;
    const up = dirname(dir);
    if (up === dir) break;
    dir = up;
  }
  return resolve(cwd, SCENARIO_DIR);
}

/** The example scenario files, sorted by name. */
export function exampleScenarioFiles(cwd: string): string[] {
  const dir = examplesDir(cwd);
  if (!existsSync(dir)) return [];
  return readdirSync(dir)
    .filter((f) => /\.(ya?ml|json)$/i.test(f))
    .sort()
    .map((f) => join(dir, f));
}

/** The path of a bundled example named without its extension ("camera-display"), if any. */
export function findExampleScenario(name: string, cwd: string): string | undefined {
  return exampleScenarioFiles(cwd).find((f) => /([^/\\]+)\.(ya?ml|json)$/i.exec(f)?.[1] === name);
}

/**
 * What a SCENARIO argument names: a file as given when it exists; else a bundled
 * scenario by name, with or without its extension (`camera-gpu-display`,
 * `my-soc.yaml`), so the names the docs use work from any directory.
 * @throws ScenarioError when neither exists, with the closest bundled name.
 */
export function resolveScenarioArgument(arg: string, cwd: string): string {
  if (existsSync(resolve(cwd, arg))) return arg;
  const bare = /^[^/\\]+$/.test(arg);
  if (bare) {
    const name = arg.replace(/\.(ya?ml|json)$/i, "");
    const example = findExampleScenario(name, cwd);
    if (example !== undefined) return example;
  }
  const names = exampleScenarioFiles(cwd).map((f) => basename(f).replace(/\.(ya?ml|json)$/i, ""));
  const guess = bare ? didYouMean(arg.replace(/\.(ya?ml|json)$/i, ""), names) : undefined;
  throw new ScenarioError([
    {
      file: arg,
      line: undefined,
      column: undefined,
      field: undefined,
      problem: `cannot read the scenario: no such file${bare ? ", and no bundled scenario of that name" : ""}${guess !== undefined ? ` (did you mean '${guess}'?)` : ""}; see 'dmabuf list scenarios'`,
    },
  ]);
}

/** Words wrapped to `width`, continuation lines indented by `indent`. */
function wrap(text: string, width: number, indent: number): string {
  const words = text.split(/\s+/).filter(Boolean);
  const lines: string[] = [];
  let cur = "";
  for (const w of words) {
    if (cur !== "" && cur.length + 1 + w.length > width) {
      lines.push(cur);
      cur = w;
    } else cur = cur === "" ? w : `${cur} ${w}`;
  }
  if (cur !== "") lines.push(cur);
  return lines.join(`\n${" ".repeat(indent)}`);
}

/** Rows of (name, [other columns...], description), the description wrapped. */
function section(title: string, rows: readonly (readonly string[])[]): string {
  const cols = rows[0]?.length ?? 0;
  const widths: number[] = [];
  for (let i = 0; i < cols - 1; i++) widths.push(Math.max(...rows.map((r) => r[i]!.length)));
  const indent = 2 + widths.reduce((s, w) => s + w + 2, 0);
  const descWidth = Math.max(40, 100 - indent);
  const lines = rows.map((r) => {
    const lead = r
      .slice(0, cols - 1)
      .map((c, i) => c.padEnd(widths[i]!))
      .join("  ");
    return `  ${lead}  ${wrap(r[cols - 1]!, descWidth, indent)}`.trimEnd();
  });
  return `${title}\n${lines.join("\n")}\n`;
}

function scenarioRows(cwd: string): string[][] {
  return exampleScenarioFiles(cwd).map((f) => {
    const name = /([^/\\]+)\.(ya?ml|json)$/i.exec(f)?.[1] ?? f;
    let description = "";
    try {
      const { data } = readScenarioData(f);
      const d = (data as { description?: unknown } | null)?.description;
      description = typeof d === "string" ? d : "";
    } catch (e) {
      if (!(e instanceof ScenarioError)) throw e;
      description = `(invalid: ${e.message.split("\n")[0]})`;
    }
    return [name, description];
  });
}

/** The text of one section. */
export function listSection(name: ListSection, cwd: string): string {
  switch (name) {
    case "profiles":
      return section(
        "Profiles (machine.profile)",
        Object.values(PROFILES).map((p) => [p.name, p.arch, p.title]),
      );
    case "scenarios": {
      const rows = scenarioRows(cwd);
      const dir = examplesDir(cwd);
      if (rows.length === 0) return `Scenarios\n  none found in ${dir}\n`;
      return section(`Scenarios (${dir}; run one with 'dmabuf run NAME')`, rows);
    }
    case "heaps":
      return section(
        'Heaps (buffers.heap, with buffers.source "dma-heap")',
        Object.entries(HEAP_DESCRIPTIONS).map(([k, v]) => [k, v]),
      );
    case "devices":
      return section(
        "Devices (devices.NAME: coherent, dmaBits, iommu, bandwidth)",
        Object.entries(DEVICE_DESCRIPTIONS).map(([k, v]) => [k, v]),
      );
    case "strategies":
      return section(
        "Mapping strategies (pipeline.strategy)",
        MAPPING_STRATEGIES.map((s) => [s, STRATEGY_DESCRIPTIONS[s]]),
      );
    case "pipelines":
      return section(
        "Pipelines (pipeline.kind)",
        PIPELINE_KINDS.map((k) => [k, PIPELINE_DESCRIPTIONS[k]]),
      );
    case "faults":
      return `${section(
        "Deliberate faults (pipeline.fault)",
        PIPELINE_FAULTS.map((f) => [f, FAULT_DESCRIPTIONS[f]]),
      )}\n${section(
        "Named kernel faults (pipeline.faults, docs/hazards.md)",
        NAMED_FAULTS.map((f) => [f.name, `${f.description} (${f.source})`]),
      )}`;
    case "sources":
      return section(
        "Buffer sources (buffers.source)",
        BUFFER_SOURCES.map((s) => [s, SOURCE_DESCRIPTIONS[s]]),
      );
    case "kinds":
      return section(
        `Graph device kinds (graph.devices.NAME.kind; pools: ${GRAPH_BUFFER_SOURCES.join(", ")}; gpu ops: ${GRAPH_GPU_OPS.join(", ")}; npu ops: ${GRAPH_NPU_OPS.join(", ")})`,
        Object.entries(GRAPH_DEVICE_KINDS).map(([k, v]) => [
          k,
          GRAPH_KINDS_AVAILABLE.has(k as GraphDeviceKind) ? v : `(no driver yet) ${v}`,
        ]),
      );
  }
}

/** `dmabuf list [SECTION]`. */
export function listCommand(argv: string[], io: CliIo): number {
  let positionals: string[];
  let help: boolean | undefined;
  try {
    const parsed = parseArgs({
      args: argv,
      options: { help: { type: "boolean", short: "h" } },
      allowPositionals: true,
      strict: true,
    });
    positionals = parsed.positionals;
    help = parsed.values.help;
  } catch (e) {
    io.err(`dmabuf list: ${argError(e)}\nTry 'dmabuf list --help'.\n`);
    return EXIT_BAD_INPUT;
  }
  if (help) {
    io.out(LIST_HELP);
    return EXIT_OK;
  }
  if (positionals.length > 1) {
    io.err(`dmabuf list: unexpected argument '${positionals[1]}'\nTry 'dmabuf list --help'.\n`);
    return EXIT_BAD_INPUT;
  }
  const want = positionals[0];
  if (want === undefined) {
    io.out(LIST_SECTIONS.map((s) => listSection(s, io.cwd)).join("\n"));
    return EXIT_OK;
  }
  if (!(LIST_SECTIONS as readonly string[]).includes(want)) {
    const guess = didYouMean(want, LIST_SECTIONS);
    io.err(
      `dmabuf list: unknown section '${want}'${guess ? ` (did you mean '${guess}'?)` : ""}; known: ${LIST_SECTIONS.join(", ")}\nTry 'dmabuf list --help'.\n`,
    );
    return EXIT_BAD_INPUT;
  }
  io.out(listSection(want as ListSection, io.cwd));
  return EXIT_OK;
}
