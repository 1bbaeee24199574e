/**
 * swiotlb: bounce buffers for devices that cannot reach a buffer's memory
 * (kernel/dma/swiotlb.c).
 *
 * The pool sits low in RAM, in IO_TLB_SIZE (2 KiB) slots. Mapping copies the original
 * buffer into the slots (always, whatever the direction, so that a device never sees
 * stale pool contents); syncing for the CPU and unmapping copy device-written data back
 * for DMA_FROM_DEVICE and DMA_BIDIRECTIONAL; syncing for the device copies CPU data in
 * for DMA_TO_DEVICE and DMA_BIDIRECTIONAL. The copies are CPU memcpy through the cached
 * linear map, so on a non-coherent machine the pool itself needs cache maintenance,
 * which dma-direct performs on the slot address.
 */

import { KernelError } from "../errno.js";
import type { Machine } from "../machine/machine.js";
import { IO_TLB_SIZE } from "../machine/machine.js";
import {
  DMA_BIDIRECTIONAL,
  DMA_FROM_DEVICE,
  DMA_TO_DEVICE,
  type DmaDirection,
} from "./direction.js";

/** IO_TLB_SEGSIZE: slots in one contiguous allocation at most (128 x 2 KiB = 256 KiB). */
export const IO_TLB_SEGSIZE = 128;

interface BounceSlot {
  readonly tlb: number;
  readonly orig: number;
  readonly size: number;
}

export class Swiotlb {
  readonly #slots = new Map<number, BounceSlot>();

  constructor(readonly m: Machine) {}

  /** is_swiotlb_buffer(). */
  isSwiotlbBuffer(addr: number): boolean {
    return this.m.swiotlb?.contains(addr) ?? false;
  }

  /** Largest single mapping (swiotlb_max_mapping_size). */
  get maxMappingSize(): number {
    return IO_TLB_SIZE * IO_TLB_SEGSIZE;
  }

  /** Bounce slots in use. */
  get activeMappings(): number {
    return this.#slots.size;
  }

  /** swiotlb_tbl_map_single(): allocate slots and copy the original data in. Returns the slot address. */
  map(orig: number, size: number): number {
    const pool = this.m.swiotlb;
    if (pool === undefined)
      throw new KernelError("ENOMEM", "swiotlb: no bounce pool on this machine");
    if (size > this.maxMappingSize) {
      throw new KernelError(
        "ENOMEM",
        `swiotlb: mapping of ${size} bytes exceeds the ${this.maxMappingSize}-byte maximum`,
      );
    }
    const tlb = pool.alloc(Math.ceil(size / IO_TLB_SIZE));
    this.#slots.set(tlb, { tlb, orig, size });
    this.#bounce(tlb, orig, size, DMA_TO_DEVICE);
    return tlb;
  }

  /** swiotlb_tbl_unmap_single(): copy back (unless skipped) and free the slots. */
  unmap(tlb: number, dir: DmaDirection, skipCpuSync: boolean): void {
    const s = this.#find(tlb);
    if (!skipCpuSync && (dir === DMA_FROM_DEVICE || dir === DMA_BIDIRECTIONAL)) {
      this.#bounce(s.tlb, s.orig, s.size, DMA_FROM_DEVICE);
    }
    this.#slots.delete(s.tlb);
    this.m.swiotlb!.free(s.tlb);
  }

  /** swiotlb_sync_single_for_cpu(). */
  syncForCpu(addr: number, size: number, dir: DmaDirection): void {
    if (dir !== DMA_FROM_DEVICE && dir !== DMA_BIDIRECTIONAL) return;
    const s = this.#find(addr);
    const off = addr - s.tlb;
    this.#bounce(addr, s.orig + off, Math.min(size, s.size - off), DMA_FROM_DEVICE);
  }

  /** swiotlb_sync_single_for_device(). */
  syncForDevice(addr: number, size: number, dir: DmaDirection): void {
    if (dir !== DMA_TO_DEVICE && dir !== DMA_BIDIRECTIONAL) return;
    const s = this.#find(addr);
    const off = addr - s.tlb;
    this.#bounce(addr, s.orig + off, Math.min(size, s.size - off), DMA_TO_DEVICE);
  }

  /** The original address a slot address stands for. */
  origOf(addr: number): number {
    const s = this.#find(addr);
    return s.orig + (addr - s.tlb);
  }

  #find(addr: number): BounceSlot {
    for (const s of this.#slots.values()) if (addr >= s.tlb && addr < s.tlb + s.size) return s;
    throw new KernelError("EINVAL", `swiotlb: 0x${addr.toString(16)} is not a live bounce slot`);
  }

  /** swiotlb_bounce(): copy between the original buffer and the slot. */
  #bounce(tlb: number, orig: number, size: number, dir: DmaDirection): void {
    if (dir === DMA_TO_DEVICE) this.m.cpu.copyPhys(tlb, orig, size, "bounce");
    else this.m.cpu.copyPhys(orig, tlb, size, "bounce");
  }
}
