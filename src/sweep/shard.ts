/**
 * Sharding a sweep over machines: `dmabuf sweep ... --shard K/N` runs the grid points
 * whose index is K-1 modulo N (round robin, so every shard gets a share of the small and
 * the large points) and writes a shard file; `dmabuf merge` reads the N shard files and
 * puts the rows back in grid order, which gives byte for byte what one machine running
 * the whole grid gives. Which machine runs which shard is left to an existing scheduler
 * (a Slurm job array, a Kubernetes indexed Job, a CI matrix): see docs/sweeps.md.
 *
 * A shard file carries a fingerprint of the whole grid (every point's spec), so shards
 * of different sweeps, or of one sweep over different versions of a scenario file, are
 * refused rather than merged into a table nobody ran.
 */

import { createHash } from "node:crypto";
import type { SweepReport, SweepRow } from "../report/sweep-types.js";
import type { SweepTask } from "./sweep.js";

/** `--shard K/N`: this machine runs shard `index` (1-based) of `count`. */
export interface ShardSpec {
  readonly index: number;
  readonly count: number;
}

/** Bad `--shard` text or shard files that do not make one sweep; the message says which. */
export class ShardError extends Error {
  override readonly name = "ShardError";
}

/** The most shards a sweep may be cut into. */
export const MAX_SHARDS = 10_000;

/** The format tag and version of a shard file. */
export const SHARD_FORMAT = "dmabuf-sweep-shard";
export const SHARD_VERSION = 1;

/** Parses `K/N` (1 <= K <= N). */
export function parseShard(text: string): ShardSpec {
  const m = /^\s*(\d+)\s*\/\s*(\d+)\s*$/.exec(text);
  if (m === null) throw new ShardError(`--shard must be K/N (for example 2/8), not '${text}'`);
  const index = Number(m[1]);
  const count = Number(m[2]);
  if (count < 1 || count > MAX_SHARDS) {
    throw new ShardError(`--shard ${text}: N must be from 1 to ${MAX_SHARDS}`);
  }
  if (index < 1 || index > count) {
    throw new ShardError(`--shard ${text}: K must be from 1 to N (${count})`);
  }
  return { index, count };
}

/** The grid indices shard K of N runs, in grid order. */
export function shardIndices(points: number, shard: ShardSpec): number[] {
  const out: number[] = [];
  for (let i = shard.index - 1; i < points; i += shard.count) out.push(i);
  return out;
}

/** A fingerprint of the whole grid: every point's varied values and spec, in grid order. */
export function gridFingerprint(tasks: readonly SweepTask[], expects: readonly boolean[]): string {
  const h = createHash("sha256");
  tasks.forEach((t, i) => {
    h.update(JSON.stringify([t.params, t.spec, expects[i] === true]));
    h.update("\n");
  });
  return h.digest("hex");
}

/** What a shard file holds. */
export interface ShardFile {
  readonly format: typeof SHARD_FORMAT;
  readonly version: number;
  readonly shard: ShardSpec;
  /** Points in the whole grid. */
  readonly points: number;
  readonly grid: string;
  /** The sweep's title, description and keys; rows are this shard's, in grid order. */
  readonly report: SweepReport;
  /** The grid index of each row. */
  readonly indices: readonly number[];
  /** Whether each row's point expects coherence (no pipeline.fault). */
  readonly expects: readonly boolean[];
  /** Notes the sweep printed above its table. */
  readonly notes: readonly string[];
}

/** The shard file's text (JSON, two-space indented, newline at the end). */
export function shardJson(file: ShardFile): string {
  return `${JSON.stringify(file, null, 2)}\n`;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/** Reads one shard file's text. @throws ShardError naming the file and what is wrong. */
export function parseShardFile(name: string, text: string): ShardFile {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (e) {
    throw new ShardError(`${name}: not JSON (${(e as Error).message})`);
  }
  if (!isObject(v) || v["format"] !== SHARD_FORMAT) {
    throw new ShardError(
      `${name}: not a sweep shard file (write one with 'dmabuf sweep ... --shard K/N')`,
    );
  }
  if (v["version"] !== SHARD_VERSION) {
    throw new ShardError(
      `${name}: shard file version ${String(v["version"])}, this dmabuf reads ${SHARD_VERSION}`,
    );
  }
  const shard = v["shard"];
  const report = v["report"];
  const ok =
    isObject(shard) &&
    Number.isInteger(shard["index"]) &&
    Number.isInteger(shard["count"]) &&
    Number.isInteger(v["points"]) &&
    typeof v["grid"] === "string" &&
    isObject(report) &&
    typeof report["title"] === "string" &&
    Array.isArray(report["keys"]) &&
    Array.isArray(report["rows"]) &&
    Array.isArray(v["indices"]) &&
    Array.isArray(v["expects"]) &&
    Array.isArray(v["notes"]) &&
    (v["indices"] as unknown[]).length === (report["rows"] as unknown[]).length &&
    (v["expects"] as unknown[]).length === (report["rows"] as unknown[]).length;
  if (!ok) throw new ShardError(`${name}: a field of the shard file is missing or malformed`);
  return v as unknown as ShardFile;
}

/** The merged sweep: what one machine running the whole grid would have had. */
export interface MergedSweep {
  readonly report: SweepReport;
  readonly expects: boolean[];
  readonly notes: readonly string[];
}

/**
 * Puts N shard files back together. Every shard 1..N must be there exactly once, all of
 * one grid, and together cover every point once.
 * @throws ShardError naming the files and what does not fit.
 */
export function mergeShards(files: readonly { name: string; shard: ShardFile }[]): MergedSweep {
  if (files.length === 0) throw new ShardError("which shard files? (the --json of each shard)");
  const first = files[0]!;
  const n = first.shard.shard.count;
  const byIndex = new Map<number, string>();
  for (const { name, shard } of files) {
    if (shard.grid !== first.shard.grid || shard.points !== first.shard.points) {
      throw new ShardError(
        `${name} is a shard of another sweep than ${first.name} (the grids differ: other --vary values, another scenario, or another version of it)`,
      );
    }
    if (shard.shard.count !== n) {
      throw new ShardError(
        `${name} is shard ${shard.shard.index}/${shard.shard.count}, ${first.name} is one of ${n}`,
      );
    }
    const seen = byIndex.get(shard.shard.index);
    if (seen !== undefined) {
      throw new ShardError(`${name} and ${seen} are both shard ${shard.shard.index}/${n}`);
    }
    byIndex.set(shard.shard.index, name);
  }
  const missing: number[] = [];
  for (let k = 1; k <= n; k++) if (!byIndex.has(k)) missing.push(k);
  if (missing.length > 0) {
    throw new ShardError(
      `shard${missing.length === 1 ? "" : "s"} ${missing.map((k) => `${k}/${n}`).join(", ")} missing`,
    );
  }
  const points = first.shard.points;
  const rows: (SweepRow | undefined)[] = new Array(points).fill(undefined);
  const expects: boolean[] = new Array(points).fill(true);
  for (const { name, shard } of files) {
    shard.indices.forEach((index, i) => {
      if (!(Number.isInteger(index) && index >= 0 && index < points) || rows[index] !== undefined) {
        throw new ShardError(`${name}: grid index ${index} out of range or given twice`);
      }
      rows[index] = shard.report.rows[i]!;
      expects[index] = shard.expects[i] === true;
    });
  }
  const hole = rows.indexOf(undefined);
  if (hole >= 0) throw new ShardError(`no shard holds grid point ${hole}`);
  const r = first.shard.report;
  return {
    report: {
      title: r.title,
      ...(r.description !== undefined ? { description: r.description } : {}),
      keys: [...r.keys],
      rows: rows as SweepRow[],
    },
    expects,
    notes: first.shard.notes,
  };
}
