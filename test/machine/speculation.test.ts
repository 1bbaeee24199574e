/**
 * Speculative line fills (src/machine/speculation.ts): while a non-coherent device writes
 * a streaming buffer, an ARM or RISC-V CPU may pull lines of it into its cache. Then the
 * invalidate after DMA_FROM_DEVICE (arm64's rule) is what keeps the CPU's reads right,
 * and a driver that only invalidates before the DMA reads stale lines, named as such.
 */

import assert from "node:assert/strict";
import { describe as suite, test } from "node:test";
import fc from "fast-check";
import { DMA_FROM_DEVICE } from "../../src/dma/direction.js";
import { DmaMappingApi } from "../../src/dma/mapping.js";
import { faultPlan } from "../../src/kernel/fault-inject.js";
import type { BusMaster } from "../../src/machine/bus.js";
import { Machine } from "../../src/machine/machine.js";
import { Prng } from "../../src/machine/prng.js";
import { resolveProfile } from "../../src/machine/profiles.js";
import {
  parseScenario,
  readScenarioData,
  runScenario,
  setScenarioField,
} from "../../src/scenarios/scenario.js";
import { cmaBuffer, pattern, rig } from "../dma/helpers.js";

const SIZE = 64 * 1024;

/** A bundled scenario, with fields changed as `--set` would. */
function bundled(name: string, set: Record<string, unknown> = {}) {
  const src = readScenarioData(`examples/scenarios/${name}.yaml`);
  let data = src.data;
  for (const [k, v] of Object.entries(set)) data = setScenarioField(data, k, v);
  return runScenario(parseScenario(data, src));
}

/** Map FROM_DEVICE, let the device write `bytes`, sync for the CPU, read back. */
function roundTrip(
  profile: string,
  opts: { rate?: number; faults?: string[]; size?: number; seed?: number; cached?: boolean } = {},
) {
  const size = opts.size ?? SIZE;
  const p = resolveProfile(profile, {
    ...(opts.rate !== undefined ? { speculativeFillRate: opts.rate } : {}),
    ...(opts.seed !== undefined ? { seed: opts.seed } : {}),
  });
  const { m, dma, dev } = rig(p);
  if (opts.faults) m.faults.arm(faultPlan(opts.faults));
  const phys = cmaBuffer(m, size);
  // The CPU may have an old copy of the whole buffer in its cache (it read the last frame).
  if (opts.cached !== false) m.cpu.readPhys(phys, size);
  const h = dma.dmaMapSingle(dev, phys, size, DMA_FROM_DEVICE);
  assert.equal(dma.dmaMappingError(dev, h), false);
  const bytes = pattern(size, 7);
  dev.write(h, bytes);
  dma.dmaSyncSingleForCpu(dev, h, size, DMA_FROM_DEVICE);
  const seen = m.cpu.readPhys(phys, size);
  dma.dmaUnmapSingle(dev, h, size, DMA_FROM_DEVICE);
  return { m, bytes, seen };
}

function wrongLines(m: Machine, a: Uint8Array, b: Uint8Array): number {
  const L = m.cache.line;
  let n = 0;
  for (let i = 0; i < a.length; i += L) {
    for (let j = i; j < i + L; j++)
      if (a[j] !== b[j]) {
        n++;
        break;
      }
  }
  return n;
}

/**
 * The straightforward implementation the bulk one must match: a PRNG draw, a prefetch
 * and a record per fill, every record kept. Installed in place of the machine's own.
 */
function referenceFills(m: Machine, rate: number) {
  const prng = new Prng((m.profile.seed * 0x9e3779b1) ^ 0x5bec);
  const filled = new Map<number, { fill: number; device: string }>();
  const state = { fills: 0 };
  m.bus.writeObserver = (master: BusMaster, phys: number, len: number, epoch: number) => {
    const L = m.cache.line;
    const first = Math.ceil(phys / L);
    const count = Math.floor((phys + len) / L) - first;
    if (count <= 0) return;
    if (m.ownership.conflict(phys, len, true) === undefined) return;
    const want = count * rate;
    let n = Math.floor(want);
    if (prng.nextU32() / 2 ** 32 < want - n) n++;
    for (let k = 0; k < n; k++) {
      const at = (first + prng.below(count)) * L;
      if (!m.cache.prefetch(at, epoch - 1)) continue;
      state.fills++;
      filled.set(at, { fill: epoch - 1, device: master.name });
      const lost = m.cache.findings.lostWrite;
      if (lost !== undefined) m.cpu.reportLostWrite(lost.phys, lost.lines, lost.epoch);
    }
  };
  m.violations.addExplainer((v) => {
    if (v.kind !== "stale-cpu-read" || v.phys < 0) return undefined;
    const at = Math.floor(v.phys / m.cache.line) * m.cache.line;
    const rec = filled.get(at);
    if (rec === undefined || m.cache.fillEpochOf(at) !== rec.fill) return undefined;
    return {
      message: `the CPU fetched the line speculatively while ${rec.device} wrote the buffer, so an invalidate before the DMA could not help`,
      hint: "see speculation.ts",
    };
  });
  return state;
}

suite("speculative line fills during DMA", () => {
  test("the profiles: on for ARM and RISC-V, off for x86", () => {
    for (const p of ["arm64", "cortex-a9", "riscv64"])
      assert.ok(new Machine({ profile: p }).speculation !== undefined, p);
    for (const p of ["x86-64", "x86-64-64m"])
      assert.equal(new Machine({ profile: p }).speculation, undefined, p);
  });

  test("arm64's rule (clean before, invalidate after) reads exactly what the device wrote", () => {
    const { m, bytes, seen } = roundTrip("arm64", { cached: false });
    assert.ok(m.speculation!.fills > 0, "some lines were filled speculatively");
    assert.deepEqual(seen, bytes);
    assert.equal(m.violations.count, 0);
  });

  test("invalidating only before the DMA reads the speculatively filled lines stale, and says so", () => {
    const { m, bytes, seen } = roundTrip("arm64", { faults: ["invalidate-before-only"] });
    const fills = m.speculation!.fills;
    assert.ok(fills > 0);
    // Exactly the lines filled during the transfer are wrong (the rest were invalidated before).
    assert.equal(wrongLines(m, seen, bytes), fills);
    const stale = m.violations.ofKind("stale-cpu-read");
    assert.equal(stale.length, 1);
    assert.equal(stale[0]!.len, fills * m.cache.line);
    assert.match(stale[0]!.message, /speculatively while dev0 wrote the buffer/);
    assert.match(stale[0]!.hint, /invalidate after the DMA as well as before it/);
    assert.match(stale[0]!.hint, /dma_sync_\*_for_cpu\(\)/);
  });

  test("the same driver is right on a CPU that never speculates (rate 0)", () => {
    const { m, bytes, seen } = roundTrip("arm64", {
      rate: 0,
      faults: ["invalidate-before-only"],
    });
    assert.equal(m.speculation, undefined);
    assert.deepEqual(seen, bytes);
    assert.equal(m.violations.count, 0);
  });

  test("deterministic: the same seed fills the same lines, another seed others", () => {
    const a = roundTrip("arm64", { faults: ["invalidate-before-only"] });
    const b = roundTrip("arm64", { faults: ["invalidate-before-only"] });
    const c = roundTrip("arm64", { faults: ["invalidate-before-only"], seed: 99 });
    assert.deepEqual(a.seen, b.seen);
    assert.notDeepEqual(a.seen, c.seen);
  });

  test("property: with or without the invalidate after, wrong bytes are never silent", () => {
    fc.assert(
      fc.property(
        fc.constantFrom("arm64", "cortex-a9", "riscv64"),
        fc.integer({ min: 1, max: 48 }).map((k) => k * 512),
        fc.double({ min: 0, max: 1, noNaN: true }),
        fc.boolean(),
        fc.integer({ min: 1, max: 1000 }),
        fc.boolean(),
        (profile, size, rate, faulty, seed, cached) => {
          const r = roundTrip(profile, {
            size,
            rate,
            seed,
            cached,
            ...(faulty ? { faults: ["invalidate-before-only"] } : {}),
          });
          const wrong = wrongLines(r.m, r.seen, r.bytes);
          const stale = r.m.violations.ofKind("stale-cpu-read");
          if (!faulty) {
            assert.equal(wrong, 0);
            assert.equal(r.m.violations.count, 0);
          } else {
            assert.equal(wrong, r.m.speculation?.fills ?? 0);
            assert.equal(stale.length > 0, wrong > 0);
          }
        },
      ),
      { numRuns: 60 },
    );
  });

  test("openmv-1605: stale with speculation, coherent without it and in the fixed twin", () => {
    const faulty = bundled("openmv-1605-invalidate-before-only");
    assert.equal(faulty.verdict, "incoherent");
    assert.ok(faulty.frames.some((f) => !f.ok));
    assert.match(faulty.violations[0]!.message, /speculatively/);
    const noSpec = bundled("openmv-1605-invalidate-before-only", {
      "machine.speculativeFillRate": 0,
    });
    assert.equal(noSpec.verdict, "coherent");
    assert.equal(bundled("openmv-1605-invalidate-before-only-fixed").verdict, "coherent");
  });

  test("property: the fills, their order, lost writes and explanations are the reference's", () => {
    type Op =
      | { kind: "dma"; dev: number; off: number; len: number }
      | { kind: "cpu-write" | "cpu-read"; off: number; len: number };
    const SIZE = 1024 * 1024;
    const range = fc
      .integer({ min: 0, max: SIZE - 1 })
      .chain((off) => fc.integer({ min: 1, max: SIZE - off }).map((len) => ({ off, len })));
    const op: fc.Arbitrary<Op> = fc.oneof(
      fc
        .tuple(fc.integer({ min: 0, max: 1 }), range)
        .map(([dev, r]) => ({ kind: "dma" as const, dev, ...r })),
      range.map((r) => ({ kind: "cpu-write" as const, ...r })),
      range.map((r) => ({ kind: "cpu-read" as const, ...r })),
    );
    fc.assert(
      fc.property(
        fc.constantFrom("arm64", "cortex-a9"),
        fc.constantFrom(1, 1 / 2, 1 / 32, 0.37),
        fc.integer({ min: 1, max: 1000 }),
        fc.array(op, { minLength: 1, maxLength: 8 }),
        (profile, rate, seed, ops) => {
          const run = (reference: boolean) => {
            const m = new Machine({
              profile: resolveProfile(profile, { speculativeFillRate: rate, seed }),
            });
            const ref = reference ? referenceFills(m, rate) : undefined;
            const dma = new DmaMappingApi(m);
            const devs = [m.addDevice("cam", {}), m.addDevice("gpu", {})];
            const phys = cmaBuffer(m, SIZE);
            const hs = devs.map((d) => dma.dmaMapSingle(d, phys, SIZE, DMA_FROM_DEVICE));
            const seen: Uint8Array[] = [];
            // A whole-buffer write first: at high rates it fills more lines than the
            // cache has slots (cortex-a9), so the fast path's table drops evicted lines.
            devs[0]!.write(hs[0]!, pattern(SIZE, 1));
            ops.forEach((o, i) => {
              if (o.kind === "dma") devs[o.dev]!.write(hs[o.dev]! + o.off, pattern(o.len, i));
              else if (o.kind === "cpu-write")
                m.cpu.writePhys(phys + o.off, pattern(o.len, i + 99));
              else seen.push(m.cpu.readPhys(phys + o.off, o.len));
            });
            // Page by page, so every stale page gets its own (explained or not) violation.
            for (let off = 0; off < SIZE; off += 4096) seen.push(m.cpu.readPhys(phys + off, 4096));
            const epochs: (number | undefined)[] = [];
            for (let off = 0; off < SIZE; off += m.cache.line)
              epochs.push(m.cache.fillEpochOf(phys + off));
            return {
              fills: ref ? ref.fills : m.speculation!.fills,
              epochs,
              seen: seen.map((b) => Buffer.from(b).toString("base64")),
              violations: m.violations.list.map(
                (v) => `${v.kind} ${v.phys} ${v.message.split("; the CPU fetched")[1] ?? ""}`,
              ),
            };
          };
          const fast = run(false);
          const ref = run(true);
          assert.equal(fast.fills, ref.fills);
          assert.deepEqual(fast.epochs, ref.epochs);
          assert.deepEqual(fast.violations, ref.violations);
          assert.deepEqual(fast.seen, ref.seen);
        },
      ),
      { numRuns: 25 },
    );
  });
});
