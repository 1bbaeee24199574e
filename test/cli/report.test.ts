import assert from "node:assert/strict";
import { test } from "node:test";
import { toJsonReport } from "../../src/report/json.js";
import {
  formatDuration,
  formatRanges,
  formatRunReport,
  formatSize,
} from "../../src/report/terminal.js";
import { coherentResult, incoherentResult } from "./fixtures.js";

/** The escape character that starts an ANSI colour sequence. */
const ESC = "\u001b";

test("terminal report of a coherent run: verdict, frames, costs", () => {
  const text = formatRunReport(
    coherentResult({ name: "cam", pipeline: "camera-display", frames: 3 }),
  );
  const lines = text.split("\n");
  assert.equal(lines[0], "COHERENT: 0 violations, 3 of 3 frames correct");
  assert.equal(
    lines[1],
    "cam: camera-display on arm64, streaming mapping, v4l2-mmap buffers ×4, 640x480 XR24 (1.17 MiB), 3 frames at 30 fps",
  );
  assert.ok(!text.includes("Violations"));
  assert.ok(text.includes("      0  33.3 ms  0x1a2b3c00  0x1a2b3c00  ok"), text);
  // Costs: per frame and total, in units, with ops and bytes.
  assert.match(
    text,
    /\n {2}cache maintenance +41\.0 µs +19,200 +1\.17 MiB +123 µs +57,600 +3\.52 MiB\n/,
  );
  assert.match(text, /\n {2}DMA +615 µs/);
  assert.match(text, /\n {2}waiting +1\.50 µs/);
  assert.match(text, /\n {2}IOMMU +0 +0 +0 +12\.0 µs +4 +0\n/);
  assert.match(text, /Elapsed: 100 ms of virtual time/);
  assert.ok(!text.includes(ESC));
});

test("terminal report of a broken 100-frame run stays short: repeats folded, first mismatches", () => {
  const text = formatRunReport(incoherentResult({ frames: 100, fault: "omit-sync-end" }));
  const lines = text.split("\n");
  assert.equal(lines[0], "INCOHERENT: 100 violations (2 kinds), 99 of 100 frames wrong");
  assert.ok(text.includes("deliberate fault: omit-sync-end"));
  // 99 stale reads, one entry.
  assert.match(
    text,
    /\n {2}stale-cpu-read: 99\n {4}×99 frames \(1–99\), by cpu, cam1 at offset 0x1000, 4,096 bytes, first at 65\.7 ms\n {6}buffers: cam1, cam2, cam3, cam0\n {6}the CPU read 64 lines cached before the device wrote them \(epoch 1\)\n {6}hint: DMA_BUF_IOCTL_SYNC\(DMA_BUF_SYNC_START \| DMA_BUF_SYNC_READ\) before reading\n/,
  );
  assert.match(text, /\n {2}api-misuse: 1\n {4}frame 0, api v4l2, by cpu, at 5\.00 µs\n/);
  assert.match(text, /hint: drop V4L2_BUF_FLAG_NO_CACHE_INVALIDATE from QBUF/);
  assert.match(text, /\n {2}1 of 100 frames match; 99 wrong \(1–99\)\n {2}first 8 mismatches:\n/);
  const frameRows = lines.filter((l) => /WRONG$/.test(l));
  assert.equal(frameRows.length, 8);
  assert.ok(lines.length < 60, `${lines.length} lines`);
});

test("colour only when asked", () => {
  const plain = formatRunReport(incoherentResult({ frames: 3 }));
  const colour = formatRunReport(incoherentResult({ frames: 3 }), { color: true });
  assert.ok(!plain.includes(ESC));
  assert.ok(colour.includes(`${ESC}[31m`));
  assert.equal(colour.replace(new RegExp(`${ESC}\\[[0-9;]*m`, "g"), ""), plain);
});

test("units", () => {
  assert.equal(formatDuration(0), "0");
  assert.equal(formatDuration(850), "850 ns");
  assert.equal(formatDuration(12_345), "12.3 µs");
  assert.equal(formatDuration(999_960), "1.00 ms");
  assert.equal(formatDuration(4_560_000), "4.56 ms");
  assert.equal(formatDuration(1.5e9), "1.50 s");
  assert.equal(formatSize(512), "512 B");
  assert.equal(formatSize(65536), "64 KiB");
  assert.equal(formatSize(1_228_800), "1.17 MiB");
  assert.equal(formatRanges([1, 2, 3, 5, 7, 8]), "1–3, 5, 7–8");
  assert.equal(formatRanges([1, 3, 5, 7, 9, 11, 13, 15]), "1, 3, 5, 7, 9, 11, …");
});

test("JSON report: fields, hex CRCs, per-frame mean and total, sorted spec keys", () => {
  const j = toJsonReport(incoherentResult({ name: "x", frames: 4, profile: "cortex-a9" }));
  assert.equal(j.verdict, "incoherent");
  assert.equal(j.scenario, "x");
  assert.deepEqual(Object.keys(j.spec), [...Object.keys(j.spec)].sort());
  assert.equal(j.spec["profile"], "cortex-a9");
  assert.equal(j.frames[0]!.crcHex, "0x1a2b3c00");
  assert.equal(j.frames[0]!.crc, 0x1a2b3c00);
  assert.equal(j.violations[0]!.buffer, "cam1");
  assert.equal(j.violations[0]!.offset, 0x1000);
  assert.equal(j.violations[3]!.api, "v4l2");
  assert.equal(j.violations[3]!.phys, null);
  assert.equal(j.costs.total.dma.ns, 4 * 615_000);
  assert.equal(j.costs.perFrame.dma.ns, 615_000);
  assert.equal(j.costs.perFrame["cache-maintenance"].ns, 41_001.5);
  assert.equal(
    j.costs.totalNs,
    j.costs.categories.reduce((s, c) => s + j.costs.total[c].ns, 0),
  );
  assert.deepEqual(Object.keys(j).slice(0, 6), [
    "tool",
    "schemaVersion",
    "scenario",
    "spec",
    "verdict",
    "summary",
  ]);
  assert.equal(
    JSON.stringify(j),
    JSON.stringify(toJsonReport(incoherentResult({ name: "x", frames: 4, profile: "cortex-a9" }))),
  );
});

test("JSON report: non-finite overrides become null, not invalid JSON", () => {
  const r = coherentResult({
    frames: 1,
    overrides: { maintenance: { kind: "per-line", thresholdBytes: Number.POSITIVE_INFINITY } },
  });
  const j = toJsonReport(r);
  const text = JSON.stringify(j);
  assert.deepEqual(JSON.parse(text).spec.overrides.maintenance, {
    kind: "per-line",
    thresholdBytes: null,
  });
});
