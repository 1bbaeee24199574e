/**
 * Every registered cache-maintenance and sync call site of src/ (test/pipelines/
 * call-site-census.ts reads them from the source) runs in at least one bundled scenario:
 * what never runs is never checked. The mutation test (mutate.test.ts) then shows that
 * leaving each of them out, flipping and shrinking it is caught or explained harmless.
 */

import assert from "node:assert/strict";
import { test } from "node:test";
import type { FaultSiteStats } from "../../src/machine/fault-inject.js";
import { runPipeline } from "../../src/pipelines/run.js";
import { bundledScenarios, smallBundledSpec } from "./bundled.js";
import { callPoints, layerFaultPoints, reachedBy } from "./call-site-census.js";

const ROOT = process.cwd();

/**
 * Call points no bundled scenario can reach, each with the reason. Kept short: an entry
 * here is code the checker is never shown.
 */
const NOT_IN_SCENARIOS: Readonly<Record<string, string>> = {
  "stale-data.ts":
    "the DMA-API walk-through of `dmabuf stale` (src/scenarios/stale-data.ts) is a program of its own, not a pipeline; test/scenarios covers it",
};
const LAYER_POINTS_NOT_IN_SCENARIOS: Readonly<Record<string, string>> = {
  dma_sync_single_for_cpu:
    "no driver of the model calls dma_sync_single_*; only `dmabuf stale` does",
  dma_sync_single_for_device:
    "no driver of the model calls dma_sync_single_*; only `dmabuf stale` does",
};

/** Every bundled scenario's call sites, at the mutation test's size. */
function bundledSites(): Map<string, FaultSiteStats[]> {
  const out = new Map<string, FaultSiteStats[]>();
  for (const file of bundledScenarios()) {
    const r = runPipeline({
      ...smallBundledSpec(file),
      recordCallSites: true,
      recordCallStacks: true,
      trace: false,
    });
    out.set(file, [...(r.callSites ?? [])]);
  }
  return out;
}

/**
 * What no bundled scenario reaches yet, each with the reason (docs/hazards.md, "The
 * call-site census"): empty, every call point and fault point runs. The test fails when
 * this list is wrong either way: a newly unreached call point fails it, and so does one
 * that a scenario now reaches (take it off the list).
 */
const KNOWN_UNREACHED: Readonly<Record<string, string>> = {};

test("every registered call site of src/ runs in at least one bundled scenario", () => {
  const points = callPoints(ROOT);
  assert.ok(points.length > 30, `the census finds the call points (${points.length})`);
  const sites = bundledSites();
  const via = new Set<string>();
  const calls = new Set<string>();
  for (const list of sites.values())
    for (const s of list) {
      calls.add(s.call);
      for (const v of s.via) via.add(v);
    }
  const unreached = points
    .filter(
      (p) =>
        NOT_IN_SCENARIOS[p.file.split("/").pop()!] === undefined &&
        ![...via].some((v) => reachedBy(p, v)),
    )
    .map((p) => `${p.cls ?? p.module}.${p.fn} ${p.callee}`);
  const layer = layerFaultPoints(ROOT).filter(
    (n) => LAYER_POINTS_NOT_IN_SCENARIOS[n] === undefined && !calls.has(n),
  );
  const reached = points.length - unreached.length;
  console.log(
    `call sites reached by the bundled scenarios: ${reached}/${points.length} call points, ${layerFaultPoints(ROOT).length - layer.length}/${layerFaultPoints(ROOT).length} fault points`,
  );
  assert.deepEqual(
    [...new Set([...unreached, ...layer])].sort(),
    Object.keys(KNOWN_UNREACHED).sort(),
    "call points and fault points no bundled scenario reaches",
  );
});

test("a run that records no call sites (a sweep's) has every other result the same", () => {
  const strip = (r: ReturnType<typeof runPipeline>): unknown => {
    const { callSites: _sites, spec: _spec, ...rest } = r;
    return JSON.parse(JSON.stringify(rest));
  };
  // Scenarios without a fault plan (a plan turns recording on: its rules match call sites).
  const plain = bundledScenarios().filter((f) => {
    const s = smallBundledSpec(f);
    return (s.faults ?? []).length === 0 && (s.injections ?? []).length === 0;
  });
  for (const file of plain.slice(0, 6)) {
    const spec = { ...smallBundledSpec(file), trace: true };
    const recorded = runPipeline(spec);
    const quiet = runPipeline({ ...spec, recordCallSites: false });
    assert.ok((recorded.callSites ?? []).length > 0, `${file}: call sites recorded`);
    assert.equal(quiet.callSites, undefined, `${file}: none recorded`);
    assert.deepEqual(strip(quiet), strip(recorded), file);
  }
});
