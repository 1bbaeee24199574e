/**
 * The conformance suite (./suite.ts) against the simulated kernel: every case on a
 * fresh arm64 kernel, and the heap, udmabuf and vivid cases again on x86-64 (a coherent
 * machine, where the CPU-access brackets take a different path). vgem is at
 * /dev/dri/card0, as in the VM the suite also runs in (scripts/kernel-conformance.mjs).
 */

import { makeSimUapi, SIM_CAPABILITIES } from "./sim-backend.js";
import { registerConformance } from "./suite.js";

registerConformance("sim arm64", (c) => makeSimUapi({ profile: "arm64" }, c.needs), {
  capabilities: SIM_CAPABILITIES,
});

registerConformance("sim x86-64", (c) => makeSimUapi({ profile: "x86-64" }, c.needs), {
  capabilities: SIM_CAPABILITIES,
  suites: ["dmabuf-heaps", "dma-buf", "udmabuf", "vivid", "swiotlb"],
});
