/**
 * The trace export on what the real machine records: a system-heap buffer written by a
 * camera, stamped by the CPU inside DMA_BUF_IOCTL_SYNC brackets (the second frame
 * without SYNC_START), scanned out by a display. The machine's spans, the dma-buf and DMA
 * API instants and the checker's violation must all land on the right tracks.
 */

import assert from "node:assert/strict";
import { test } from "node:test";
import { DMA_BIDIRECTIONAL } from "../../src/dma/direction.js";
import { dmaBufGet } from "../../src/dma-buf/dma-buf.js";
import {
  DMA_BUF_SYNC_END,
  DMA_BUF_SYNC_RW,
  DMA_BUF_SYNC_START,
} from "../../src/include/uapi/dma-buf.js";
import { MAP_SHARED, O_RDWR, PROT_READ, PROT_WRITE } from "../../src/include/uapi/fcntl.js";
import { Kernel } from "../../src/kernel/kernel.js";
import type { PipelineResult } from "../../src/pipelines/types.js";
import { renderRunHtml } from "../../src/report/html.js";
import { toChromeTrace } from "../../src/report/trace.js";
import { dmaBufSetName, dmaBufSync, dmaHeapAlloc } from "../../src/uapi/lib.js";
import { SimUapi } from "../../src/uapi/sim.js";
import { assertWellFormed, runFixture } from "./fixtures.js";

const SIZE = 64 * 1024;

function machineRun(trace: boolean): PipelineResult {
  const k = new Kernel({ profile: "arm64" });
  k.machine.trace.enabled = trace;
  const cam = k.machine.addDevice("camera");
  const disp = k.machine.addDevice("display");
  const app = new SimUapi(k, "app");
  const heap = app.open("/dev/dma_heap/system", O_RDWR);
  const fd = dmaHeapAlloc(app, heap, SIZE);
  dmaBufSetName(app, fd, "frame0");
  const map = app.mmap(SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  const buf = dmaBufGet(app.process, fd);
  const camAt = buf.attach(cam);
  const dispAt = buf.attach(disp);
  const wsg = buf.mapAttachment(camAt, DMA_BIDIRECTIONAL);
  const rsg = buf.mapAttachment(dispAt, DMA_BIDIRECTIONAL);
  const clock = k.machine.clock;
  map.read(0, 4096); // cache a stale copy for the frame without SYNC_START
  for (let n = 0; n < 2; n++) {
    const img = new Uint8Array(SIZE).fill(n + 1);
    cam.submit(`capture ${n}`, SIZE, () => cam.writeSegments(wsg.dmaSegments(), img));
    clock.runUntilIdle();
    if (n === 0) dmaBufSync(app, fd, DMA_BUF_SYNC_START | DMA_BUF_SYNC_RW);
    map.read(0, 4096);
    map.fill(0, 64, 0xee);
    dmaBufSync(app, fd, DMA_BUF_SYNC_END | DMA_BUF_SYNC_RW);
    disp.submit(`scanout ${n}`, SIZE, () => disp.readSegments(rsg.dmaSegments()));
    clock.runUntilIdle();
  }
  buf.unmapAttachment(camAt, wsg, DMA_BIDIRECTIONAL);
  buf.unmapAttachment(dispAt, rsg, DMA_BIDIRECTIONAL);
  const base = runFixture({ frames: 0, badFrame: -1, trace: false });
  return {
    ...base,
    verdict: k.machine.violations.count === 0 ? "coherent" : "incoherent",
    violations: k.machine.violations.list,
    buffers: [{ name: "frame0", size: SIZE, exporter: "system", importers: ["camera", "display"] }],
    costs: k.machine.costs.snapshot(),
    elapsedNs: clock.now,
    trace: k.machine.trace.events,
  };
}

test("a real machine's trace exports with its spans, dma-buf and DMA API instants", async () => {
  const r = machineRun(true);
  const t = toChromeTrace(r);
  assertWellFormed(t);
  const threads = new Map<number, string>();
  for (const e of t.traceEvents)
    if (e.name === "thread_name") threads.set(e.tid, String(e.args!.name));
  const on = (name: string) =>
    t.traceEvents.filter((e) => e.ph !== "M" && threads.get(e.tid) === name);
  assert.ok(
    on("camera").some((e) => e.ph === "X" && e.cat === "dma"),
    "camera DMA span",
  );
  assert.ok(
    on("display").some((e) => e.ph === "X" && e.cat === "dma"),
    "display DMA span",
  );
  assert.ok(
    on("cpu").some((e) => e.ph === "X" && e.cat === "cache"),
    "cache maintenance span",
  );
  assert.ok(
    on("cpu").some((e) => e.ph === "X" && e.cat === "cpu"),
    "CPU access span",
  );
  const bufEvents = on("frame0").map((e) => e.name);
  assert.ok(bufEvents.includes("dma_buf_map_attachment"), bufEvents.join());
  assert.ok(bufEvents.includes("dma_buf_begin_cpu_access"));
  assert.equal(bufEvents.filter((n) => n === "dma_buf_end_cpu_access").length, 2);
  assert.ok(bufEvents.includes("dma_buf_unmap_attachment"));
  const syncs = on("cpu").filter((e) => e.cat === "dma-api");
  assert.ok(
    syncs.some((e) => e.name === "dma_sync_sg_for_cpu"),
    syncs.map((e) => e.name).join(),
  );
  assert.ok(syncs.some((e) => e.name === "dma_sync_sg_for_device"));
  assert.match(String(syncs[0]!.args!.mapping), /camera|display/);
  const v = t.traceEvents.filter((e) => e.cat === "violation");
  assert.ok(v.some((e) => e.name === "stale-cpu-read" && threads.get(e.tid) === "cpu"));
  const html = await renderRunHtml(r);
  assert.match(html, /stale-cpu-read/);
  assert.match(html, />frame0<\/text>/);
});

test("with tracing off the machine records nothing", () => {
  const r = machineRun(false);
  assert.equal(r.trace.length, 0);
  assert.ok(r.violations.length > 0);
});
