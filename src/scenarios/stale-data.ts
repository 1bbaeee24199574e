/**
 * The built-in demonstration: the smallest pipeline that shows why dma-buf needs cache
 * maintenance. A device writes a frame into a streaming buffer that the CPU has cached,
 * then the CPU reads it; and the CPU fills a buffer a device then reads. Each is run
 * with the DMA API calls Linux requires and with one of them left out, on every
 * architecture profile, and the bytes each reader saw are compared with what was
 * written.
 */

import { DMA_FROM_DEVICE, DMA_TO_DEVICE, type DmaDirection } from "../dma/direction.js";
import { DmaMappingApi } from "../dma/mapping.js";
import { Machine } from "../machine/machine.js";
import type { Violation } from "../machine/violations.js";

export interface StaleDataCase {
  readonly profile: string;
  /** "device->cpu" (capture then CPU reads) or "cpu->device" (CPU fills then device reads). */
  readonly flow: "device->cpu" | "cpu->device";
  /** Whether the required sync call was made. */
  readonly synced: boolean;
  /** The call the flow needs (made or left out). */
  readonly call: string;
  /** Bytes the reader saw that differ from what was written. */
  readonly wrongBytes: number;
  readonly size: number;
  readonly violations: readonly Violation[];
  /** Virtual time spent on cache maintenance, ns. */
  readonly maintenanceNs: number;
}

/** A recognisable frame: each byte derived from its offset and the frame number. */
export function testPattern(size: number, frame: number): Uint8Array {
  const out = new Uint8Array(size);
  for (let i = 0; i < size; i++) out[i] = (i * 7 + frame * 31 + (i >>> 8)) & 0xff;
  return out;
}

function countDiff(a: Uint8Array, b: Uint8Array): number {
  let n = 0;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) n++;
  return n;
}

/** Runs one case of the demonstration. */
export function runStaleDataCase(
  profile: string,
  flow: StaleDataCase["flow"],
  synced: boolean,
  size = 64 * 1024,
): StaleDataCase {
  const m = new Machine({ profile });
  const dma = new DmaMappingApi(m);
  const dev = m.addDevice(flow === "device->cpu" ? "camera" : "display");
  const phys = m.cma.alloc(Math.ceil(size / 4096));
  const dir: DmaDirection = flow === "device->cpu" ? DMA_FROM_DEVICE : DMA_TO_DEVICE;
  const old = testPattern(size, 0);
  const frame = testPattern(size, 1);
  let seen: Uint8Array;
  let call: string;
  if (flow === "device->cpu") {
    // The CPU looked at the previous frame, so the buffer is in its cache.
    m.cpu.writePhys(phys, old);
    const handle = dma.dmaMapSingle(dev, phys, size, dir);
    dma.dmaMappingError(dev, handle);
    dev.submit("capture frame 1", size, () => dev.write(handle, frame));
    m.clock.runUntilIdle();
    call = "dma_sync_single_for_cpu";
    if (synced) dma.dmaSyncSingleForCpu(dev, handle, size, dir);
    seen = m.cpu.readPhys(phys, size);
    if (synced) dma.dmaSyncSingleForDevice(dev, handle, size, dir);
    dma.dmaUnmapSingle(dev, handle, size, dir);
  } else {
    // The buffer is mapped once and reused, as V4L2 and DRM drivers keep it.
    m.cpu.writePhys(phys, old);
    const handle = dma.dmaMapSingle(dev, phys, size, dir);
    dma.dmaMappingError(dev, handle);
    dma.dmaSyncSingleForCpu(dev, handle, size, dir);
    m.cpu.writePhys(phys, frame);
    call = "dma_sync_single_for_device";
    if (synced) dma.dmaSyncSingleForDevice(dev, handle, size, dir);
    seen = new Uint8Array(size);
    dev.submit("scan out frame 1", size, () => dev.read(handle, size, seen));
    m.clock.runUntilIdle();
    dma.dmaUnmapSingle(dev, handle, size, dir);
  }
  dma.dmaReleaseDevice(dev);
  return {
    profile,
    flow,
    synced,
    call,
    wrongBytes: countDiff(seen, frame),
    size,
    violations: m.violations.list,
    maintenanceNs: m.costs.snapshot()["cache-maintenance"].ns,
  };
}

/** All cases over the given profiles. */
export function runStaleDataDemo(profiles: readonly string[], size = 64 * 1024): StaleDataCase[] {
  const out: StaleDataCase[] = [];
  for (const p of profiles) {
    for (const flow of ["device->cpu", "cpu->device"] as const) {
      for (const synced of [true, false]) out.push(runStaleDataCase(p, flow, synced, size));
    }
  }
  return out;
}
