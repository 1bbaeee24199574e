/**
 * `dmabuf mutate SCENARIO`: mutation testing of the checker on one scenario. Every
 * cache-maintenance and sync call the run makes is left out in turn (and run with the
 * opposite direction, and over half its range); each mutant is classified as caught by
 * the checker, caught only by wrong bytes, harmless (with the rule that makes it so) or
 * missed. Exit status: 0 when no mutant is missed or caught only by the frame CRCs,
 * 1 otherwise, 2 bad input.
 */

import { KernelError } from "../errno.js";
import type { FaultAction } from "../machine/fault-inject.js";
import { SimulationError } from "../machine/outcome.js";
import { type MutationReport, mutatePipeline } from "../pipelines/mutate.js";
import { scenarioToSpec } from "../scenarios/scenario.js";
import { parseCommandArgs, usageError } from "./args.js";
import { type CliIo, EXIT_BAD_INPUT, EXIT_OK, EXIT_VIOLATIONS } from "./io.js";
import { loadScenarioArgument } from "./run.js";

export const MUTATE_HELP = `Usage: dmabuf mutate SCENARIO... [options]

Mutation testing of the checker: removes, in turn, every cache-maintenance and sync
call the scenario's run makes (and flips each direction, shrinks each range), runs each
mutant and classifies it:
  caught            a violation the unmutated run does not have
  caught-by-bytes   no new violation, but the frames are wrong (only the CRC noticed)
  harmless          same frames, no new violation, and the call did nothing in the
                    unmutated run (the rule that makes it so is printed)
  missed            the call did work, and its absence went unreported
With several scenarios (examples/scenarios/*.yaml), each report and then the total.

Options:
  --frames N          frames per run (default: the scenario's, at most 3)
  --set FIELD=VALUE   change a scenario field (as for dmabuf run)
  --actions LIST      mutations to try: omit,flip,shrink (default), also swap,repeat
  --json              the report as JSON
  -h, --help          this text

Exit status: 0 no mutant missed or caught only by wrong bytes, 1 otherwise, 2 bad input.
`;

const ACTIONS: readonly FaultAction[] = ["omit", "flip", "shrink", "swap", "repeat"];

/** `dmabuf mutate SCENARIO [options]`. */
export async function mutateCommand(argv: string[], io: CliIo): Promise<number> {
  const options = {
    help: { type: "boolean", short: "h" },
    json: { type: "boolean" },
    frames: { type: "string" },
    actions: { type: "string" },
    set: { type: "string", multiple: true },
  } as const;
  const usage = (msg: string): number => usageError(io, "mutate", msg);
  const parsed = parseCommandArgs("mutate", argv, options, MUTATE_HELP, io);
  if (typeof parsed === "number") return parsed;
  const { values, positionals } = parsed;
  if (positionals.length === 0)
    return usage("expected a SCENARIO (a .yaml or .json file), or several");
  const actions = (values.actions ?? "omit,flip,shrink").split(",").map((a) => a.trim());
  for (const a of actions) {
    if (!ACTIONS.includes(a as FaultAction))
      return usage(`unknown mutation '${a}' (known: ${ACTIONS.join(", ")})`);
  }
  const reports: MutationReport[] = [];
  for (const arg of positionals) {
    const loaded = loadScenarioArgument(arg, values, io);
    if (typeof loaded === "number") return loaded;
    const spec = scenarioToSpec(loaded.scenario);
    const frames = values.frames !== undefined ? spec.frames : Math.min(spec.frames ?? 8, 3);
    try {
      reports.push(
        mutatePipeline(
          { ...spec, frames },
          {
            actions: actions as FaultAction[],
            onMutant: (_m, done, total) => {
              if (io.isTTY) io.err(`\rdmabuf mutate: ${arg}: ${done}/${total} mutants`);
            },
          },
        ),
      );
      if (io.isTTY) io.err("\n");
    } catch (e) {
      if (e instanceof RangeError || e instanceof KernelError || e instanceof SimulationError) {
        io.err(`dmabuf mutate: ${arg}: the pipeline cannot run: ${e.message}\n`);
        return EXIT_BAD_INPUT;
      }
      throw e;
    }
  }
  if (values.json)
    io.out(`${JSON.stringify(reports.length === 1 ? reports[0] : reports, null, 2)}\n`);
  else {
    io.out(reports.map(formatMutationReport).join(""));
    if (reports.length > 1) io.out(formatMutationTotal(reports));
  }
  const bad = reports.reduce((n, r) => n + r.counts.missed + r.counts["caught-by-bytes"], 0);
  return bad === 0 ? EXIT_OK : EXIT_VIOLATIONS;
}

/** The total over several scenarios: mutants, call sites (distinct), and each class. */
export function formatMutationTotal(reports: readonly MutationReport[]): string {
  const c = { caught: 0, "caught-by-bytes": 0, harmless: 0, missed: 0 };
  let mutants = 0;
  const sites = new Set<string>();
  for (const r of reports) {
    mutants += r.mutants.length;
    for (const s of r.sites) sites.add(s.id);
    for (const k of Object.keys(c) as (keyof typeof c)[]) c[k] += r.counts[k];
  }
  const harmful = mutants - c.harmless;
  const score = harmful === 0 ? 1 : c.caught / harmful;
  return `total over ${reports.length} scenarios: ${mutants} mutants of ${sites.size} distinct call sites; ${(score * 100).toFixed(1)}% caught (${c.caught} caught, ${c["caught-by-bytes"]} caught only by wrong bytes, ${c.harmless} harmless, ${c.missed} missed)\n`;
}
/** The terminal form: one line per mutant, grouped by site, and the score. */
export function formatMutationReport(r: MutationReport): string {
  const lines: string[] = [];
  lines.push(
    `mutate ${r.name}: ${r.mutants.length} mutants of ${r.sites.length} call sites (unmutated run ${r.baseline})`,
  );
  let site = "";
  for (const m of r.mutants) {
    if (m.site !== site) {
      site = m.site;
      lines.push(`  ${site}`);
    }
    const what =
      m.error !== undefined
        ? `kernel refused: ${m.error}`
        : m.class === "caught"
          ? `${m.newViolations.join(", ")}${m.wrongFrames > 0 ? `; ${m.wrongFrames} frame(s) wrong` : ""}`
          : m.class === "caught-by-bytes"
            ? `${m.wrongFrames} frame(s) wrong, no violation`
            : (m.explanation ?? "");
    lines.push(`    ${m.action.padEnd(6)} ${m.class.padEnd(15)} ${what}`);
  }
  const c = r.counts;
  lines.push(
    `score: ${(r.score * 100).toFixed(1)}% caught (${c.caught} caught, ${c["caught-by-bytes"]} caught only by wrong bytes, ${c.harmless} harmless, ${c.missed} missed)`,
  );
  return `${lines.join("\n")}\n`;
}
