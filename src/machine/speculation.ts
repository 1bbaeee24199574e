/**
 * Speculative line fills: while a non-coherent device writes a buffer, the CPU may pull
 * lines of that buffer into its cache on its own (a hardware prefetcher, a speculative
 * load through the cacheable linear map). Those lines hold the bytes from before the
 * device's write: stale once it lands.
 *
 * This is why arm64 invalidates after a DMA_FROM_DEVICE transfer as well as cleaning
 * before it (arch_sync_dma_for_cpu in arch/arm64/mm/dma-mapping.c), and why 32-bit ARM
 * invalidates at unmap too (v7_dma_unmap_area in arch/arm/mm/cache-v7.S; Russell King on
 * linux-arm-kernel, June 2015: "the CPU can speculatively prefetch"). Arnd Bergmann's
 * survey of the architectures (Message-ID 20230327121317.4081816-1-arnd@kernel.org)
 * names three models: no speculation, invalidate after, clean before + invalidate after;
 * RISC-V adopted arm64's in Linux 6.6. A driver that only invalidates before the DMA
 * (openmv/openmv PRs 1605 and 1610) is right on a CPU that never speculates and wrong on
 * these. x86's devices snoop; the profiles leave speculation off there.
 *
 * The model is deterministic: the profile's `speculativeFillRate` is the fraction of the
 * lines of each device write that get filled, chosen by a PRNG seeded from the profile.
 * Only lines of a streaming mapping the device owns are candidates (what the CPU may
 * legally not touch, and what the DMA API's invalidate-after protects); lines already
 * cached are left alone (they are stale anyway). The checker sees the fills as any other
 * stale line (`stale-cpu-read`); this module adds the cause and the fix to the report.
 */

import type { BusMaster } from "./bus.js";
import type { Machine } from "./machine.js";
import { Prng } from "./prng.js";
import type { ViolationInput } from "./violations.js";

/** What the CPU pulls in during one device write, and how the reports name it. */
export class SpeculativeFills {
  readonly #m: Machine;
  readonly #rate: number;
  readonly #prng: Prng;
  /** Line address -> the fill epoch given to it and the device whose write it raced. */
  readonly #filled = new Map<number, { fill: number; device: string }>();
  /** Lines filled speculatively so far. */
  fills = 0;

  constructor(m: Machine, rate: number) {
    this.#m = m;
    this.#rate = rate;
    this.#prng = new Prng((m.profile.seed * 0x9e3779b1) ^ 0x5bec);
  }

  /** Hooks the bus and the violation log (called once by the machine when the rate is > 0). */
  install(): void {
    this.#m.bus.writeObserver = (master, phys, len, epoch) =>
      this.#onDeviceWrite(master, phys, len, epoch);
    this.#m.violations.addExplainer((v) => this.#explain(v));
  }

  #onDeviceWrite(master: BusMaster, phys: number, len: number, epoch: number): void {
    const m = this.#m;
    const L = m.cache.line;
    // Whole lines of the write only: an edge line is shared with other data (another hazard).
    const first = Math.ceil(phys / L);
    const end = Math.floor((phys + len) / L);
    const count = end - first;
    if (count <= 0) return;
    if (m.ownership.conflict(phys, len, true) === undefined) return;
    const want = count * this.#rate;
    let n = Math.floor(want);
    if (this.#prng.nextU32() / 2 ** 32 < want - n) n++;
    for (let k = 0; k < n; k++) {
      const at = (first + this.#prng.below(count)) * L;
      // Filled as of just before this transfer: stale once its bytes land.
      if (!m.cache.prefetch(at, epoch - 1)) continue;
      this.fills++;
      this.#filled.set(at, { fill: epoch - 1, device: master.name });
      const lost = m.cache.findings.lostWrite;
      if (lost !== undefined) m.cpu.reportLostWrite(lost.phys, lost.lines, lost.epoch);
    }
  }

  /** A stale CPU read whose first stale line is still the one filled speculatively. */
  #explain(v: ViolationInput): { message: string; hint: string } | undefined {
    if (v.kind !== "stale-cpu-read" || v.phys < 0) return undefined;
    const L = this.#m.cache.line;
    const at = Math.floor(v.phys / L) * L;
    const rec = this.#filled.get(at);
    if (rec === undefined) return undefined;
    if (this.#m.cache.fillEpochOf(at) !== rec.fill) return undefined;
    return {
      message: `the CPU fetched the line speculatively while ${rec.device} wrote the buffer, so an invalidate before the DMA could not help`,
      hint: "invalidate after the DMA as well as before it (arm64's rule): dma_sync_*_for_cpu() or dma_unmap_*() once the device is done, before the CPU reads (arch_sync_dma_for_cpu, arch/arm64/mm/dma-mapping.c)",
    };
  }
}
