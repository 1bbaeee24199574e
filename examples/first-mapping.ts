/**
 * The life of one streaming DMA buffer on a non-coherent arm64 SoC: the docs' first
 * example (docs/guide.md). Run it with `node dist/examples/first-mapping.js`.
 */

import {
  DMA_FROM_DEVICE,
  DmaMappingApi,
  formatViolation,
  Machine,
  PAGE_SIZE,
} from "../src/index.js";

export function firstMapping(withSync: boolean): { firstByte: number; violations: string[] } {
  // A machine built from a profile: RAM, caches, allocators, a virtual clock.
  const m = new Machine({ profile: "arm64" });
  const dma = new DmaMappingApi(m);
  const camera = m.addDevice("camera"); // non-coherent, 32-bit DMA mask (profile defaults)

  // A page of RAM the CPU has looked at: its lines are now in the CPU cache.
  const buf = m.pages.alloc(0) * PAGE_SIZE;
  m.cpu.readPhys(buf, PAGE_SIZE);

  // The driver maps it for the camera to write (arm64 cleans the lines to memory).
  const handle = dma.dmaMapSingle(camera, buf, PAGE_SIZE, DMA_FROM_DEVICE);
  if (dma.dmaMappingError(camera, handle)) throw new Error("mapping failed");

  // The camera writes a frame by DMA, on the virtual clock.
  camera.submit("frame", PAGE_SIZE, () =>
    camera.write(handle, new Uint8Array(PAGE_SIZE).fill(0x42)),
  );
  m.clock.runUntilIdle();

  // Giving the buffer back to the CPU invalidates the stale lines...
  if (withSync) dma.dmaUnmapSingle(camera, handle, PAGE_SIZE, DMA_FROM_DEVICE);
  // ...without it, the CPU reads its old cached copy.
  const firstByte = m.cpu.readPhys(buf, 1)[0]!;
  return { firstByte, violations: m.violations.list.map(formatViolation) };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  for (const withSync of [true, false]) {
    const r = firstMapping(withSync);
    console.log(
      `${withSync ? "with" : "without"} dma_unmap_single: CPU reads 0x${r.firstByte.toString(16)}`,
    );
    for (const v of r.violations) console.log(`  ${v}`);
  }
}
