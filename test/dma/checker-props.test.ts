/**
 * The checker, proven both ways with generated streaming-DMA protocols.
 *
 * Property 1 (no false alarms, correct bytes): a random *correct* protocol on a random
 * non-coherent profile (direct, force-bounced through swiotlb, or behind an IOMMU; any
 * buffer size and alignment) — CPU writes, sync_for_device / map, device reads; device
 * writes, sync_for_cpu / unmap, CPU reads; several rounds and mappings — gives every
 * reader exactly the bytes a reference model predicts, and the checker reports nothing.
 *
 * Property 2 (no silent corruption): the same protocol with exactly one map, unmap or
 * sync step removed is either reported by the checker, or changes no byte anyone reads.
 *
 * The reference model follows the DMA API's contract rather than any architecture: for
 * DMA_FROM_DEVICE the buffer's contents are undefined from the hand-over to the device
 * until the device writes them (32-bit ARM invalidates at map, swiotlb does not copy in
 * at sync_for_device), so unwritten bytes there are not compared.
 *
 * Both properties run with a fixed seed so that CI is deterministic (a random seed once
 * found the bounced protocol below, "removing a sync_for_cpu is unreported", in the
 * middle of a landing). To hunt with random seeds and more runs:
 *
 *   CHECKER_PROPS_SEED=random CHECKER_PROPS_RUNS=20000 node --test dist/test/dma/checker-props.test.js
 *
 * (or CHECKER_PROPS_SEED=<n> to replay one); a counterexample found that way belongs in
 * this file as an explicit case, as the bounced ones at the end are.
 */

import assert from "node:assert/strict";
import { describe as suite, test } from "node:test";
import fc from "fast-check";
import {
  DMA_BIDIRECTIONAL,
  DMA_FROM_DEVICE,
  DMA_TO_DEVICE,
  type DmaDirection,
  directionName,
} from "../../src/dma/direction.js";
import { PAGE_SIZE } from "../../src/machine/memory.js";
import { cmaBuffer, describe, NONCOHERENT_PROFILES, pattern, rig } from "./helpers.js";

type Mode = "direct" | "bounce" | "iommu";

interface Setup {
  readonly profile: (typeof NONCOHERENT_PROFILES)[number];
  readonly mode: Mode;
  /** Offset of the buffer from a page boundary (so lines and pages are shared at the edges). */
  readonly offset: number;
  readonly size: number;
}

/** Bytes a reader must see: `expect[i]` where `defined[i]`, anything elsewhere. */
interface Expectation {
  readonly expect: Uint8Array;
  readonly defined: Uint8Array;
}

type Step =
  | { readonly k: "map"; readonly dir: DmaDirection }
  | { readonly k: "unmap" }
  | { readonly k: "forCpu" }
  | { readonly k: "forDevice" }
  | { readonly k: "cpuWrite"; readonly off: number; readonly data: Uint8Array }
  | {
      readonly k: "cpuRead";
      readonly off: number;
      readonly len: number;
      readonly want: Expectation;
    }
  | { readonly k: "devWrite"; readonly off: number; readonly data: Uint8Array }
  | {
      readonly k: "devRead";
      readonly off: number;
      readonly len: number;
      readonly want: Expectation;
    }
  /** The CPU writes the bytes sharing cache lines with the buffer's edges (only while unmapped). */
  | { readonly k: "edgeWrite"; readonly data: Uint8Array }
  | { readonly k: "edgeRead"; readonly want: Expectation };

const REMOVABLE = new Set(["map", "unmap", "forCpu", "forDevice"]);

/** fast-check's seed for the properties: fixed unless CHECKER_PROPS_SEED says otherwise. */
const SEED_ENV = process.env.CHECKER_PROPS_SEED;
const PROPS_SEED: { seed?: number } =
  SEED_ENV === "random" ? {} : { seed: SEED_ENV === undefined ? 20261204 : Number(SEED_ENV) };
/** Runs per property (CHECKER_PROPS_RUNS overrides: a random-seed hunt wants thousands). */
const runsOr = (n: number): number => Number(process.env.CHECKER_PROPS_RUNS ?? n);

interface Protocol {
  readonly setup: Setup;
  readonly steps: Step[];
}

/** Bytes before and after the buffer that share its first and last cache line. */
function edges(setup: Setup, line: number): { before: number; after: number } {
  // The buffer starts `line + offset` bytes into its CMA block (see run()).
  const start = line + setup.offset;
  const end = start + setup.size;
  return { before: start % line, after: (line - (end % line)) % line };
}

/**
 * Builds a correct protocol from a stream of random choices: a small state machine that
 * only ever offers the steps the DMA API allows in the current state.
 */
function buildProtocol(setup: Setup, line: number, choices: readonly number[]): Protocol {
  const size = setup.size;
  const ref = new Uint8Array(size);
  const defined = new Uint8Array(size).fill(1);
  const edge = edges(setup, line);
  const edgeLen = edge.before + edge.after;
  const edgeRef = new Uint8Array(edgeLen);
  const steps: Step[] = [];
  let mapped: { dir: DmaDirection; owner: "cpu" | "device"; cpuDirty: boolean } | undefined;
  let seed = 1;
  const snap = (off: number, len: number): Expectation => ({
    expect: ref.slice(off, off + len),
    defined: defined.slice(off, off + len),
  });
  const range = (c: number): { off: number; len: number } => {
    const off = (c >>> 3) % size;
    const len = 1 + ((c >>> 11) % (size - off));
    // Half of the accesses cover the whole buffer.
    return c & 4 ? { off: 0, len: size } : { off, len };
  };
  const handToDevice = (dir: DmaDirection): void => {
    if (dir === DMA_FROM_DEVICE) defined.fill(0);
  };
  for (const c of choices) {
    const opts: string[] = [];
    if (mapped === undefined) {
      opts.push("cpuWrite", "cpuRead", "map", "map");
      if (edgeLen > 0) opts.push("edgeWrite", "edgeRead");
    } else if (mapped.owner === "device") {
      if (mapped.dir !== DMA_FROM_DEVICE) opts.push("devRead");
      if (mapped.dir !== DMA_TO_DEVICE) opts.push("devWrite", "devWrite");
      opts.push("forCpu", "unmap");
    } else {
      opts.push("cpuRead", "forDevice");
      if (mapped.dir !== DMA_FROM_DEVICE) opts.push("cpuWrite");
      // An invalidate for the CPU would discard writes not yet handed to the device.
      if (!mapped.cpuDirty) opts.push("forCpu", "unmap");
    }
    const pick = opts[c % opts.length]!;
    const r = range(c);
    switch (pick) {
      case "map": {
        const dir = [DMA_TO_DEVICE, DMA_FROM_DEVICE, DMA_BIDIRECTIONAL][(c >>> 2) % 3]!;
        mapped = { dir, owner: "device", cpuDirty: false };
        handToDevice(dir);
        steps.push({ k: "map", dir });
        break;
      }
      case "unmap":
        mapped = undefined;
        steps.push({ k: "unmap" });
        break;
      case "forCpu":
        mapped!.owner = "cpu";
        steps.push({ k: "forCpu" });
        break;
      case "forDevice":
        mapped!.owner = "device";
        mapped!.cpuDirty = false;
        handToDevice(mapped!.dir);
        steps.push({ k: "forDevice" });
        break;
      case "cpuWrite": {
        const data = pattern(r.len, seed++);
        ref.set(data, r.off);
        defined.fill(1, r.off, r.off + r.len);
        if (mapped?.dir === DMA_BIDIRECTIONAL) mapped.cpuDirty = true;
        steps.push({ k: "cpuWrite", off: r.off, data });
        break;
      }
      case "devWrite": {
        const data = pattern(r.len, seed++);
        ref.set(data, r.off);
        defined.fill(1, r.off, r.off + r.len);
        steps.push({ k: "devWrite", off: r.off, data });
        break;
      }
      case "cpuRead":
        steps.push({ k: "cpuRead", ...r, want: snap(r.off, r.len) });
        break;
      case "devRead":
        steps.push({ k: "devRead", ...r, want: snap(r.off, r.len) });
        break;
      case "edgeWrite": {
        const data = pattern(edgeLen, seed++);
        edgeRef.set(data);
        steps.push({ k: "edgeWrite", data });
        break;
      }
      case "edgeRead":
        steps.push({
          k: "edgeRead",
          want: { expect: edgeRef.slice(), defined: new Uint8Array(edgeLen).fill(1) },
        });
        break;
    }
  }
  // Wind down: give everything back to the CPU, then read all of it.
  if (mapped !== undefined) {
    if (mapped.cpuDirty) {
      handToDevice(mapped.dir);
      steps.push({ k: "forDevice" });
    }
    steps.push({ k: "unmap" });
  }
  steps.push({ k: "cpuRead", off: 0, len: size, want: snap(0, size) });
  if (edgeLen > 0) {
    steps.push({
      k: "edgeRead",
      want: { expect: edgeRef.slice(), defined: new Uint8Array(edgeLen).fill(1) },
    });
  }
  return { setup, steps };
}

interface Outcome {
  /** Bytes read (by CPU or device) that differ from the reference where it is defined. */
  readonly wrongBytes: number;
  readonly violations: number;
  readonly report: string;
}

function countWrong(got: Uint8Array, want: Expectation): number {
  let n = 0;
  for (let i = 0; i < got.length; i++) if (want.defined[i] && got[i] !== want.expect[i]) n++;
  return n;
}

/** Runs a protocol (possibly with a step removed) on a fresh machine. */
function run(p: Protocol): Outcome {
  const { setup } = p;
  const { m, dma, dev } = rig(setup.profile, { iommu: setup.mode === "iommu" });
  dma.forceBounce = setup.mode === "bounce";
  const L = m.cache.line;
  const block = cmaBuffer(m, L + setup.offset + setup.size + L);
  const phys = block + L + setup.offset;
  const size = setup.size;
  const edge = edges(setup, L);
  const edgeRanges = [
    { phys: phys - edge.before, len: edge.before },
    { phys: phys + size, len: edge.after },
  ].filter((r) => r.len > 0);
  let handle: number | undefined;
  let dir: DmaDirection = DMA_BIDIRECTIONAL;
  let wrong = 0;
  // A step removed from the protocol can leave later steps without a mapping: they then
  // use what a buggy driver would, the buffer's physical address.
  const addr = (): number => handle ?? phys;
  for (const s of p.steps) {
    switch (s.k) {
      case "map":
        dir = s.dir;
        handle = dma.dmaMapSingle(dev, phys, size, dir);
        assert.equal(dma.dmaMappingError(dev, handle), false);
        break;
      case "unmap":
        dma.dmaUnmapSingle(dev, addr(), size, dir);
        handle = undefined;
        break;
      case "forCpu":
        dma.dmaSyncSingleForCpu(dev, addr(), size, dir);
        break;
      case "forDevice":
        dma.dmaSyncSingleForDevice(dev, addr(), size, dir);
        break;
      case "cpuWrite":
        m.cpu.writePhys(phys + s.off, s.data);
        break;
      case "cpuRead":
        wrong += countWrong(m.cpu.readPhys(phys + s.off, s.len), s.want);
        break;
      case "devWrite":
        dev.submit("write", s.data.length, () => dev.write(addr() + s.off, s.data));
        m.clock.runUntilIdle();
        break;
      case "devRead": {
        const got = new Uint8Array(s.len);
        dev.submit("read", s.len, () => dev.read(addr() + s.off, s.len, got));
        m.clock.runUntilIdle();
        wrong += countWrong(got, s.want);
        break;
      }
      case "edgeWrite": {
        let off = 0;
        for (const r of edgeRanges) {
          m.cpu.writePhys(r.phys, s.data, off, r.len);
          off += r.len;
        }
        break;
      }
      case "edgeRead": {
        const got = new Uint8Array(edge.before + edge.after);
        let off = 0;
        for (const r of edgeRanges) {
          m.cpu.readPhys(r.phys, r.len, got, off);
          off += r.len;
        }
        wrong += countWrong(got, s.want);
        break;
      }
    }
  }
  dma.dmaReleaseDevice(dev);
  return {
    wrongBytes: wrong,
    violations: m.violations.count,
    report: describe(m.violations.list),
  };
}

const setupArb: fc.Arbitrary<Setup> = fc.record({
  profile: fc.constantFrom(...NONCOHERENT_PROFILES),
  mode: fc.constantFrom<Mode>("direct", "bounce", "iommu"),
  offset: fc.oneof(fc.constant(0), fc.integer({ min: 0, max: PAGE_SIZE - 1 })),
  size: fc.oneof(
    fc.integer({ min: 1, max: 200 }),
    fc.integer({ min: 1, max: 3 * PAGE_SIZE }),
    fc.constantFrom(64, PAGE_SIZE, 2 * PAGE_SIZE),
  ),
});

/** A setup and the random choices a protocol is built from (small, so counterexamples print well). */
const inputArb = fc.tuple(setupArb, fc.array(fc.nat(), { minLength: 4, maxLength: 30 }));

function protocolOf([setup, choices]: [Setup, number[]]): Protocol {
  const line = setup.profile === "cortex-a9" ? 32 : 64;
  return buildProtocol(setup, line, choices);
}

function summary(p: Protocol): string {
  const s = p.setup;
  const steps = p.steps.map((x) => (x.k === "map" ? `map(${directionName(x.dir)})` : x.k));
  return `${s.profile}/${s.mode} offset=${s.offset} size=${s.size}: ${steps.join(" ")}`;
}

suite("checker properties", () => {
  test("sanity: the generator covers every step kind and every direction", () => {
    const kinds = new Set<string>();
    const dirs = new Set<number>();
    fc.assert(
      fc.property(inputArb, (input) => {
        for (const s of protocolOf(input).steps) {
          kinds.add(s.k);
          if (s.k === "map") dirs.add(s.dir);
        }
      }),
      { numRuns: 200, seed: 7 },
    );
    for (const k of ["map", "unmap", "forCpu", "forDevice", "cpuWrite", "cpuRead"])
      assert.ok(kinds.has(k), k);
    for (const k of ["devWrite", "devRead", "edgeWrite", "edgeRead"]) assert.ok(kinds.has(k), k);
    assert.equal(dirs.size, 3);
  });

  test("property 1: a correct protocol reads the reference bytes and reports nothing", () => {
    fc.assert(
      fc.property(inputArb, (input) => {
        const p = protocolOf(input);
        const o = run(p);
        assert.equal(o.violations, 0, `${summary(p)}\n${o.report}`);
        assert.equal(o.wrongBytes, 0, summary(p));
      }),
      { numRuns: runsOr(300), ...PROPS_SEED },
    );
  });

  test("property 2: one map/unmap/sync step removed is caught, or changes no byte", () => {
    let caught = 0;
    let harmless = 0;
    /** Removed syncs on bounced mappings, the protocols the swiotlb checks exist for. */
    const bounced = { forCpu: 0, forDevice: 0 };
    fc.assert(
      fc.property(inputArb, fc.nat(), (input, pick) => {
        const p = protocolOf(input);
        const removable = p.steps.flatMap((s, j) => (REMOVABLE.has(s.k) ? [j] : []));
        fc.pre(removable.length > 0);
        const i = removable[pick % removable.length]!;
        const k = p.steps[i]!.k;
        if (p.setup.mode === "bounce" && (k === "forCpu" || k === "forDevice")) bounced[k]++;
        const broken: Protocol = { setup: p.setup, steps: p.steps.filter((_, j) => j !== i) };
        const o = run(broken);
        if (o.violations > 0) caught++;
        else harmless++;
        assert.ok(
          o.violations > 0 || o.wrongBytes === 0,
          `removing step ${i} (${p.steps[i]!.k}) corrupted ${o.wrongBytes} byte(s) unreported: ${summary(p)}`,
        );
      }),
      { numRuns: runsOr(600), ...PROPS_SEED },
    );
    // Both outcomes occur: the property is not vacuous either way.
    assert.ok(caught > 0, "some removals are caught");
    assert.ok(harmless > 0, "some removals are harmless");
    assert.ok(bounced.forCpu >= 5 && bounced.forDevice >= 5, JSON.stringify(bounced));
  });

  test("a removed sync_for_cpu, sync_for_device or unmap is named in the report", () => {
    // map(BIDI), device writes, [sync_for_cpu removed], CPU reads: cortex-a9, direct.
    const setup: Setup = { profile: "cortex-a9", mode: "direct", offset: 0, size: 256 };
    const devData = pattern(256, 1);
    const want = { expect: devData, defined: new Uint8Array(256).fill(1) };
    const o = run({
      setup,
      steps: [
        {
          k: "cpuRead",
          off: 0,
          len: 256,
          want: { expect: new Uint8Array(256), defined: want.defined },
        },
        { k: "map", dir: DMA_BIDIRECTIONAL },
        { k: "devWrite", off: 0, data: devData },
        { k: "cpuRead", off: 0, len: 256, want },
        { k: "unmap" },
      ],
    });
    assert.ok(o.wrongBytes > 0, "the CPU read stale bytes");
    assert.match(o.report, /stale-cpu-read/);
    assert.match(o.report, /dma_sync_single_for_cpu/);
  });

  test("a CPU write after sync_for_cpu lost by the unmap invalidate is reported", () => {
    const setup: Setup = { profile: "arm64", mode: "direct", offset: 0, size: 256 };
    const data = pattern(256, 2);
    const o = run({
      setup,
      steps: [
        { k: "map", dir: DMA_BIDIRECTIONAL },
        { k: "forCpu" },
        { k: "cpuWrite", off: 0, data },
        // dma_sync_single_for_device left out
        { k: "unmap" },
        {
          k: "cpuRead",
          off: 0,
          len: 256,
          want: { expect: data, defined: new Uint8Array(256).fill(1) },
        },
      ],
    });
    assert.ok(o.wrongBytes > 200, "the CPU's writes were discarded");
    assert.match(o.report, /discarded 4 dirty line/);
  });

  test("a missing sync_for_device on a bounced mapping: the device reads the slot's old bytes, and it is reported (raspberrypi/linux 5727)", () => {
    const setup: Setup = { profile: "arm64", mode: "bounce", offset: 0, size: 256 };
    const data = pattern(256, 3);
    const o = run({
      setup,
      steps: [
        { k: "map", dir: DMA_TO_DEVICE },
        { k: "forCpu" },
        { k: "cpuWrite", off: 0, data },
        // dma_sync_single_for_device left out: the slot keeps the old bytes
        {
          k: "devRead",
          off: 0,
          len: 256,
          want: { expect: data, defined: new Uint8Array(256).fill(1) },
        },
        { k: "unmap" },
      ],
    });
    assert.ok(o.wrongBytes > 200, "the device read the stale slot");
    assert.ok(o.violations > 0, "…and this is reported");
    assert.match(o.report, /stale-device-read/);
    assert.match(o.report, /swiotlb bounce slot/);
    assert.match(o.report, /dma_sync_\*_for_device/);
  });
  // Property 2's counterexamples (random seeds, before the swiotlb copy-in check):
  //   cortex-a9/bounce offset=0 size=8192: map(BIDI) devWrite [forCpu] forDevice unmap cpuRead
  //   arm64/bounce offset=2475 size=64: map(BIDI) forCpu forDevice devWrite devWrite devWrite
  //     [forCpu] forDevice devRead devWrite devWrite forCpu unmap cpuRead edgeRead
  // and in a landing, cortex-a9/bounce offset=0 size=33 with step 3 (forCpu) removed.
  // The sync_for_device copies the buffer over the slot the device wrote: its data is
  // gone before anyone reads, and the unmap copies the old buffer back to the CPU.
  for (const profile of NONCOHERENT_PROFILES) {
    test(`a missing sync_for_cpu before sync_for_device on a bounced mapping loses the device's write, and it is reported (${profile})`, () => {
      const setup: Setup = { profile, mode: "bounce", offset: 0, size: 33 };
      const devData = pattern(33, 4);
      const want = { expect: devData, defined: new Uint8Array(33).fill(1) };
      const steps = (withSync: boolean): Step[] => [
        { k: "map", dir: DMA_BIDIRECTIONAL },
        { k: "devWrite", off: 0, data: devData },
        ...(withSync ? [{ k: "forCpu" } as const] : []),
        { k: "forDevice" },
        { k: "unmap" },
        { k: "cpuRead", off: 0, len: 33, want },
      ];
      const good = run({ setup, steps: steps(true) });
      assert.equal(good.violations, 0, good.report);
      assert.equal(good.wrongBytes, 0);
      const o = run({ setup, steps: steps(false) });
      assert.ok(o.wrongBytes > 0, "the CPU read the old buffer");
      assert.match(o.report, /lost-device-write/);
      assert.match(o.report, /swiotlb slot/);
      assert.match(o.report, /dma_sync_\*_for_cpu\(\)/);
    });
  }

  test("a missing sync_for_cpu between device writes on a bounced mapping: only the bytes the device wrote since are reported", () => {
    const setup: Setup = { profile: "arm64", mode: "bounce", offset: 2475, size: 64 };
    const first = pattern(64, 5);
    const second = pattern(20, 6);
    const final = first.slice();
    final.set(second, 10);
    const all = new Uint8Array(64).fill(1);
    const steps = (withSync: boolean): Step[] => [
      { k: "map", dir: DMA_BIDIRECTIONAL },
      { k: "devWrite", off: 0, data: first },
      { k: "forCpu" },
      { k: "forDevice" },
      { k: "devWrite", off: 10, data: second },
      ...(withSync ? [{ k: "forCpu" } as const] : []),
      { k: "forDevice" },
      { k: "devRead", off: 0, len: 64, want: { expect: final, defined: all } },
      { k: "unmap" },
      { k: "cpuRead", off: 0, len: 64, want: { expect: final, defined: all } },
    ];
    const good = run({ setup, steps: steps(true) });
    assert.equal(good.violations, 0, good.report);
    assert.equal(good.wrongBytes, 0);
    const o = run({ setup, steps: steps(false) });
    assert.ok(o.wrongBytes > 0, "the device and the CPU read the old bytes");
    assert.match(o.report, /lost-device-write/);
    const lost = Number(/over (\d+) byte\(s\)/.exec(o.report)?.[1]);
    assert.ok(lost > 0 && lost <= 20, o.report);
  });
});
