/**
 * Argument parsing every subcommand shares: node:util parseArgs (strict, positionals
 * allowed), one usage-error format, and --help.
 */

import { type ParseArgsConfig, parseArgs } from "node:util";
import { argError } from "./help.js";
import { type CliIo, EXIT_BAD_INPUT, EXIT_OK } from "./io.js";

type Options = NonNullable<ParseArgsConfig["options"]>;
export type ParsedArgs<O extends Options> = ReturnType<
  typeof parseArgs<{ args: string[]; options: O; allowPositionals: true }>
>;

/** A usage error as every command prints it (what is wrong, where to read more); exit status 2. */
export function usageError(io: CliIo, cmd: string | undefined, msg: string): number {
  const name = cmd ? `dmabuf ${cmd}` : "dmabuf";
  io.err(`${name}: ${msg}\nTry '${name} --help'.\n`);
  return EXIT_BAD_INPUT;
}

/**
 * Parses `dmabuf CMD`'s arguments. Returns the exit status instead of the arguments when
 * they are wrong (the usage error printed) or when --help asked for `help` (printed).
 */
export function parseCommandArgs<O extends Options>(
  cmd: string,
  argv: string[],
  options: O,
  help: string,
  io: CliIo,
): ParsedArgs<O> | number {
  let parsed: ParsedArgs<O>;
  try {
    parsed = parseArgs({ args: argv, options, allowPositionals: true, strict: true });
  } catch (e) {
    return usageError(io, cmd, argError(e));
  }
  if ((parsed.values as { help?: boolean }).help) {
    io.out(help);
    return EXIT_OK;
  }
  return parsed;
}
