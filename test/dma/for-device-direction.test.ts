/**
 * The profile option forDeviceIgnoresDirection (raspberrypi/linux PR 6995): mainline
 * arm64 cleans in arch_sync_dma_for_device whatever the direction; with the option off
 * it invalidates a DMA_FROM_DEVICE buffer, as 32-bit ARM does; x86 refuses it.
 */

import assert from "node:assert/strict";
import { test } from "node:test";
import { DMA_BIDIRECTIONAL, DMA_FROM_DEVICE } from "../../src/dma/direction.js";
import { Machine } from "../../src/machine/machine.js";
import { resolveProfile } from "../../src/machine/profiles.js";
import { cmaBuffer, rig } from "./helpers.js";

function cachedAfterMap(profile: string, respects: boolean | undefined, dir: 0 | 2): boolean {
  const p = resolveProfile(
    profile,
    respects === undefined ? {} : { forDeviceIgnoresDirection: !respects },
  );
  const { m, dma, dev } = rig(p);
  const phys = cmaBuffer(m, 4096);
  m.cpu.readPhys(phys, 4096);
  const h = dma.dmaMapSingle(dev, phys, 4096, dir);
  dma.dmaMappingError(dev, h);
  return m.cache.probe(phys).cached;
}

test("mainline arm64 and RISC-V clean a DMA_FROM_DEVICE buffer at map; 32-bit ARM invalidates", () => {
  assert.equal(cachedAfterMap("arm64", undefined, DMA_FROM_DEVICE), true);
  assert.equal(cachedAfterMap("riscv64", undefined, DMA_FROM_DEVICE), true);
  assert.equal(cachedAfterMap("cortex-a9", undefined, DMA_FROM_DEVICE), false);
});

test("arm64 with PR 6995 invalidates DMA_FROM_DEVICE and still cleans DMA_BIDIRECTIONAL", () => {
  assert.equal(cachedAfterMap("arm64", true, DMA_FROM_DEVICE), false);
  assert.equal(cachedAfterMap("arm64", true, DMA_BIDIRECTIONAL), true);
  // And 32-bit ARM made to ignore the direction cleans.
  assert.equal(cachedAfterMap("cortex-a9", false, DMA_FROM_DEVICE), true);
});

test("x86 refuses the option: clflush has no direction", () => {
  assert.throws(
    () => new Machine({ profile: "x86-64", overrides: { forDeviceIgnoresDirection: false } }),
    /forDeviceIgnoresDirection.*cannot take effect on x86_64/,
  );
});
