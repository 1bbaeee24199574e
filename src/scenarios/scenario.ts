/**
 * Scenarios as a TypeScript API: read a YAML or JSON file, validate it against
 * {@link ScenarioSchema} with errors that point at the line and column of the offending
 * field (as a compiler would), turn it into a {@link PipelineSpec} and run it.
 *
 * A scenario file is to the model what a device tree plus a test program is to a real
 * board: the machine (profile and overrides), the devices, the buffers and what the
 * pipeline does with them.
 */

import { readFileSync } from "node:fs";
import { basename, extname, resolve } from "node:path";
import { isMap, isScalar, isSeq, LineCounter, parseDocument, parse as parseYaml } from "yaml";
import { z } from "zod";
import { didYouMean } from "../lib/did-you-mean.js";
import type { ProfileOverrides } from "../machine/profiles.js";
import { runPipeline } from "../pipelines/run.js";
import type {
  DeviceSpec,
  GraphDevice,
  GraphPool,
  GraphSpec,
  GraphStage,
  PipelineResult,
  PipelineSpec,
} from "../pipelines/types.js";
import { specConflicts } from "../pipelines/validity.js";
import {
  checkScenarioFile,
  checkSpecLimits,
  findExcessiveNesting,
  SCENARIO_LIMITS,
} from "./limits.js";
import { ScenarioSchema } from "./schema.js";

export { didYouMean };

/** A validated scenario (sizes are numbers of bytes). */
export type Scenario = z.infer<typeof ScenarioSchema>;
/** What a scenario may be written as (sizes may be strings such as "512KiB"). */
export type ScenarioInput = z.input<typeof ScenarioSchema>;

/** One problem found in a scenario, with where it is. */
export interface ScenarioIssue {
  readonly file: string | undefined;
  /** 1-based line and column, when the source text is known. */
  readonly line: number | undefined;
  readonly column: number | undefined;
  /** Dotted field path, e.g. "pipeline.strategy" or "machine.cache.levels[1].ways". */
  readonly field: string | undefined;
  /** What is wrong, without the location. */
  readonly problem: string;
}

/** Formats one issue the way compilers do: `file:line:col: field: problem`. */
export function formatScenarioIssue(i: ScenarioIssue): string {
  let where = i.file ?? "";
  if (i.file !== undefined && i.line !== undefined) {
    where += `:${i.line}`;
    if (i.column !== undefined) where += `:${i.column}`;
  }
  const parts = [where, i.field, i.problem].filter((p) => p !== undefined && p !== "");
  return parts.join(": ");
}

/**
 * A scenario that cannot be read or is invalid. The message is meant to be printed as
 * it is (no stack): one line per problem, the first line for the first problem, whose
 * location is also in `file`, `line`, `column` and `field`.
 */
export class ScenarioError extends Error {
  override readonly name = "ScenarioError";
  readonly file: string | undefined;
  readonly line: number | undefined;
  readonly column: number | undefined;
  readonly field: string | undefined;
  readonly issues: readonly ScenarioIssue[];

  constructor(issues: readonly ScenarioIssue[]) {
    super(issues.map(formatScenarioIssue).join("\n"));
    const first = issues[0];
    this.file = first?.file;
    this.line = first?.line;
    this.column = first?.column;
    this.field = first?.field;
    this.issues = issues;
  }
}

function issue(
  file: string | undefined,
  problem: string,
  at: { line: number; column: number } | undefined = undefined,
  field: string | undefined = undefined,
): ScenarioIssue {
  return { file, line: at?.line, column: at?.column, field, problem };
}

// ---------------------------------------------------------------------------------------
// Reading.

/** Where a file's text sits, for turning offsets into lines and columns. */
function lineCol(text: string, offset: number): { line: number; column: number } {
  let line = 1;
  let start = 0;
  for (let i = 0; i < offset && i < text.length; i++) {
    if (text.charCodeAt(i) === 10) {
      line++;
      start = i + 1;
    }
  }
  return { line, column: offset - start + 1 };
}

/**
 * Finds the first syntax error of a JSON text (JSON.parse's messages do not always say
 * where), as an offset and a short description.
 */
function jsonSyntaxError(text: string): { offset: number; message: string } | undefined {
  let i = 0;
  const n = text.length;
  class Stop {
    constructor(readonly message: string) {}
  }
  const ws = (): void => {
    while (i < n && (text[i] === " " || text[i] === "\t" || text[i] === "\n" || text[i] === "\r"))
      i++;
  };
  const unexpected = (what: string): never => {
    throw new Stop(
      i >= n ? `unexpected end of file; expected ${what}` : `expected ${what}; got '${text[i]}'`,
    );
  };
  const string = (): void => {
    i++;
    while (i < n) {
      const c = text.charCodeAt(i);
      if (c === 0x22) {
        i++;
        return;
      }
      if (c === 0x5c) i += 2;
      else if (c < 0x20) throw new Stop("control character in a string (a missing closing quote?)");
      else i++;
    }
    throw new Stop("unterminated string");
  };
  const value = (): void => {
    ws();
    const c = text[i];
    if (c === "{") {
      i++;
      ws();
      if (text[i] === "}") {
        i++;
        return;
      }
      for (;;) {
        ws();
        if (text[i] !== '"') unexpected("a property name in double quotes");
        string();
        ws();
        if (text[i] !== ":") unexpected("':' after the property name");
        i++;
        value();
        ws();
        if (text[i] === ",") {
          i++;
          continue;
        }
        if (text[i] === "}") {
          i++;
          return;
        }
        unexpected("',' or '}' after the property value");
      }
    }
    if (c === "[") {
      i++;
      ws();
      if (text[i] === "]") {
        i++;
        return;
      }
      for (;;) {
        value();
        ws();
        if (text[i] === ",") {
          i++;
          continue;
        }
        if (text[i] === "]") {
          i++;
          return;
        }
        unexpected("',' or ']' after the list item");
      }
    }
    if (c === '"') {
      string();
      return;
    }
    const rest = text.slice(i, i + 40);
    const m = /^(?:-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?|true|false|null)/.exec(
      rest,
    );
    if (m === null) unexpected("a value");
    i += m![0].length;
  };
  try {
    value();
    ws();
    if (i < n) throw new Stop(`unexpected '${text[i]}' after the end of the JSON value`);
    return undefined;
  } catch (e) {
    if (e instanceof Stop) return { offset: Math.min(i, n), message: e.message };
    throw e;
  }
}

function looksLikeJson(file: string, text: string): boolean {
  const ext = extname(file).toLowerCase();
  if (ext === ".json") return true;
  if (ext === ".yaml" || ext === ".yml") return false;
  return /^\s*[{[]/.test(text);
}

/**
 * Parses scenario text (YAML or JSON, by the file's extension, else by its first
 * character) into plain data. Syntax errors, empty files and a top level that is not a
 * mapping are {@link ScenarioError}s with the line and column.
 */
export function parseScenarioText(file: string, text: string): unknown {
  if (text.trim() === "") {
    throw new ScenarioError([
      issue(
        file,
        "the file is empty; a scenario is a mapping of fields (name, machine, pipeline...)",
        {
          line: 1,
          column: 1,
        },
      ),
    ]);
  }
  const tooDeep = findExcessiveNesting(text);
  if (tooDeep !== undefined) {
    throw new ScenarioError([
      issue(
        file,
        `nested more than ${SCENARIO_LIMITS.maxDepth} levels deep; a scenario needs a handful`,
        lineCol(text, tooDeep),
      ),
    ]);
  }
  let data: unknown;
  if (looksLikeJson(file, text)) {
    const err = jsonSyntaxError(text);
    if (err !== undefined) {
      throw new ScenarioError([
        issue(file, `JSON syntax error: ${err.message}`, lineCol(text, err.offset)),
      ]);
    }
    data = JSON.parse(text);
  } else {
    const lineCounter = new LineCounter();
    const doc = parseDocument(text, { lineCounter, prettyErrors: true });
    if (doc.errors.length > 0) {
      throw new ScenarioError(
        doc.errors.map((e) => {
          const pos = e.linePos?.[0];
          const msg = e.message.split("\n")[0]!.replace(/ at line \d+, column \d+:?$/, "");
          return issue(
            file,
            `YAML syntax error: ${msg}`,
            pos ? { line: pos.line, column: pos.col } : undefined,
          );
        }),
      );
    }
    try {
      data = doc.toJS({ maxAliasCount: SCENARIO_LIMITS.maxAliasCount });
    } catch (e) {
      if (!(e instanceof ReferenceError)) throw e;
      throw new ScenarioError([
        issue(
          file,
          `too many YAML aliases (more than ${SCENARIO_LIMITS.maxAliasCount} resolved): ${e.message}`,
        ),
      ]);
    }
    if (data === null || data === undefined) {
      throw new ScenarioError([
        issue(
          file,
          "the file has no content (only comments?); a scenario is a mapping of fields (name, machine, pipeline...)",
          { line: 1, column: 1 },
        ),
      ]);
    }
  }
  return data;
}

/**
 * Reads a scenario file without validating it, for callers that change fields before
 * validation (`--set`, sweeps): `file` is the path as given (used in messages), `text`
 * the contents, `data` the parsed YAML or JSON. Relative paths are resolved against
 * `cwd` (default: the process's).
 */
export function readScenarioData(
  path: string,
  cwd: string = process.cwd(),
): { file: string; text: string; data: unknown } {
  let text: string;
  const unreadable = checkScenarioFile(resolve(cwd, path));
  if (unreadable !== undefined)
    throw new ScenarioError([issue(path, `cannot read the scenario: ${unreadable}`)]);
  try {
    text = readFileSync(resolve(cwd, path), "utf8");
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    const why =
      code === "ENOENT"
        ? "no such file"
        : code === "EISDIR"
          ? "is a directory, not a scenario file"
          : code === "EACCES"
            ? "permission denied"
            : (e as Error).message;
    throw new ScenarioError([issue(path, `cannot read the scenario: ${why}`)]);
  }
  return { file: path, text, data: parseScenarioText(path, text) };
}

// ---------------------------------------------------------------------------------------
// Validation.

type PathKey = string | number;

/** "machine.cache.levels[1].ways" */
export function formatFieldPath(path: readonly PropertyKey[]): string {
  let out = "";
  for (const k of path) {
    if (typeof k === "number") out += `[${k}]`;
    else out += out === "" ? String(k) : `.${String(k)}`;
  }
  return out;
}

function valueAt(data: unknown, path: readonly PropertyKey[]): unknown {
  let v = data;
  for (const k of path) {
    if (v === null || typeof v !== "object") return undefined;
    v = (v as Record<PropertyKey, unknown>)[k];
  }
  return v;
}

function describeValue(v: unknown): string {
  if (v === undefined) return "nothing";
  if (v === null) return "null";
  if (Array.isArray(v)) return "a list";
  if (typeof v === "object") return "a mapping";
  if (typeof v === "string") return JSON.stringify(v);
  return String(v);
}

const TYPE_NAMES: Readonly<Record<string, string>> = {
  number: "a number",
  int: "an integer",
  string: "a string",
  boolean: "true or false",
  object: "a mapping",
  array: "a list",
};

/** The keys a strict object of the schema accepts at `path`. */
function knownKeys(path: readonly PropertyKey[]): string[] {
  let s: z.ZodType = ScenarioSchema;
  const unwrap = (t: z.ZodType): z.ZodType => {
    for (;;) {
      if (t instanceof z.ZodOptional || t instanceof z.ZodNullable) t = t.unwrap() as z.ZodType;
      else if (t instanceof z.ZodDefault) t = t.unwrap() as z.ZodType;
      else if (t instanceof z.ZodPipe) t = t.in as z.ZodType;
      else return t;
    }
  };
  for (const k of path) {
    s = unwrap(s);
    if (s instanceof z.ZodObject && typeof k === "string") {
      const next = (s.shape as Record<string, z.ZodType>)[k];
      if (next === undefined) return [];
      s = next;
    } else if (s instanceof z.ZodArray) {
      s = s.element as z.ZodType;
    } else return [];
  }
  s = unwrap(s);
  return s instanceof z.ZodObject ? Object.keys(s.shape) : [];
}

/** One zod issue in words, with the field path it applies to. */
function describeIssue(
  iss: z.core.$ZodIssue,
  data: unknown,
): { path: PathKey[]; problem: string; atKey: boolean }[] {
  const path = iss.path.filter((k): k is PathKey => typeof k !== "symbol");
  const got = valueAt(data, path);
  const gotText = `got ${describeValue(got)}`;
  if (got === undefined && (iss.code === "invalid_type" || iss.code === "invalid_union")) {
    return [{ path, atKey: false, problem: "required field is missing" }];
  }
  switch (iss.code) {
    case "unrecognized_keys": {
      const known = knownKeys(path).filter((k) => k !== "$schema");
      return iss.keys.map((key) => {
        const guess = didYouMean(key, known);
        return {
          path: [...path, key],
          atKey: true,
          problem: guess
            ? `unknown field "${key}" (did you mean "${guess}"?)`
            : `unknown field "${key}"; expected one of: ${known.join(", ")}`,
        };
      });
    }
    case "invalid_type": {
      const expected =
        path.length === 0
          ? "a mapping of scenario fields"
          : (TYPE_NAMES[iss.expected] ?? iss.expected);
      return [{ path, atKey: false, problem: `expected ${expected}; ${gotText}` }];
    }
    case "invalid_value": {
      const values = iss.values.map((v) => JSON.stringify(v));
      const guess =
        typeof got === "string"
          ? didYouMean(
              got,
              iss.values.filter((v): v is string => typeof v === "string"),
            )
          : undefined;
      return [
        {
          path,
          atKey: false,
          problem: `expected ${values.length === 1 ? values[0] : `one of ${values.join(", ")}`}; ${gotText}${guess ? ` (did you mean "${guess}"?)` : ""}`,
        },
      ];
    }
    case "too_small":
    case "too_big": {
      const small = iss.code === "too_small";
      const bound = small
        ? (iss as { minimum: number | bigint }).minimum
        : (iss as { maximum: number | bigint }).maximum;
      const inclusive = iss.inclusive !== false;
      const rel = small
        ? inclusive
          ? "at least"
          : "more than"
        : inclusive
          ? "at most"
          : "less than";
      const what =
        iss.origin === "array"
          ? `a list of ${rel} ${bound} item${Number(bound) === 1 ? "" : "s"}`
          : iss.origin === "string"
            ? `a string of ${rel} ${bound} character${Number(bound) === 1 ? "" : "s"}`
            : `a number ${rel} ${bound}`;
      const gotDesc = Array.isArray(got) ? `got ${got.length}` : gotText;
      return [{ path, atKey: false, problem: `expected ${what}; ${gotDesc}` }];
    }
    case "invalid_union": {
      // Only sizes are unions: name the accepted forms.
      const sizeMsg = iss.errors
        .flat()
        .map((e) => e.message)
        .find((m) => m.startsWith("expected a size"));
      return [
        {
          path,
          atKey: false,
          problem: `${sizeMsg ?? 'expected a size: a number of bytes, or a string such as "64K", "512KiB" or "32 MiB"'}; ${gotText}`,
        },
      ];
    }
    case "invalid_format":
    case "custom": {
      const msg = iss.message;
      return [{ path, atKey: false, problem: msg.includes("got ") ? msg : `${msg}; ${gotText}` }];
    }
    default:
      return [{ path, atKey: false, problem: `${iss.message}; ${gotText}` }];
  }
}

/** Maps a field path to the line and column of its node (or of its key) in the source. */
class SourcePositions {
  readonly #doc: ReturnType<typeof parseDocument>;
  readonly #lc = new LineCounter();

  constructor(text: string) {
    this.#doc = parseDocument(text, { lineCounter: this.#lc });
  }

  locate(path: readonly PathKey[], atKey: boolean): { line: number; column: number } | undefined {
    let node: unknown = this.#doc.contents;
    let offset = rangeStart(node);
    for (let i = 0; i < path.length; i++) {
      const k = path[i]!;
      const last = i === path.length - 1;
      if (isMap(node)) {
        const pair = node.items.find((p) => (isScalar(p.key) ? p.key.value : p.key) === k);
        if (pair === undefined) break;
        const keyOffset = rangeStart(pair.key);
        if (last && atKey) {
          offset = keyOffset ?? offset;
          break;
        }
        node = pair.value;
        offset = rangeStart(node) ?? keyOffset ?? offset;
      } else if (isSeq(node) && typeof k === "number") {
        const item = node.items[k];
        if (item === undefined) break;
        node = item;
        offset = rangeStart(node) ?? offset;
      } else break;
    }
    if (offset === undefined) return undefined;
    const p = this.#lc.linePos(offset);
    return { line: p.line, column: p.col };
  }
}

function rangeStart(node: unknown): number | undefined {
  if (node !== null && typeof node === "object" && "range" in node) {
    const r = (node as { range?: readonly number[] | null }).range;
    return r?.[0];
  }
  return undefined;
}

/**
 * Validates plain data (from {@link readScenarioData}, possibly changed since) as a
 * scenario. With `source`, errors carry the file, line and column of the field in the
 * text, and a missing `name` defaults to the file's base name.
 * @throws ScenarioError listing every problem found.
 */
export function parseScenario(data: unknown, source?: { file: string; text: string }): Scenario {
  const r = ScenarioSchema.safeParse(data);
  if (!r.success) {
    const positions = source ? new SourcePositions(source.text) : undefined;
    const issues: ScenarioIssue[] = [];
    for (const iss of r.error.issues) {
      for (const d of describeIssue(iss, data)) {
        const at = positions?.locate(d.path, d.atKey);
        issues.push(
          issue(source?.file, d.problem, at, d.path.length ? formatFieldPath(d.path) : undefined),
        );
      }
    }
    // In file order, as a compiler lists them.
    issues.sort((a, b) => (a.line ?? 0) - (b.line ?? 0) || (a.column ?? 0) - (b.column ?? 0));
    throw new ScenarioError(issues);
  }
  const s = r.data;
  const spec = scenarioToSpec(s);
  // Sizes, counts and rates against the machine's and devices' limits, before any work.
  const limits = checkSpecLimits(spec);
  if (limits.length > 0) {
    const positions = source ? new SourcePositions(source.text) : undefined;
    throw new ScenarioError(
      limits.map((l) =>
        issue(source?.file, l.problem, positions?.locate(l.path, false), formatFieldPath(l.path)),
      ),
    );
  }
  // Fields that are valid alone but cannot take effect together (src/pipelines/validity.ts).
  const conflicts = specConflicts(spec);
  if (conflicts.length > 0) {
    const positions = source ? new SourcePositions(source.text) : undefined;
    throw new ScenarioError(
      conflicts.map((c) =>
        issue(source?.file, c.problem, positions?.locate(parseFieldPath(c.field), false), c.field),
      ),
    );
  }
  if (s.name === undefined && source !== undefined) {
    return { ...s, name: basename(source.file, extname(source.file)) };
  }
  return s;
}

/** Reads, parses and validates a scenario file. @throws ScenarioError */
export function loadScenarioFile(path: string, cwd: string = process.cwd()): Scenario {
  const src = readScenarioData(path, cwd);
  return parseScenario(src.data, src);
}

/**
 * Validates a scenario written in TypeScript (sizes may be strings) and returns it with
 * sizes in bytes. @throws ScenarioError with the field path of every problem.
 */
export function defineScenario(s: ScenarioInput): Scenario {
  return parseScenario(s);
}

// ---------------------------------------------------------------------------------------
// Changing fields by path (`--set machine.profile=cortex-a9`, sweeps).

/** Splits "machine.cache.levels[1].ways" or "machine.cache.levels.1.ways" into keys. */
export function parseFieldPath(path: string): PathKey[] {
  const keys: PathKey[] = [];
  for (const part of path.split(".")) {
    const m = /^([^[\]]*)((?:\[\d+\])*)$/.exec(part);
    if (m === null || (m[1] === "" && m[2] === "")) {
      throw new ScenarioError([issue(undefined, `malformed field path "${path}"`)]);
    }
    if (m[1] !== "") keys.push(/^\d+$/.test(m[1]!) ? Number(m[1]) : m[1]!);
    for (const idx of m[2]!.matchAll(/\[(\d+)\]/g)) keys.push(Number(idx[1]));
  }
  return keys;
}

/**
 * Reads a field value written on the command line as YAML would: `true`, `64`, `1.5`,
 * `[64, 128]` become booleans, numbers and lists; anything else (`64K`, `streaming`)
 * stays a string.
 */
export function parseFieldValue(text: string): unknown {
  try {
    const v: unknown = parseYaml(text);
    return v === null && text.trim() !== "null" && text.trim() !== "~" ? text : v;
  } catch {
    return text;
  }
}

const FORBIDDEN_KEYS = new Set(["__proto__", "prototype", "constructor"]);

/**
 * A copy of scenario data with the field at a dotted path set (`"pipeline.strategy"`,
 * `"machine.cache.levels.1.ways"` or `"machine.cache.levels[1].ways"`), creating the
 * mappings on the way; `data` itself is not modified. Validation is left to
 * {@link parseScenario}. @throws ScenarioError when a step of the path is a value, not
 * a mapping or list.
 */
export function setScenarioField(data: unknown, path: string, value: unknown): unknown {
  const keys = parseFieldPath(path);
  const fail = (why: string): never => {
    throw new ScenarioError([issue(undefined, why, undefined, path)]);
  };
  for (const k of keys)
    if (typeof k === "string" && FORBIDDEN_KEYS.has(k)) fail(`"${k}" is not a field`);
  const assign = (node: unknown, depth: number): unknown => {
    if (depth === keys.length) return value;
    const k = keys[depth]!;
    const here = formatFieldPath(keys.slice(0, depth)) || "the scenario";
    if (node === undefined || node === null) node = typeof k === "number" ? [] : {};
    if (Array.isArray(node)) {
      if (typeof k !== "number") return fail(`${here} is a list; "${k}" is not an index`);
      if (k > node.length) return fail(`${here} has ${node.length} items; no index ${k}`);
      const copy = node.slice();
      copy[k] = assign(node[k], depth + 1);
      return copy;
    }
    if (typeof node !== "object") {
      return fail(`${here} is ${describeValue(node)}, not a mapping of fields`);
    }
    const copy: Record<string, unknown> = { ...(node as Record<string, unknown>) };
    const key = String(k);
    copy[key] = assign(Object.hasOwn(copy, key) ? copy[key] : undefined, depth + 1);
    return copy;
  };
  return assign(data, 0);
}

// ---------------------------------------------------------------------------------------
// To a PipelineSpec.

type Mutable<T> = { -readonly [K in keyof T]?: T[K] };

/** Drops undefined fields (and mappings left empty), so the runner's defaults apply. */
function compact<T extends object>(o: T): T | undefined {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(o)) {
    if (v === undefined) continue;
    if (v !== null && typeof v === "object" && !Array.isArray(v)) {
      const c = compact(v as object);
      if (c !== undefined) out[k] = c;
    } else out[k] = v;
  }
  return Object.keys(out).length > 0 ? (out as T) : undefined;
}

type ScenarioDevice = NonNullable<NonNullable<Scenario["devices"]>["camera"]>;

function deviceSpec(d: ScenarioDevice | undefined): DeviceSpec | undefined {
  if (d === undefined) return undefined;
  return compact({
    coherent: d.coherent,
    dmaBits: d.dmaBits,
    iommu: d.iommu,
    bandwidthBytesPerNs: d.bandwidth,
  });
}

const LEVEL_NAMES = ["L1D", "L2", "L3", "L4"];

/** The profile overrides a scenario's `machine` section asks for. */
function machineOverrides(m: Scenario["machine"]): ProfileOverrides | undefined {
  if (m === undefined) return undefined;
  const o: Mutable<ProfileOverrides> = {
    cache: m.cache && {
      lineSize: m.cache.lineSize,
      levels: m.cache.levels?.map((lv, i) => ({
        name: lv.name ?? LEVEL_NAMES[i]!,
        sizeBytes: lv.sizeBytes,
        ways: lv.ways,
      })),
      replacement: m.cache.replacement,
    },
    maintenance: m.maintenance,
    coherentAttr: m.coherentAttr,
    speculativeFillRate: m.speculativeFillRate,
    forDeviceIgnoresDirection: m.forDeviceIgnoresDirection,
    swiotlbBytes: m.swiotlbBytes,
    cmaBytes: m.cmaBytes,
    ram: m.ram,
    costs: m.costs,
    device: m.device && {
      coherent: m.device.coherent,
      dmaBits: m.device.dmaBits,
      iommu: m.device.iommu,
      bandwidthBytesPerNs: m.device.bandwidth,
      setupNs: m.device.setupNs,
      dmaOffset: m.device.dmaOffset,
    },
  };
  return compact(o);
}

/**
 * The {@link PipelineSpec} a scenario describes. Fields the scenario leaves out are left
 * out of the spec (the runner's defaults apply); `extra` is merged over the result
 * (`{ trace: true }`, a sweep's grid point).
 */
export function scenarioToSpec(s: Scenario, extra: Partial<PipelineSpec> = {}): PipelineSpec {
  const p = s.pipeline;
  const b = s.buffers;
  const spec: Mutable<PipelineSpec> = {
    name: s.name,
    profile: s.machine?.profile,
    overrides: machineOverrides(s.machine),
    pipeline: p?.kind,
    strategy: p?.strategy,
    source: b?.source,
    heap: b?.heap,
    width: b?.width,
    height: b?.height,
    format: b?.format,
    bufferBytes: b?.bufferBytes,
    frames: p?.frames,
    buffers: b?.count,
    fps: p?.fps,
    cpuReads: p?.cpu?.reads,
    cpuWrites: p?.cpu?.writes,
    hints: p?.hints,
    devices: s.devices && {
      camera: deviceSpec(s.devices.camera),
      gpu: deviceSpec(s.devices.gpu),
      display: deviceSpec(s.devices.display),
    },
    fault: p?.fault,
    faults: p?.faults,
    seed: s.seed,
  };
  const graph = s.graph && scenarioGraph(s.graph);
  return { ...(compact(spec) ?? {}), ...(graph ? { graph } : {}), ...extra };
}

/** A scenario's `graph` section as a GraphSpec (bandwidth in bytes per ns, defaults left to the runner). */
function scenarioGraph(g: NonNullable<Scenario["graph"]>): GraphSpec {
  const devices: Record<string, GraphDevice> = {};
  for (const [name, d] of Object.entries(g.devices)) {
    devices[name] = {
      kind: d.kind,
      ...compact({
        coherent: d.coherent,
        dmaBits: d.dmaBits,
        iommu: d.iommu,
        bandwidthBytesPerNs: d.bandwidth,
        setupNs: d.setupNs,
        allocator: d.allocator,
        bidirectional: d.bidirectional,
        boMapping: d.boMapping,
      }),
    };
  }
  const pools: Record<string, GraphPool> = {};
  for (const [name, p] of Object.entries(g.pools ?? {})) {
    pools[name] = {
      source: p.source,
      count: p.count,
      ...compact({ heap: p.heap, format: p.format, header: p.header }),
    };
  }
  const stages: GraphStage[] = g.stages.map((st) => ({
    name: st.name,
    inputs: st.inputs ?? [],
    ...compact({
      device: st.device,
      pool: st.pool,
      op: st.op,
      sync: st.sync,
      fps: st.fps,
      fault: st.fault,
      faults: st.faults,
    }),
    ...(st.cpu
      ? {
          cpu: {
            read: st.cpu.read ?? false,
            write: st.cpu.write ?? false,
            ...compact({
              top: st.cpu.top,
              lines: st.cpu.lines,
              fraction: st.cpu.fraction,
              left: st.cpu.left,
              bytesPerLine: st.cpu.bytesPerLine,
            }),
          },
        }
      : {}),
  }));
  return { devices, pools, stages, ...(g.primary !== undefined ? { primary: g.primary } : {}) };
}

/**
 * Runs a scenario: {@link scenarioToSpec} then the pipeline runner (`runPipeline` of
 * src/pipelines/run.ts unless another is given, e.g. by tests).
 */
export function runScenario(
  s: Scenario,
  options: { trace?: boolean; runner?: (spec: PipelineSpec) => PipelineResult } = {},
): PipelineResult {
  const spec = scenarioToSpec(s, options.trace ? { trace: true } : {});
  return (options.runner ?? runPipeline)(spec);
}
