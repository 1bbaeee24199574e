import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { type ChromeTrace, toChromeTrace, traceJson } from "../../src/report/trace.js";
import { assertWellFormed, runFixture } from "./fixtures.js";

function threadsOf(t: ChromeTrace): Map<string, { pid: number; tid: number; process: string }> {
  const procs = new Map<number, string>();
  for (const e of t.traceEvents)
    if (e.name === "process_name") procs.set(e.pid, String(e.args!.name));
  const out = new Map<string, { pid: number; tid: number; process: string }>();
  for (const e of t.traceEvents) {
    if (e.name === "thread_name")
      out.set(String(e.args!.name), { pid: e.pid, tid: e.tid, process: procs.get(e.pid)! });
  }
  return out;
}

describe("Chrome/Perfetto trace export", () => {
  it("is well formed: ph/ts/pid/tid everywhere, dur >= 0, every tid named, proper nesting", () => {
    assertWellFormed(toChromeTrace(runFixture()));
    assertWellFormed(toChromeTrace(runFixture({ trace: false })));
    assertWellFormed(toChromeTrace(runFixture({ frames: 0, badFrame: -1 })));
  });

  it("groups tracks into processes, CPU first, then devices, then buffers, then fences", () => {
    const t = toChromeTrace(runFixture());
    const threads = threadsOf(t);
    assert.equal(threads.get("cpu")?.process, "CPU");
    assert.equal(threads.get("vivid-cap")?.process, "devices");
    assert.equal(threads.get("simdisplay")?.process, "devices");
    for (const b of ["cam0", "cam1", "cam2", "cam3"])
      assert.equal(threads.get(b)?.process, "buffers");
    assert.equal(threads.get("fences")?.process, "fences");
    assert.equal(threads.get("frames")?.process, "pipeline");
    const sortIndex = new Map<string, number>();
    const names = new Map<number, string>();
    for (const e of t.traceEvents)
      if (e.name === "process_name") names.set(e.pid, String(e.args!.name));
    for (const e of t.traceEvents) {
      if (e.name === "process_sort_index")
        sortIndex.set(names.get(e.pid)!, Number(e.args!.sort_index));
    }
    assert.ok(sortIndex.get("CPU")! < sortIndex.get("devices")!);
    assert.ok(sortIndex.get("devices")! < sortIndex.get("buffers")!);
    assert.ok(sortIndex.get("buffers")! < sortIndex.get("fences")!);
    // One thread per track, with distinct tids.
    const tids = [...threads.values()].map((x) => x.tid);
    assert.equal(new Set(tids).size, tids.length);
    // Buffers in the result's order.
    const camTids = ["cam0", "cam1", "cam2", "cam3"].map((b) => threads.get(b)!.tid);
    assert.deepEqual(
      camTids,
      [...camTids].sort((a, b) => a - b),
    );
  });

  it("converts virtual ns to µs with sub-µs precision and keeps names, categories and args", () => {
    const r = runFixture();
    const t = toChromeTrace(r);
    const src = r.trace.find((e) => e.track === "vivid-cap")!;
    const ev = t.traceEvents.find((e) => e.ph === "X" && e.name === src.name)!;
    assert.equal(ev.cat, "dma");
    assert.equal(ev.ts, Math.round(src.ts) / 1000);
    assert.equal(ev.dur, Math.round(src.ts + src.dur!) / 1000 - Math.round(src.ts) / 1000);
    assert.equal(ev.ts, 1); // 1000 ns
    assert.deepEqual(ev.args, src.args);
    const own = t.traceEvents.filter((e) => e.cat === "ownership");
    assert.ok(own.length > 0);
    assert.ok(own.some((e) => e.name === "cpu (DMA_BUF_SYNC)"));
    const fence = t.traceEvents.find((e) => e.cat === "fence")!;
    assert.equal(fence.ph, "i");
    // Every machine event made it across.
    assert.equal(
      t.traceEvents.filter((e) => e.ph === "X").length,
      r.trace.filter((e) => e.ph === "X").length,
    );
  });

  it("puts violations on the agent's track with message and hint, and frame CRCs on 'frames'", () => {
    const r = runFixture();
    const t = toChromeTrace(r);
    const threads = threadsOf(t);
    const v = t.traceEvents.filter((e) => e.cat === "violation");
    assert.equal(v.length, 1);
    assert.equal(v[0]!.name, "stale-cpu-read");
    assert.equal(v[0]!.ph, "i");
    assert.equal(v[0]!.tid, threads.get("cpu")!.tid);
    assert.equal(v[0]!.ts, Math.round(r.violations[0]!.time) / 1000);
    assert.match(String(v[0]!.args!.hint), /DMA_BUF_IOCTL_SYNC/);
    assert.match(String(v[0]!.args!.message), /stale|cached/);
    assert.equal(v[0]!.args!.region, "cam1");
    const frames = t.traceEvents.filter(
      (e) => e.cat === "frame" && e.tid === threads.get("frames")!.tid,
    );
    assert.equal(frames.length, 8);
    const bad = frames.filter((e) => e.args!.ok === false);
    assert.equal(bad.length, 1);
    assert.match(bad[0]!.name, /frame 5 CRC mismatch/);
    assert.notEqual(bad[0]!.args!.crc, bad[0]!.args!.expected);
    assert.match(String(bad[0]!.args!.crc), /^0x[0-9a-f]{8}$/);
    // Cost counters: per frame and cumulative, one series per category.
    const counters = t.traceEvents.filter((e) => e.ph === "C");
    assert.equal(counters.filter((e) => e.name === "cost per frame (ns)").length, 8);
    const last = counters.filter((e) => e.name === "cost (ns, cumulative)").at(-1)!;
    assert.equal(last.args!["cache-maintenance"], Math.round(r.costs["cache-maintenance"].ns));
  });

  it("moves a partially overlapping span to a second thread of its track", () => {
    const t = toChromeTrace(runFixture({ overlap: true }));
    assertWellFormed(t);
    const threads = threadsOf(t);
    const second = threads.get("simdisplay #2");
    assert.ok(second, "no second lane for the overlapping span");
    assert.equal(second.process, "devices");
    const ev = t.traceEvents.find((e) => e.name === "overlapping job")!;
    assert.equal(ev.tid, second.tid);
  });

  it("is deterministic and valid JSON, one event per line", () => {
    const a = traceJson(runFixture());
    const b = traceJson(runFixture());
    assert.equal(a, b);
    const parsed = JSON.parse(a) as ChromeTrace;
    assert.deepEqual(parsed, JSON.parse(JSON.stringify(toChromeTrace(runFixture()))));
    assert.equal(parsed.metadata.verdict, "incoherent");
    assert.equal(parsed.metadata.fault, "omit-sync-start");
    assert.equal(a.split("\n").length, parsed.traceEvents.length + 3);
    // Sorted: metadata first, then by time.
    const ts = parsed.traceEvents.filter((e) => e.ph !== "M").map((e) => e.ts);
    assert.deepEqual(
      ts,
      [...ts].sort((x, y) => x - y),
    );
    const firstNonMeta = parsed.traceEvents.findIndex((e) => e.ph !== "M");
    assert.ok(parsed.traceEvents.slice(firstNonMeta).every((e) => e.ph !== "M"));
  });
});
