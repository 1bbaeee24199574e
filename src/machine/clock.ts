/**
 * The deterministic virtual clock: a discrete-event queue in virtual nanoseconds.
 *
 * Everything in the model that takes time (a cache flush, a DMA transfer, a fence
 * signalled by a device) is charged here, never against the host's wall clock, so the
 * same scenario gives the same timeline on every machine. Events at the same instant
 * fire in the order they were scheduled (a sequence number breaks ties).
 */

import { SimulationError } from "./outcome.js";
import type { TraceRecorder } from "./trace.js";

/** Virtual time or duration, in nanoseconds. */
export type Ns = number;

/** One scheduled event. Cancel it with {@link VirtualClock.cancel}. */
export interface ClockEvent {
  readonly at: Ns;
  readonly seq: number;
  readonly label: string;
  readonly fire: () => void;
  /**
   * For periodic activity (a vblank interrupt, and every event such a tick schedules):
   * the key of the tick it belongs to. Undefined for one-shot work.
   */
  readonly tick: string | undefined;
  cancelled: boolean;
}

/** How {@link VirtualClock.schedule} classifies an event. */
export interface ScheduleOptions {
  /**
   * A periodic timer re-arming itself (a display's vblank). Its firings count as
   * progress only when they call {@link VirtualClock.noteProgress}; see
   * {@link VirtualClock.runUntilCondition} for the rule this serves.
   */
  readonly periodic?: boolean;
}

/** Limits on one run: virtual time and host work (events fired). */
export interface ClockBudget {
  /** The latest virtual time the run may reach, ns. */
  readonly virtualNs: Ns;
  /** The most events the run may fire. */
  readonly events: number;
}

export class VirtualClock {
  /**
   * The timeline recorder of the machine this clock runs, for code that holds only the
   * clock (a dma_fence is initialised with its clock, as Linux's with its lock).
   */
  trace: TraceRecorder | undefined;
  #now: Ns = 0;
  #seq = 0;
  readonly #heap: ClockEvent[] = [];
  /** Bumped by every state change that could satisfy a waiter. */
  #progress = 0;
  /** The event firing now, and how many events it has scheduled so far. */
  #firing: ClockEvent | undefined;
  #children = 0;
  #fired = 0;
  #budget: ClockBudget = { virtualNs: Number.POSITIVE_INFINITY, events: Number.POSITIVE_INFINITY };

  /** The run's budget; exceeding it throws a {@link SimulationError}. Unlimited by default. */
  get budget(): ClockBudget {
    return this.#budget;
  }

  set budget(b: ClockBudget) {
    if (!(b.virtualNs > 0) || !(b.events > 0))
      throw new RangeError("clock: a budget must be positive");
    this.#budget = b;
  }

  /** Events fired so far (the host work a run has cost). */
  get fired(): number {
    return this.#fired;
  }

  /**
   * Says that the event firing now changed state a waiter could be waiting for (a flip
   * latched, a CRC entry stored). One-shot events count as progress without saying so;
   * periodic ticks must say so.
   */
  noteProgress(): void {
    this.#progress++;
  }

  /** The current virtual time. */
  get now(): Ns {
    return this.#now;
  }

  /** How many events are scheduled and not cancelled. */
  get pending(): number {
    let n = 0;
    for (const e of this.#heap) if (!e.cancelled) n++;
    return n;
  }

  /**
   * Schedules `fire` at absolute time `at` (not before now). Events scheduled while a
   * periodic tick fires belong to that tick (the scanout DMA a vblank starts).
   */
  schedule(at: Ns, label: string, fire: () => void, options: ScheduleOptions = {}): ClockEvent {
    if (!Number.isFinite(at)) throw new RangeError(`clock: event '${label}' at non-finite time`);
    const parent = this.#firing?.tick;
    const tick = options.periodic
      ? label
      : parent !== undefined
        ? `${parent}/${this.#children++}`
        : undefined;
    const ev: ClockEvent = {
      at: Math.max(at, this.#now),
      seq: this.#seq++,
      label,
      fire,
      tick,
      cancelled: false,
    };
    this.#push(ev);
    return ev;
  }

  /** Schedules `fire` after `delay` nanoseconds. */
  after(delay: Ns, label: string, fire: () => void): ClockEvent {
    return this.schedule(this.#now + Math.max(0, delay), label, fire);
  }

  cancel(ev: ClockEvent): void {
    ev.cancelled = true;
  }

  /** The time of the next live event, or undefined when idle. */
  peek(): Ns | undefined {
    this.#dropCancelled();
    return this.#heap[0]?.at;
  }

  /**
   * Lets `dt` nanoseconds pass: every event due in that window fires at its own time, in
   * order; then the clock stands at `now + dt`. This is how synchronous CPU work is
   * charged while devices keep running.
   */
  advance(dt: Ns): void {
    if (!(dt >= 0)) throw new RangeError(`clock: cannot advance by ${dt} ns`);
    this.runUntil(this.#now + dt);
  }

  /** Fires every event due at or before `t`, then sets the clock to `t` (if later). */
  runUntil(t: Ns): void {
    for (;;) {
      this.#dropCancelled();
      const head = this.#heap[0];
      if (head === undefined || head.at > t) break;
      this.#fireHead();
    }
    if (t > this.#now) {
      this.#checkTime(t);
      this.#now = t;
    }
  }

  /** Fires the next event, if any. Returns false when the queue is empty. */
  step(): boolean {
    this.#dropCancelled();
    if (this.#heap.length === 0) return false;
    this.#fireHead();
    return true;
  }

  /**
   * Fires events until `done()` holds or the clock would pass `deadline`. Returns whether
   * `done()` held. On failure the clock stands at the deadline (a timed-out wait has
   * waited its whole timeout), or where the waiting stopped if the deadline is infinite.
   *
   * With no deadline, the wait also stops (returns false) when it can never succeed,
   * even though periodic timers keep the queue busy. The rule: a waiter's condition can
   * only become true through progress — a one-shot event (device work, a fence timeout)
   * or a periodic tick that calls {@link noteProgress}. When every live event belongs
   * to a periodic tick and each of those ticks (by key: the timer, and each event it
   * schedules in order) has fired at least once since the last progress without making
   * any, the state those ticks see is the one they saw then (only free-running counters
   * such as vblank numbers moved, and no condition waits on those), so they will never
   * make progress again: the wait would block forever.
   */
  runUntilCondition(done: () => boolean, deadline: Ns = Number.POSITIVE_INFINITY): boolean {
    const idle = new Set<string>();
    const forever = !Number.isFinite(deadline);
    for (;;) {
      if (done()) return true;
      const next = this.peek();
      if (next === undefined || next > deadline) {
        if (!forever && deadline > this.#now) this.runUntil(deadline);
        return done();
      }
      if (forever && idle.size > 0 && this.#onlyIdleTicks(idle)) return false;
      const before = this.#progress;
      const ev = this.#fireHead();
      if (ev.tick === undefined || this.#progress !== before) idle.clear();
      else idle.add(ev.tick);
    }
  }

  #onlyIdleTicks(idle: ReadonlySet<string>): boolean {
    for (const e of this.#heap)
      if (!e.cancelled && (e.tick === undefined || !idle.has(e.tick))) return false;
    return true;
  }

  /** Fires events until none is left. `limit` guards against self-rescheduling loops. */
  runUntilIdle(limit = 10_000_000): void {
    for (let i = 0; i < limit; i++) if (!this.step()) return;
    throw new SimulationError(
      "host-work-budget",
      `clock: still busy after ${limit} events (a device that never stops?)`,
    );
  }

  #checkTime(t: Ns): void {
    if (t > this.#budget.virtualNs)
      throw new SimulationError(
        "virtual-time-budget",
        `the run passed its budget of ${formatSeconds(this.#budget.virtualNs)} of virtual time (next: ${formatSeconds(t)})`,
      );
  }

  #fireHead(): ClockEvent {
    const ev = this.#pop();
    if (ev.at > this.#now) {
      this.#checkTime(ev.at);
      this.#now = ev.at;
    }
    if (++this.#fired > this.#budget.events)
      throw new SimulationError(
        "host-work-budget",
        `the run passed its budget of ${this.#budget.events} clock events of host work at ${formatSeconds(this.#now)} of virtual time (last: ${ev.label})`,
      );
    const outer = this.#firing;
    const outerChildren = this.#children;
    this.#firing = ev;
    this.#children = 0;
    try {
      ev.fire();
    } finally {
      this.#firing = outer;
      this.#children = outerChildren;
    }
    return ev;
  }

  #dropCancelled(): void {
    while (this.#heap.length > 0 && this.#heap[0]!.cancelled) this.#pop();
  }

  static #before(a: ClockEvent, b: ClockEvent): boolean {
    return a.at < b.at || (a.at === b.at && a.seq < b.seq);
  }

  #push(ev: ClockEvent): void {
    const h = this.#heap;
    h.push(ev);
    let i = h.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!VirtualClock.#before(h[i]!, h[p]!)) break;
      [h[i], h[p]] = [h[p]!, h[i]!];
      i = p;
    }
  }

  #pop(): ClockEvent {
    const h = this.#heap;
    const top = h[0]!;
    const last = h.pop()!;
    if (h.length > 0) {
      h[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < h.length && VirtualClock.#before(h[l]!, h[m]!)) m = l;
        if (r < h.length && VirtualClock.#before(h[r]!, h[m]!)) m = r;
        if (m === i) break;
        [h[i], h[m]] = [h[m]!, h[i]!];
        i = m;
      }
    }
    return top;
  }
}

function formatSeconds(ns: Ns): string {
  const s = ns / 1e9;
  return s >= 1e6 ? `${s.toExponential(2)} s` : `${Number(s.toPrecision(4))} s`;
}
