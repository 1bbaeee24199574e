/**
 * The deterministic virtual clock: a discrete-event queue in virtual nanoseconds.
 *
 * Everything in the model that takes time (a cache flush, a DMA transfer, a fence
 * signalled by a device) is charged here, never against the host's wall clock, so the
 * same scenario gives the same timeline on every machine. Events at the same instant
 * fire in the order they were scheduled (a sequence number breaks ties).
 */

/** Virtual time or duration, in nanoseconds. */
export type Ns = number;

/** One scheduled event. Cancel it with {@link VirtualClock.cancel}. */
export interface ClockEvent {
  readonly at: Ns;
  readonly seq: number;
  readonly label: string;
  readonly fire: () => void;
  cancelled: boolean;
}

export class VirtualClock {
  #now: Ns = 0;
  #seq = 0;
  readonly #heap: ClockEvent[] = [];

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

  /** Schedules `fire` at absolute time `at` (not before now). */
  schedule(at: Ns, label: string, fire: () => void): ClockEvent {
    if (!Number.isFinite(at)) throw new RangeError(`clock: event '${label}' at non-finite time`);
    const ev: ClockEvent = {
      at: Math.max(at, this.#now),
      seq: this.#seq++,
      label,
      fire,
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
    if (t > this.#now) this.#now = t;
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
   * waited its whole timeout), or where the queue went idle if the deadline is infinite.
   */
  runUntilCondition(done: () => boolean, deadline: Ns = Number.POSITIVE_INFINITY): boolean {
    for (;;) {
      if (done()) return true;
      const next = this.peek();
      if (next === undefined || next > deadline) {
        if (Number.isFinite(deadline) && deadline > this.#now) this.#now = deadline;
        return done();
      }
      this.#fireHead();
    }
  }

  /** Fires events until none is left. `limit` guards against self-rescheduling loops. */
  runUntilIdle(limit = 10_000_000): void {
    for (let i = 0; i < limit; i++) if (!this.step()) return;
    throw new Error(`clock: still busy after ${limit} events (a device that never stops?)`);
  }

  #fireHead(): void {
    const ev = this.#pop();
    if (ev.at > this.#now) this.#now = ev.at;
    ev.fire();
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
