/**
 * The simulator as a conformance backend: what it offers, and a process on a fresh
 * simulated kernel set up like the VM of scripts/kernel-conformance.mjs.
 */

import { vgemProbe } from "../../src/drivers/gpu/drm/vgem/vgem.js";
import { vim2mProbe } from "../../src/drivers/media/test-drivers/vim2m.js";
import { vividProbe } from "../../src/drivers/media/test-drivers/vivid/vivid.js";
import { Kernel, type KernelOptions } from "../../src/kernel/kernel.js";
import { SimUapi } from "../../src/uapi/sim.js";
import { type Capability, openVgem } from "./suite.js";
import { openVim2m } from "./vim2m-cases.js";
import { openVivid } from "./vivid-cases.js";

/** Everything the simulator models (vgem and vivid through {@link makeSimUapi}), hugetlb memfds included. */
export const SIM_CAPABILITIES: readonly Capability[] = [
  "system-heap",
  "udmabuf",
  "sw_sync",
  "memfd",
  "hugetlb",
  "fence-deadline",
  "vgem",
  "vivid",
  "vim2m",
];

/**
 * A process on a fresh simulated kernel with vgem at /dev/dri/card0 and vivid at
 * /dev/video0 (capture) and /dev/video1 (output), as the VM has them after `insmod vgem`
 * and `insmod vivid n_devs=1 allocators=1`. Each is probed (vgem_init, vivid_probe) only
 * when the kernel did not register one at boot itself. vivid gets the VM's module
 * parameters: dma-contig, and so no USERPTR (vivid_create_queue offers USERPTR only
 * with vmalloc), cache_hints=0.
 */
export function makeSimUapi(options: KernelOptions = {}): SimUapi {
  const k = new Kernel(options);
  const u = new SimUapi(k);
  const vgem = openVgem(u);
  if (vgem >= 0) u.close(vgem);
  else vgemProbe(k);
  const vivid = openVivid(u);
  if (vivid >= 0) u.close(vivid);
  else vividProbe(k, { allocator: "dma-contig", userptr: false });
  // vim2m as Linux's: its formats, limits and computation (vim2m-linux.ts).
  const m2m = openVim2m(u);
  if (m2m >= 0) u.close(m2m);
  else vim2mProbe(k, { formats: "linux" });
  return u;
}
