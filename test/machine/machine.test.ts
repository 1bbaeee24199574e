import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { CoherencyShadow, OwnershipTracker } from "../../src/machine/coherency.js";
import { COST_CATEGORIES, CostLedger } from "../../src/machine/cost.js";
import { Machine } from "../../src/machine/machine.js";
import { PAGE_SIZE } from "../../src/machine/memory.js";
import { TraceRecorder } from "../../src/machine/trace.js";
import { formatViolation, type Violation, ViolationLog } from "../../src/machine/violations.js";
import { KiB, near, pattern, smallMachine } from "./helpers.js";

describe("Machine.maintain", () => {
  test("per-line policy: line ops, write-backs and one barrier per range, on the clock", () => {
    const m = smallMachine();
    const cm = m.profile.costs;
    const p = m.pages.alloc(0) * PAGE_SIZE;
    const q = m.pages.alloc(0) * PAGE_SIZE;
    m.cpu.writePhys(p, new Uint8Array(100).fill(1)); // 2 dirty lines
    const t = m.now;
    const ns = m.maintain("clean", [
      { phys: p, len: PAGE_SIZE },
      { phys: q, len: 128 },
    ]);
    const want = 66 * cm.lineOpNs + (2 * 64) / cm.dramBytesPerNs + 2 * cm.rangeOpNs;
    near(ns, want, "maintain cost");
    near(m.now - t, want, "clock");
    const e = m.costs.snapshot()["cache-maintenance"];
    near(e.ns, want);
    assert.equal(e.ops, 1);
    assert.equal(e.bytes, PAGE_SIZE + 128);
    assert.deepEqual(m.memory.slice(p, 100), new Uint8Array(100).fill(1));
    assert.equal(m.cache.counters.setWayOps, 0);
  });

  test("an empty list of ranges costs nothing", () => {
    const m = smallMachine();
    assert.equal(m.maintain("flush", []), 0);
    assert.equal(m.maintain("clean", [{ phys: m.memory.base, len: 0 }]), 0);
    assert.equal(m.now, 0);
    assert.equal(m.costs.total, 0);
  });

  test("whole-cache policy (PL310): at the threshold, flush goes by set/way and empties the cache", () => {
    const m = new Machine({ profile: "cortex-a9", trace: true });
    const cm = m.profile.costs;
    const slots = m.cache.slots;
    assert.equal(slots, (512 * KiB) / 32);
    const buf = m.cma.alloc(128); // 512 KiB
    const other = m.cma.alloc(1);
    m.cpu.writePhys(buf, new Uint8Array(64).fill(7)); // 2 dirty lines
    m.cpu.readPhys(other, 4); // an unrelated clean line
    const t = m.now;
    const ns = m.maintain("flush", [{ phys: buf, len: 512 * KiB }], "map");
    near(ns, slots * cm.setWayOpNs + (2 * 32) / cm.dramBytesPerNs + cm.rangeOpNs);
    near(m.now - t, ns);
    assert.equal(m.cache.counters.setWayOps, slots);
    assert.equal(m.cache.counters.lineOps, 0);
    assert.equal(m.cache.validLines, 0, "the unrelated line went too");
    assert.deepEqual(m.memory.slice(buf, 64), new Uint8Array(64).fill(7));
    const ev = m.trace.events.at(-1)!;
    assert.equal(ev.name, "flush all map");
    assert.deepEqual(ev.args, { bytes: 512 * KiB, whole: true, writebacks: 2 });
  });

  test("whole-cache policy: below the threshold by line; ranges add up; invalidate never whole", () => {
    const m = new Machine({ profile: "cortex-a9" });
    const cm = m.profile.costs;
    const buf = m.cma.alloc(256); // 1 MiB
    const below = 512 * KiB - PAGE_SIZE;
    near(
      m.maintain("flush", [{ phys: buf, len: below }]),
      (below / 32) * cm.lineOpNs + cm.rangeOpNs,
    );
    assert.equal(m.cache.counters.setWayOps, 0);
    // Two halves that reach the threshold together: clean all, once, lines stay valid.
    m.cpu.writePhys(buf, Uint8Array.of(1));
    const ns = m.maintain("clean", [
      { phys: buf, len: 256 * KiB },
      { phys: buf + 512 * KiB, len: 256 * KiB },
    ]);
    near(ns, m.cache.slots * cm.setWayOpNs + 32 / cm.dramBytesPerNs + cm.rangeOpNs);
    assert.equal(m.cache.validLines, 1);
    assert.equal(m.cache.dirtyLines, 0);
    const lineOps = m.cache.counters.lineOps;
    m.maintain("invalidate", [{ phys: buf, len: 1024 * KiB }]);
    assert.equal(m.cache.counters.lineOps - lineOps, (1024 * KiB) / 32);
    assert.equal(m.cache.counters.setWayOps, m.cache.slots);
  });

  test("maintenance that writes a dirty line over a device's data reports the lost write", () => {
    const m = smallMachine();
    const p = m.pages.alloc(0) * PAGE_SIZE;
    const dev = m.addDevice("dev");
    dev.addWindow({ dmaAddr: p, len: PAGE_SIZE, direction: "from-device", label: "rx" });
    m.violations.register("rx-buf", [{ phys: p, len: PAGE_SIZE }], {
      "lost-device-write": "call dma_map_single before starting the capture",
    });
    m.cpu.writePhys(p + 64, Uint8Array.of(1));
    dev.write(p, new Uint8Array(PAGE_SIZE).fill(9));
    m.maintain("clean", [{ phys: p, len: PAGE_SIZE }]);
    const [v] = m.violations.ofKind("lost-device-write");
    assert.ok(v);
    assert.equal(v.region, "rx-buf");
    assert.equal(v.offset, 64);
    assert.equal(v.len, 64);
    assert.equal(v.hint, "call dma_map_single before starting the capture");
    assert.equal(m.memory.slice(p + 64, 1)[0], 1);
  });
});

describe("Machine devices", () => {
  test("names are unique; defaults come from the profile; IOMMU domains start above zero", () => {
    const m = smallMachine();
    const a = m.addDevice("a");
    const b = m.addDevice("b", { iommu: true, setupNs: 5 });
    assert.throws(() => m.addDevice("a"), /exists already/);
    assert.throws(() => m.device("zz"), /no device named 'zz'/);
    assert.equal(m.device("b"), b);
    assert.deepEqual(
      m.devices.map((d) => d.name),
      ["a", "b"],
    );
    assert.deepEqual(a.config, { ...m.profile.device, name: "a" });
    assert.equal(b.config.setupNs, 5);
    assert.equal(b.config.bandwidthBytesPerNs, m.profile.device.bandwidthBytesPerNs);
    assert.equal(b.iommu!.allocIova(PAGE_SIZE), 0x10_0000);
    assert.equal(a.iommu, undefined);
  });
});

/** A scripted mix of everything, returning all observable state. */
function scenario(seed: number): unknown {
  const m = smallMachine({ seed });
  m.trace.enabled = true;
  const pfns = [m.pages.alloc(0), m.pages.alloc(3), m.pages.alloc(0), m.pages.alloc(10)];
  const buf = pfns[1]! * PAGE_SIZE;
  const dev = m.addDevice("cam", { bandwidthBytesPerNs: 3 });
  const gpu = m.addDevice("gpu", { coherent: true, dmaBits: 64 });
  dev.addWindow({ dmaAddr: buf, len: 8 * PAGE_SIZE, direction: "bidirectional", label: "buf" });
  gpu.addWindow({ dmaAddr: buf, len: 8 * PAGE_SIZE, direction: "bidirectional", label: "buf" });
  m.violations.register("frame", [{ phys: buf, len: 8 * PAGE_SIZE }]);
  m.cpu.readPhys(buf, 3000);
  m.cpu.writePhys(buf + 100, pattern(5000, 1));
  dev.submit("capture", 8192, () => dev.write(buf, pattern(8192, 2)));
  m.clock.advance(1000);
  m.cpu.readPhys(buf, 4096); // stale and dirty lines meet the capture later
  m.clock.runUntilIdle();
  m.cpu.readPhys(buf, 4096);
  m.maintain("flush", [{ phys: buf, len: 8 * PAGE_SIZE }]);
  const wc = m.cpu.map([{ phys: pfns[2]! * PAGE_SIZE, len: PAGE_SIZE }], "writecombine", "wc");
  m.cpu.write(wc, 0, pattern(512, 3));
  m.cpu.readPhys(pfns[2]! * PAGE_SIZE, 64);
  gpu.submit("blit", 4096, () => gpu.write(buf + 4096, gpu.read(buf, 4096)));
  dev.submit("scanout", 4096, () => dev.read(buf, 4096));
  m.clock.runUntilIdle();
  return {
    pfns,
    now: m.now,
    counters: m.cache.snapshotCounters(),
    valid: m.cache.validLines,
    dirty: m.cache.dirtyLines,
    costs: m.costs.snapshot(),
    violations: m.violations.list.map((v) => ({ ...v })),
    formatted: m.violations.list.map(formatViolation),
    trace: m.trace.events,
    bytes: Array.from(m.cpu.readPhys(buf, 8 * PAGE_SIZE).subarray(0, 9000)),
  };
}

describe("determinism", () => {
  test("the same operations twice give identical counters, time, costs, violations and trace", () => {
    const a = scenario(1);
    const b = scenario(1);
    assert.deepEqual(a, b);
    const r = a as { violations: Violation[]; now: number };
    assert.ok(r.violations.length >= 3, "the scenario does exercise the checker");
    assert.ok(r.now > 0);
    assert.notDeepEqual(scenario(2), a, "a different seed scatters pages differently");
  });
});

describe("violation log, cost ledger, trace, shadow, ownership", () => {
  test("regions describe addresses: the most recent covering region, offset across ranges", () => {
    const log = new ViolationLog();
    const outer = log.register("heap", [{ phys: 0x1000, len: 0x4000 }]);
    log.register("frame", [
      { phys: 0x9000, len: 0x100 },
      { phys: 0x2000, len: 0x100 },
    ]);
    assert.deepEqual(
      { label: log.describe(0x2010)!.region.label, offset: log.describe(0x2010)!.offset },
      { label: "frame", offset: 0x110 },
    );
    assert.equal(log.describe(0x3000)!.region.label, "heap");
    assert.equal(log.describe(0x3000)!.offset, 0x2000);
    assert.equal(log.describe(0x8000), undefined);
    log.unregister(outer);
    assert.equal(log.describe(0x3000), undefined);
  });

  test("report numbers violations, picks the best hint, calls onViolation; clear empties", () => {
    const log = new ViolationLog();
    log.register("buf", [{ phys: 0x1000, len: 0x1000 }], { "stale-cpu-read": "region hint" });
    const seen: Violation[] = [];
    log.onViolation = (v) => seen.push(v);
    const base = { time: 12.4, agent: "cpu", len: 64, message: "m" };
    const v0 = log.report({ ...base, kind: "stale-cpu-read", phys: 0x1040 }, "default");
    const v1 = log.report(
      { ...base, kind: "leak", api: "dma-api", phys: -1, hint: "own" },
      "default",
    );
    const v2 = log.report({ ...base, kind: "attribute-alias", phys: 0x1040 }, "default");
    assert.deepEqual([v0.seq, v1.seq, v2.seq], [0, 1, 2]);
    assert.deepEqual([v0.hint, v1.hint, v2.hint], ["region hint", "own", "default"]);
    assert.equal(v0.region, "buf");
    assert.equal(v0.offset, 0x40);
    assert.equal("region" in v1, false);
    assert.equal(seen.length, 3);
    assert.equal(log.ofKind("leak").length, 1);
    assert.equal(
      formatViolation(v0),
      "[12 ns] stale-cpu-read by cpu at buf+0x40 (64 bytes): m -- hint: region hint",
    );
    assert.equal(
      formatViolation(v1),
      "[12 ns] leak/dma-api by cpu at - (64 bytes): m -- hint: own",
    );
    log.clear();
    assert.equal(log.count, 0);
  });

  test("the cost ledger sums by category, snapshots are copies, diff subtracts", () => {
    const c = new CostLedger();
    c.charge("dma", 100, 1, 4096);
    const before = c.snapshot();
    c.charge("dma", 50, 2, 10);
    c.charge("wait", 7);
    before.dma.ns = 999;
    const after = c.snapshot();
    assert.deepEqual(after.dma, { ns: 150, ops: 3, bytes: 4106 });
    assert.deepEqual(after.wait, { ns: 7, ops: 1, bytes: 0 });
    assert.equal(c.total, 157);
    const d = CostLedger.diff(after, c.snapshot());
    for (const k of COST_CATEGORIES) assert.deepEqual(d[k], { ns: 0, ops: 0, bytes: 0 });
    assert.deepEqual(CostLedger.diff(after, CostLedger.empty()).dma, after.dma);
  });

  test("trace recorder is silent unless enabled", () => {
    const t = new TraceRecorder();
    t.span("cpu", "c", "x", 0, 1);
    t.instant("cpu", "c", "y", 0);
    assert.equal(t.events.length, 0);
    t.enabled = true;
    t.instant("cam", "fence", "signal", 5, { seqno: 1 });
    assert.deepEqual(t.events, [
      { name: "signal", cat: "fence", ph: "i", ts: 5, track: "cam", args: { seqno: 1 } },
    ]);
  });

  test("shadow epochs name their writers; ownership conflicts follow the rules", () => {
    const s = new CoherencyShadow();
    assert.equal(s.epoch, 0);
    assert.equal(s.writer(0).agent, "boot");
    const e = s.beginWrite("cam", 10, "DMA write");
    assert.equal(e, 1);
    assert.deepEqual(s.writer(e), { agent: "cam", time: 10, what: "DMA write" });
    assert.equal(s.writer(99).agent, "?");
    const o = new OwnershipTracker();
    const r = o.add({
      device: "d",
      label: "l",
      direction: "DMA_TO_DEVICE",
      deviceReadsOnly: true,
      ranges: [{ phys: 100, len: 10 }],
      giveBackCall: "x",
    });
    assert.equal(o.size, 1);
    assert.equal(o.conflict(105, 1, false), undefined, "reading a to-device buffer is allowed");
    assert.equal(o.conflict(105, 1, true), r);
    assert.equal(o.conflict(110, 5, true), undefined, "adjacent, not overlapping");
    assert.equal(o.conflict(90, 11, true), r);
    r.owner = "cpu";
    assert.equal(o.conflict(105, 1, true), undefined);
    o.remove(r.id);
    assert.equal(o.size, 0);
  });
});
