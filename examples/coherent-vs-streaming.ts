/**
 * The two kinds of DMA mapping side by side (docs/guide.md): a coherent buffer from
 * dma_alloc_coherent(), which the CPU reaches through an uncached or write-combined
 * mapping, against a cached streaming buffer with dma_map_single() and the syncs.
 *
 * The work is the same for both: the CPU writes a frame that a device reads, then the
 * device writes a frame that the CPU reads. The example reports where the virtual time
 * went (CPU access vs cache maintenance) and checks that every reader saw the right
 * bytes. Run it with `node dist/examples/coherent-vs-streaming.js [size] [profile]...`.
 */

import {
  type CostCategory,
  CostLedger,
  DMA_BIDIRECTIONAL,
  DmaMappingApi,
  Machine,
  PAGE_SIZE,
} from "../src/index.js";

export interface MappingCost {
  /** CPU loads and stores on the buffer, virtual ns. */
  readonly cpuAccessNs: number;
  /** Cache clean/invalidate issued by the DMA API, virtual ns. */
  readonly maintenanceNs: number;
  /** Bytes the device or the CPU read that differ from what the other side wrote. */
  readonly wrongBytes: number;
  readonly violations: number;
}

export interface Comparison {
  readonly profile: string;
  readonly size: number;
  /** CPU attribute of the coherent buffer's mapping ("cached" when the device snoops). */
  readonly coherentAttr: string;
  readonly coherent: MappingCost;
  readonly streaming: MappingCost;
}

function pattern(size: number, seed: number): Uint8Array {
  const out = new Uint8Array(size);
  for (let i = 0; i < size; i++) out[i] = (i * 13 + seed) & 0xff;
  return out;
}

function diff(a: Uint8Array, b: Uint8Array): number {
  let n = 0;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) n++;
  return n;
}

function spent(m: Machine, before: ReturnType<CostLedger["snapshot"]>, c: CostCategory): number {
  return CostLedger.diff(m.costs.snapshot(), before)[c].ns;
}

/** CPU writes `out`, device reads it; device writes `back`, CPU reads it. Coherent buffer. */
function viaCoherent(profile: string, size: number): { attr: string; cost: MappingCost } {
  const m = new Machine({ profile });
  const dma = new DmaMappingApi(m);
  const dev = m.addDevice("gpu");
  const buf = dma.dmaAllocCoherent(dev, size);
  const map = buf.cpuAddr!;
  const out = pattern(size, 1);
  const back = pattern(size, 2);
  const before = m.costs.snapshot();

  m.cpu.write(map, 0, out); // no sync: the buffer is always shared
  const devSaw = new Uint8Array(size);
  dev.submit("read frame", size, () => dev.read(buf.dmaHandle, size, devSaw));
  m.clock.runUntilIdle();
  dev.submit("write frame", size, () => dev.write(buf.dmaHandle, back));
  m.clock.runUntilIdle();
  const cpuSaw = m.cpu.read(map, 0, size);

  const cost: MappingCost = {
    cpuAccessNs: spent(m, before, "cpu-access"),
    maintenanceNs: spent(m, before, "cache-maintenance"),
    wrongBytes: diff(devSaw, out) + diff(cpuSaw, back),
    violations: m.violations.count,
  };
  dma.dmaFreeCoherent(dev, size, buf.cpuAddr, buf.dmaHandle);
  return { attr: map.attr, cost };
}

/** The same work on a cached buffer with a bidirectional streaming mapping and its syncs. */
function viaStreaming(profile: string, size: number): MappingCost {
  const m = new Machine({ profile });
  const dma = new DmaMappingApi(m);
  const dev = m.addDevice("gpu");
  const phys = m.cma.alloc(Math.ceil(size / PAGE_SIZE));
  const map = m.cpu.map([{ phys, len: size }], "cached", "frame");
  const out = pattern(size, 1);
  const back = pattern(size, 2);
  const dir = DMA_BIDIRECTIONAL;
  const handle = dma.dmaMapSingle(dev, phys, size, dir);
  if (dma.dmaMappingError(dev, handle)) throw new Error("dma_map_single failed");
  dma.dmaSyncSingleForCpu(dev, handle, size, dir); // the CPU fills it first
  const before = m.costs.snapshot();

  m.cpu.write(map, 0, out);
  dma.dmaSyncSingleForDevice(dev, handle, size, dir); // clean: the device must see the writes
  const devSaw = new Uint8Array(size);
  dev.submit("read frame", size, () => dev.read(handle, size, devSaw));
  m.clock.runUntilIdle();
  dev.submit("write frame", size, () => dev.write(handle, back));
  m.clock.runUntilIdle();
  dma.dmaSyncSingleForCpu(dev, handle, size, dir); // invalidate: drop the stale lines
  const cpuSaw = m.cpu.read(map, 0, size);

  const cost: MappingCost = {
    cpuAccessNs: spent(m, before, "cpu-access"),
    maintenanceNs: spent(m, before, "cache-maintenance"),
    wrongBytes: diff(devSaw, out) + diff(cpuSaw, back),
    violations: m.violations.count,
  };
  dma.dmaUnmapSingle(dev, handle, size, dir);
  return cost;
}

export function compareMappings(profile: string, size = 64 * 1024): Comparison {
  const c = viaCoherent(profile, size);
  return {
    profile,
    size,
    coherentAttr: c.attr,
    coherent: c.cost,
    streaming: viaStreaming(profile, size),
  };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const size = process.argv[2] === undefined ? 64 * 1024 : Number(process.argv[2]);
  const profiles =
    process.argv.length > 3 ? process.argv.slice(3) : ["cortex-a9", "arm64", "riscv64", "x86-64"];
  const us = (ns: number): string => `${(ns / 1000).toFixed(1)} us`.padStart(10);
  console.log(`CPU writes ${size} bytes for a device, then reads ${size} bytes it wrote:\n`);
  console.log("profile     mapping                  CPU access  maintenance  wrong bytes");
  for (const p of profiles) {
    const r = compareMappings(p, size);
    const row = (name: string, c: MappingCost): string =>
      `${p.padEnd(10)}  ${name.padEnd(23)}  ${us(c.cpuAccessNs)}  ${us(c.maintenanceNs)}   ${c.wrongBytes}`;
    console.log(row(`coherent (${r.coherentAttr})`, r.coherent));
    console.log(row("streaming (cached)", r.streaming));
  }
}
