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
   * Line address -> the fill epoch given to it and the device whose write it raced, as an
   * open-addressed table in typed arrays (no object per fill). Only a line still cached
   * with that fill epoch can be explained, and a line that left the cache comes back with
   * a later epoch (fills take the current one), so entries for lines no longer holding
   * their speculative fill are dropped whenever the table fills: it stays bounded by what
   * the cache holds. Entry k is table[2k] (the line index, -1 when free) and table[2k+1]
   * (fill epoch * 2^20 + device index), side by side so a lookup touches one host line.
   */
  #table: Float64Array = new Float64Array(0);
  /** Entries in #table (it has room for #table.length / 2). */
  #count = 0;
  /** The table's array before the last rebuild, reused by the next one. */
  #spare: Float64Array | undefined;
  /** Device names, indexed by the low 20 bits of an entry's value. */
  readonly #devices: string[] = [];
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
    const findings = cache.findings;
    // Filled as of just before this transfer: stale once its bytes land.
    const fill = epoch - 1;
    // One draw per fill, in order: where each lands decides the replacement state.
    for (let k = 0; k < n; k++) {
      const li = first + (prng.nextU32() % count);
      if (!cache.prefetch(li * L, fill)) continue;
      this.fills++;
      this.#record(li, fill * 0x100000 + device);
      const lost = findings.lostWrite;
      if (lost !== undefined) m.cpu.reportLostWrite(lost.phys, lost.lines, lost.epoch);
    }
  }

  /** The table slot of line `li`: where it is, or the empty slot where it would go. */
  /** Where line `li`'s entry is in #table, or the free entry where it would go. */
  #slot(li: number): number {
    const table = this.#table;
    const mask = (table.length >>> 1) - 1;
    let k = Math.imul((li >>> 0) ^ ((li / 2 ** 32) >>> 0), 0x9e3779b1) & mask;
    for (;;) {
      const key = table[2 * k]!;
      if (key === li || key < 0) return 2 * k;
      k = (k + 1) & mask;
    }
  }

  #record(li: number, value: number): void {
    if ((this.#count + 1) * 4 > this.#table.length) this.#rebuild();
    const i = this.#slot(li);
    const table = this.#table;
    if (table[i]! < 0) {
      table[i] = li;
      this.#count++;
    }
    table[i + 1] = value;
  }

  /**
   * Makes room: once the table holds as many entries as the cache has slots, keeps only
   * the lines still cached with their speculative fill epoch; grows if still crowded.
   * Rehashes into the previous table's array when the size allows (no allocation per
   * rebuild: this runs every few thousand fills).
   */
  #rebuild(): void {
    const old = this.#table;
    const cache = this.#m.cache;
    const L = cache.line;
    let kept = this.#count;
    if (kept >= cache.slots) {
      for (let i = 0; i < old.length; i += 2) {
        const li = old[i]!;
        if (li >= 0 && cache.fillEpochOf(li * L) !== Math.floor(old[i + 1]! / 0x100000)) {
          old[i] = -1;
          kept--;
        }
      }
    }
    // At most a quarter full after a rebuild, so the next one is far off.
    let entries = Math.max(old.length >>> 1, 1024);
    while (kept * 4 > entries) entries *= 2;
    const spare = this.#spare;
    this.#table =
      spare !== undefined && spare.length === 2 * entries
        ? spare.fill(-1)
        : new Float64Array(2 * entries).fill(-1);
    this.#spare = old;
    this.#count = 0;
    for (let i = 0; i < old.length; i += 2) if (old[i]! >= 0) this.#record(old[i]!, old[i + 1]!);
  }

  /** A stale CPU read whose first stale line is still the one filled speculatively. */
  #explain(v: ViolationInput): { message: string; hint: string } | undefined {
    if (v.kind !== "stale-cpu-read" || v.phys < 0) return undefined;
    const L = this.#m.cache.line;
    const li = Math.floor(v.phys / L);
    if (this.#count === 0) return undefined;
    const i = this.#slot(li);
    const value = this.#table[i + 1]!;
    if (this.#table[i]! < 0) return undefined;
    if (this.#m.cache.fillEpochOf(li * L) !== Math.floor(value / 0x100000)) return undefined;
    return {
      message: `the CPU fetched the line speculatively while ${this.#devices[value % 0x100000]} wrote the buffer, so an invalidate before the DMA could not help`,
      hint: "invalidate after the DMA as well as before it (arm64's rule): dma_sync_*_for_cpu() or dma_unmap_*() once the device is done, before the CPU reads (arch_sync_dma_for_cpu, arch/arm64/mm/dma-mapping.c)",
    };
  }
}
