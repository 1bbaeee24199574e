/**
 * DMA-API debugging (kernel/dma/debug.c, CONFIG_DMA_API_DEBUG): a table of every live
 * mapping and coherent allocation, checked on each unmap, sync and free, and at driver
 * unbind. Misuse is reported as an "api-misuse" violation with the kernel's own message,
 * so a report here reads like the warning a driver author would see in dmesg.
 */

import type { DmaDevice } from "../machine/device.js";
import type { Machine } from "../machine/machine.js";
import {
  DMA_BIDIRECTIONAL,
  DMA_FROM_DEVICE,
  DMA_TO_DEVICE,
  type DmaDirection,
  directionName,
} from "./direction.js";

/** How a mapping was made (enum map_err_types / dma_debug_type). */
export type DebugMapType = "single" | "page" | "scatter-gather" | "coherent";

export interface DebugEntry {
  readonly dev: DmaDevice;
  readonly type: DebugMapType;
  readonly devAddr: number;
  readonly size: number;
  readonly direction: DmaDirection;
  /** Physical address (CPU side) for messages. */
  readonly paddr: number;
  /** sg: entries passed to dma_map_sg and mapped segments returned. */
  readonly sgCallEnts: number;
  readonly sgMappedEnts: number;
  /** dma_mapping_error() was called on the handle (single/page only). */
  mapErrChecked: boolean;
}

const key = (dev: DmaDevice, addr: number): string => `${dev.name}@${addr}`;

export class DmaDebug {
  readonly #entries = new Map<string, DebugEntry>();
  /** Set false to turn the checks off (the mappings still work). */
  enabled = true;

  constructor(readonly m: Machine) {}

  get liveEntries(): number {
    return this.#entries.size;
  }

  entriesOf(dev: DmaDevice): DebugEntry[] {
    return [...this.#entries.values()].filter((e) => e.dev === dev);
  }

  /** debug_dma_map_page / debug_dma_map_sg / debug_dma_alloc_coherent. */
  add(e: DebugEntry): void {
    if (this.enabled && e.type !== "coherent" && e.direction !== DMA_TO_DEVICE) {
      // The kernel tracks active cachelines globally; we keep the check per device, so
      // that several importers of one dma-buf (a legitimate pattern) do not trip it. Two
      // mappings that share a cache line without sharing a byte trip it too
      // (active_cacheline_insert works on cacheline numbers).
      const L = this.m.cache.line;
      const first = Math.floor(e.paddr / L);
      const last = Math.floor((e.paddr + e.size - 1) / L);
      for (const o of this.#entries.values()) {
        if (o.dev !== e.dev || o.type === "coherent" || o.direction === DMA_TO_DEVICE) continue;
        if (first <= Math.floor((o.paddr + o.size - 1) / L) && Math.floor(o.paddr / L) <= last) {
          this.#err(
            e.dev,
            e.paddr,
            e.size,
            "cacheline tracking EEXIST, overlapping mappings aren't supported",
          );
          break;
        }
      }
    }
    this.#entries.set(key(e.dev, e.devAddr), e);
  }

  /** dma_mapping_error() was called for this handle. */
  mappingErrorChecked(dev: DmaDevice, addr: number): void {
    const e = this.#entries.get(key(dev, addr));
    if (e !== undefined) e.mapErrChecked = true;
  }

  /**
   * check_unmap(): the entry must exist and match in size, type and direction (and sg
   * entry count). Returns the entry (removed from the table) or undefined.
   */
  remove(
    dev: DmaDevice,
    type: DebugMapType,
    addr: number,
    size: number,
    dir: DmaDirection,
    sgCallEnts = 0,
  ): DebugEntry | undefined {
    const k = key(dev, addr);
    const e = this.#entries.get(k);
    if (e === undefined) {
      this.#err(
        dev,
        -1,
        size,
        `device driver tries to free DMA memory it has not allocated ${atAddress(addr)} [size=${size} bytes]`,
      );
      return undefined;
    }
    this.#entries.delete(k);
    if (e.size !== size) {
      this.#err(
        dev,
        e.paddr,
        size,
        `device driver frees DMA memory with different size ${atAddress(addr)} [map size=${e.size} bytes] [unmap size=${size} bytes]`,
      );
    }
    if (e.type !== type) {
      this.#err(
        dev,
        e.paddr,
        size,
        `device driver frees DMA memory with wrong function ${atAddress(addr)} [size=${size} bytes] [mapped as ${e.type}] [unmapped as ${type}]`,
      );
    }
    if (e.type === "scatter-gather" && sgCallEnts !== 0 && e.sgCallEnts !== sgCallEnts) {
      this.#err(
        dev,
        e.paddr,
        size,
        `device driver frees DMA sg list with different entry count [map count=${e.sgCallEnts}] [unmap count=${sgCallEnts}]`,
      );
    }
    if (e.direction !== dir) {
      this.#err(
        dev,
        e.paddr,
        size,
        `device driver frees DMA memory with different direction ${atAddress(addr)} [size=${size} bytes] [mapped with ${directionName(e.direction)}] [unmapped with ${directionName(dir)}]`,
      );
    }
    if ((e.type === "single" || e.type === "page") && !e.mapErrChecked) {
      this.#err(
        dev,
        e.paddr,
        size,
        `device driver failed to check map error ${atAddress(addr)} [size=${size} bytes] [mapped as ${e.type}]`,
      );
    }
    return e;
  }

  /**
   * check_sync(): the synced range must lie in a live mapping and match its direction.
   * The read-only / write-only rules are the kernel's exact conditions (kernel/dma/debug.c).
   */
  checkSync(dev: DmaDevice, addr: number, size: number, dir: DmaDirection, toCpu: boolean): void {
    if (!this.enabled) return;
    let e: DebugEntry | undefined;
    for (const o of this.#entries.values()) {
      if (
        o.dev === dev &&
        o.type !== "coherent" &&
        addr >= o.devAddr &&
        addr < o.devAddr + o.size
      ) {
        e = o;
        break;
      }
    }
    if (e === undefined) {
      this.#err(
        dev,
        -1,
        size,
        `device driver tries to sync DMA memory it has not allocated ${atAddress(addr)} [size=${size} bytes]`,
      );
      return;
    }
    if (addr + size > e.devAddr + e.size) {
      this.#err(
        dev,
        e.paddr,
        size,
        `device driver syncs DMA memory outside allocated range ${atAddress(e.devAddr)} [allocation size=${e.size} bytes] [sync offset+size=${addr - e.devAddr + size}]`,
      );
    }
    if (e.direction === DMA_BIDIRECTIONAL) return;
    if (e.direction !== dir) {
      this.#err(
        dev,
        e.paddr,
        size,
        `device driver syncs DMA memory with different direction ${atAddress(addr)} [size=${size} bytes] [mapped with ${directionName(e.direction)}] [synced with ${directionName(dir)}]`,
      );
    }
    if (toCpu && e.direction !== DMA_FROM_DEVICE && dir !== DMA_TO_DEVICE) {
      this.#err(
        dev,
        e.paddr,
        size,
        `device driver syncs device read-only DMA memory for cpu ${atAddress(addr)} [size=${size} bytes] [mapped with ${directionName(e.direction)}] [synced with ${directionName(dir)}]`,
      );
    }
    if (!toCpu && e.direction !== DMA_TO_DEVICE && dir !== DMA_FROM_DEVICE) {
      this.#err(
        dev,
        e.paddr,
        size,
        `device driver syncs device write-only DMA memory to device ${atAddress(addr)} [size=${size} bytes] [mapped with ${directionName(e.direction)}] [synced with ${directionName(dir)}]`,
      );
    }
  }

  /** debug_dma_free_coherent(): the handle must be a live coherent allocation of this size. */
  removeCoherent(dev: DmaDevice, addr: number, size: number): DebugEntry | undefined {
    return this.remove(dev, "coherent", addr, size, DMA_BIDIRECTIONAL);
  }

  /** dma_debug_device_change() at driver unbind: every mapping must be gone. */
  checkDeviceRelease(dev: DmaDevice): number {
    const left = this.entriesOf(dev);
    if (left.length > 0 && this.enabled) {
      const first = left[0]!;
      this.m.violations.report({
        kind: "leak",
        api: "dma-api",
        time: this.m.now,
        agent: dev.name,
        phys: first.paddr,
        len: left.reduce((n, e) => n + e.size, 0),
        message: `DMA-API: device driver has pending DMA allocations while released from device [count=${left.length}] One of leaked entries details: ${atAddress(first.devAddr)} [size=${first.size} bytes] [mapped with ${directionName(first.direction)}] [mapped as ${first.type}]`,
        hint: "unmap every streaming mapping (dma_unmap_*) and free every coherent buffer (dma_free_coherent) before the device goes away",
      });
    }
    return left.length;
  }

  #err(dev: DmaDevice, phys: number, len: number, message: string): void {
    if (!this.enabled) return;
    this.m.violations.report({
      kind: "api-misuse",
      api: "dma-api",
      time: this.m.now,
      agent: dev.name,
      phys,
      len,
      message: `DMA-API: ${message}`,
      hint: "see Documentation/core-api/dma-api.rst: unmap and sync with the handle, size and direction used to map",
    });
  }
}

/** A message's device address, formatted only when a message is made (not at every unmap or sync). */
function atAddress(addr: number): string {
  return `[device address=0x${hex(addr)}]`;
}

function hex(n: number): string {
  return n >= 0 ? n.toString(16).padStart(16, "0") : "ffffffffffffffff";
}
