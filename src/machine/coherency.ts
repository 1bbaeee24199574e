/**
 * Shadow state for the coherency checker: which agent last wrote each line of memory
 * behind the cache's back, and who owns each streaming DMA buffer right now.
 *
 * The cache keeps, per line it holds, the epoch at which it was filled (or last agreed
 * with memory). Memory keeps, per line, the epoch of the last write that did not go
 * through the CPU cache (a device DMA write, an uncached CPU store). A cached line whose
 * fill epoch is older than memory's is stale: reading it returns old bytes, writing it
 * back destroys newer data. Epochs index a log of writers so a report can say who wrote
 * and when. All per-line state is in lazily allocated typed arrays.
 */

import { ChunkedU32 } from "./chunked.js";
import type { Ns } from "./clock.js";
import type { PhysRange } from "./violations.js";

/** Who wrote memory behind the CPU cache, for a given epoch. */
export interface WriterRecord {
  readonly agent: string;
  readonly time: Ns;
  /** What the write was ("DMA write", "uncached store", ...). */
  readonly what: string;
}

export class CoherencyShadow {
  /** When false the machine moves bytes exactly the same way but checks nothing. */
  enabled = true;
  #epoch = 0;
  readonly #writers: WriterRecord[] = [{ agent: "boot", time: 0, what: "initial contents" }];
  /** Per RAM line (index relative to the base of RAM): epoch of the last non-cache write. */
  readonly memEpoch = new ChunkedU32();

  /** The most recent epoch issued (cache fills take this value). */
  get epoch(): number {
    return this.#epoch;
  }

  /** Opens a new write epoch for one transfer or store. */
  beginWrite(agent: string, time: Ns, what: string): number {
    this.#epoch++;
    this.#writers.push({ agent, time, what });
    return this.#epoch;
  }

  writer(epoch: number): WriterRecord {
    return this.#writers[epoch] ?? { agent: "?", time: 0, what: "?" };
  }
}

/** Who may touch a streaming mapping right now (Documentation/core-api/dma-api-howto.rst). */
export type StreamingOwner = "device" | "cpu";

export interface OwnedRegion {
  readonly id: number;
  readonly device: string;
  readonly label: string;
  /** Direction name, e.g. "DMA_FROM_DEVICE". */
  readonly direction: string;
  /** True for DMA_TO_DEVICE: the device only reads, so CPU reads do no harm. */
  readonly deviceReadsOnly: boolean;
  readonly ranges: readonly PhysRange[];
  owner: StreamingOwner;
  /** When `owner` last changed (a sequence number shared by all regions). */
  since: number;
  /** The call that gives the buffer back to the CPU, with its arguments. */
  readonly giveBackCall: string;
}

/**
 * Ownership of streaming mappings. Between dma_map_* (or dma_sync_*_for_device) and
 * dma_unmap_* (or dma_sync_*_for_cpu) the buffer belongs to the device and the CPU must
 * not touch it; the DMA API layer keeps this table up to date and the CPU checks it.
 *
 * When several devices map the same pages (a dma-buf with importers), the latest
 * hand-over of those pages decides: cache maintenance works on physical addresses, so a
 * dma_sync_*_for_cpu through any device's mapping gives the CPU a correct view until a
 * later sync for a device. This is how exporters keep one mapping per importer with
 * DMA_ATTR_SKIP_CPU_SYNC and do the CPU-access maintenance through their own
 * (vb2-dma-contig, the DRM GEM helpers).
 */
export class OwnershipTracker {
  readonly #regions = new Map<number, OwnedRegion>();
  #next = 1;

  #seq = 0;

  add(r: Omit<OwnedRegion, "id" | "owner" | "since">): OwnedRegion {
    const region: OwnedRegion = { ...r, id: this.#next++, owner: "device", since: ++this.#seq };
    this.#regions.set(region.id, region);
    return region;
  }

  /** A hand-over: dma_sync_*_for_cpu / _for_device (or unmap). */
  setOwner(region: OwnedRegion, owner: StreamingOwner): void {
    region.owner = owner;
    region.since = ++this.#seq;
  }

  remove(id: number): void {
    this.#regions.delete(id);
  }

  get size(): number {
    return this.#regions.size;
  }

  /** The first device-owned region that a CPU access to `[phys, phys+len)` conflicts with. */
  conflict(phys: number, len: number, write: boolean): OwnedRegion | undefined {
    if (this.#regions.size === 0) return undefined;
    const end = phys + len;
    const covers = (r: OwnedRegion): boolean =>
      r.ranges.some((range) => phys < range.phys + range.len && range.phys < end);
    let handedToCpu = 0;
    for (const r of this.#regions.values()) {
      if (r.owner === "cpu" && r.since > handedToCpu && covers(r)) handedToCpu = r.since;
    }
    for (const r of this.#regions.values()) {
      if (r.owner !== "device" || r.since < handedToCpu) continue;
      if (!write && r.deviceReadsOnly) continue;
      if (covers(r)) return r;
    }
    return undefined;
  }
}
