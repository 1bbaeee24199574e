/**
 * What docs/reports.md promises of a trace, checked on real runs of the bundled
 * scenarios: ownership spans per buffer (the DMA API's hand-overs on "BUFFER / DEVICE",
 * the CPU-access brackets and the vb2 QBUF/DQBUF ownership on the buffer's own track),
 * fence instants and waits per fence context, every event in a shape Perfetto loads.
 */

import assert from "node:assert/strict";
import { readdirSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";
import { type MemAttr, ownershipRuleApplies } from "../../src/machine/cpu.js";
import { MAPPING_TRACK_SEPARATOR } from "../../src/machine/trace.js";
import { runPipeline } from "../../src/pipelines/run.js";
import type { PipelineResult } from "../../src/pipelines/types.js";
import { type ChromeTrace, type ChromeTraceEvent, toChromeTrace } from "../../src/report/trace.js";
import {
  loadScenarioFile,
  parseScenario,
  readScenarioData,
  runScenario,
} from "../../src/scenarios/scenario.js";
import { assertWellFormed } from "./fixtures.js";

const SCENARIOS = join(process.cwd(), "examples", "scenarios");

const runs = new Map<string, PipelineResult>();

/** A bundled scenario's run with its trace (run once per file). */
function run(name: string): PipelineResult {
  let r = runs.get(name);
  if (r === undefined) {
    r = runScenario(loadScenarioFile(join(SCENARIOS, `${name}.yaml`)), { trace: true });
    runs.set(name, r);
  }
  return r;
}

/** A trace's events by thread name (lane 0 and extra lanes kept apart). */
function byThread(t: ChromeTrace): Map<string, ChromeTraceEvent[]> {
  const names = new Map<string, string>();
  for (const e of t.traceEvents)
    if (e.name === "thread_name") names.set(`${e.pid}/${e.tid}`, String(e.args!.name));
  const out = new Map<string, ChromeTraceEvent[]>();
  for (const e of t.traceEvents) {
    if (e.ph === "M") continue;
    const n = names.get(`${e.pid}/${e.tid}`)!;
    out.set(n, [...(out.get(n) ?? []), e]);
  }
  return out;
}

/** Whole ns, as the trace's µs are k/1000. */
const ns = (us: number): number => Math.round(us * 1000);
const end = (e: ChromeTraceEvent): number => ns(e.ts + (e.dur ?? 0));

interface Finding {
  readonly access: ChromeTraceEvent;
  readonly why: string;
}

/**
 * Userspace CPU accesses (through an mmap) to a named buffer that are not bracketed on
 * the buffer's track (by "cpu access" for a dma-buf, "userspace" for V4L2), or that happen while the latest DMA API
 * hand-over among the buffer's mappings gave it to a device (the checker's rule: the
 * latest dma_sync_*_for_cpu / _for_device of the pages decides), for the accesses the
 * checker holds to that rule: the access's `attr` decides, by the checker's own
 * {@link ownershipRuleApplies} (a write-combined or uncached access bypasses the cache).
 */
function unbracketedAccesses(
  t: ChromeTrace,
  ruleApplies: (attr: MemAttr) => boolean = ownershipRuleApplies,
): Finding[] {
  const threads = byThread(t);
  const found: Finding[] = [];
  for (const a of threads.get("cpu") ?? []) {
    const buffer = a.args?.["buffer"];
    if (a.cat !== "cpu" || typeof buffer !== "string" || !a.name.includes("mmap")) continue;
    const at = ns(a.ts);
    const own = [...threads.entries()]
      .filter(([n]) => n === buffer || n.startsWith(`${buffer} #`))
      .flatMap(([, list]) => list);
    // Through a dma-buf's mmap the bracket is DMA_BUF_IOCTL_SYNC; through a V4L2 mmap,
    // the time between DQBUF and QBUF.
    const bracket = a.name.includes("mmap of dmabuf") ? "cpu access" : "userspace";
    const bracketed = own.some(
      (s) => s.cat === "ownership" && s.name === bracket && ns(s.ts) <= at && end(a) <= end(s),
    );
    if (!bracketed) found.push({ access: a, why: `outside a "${bracket}" span` });
    if (!ruleApplies(memAttr(a))) continue;
    const live = [...threads.entries()]
      .filter(([n]) => n.startsWith(`${buffer}${MAPPING_TRACK_SEPARATOR}`))
      .flatMap(([, list]) => list)
      .filter((s) => s.cat === "ownership" && ns(s.ts) <= at && at < end(s));
    const latest = live.sort((x, y) => ns(y.ts) - ns(x.ts))[0];
    if (latest !== undefined && latest.name !== "cpu")
      found.push({ access: a, why: `while ${latest.name} owns it by the DMA API` });
  }
  return found;
}

/** A CPU access's mapping attribute (arg `attr`, docs/reports.md). */
function memAttr(a: ChromeTraceEvent): MemAttr {
  const attr = a.args?.["attr"];
  assert.ok(
    attr === "cached" || attr === "uncached" || attr === "writecombine",
    `${a.ts} ${a.name}: attr ${String(attr)}`,
  );
  return attr;
}

describe("trace: buffer ownership spans and fence instants (docs/reports.md)", () => {
  const bundled = readdirSync(SCENARIOS)
    .filter((f) => f.endsWith(".yaml"))
    .map((f) => f.slice(0, -".yaml".length))
    .sort();

  it("every bundled scenario's trace loads as Perfetto JSON and has ownership spans", () => {
    assert.ok(bundled.length >= 7);
    for (const name of bundled) {
      const r = run(name);
      const t = toChromeTrace(r);
      assertWellFormed(t);
      // Perfetto's JSON importer: the object form, µs timestamps, pid/tid integers.
      assert.deepEqual(JSON.parse(JSON.stringify(t)), t, name);
      const own = t.traceEvents.filter((e) => e.cat === "ownership");
      assert.ok(own.length > 0, `${name}: no ownership spans`);
      assert.ok(
        own.every((e) => e.ph === "X"),
        `${name}: ownership events are spans`,
      );
      // Each buffer of the run has its own track in process "buffers".
      const threads = byThread(t);
      for (const b of r.buffers) assert.ok(threads.has(b.name), `${name}: no track ${b.name}`);
    }
  });

  it("a coherent run touches a buffer only inside a bracket and after a hand-over to the CPU", () => {
    for (const name of bundled) {
      const r = run(name);
      if (r.verdict !== "coherent") continue;
      const bad = unbracketedAccesses(toChromeTrace(r));
      assert.deepEqual(
        bad.map((f) => `${f.access.ts} ${f.access.name} ${f.access.args?.["buffer"]}: ${f.why}`),
        [],
        name,
      );
    }
  });

  it("shows the CPU touching a device-owned buffer exactly where the checker names it", () => {
    for (const name of ["libcamera-79-missing-sync-start", "lying-hint", "udmabuf-first-sync"]) {
      const r = run(name);
      assert.equal(r.verdict, "incoherent");
      const owned = unbracketedAccesses(toChromeTrace(r))
        .filter((f) => f.why.includes("owns it by the DMA API"))
        .map((f) => ns(f.access.ts));
      const named = r.violations
        .filter((v) => v.kind === "cpu-access-device-owned")
        .map((v) => Math.round(v.time));
      assert.ok(named.length > 0, name);
      assert.deepEqual([...new Set(owned)], [...new Set(named)], name);
    }
  });

  it("a write-combined read under a display's lifelong mapping is not the device's (coherent run)", () => {
    // The non-coherent GPU's shmem objects are write-combined for the CPU; the pinned
    // GPU keeps its importer mapping (device-owned) while the screenshot reads them.
    const r = run("gpu-own-buffers");
    assert.equal(r.verdict, "coherent");
    assert.ok(!r.violations.some((v) => v.kind === "cpu-access-device-owned"));
    const t = toChromeTrace(r);
    // Every CPU access under a device's mapping, whatever its attribute (the old rule).
    const underDevice = unbracketedAccesses(t, () => true);
    assert.ok(underDevice.length >= 6, `${underDevice.length} accesses under a device`);
    for (const f of underDevice) {
      assert.match(f.why, /^while compositor owns it by the DMA API$/);
      assert.equal(f.access.args?.["attr"], "writecombine");
    }
    assert.deepEqual(unbracketedAccesses(t), []);
  });

  it("a cached read under a display's lifelong mapping is found where the checker names it", () => {
    // The same graph with a coherent GPU: its objects are cached for the CPU.
    const src = readScenarioData(join(SCENARIOS, "gpu-own-buffers.yaml"));
    const data = structuredClone(src.data) as {
      graph: { devices: { gpu: { coherent: boolean } } };
    };
    data.graph.devices.gpu.coherent = true;
    const r = runScenario(parseScenario(data), { trace: true });
    const found = unbracketedAccesses(toChromeTrace(r));
    assert.ok(found.length > 0);
    for (const f of found) {
      assert.match(f.why, /owns it by the DMA API$/);
      assert.equal(f.access.args?.["attr"], "cached");
    }
    const named = r.violations
      .filter((v) => v.kind === "cpu-access-device-owned")
      .map((v) => Math.round(v.time));
    assert.deepEqual([...new Set(found.map((f) => ns(f.access.ts)))], [...new Set(named)]);
  });

  it("without DMA_BUF_SYNC_START the trace shows the access outside the bracket", () => {
    const r = runPipeline({
      pipeline: "camera-cpu-display",
      fault: "omit-sync-start",
      frames: 4,
      trace: true,
    });
    const bad = unbracketedAccesses(toChromeTrace(r));
    assert.ok(bad.length >= 4);
    assert.ok(bad.every((f) => f.why === 'outside a "cpu access" span'));
    assert.ok(
      r.violations.some((v) => v.kind === "api-misuse" && /without a START/.test(v.message)),
    );
  });

  it("DMA API spans alternate device and CPU per mapping, as the sync calls say", () => {
    const t = toChromeTrace(run("camera-cpu-display"));
    const threads = byThread(t);
    const mapping = threads.get(`cam0${MAPPING_TRACK_SEPARATOR}vivid-cap`)!;
    assert.ok(mapping.length >= 4);
    const names = mapping.sort((a, b) => a.ts - b.ts).map((e) => e.name);
    // Mapped at REQBUFS (the device's), then CPU after dma_sync_sg_for_cpu, and back.
    assert.equal(names[0], "vivid-cap");
    for (let i = 1; i < names.length; i++) assert.notEqual(names[i], names[i - 1]);
    // Sequential: one owner at a time on a mapping.
    for (let i = 1; i < mapping.length; i++) assert.ok(ns(mapping[i]!.ts) >= end(mapping[i - 1]!));
    // Each hand-over to the CPU starts at a dma_sync_sg_for_cpu of that mapping.
    const syncs = threads
      .get("cpu")!
      .filter((e) => e.name === "dma_sync_sg_for_cpu")
      .map((e) => ns(e.ts));
    for (const s of mapping.filter((e) => e.name === "cpu"))
      assert.ok(syncs.includes(ns(s.ts)), `cpu span at ${s.ts} without a sync_for_cpu`);
  });

  it("vb2 ownership: userspace from REQBUFS or DQBUF to QBUF, the driver from QBUF to DQBUF", () => {
    const t = toChromeTrace(run("camera-cpu-display"));
    const threads = byThread(t);
    for (const b of ["cam0", "cam1", "cam2", "cam3"]) {
      const list = threads.get(b)!;
      assert.ok(!threads.has(`${b} #2`), `${b}: spans that do not nest`);
      const vb2 = list.filter((e) => e.cat === "ownership" && e.args?.["queue"] !== undefined);
      assert.ok(vb2.length >= 3, b);
      for (let i = 0; i < vb2.length; i++) {
        // REQBUFS leaves the buffer with userspace; QBUF gives it to the driver.
        assert.equal(vb2[i]!.name, i % 2 === 0 ? "userspace" : "vivid-cap", `${b} span ${i}`);
        if (i > 0) assert.equal(ns(vb2[i]!.ts), end(vb2[i - 1]!), `${b}: a gap or overlap`);
      }
      // Every CPU-access bracket lies inside a span where userspace holds the buffer.
      for (const br of list.filter((e) => e.name === "cpu access")) {
        assert.ok(
          vb2.some((u) => u.name === "userspace" && ns(u.ts) <= ns(br.ts) && end(br) <= end(u)),
          `${b}: bracket at ${br.ts} while queued`,
        );
      }
    }
  });

  it("every fence signal follows its init on the fence's context, and waits end at the signal", () => {
    let checked = 0;
    for (const name of bundled) {
      const t = toChromeTrace(run(name));
      const fences = t.traceEvents.filter((e) => e.cat === "fence");
      const key = (e: ChromeTraceEvent): string => `${e.args!["context"]}:${e.args!["seqno"]}`;
      const inits = new Map<string, ChromeTraceEvent>();
      const signals = new Map<string, ChromeTraceEvent>();
      for (const e of fences) {
        if (e.name === "dma_fence_init") {
          assert.equal(e.ph, "i");
          inits.set(key(e), e);
        } else if (e.name === "dma_fence_signal") {
          assert.equal(e.ph, "i");
          assert.ok(!signals.has(key(e)), `${name}: ${key(e)} signalled twice`);
          signals.set(key(e), e);
          const init = inits.get(key(e));
          assert.ok(init !== undefined, `${name}: ${key(e)} signalled before its init`);
          assert.ok(init.ts <= e.ts);
          assert.equal(init.tid, e.tid, `${name}: ${key(e)} init and signal on one track`);
          assert.equal(typeof e.args!["driver"], "string");
          checked++;
        }
      }
      for (const w of fences.filter((e) => e.name === "dma_fence_wait")) {
        assert.equal(w.ph, "X");
        if (w.args!["signaled"] !== true) continue;
        const s = signals.get(key(w));
        assert.ok(s !== undefined, `${name}: wait on ${key(w)} ended, nothing signalled it`);
        assert.ok(ns(w.ts) <= ns(s.ts) && ns(s.ts) <= end(w), `${name}: wait ${key(w)}`);
      }
    }
    assert.ok(checked > 20, `only ${checked} fence signals in the bundled scenarios`);
  });

  it("names each fence context's thread after its driver and timeline, in process fences", () => {
    const t = toChromeTrace(run("camera-gpu-display"));
    const names = t.traceEvents.filter((e) => e.name === "thread_name");
    const fencesPid = t.traceEvents.find(
      (e) => e.name === "process_name" && e.args!["name"] === "fences",
    )!.pid;
    const ctx = names.filter((e) => e.pid === fencesPid).map((e) => String(e.args!["name"]));
    assert.ok(
      ctx.some((n) => /^fence context \d+ \(simgpu simgpu-ring\)$/.test(n)),
      ctx.join(),
    );
  });

  it("recording costs nothing the run can see: same costs, frames and verdict without it", () => {
    for (const name of ["camera-cpu-display", "camera-gpu-display", "missing-sync-end"]) {
      const s = loadScenarioFile(join(SCENARIOS, `${name}.yaml`));
      const on = run(name);
      const off = runScenario(s);
      assert.equal(off.trace.length, 0);
      assert.deepEqual(on.costs, off.costs, name);
      assert.deepEqual(on.frames, off.frames, name);
      assert.equal(on.elapsedNs, off.elapsedNs, name);
      assert.deepEqual(on.violations, off.violations, name);
    }
  });
});
