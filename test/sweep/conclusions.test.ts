/**
 * "Done means" of issue 10: the five-device pipeline written in docs/guide.md runs as
 * written, and its sweep gives the same answer — the whole-cache crossover and the
 * cheapest strategy per size — in the terminal, the JSON and the HTML.
 */

import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { parse as yamlParse } from "yaml";
import type { CliIo } from "../../src/cli/io.js";
import { main } from "../../src/cli/main.js";
import { runPipeline } from "../../src/pipelines/run.js";
import {
  cheapestSentence,
  crossoverSentence,
  type ProfileConclusion,
} from "../../src/report/conclusions.js";
import { formatBytes } from "../../src/report/plots.js";
import { parseScenario, scenarioToSpec } from "../../src/scenarios/scenario.js";

const ROOT = process.cwd();
const FILE = join(ROOT, "examples", "scenarios", "five-devices.yaml");

test("docs/guide.md's five-device pipeline is examples/scenarios/five-devices.yaml, and it runs coherent at every sink", () => {
  const guide = readFileSync(join(ROOT, "docs", "guide.md"), "utf8");
  const section = guide.slice(guide.indexOf("## Your own pipeline in YAML"));
  const block = /```yaml\n([\s\S]*?)```/.exec(section)?.[1];
  assert.ok(block !== undefined, "the guide has the YAML block");
  assert.equal(block, readFileSync(FILE, "utf8"));
  const s = parseScenario(yamlParse(block), { file: "guide.md", text: block });
  assert.equal(Object.keys(s.graph!.devices).length, 5);
  const r = runPipeline(scenarioToSpec(s));
  assert.equal(r.verdict, "coherent");
  assert.deepEqual(
    r.sinks.map((k) => [k.name, k.ok]),
    [
      ["show", true],
      ["encode", true],
      ["results", true],
    ],
  );
});

test("five-devices swept: the terminal, the JSON and the HTML state the same crossover and cheapest strategies", async () => {
  const dir = mkdtempSync(join(tmpdir(), "dmabuf-conclusions-"));
  try {
    let out = "";
    const io: CliIo = { out: (t) => (out += t), err: () => {}, isTTY: false, cwd: dir };
    const code = await main(
      [
        "sweep",
        FILE,
        "--vary",
        "pipeline.strategy=streaming,whole-cache,coherent",
        "--vary",
        "buffers.height=60,480",
        "--jobs",
        "1",
        "--quiet",
        "--json",
        "s.json",
        "--html",
        "s.html",
      ],
      io,
    );
    assert.equal(code, 0, out);
    const json = JSON.parse(readFileSync(join(dir, "out", "s.json"), "utf8")) as {
      conclusions: ProfileConclusion[];
    };
    const html = readFileSync(join(dir, "out", "s.html"), "utf8");
    assert.equal(json.conclusions.length, 1);
    const c = json.conclusions[0]!;
    // The figures themselves: whole-cache wins at the large size only, coherent is
    // cheapest at both (the CPU touches 16 lines; the rest is the ISP's and NPU's).
    assert.equal(c.crossover?.bytes, 320 * 480 * 2);
    assert.deepEqual(
      c.cheapest.map((x) => [x.bufferBytes, x.strategies]),
      [
        [320 * 60 * 2, ["coherent"]],
        [320 * 480 * 2, ["coherent"]],
      ],
    );
    // The same sentence in the terminal and the HTML.
    assert.ok(out.includes(crossoverSentence(c)), out);
    assert.ok(html.includes(crossoverSentence(c)));
    for (const x of c.cheapest) {
      assert.ok(out.includes(cheapestSentence(c.profile, x)), out);
      assert.match(
        html,
        new RegExp(
          `<td>${c.profile}</td><td class="num">${formatBytes(x.bufferBytes)}</td><td><b>${x.strategies.join(" and ")}</b></td>`,
        ),
      );
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
