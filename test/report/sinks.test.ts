/**
 * Multi-sink graphs in the run reports: each sink's frames and verdict in the terminal,
 * JSON and HTML; single-sink runs keep their reports unchanged (no sinks section).
 */

import assert from "node:assert/strict";
import { test } from "node:test";
import type { PipelineResult } from "../../src/pipelines/types.js";
import { renderRunHtml } from "../../src/report/html.js";
import { toJsonReport } from "../../src/report/json.js";
import { formatRunReport } from "../../src/report/terminal.js";
import { runFixture } from "./fixtures.js";

/** The fixture run with a second sink (an encoder) whose frames 2 and 3 were wrong. */
function twoSinks(): PipelineResult {
  const r = runFixture({ badFrame: -1, trace: false });
  const encoded = r.frames.map((f) => (f.index === 2 || f.index === 3 ? { ...f, ok: false } : f));
  return {
    ...r,
    sinks: [
      ...r.sinks,
      { name: "encode", device: "simenc", kind: "m2m", primary: false, frames: encoded, ok: false },
    ],
  };
}

test("single sink: no sinks section anywhere", async () => {
  const r = runFixture({ badFrame: -1, trace: false });
  assert.doesNotMatch(formatRunReport(r), /Sinks/);
  assert.equal(toJsonReport(r).sinks, undefined);
  assert.doesNotMatch(await renderRunHtml(r), /id="sinks"/);
});

test("two sinks: every sink's frames and verdict in terminal, JSON and HTML", async () => {
  const r = twoSinks();
  const text = formatRunReport(r);
  assert.match(text, /Sinks \(2; the frames above are the primary's\)/);
  assert.match(text, /display\s+simdisplay \(display\), primary\s+8\/8 frames correct\s+ok/);
  assert.match(text, /encode\s+simenc \(m2m\)\s+6\/8 frames correct\s+WRONG: 2–3/);
  const json = toJsonReport(r);
  assert.equal(json.sinks?.length, 2);
  assert.equal(json.sinks?.[1]?.ok, false);
  assert.equal(json.sinks?.[1]?.frames.filter((f) => !f.ok).length, 2);
  const html = await renderRunHtml(r);
  assert.match(html, /<h2 id="sinks">Sinks \(2\)<\/h2>/);
  assert.match(html, /WRONG: 2, 3/);
});
