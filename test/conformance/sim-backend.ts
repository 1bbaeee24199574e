/**
 * The simulator as a conformance backend: what it offers, and a process on a fresh
 * simulated kernel set up like the VM of scripts/kernel-conformance.mjs.
 */

import { vgemProbe } from "../../src/drivers/gpu/drm/vgem/vgem.js";
import { Kernel, type KernelOptions } from "../../src/kernel/kernel.js";
import { SimUapi } from "../../src/uapi/sim.js";
import { type Capability, openVgem } from "./suite.js";

/** Everything the simulator models (vgem through {@link makeSimUapi}); it has no hugetlbfs. */
export const SIM_CAPABILITIES: readonly Capability[] = [
  "system-heap",
  "udmabuf",
  "sw_sync",
  "memfd",
  "fence-deadline",
  "vgem",
];

/**
 * A process on a fresh simulated kernel with vgem at /dev/dri/card0, as the VM has it
 * after `insmod vgem`. vgem is probed (vgem_init) here only when the kernel did not
 * register one at boot itself.
 */
export function makeSimUapi(options: KernelOptions = {}): SimUapi {
  const k = new Kernel(options);
  const u = new SimUapi(k);
  const vgem = openVgem(u);
  if (vgem >= 0) u.close(vgem);
  else vgemProbe(k);
  return u;
}
