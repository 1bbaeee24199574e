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
import { faultPlan } from "../../src/kernel/fault-inject.js";
import { Machine } from "../../src/machine/machine.js";
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
});
