/**
 * Help texts of the `dmabuf` command and its subcommands (`dmabuf help [COMMAND]`,
 * `dmabuf COMMAND --help`).
 */

/** The package version `--version` prints. */
export const VERSION = "0.1.0";

export const MAIN_HELP = `dmabuf - the Linux dma-buf buffer-sharing system as an executable model

Usage:
  dmabuf [--quick] [--quiet] [--html FILE] [--jobs N]
      The main job: a camera -> GPU -> display pipeline shared four ways (coherent,
      streaming, whole-cache, cache hints) on a Cortex-A9 and a 64 MiB-cache x86-64,
      over buffer sizes from 64 KiB to 32 MiB; prints the cost per frame and the
      per-line / whole-cache crossover and writes an HTML report.
  dmabuf run SCENARIO [--json] [--trace FILE] [--html FILE] [--profile NAME]
                      [--frames N] [--set FIELD=VALUE]...
      Run one scenario file (YAML or JSON) and report coherency, frame CRCs and costs.
  dmabuf sweep SCENARIO --vary FIELD=V1,V2,... [...]
      Run a scenario over a grid of field values ('dmabuf sweep --help').
  dmabuf merge SHARD_FILE... [--csv FILE] [--json FILE] [--html FILE]
      Put the shards of a sweep run with --shard K/N back together.
  dmabuf list [profiles|scenarios|heaps|devices|strategies|pipelines|faults|sources|kinds]
      What can be named in a scenario.
  dmabuf schema
      Print the JSON Schema of scenario files.
  dmabuf demo [--profile NAME]... [--size BYTES]
      The stale-data demonstration with the DMA mapping API alone.
  dmabuf help [COMMAND]
      This text, or a command's.
  dmabuf --version

Exit status: 0 coherent, 1 violations or wrong frames, 2 bad input (a scenario error
is printed as file:line:column: field: problem).
Scenario files: docs/scenarios.md; examples: 'dmabuf list scenarios'.
`;

export const RUN_HELP = `Usage: dmabuf run SCENARIO [options]

Runs the pipeline a scenario file describes on a fresh simulated machine and reports:
the verdict, every violation the coherency checker found (grouped, with the call that
was missing), the CRC of every frame the display scanned out against the expected one,
and the virtual time spent in cache maintenance, DMA, CPU access, bounce copies, IOMMU
and waiting, per frame and in total.

SCENARIO is a .yaml/.yml/.json file, or the name of a bundled example
('dmabuf list scenarios'), e.g. 'dmabuf run camera-display'.

Options:
  --json              Print the JSON report on stdout instead of the terminal report.
  --trace FILE        Also write a Chrome/Perfetto trace of the run (open in ui.perfetto.dev).
  --html FILE         Also write an HTML report with plots.
  --profile NAME      Override machine.profile ('dmabuf list profiles').
  --frames N          Override pipeline.frames.
  --set FIELD=VALUE   Override any field by its dotted path; repeatable. VALUE is read as
                      YAML: --set pipeline.strategy=coherent --set machine.cmaBytes=128MiB
                      --set devices.gpu.coherent=true --set machine.cache.levels.1.ways=8
  --no-color          No colours even on a terminal.
  -h, --help          This text.

Exit status: 0 coherent; 1 violations or wrong frames; 2 bad input (the scenario's
errors, one per line as file:line:column: field: problem, and no stack trace).
`;

export const LIST_HELP = `Usage: dmabuf list [SECTION]

Lists what a scenario can name. SECTION is one of:
  profiles     architecture profiles (machine.profile)
  scenarios    the bundled example scenarios (examples/scenarios) and what they show
  heaps        DMA heaps (buffers.heap)
  devices      the pipeline's devices (devices.camera, devices.gpu, devices.display)
  strategies   mapping strategies (pipeline.strategy)
  pipelines    pipeline kinds (pipeline.kind)
  faults       deliberate faults (pipeline.fault)
  sources      buffer sources (buffers.source)
  kinds        device kinds of a graph (graph.devices.NAME.kind)
Without SECTION, all of them.

Options:
  -h, --help   This text.
`;

export const SCHEMA_HELP = `Usage: dmabuf schema

Prints the JSON Schema (draft 2020-12) of scenario files, generated from the validator
itself; the committed copy is schema/scenario.schema.json. Editors with the YAML
language server validate a scenario that starts with
  # yaml-language-server: $schema=<path to>/schema/scenario.schema.json

Options:
  -h, --help   This text.
`;

export const DEMO_HELP = `Usage: dmabuf demo [--profile NAME]... [--size BYTES]

The stale-data demonstration: a device writes a frame the CPU has cached, and the CPU
fills a buffer a device reads, each with and without the DMA API sync Linux requires,
on every architecture profile (or those given).

Options:
  --profile NAME   A profile to run on (repeatable; default: cortex-a9, arm64, riscv64, x86-64).
  --size BYTES     Buffer size, 64 to 67108864 (default 65536).
  -h, --help       This text.

Exit status: 0 when every synced case is coherent and every unsynced case that produced
wrong bytes was caught by the checker; 1 otherwise; 2 for bad input.
`;

export const HELP_HELP = `Usage: dmabuf help [COMMAND]

Prints the help of the dmabuf command, or of COMMAND (run, sweep, list, schema, demo).
`;

/** Help of the commands main.ts answers itself (sweep and the main job print their own). */
export const COMMAND_HELP: Readonly<Record<string, string>> = {
  run: RUN_HELP,
  list: LIST_HELP,
  schema: SCHEMA_HELP,
  demo: DEMO_HELP,
  help: HELP_HELP,
};

/** parseArgs' error as one short line naming the option. */
export function argError(e: unknown): string {
  const err = e as { code?: string; message?: string };
  const m = /'([^']+)'/.exec(err.message ?? "");
  switch (err.code) {
    case "ERR_PARSE_ARGS_UNKNOWN_OPTION":
      return `unknown option '${m?.[1] ?? "?"}'`;
    case "ERR_PARSE_ARGS_INVALID_OPTION_VALUE":
      return (err.message ?? "invalid option value").split(".")[0]!.replace(/^Option /, "option ");
    case "ERR_PARSE_ARGS_UNEXPECTED_POSITIONAL":
      return `unexpected argument '${m?.[1] ?? "?"}'`;
    default:
      return (err.message ?? String(e)).split("\n")[0]!;
  }
}
