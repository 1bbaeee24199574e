/**
 * Named simulation outcomes: the ways a run can end that are not a Linux errno because
 * on a real machine they would not end at all (a process blocked forever, a transfer
 * that would take years) or because the run outgrew the budget it was given.
 *
 * Linux has no return value for "this poll(-1) can never be satisfied": the task just
 * sleeps. The model cannot sleep forever, so it stops the run with a SimulationError
 * whose `kind` says which of these happened and whose message names the waiter.
 */

/** What ended the run. */
export type SimulationErrorKind =
  /** A blocking call with no timeout whose condition nothing scheduled can ever make true. */
  | "would-block-forever"
  /** A lock or other kernel object that only its own blocked holder could release. */
  | "deadlock"
  /** The virtual clock passed the run's budget of virtual time. */
  | "virtual-time-budget"
  /** The clock fired more events than the run's budget of host work allows. */
  | "host-work-budget"
  /** A system call through a process that has exited (a use-after-exit of the API). */
  | "process-exited";

/** A run ended by the simulation itself rather than by the program or an errno. */
export class SimulationError extends Error {
  constructor(
    readonly kind: SimulationErrorKind,
    message: string,
  ) {
    super(message);
    this.name = "SimulationError";
  }
}
