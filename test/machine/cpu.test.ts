import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { Machine } from "../../src/machine/machine.js";
import { BusError, PAGE_SIZE } from "../../src/machine/memory.js";
import { near, pattern, smallMachine } from "./helpers.js";

function page(m: Machine): number {
  return m.pages.alloc(0) * PAGE_SIZE;
}

function cpuNs(m: Machine): number {
  return m.costs.snapshot()["cpu-access"].ns;
}

describe("Cpu mappings and attributes", () => {
  test("map/unmap bookkeeping, bounds and bus errors", () => {
    const m = smallMachine();
    const a = page(m);
    const b = page(m);
    const map = m.cpu.map(
      [
        { phys: a + 100, len: 50 },
        { phys: b, len: 30 },
      ],
      "cached",
      "two",
    );
    assert.equal(map.length, 80);
    assert.equal(map.attr, "cached");
    assert.equal(m.cpu.liveMappings, 1);
    assert.throws(() => m.cpu.read(map, 60, 21), /outside mapping 'two' of 80 bytes/);
    assert.throws(() => m.cpu.read(map, -1, 1), RangeError);
    assert.throws(() => m.cpu.map([{ phys: m.memory.end - 10, len: 20 }], "cached", "x"), BusError);
    assert.equal(m.cpu.liveMappings, 1);
    m.cpu.unmap(map);
    m.cpu.unmap(map); // harmless
    assert.equal(m.cpu.liveMappings, 0);
  });

  test("a mapping of several ranges splits accesses at range boundaries", () => {
    const m = smallMachine();
    const a = page(m);
    const b = page(m);
    const map = m.cpu.map(
      [
        { phys: a + 100, len: 50 },
        { phys: b + 8, len: 30 },
      ],
      "cached",
      "two",
    );
    const data = pattern(40, 1);
    m.cpu.write(map, 30, data);
    m.cache.flushAll();
    assert.deepEqual(m.memory.slice(a + 130, 20), data.subarray(0, 20));
    assert.deepEqual(m.memory.slice(b + 8, 20), data.subarray(20));
    assert.deepEqual(m.cpu.read(map, 30, 40), data);
    const dst = new Uint8Array(50).fill(0xee);
    m.cpu.read(map, 45, 10, dst, 5);
    assert.deepEqual(dst.subarray(5, 15), data.subarray(15, 25));
    assert.equal(dst[4], 0xee);
    m.cpu.fill(map, 0, 80, 0x33);
    assert.deepEqual(m.cpu.read(map, 0, 80), new Uint8Array(80).fill(0x33));
    assert.equal(m.violations.count, 0);
  });

  test("cached stores stay in the cache; uncached and write-combined go straight to DRAM", () => {
    const m = smallMachine();
    const p = page(m);
    const cached = m.cpu.map([{ phys: p, len: 64 }], "cached", "c");
    m.cpu.write(cached, 0, pattern(64, 1));
    assert.deepEqual(m.memory.slice(p, 64), new Uint8Array(64), "still only in the cache");
    assert.equal(m.cache.probe(p).dirty, true);
    m.cpu.unmap(cached);
    m.cache.flushAll();

    for (const attr of ["uncached", "writecombine"] as const) {
      const q = page(m);
      const map = m.cpu.map([{ phys: q, len: PAGE_SIZE }], attr, attr);
      const valid = m.cache.validLines;
      m.cpu.write(map, 10, pattern(100, 7));
      assert.deepEqual(m.memory.slice(q + 10, 100), pattern(100, 7), `${attr} store is in DRAM`);
      m.memory.write(q + 200, Uint8Array.of(9, 8, 7));
      assert.deepEqual(m.cpu.read(map, 200, 3), Uint8Array.of(9, 8, 7), `${attr} load reads DRAM`);
      assert.equal(m.cache.validLines, valid, `${attr} access does not allocate lines`);
      assert.equal(m.cache.probe(q).cached, false);
      m.cpu.unmap(map);
    }
    assert.equal(m.violations.count, 0);
  });

  test("an uncached store leaves a cached copy stale: old bytes and a stale-cpu-read", () => {
    const m = smallMachine();
    const p = page(m);
    assert.equal(m.cpu.readPhys(p, 1)[0], 0); // cache the line, clean
    const wc = m.cpu.map([{ phys: p, len: PAGE_SIZE }], "writecombine", "wc");
    m.cpu.write(wc, 0, Uint8Array.of(0x5a));
    assert.equal(m.violations.count, 0, "no dirty lines: the uncached store is not an alias");
    m.cpu.unmap(wc);
    assert.equal(m.cpu.readPhys(p, 1)[0], 0, "the cache still answers with the old byte");
    const [v] = m.violations.ofKind("stale-cpu-read");
    assert.ok(v);
    assert.equal(v.agent, "cpu");
    assert.equal(v.phys, p);
    assert.equal(v.len, 64);
    assert.match(v.message, /writecombine store/);
    assert.match(v.hint, /dma_sync_\*_for_cpu/);
  });

  test("cacheable access to memory also mapped uncached is an attribute alias (refcounted)", () => {
    const m = smallMachine();
    const p = page(m);
    const u1 = m.cpu.map([{ phys: p, len: PAGE_SIZE }], "uncached", "u1");
    const u2 = m.cpu.map([{ phys: p + 256, len: 16 }], "writecombine", "u2");
    m.cpu.readPhys(p + 100, 4);
    let alias = m.violations.ofKind("attribute-alias");
    assert.equal(alias.length, 1);
    assert.equal(alias[0]!.phys, p + 100);
    assert.match(alias[0]!.message, /mismatched attributes/);
    m.cpu.unmap(u1);
    m.cpu.writePhys(p, Uint8Array.of(1));
    alias = m.violations.ofKind("attribute-alias");
    assert.equal(alias.length, 2, "u2 still maps the page");
    assert.equal(alias[1]!.phys, p, "the first byte of the access in the page");
    m.cpu.unmap(u2);
    m.cache.flushAll();
    m.cpu.readPhys(p, 4);
    assert.equal(m.violations.ofKind("attribute-alias").length, 2, "no alias once unmapped");
    // A different page is never an alias.
    const q = page(m);
    const u3 = m.cpu.map([{ phys: q, len: 8 }], "uncached", "u3");
    m.cpu.readPhys(q + PAGE_SIZE, 4);
    assert.equal(m.violations.ofKind("attribute-alias").length, 2);
    m.cpu.unmap(u3);
  });

  test("an uncached access to memory with dirty cached lines is an alias naming the lines", () => {
    const m = smallMachine();
    const p = page(m);
    m.cpu.writePhys(p + 64, new Uint8Array(130).fill(1)); // lines 1, 2, 3 dirty
    const u = m.cpu.map([{ phys: p, len: PAGE_SIZE }], "uncached", "u");
    const got = m.cpu.read(u, 0, 256);
    assert.deepEqual(got, new Uint8Array(256), "the uncached load sees DRAM, not the dirty lines");
    const [v] = m.violations.ofKind("attribute-alias");
    assert.ok(v);
    assert.equal(v.phys, p + 64);
    assert.equal(v.len, 3 * 64);
    assert.match(v.message, /uncached load through u .* 3 dirty line/);
  });

  test("CPU access to a device-owned streaming region is reported with the give-back call", () => {
    const m = smallMachine();
    const p = page(m);
    const regionId = m.violations.register("cam-frame0", [{ phys: p, len: PAGE_SIZE }]);
    const r = m.ownership.add({
      device: "cam0",
      label: "cam-frame0",
      direction: "DMA_FROM_DEVICE",
      deviceReadsOnly: false,
      ranges: [{ phys: p, len: PAGE_SIZE }],
      giveBackCall: "dma_sync_single_for_cpu(cam0, ...)",
    });
    assert.equal(r.owner, "device");
    m.cpu.readPhys(p + 0x10, 4);
    const [v] = m.violations.ofKind("cpu-access-device-owned");
    assert.ok(v);
    assert.equal(v.region, "cam-frame0");
    assert.equal(v.offset, 0x10);
    assert.match(
      v.message,
      /CPU read linear map while cam0 owns it \(cam-frame0, DMA_FROM_DEVICE\)/,
    );
    assert.equal(
      v.hint,
      "give the buffer back to the CPU first: dma_sync_single_for_cpu(cam0, ...)",
    );
    // Once the CPU owns it, no report.
    r.owner = "cpu";
    m.cpu.writePhys(p, Uint8Array.of(1));
    assert.equal(m.violations.ofKind("cpu-access-device-owned").length, 1);
    // Outside the region, no report.
    r.owner = "device";
    m.cpu.readPhys(p + PAGE_SIZE, 4);
    assert.equal(m.violations.ofKind("cpu-access-device-owned").length, 1);
    m.ownership.remove(r.id);
    m.violations.unregister(regionId);
    m.cpu.readPhys(p, 4);
    assert.equal(m.violations.ofKind("cpu-access-device-owned").length, 1);
  });

  test("DMA_TO_DEVICE regions may be read by the CPU but not written; coherent machines too", () => {
    const m = new Machine({ profile: "x86-64" });
    const p = page(m);
    const map = m.cpu.map([{ phys: p, len: PAGE_SIZE }], "cached", "tx");
    m.ownership.add({
      device: "nic",
      label: "tx",
      direction: "DMA_TO_DEVICE",
      deviceReadsOnly: true,
      ranges: [{ phys: p, len: PAGE_SIZE }],
      giveBackCall: "dma_unmap_single(nic, ...)",
    });
    m.cpu.read(map, 0, 16);
    assert.equal(m.violations.count, 0);
    m.cpu.write(map, 8, Uint8Array.of(1));
    const [v] = m.violations.ofKind("cpu-access-device-owned");
    assert.ok(v);
    assert.match(v.message, /CPU wrote tx while nic owns it/);
  });

  test("with the checker off the bytes move the same and nothing is reported", () => {
    const run = (checking: boolean): { bytes: Uint8Array; count: number; now: number } => {
      const m = smallMachine();
      m.shadow.enabled = checking;
      const p = page(m);
      m.cpu.readPhys(p, 64);
      const u = m.cpu.map([{ phys: p, len: 64 }], "uncached", "u");
      m.cpu.write(u, 0, pattern(64, 3));
      m.cpu.unmap(u);
      m.ownership.add({
        device: "d",
        label: "x",
        direction: "DMA_BIDIRECTIONAL",
        deviceReadsOnly: false,
        ranges: [{ phys: p, len: 64 }],
        giveBackCall: "-",
      });
      return { bytes: m.cpu.readPhys(p, 64), count: m.violations.count, now: m.now };
    };
    const on = run(true);
    const off = run(false);
    assert.ok(on.count >= 2);
    assert.equal(off.count, 0);
    assert.deepEqual(off.bytes, on.bytes);
    assert.equal(off.now, on.now);
  });
});

describe("Cpu cost charging (arm64 figures)", () => {
  test("cached: a miss costs the line at DRAM bandwidth, a hit the level's latency", () => {
    const m = smallMachine();
    const cm = m.profile.costs;
    const p = page(m);
    const t0 = m.now;
    m.cpu.readPhys(p, 64);
    const miss = 64 / cm.dramBytesPerNs;
    near(m.now - t0, miss);
    m.cpu.readPhys(p, 64);
    near(m.now - t0, miss + cm.hitNs[0]!);
    const e = m.costs.snapshot()["cpu-access"];
    near(e.ns, miss + cm.hitNs[0]!);
    assert.equal(e.ops, 2);
    assert.equal(e.bytes, 128);
  });

  test("uncached loads and stores by access width; write-combined stores by bandwidth", () => {
    const m = smallMachine();
    const cm = m.profile.costs;
    const p = page(m);
    const u = m.cpu.map([{ phys: p, len: PAGE_SIZE }], "uncached", "u");
    const wc = m.cpu.map([{ phys: p + PAGE_SIZE, len: 0 }], "writecombine", "empty");
    assert.equal(wc.length, 0);
    const wcm = m.cpu.map([{ phys: page(m), len: PAGE_SIZE }], "writecombine", "wc");
    const steps: [() => void, number][] = [
      [
        () => m.cpu.write(u, 0, new Uint8Array(10)),
        Math.ceil(10 / cm.uncachedAccessBytes) * cm.uncachedWriteNs,
      ],
      [() => m.cpu.read(u, 0, 10), Math.ceil(10 / cm.uncachedAccessBytes) * cm.uncachedReadNs],
      [() => m.cpu.write(wcm, 0, new Uint8Array(100)), 100 / cm.wcWriteBytesPerNs],
      [() => m.cpu.read(wcm, 0, 4), cm.uncachedReadNs],
      [() => m.cpu.read(u, 0, 0), 0],
    ];
    for (const [op, ns] of steps) {
      const t = m.now;
      const c = cpuNs(m);
      op();
      near(m.now - t, ns);
      near(cpuNs(m) - c, ns);
    }
    // The write-combined path is faster than uncached for the same bytes.
    assert.ok(
      100 / cm.wcWriteBytesPerNs < Math.ceil(100 / cm.uncachedAccessBytes) * cm.uncachedWriteNs,
    );
  });

  test("a dirty eviction adds a write-back to the access that caused it", () => {
    const m = smallMachine({
      cache: { lineSize: 64, levels: [{ name: "L1", sizeBytes: 64, ways: 1 }], replacement: "lru" },
      costs: { hitNs: [1] },
    });
    const cm = m.profile.costs;
    const p = page(m);
    m.cpu.writePhys(p, new Uint8Array(64).fill(1)); // full-line store: a fill without a read
    const t = m.now;
    m.cpu.readPhys(p + 64, 1); // evicts the dirty line
    near(m.now - t, (2 * 64) / cm.dramBytesPerNs);
    assert.equal(m.cache.counters.writebacks, 1);
  });

  test("copyPhys copies through the cache and charges the category it is given", () => {
    const m = smallMachine();
    const a = page(m);
    const b = page(m);
    m.cpu.writePhys(a, pattern(300, 4));
    m.cpu.copyPhys(b + 10, a, 300, "bounce");
    assert.deepEqual(m.cpu.readPhys(b + 10, 300), pattern(300, 4));
    const s = m.costs.snapshot();
    assert.equal(s.bounce.ops, 2);
    assert.equal(s.bounce.bytes, 600);
    assert.ok(s.bounce.ns > 0);
    assert.equal(s["cpu-access"].ops, 2);
  });

  test("accesses are traced when tracing is on", () => {
    const m = new Machine({ profile: "arm64", trace: true });
    const p = page(m);
    const map = m.cpu.map([{ phys: p, len: 64 }], "uncached", "frame");
    m.cpu.write(map, 0, new Uint8Array(8));
    const [ev] = m.trace.events;
    assert.ok(ev);
    assert.equal(ev.track, "cpu");
    assert.equal(ev.ph, "X");
    assert.equal(ev.name, "write frame");
    assert.deepEqual(ev.args, { bytes: 8, attr: "uncached" });
    assert.equal(ev.dur, 2 * m.profile.costs.uncachedWriteNs);
    const quiet = smallMachine();
    quiet.cpu.readPhys(page(quiet), 4);
    assert.equal(quiet.trace.events.length, 0);
  });
});
