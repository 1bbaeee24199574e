/**
 * The system bus as a DMA master sees it: device reads and writes of physical memory,
 * with snooping for coherent masters and the coherency checks for non-coherent ones.
 *
 * A coherent master's read is supplied dirty lines by the CPU cache and its write
 * invalidates cached copies. A non-coherent master sees only DRAM: reading memory the
 * CPU holds dirty returns old bytes, and writing leaves stale copies in the cache.
 */

import type { CpuCache } from "./cache.js";
import type { VirtualClock } from "./clock.js";
import type { CoherencyShadow } from "./coherency.js";
import type { PhysicalMemory } from "./memory.js";
import { RowNotes } from "./row-notes.js";
import type { ViolationLog } from "./violations.js";

export interface BusMaster {
  readonly name: string;
  readonly coherent: boolean;
}

export class SystemBus {
  constructor(
    readonly memory: PhysicalMemory,
    readonly cache: CpuCache,
    readonly shadow: CoherencyShadow,
    readonly log: ViolationLog,
    readonly clock: VirtualClock,
  ) {
    this.rowNotes = new RowNotes(memory);
  }

  /** Rows of DRAM known equal by the writes that put them there (src/machine/row-notes.ts). */
  readonly rowNotes: RowNotes;

  /**
   * Hazard hook: told of every master's read before it happens (the swiotlb checks
   * whether a bounce slot the device reads still matches the buffer it stands for).
   */
  readObserver: ((master: BusMaster, phys: number, len: number) => void) | undefined;

  /**
   * Hazard hook: told of every non-coherent master's write before its bytes land (the
   * CPU's speculative line fills during the transfer, src/machine/speculation.ts).
   */
  writeObserver:
    | ((master: BusMaster, phys: number, len: number, epoch: number) => void)
    | undefined;

  /**
   * A master reads `len` bytes of memory at `phys` into `dst[dstOff..]`. Without `dst`
   * (a non-coherent master re-reading memory it knows is unchanged) the checks run and
   * no byte moves.
   */
  read(
    master: BusMaster,
    phys: number,
    len: number,
    dst: Uint8Array | undefined,
    dstOff: number,
  ): void {
    this.readObserver?.(master, phys, len);
    if (dst !== undefined) this.memory.read(phys, len, dst, dstOff);
    else this.memory.check(phys, len);
    if (master.coherent) {
      if (dst === undefined) throw new Error(`${master.name}: a coherent read needs its bytes`);
      this.cache.snoopRead(phys, len, dst, dstOff);
      return;
    }
    if (!this.shadow.enabled) return;
    const dirty = this.cache.dirtyIn(phys, len);
    if (dirty !== undefined) {
      this.log.report(
        {
          kind: "stale-device-read",
          time: this.clock.now,
          agent: master.name,
          phys: dirty.phys,
          len: dirty.lines * this.cache.line,
          message: `${master.name} read memory while the CPU cache held ${dirty.lines} dirty line(s) of it: the device got the old bytes`,
        },
        "clean the CPU cache before the device reads: dma_map_*() or dma_sync_*_for_device() with DMA_TO_DEVICE or DMA_BIDIRECTIONAL after the CPU's last write",
      );
    }
  }

  /**
   * A master writes `len` bytes from `src[srcOff..]` to `phys`. `epoch` identifies the
   * transfer in the shadow state (one epoch per transfer, shared by its pieces).
   * `held`: the master knows the last `held` bytes to be what memory holds already, as
   * long as memory's writeSeq is still `heldSeq` when they land (nothing, not even this
   * write's snoops or observer, wrote memory since it knew): then they are not copied
   * (src/machine/row-notes.ts). Every check and observer runs the same.
   */
  write(
    master: BusMaster,
    phys: number,
    src: Uint8Array,
    srcOff: number,
    len: number,
    epoch: number,
    held = 0,
    heldSeq = -1,
  ): void {
    if (master.coherent) this.cache.snoopWrite(phys, len);
    else if (this.shadow.enabled) {
      const dirty = this.cache.dirtyIn(phys, len);
      if (dirty !== undefined) {
        this.log.report(
          {
            kind: "dirty-line-under-dma",
            time: this.clock.now,
            agent: master.name,
            phys: dirty.phys,
            len: dirty.lines * this.cache.line,
            message: `${master.name} wrote memory under ${dirty.lines} dirty CPU cache line(s): an eviction or clean will overwrite the device's data`,
          },
          "clean or invalidate the buffer before the device writes it: dma_map_*() or dma_sync_*_for_device() with DMA_FROM_DEVICE before starting the DMA",
        );
      }
    }
    if (!master.coherent) this.writeObserver?.(master, phys, len, epoch);
    const keep = held > 0 && this.memory.writeSeq === heldSeq ? held : 0;
    this.memory.write(phys, src, srcOff, len, keep);
    this.markWritten(phys, len, epoch);
  }

  /** Records in the shadow state that `[phys, phys+len)` was written behind the cache. */
  markWritten(phys: number, len: number, epoch: number): void {
    const L = this.cache.line;
    const first = Math.floor((phys - this.memory.base) / L);
    const last = Math.floor((phys + len - 1 - this.memory.base) / L);
    this.shadow.memEpoch.fillRange(first, last + 1, epoch);
  }
}
