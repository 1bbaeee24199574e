#!/usr/bin/env node
/**
 * The `dmabuf` command. With no arguments it runs the built-in demonstration.
 */

import { parseArgs } from "node:util";
import { PROFILES } from "../machine/profiles.js";
import { formatViolation } from "../machine/violations.js";
import { runStaleDataDemo } from "../scenarios/stale-data.js";

const HELP = `dmabuf - the Linux dma-buf buffer-sharing system as an executable model

Usage:
  dmabuf [demo] [--profile NAME]... [--size BYTES]
      Run the built-in demonstration: a device writes a frame the CPU has cached,
      and the CPU fills a buffer a device reads, each with and without the DMA API
      sync Linux requires, on every architecture profile (or those given).
  dmabuf list
      List the architecture profiles.
  dmabuf --help | --version

Exit status: 0 when every synced case is coherent and every unsynced case that
produced wrong bytes was caught by the checker; 1 otherwise; 2 for bad input.
`;

function fail(msg: string): never {
  process.stderr.write(`dmabuf: ${msg}\nTry 'dmabuf --help'.\n`);
  process.exit(2);
}

function pad(s: string, n: number): string {
  return s.length >= n ? s : s + " ".repeat(n - s.length);
}

function table(rows: string[][]): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  return rows
    .map((r) =>
      r
        .map((c, i) => pad(c, widths[i]!))
        .join("  ")
        .trimEnd(),
    )
    .join("\n");
}

function demo(profiles: string[], size: number): number {
  const cases = runStaleDataDemo(profiles, size);
  process.stdout.write(
    `Stale data, and the sync that prevents it (${size / 1024} KiB buffer, streaming DMA mapping)\n\n`,
  );
  const rows = [
    ["profile", "flow", "required call", "made?", "wrong bytes", "violations", "cache maint."],
  ];
  let ok = true;
  for (const c of cases) {
    const kinds = [...new Set(c.violations.map((v) => v.kind))].join(",") || "-";
    rows.push([
      c.profile,
      c.flow,
      c.call,
      c.synced ? "yes" : "NO",
      `${c.wrongBytes}/${c.size}`,
      kinds,
      `${(c.maintenanceNs / 1000).toFixed(1)} us`,
    ]);
    if (c.synced && (c.wrongBytes > 0 || c.violations.length > 0)) ok = false;
    if (!c.synced && c.wrongBytes > 0 && c.violations.length === 0) ok = false;
  }
  process.stdout.write(`${table(rows)}\n`);
  const example = cases.find((c) => !c.synced && c.wrongBytes > 0 && c.violations.length > 0);
  if (example) {
    process.stdout.write(
      `\nWhat the checker says (${example.profile}, ${example.flow}, without ${example.call}):\n`,
    );
    for (const v of example.violations) process.stdout.write(`  ${formatViolation(v)}\n`);
  }
  process.stdout.write(
    `\nOn coherent machines (x86-64) the device snoops the caches, so nothing is stale even without the call;\n` +
      `the checker still reports CPU access to a buffer the device owns, which is a bug on any machine.\n` +
      `On 32-bit ARM, mapping DMA_FROM_DEVICE already invalidates the buffer, so a missing sync_for_cpu\n` +
      `after the first frame shows up only as an ownership violation.\n`,
  );
  process.stdout.write(
    `\nVerdict: ${ok ? "every synced case coherent, every wrong byte caught" : "MODEL INCONSISTENT"}\n`,
  );
  return ok ? 0 : 1;
}

function main(argv: string[]): number {
  let parsed: ReturnType<
    typeof parseArgs<{ options: typeof options; allowPositionals: true; strict: true }>
  >;
  const options = {
    help: { type: "boolean", short: "h" },
    version: { type: "boolean" },
    profile: { type: "string", multiple: true },
    size: { type: "string" },
  } as const;
  try {
    parsed = parseArgs({ args: argv, options, allowPositionals: true, strict: true });
  } catch (e) {
    fail((e as Error).message);
  }
  const { values, positionals } = parsed;
  if (values.help) {
    process.stdout.write(HELP);
    return 0;
  }
  if (values.version) {
    process.stdout.write("dmabuf 0.1.0\n");
    return 0;
  }
  const cmd = positionals[0] ?? "demo";
  switch (cmd) {
    case "demo": {
      const profiles = values.profile ?? ["cortex-a9", "arm64", "riscv64", "x86-64"];
      for (const p of profiles)
        if (PROFILES[p] === undefined) fail(`unknown profile '${p}' (see 'dmabuf list')`);
      const size = values.size === undefined ? 64 * 1024 : Number(values.size);
      if (!Number.isInteger(size) || size < 64 || size > 64 * 1024 * 1024) {
        fail(`--size must be a whole number of bytes from 64 to 67108864, not '${values.size}'`);
      }
      return demo(profiles, size);
    }
    case "list": {
      const rows = [["profile", "arch", "description"]];
      for (const p of Object.values(PROFILES)) rows.push([p.name, p.arch, p.title]);
      process.stdout.write(`${table(rows)}\n`);
      return 0;
    }
    default:
      fail(`unknown command '${cmd}'`);
  }
}

// A closed pipe (`dmabuf | head`) ends output quietly, as it does for any Unix tool.
process.stdout.on("error", (e: NodeJS.ErrnoException) => {
  if (e.code === "EPIPE") process.exit(process.exitCode ?? 0);
  throw e;
});

process.exitCode = main(process.argv.slice(2));
