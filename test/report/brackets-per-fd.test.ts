/**
 * START/END balance per fd per frame (issue 14): every fd of a dma-buf brackets on its
 * own, in the kernel's bracket checks and in the balance view the terminal, JSON and
 * HTML reports take from src/report/coverage.ts.
 */

import assert from "node:assert/strict";
import { test } from "node:test";
import {
  DMA_BUF_SYNC_END,
  DMA_BUF_SYNC_READ,
  DMA_BUF_SYNC_START,
} from "../../src/include/uapi/dma-buf.js";
import { O_RDWR } from "../../src/include/uapi/fcntl.js";
import { Kernel } from "../../src/kernel/kernel.js";
import { runPipeline } from "../../src/pipelines/run.js";
import type { PipelineResult } from "../../src/pipelines/types.js";
import { fdBalanceLabel, syncBalance } from "../../src/report/coverage.js";
import { renderRunHtml } from "../../src/report/html.js";
import { toJsonReport } from "../../src/report/json.js";
import { formatRunReport } from "../../src/report/terminal.js";
import { dmaBufSync, dmaHeapAlloc } from "../../src/uapi/lib.js";
import { SimUapi } from "../../src/uapi/sim.js";

function twoFds(): { k: Kernel; u: SimUapi; a: number; b: number } {
  const k = new Kernel({ profile: "arm64" });
  const u = new SimUapi(k);
  const heap = u.open("/dev/dma_heap/system", O_RDWR);
  const a = dmaHeapAlloc(u, heap, 1 << 16);
  return { k, u, a, b: u.dup(a) };
}

const START = DMA_BUF_SYNC_START | DMA_BUF_SYNC_READ;
const END = DMA_BUF_SYNC_END | DMA_BUF_SYNC_READ;

test("two fds of one dma-buf bracketing independently are not two STARTs", () => {
  const { k, u, a, b } = twoFds();
  dmaBufSync(u, a, START);
  dmaBufSync(u, b, START);
  dmaBufSync(u, a, END);
  dmaBufSync(u, b, END);
  assert.deepEqual(
    k.machine.violations.list.filter((v) => v.kind === "api-misuse"),
    [],
  );
  const log = k.dmaBuf.buffers[0]!.cpuAccessLog;
  assert.deepEqual(
    log.map((e) => [e.fd, e.end]),
    [
      [a, false],
      [b, false],
      [a, true],
      [b, true],
    ],
  );
});

test("two STARTs on one fd are still named, with the fd", () => {
  const { k, u, a, b } = twoFds();
  dmaBufSync(u, a, START);
  dmaBufSync(u, a, START);
  dmaBufSync(u, b, END);
  const msgs = k.machine.violations.list
    .filter((v) => v.kind === "api-misuse")
    .map((v) => v.message);
  assert.equal(msgs.length, 2);
  assert.match(
    msgs[0]!,
    new RegExp(`fd ${a}: START\\(READ\\) while the START\\(READ\\) before it on this fd`),
  );
  assert.match(msgs[1]!, new RegExp(`fd ${b}: END\\(READ\\) without a START before it on this fd`));
});

/** A result carrying only what the balance view reads. */
function resultWith(syncs: { time: number; end: boolean; fd: number }[]): PipelineResult {
  return {
    frames: [{ time: 100 }, { time: 200 }],
    buffers: [{ name: "buf0", syncs: syncs.map((s) => ({ ...s, dir: 2, pid: 1 })) }],
  } as unknown as PipelineResult;
}

test("the balance view counts each fd apart, and a bracket straddling a frame's completion in its START's frame", () => {
  const rows = syncBalance(
    resultWith([
      { time: 10, end: false, fd: 3 },
      { time: 20, end: false, fd: 4 },
      { time: 30, end: true, fd: 3 },
      { time: 150, end: true, fd: 4 },
      { time: 160, end: false, fd: 3 },
      { time: 170, end: false, fd: 3 },
      { time: 180, end: true, fd: 3 },
    ]),
  );
  assert.deepEqual(
    rows.map((r) => [fdBalanceLabel(r), r.starts, r.ends, r.unbalanced]),
    [
      ["buf0 fd 3", 3, 2, [{ frame: 1, starts: 2, ends: 1 }]],
      ["buf0 fd 4", 1, 1, []],
    ],
  );
});

test("terminal, JSON and HTML show the brackets per fd", async () => {
  const r = runPipeline({ pipeline: "camera-cpu-display", width: 64, height: 32, frames: 2 });
  const rows = syncBalance(r);
  assert.ok(rows.length > 0 && rows.every((x) => x.fd >= 0));
  assert.match(
    formatRunReport(r),
    new RegExp(`per fd per frame\\)\\n  ${fdBalanceLabel(rows[0]!)}: `),
  );
  assert.deepEqual(toJsonReport(r).cpuAccessBrackets, rows);
  const html = await renderRunHtml(r);
  assert.match(html, /<th[^>]*>fd<\/th>/);
  assert.match(html, new RegExp(`<td class="num">${rows[0]!.fd}</td>`));
});
