import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { KernelError } from "../../src/errno.js";
import { IOMMU_READ, IOMMU_WRITE } from "../../src/machine/iommu.js";
import { Machine } from "../../src/machine/machine.js";
import { BusError, PAGE_SIZE } from "../../src/machine/memory.js";
import { near, pattern, smallMachine } from "./helpers.js";

const RW = IOMMU_READ | IOMMU_WRITE;

function page(m: Machine): number {
  return m.pages.alloc(0) * PAGE_SIZE;
}

/** A machine, a device with a bidirectional window over one page, and the page. */
function rig(coherent: boolean): { m: Machine; p: number } {
  const m = smallMachine();
  const p = page(m);
  const dev = m.addDevice("dev", { coherent });
  dev.addWindow({ dmaAddr: p, len: PAGE_SIZE, direction: "bidirectional", label: "buf" });
  return { m, p };
}

describe("DmaDevice configuration", () => {
  test("DMA masks from address bits", () => {
    const m = smallMachine();
    assert.equal(m.addDevice("d32").dmaMask, 0xffff_ffff);
    assert.equal(m.addDevice("d40", { dmaBits: 40 }).dmaMask, 2 ** 40 - 1);
    assert.equal(m.addDevice("d53", { dmaBits: 53 }).dmaMask, Number.MAX_SAFE_INTEGER);
    assert.equal(m.addDevice("d64", { dmaBits: 64 }).dmaMask, Number.MAX_SAFE_INTEGER);
    const d = m.device("d32");
    assert.equal(d.coherent, false, "arm64 devices default to non-coherent");
    assert.equal(d.iommu, undefined);
    assert.equal(m.addDevice("c", { coherent: true }).coherent, true);
  });
});

describe("non-coherent device", () => {
  test("reads only DRAM: dirty CPU lines are invisible and reported", () => {
    const { m, p } = rig(false);
    const dev = m.device("dev");
    m.cpu.writePhys(p, pattern(100, 1));
    assert.deepEqual(dev.read(p, 100), new Uint8Array(100), "the device gets the old bytes");
    const [v] = m.violations.ofKind("stale-device-read");
    assert.ok(v);
    assert.equal(v.agent, "dev");
    assert.equal(v.phys, p);
    assert.equal(v.len, 2 * 64);
    m.maintain("clean", [{ phys: p, len: 100 }]);
    assert.deepEqual(dev.read(p, 100), pattern(100, 1));
    assert.equal(m.violations.count, 1);
    assert.equal(dev.bytesRead, 200);
  });

  test("a re-read runs the reads' checks and counters without moving bytes", () => {
    const { m, p } = rig(false);
    const dev = m.device("dev");
    const segs = [
      { dmaAddr: p, len: 100 },
      { dmaAddr: p + 200, len: 50 },
    ];
    m.cpu.writePhys(p, pattern(100, 1));
    dev.rereadSegments(segs);
    assert.equal(m.violations.ofKind("stale-device-read").length, 1, "dirty lines reported");
    assert.equal(dev.bytesRead, 150);
    dev.rereadSegments([{ dmaAddr: p + PAGE_SIZE, len: 8 }]);
    assert.equal(m.violations.ofKind("unmapped-device-access").length, 1, "windows checked");
    const c = m.addDevice("coh", { coherent: true });
    assert.throws(() => c.rereadSegments(segs), /non-coherent/);
  });

  test("writes DRAM only: cached copies go stale until invalidated", () => {
    const { m, p } = rig(false);
    const dev = m.device("dev");
    m.cpu.readPhys(p, 64);
    const t = m.now;
    dev.write(p, pattern(64, 5));
    assert.deepEqual(m.memory.slice(p, 64), pattern(64, 5));
    assert.deepEqual(m.cache.probe(p), { cached: true, dirty: false, stale: true });
    assert.deepEqual(m.cpu.readPhys(p, 64), new Uint8Array(64));
    const [v] = m.violations.ofKind("stale-cpu-read");
    assert.ok(v);
    assert.ok(
      v.message.includes(`dev changed memory (DMA write at ${t.toFixed(0)} ns)`),
      v.message,
    );
    m.maintain("invalidate", [{ phys: p, len: 64 }]);
    assert.deepEqual(m.cpu.readPhys(p, 64), pattern(64, 5));
    assert.equal(dev.bytesWritten, 64);
  });

  test("a write under a dirty line is reported, and the later write-back loses it", () => {
    const { m, p } = rig(false);
    const dev = m.device("dev");
    m.cpu.writePhys(p, new Uint8Array(64).fill(0xcc));
    dev.write(p, new Uint8Array(64).fill(0xdd));
    assert.equal(m.violations.ofKind("dirty-line-under-dma").length, 1);
    m.maintain("flush", [{ phys: p, len: 64 }]);
    const [lost] = m.violations.ofKind("lost-device-write");
    assert.ok(lost);
    assert.equal(lost.agent, "cpu");
    assert.equal(lost.phys, p);
    assert.deepEqual(
      m.memory.slice(p, 64),
      new Uint8Array(64).fill(0xcc),
      "the device's data is gone",
    );
  });

  test("invalidating a range whose edge line is dirty writes that line back over the device's bytes", () => {
    const { m, p } = rig(false);
    const dev = m.device("dev");
    m.cpu.writePhys(p, Uint8Array.of(1)); // line 0 dirty
    dev.write(p + 32, new Uint8Array(64).fill(0xee)); // half of line 0, half of line 1
    m.maintain("invalidate", [{ phys: p + 32, len: 64 }]);
    assert.equal(m.violations.ofKind("lost-device-write").length, 1);
    const got = m.cpu.readPhys(p + 32, 64);
    assert.deepEqual(got.subarray(0, 32), new Uint8Array(32), "line 0 came back from the CPU");
    assert.deepEqual(got.subarray(32), new Uint8Array(32).fill(0xee), "line 1 is the device's");
  });
});

describe("coherent device", () => {
  test("reads are supplied dirty lines by the snoop; the CPU's copy stays dirty", () => {
    const { m, p } = rig(true);
    const dev = m.device("dev");
    m.memory.write(p, new Uint8Array(256).fill(0x11));
    m.cpu.writePhys(p + 70, pattern(100, 2));
    const expect = new Uint8Array(256).fill(0x11);
    expect.set(pattern(100, 2), 70);
    assert.deepEqual(dev.read(p, 256), expect);
    assert.ok(m.cache.counters.snoops >= 2);
    assert.equal(m.cache.probe(p + 70).dirty, true);
    assert.deepEqual(m.memory.slice(p + 70, 4), new Uint8Array(4).fill(0x11));
    assert.equal(m.violations.count, 0);
  });

  test("writes invalidate cached copies, preserving CPU bytes beside a partial write", () => {
    const { m, p } = rig(true);
    const dev = m.device("dev");
    m.cpu.readPhys(p + 128, 64); // clean copy of line 2
    m.cpu.writePhys(p, new Uint8Array(64).fill(0x11)); // dirty line 0
    dev.write(p + 16, new Uint8Array(8).fill(0x22));
    dev.write(p + 128, new Uint8Array(64).fill(0x33));
    assert.equal(m.cache.probe(p).cached, false);
    assert.equal(m.cache.probe(p + 128).cached, false);
    const line0 = new Uint8Array(64).fill(0x11);
    line0.fill(0x22, 16, 24);
    assert.deepEqual(m.cpu.readPhys(p, 64), line0);
    assert.deepEqual(m.cpu.readPhys(p + 128, 64), new Uint8Array(64).fill(0x33));
    assert.equal(m.violations.count, 0);
  });
});

describe("DMA windows, offsets and masks", () => {
  test("an access outside every window is unmapped; against the direction it is dma-direction", () => {
    const m = smallMachine();
    const p = page(m);
    const dev = m.addDevice("dev");
    dev.read(p, 4);
    let v = m.violations.list.at(-1)!;
    assert.equal(v.kind, "unmapped-device-access");
    assert.equal(v.phys, p);
    assert.match(
      v.message,
      new RegExp(`read DMA address 0x${p.toString(16)}\\+4 that is not mapped`),
    );
    const tx = dev.addWindow({ dmaAddr: p, len: 64, direction: "to-device", label: "tx" });
    dev.read(p, 64);
    assert.equal(m.violations.count, 1, "reading a to-device window is fine");
    dev.write(p, new Uint8Array(4));
    v = m.violations.list.at(-1)!;
    assert.equal(v.kind, "dma-direction");
    assert.match(v.message, /wrote to a buffer mapped DMA_TO_DEVICE/);
    dev.read(p + 60, 8); // sticks out of the window
    assert.equal(m.violations.list.at(-1)!.kind, "unmapped-device-access");
    const rx = dev.addWindow({ dmaAddr: p + 64, len: 64, direction: "from-device", label: "rx" });
    dev.read(p + 64, 4);
    assert.match(m.violations.list.at(-1)!.message, /read from a buffer mapped DMA_FROM_DEVICE/);
    // An overlapping bidirectional window allows both.
    const n = m.violations.count;
    const bi = dev.addWindow({ dmaAddr: p, len: 128, direction: "bidirectional", label: "bi" });
    dev.write(p, new Uint8Array(4));
    dev.read(p + 64, 4);
    assert.equal(m.violations.count, n);
    assert.equal(dev.windowCount, 3);
    for (const id of [tx, rx, bi]) dev.removeWindow(id);
    assert.equal(dev.windowCount, 0);
    dev.read(p, 4);
    assert.equal(m.violations.list.at(-1)!.kind, "unmapped-device-access");
  });

  test("dmaOffset: DMA address + offset is the physical address", () => {
    const m = smallMachine();
    const p = page(m);
    const dev = m.addDevice("dev", { dmaOffset: 0x4000_0000 });
    const dma = p - 0x4000_0000;
    dev.addWindow({ dmaAddr: dma, len: PAGE_SIZE, direction: "bidirectional", label: "b" });
    dev.write(dma + 8, Uint8Array.of(7, 7));
    assert.deepEqual(m.memory.slice(p + 8, 2), Uint8Array.of(7, 7));
    assert.equal(m.violations.count, 0);
  });

  test("an address beyond the DMA mask is reported and wraps", () => {
    const m = new Machine({ profile: "x86-64" });
    const dev = m.addDevice("old", { dmaBits: 32 });
    dev.addWindow({ dmaAddr: 0x1000, len: PAGE_SIZE, direction: "bidirectional", label: "low" });
    dev.write(0x1_0000_1000, Uint8Array.of(0xab));
    const [v] = m.violations.ofKind("dma-mask-exceeded");
    assert.ok(v);
    assert.equal(v.agent, "old");
    assert.match(v.message, /beyond its 32-bit mask; the access wrapped to 0x1000/);
    assert.equal(m.violations.count, 1);
    assert.equal(m.memory.slice(0x1000, 1)[0], 0xab);
    assert.equal(m.memory.slice(0x1_0000_1000, 1)[0], 0);
    // A 64-bit device reaches the high address itself.
    const wide = m.addDevice("wide");
    wide.addWindow({ dmaAddr: 0x1_0000_1000, len: 64, direction: "bidirectional", label: "hi" });
    wide.write(0x1_0000_1000, Uint8Array.of(0xcd));
    assert.equal(m.memory.slice(0x1_0000_1000, 1)[0], 0xcd);
    assert.equal(m.violations.count, 1);
  });

  test("a device access outside RAM is a bus error", () => {
    const m = smallMachine();
    const dev = m.addDevice("dev", { dmaBits: 64 });
    const end = m.memory.end;
    dev.addWindow({ dmaAddr: end, len: 64, direction: "bidirectional", label: "hole" });
    assert.throws(() => dev.read(end, 4), BusError);
  });

  test("scatter-gather reads and writes", () => {
    const { m, p } = rig(false);
    const dev = m.device("dev");
    const segs = [
      { dmaAddr: p + 1000, len: 10 },
      { dmaAddr: p + 100, len: 20 },
      { dmaAddr: p + 3000, len: 5 },
    ];
    const data = pattern(35, 9);
    dev.writeSegments(segs, data);
    assert.deepEqual(m.memory.slice(p + 1000, 10), data.subarray(0, 10));
    assert.deepEqual(m.memory.slice(p + 100, 20), data.subarray(10, 30));
    assert.deepEqual(m.memory.slice(p + 3000, 5), data.subarray(30));
    assert.deepEqual(dev.readSegments(segs), data);
    // A short source stops part-way through the list.
    dev.writeSegments(segs, Uint8Array.of(1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12));
    assert.deepEqual(m.memory.slice(p + 100, 3), Uint8Array.of(11, 12, data[12]!));
    assert.deepEqual(m.memory.slice(p + 3000, 5), data.subarray(30));
    const into = new Uint8Array(35);
    assert.equal(dev.readSegments(segs, into), into);
    assert.equal(m.violations.count, 0);
  });
});

describe("IOMMU", () => {
  test("translates page by page onto scattered pages; no window is needed", () => {
    const m = smallMachine();
    const gpu = m.addDevice("gpu", { iommu: true });
    const dom = gpu.iommu;
    assert.ok(dom);
    const a = page(m);
    const b = m.pages.alloc(3) * PAGE_SIZE + 5 * PAGE_SIZE;
    const iova = dom.allocIova(2 * PAGE_SIZE);
    assert.ok(iova >= 0x10_0000, "IOVA 0 is never handed out");
    dom.map(iova, a, PAGE_SIZE, RW);
    dom.map(iova + PAGE_SIZE, b, PAGE_SIZE, RW);
    assert.equal(dom.mappedPages, 2);
    gpu.write(iova + PAGE_SIZE - 50, pattern(100, 3));
    assert.deepEqual(m.memory.slice(a + PAGE_SIZE - 50, 50), pattern(100, 3).subarray(0, 50));
    assert.deepEqual(m.memory.slice(b, 50), pattern(100, 3).subarray(50));
    assert.deepEqual(gpu.read(iova + PAGE_SIZE - 50, 100), pattern(100, 3));
    const pieces: number[][] = [];
    assert.equal(
      dom.translate(iova + 10, PAGE_SIZE, false, (ph, n, off) => pieces.push([ph, n, off])),
      undefined,
    );
    assert.deepEqual(pieces, [
      [a + 10, PAGE_SIZE - 10, 0],
      [b, 10, PAGE_SIZE - 10],
    ]);
    assert.equal(m.violations.count, 0);
  });

  test("unmapped IOVAs and permission faults are reported and do not reach memory", () => {
    const m = smallMachine();
    const gpu = m.addDevice("gpu", { iommu: true });
    const dom = gpu.iommu!;
    const p = page(m);
    m.memory.write(p, Uint8Array.of(1, 2, 3, 4));
    const ro = dom.allocIova(PAGE_SIZE);
    dom.map(ro, p, PAGE_SIZE, IOMMU_READ);
    assert.deepEqual(gpu.read(ro, 4), Uint8Array.of(1, 2, 3, 4));
    gpu.write(ro, Uint8Array.of(9));
    assert.equal(m.memory.slice(p, 1)[0], 1, "the write did not land");
    let v = m.violations.list.at(-1)!;
    assert.equal(v.kind, "unmapped-device-access");
    assert.equal(v.phys, -1);
    assert.match(
      v.message,
      /IOMMU fault: gpu wrote IOVA 0x[0-9a-f]+ \(mapped without write permission\)/,
    );
    const dst = new Uint8Array(8).fill(0xee);
    gpu.read(ro + PAGE_SIZE, 8, dst);
    assert.deepEqual(dst, new Uint8Array(8), "a faulting read returns zeros");
    v = m.violations.list.at(-1)!;
    assert.match(v.message, /read IOVA 0x[0-9a-f]+ \(not mapped\)/);
    assert.equal(m.violations.count, 2);
    assert.equal(dom.unmap(ro, PAGE_SIZE), PAGE_SIZE);
    assert.equal(dom.unmap(ro, PAGE_SIZE), 0);
    gpu.read(ro, 4);
    assert.equal(m.violations.count, 3);
    dom.freeIova(ro);
  });

  test("map rejects unaligned addresses and double mappings", () => {
    const m = smallMachine();
    const dom = m.addDevice("gpu", { iommu: true }).iommu!;
    const p = page(m);
    const iova = dom.allocIova(PAGE_SIZE);
    const code = (c: string) => (e: unknown) => e instanceof KernelError && e.code === c;
    assert.throws(() => dom.map(iova + 1, p, PAGE_SIZE, RW), code("EINVAL"));
    assert.throws(() => dom.map(iova, p + 8, PAGE_SIZE, RW), code("EINVAL"));
    dom.map(iova, p, PAGE_SIZE, RW);
    assert.throws(() => dom.map(iova, p, PAGE_SIZE, RW), code("EEXIST"));
  });
});

describe("timed DMA work", () => {
  test("submit queues jobs by bandwidth on the virtual clock", () => {
    const m = new Machine({ profile: "arm64", trace: true });
    const dev = m.addDevice("dma0", { bandwidthBytesPerNs: 4, setupNs: 1000 });
    assert.equal(dev.transferTime(4096), 1000 + 1024);
    const log: string[] = [];
    const e1 = dev.submit(
      "a",
      4096,
      () => log.push(`a work @${m.now}`),
      () => log.push(`a done @${m.now}`),
    );
    const e2 = dev.submit("b", 8192, () => log.push(`b work @${m.now}`));
    assert.equal(e1, 2024);
    assert.equal(e2, 2024 + 3048, "b waits for a");
    assert.equal(dev.busyUntil, e2);
    assert.equal(m.now, 0, "submitting takes no CPU time");
    m.clock.advance(500); // the CPU works meanwhile; the device is not delayed
    assert.deepEqual(log, []);
    m.clock.runUntilIdle();
    assert.deepEqual(log, ["a work @2024", "a done @2024", "b work @5072"]);
    assert.equal(m.now, 5072);
    const dma = m.costs.snapshot().dma;
    near(dma.ns, 2024 + 3048);
    assert.equal(dma.ops, 2);
    assert.equal(dma.bytes, 4096 + 8192);
    m.clock.advance(10_000);
    const e3 = dev.submit("c", 0, () => {});
    assert.equal(e3, 15_072 + 1000, "an idle device starts now");
    m.clock.runUntilIdle();
    const spans = m.trace.events.filter((e) => e.track === "dma0");
    assert.deepEqual(
      spans.map((e) => [e.name, e.ts, e.dur]),
      [
        ["a", 0, 2024],
        ["b", 2024, 3048],
        ["c", 15_072, 1000],
      ],
    );
  });

  test("a job's accesses happen at its completion time", () => {
    const { m, p } = rig(false);
    const dev = m.device("dev");
    dev.submit("capture", 64, () => dev.write(p, new Uint8Array(64).fill(0x42)));
    assert.equal(m.memory.slice(p, 1)[0], 0);
    const done = dev.transferTime(64);
    m.clock.runUntil(done - 1);
    assert.equal(m.memory.slice(p, 1)[0], 0);
    m.clock.runUntil(done);
    assert.equal(m.memory.slice(p, 1)[0], 0x42);
  });
});

describe("transfer timing (timeTransfers, for the bench)", () => {
  /** Busy for `ms` of wall time. */
  const spin = (ms: number): void => {
    const end = performance.now() + ms;
    while (performance.now() < end) {}
  };

  test("off: nothing is timed; on: a frame's writeRows counts, a reader's visits and re-reads inside it do not", () => {
    const { m, p } = rig(false);
    const dev = m.device("dev");
    const row = pattern(64, 3);
    const rows = { rowBytes: 64, same: new Uint8Array(4) };
    const writeFrame = (inside: () => void): void =>
      dev.writeRows(rows, () => {
        for (let y = 0; y < 4; y++) dev.write(p + 64 * y, row);
        inside();
      });
    writeFrame(() => {});
    assert.equal(dev.transferMs, 0);
    assert.equal(dev.rereadMs, 0);
    dev.timeTransfers = true;
    // The writer's own work inside writeRows is part of the frame's transfer.
    writeFrame(() => spin(15));
    assert.ok(dev.transferMs >= 15, `${dev.transferMs} ms`);
    const before = dev.transferMs;
    // A read in place whose reader takes 30 ms, and a re-read, inside a timed writeRows.
    writeFrame(() => {
      assert.ok(dev.readSegmentsInPlace([{ dmaAddr: p, len: 256 }], () => spin(30)));
      dev.rereadSegments([{ dmaAddr: p, len: 256 }]);
    });
    assert.ok(dev.transferMs - before < 30, `${dev.transferMs - before} ms`);
    assert.ok(dev.transferMs - before >= 0);
    assert.ok(dev.rereadMs > 0);
    // Alone, a read in place leaves its visits out too.
    const alone = dev.transferMs;
    dev.readSegmentsInPlace([{ dmaAddr: p, len: 256 }], () => spin(30));
    assert.ok(dev.transferMs - alone < 30);
  });
});
