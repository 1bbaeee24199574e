/**
 * Where a command writes, so commands can be run in-process by tests and by the sweep
 * workers exactly as from a shell.
 */

export interface CliIo {
  out(text: string): void;
  err(text: string): void;
  /** Whether stdout is a terminal (colour, progress bars). */
  readonly isTTY: boolean;
  /** Directory relative paths are resolved against. */
  readonly cwd: string;
}

/** The process's own stdout and stderr. */
export function processIo(): CliIo {
  return {
    out: (t) => process.stdout.write(t),
    err: (t) => process.stderr.write(t),
    isTTY: process.stdout.isTTY === true,
    cwd: process.cwd(),
  };
}

/** Exit status of every command: 0 coherent, 1 violations or wrong frames, 2 bad input. */
export const EXIT_OK = 0;
export const EXIT_VIOLATIONS = 1;
export const EXIT_BAD_INPUT = 2;
