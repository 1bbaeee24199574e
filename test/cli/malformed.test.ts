/**
 * Bounded input, end to end: every malformed or oversized input a hostile user tried
 * (issue 11) ends with exit status 2 and an error that names the problem — the field,
 * the file or the option — before any machine is built, never with a hang, a host
 * out-of-memory or a stack trace.
 */

import assert from "node:assert/strict";
import { mkdtempSync, truncateSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import type { CliIo } from "../../src/cli/io.js";
import { main } from "../../src/cli/main.js";

const dir = mkdtempSync(join(tmpdir(), "dmabuf-malformed-"));

function io(): CliIo & { text(): string } {
  let all = "";
  return {
    out: (t) => {
      all += t;
    },
    err: (t) => {
      all += t;
    },
    isTTY: false,
    cwd: dir,
    text: () => all,
  };
}

const BASE = "pipeline:\n  kind: camera-display\n  frames: 2\n";
const file = (name: string, text: string): string => {
  writeFileSync(join(dir, name), text);
  return name;
};
const nested = (n: number): string => `${"[".repeat(n)}${"]".repeat(n)}`;
let bomb = "a: &a [x, x, x, x, x, x, x, x, x]\n";
for (const [p, c] of [
  ["a", "b"],
  ["b", "c"],
  ["c", "d"],
  ["d", "e"],
  ["e", "f"],
  ["f", "g"],
  ["g", "h"],
])
  bomb += `${c}: &${c} [${Array(9).fill(`*${p}`).join(", ")}]\n`;

interface Case {
  readonly what: string;
  readonly argv: () => string[];
  /** What the message must say (the field, option or file and the problem). */
  readonly says: RegExp;
  /** What it must not say first (a misleading consequence of the real problem). */
  readonly notFirst?: RegExp;
}

const CASES: readonly Case[] = [
  {
    what: "ram.size of 1 PiB (a unit the sizes do not have)",
    argv: () => ["run", file("pib.yaml", `${BASE}machine:\n  ram:\n    size: 1 PiB\n`)],
    says: /machine\.ram\.size: expected a size/,
  },
  {
    what: "ram.size of 1024 TiB",
    argv: () => ["run", file("ram.yaml", `${BASE}machine:\n  ram:\n    size: 1024 TiB\n`)],
    says: /ram\.yaml:6:11: machine\.ram\.size: expected 4 MiB to 1 TiB of RAM; got 1024 TiB/,
  },
  {
    what: "ram.base in hex above 2^53",
    argv: () => [
      "run",
      file("base.yaml", `${BASE}machine:\n  ram:\n    base: 0x7fff_ffff_ffff_f000\n`),
    ],
    says: /machine\.ram\.base: .*below 2\^53/,
  },
  {
    what: "ram.base above the 48-bit physical address space",
    argv: () => [
      "run",
      file("base48.yaml", `${BASE}machine:\n  ram:\n    base: 0x1_0000_0000_0000\n`),
    ],
    says: /machine\.ram\.base: expected an address below 2\^48/,
  },
  {
    what: "a 64 GiB cache level",
    argv: () => [
      "run",
      file(
        "cache.yaml",
        `${BASE}machine:\n  cache:\n    levels:\n      - sizeBytes: 64 GiB\n        ways: 16\n`,
      ),
    ],
    says: /machine\.cache\.levels\[0\]\.sizeBytes: expected a cache level of at most 256 MiB; got 64 GiB/,
  },
  {
    what: "ways: 0",
    argv: () => [
      "run",
      file(
        "ways.yaml",
        `${BASE}machine:\n  cache:\n    levels:\n      - sizeBytes: 32 KiB\n        ways: 0\n`,
      ),
    ],
    says: /^ways\.yaml:\d+:\d+: machine\.cache\.levels\[0\]\.ways: expected a number at least 1/,
    notFirst: /multiple of 0/,
  },
  {
    what: "DMA bandwidth of 1e-12 bytes/ns",
    argv: () => ["run", file("bw.yaml", `${BASE}machine:\n  device:\n    bandwidth: 1e-12\n`)],
    says: /machine\.device\.bandwidth: expected 0\.001 to 10000 bytes per ns/,
  },
  {
    what: "one device's bandwidth near zero",
    argv: () => ["run", file("gpubw.yaml", `${BASE}devices:\n  display:\n    bandwidth: 1e-9\n`)],
    says: /devices\.display\.bandwidth: expected/,
  },
  {
    what: "DRAM at 1e-300 bytes/ns",
    argv: () => [
      "run",
      file("dram.yaml", `${BASE}machine:\n  costs:\n    dramBytesPerNs: 1e-300\n`),
    ],
    says: /machine\.costs\.dramBytesPerNs: expected/,
  },
  {
    what: "a CMA area larger than RAM",
    argv: () => ["run", file("cma.yaml", `${BASE}machine:\n  cmaBytes: 1 TiB\n`)],
    says: /machine\.cmaBytes: swiotlb \(.*\) and CMA \(1 TiB\) leave less than 1 MiB/,
  },
  {
    what: "16384-pixel frames the display cannot scan out",
    argv: () => ["run", file("wide.yaml", `${BASE}buffers:\n  width: 16384\n  height: 64\n`)],
    says: /wide\.yaml: buffers\.width 16384 is wider than the display scans out \(at most 4096 pixels\)/,
  },
  {
    what: "a 256 MiB buffer (above the display's 64 MiB)",
    argv: () => ["run", file("big-buffer.yaml", `${BASE}buffers:\n  bufferBytes: 256 MiB\n`)],
    says: /big-buffer\.yaml: buffers\.width 16384 is wider than the display scans out/,
  },
  {
    what: "a run that would move more than 64 GiB of frames",
    argv: () => [
      "run",
      file(
        "long.yaml",
        "pipeline:\n  kind: camera-display\n  frames: 100000\nbuffers:\n  width: 4096\n  height: 4096\n",
      ),
    ],
    says: /pipeline\.frames: 100000 frames of 64 MiB move more than the 64 GiB/,
  },
  {
    what: "a YAML alias bomb",
    argv: () => ["run", file("bomb.yaml", bomb)],
    says: /bomb\.yaml: too many YAML aliases/,
  },
  {
    what: "JSON nested 100,000 deep",
    argv: () => ["run", file("deep.json", nested(100_000))],
    says: /deep\.json:1:65: nested more than 64 levels deep/,
  },
  {
    what: "YAML flow nested 100,000 deep",
    argv: () => ["run", file("deep.yaml", `a: ${nested(100_000)}\n`)],
    says: /deep\.yaml:1:\d+: nested more than 64 levels deep/,
  },
  {
    what: "/dev/zero as the scenario",
    argv: () => ["run", "/dev/zero"],
    says: /\/dev\/zero: cannot read the scenario: not a regular file/,
  },
  {
    what: "a scenario file of 2 MiB",
    argv: () => ["run", file("huge.yaml", "# padding\n".repeat(210_000))],
    says: /huge\.yaml: cannot read the scenario: the file is 2(\.\d+)? MiB; a scenario file may be at most 1 MiB/,
  },
  {
    what: "a scenario file of 200 MiB (sparse: its size is refused before it is read)",
    argv: () => {
      writeFileSync(join(dir, "200m.yaml"), "");
      truncateSync(join(dir, "200m.yaml"), 200 * 1024 * 1024);
      return ["run", "200m.yaml"];
    },
    says: /200m\.yaml: cannot read the scenario: the file is 200 MiB; a scenario file may be at most 1 MiB/,
  },
  {
    what: "a frame too wide for the display, from --set",
    argv: () => ["run", file("ok2.yaml", BASE), "--set", "buffers.width=8192"],
    says: /^--set buffers\.width=8192: buffers\.width 8192 is wider than the display/,
  },
  {
    what: "a bad value from --set is blamed on --set, not on the file",
    argv: () => ["run", file("ok.yaml", BASE), "--set", "machine.ram.size=1024TiB"],
    says: /^--set machine\.ram\.size=1024TiB: machine\.ram\.size: expected 4 MiB to 1 TiB/,
  },
  {
    what: "a sweep with a value that cannot run",
    argv: () => ["sweep", file("sw.yaml", BASE), "--vary", "buffers.width=640,8192", "--quiet"],
    says: /1 of 2 grid points cannot run, nothing was run:\n {2}grid point buffers\.width=8192: buffers\.width 8192 is wider than the display scans out/,
  },
];

for (const c of CASES) {
  test(`exit 2 and a named error: ${c.what}`, async () => {
    const out = io();
    const code = await main(c.argv(), out);
    const text = out.text();
    assert.equal(code, 2, text);
    assert.match(text, c.says);
    assert.doesNotMatch(text, /\n\s+at .*\(.*:\d+:\d+\)/, "no stack trace");
    if (c.notFirst) assert.doesNotMatch(text.split("\n")[0]!, c.notFirst);
  });
}
