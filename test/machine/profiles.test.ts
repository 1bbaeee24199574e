import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { IO_TLB_SIZE, Machine } from "../../src/machine/machine.js";
import { PAGE_SIZE } from "../../src/machine/memory.js";
import { checkProfile, PROFILES, resolveProfile } from "../../src/machine/profiles.js";
import { MiB, pattern } from "./helpers.js";

const NAMES = Object.keys(PROFILES);

describe("profiles", () => {
  test("the expected profiles exist and are named by their key", () => {
    assert.deepEqual(NAMES.sort(), ["arm64", "cortex-a9", "riscv64", "x86-64", "x86-64-64m"]);
    for (const [k, p] of Object.entries(PROFILES)) assert.equal(p.name, k);
  });

  for (const name of NAMES) {
    test(`${name}: builds a machine whose layout and caches follow the profile`, () => {
      const m = new Machine({ profile: name });
      const p = m.profile;
      assert.deepEqual(p, PROFILES[name], "no overrides: the profile as listed");
      assert.equal(m.memory.base, p.ram.base);
      assert.equal(m.memory.size, p.ram.size);
      const outer = p.cache.levels.at(-1)!;
      assert.equal(m.cache.capacity, outer.sizeBytes);
      assert.equal(m.cache.line, p.cache.lineSize);
      assert.equal(m.cache.counters.hits.length, p.cache.levels.length);
      assert.equal(p.costs.hitNs.length, p.cache.levels.length, "one hit cost per level");
      // swiotlb first (reachable by 32-bit devices), then CMA, then the page allocator.
      const swiotlb = m.swiotlb!;
      assert.ok(swiotlb);
      assert.equal(swiotlb.base, p.ram.base);
      assert.equal(swiotlb.unitSize, IO_TLB_SIZE);
      assert.ok(swiotlb.base + swiotlb.size <= 2 ** 32);
      assert.equal(m.cma.base, swiotlb.base + swiotlb.size);
      assert.equal(m.cma.size, p.cmaBytes);
      assert.equal(m.pages.firstPfn * PAGE_SIZE, m.cma.base + m.cma.size);
      assert.equal(
        swiotlb.size + m.cma.size + m.pages.pages * PAGE_SIZE,
        p.ram.size,
        "every byte of RAM is managed",
      );
      assert.equal(m.pages.freePages, m.pages.pages);
      // dma_alloc_coherent for a non-coherent device is never mapped cached (on x86 the
      // attribute applies only to a device overridden to be non-snooping).
      assert.notEqual(p.coherentAttr, "cached");
      assert.equal(m.memory.residentBytes, 0);
    });

    test(`${name}: a device-to-CPU transfer with the invalidate delivers the device's bytes`, () => {
      const m = new Machine({ profile: name });
      const dev = m.addDevice("cam");
      assert.equal(dev.coherent, m.profile.device.coherent);
      const phys = m.cma.alloc(1);
      dev.addWindow({ dmaAddr: phys, len: PAGE_SIZE, direction: "from-device", label: "f" });
      m.cpu.readPhys(phys, 256);
      const before = m.now;
      const end = dev.submit("frame", 256, () => dev.write(phys, pattern(256, 1)));
      m.clock.runUntilIdle();
      assert.equal(m.now, end);
      assert.equal(end - before, dev.transferTime(256));
      if (!dev.coherent) {
        assert.deepEqual(m.cpu.readPhys(phys, 256), new Uint8Array(256), "stale without sync");
        assert.ok(m.violations.ofKind("stale-cpu-read").length > 0);
        m.maintain("invalidate", [{ phys, len: 256 }]);
      }
      const n = m.violations.count;
      assert.deepEqual(m.cpu.readPhys(phys, 256), pattern(256, 1));
      assert.equal(m.violations.count, n);
      assert.equal(dev.coherent ? n : n - 1, 0);
    });
  }

  test("overrides merge nested objects field by field and replace arrays", () => {
    const p = resolveProfile("arm64", {
      cache: { replacement: "lru" },
      device: { coherent: true },
      seed: 42,
      sources: ["mine"],
    });
    assert.equal(p.cache.replacement, "lru");
    assert.equal(p.cache.lineSize, 64, "unmentioned cache fields survive");
    assert.equal(p.cache.levels, PROFILES["arm64"]!.cache.levels);
    assert.equal(p.device.coherent, true);
    assert.equal(p.device.dmaBits, 32);
    assert.equal(p.seed, 42);
    assert.deepEqual(p.sources, ["mine"]);
    assert.equal(p.title, PROFILES["arm64"]!.title);
    assert.equal(PROFILES["arm64"]!.cache.replacement, "plru", "the base profile is not changed");
    assert.equal(PROFILES["arm64"]!.device.coherent, false);
    const q = resolveProfile("arm64", {
      cache: { levels: [{ name: "L1", sizeBytes: 4096, ways: 4 }] },
    });
    assert.equal(q.cache.levels.length, 1);
    assert.deepEqual(resolveProfile("riscv64", {}), PROFILES["riscv64"]);
  });

  test("a machine built with overrides uses them", () => {
    const m = new Machine({
      profile: "cortex-a9",
      overrides: {
        ram: { size: 128 * MiB },
        cache: { levels: [{ name: "L2", sizeBytes: 64 * 1024, ways: 8 }] },
        device: { coherent: true },
        swiotlbBytes: 0,
      },
    });
    assert.equal(m.memory.base, 0x1000_0000, "ram.base kept");
    assert.equal(m.memory.size, 128 * MiB);
    assert.equal(m.cache.capacity, 64 * 1024);
    assert.equal(m.cache.line, 32);
    assert.equal(m.swiotlb, undefined);
    assert.equal(m.cma.base, 0x1000_0000);
    assert.equal(m.addDevice("d").coherent, true);
  });

  test("a full profile object may be passed", () => {
    const custom = { ...PROFILES["x86-64"]!, name: "mine", ram: { base: 0, size: 512 * MiB } };
    const m = new Machine({ profile: custom });
    assert.equal(m.profile, custom);
    assert.equal(m.memory.size, 512 * MiB);
  });

  test("an unknown profile is a clear error naming the known ones", () => {
    const check = (e: unknown): boolean =>
      e instanceof RangeError &&
      e.message.includes("unknown profile 'arm65'") &&
      NAMES.every((n) => e.message.includes(n));
    assert.throws(() => resolveProfile("arm65"), check);
    assert.throws(() => new Machine({ profile: "arm65" }), check);
  });

  test("every bundled profile is within the limits", () => {
    for (const p of Object.values(PROFILES)) assert.deepEqual(checkProfile(p), [], p.name);
  });

  test("sizes and rates outside the limits are named by field, before anything is built", () => {
    const fields = (o: Parameters<typeof resolveProfile>[1]): string[] =>
      checkProfile(resolveProfile("arm64", o)).map((i) => i.field);
    assert.deepEqual(fields({ ram: { size: 2 ** 50 } }), ["ram.size"]);
    assert.deepEqual(fields({ ram: { base: 2 ** 48, size: 1 << 30 } }), ["ram.base"]);
    assert.deepEqual(fields({ ram: { base: 2 ** 48 - (1 << 30), size: 2 << 30 } }), ["ram.size"]);
    assert.deepEqual(
      fields({
        cache: {
          ...PROFILES.arm64!.cache,
          levels: [{ name: "L2", sizeBytes: 64 * 1024 * MiB, ways: 16 }],
        },
      }),
      ["cache.levels[0].sizeBytes"],
    );
    assert.deepEqual(fields({ device: { bandwidthBytesPerNs: 1e-12 } }), [
      "device.bandwidthBytesPerNs",
    ]);
    assert.deepEqual(fields({ costs: { dramBytesPerNs: 0 } }), ["costs.dramBytesPerNs"]);
    // A 1 PiB machine is refused at once, not after the host runs out of memory.
    assert.throws(
      () => new Machine({ profile: "arm64", overrides: { ram: { size: 2 ** 50 } } }),
      /ram\.size: expected 4 MiB to 1 TiB of RAM; got 1024 TiB/,
    );
  });

  test("RAM too small for the reserved areas is refused", () => {
    assert.throws(
      () => new Machine({ profile: "arm64", overrides: { ram: { size: 16 * MiB } } }),
      /cmaBytes: swiotlb \(64 MiB\) and CMA \(256 MiB\) leave less than 1 MiB of the 16 MiB of RAM/,
    );
  });
});
