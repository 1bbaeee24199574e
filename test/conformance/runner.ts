/**
 * A runner for the conformance suite that needs no test harness: each case of ./suite.ts
 * on a fresh Uapi, one result per case — pass, fail (with the difference, e.g. "expected
 * EINVAL, got ENOTTY"), or unsupported (a capability this backend lacks, detected at run
 * time). Results print as one JSON line per case between markers, so a serial console
 * (the kernel booted in QEMU by scripts/kernel-conformance.mjs) carries them to the host,
 * which parses them back with {@link parseConformanceOutput}.
 *
 * As a program (does nothing without --backend, so `node --test dist/test/` may load it):
 *   node dist/test/conformance/runner.js --backend linux|sim-arm64|sim-x86-64 [--suite S]...
 */

import { AssertionError } from "node:assert/strict";
import { performance } from "node:perf_hooks";
import type { Uapi } from "../../src/uapi/uapi.js";
import {
  type Capability,
  type ConformanceCase,
  conformanceCases,
  type SuiteName,
} from "./suite.js";

export type CaseStatus = "pass" | "fail" | "unsupported";

export interface CaseResult {
  readonly suite: SuiteName;
  readonly name: string;
  readonly status: CaseStatus;
  /** fail: what differed; unsupported: what is missing and why. */
  readonly detail?: string;
  /** The case's own todo note, if it has one. */
  readonly todo?: string;
  readonly ms: number;
}

export interface RunHeader {
  readonly backend: string;
  readonly kernel?: string;
  readonly capabilities: readonly Capability[];
  readonly missing?: Partial<Record<Capability, string>>;
}

export interface RunOptions {
  readonly capabilities: readonly Capability[];
  /** Why each missing capability is missing (shown on unsupported cases). */
  readonly missing?: Partial<Record<Capability, string>>;
  readonly suites?: readonly SuiteName[];
  /** Called as each case finishes (the VM prints it at once, so a hang loses only one). */
  readonly onResult?: (r: CaseResult) => void;
  /** Called after each case with the Uapi it used (LinuxUapi unmaps what a failed case left). */
  readonly afterCase?: (u: Uapi) => void;
}

export const BEGIN_MARKER = "@@DMABUF-CONFORMANCE-BEGIN";
export const CASE_MARKER = "@@DMABUF-CASE";
export const INFO_MARKER = "@@DMABUF-INFO";
export const END_MARKER = "@@DMABUF-CONFORMANCE-END";

/** The key a case is matched by across backends. */
export function caseKey(c: { readonly suite: string; readonly name: string }): string {
  return `${c.suite}: ${c.name}`;
}

/** An error as one line: an assertion's message (expectErrno says expected vs got), or code + why. */
function describe(e: unknown): string {
  if (e instanceof Error) {
    // An assertion with its own message (expectErrno's "expected X, got Y") says it all;
    // a generated one needs its diff lines. Colour escapes dropped either way.
    const own = e.name === "AssertionError" && "generatedMessage" in e && !e.generatedMessage;
    const plain = e.message
      .split(String.fromCharCode(27))
      .map((p, i) => (i === 0 ? p : p.replace(/^\[[0-9;]*m/, "")))
      .join("");
    const firstLines = plain
      .split("\n")
      .slice(0, own ? 1 : 8)
      .join(" | ");
    let text = e.name === "AssertionError" ? firstLines : `${e.name}: ${firstLines}`;
    if (own && e instanceof AssertionError && e.operator !== "fail") {
      const prim = (v: unknown): boolean => v === null || typeof v !== "object";
      if (prim(e.actual) && prim(e.expected) && !firstLines.includes(String(e.expected)))
        text += ` (actual ${String(e.actual)}, expected ${String(e.expected)})`;
    }
    return text.length > 500 ? `${text.slice(0, 500)}…` : text;
  }
  return String(e);
}

/** Runs one case: its needs against the capabilities, then its body on a fresh Uapi. */
export function runCase(
  c: ConformanceCase,
  makeUapi: (c: ConformanceCase) => Uapi,
  opts: RunOptions,
): CaseResult {
  const have = new Set(opts.capabilities);
  const lacking = (c.needs ?? []).filter((n) => !have.has(n));
  const base = { suite: c.suite, name: c.name, ...(c.todo !== undefined ? { todo: c.todo } : {}) };
  if (lacking.length > 0) {
    const why = lacking.map((n) => (opts.missing?.[n] ? `${n}: ${opts.missing[n]}` : n));
    return { ...base, status: "unsupported", detail: why.join("; "), ms: 0 };
  }
  const t0 = performance.now();
  let u: Uapi | undefined;
  try {
    u = makeUapi(c);
    c.run(u);
    return { ...base, status: "pass", ms: Math.round(performance.now() - t0) };
  } catch (e) {
    return { ...base, status: "fail", detail: describe(e), ms: Math.round(performance.now() - t0) };
  } finally {
    if (u !== undefined) opts.afterCase?.(u);
  }
}

/** Runs every case (of the chosen suites), in suite order. */
export function runConformance(
  makeUapi: (c: ConformanceCase) => Uapi,
  opts: RunOptions,
): CaseResult[] {
  const out: CaseResult[] = [];
  for (const c of conformanceCases) {
    if (opts.suites !== undefined && !opts.suites.includes(c.suite)) continue;
    const r = runCase(c, makeUapi, opts);
    opts.onResult?.(r);
    out.push(r);
  }
  return out;
}

export interface ParsedRun {
  readonly header: RunHeader | undefined;
  readonly results: CaseResult[];
  /** INFO lines (module loading, device nodes) in order. */
  readonly info: string[];
  /** Whether the END marker was seen (false: the run died or timed out part-way). */
  readonly complete: boolean;
}

/** Reads a run back from console output (CR/LF and unrelated lines tolerated). */
export function parseConformanceOutput(text: string): ParsedRun {
  let header: RunHeader | undefined;
  const results: CaseResult[] = [];
  const info: string[] = [];
  let complete = false;
  for (const raw of text.split("\n")) {
    const line = raw.replace(/\r$/, "");
    const at = (m: string): string | undefined => {
      const i = line.indexOf(m);
      return i < 0 ? undefined : line.slice(i + m.length).trim();
    };
    const begin = at(BEGIN_MARKER);
    if (begin !== undefined) {
      header = JSON.parse(begin) as RunHeader;
      continue;
    }
    const c = at(CASE_MARKER);
    if (c !== undefined) {
      results.push(JSON.parse(c) as CaseResult);
      continue;
    }
    const i = at(INFO_MARKER);
    if (i !== undefined) {
      info.push(i);
      continue;
    }
    if (at(END_MARKER) !== undefined) complete = true;
  }
  return { header, results, info, complete };
}

/** Counts by status. */
export function summarize(results: readonly CaseResult[]): Record<CaseStatus, number> {
  const s: Record<CaseStatus, number> = { pass: 0, fail: 0, unsupported: 0 };
  for (const r of results) s[r.status]++;
  return s;
}

async function main(argv: readonly string[]): Promise<number> {
  const arg = (name: string): string[] =>
    argv.flatMap((a, i) => (a === name && argv[i + 1] !== undefined ? [argv[i + 1]!] : []));
  const backend = arg("--backend")[0];
  if (backend === undefined) return 0;
  const suites = arg("--suite") as SuiteName[];
  let makeUapi: (c: ConformanceCase) => Uapi;
  let header: RunHeader;
  let afterCase: ((u: Uapi) => void) | undefined;
  if (backend === "linux") {
    const { openLinuxUapi, LinuxUapi } = await import("../../src/uapi/linux.js");
    const { detectLinuxCapabilities } = await import("./backends.js");
    const probe = openLinuxUapi();
    const det = detectLinuxCapabilities(probe);
    makeUapi = openLinuxUapi;
    afterCase = (u) => {
      if (u instanceof LinuxUapi) u.dispose();
    };
    header = {
      backend,
      kernel: det.kernel,
      capabilities: det.capabilities,
      missing: det.missing,
    };
  } else if (backend === "sim-arm64" || backend === "sim-x86-64") {
    const { makeSimUapi, SIM_CAPABILITIES } = await import("./sim-backend.js");
    const profile = backend === "sim-arm64" ? "arm64" : "x86-64";
    makeUapi = (c) => makeSimUapi({ profile }, c.needs);
    header = { backend, capabilities: SIM_CAPABILITIES };
  } else {
    process.stderr.write(`unknown backend ${backend} (linux, sim-arm64, sim-x86-64)\n`);
    return 2;
  }
  const print = (line: string): void => {
    process.stdout.write(`${line}\n`);
  };
  print(`${BEGIN_MARKER} ${JSON.stringify(header)}`);
  const results = runConformance(makeUapi, {
    capabilities: header.capabilities,
    ...(header.missing !== undefined ? { missing: header.missing } : {}),
    ...(suites.length > 0 ? { suites } : {}),
    ...(afterCase !== undefined ? { afterCase } : {}),
    onResult: (r) => print(`${CASE_MARKER} ${JSON.stringify(r)}`),
  });
  print(`${END_MARKER} ${JSON.stringify(summarize(results))}`);
  return 0;
}

if (process.argv.includes("--backend")) {
  main(process.argv.slice(2)).then(
    (code) => {
      process.exitCode = code;
    },
    (e: unknown) => {
      process.stderr.write(`conformance runner: ${describe(e)}\n`);
      process.exitCode = 1;
    },
  );
}
