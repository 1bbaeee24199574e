/**
 * The docs cannot silently rot. Every `dmabuf` command in README.md and docs/*.md (in a
 * code block, or in inline code) is checked from the project root, as a reader would
 * type it:
 *
 * - it parses (its options are the command's; `--help` appended must succeed);
 * - `run`, `list`, `schema`, `demo` and `help` run; a run must not be refused (exit 2)
 *   unless the doc shows the refusal; `sweep` runs with `--dry-run`, which checks the
 *   scenario, the whole grid and the output paths without running it (or runs, when
 *   the doc shows its output); `mutate` and `merge` are parsed and `mutate`'s scenario
 *   must resolve;
 * - a command written `$ npx dmabuf ...` followed by output must print that output
 *   (stdout, or stderr when stdout is empty: what stays on a terminal once progress is
 *   redrawn; `| head -N` applies; a line `...` stands for any number of lines).
 *
 * Every YAML block of a doc that is a scenario (a top-level `graph:` or `pipeline:`) must
 * pass the scenario schema. A block whose first line is a comment naming a file
 * (`# five-devices.yaml`), or whose preceding prose line names one in backticks ("save it
 * as `five-devices.yaml`:"), is that file for the doc's commands: they run it.
 *
 * Commands run in a scratch directory holding links to the checkout's files, so output
 * files land there, never in the checkout. Shell variables of the schedulers' examples
 * (`$SLURM_ARRAY_TASK_ID`, `${{ matrix.k }}`, `$((JOB_COMPLETION_INDEX + 1))`) stand for
 * shard 1; a `for VAR in A B; do ... done` loop runs its body for each value. Usage
 * synopses (`dmabuf sweep SCENARIO --vary KEY=V1,V2,... [--vary KEY=...]`) are not
 * commands and are skipped.
 */

import assert from "node:assert/strict";
import {
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { parse as parseYaml } from "yaml";
import { resolveScenarioArgument } from "../../src/cli/list.js";
import { main } from "../../src/cli/main.js";
import { parseScenario } from "../../src/scenarios/scenario.js";
import { captureIo } from "../cli/fixtures.js";

const ROOT = process.cwd();
const DOC_FILES = [
  "README.md",
  ...readdirSync(join(ROOT, "docs"))
    .filter((f) => f.endsWith(".md"))
    .sort()
    .map((f) => `docs/${f}`),
];

/** A fenced code block of a doc. */
interface Block {
  readonly file: string;
  /** 1-based line of the first line inside the fence. */
  readonly line: number;
  readonly lang: string;
  readonly lines: readonly string[];
  /** The prose line just before the opening fence. */
  readonly before: string;
}

/** One command as written in a doc. */
interface DocCommand {
  readonly file: string;
  readonly line: number;
  readonly text: string;
  /** The arguments after `dmabuf`. */
  readonly argv: readonly string[];
  /** `| head -N` after the command. */
  readonly head?: number;
  /** The output the doc shows after a `$ ` command, if any. */
  readonly expected?: readonly string[];
}

function docBlocks(file: string): { blocks: Block[]; inline: { line: number; text: string }[] } {
  const lines = readFileSync(join(ROOT, file), "utf8").split("\n");
  const blocks: Block[] = [];
  const inline: { line: number; text: string }[] = [];
  let open: { fence: string; lang: string; start: number; before: string } | undefined;
  let body: string[] = [];
  lines.forEach((l, i) => {
    const fence = /^\s*(```+|~~~+)\s*([\w-]*)/.exec(l);
    if (open === undefined) {
      if (fence) {
        let k = i - 1;
        while (k >= 0 && lines[k]!.trim() === "") k--;
        open = { fence: fence[1]!, lang: fence[2] ?? "", start: i + 2, before: lines[k] ?? "" };
        body = [];
        return;
      }
      for (const m of l.matchAll(/`([^`]*\bdmabuf\b[^`]*)`/g))
        inline.push({ line: i + 1, text: m[1]! });
      return;
    }
    if (fence && fence[1]!.startsWith(open.fence) && (fence[2] ?? "") === "") {
      blocks.push({ file, line: open.start, lang: open.lang, lines: body, before: open.before });
      open = undefined;
      return;
    }
    body.push(l);
  });
  return { blocks, inline };
}

/** Shell and CI variables of the docs' scheduler examples: shard 1. */
function substituteVariables(text: string): string {
  return text
    .replace(/\$\{\{[^}]*\}\}/g, "1")
    .replace(/\$\(\([^)]*\)\)/g, "1")
    .replace(/\$\{?[A-Za-z_][A-Za-z0-9_]*\}?/g, "1");
}

/**
 * Shell words of `text` up to the first operator (`|`, `;`, `&&`, `||`, `>`, `<`, a
 * comment), with quotes removed, and what follows.
 */
function shellWords(text: string): { words: string[]; rest: string } {
  const words: string[] = [];
  let cur: string | undefined;
  let i = 0;
  for (; i < text.length; i++) {
    const c = text[i]!;
    if (c === "'") {
      const j = text.indexOf("'", i + 1);
      cur = (cur ?? "") + text.slice(i + 1, j < 0 ? text.length : j);
      i = j < 0 ? text.length : j;
    } else if (c === '"') {
      let j = i + 1;
      let s = "";
      while (j < text.length && text[j] !== '"') {
        if (text[j] === "\\" && j + 1 < text.length) j++;
        s += text[j];
        j++;
      }
      cur = (cur ?? "") + s;
      i = j;
    } else if (c === "\\" && i + 1 < text.length) {
      cur = (cur ?? "") + text[++i];
    } else if (/\s/.test(c)) {
      if (cur !== undefined) words.push(cur);
      cur = undefined;
    } else if ("|;&<>".includes(c) || (c === "#" && cur === undefined)) {
      break;
    } else {
      cur = (cur ?? "") + c;
    }
  }
  if (cur !== undefined) words.push(cur);
  return { words, rest: text.slice(i) };
}

/** A usage synopsis, not a command: placeholders, `[options]`, `...`. */
function isSynopsis(words: readonly string[]): boolean {
  return words.some(
    (w) => w.startsWith("[") || w.includes("...") || /^[A-Z][A-Z_]{2,}\b/.test(w) || w === "…",
  );
}

function commandFrom(
  file: string,
  line: number,
  text: string,
  expected?: string[],
): DocCommand | undefined {
  const at = /(?:^|[\s;&|(])(?:npx\s+)?dmabuf(?=\s|$)/.exec(text);
  if (at === null) return undefined;
  // Only `npx dmabuf`, or `dmabuf` opening the line (a shell prompt's command).
  const start = at.index + at[0].indexOf("dmabuf");
  const npx = /npx\s+$/.test(text.slice(0, start));
  if (!npx && text.slice(0, start).trim() !== "" && text.slice(0, start).trim() !== "$")
    return undefined;
  const { words, rest } = shellWords(substituteVariables(text.slice(start + "dmabuf".length)));
  if (isSynopsis(words)) return undefined;
  const head = /^\s*\|\s*head\s+-n?\s*(\d+)/.exec(rest);
  return {
    file,
    line,
    text: text.trim(),
    argv: words,
    ...(head ? { head: Number(head[1]) } : {}),
    ...(expected !== undefined ? { expected } : {}),
  };
}

/** The logical lines of a block: `\` continuations joined, YAML plain scalars folded. */
function logicalLines(b: Block): { line: number; text: string }[] {
  const out: { line: number; text: string }[] = [];
  const yaml = /^ya?ml$/.test(b.lang);
  for (let i = 0; i < b.lines.length; i++) {
    let text = b.lines[i]!;
    const line = b.line + i;
    while (text.endsWith("\\") && i + 1 < b.lines.length)
      text = `${text.slice(0, -1)} ${b.lines[++i]}`;
    if (yaml && /\bdmabuf\b/.test(text)) {
      const indent = text.search(/\S/);
      while (
        i + 1 < b.lines.length &&
        b.lines[i + 1]!.search(/\S/) > indent &&
        !/^\s*(- |[\w-]+:)/.test(b.lines[i + 1]!)
      ) {
        text = `${text} ${b.lines[++i]!.trim()}`;
      }
    }
    out.push({ line, text });
  }
  return out;
}

/** The commands of a block, with `for VAR in ...; do ... done` expanded and `$ ` outputs. */
function blockCommands(b: Block): DocCommand[] {
  const lines = logicalLines(b);
  const prompt = lines.some((l) => l.text.startsWith("$ "));
  const out: DocCommand[] = [];
  let loop: { name: string; values: string[] } | undefined;
  for (let i = 0; i < lines.length; i++) {
    const { line, text } = lines[i]!;
    const forLoop = /^\s*for\s+(\w+)\s+in\s+([^;]+);\s*do\s*$/.exec(text);
    if (forLoop) {
      loop = { name: forLoop[1]!, values: forLoop[2]!.trim().split(/\s+/) };
      continue;
    }
    if (/^\s*done\b/.test(text)) {
      loop = undefined;
      continue;
    }
    let expected: string[] | undefined;
    if (prompt && text.startsWith("$ ")) {
      expected = [];
      while (i + 1 < lines.length && !lines[i + 1]!.text.startsWith("$ "))
        expected.push(lines[++i]!.text);
      while (expected.length > 0 && expected[expected.length - 1]!.trim() === "") expected.pop();
      if (expected.length === 0) expected = undefined;
    } else if (prompt) {
      continue; // output of a command that is not dmabuf's
    }
    const variants =
      loop === undefined
        ? [text]
        : loop.values.map((v) => text.replace(new RegExp(`\\$\\{?${loop!.name}\\b\\}?`, "g"), v));
    for (const t of variants) {
      const c = commandFrom(b.file, line, t, expected);
      if (c !== undefined) out.push(c);
    }
  }
  return out;
}

/** The scenario files a doc writes out as YAML blocks (by a `# name.yaml` line or the prose before). */
function docScenarioFiles(blocks: readonly Block[]): Map<string, string> {
  const files = new Map<string, string>();
  for (const b of blocks) {
    if (!/^ya?ml$/.test(b.lang)) continue;
    const named =
      /^#\s*([\w.-]+\.ya?ml)\s*$/.exec(b.lines[0] ?? "")?.[1] ??
      /`([\w.-]+\.ya?ml)`[^`]*:\s*$/.exec(b.before)?.[1];
    if (named !== undefined) files.set(named, b.lines.join("\n"));
  }
  return files;
}

function isScenarioYaml(b: Block): boolean {
  return /^ya?ml$/.test(b.lang) && b.lines.some((l) => /^(graph|pipeline):/.test(l));
}

const DOCS = DOC_FILES.map((file) => {
  const { blocks, inline } = docBlocks(file);
  const commands = [
    ...blocks.flatMap(blockCommands),
    ...inline.flatMap((x) => {
      // In prose, `dmabuf run` names a command; `npx dmabuf run lying-hint` is one.
      if (!/^\s*npx\s+dmabuf\b/.test(x.text)) return [];
      const c = commandFrom(file, x.line, x.text);
      return c === undefined ? [] : [c];
    }),
  ];
  return { file, blocks, commands, written: docScenarioFiles(blocks) };
});

/** A directory that looks like the checkout (links to its files) but holds its own out/. */
function sandbox(written: ReadonlyMap<string, string>): string {
  const dir = mkdtempSync(join(tmpdir(), "dmabuf-docs-"));
  for (const entry of readdirSync(ROOT)) {
    if (entry === "out" || entry === ".git") continue;
    symlinkSync(join(ROOT, entry), join(dir, entry));
  }
  for (const [name, text] of written) writeFileSync(join(dir, name), text);
  return dir;
}

async function runCli(
  argv: readonly string[],
  cwd: string,
): Promise<{ code: number; text: string; stdout: string; stderr: string }> {
  const io = captureIo(cwd);
  const code = await main([...argv], io);
  return { code, text: io.stdout + io.stderr, stdout: io.stdout, stderr: io.stderr };
}

/** `expected` (with `...` for any lines) against `actual`, line by line. */
function matches(expected: readonly string[], actual: readonly string[]): boolean {
  const e = expected.map((l) => l.trimEnd());
  const a = actual.map((l) => l.trimEnd());
  const go = (i: number, j: number): boolean => {
    if (i === e.length) return j === a.length;
    if (e[i] === "...") {
      for (let k = j; k <= a.length; k++) if (go(i + 1, k)) return true;
      return false;
    }
    return j < a.length && e[i] === a[j] && go(i + 1, j + 1);
  };
  return go(0, 0);
}

const RUNS = new Set(["run", "list", "schema", "demo", "help"]);

/** What is wrong with a doc's command, run in `cwd`; undefined when it works as shown. */
async function checkCommand(c: DocCommand, cwd: string): Promise<string | undefined> {
  const sub = c.argv[0];
  // Options: `--help` after them must be accepted (strict parsing of every command).
  const help = await runCli(sub === "help" ? c.argv : [...c.argv, "--help"], cwd);
  if (help.code !== 0) return `does not parse:\n${help.text}`;
  if (sub === "mutate" || sub === "run") {
    const scenario = c.argv
      .slice(1)
      .find(
        (w, k, a) =>
          !w.startsWith("-") && !/^--(set|frames|profile|json|html|trace)$/.test(a[k - 1] ?? ""),
      );
    if (scenario === undefined) return "names no scenario";
    try {
      resolveScenarioArgument(scenario, cwd);
    } catch (e) {
      return (e as Error).message;
    }
  }
  if (sub === "sweep" && c.expected === undefined) {
    const r = await runCli([...c.argv, "--dry-run"], cwd);
    return r.code === 0 ? undefined : `is refused:\n${r.text}`;
  }
  if (sub === undefined || !(RUNS.has(sub) || sub === "sweep")) return undefined;
  const r = await runCli(c.argv, cwd);
  // What a terminal keeps: stdout (stderr's progress is redrawn), or the error alone.
  const shown = r.stdout !== "" ? r.stdout : r.stderr;
  let lines = shown.replace(/\n$/, "").split("\n");
  if (c.head !== undefined) lines = lines.slice(0, c.head);
  if (c.expected !== undefined) {
    return matches(c.expected, lines)
      ? undefined
      : `the doc shows:\n${c.expected.join("\n")}\n  the run prints:\n${lines.join("\n")}`;
  }
  return r.code === 2 ? `is refused:\n${r.text}` : undefined;
}

describe("every dmabuf command in README.md and docs/*.md works as written", () => {
  const dirs: string[] = [];
  after(() => {
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });

  it("finds the docs' commands (the test itself has not rotted)", () => {
    const all = DOCS.flatMap((d) => d.commands);
    assert.ok(all.length >= 40, `only ${all.length} commands found`);
    for (const sub of ["run", "sweep", "merge", "list", "demo", "schema"])
      assert.ok(
        all.some((c) => c.argv[0] === sub),
        `no 'dmabuf ${sub}' found`,
      );
    assert.ok(
      all.some((c) => c.argv.length === 0),
      "the main job 'npx dmabuf' not found",
    );
    assert.ok(all.some((c) => c.expected !== undefined && c.head !== undefined));
  });

  it("every scenario written out as YAML in a doc is valid", () => {
    let n = 0;
    for (const d of DOCS) {
      for (const b of d.blocks.filter(isScenarioYaml)) {
        const where = `${d.file}:${b.line}`;
        let data: unknown;
        assert.doesNotThrow(() => {
          data = parseYaml(b.lines.join("\n"));
        }, where);
        assert.doesNotThrow(() => parseScenario(data), where);
        n++;
      }
    }
    assert.ok(n >= 2, `only ${n} scenario blocks`);
  });

  for (const d of DOCS) {
    if (d.commands.length === 0) continue;
    it(`${d.file}: ${d.commands.length} commands parse, resolve and run as shown`, async () => {
      const cwd = sandbox(d.written);
      dirs.push(cwd);
      const problems: string[] = [];
      for (const c of d.commands) {
        const problem = await checkCommand(c, cwd);
        if (problem !== undefined) problems.push(`${c.file}:${c.line}: ${c.text}\n  ${problem}`);
      }
      assert.deepEqual(problems, [], problems.join("\n\n"));
    });
  }
});
