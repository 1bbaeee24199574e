/**
 * A sweep's rows as CSV (RFC 4180: CRLF line ends, fields with a comma, quote, CR or LF
 * quoted, quotes doubled) and as JSON (the SweepReport itself, so `renderSweepHtml` can
 * render a saved sweep later).
 *
 * CSV columns: one per varied key (in grid order), then verdict, violations, frames_ok,
 * frames, the cost per frame of each category in virtual ns (`<category>_ns`),
 * sharing_ns (the sharing cost per frame, src/report/sharing-cost.ts), total_ns (every
 * category), and error (empty unless the run failed).
 */

import { COST_CATEGORIES } from "../machine/cost.js";
import { sweepConclusions } from "../report/conclusions.js";
import { rowSharingNs } from "../report/sharing-cost.js";
import type { SweepReport, SweepRow } from "../report/sweep-types.js";

/** One field, quoted when RFC 4180 requires it. */
export function csvField(value: string | number | boolean | undefined): string {
  if (value === undefined) return "";
  const text = typeof value === "number" ? formatNumber(value) : String(value);
  return /[",\r\n]/.test(text) ? `"${text.replaceAll('"', '""')}"` : text;
}

/** Numbers without float noise: at most three decimals, no exponent for ordinary sizes. */
function formatNumber(n: number): string {
  if (Number.isInteger(n)) return String(n);
  return String(Number(n.toFixed(3)));
}

/** The header row's names. */
export function csvHeader(keys: readonly string[]): string[] {
  return [
    ...keys,
    "verdict",
    "violations",
    "frames_ok",
    "frames",
    ...COST_CATEGORIES.map((c) => `${c}_ns`),
    "sharing_ns",
    "total_ns",
    "error",
  ];
}

function csvRecord(
  keys: readonly string[],
  row: SweepRow,
): (string | number | boolean | undefined)[] {
  return [
    ...keys.map((k) => row.params[k]),
    row.verdict,
    row.violations,
    row.framesOk,
    row.frames,
    ...COST_CATEGORIES.map((c) => row.perFrame[c]),
    rowSharingNs(row),
    row.totalPerFrameNs,
    row.error,
  ];
}

/** The whole report as CSV text, header first, rows in grid order, CRLF after each record. */
export function sweepCsv(report: SweepReport): string {
  const lines = [csvHeader(report.keys).map(csvField).join(",")];
  for (const row of report.rows) lines.push(csvRecord(report.keys, row).map(csvField).join(","));
  return `${lines.join("\r\n")}\r\n`;
}

/**
 * The report as JSON (two-space indented, newline at the end), with its conclusions
 * (crossover and cheapest strategy per size, src/report/conclusions.ts) as the terminal
 * and the HTML state them.
 */
export function sweepJson(report: SweepReport): string {
  return `${JSON.stringify({ ...report, conclusions: sweepConclusions(report) }, null, 2)}\n`;
}
