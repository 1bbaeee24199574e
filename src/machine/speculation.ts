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
  /**
   * Device names, indexed by the low 20 bits of the note each fill leaves in its cache
   * slot (fill epoch * 2^20 + device index, `CpuCache.prefetchNoteOf`). A line can be
   * explained while it is still cached with that fill epoch: a line that left the cache
   * comes back with a later epoch (every other fill, store and write-back takes the
   * current one), so the note of its slot names an older epoch. One number per slot, no
   * table to prune, no object per fill.
   */
  readonly #devices: string[] = [];
  /** The lines each write fills, drawn before any fill (scratch, reused). */
  #draws = new Float64Array(0);
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
    const prng = this.#prng;
    if (prng.nextU32() / 2 ** 32 < want - n) n++;
    if (n === 0) return;
    let device = this.#devices.indexOf(master.name);
    if (device < 0) device = this.#devices.push(master.name) - 1;
    const cache = m.cache;
    // Filled as of just before this transfer: stale once its bytes land.
    const fill = epoch - 1;
    const note = fill * 0x100000 + device;
    // One draw per fill, in order (where each lands decides the replacement state), all
    // drawn first; then the fills in bulk, stopping to report each destroyed device
    // write where the fill that caused it is.
    if (this.#draws.length < n) this.#draws = new Float64Array(Math.max(n, 2 * this.#draws.length));
    const draws = this.#draws;
    const ramLine = first - m.memory.base / L;
    prng.drawBelow(draws, n, count, ramLine);
    if (!m.memory.contains(first * L, count * L)) {
      // Outside RAM: the line-by-line hook raises the bus error where it did.
      for (let k = 0; k < n; k++) {
        if (!cache.prefetch((draws[k]! - ramLine + first) * L, fill, note)) continue;
        this.fills++;
        this.#reportLost();
      }
      return;
    }
    const fills = cache.counters.fills;
    for (let k = 0; k < n; ) {
      k = cache.prefetchLines(draws, k, n, fill, note, ramLine, ramLine + count - 1);
      this.#reportLost();
    }
    this.fills += cache.counters.fills - fills;
  }

  #reportLost(): void {
    const lost = this.#m.cache.findings.lostWrite;
    if (lost !== undefined) this.#m.cpu.reportLostWrite(lost.phys, lost.lines, lost.epoch);
  }

  /** A stale CPU read whose first stale line is still the one filled speculatively. */
  #explain(v: ViolationInput): { message: string; hint: string } | undefined {
    if (v.kind !== "stale-cpu-read" || v.phys < 0) return undefined;
    const cache = this.#m.cache;
    const at = Math.floor(v.phys / cache.line) * cache.line;
    const value = cache.prefetchNoteOf(at);
    if (value === undefined || cache.fillEpochOf(at) !== Math.floor(value / 0x100000))
      return undefined;
    return {
      message: `the CPU fetched the line speculatively while ${this.#devices[value % 0x100000]} wrote the buffer, so an invalidate before the DMA could not help`,
      hint: "invalidate after the DMA as well as before it (arm64's rule): dma_sync_*_for_cpu() or dma_unmap_*() once the device is done, before the CPU reads (arch_sync_dma_for_cpu, arch/arm64/mm/dma-mapping.c)",
    };
  }
}
