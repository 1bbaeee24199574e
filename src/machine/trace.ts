/**
 * A recorder of timeline events, in the shape of the Chrome / Perfetto trace-event
 * format (complete events with a duration, instants, counters). Tracks are named:
 * "cpu", a device's name, or a buffer's label. Recording is off unless enabled, so hot
 * paths pay one branch.
 */

import type { Ns } from "./clock.js";

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

export class TraceRecorder {
  enabled = false;
  readonly events: TraceEvent[] = [];

  span(track: string, cat: string, name: string, ts: Ns, dur: Ns, args?: TraceEvent["args"]): void {
    if (!this.enabled) return;
    this.events.push({ name, cat, ph: "X", ts, dur, track, ...(args ? { args } : {}) });
  }

  instant(track: string, cat: string, name: string, ts: Ns, args?: TraceEvent["args"]): void {
    if (!this.enabled) return;
    this.events.push({ name, cat, ph: "i", ts, track, ...(args ? { args } : {}) });
  }
}
