/**
 * swiotlb bouncing (docs/guide.md): on the arm64 profile RAM reaches above 4 GiB, and
 * a device with a 32-bit DMA mask cannot address a buffer up there. dma_map_single()
 * then hands the device a bounce slot in the low swiotlb pool; the device's data lands
 * in the slot, and only dma_sync_single_for_cpu() or dma_unmap_single() copies it into
 * the driver's buffer. That copy is why the sync is needed even when the device is
 * cache-coherent. Run it with `node dist/examples/swiotlb-bounce.js`.
 */

import {
  DMA_FROM_DEVICE,
  DmaMappingApi,
  formatViolation,
  Machine,
  PAGE_SIZE,
} from "../src/index.js";

export interface BounceResult {
  /** The buffer's physical address (above 4 GiB). */
  readonly bufPhys: number;
  /** The DMA address the device was given. */
  readonly handle: number;
  /** Whether the handle is a swiotlb slot rather than the buffer itself. */
  readonly bounced: boolean;
  /** Bytes of the buffer that hold the device's data when the CPU reads it. */
  readonly correctBytes: number;
  readonly size: number;
  /** Virtual time spent copying between the buffer and the slot, ns. */
  readonly bounceNs: number;
  readonly violations: string[];
}

const FOUR_GIB = 2 ** 32;

/**
 * One device->CPU transfer into a page above 4 GiB.
 * @param dmaBits the device's DMA mask width
 * @param coherent whether the device snoops the CPU caches
 * @param withSync whether the driver calls dma_sync_single_for_cpu before the CPU reads
 */
export function bounce(dmaBits: number, coherent: boolean, withSync: boolean): BounceResult {
  const m = new Machine({ profile: "arm64" });
  const dma = new DmaMappingApi(m);
  const dev = m.addDevice("nic", { dmaBits, coherent });
  const size = PAGE_SIZE;

  // Take pages until one lies above 4 GiB (the allocator scatters them), free the rest.
  const low: number[] = [];
  let pfn = m.pages.alloc(0);
  while (pfn * PAGE_SIZE < FOUR_GIB) {
    low.push(pfn);
    pfn = m.pages.alloc(0);
  }
  for (const p of low) m.pages.free(p);
  const buf = pfn * PAGE_SIZE;

  const handle = dma.dmaMapSingle(dev, buf, size, DMA_FROM_DEVICE);
  if (dma.dmaMappingError(dev, handle)) throw new Error("dma_map_single failed");
  const packet = new Uint8Array(size).fill(0x5a);
  dev.submit("receive", size, () => dev.write(handle, packet));
  m.clock.runUntilIdle();

  if (withSync) dma.dmaSyncSingleForCpu(dev, handle, size, DMA_FROM_DEVICE);
  const seen = m.cpu.readPhys(buf, size);
  const correctBytes = seen.filter((b) => b === 0x5a).length;
  dma.dmaUnmapSingle(dev, handle, size, DMA_FROM_DEVICE);

  return {
    bufPhys: buf,
    handle,
    bounced: handle !== buf,
    correctBytes,
    size,
    bounceNs: m.costs.snapshot().bounce.ns,
    violations: m.violations.list.map(formatViolation),
  };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const hex = (n: number): string => `0x${n.toString(16)}`;
  for (const [bits, coherent, sync] of [
    [64, false, true],
    [32, false, true],
    [32, true, true],
    [32, true, false],
  ] as const) {
    const r = bounce(bits, coherent, sync);
    console.log(
      `${bits}-bit ${coherent ? "coherent" : "non-coherent"} device, ${sync ? "with" : "WITHOUT"} dma_sync_single_for_cpu:`,
    );
    console.log(
      `  buffer ${hex(r.bufPhys)}, device DMA address ${hex(r.handle)}${r.bounced ? " (swiotlb slot)" : ""}`,
    );
    console.log(
      `  CPU sees ${r.correctBytes}/${r.size} bytes of the packet; bounce copies ${(r.bounceNs / 1000).toFixed(2)} us`,
    );
    for (const v of r.violations) console.log(`  ${v}`);
  }
}
