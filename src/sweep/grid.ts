/**
 * Parameter grids for `dmabuf sweep`: the `--vary key=v1,v2,...` arguments, their values
 * typed (numbers, sizes such as `64KiB`, booleans, strings, ranges such as
 * `64KiB..32MiB*2`), the cartesian product in a fixed order, and `setPath`, which writes
 * one grid point's values into a copy of the raw scenario data before it is validated.
 *
 * Sizes are read as scenario files read them (`parseSize` of src/scenarios/schema.ts,
 * after the kernel's `memparse()`, lib/cmdline.c): K, M, G and T are binary multiples,
 * with or without `B` or `iB`.
 */

import { parseSize } from "../scenarios/schema.js";

export { formatBytes } from "./format.js";

/** A value a grid point gives a varied key. */
export type GridValue = string | number | boolean;

/** What a key's values must be, when the scenario schema says (else inferred from the text). */
export type GridValueKind = "number" | "boolean" | "string";

/** One `--vary` argument: a key and the values it takes, in the order given. */
export interface VaryAxis {
  readonly key: string;
  readonly values: readonly GridValue[];
}

/** One point of the grid: its position in grid order and the value of each varied key. */
export interface GridPoint {
  readonly index: number;
  readonly params: Readonly<Record<string, GridValue>>;
}

/** Bad `--vary` input or a key that cannot be set; the message names the key and value. */
export class GridError extends Error {
  override readonly name = "GridError";
}

/** More points than this is almost certainly a typo in a range. */
export const MAX_GRID_POINTS = 100_000;

const NUMBER_RE = /^[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:e[+-]?\d+)?$/i;
const RANGE_RE = /^(.+?)\.\.(.+?)(?:([*+])(.+))?$/;

/**
 * A number or a size (`4096`, `0x1000`, `1.5`, `64KiB`, `2M`, `1GB`); undefined when the
 * text is neither. Sizes must come out as whole bytes.
 */
export function parseNumberOrSize(text: string): number | undefined {
  const t = text.trim();
  if (NUMBER_RE.test(t)) return Number(t);
  // Sizes as scenario files write them (the schema's parser: K = KB = KiB = 1024).
  return parseSize(t);
}

function fail(key: string, raw: string, why: string): never {
  throw new GridError(`--vary ${key}: '${raw}': ${why}`);
}

/**
 * Types one value of `key`. With a kind (from the schema) the text must fit it; without
 * one, `true`/`false` are booleans, numbers and sizes are numbers, anything else a string.
 */
export function parseGridValue(key: string, raw: string, kind?: GridValueKind): GridValue {
  const t = raw.trim();
  if (t === "") fail(key, raw, "empty value");
  if (kind === "string") return t;
  if (kind === "boolean" || (kind === undefined && (t === "true" || t === "false"))) {
    if (t === "true") return true;
    if (t === "false") return false;
    fail(key, raw, "expected true or false");
  }
  const n = parseNumberOrSize(t);
  if (n !== undefined) {
    if (!Number.isFinite(n)) fail(key, raw, "not a finite number");
    return n;
  }
  if (kind === "number") fail(key, raw, "expected a number or a size such as 64KiB");
  return t;
}

/**
 * Expands `A..B` (step 1), `A..B+S` (arithmetic) or `A..B*F` (geometric, F > 1) into its
 * values, B included when a step lands on it. A and B may be sizes.
 */
export function expandRange(key: string, raw: string): number[] {
  const m = RANGE_RE.exec(raw.trim());
  if (m === null) fail(key, raw, "not a range (A..B, A..B+STEP or A..B*FACTOR)");
  const from = parseNumberOrSize(m[1]!);
  const to = parseNumberOrSize(m[2]!);
  if (from === undefined) fail(key, raw, `range start '${m[1]}' is not a number or size`);
  if (to === undefined) fail(key, raw, `range end '${m[2]}' is not a number or size`);
  if (from > to) fail(key, raw, "range start is above its end");
  const op = m[3] ?? "+";
  const step = m[4] === undefined ? 1 : parseNumberOrSize(m[4]);
  if (step === undefined || !Number.isFinite(step)) {
    fail(key, raw, `step '${m[4]}' is not a number`);
  }
  if (op === "*" && (step <= 1 || from <= 0)) {
    fail(key, raw, "a geometric range needs a start above 0 and a factor above 1");
  }
  if (op === "+" && step <= 0) fail(key, raw, "the step must be above 0");
  const out: number[] = [];
  // Tolerate rounding on the last step (0.1..0.3+0.1), never overshoot by more.
  const limit = to * (1 + 1e-12) + 1e-12;
  for (let i = 0, v = from; v <= limit; i++) {
    out.push(Number(v.toPrecision(15)));
    if (out.length > MAX_GRID_POINTS) fail(key, raw, `more than ${MAX_GRID_POINTS} values`);
    v = op === "*" ? from * step ** (i + 1) : from + step * (i + 1);
  }
  return out;
}

/**
 * Parses one `--vary key=v1,v2,...` argument. Each comma-separated item is a value or a
 * range; `kindOf` gives the type the schema expects for the key, when known.
 */
export function parseVary(
  arg: string,
  kindOf?: (key: string) => GridValueKind | undefined,
): VaryAxis {
  const eq = arg.indexOf("=");
  if (eq <= 0) throw new GridError(`--vary '${arg}': expected KEY=VALUE[,VALUE...]`);
  const key = arg.slice(0, eq).trim();
  if (!/^[A-Za-z_$][\w$-]*(?:\.[\w$-]+)*$/.test(key)) {
    throw new GridError(
      `--vary '${arg}': '${key}' is not a dotted field path such as buffers.bufferBytes`,
    );
  }
  const kind = kindOf?.(key);
  const list = arg.slice(eq + 1);
  if (list.trim() === "") throw new GridError(`--vary ${key}: no values`);
  const values: GridValue[] = [];
  for (const item of list.split(",")) {
    const t = item.trim();
    if (kind !== "string" && kind !== "boolean" && t.includes("..")) {
      values.push(...expandRange(key, t));
    } else {
      values.push(parseGridValue(key, t, kind));
    }
  }
  const seen = new Set<string>();
  for (const v of values) {
    const id = `${typeof v}:${String(v)}`;
    if (seen.has(id)) throw new GridError(`--vary ${key}: '${String(v)}' is listed twice`);
    seen.add(id);
  }
  return { key, values };
}

/**
 * The cartesian product of the axes, in the order of nested loops written in argument
 * order: the first `--vary` changes slowest, the last fastest. Index i is the i-th row.
 */
export function cartesianGrid(axes: readonly VaryAxis[]): GridPoint[] {
  const keys = new Set<string>();
  let total = 1;
  for (const a of axes) {
    if (keys.has(a.key)) throw new GridError(`--vary ${a.key}: the key is varied twice`);
    keys.add(a.key);
    if (a.values.length === 0) throw new GridError(`--vary ${a.key}: no values`);
    total *= a.values.length;
  }
  if (total > MAX_GRID_POINTS) {
    throw new GridError(`the grid has ${total} points, more than ${MAX_GRID_POINTS}`);
  }
  const points: GridPoint[] = [];
  for (let index = 0; index < total; index++) {
    const params: Record<string, GridValue> = {};
    let rest = index;
    for (let a = axes.length - 1; a >= 0; a--) {
      const axis = axes[a]!;
      params[axis.key] = axis.values[rest % axis.values.length]!;
      rest = Math.floor(rest / axis.values.length);
    }
    // Insertion order = axis order, so JSON and CSV list keys as given.
    const ordered: Record<string, GridValue> = {};
    for (const axis of axes) ordered[axis.key] = params[axis.key]!;
    points.push({ index, params: ordered });
  }
  return points;
}

const FORBIDDEN_SEGMENTS = new Set(["__proto__", "prototype", "constructor"]);

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function describe(v: unknown): string {
  if (v === null) return "null";
  if (Array.isArray(v)) return "a list";
  return `a ${typeof v}`;
}

/**
 * A copy of `data` with the field at `dottedKey` set to `value`, creating missing tables
 * on the way (the input is not modified; untouched branches are shared). A numeric
 * segment indexes a list. Throws GridError naming the key when a step of the path is not
 * a table (or list) of fields.
 */
export function setPath(data: unknown, dottedKey: string, value: unknown): unknown {
  const segments = dottedKey.split(".");
  for (const s of segments) {
    if (s === "") throw new GridError(`--vary ${dottedKey}: empty path segment`);
    if (FORBIDDEN_SEGMENTS.has(s))
      throw new GridError(`--vary ${dottedKey}: '${s}' is not a field`);
  }
  const assign = (node: unknown, depth: number): unknown => {
    if (depth === segments.length) return value;
    const seg = segments[depth]!;
    const here = segments.slice(0, depth).join(".") || "the scenario";
    if (node === undefined) node = {};
    if (Array.isArray(node)) {
      if (!/^\d+$/.test(seg)) {
        throw new GridError(`--vary ${dottedKey}: '${here}' is a list; '${seg}' is not an index`);
      }
      const i = Number(seg);
      if (i > node.length) {
        throw new GridError(
          `--vary ${dottedKey}: '${here}' has ${node.length} items, no index ${i}`,
        );
      }
      const copy = node.slice();
      copy[i] = assign(node[i], depth + 1);
      return copy;
    }
    if (!isPlainObject(node)) {
      throw new GridError(
        `--vary ${dottedKey}: '${here}' is ${describe(node)}, not a table of fields`,
      );
    }
    const copy: Record<string, unknown> = { ...node };
    copy[seg] = assign(Object.hasOwn(node, seg) ? node[seg] : undefined, depth + 1);
    return copy;
  };
  return assign(data, 0);
}
