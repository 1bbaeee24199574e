/**
 * `npm run bench:filing`: the reference figures of issue 13's "at least as fast as
 * today", measured again the way `npm run bench` measures today's. The code of the
 * issue's filing ({@link FILING_COMMIT}) is built in a temporary git worktree; its
 * tracked DMA runs in (b0)'s place beside today's (b), its rounds alternating with the
 * baseline's copies as the bench's do (bench/measure.ts), and today's (b) and (b0) run
 * the same way in the same process; its cache-line operations are read from its own
 * bench, whose cases are the same. The bench's DMA_NO_FILLS_RATIO_TARGET and
 * LINE_OPS_TARGET come from here.
 *
 * Options: `--trials N` (default 6): pairs of runs of the rounds.
 */

import { execFileSync } from "node:child_process";
import { existsSync, mkdtempSync, rmSync, symlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { DmaMappingApi } from "../src/dma/mapping.js";
import { DMA_BIDIRECTIONAL } from "../src/index.js";
import { Machine } from "../src/machine/machine.js";
import {
  alternate,
  COPY_RUNS,
  dmaRig,
  MemcpyBaseline,
  type ModelClasses,
  memcpyBackToBackAndInTurn,
} from "./measure.js";

/** The commit issue 13 was filed on (the last of 2026-11-25). */
const FILING_COMMIT = "04c89a5766ced6e69d3b0f5701cd47365d56c106";
const SIZE = 32 * 1024 * 1024;

function fail(message: string): never {
  console.error(`bench:filing: ${message}`);
  process.exit(1);
}

/** The filing's model classes, from its build in `tree`. */
async function filingModel(tree: string): Promise<ModelClasses> {
  const load = (path: string): Promise<Record<string, unknown>> =>
    import(pathToFileURL(join(tree, "dist", path)).href) as Promise<Record<string, unknown>>;
  const [machine, mapping, index] = await Promise.all([
    load("src/machine/machine.js"),
    load("src/dma/mapping.js"),
    load("src/index.js"),
  ]);
  // Its classes have today's names and the members the rigs use (its bench ran them).
  return {
    Machine: machine.Machine,
    DmaMappingApi: mapping.DmaMappingApi,
    DMA_BIDIRECTIONAL: index.DMA_BIDIRECTIONAL,
  } as ModelClasses;
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const h = s.length >> 1;
  return s.length % 2 === 1 ? s[h]! : (s[h - 1]! + s[h]!) / 2;
};

/** Runs a command, its output captured; a failure ends the run naming `what` and its stderr. */
function run(cmd: string, args: string[], what: string): string {
  try {
    return execFileSync(cmd, args, { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
  } catch (e) {
    const err = (e as { stderr?: string }).stderr?.trim();
    return fail(`${what} failed${err ? `: ${err}` : ""}`);
  }
}

async function main(): Promise<void> {
  const at = process.argv.indexOf("--trials");
  const trials = at < 0 ? 6 : Number(process.argv[at + 1]);
  if (!Number.isInteger(trials) || trials < 1)
    fail(`--trials: expected a whole number at least 1; got ${process.argv[at + 1]}`);
  const root = fileURLToPath(new URL("../..", import.meta.url));
  const tsc = join(root, "node_modules/typescript/bin/tsc");
  if (!existsSync(tsc)) fail(`no ${tsc}: run npm ci in ${root} first`);
  run(
    "git",
    ["-C", root, "cat-file", "-e", `${FILING_COMMIT}^{commit}`],
    `finding commit ${FILING_COMMIT} (a shallow clone?)`,
  );
  // A run killed before its cleanup left a worktree whose directory is gone: forget it.
  run("git", ["-C", root, "worktree", "prune"], "git worktree prune");
  const tmp = mkdtempSync(join(tmpdir(), "dmabuf-filing-"));
  const tree = join(tmp, "tree");
  let added = false;
  const cleanup = (): void => {
    if (added) {
      try {
        execFileSync("git", ["-C", root, "worktree", "remove", "--force", tree], {
          stdio: "ignore",
        });
      } catch {
        // Removed below with the directory; `git worktree prune` forgets it next time.
      }
    }
    rmSync(tmp, { recursive: true, force: true });
  };
  const onSignal = (): void => {
    cleanup();
    process.exit(130);
  };
  process.once("SIGINT", onSignal);
  process.once("SIGTERM", onSignal);
  try {
    console.log(`building ${FILING_COMMIT.slice(0, 12)} in ${tree}`);
    run(
      "git",
      ["-C", root, "worktree", "add", "--detach", tree, FILING_COMMIT],
      "git worktree add",
    );
    added = true;
    // Today's dependencies serve it (its lockfile's TypeScript builds it the same).
    symlinkSync(join(root, "node_modules"), join(tree, "node_modules"));
    run(process.execPath, [tsc, "-p", join(tree, "tsconfig.json")], `building ${FILING_COMMIT}`);
    const filing = await filingModel(tree);
    const today: ModelClasses = { Machine, DmaMappingApi, DMA_BIDIRECTIONAL };
    const copies = memcpyBackToBackAndInTurn(SIZE);
    console.log(
      `host memcpy of 32 MiB, best of ${COPY_RUNS}: back to back ${copies.backToBackMs.toFixed(3)} ms, four buffer pairs in turn ${copies.inTurnMs.toFixed(3)} ms`,
    );
    const filingRatios: number[] = [];
    const todayRatios: number[] = [];
    const r = (x: { rate: number }, m: MemcpyBaseline): number => x.rate / m.rate;
    for (let t = 0; t < trials; t++) {
      // The bench's sequence, (b) then (b0), with today's (b0) and with the filing's in
      // its place; which pair goes first alternates from trial to trial.
      const todays = (): string => {
        const base = new MemcpyBaseline(SIZE);
        const [b, b0] = alternate([dmaRig(today, SIZE, true), dmaRig(today, SIZE, false)], base);
        todayRatios.push(r(b0!, base));
        return `today (b) ${r(b!, base).toFixed(2)} x, (b0) ${r(b0!, base).toFixed(2)} x`;
      };
      const filings = (): string => {
        const base = new MemcpyBaseline(SIZE);
        const [b, old] = alternate([dmaRig(today, SIZE, true), dmaRig(filing, SIZE, true)], base);
        filingRatios.push(r(old!, base));
        return `beside today's (b) ${r(b!, base).toFixed(2)} x, the filing's tracked DMA ${r(old!, base).toFixed(2)} x (${old!.ms.toFixed(3)} ms)`;
      };
      const [first, second] = t % 2 === 0 ? [todays(), filings()] : [filings(), todays()];
      console.log(
        `trial ${t + 1}: ${t % 2 === 0 ? `${first} | ${second}` : `${second} | ${first}`}`,
      );
    }
    const range = (xs: number[]): string =>
      `${Math.min(...xs).toFixed(2)}-${Math.max(...xs).toFixed(2)}`;
    const below = todayRatios.filter((x, i) => x < filingRatios[i]!).length;
    console.log(
      `tracked DMA without fills, ${trials} trials: today ${range(todayRatios)} x memcpy (median ${median(todayRatios).toFixed(2)}), the filing's ${range(filingRatios)} x (median ${median(filingRatios).toFixed(2)}); today's below the filing's in ${below} of ${trials}`,
    );
    const out = run(process.execPath, [join(tree, "dist/bench/bench.js")], "the filing's bench");
    const line = out.split("\n").find((l) => l.startsWith("(a) cache-line ops"));
    console.log(
      `the filing's own bench: ${line?.replace(/\s+/g, " ") ?? "no cache-line ops line"}`,
    );
  } finally {
    process.off("SIGINT", onSignal);
    process.off("SIGTERM", onSignal);
    cleanup();
  }
}

await main();
