/**
 * The command end to end on the real pipelines: every bundled scenario gives the exit
 * status its description promises, and the default job's quick form answers the seed
 * question (whole-cache flushing wins on the 512 KiB L2 but never on the 64 MiB cache).
 */

import assert from "node:assert/strict";
import { mkdtempSync, readdirSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import type { CliIo } from "../../src/cli/io.js";
import { examplesDir } from "../../src/cli/list.js";
import { main } from "../../src/cli/main.js";

const EXAMPLES = examplesDir(process.cwd());

function capture(): CliIo & { text(): string; stdout(): string } {
  let out = "";
  let all = "";
  return {
    out: (t) => {
      out += t;
      all += t;
    },
    err: (t) => {
      all += t;
    },
    isTTY: false,
    cwd: process.cwd(),
    text: () => all,
    stdout: () => out,
  };
}

/** Scenarios with a deliberate fault must come out incoherent; the rest coherent. */
const EXPECT_INCOHERENT = new Set([
  "lying-hint.yaml",
  "missing-sync-end.yaml",
  // The field reports (docs/hazards.md); each has a coherent "-fixed" twin.
  "rpi-5727-bounce-green.yaml",
  "openmv-1605-invalidate-before-only.yaml",
  "libdrmtap-43-unbalanced-brackets.yaml",
  "zephyr-71278-no-clean-before-dma.yaml",
  "for-cpu-instead-of-for-device.yaml",
  "udmabuf-1ffe0959-wrong-direction.yaml",
  "libcamera-79-missing-sync-start.yaml",
  "xdna-1439-zeroed-buffer-evicted.yaml",
  "rpi-6995-udmabuf-readback.yaml",
  "firecracker-5536-mismatched-attributes.yaml",
  "circle-135-shared-cacheline.yaml",
  // Linux 6.12's own udmabuf behaviour, every call right (docs/dma-buf.md).
  "udmabuf-first-sync.yaml",
]);

for (const file of readdirSync(EXAMPLES).filter((f) => f.endsWith(".yaml"))) {
  test(`dmabuf run ${file}`, async () => {
    const io = capture();
    const code = await main(["run", join(EXAMPLES, file), "--frames", "4"], io);
    assert.equal(code, EXPECT_INCOHERENT.has(file) ? 1 : 0, io.text());
    assert.match(io.text(), EXPECT_INCOHERENT.has(file) ? /INCOHERENT/ : /COHERENT/);
  });
}

test("dmabuf run --json and --trace on a real run", async () => {
  const dir = mkdtempSync(join(tmpdir(), "dmabuf-e2e-"));
  const io = capture();
  const trace = join(dir, "t.json");
  const code = await main(
    ["run", join(EXAMPLES, "missing-sync-end.yaml"), "--frames", "2", "--json", "--trace", trace],
    io,
  );
  assert.equal(code, 1);
  const report = JSON.parse(io.stdout()) as { verdict: string; violations: { hint: string }[] };
  assert.equal(report.verdict, "incoherent");
  assert.ok(report.violations.some((v) => /DMA_BUF_SYNC_END/.test(v.hint)));
  const t = JSON.parse(readFileSync(trace, "utf8")) as { traceEvents: { cat?: string }[] };
  assert.ok(t.traceEvents.some((e) => e.cat === "dma"));
  assert.ok(t.traceEvents.some((e) => e.cat === "cache"));
});

test("the default job, quick: whole-cache wins on cortex-a9, never on the 64 MiB cache", async () => {
  const dir = mkdtempSync(join(tmpdir(), "dmabuf-main-"));
  const io = capture();
  const code = await main(["--quick", "--html", join(dir, "r.html")], io);
  const text = io.text();
  assert.equal(code, 0, text);
  assert.match(text, /all \d+ runs coherent/);
  const [a9, x86] = text.split("x86-64-64m:");
  assert.match(a9 ?? "", /whole-cache flushing cheaper than per-line: from \d+ KiB up/);
  assert.match(x86 ?? "", /whole-cache flushing cheaper than per-line: never in range/);
  const html = readFileSync(join(dir, "r.html"), "utf8");
  assert.match(html, /<svg/);
  // The HTML reaches the terminal's conclusions: the same crossover on each machine.
  for (const profile of ["cortex-a9", "x86-64-64m"]) {
    const part = text.split(`${profile}:`)[1] ?? "";
    const term =
      /whole-cache flushing cheaper than per-line: (from (\S+ \S+) up|never in range)/.exec(part);
    assert.ok(term, `terminal crossover for ${profile}`);
    const inHtml = new RegExp(
      `${profile}: whole-cache (cheaper than per-line \\(streaming\\) from (\\S+ \\S+) up|never cheaper)`,
    ).exec(html);
    assert.ok(inHtml, `HTML crossover for ${profile}`);
    assert.equal(inHtml[2], term[2], `${profile}: HTML and terminal crossover agree`);
    assert.equal(inHtml[2] === undefined, term[2] === undefined);
  }
});
