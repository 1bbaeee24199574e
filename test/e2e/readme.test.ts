/**
 * The README's quick start, as a newcomer runs it: a fresh clone, `npm ci`, the main
 * job, then `npm test`'s lint — in that order. The main job must leave the checkout as
 * it found it (its report goes into the ignored out/), so the lint that `npm test` runs
 * first still passes and `git status` is clean.
 *
 * The main job runs with --quick (four sizes instead of ten: the same command, the same
 * tables, crossover lines and report, fewer points); the full suite is not run again
 * inside the clone.
 *
 * It installs and builds a whole second checkout, which takes about a minute on an idle
 * machine but ten on a loaded one, so it runs only when asked: `npm run test:readme`
 * (DMABUF_README_E2E=1), as CI should after `npm test`.
 */

import assert from "node:assert/strict";
import { execFileSync, spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";

const ROOT = process.cwd();
const NPM = process.platform === "win32" ? "npm.cmd" : "npm";
const NPX = process.platform === "win32" ? "npx.cmd" : "npx";
let dir = "";
after(() => {
  if (dir !== "") rmSync(dir, { recursive: true, force: true });
});

function run(cmd: string, args: string[], cwd: string): string {
  const r = spawnSync(cmd, args, {
    cwd,
    encoding: "utf8",
    env: { ...process.env, CI: "1", NO_COLOR: "1" },
    maxBuffer: 64 * 1024 * 1024,
  });
  assert.equal(
    r.status,
    0,
    `${cmd} ${args.join(" ")} exited ${r.status}:\n${r.stdout}\n${r.stderr}`,
  );
  return `${r.stdout}${r.stderr}`;
}

const skip =
  process.env["DMABUF_README_E2E"] === "1"
    ? false
    : "installs a second checkout; run it with `npm run test:readme`";

test("README: `npm ci && npx dmabuf`, then `npm test`'s lint, on a fresh clone", { skip }, () => {
  dir = mkdtempSync(join(tmpdir(), "dmabuf-clone-"));
  const clone = join(dir, "dmabuf");
  execFileSync("git", ["clone", "--quiet", ROOT, clone]);
  run(NPM, ["ci", "--prefer-offline", "--no-audit", "--no-fund"], clone);
  const out = run(NPX, ["dmabuf", "--quick", "--quiet"], clone);
  assert.match(out, /Coherence: all \d+ runs coherent/);
  assert.match(out, /whole-cache flushing cheaper than per-line: from \d+ KiB up/);
  const report = join(clone, "out", "dmabuf-report.html");
  assert.ok(existsSync(report), "the report went into out/");
  assert.match(out, new RegExp(`HTML report: ${report.replaceAll(".", "\\.")}`));
  assert.match(readFileSync(report, "utf8"), /<svg/);
  // `npm test` starts with the build and the lint; both must still pass in the clone.
  run(NPX, ["tsc", "-p", "tsconfig.json", "--noEmit"], clone);
  run(NPX, ["biome", "check", "."], clone);
  assert.equal(
    execFileSync("git", ["status", "--porcelain"], { cwd: clone, encoding: "utf8" }),
    "",
    "the checkout is as clean as it was cloned",
  );
});
