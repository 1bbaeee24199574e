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
 * Options: `--trials N` (default 4) pairs of runs of the rounds.
 */

import { execFileSync } from "node:child_process";
import { existsSync, mkdtempSync, rmSync, symlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { DmaMappingApi } from "../src/dma/mapping.js";
import { DMA_BIDIRECTIONAL } from "../src/index.js";
import { Machine } from "../src/machine/machine.js";
import { alternate, dmaRig, MemcpyBaseline, type ModelClasses } from "./measure.js";

/** The commit issue 13 was filed on (the last of 2026-11-25). */
const FILING_COMMIT = "04c89a5";
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

async function main(): Promise<void> {
  const at = process.argv.indexOf("--trials");
  const trials = at < 0 ? 4 : Number(process.argv[at + 1]);
  if (!Number.isInteger(trials) || trials < 1)
    fail(`--trials: expected a whole number at least 1; got ${process.argv[at + 1]}`);
  const root = fileURLToPath(new URL("../..", import.meta.url));
  try {
    execFileSync("git", ["-C", root, "cat-file", "-e", `${FILING_COMMIT}^{commit}`], {
      stdio: "ignore",
    });
  } catch {
    fail(`commit ${FILING_COMMIT} is not in this checkout's history (a shallow clone?)`);
  }
  const tmp = mkdtempSync(join(tmpdir(), "dmabuf-filing-"));
  const tree = join(tmp, "tree");
  try {
    console.log(`building ${FILING_COMMIT} in ${tree}`);
    execFileSync("git", ["-C", root, "worktree", "add", "--detach", tree, FILING_COMMIT], {
      stdio: "ignore",
    });
    // Today's dependencies serve it (its lockfile's TypeScript builds it the same).
    if (existsSync(join(root, "node_modules")))
      symlinkSync(join(root, "node_modules"), join(tree, "node_modules"));
    execFileSync(
      process.execPath,
      [join(root, "node_modules/typescript/bin/tsc"), "-p", join(tree, "tsconfig.json")],
      { stdio: "inherit" },
    );
    const filing = await filingModel(tree);
    const today: ModelClasses = { Machine, DmaMappingApi, DMA_BIDIRECTIONAL };
    const filingRatios: number[] = [];
    const todayRatios: number[] = [];
    for (let t = 0; t < trials; t++) {
      // The bench's sequence, (b) then (b0), with today's (b0) and with the filing's in its place.
      const base = new MemcpyBaseline(SIZE);
      const [b, b0] = alternate([dmaRig(today, SIZE, true), dmaRig(today, SIZE, false)], base);
      const baseF = new MemcpyBaseline(SIZE);
      const [bF, old] = alternate([dmaRig(today, SIZE, true), dmaRig(filing, SIZE, true)], baseF);
      const r = (x: { rate: number }, m: MemcpyBaseline): number => x.rate / m.rate;
      todayRatios.push(r(b0!, base));
      filingRatios.push(r(old!, baseF));
      console.log(
        `trial ${t + 1}: today (b) ${r(b!, base).toFixed(2)} x, (b0) ${r(b0!, base).toFixed(2)} x | beside today's (b) ${r(bF!, baseF).toFixed(2)} x, the filing's tracked DMA ${r(old!, baseF).toFixed(2)} x (${old!.ms.toFixed(3)} ms)`,
      );
    }
    const range = (xs: number[]): string =>
      `${Math.min(...xs).toFixed(2)}-${Math.max(...xs).toFixed(2)}`;
    const below = todayRatios.filter((x, i) => x < filingRatios[i]!).length;
    console.log(
      `tracked DMA without fills, ${trials} trials: today ${range(todayRatios)} x memcpy (median ${median(todayRatios).toFixed(2)}), the filing's ${range(filingRatios)} x (median ${median(filingRatios).toFixed(2)}); today's below the filing's in ${below} of ${trials}`,
    );
    const out = execFileSync(process.execPath, [join(tree, "dist/bench/bench.js")], {
      encoding: "utf8",
      stdio: ["ignore", "pipe", "ignore"],
    });
    const line = out.split("\n").find((l) => l.startsWith("(a) cache-line ops"));
    console.log(
      `the filing's own bench: ${line?.replace(/\s+/g, " ") ?? "no cache-line ops line"}`,
    );
  } finally {
    try {
      execFileSync("git", ["-C", root, "worktree", "remove", "--force", tree], { stdio: "ignore" });
    } catch {
      // Not added (the build failed first): the directory goes below.
    }
    rmSync(tmp, { recursive: true, force: true });
  }
}

await main();
