/**
 * The conformance suite (./suite.ts) against the simulated kernel: every case on a
 * fresh arm64 kernel, and the heap and udmabuf cases again on x86-64 (a coherent
 * machine, where the CPU-access brackets take a different path).
 */

import { Kernel } from "../../src/kernel/kernel.js";
import { SimUapi } from "../../src/uapi/sim.js";
import { type Capability, registerConformance } from "./suite.js";

/** Everything the simulator models; it has no hugetlbfs. */
const SIM_CAPABILITIES: readonly Capability[] = [
  "system-heap",
  "udmabuf",
  "sw_sync",
  "memfd",
  "fence-deadline",
];

registerConformance("sim arm64", () => new SimUapi(new Kernel({ profile: "arm64" })), {
  capabilities: SIM_CAPABILITIES,
});

registerConformance("sim x86-64", () => new SimUapi(new Kernel({ profile: "x86-64" })), {
  capabilities: SIM_CAPABILITIES,
  suites: ["dmabuf-heaps", "dma-buf", "udmabuf"],
});
