/**
 * A recorder of timeline events, in the shape of the Chrome / Perfetto trace-event
 * format (complete events with a duration, instants, counters). Tracks are named:
 * "cpu", a device's name, a buffer's name, or a fence context. Recording is off unless
 * enabled, so hot paths pay one branch.
 *
 * Two helpers serve the layers that record who owns a buffer: {@link TraceRecorder.own}
 * draws ownership spans (a span per holder, closed when the next one takes over), and a
 * registry of buffer names by physical page lets the DMA API and the CPU, which see only
 * pages, put their events on the track of the buffer those pages belong to.
 */

import type { Ns } from "./clock.js";
import type { PhysRange } from "./violations.js";

export interface TraceEvent {
  readonly name: string;
  readonly cat: string;
  /** "X" complete (with dur), "i" instant, "C" counter. */
  readonly ph: "X" | "i" | "C";
  readonly ts: Ns;
  readonly dur?: Ns;
  readonly track: string;
  readonly args?: Readonly<Record<string, string | number | boolean>>;
}

/** Category of ownership spans: the span's name is the owner. */
export const OWNERSHIP_CAT = "ownership";
/** Category of fence instants (init, signal) and wait spans. */
export const FENCE_CAT = "fence";

/** Separates the buffer from the device in the track of a device's mapping: "cam0 / vivid-cap". */
export const MAPPING_TRACK_SEPARATOR = " / ";

/** An ownership span still being drawn. */
interface OpenOwnership {
  readonly owner: string;
  readonly since: Ns;
  /** Resolved when the span closes: a buffer may be named after its pages were mapped. */
  readonly track: () => string;
  readonly args: TraceEvent["args"];
}

/** A buffer's pages under its (current) name; undefined once the buffer is gone. */
interface NamedPages {
  readonly ranges: readonly PhysRange[];
  readonly name: () => string | undefined;
}

export class TraceRecorder {
  enabled = false;
  readonly events: TraceEvent[] = [];
  readonly #open = new Map<object, OpenOwnership>();
  readonly #named = new Map<number, NamedPages>();
  #nextName = 1;

  span(track: string, cat: string, name: string, ts: Ns, dur: Ns, args?: TraceEvent["args"]): void {
    if (!this.enabled) return;
    this.events.push({ name, cat, ph: "X", ts, dur, track, ...(args ? { args } : {}) });
  }

  instant(track: string, cat: string, name: string, ts: Ns, args?: TraceEvent["args"]): void {
    if (!this.enabled) return;
    this.events.push({ name, cat, ph: "i", ts, track, ...(args ? { args } : {}) });
  }

  /**
   * `owner` holds `key` (a mapping, a vb2 buffer, a dma-buf's CPU-access bracket) from
   * `now`: the previous holder's span ends here. The same owner again changes nothing.
   */
  own(key: object, owner: string, now: Ns, track: () => string, args?: TraceEvent["args"]): void {
    if (!this.enabled) return;
    const cur = this.#open.get(key);
    if (cur !== undefined && cur.owner === owner) return;
    this.disown(key, now);
    this.#open.set(key, { owner, since: now, track, args });
  }

  /** Nobody holds `key` from `now` (unmapped, freed, the bracket closed). */
  disown(key: object, now: Ns): void {
    const cur = this.#open.get(key);
    if (cur === undefined) return;
    this.#open.delete(key);
    // A hand-over straight back (mapped, then synced for the CPU at once) held nothing.
    if (now <= cur.since) return;
    this.span(cur.track(), OWNERSHIP_CAT, cur.owner, cur.since, now - cur.since, cur.args);
  }

  /** The owner `key` has in the trace now (undefined when nobody holds it). */
  ownerOf(key: object): string | undefined {
    return this.#open.get(key)?.owner;
  }

  /**
   * The events of the run, with the ownership spans still open at `now` closed there
   * (marked `held at end`), so a buffer still mapped when the run stops shows its owner.
   */
  finish(now: Ns): readonly TraceEvent[] {
    for (const [key, cur] of [...this.#open]) {
      this.#open.delete(key);
      if (now <= cur.since) continue;
      this.span(cur.track(), OWNERSHIP_CAT, cur.owner, cur.since, now - cur.since, {
        ...cur.args,
        "held at end": true,
      });
    }
    return this.events;
  }

  /**
   * Names the buffer whose pages are `ranges` (newest registration wins), for
   * {@link bufferAt}. `name` answers undefined once the buffer is gone: the entry is
   * then dropped, as {@link forgetBuffer} would.
   */
  nameBuffer(ranges: readonly PhysRange[], name: () => string | undefined): number {
    const id = this.#nextName++;
    if (this.enabled) this.#named.set(id, { ranges, name });
    return id;
  }

  forgetBuffer(id: number): void {
    this.#named.delete(id);
  }

  /** The name of the buffer that the page at `phys` belongs to, if one was named. */
  bufferAt(phys: number): string | undefined {
    let found: string | undefined;
    for (const [id, n] of this.#named) {
      if (!n.ranges.some((r) => phys >= r.phys && phys < r.phys + r.len)) continue;
      const name = n.name();
      if (name === undefined) this.#named.delete(id);
      else found = name;
    }
    return found;
  }
}
