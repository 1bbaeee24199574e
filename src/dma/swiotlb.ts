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
 *
 * The checker side (what kernel/dma/swiotlb.c cannot see, and what raspberrypi/linux
 * issue 5727 took a week of tracing to find): a device that reads a slot whose bytes
 * no longer match the buffer it stands for got stale data (the CPU wrote the buffer
 * and nobody called dma_sync_*_for_device to copy it in), and a hand-over to the CPU
 * that leaves device-written slot bytes uncopied leaves the CPU the old buffer, and so
 * does a sync for the device whose copy in overwrites them. Only bytes count: a slot
 * line the device itself wrote since the copy in is its own data.
 */

import { KernelError } from "../errno.js";
import type { BusMaster } from "../machine/bus.js";
import { injectFault } from "../machine/fault-inject.js";
import type { Machine } from "../machine/machine.js";
import { IO_TLB_SIZE } from "../machine/machine.js";
import {
  DMA_BIDIRECTIONAL,
  DMA_FROM_DEVICE,
  DMA_TO_DEVICE,
  type DmaDirection,
  directionName,
} from "./direction.js";

/** IO_TLB_SEGSIZE: slots in one contiguous allocation at most (128 x 2 KiB = 256 KiB). */
export const IO_TLB_SEGSIZE = 128;

interface BounceSlot {
  readonly tlb: number;
  readonly orig: number;
  readonly size: number;
  readonly dir: DmaDirection;
  readonly dev: string;
  /** Shadow epoch of the last copy into the slot: slot lines written later are the device's. */
  copyEpoch: number;
  /**
   * The bytes the buffer and the slot last agreed on: set by every copy between them and
   * by each hand-over to the device (whatever the buffer held then was given to it). A
   * copy back over buffer bytes that moved on from these loses someone's write.
   */
  readonly agreed: Uint8Array;
  /** Shadow epoch of the last agreement: a device's DMA into the buffer after it is newer. */
  agreedEpoch: number;
}

const hex = (n: number): string => `0x${n.toString(16)}`;

export class Swiotlb {
  readonly #slots = new Map<number, BounceSlot>();

  constructor(readonly m: Machine) {
    if (m.swiotlb !== undefined)
      m.bus.readObserver = (master, phys, len) => this.#deviceRead(master, phys, len);
  }

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
  map(orig: number, size: number, dir: DmaDirection = DMA_BIDIRECTIONAL, dev = "device"): number {
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
    const slot: BounceSlot = {
      tlb,
      orig,
      size,
      dir,
      dev,
      copyEpoch: this.m.shadow.epoch,
      agreed: new Uint8Array(size),
      agreedEpoch: 0,
    };
    this.#slots.set(tlb, slot);
    this.#faulted("swiotlb_tbl_map_single", size, (n) => {
      this.#bounce(tlb, orig, n, DMA_TO_DEVICE);
      slot.copyEpoch = this.m.shadow.epoch;
    });
    this.#agree(slot, tlb, size, slot.orig);
    return tlb;
  }

  /** swiotlb_tbl_unmap_single(): copy back (unless skipped) and free the slots. */
  unmap(tlb: number, dir: DmaDirection, skipCpuSync: boolean): void {
    const s = this.#find(tlb);
    if (!skipCpuSync && (dir === DMA_FROM_DEVICE || dir === DMA_BIDIRECTIONAL)) {
      this.#checkCopyBackTarget(s, s.tlb, s.size, "dma_unmap_*()");
      this.#faulted("swiotlb_tbl_unmap_single", s.size, (n) =>
        this.#bounce(s.tlb, s.orig, n, DMA_FROM_DEVICE),
      );
      this.#agree(s, s.tlb, s.size, s.tlb);
      this.#checkCopiedBack(s, s.tlb, s.size, "dma_unmap_*()");
    }
    this.#slots.delete(s.tlb);
    this.m.swiotlb!.free(s.tlb);
  }

  /** swiotlb_sync_single_for_cpu(). */
  syncForCpu(addr: number, size: number, dir: DmaDirection): void {
    if (dir !== DMA_FROM_DEVICE && dir !== DMA_BIDIRECTIONAL) {
      // No copy for DMA_TO_DEVICE, but the buffer is the CPU's now: a sync with the wrong
      // direction over a slot the device wrote leaves its bytes behind (DMA-API debug
      // lets any direction through on a DMA_BIDIRECTIONAL mapping).
      const s = this.#slotAt(addr);
      if (s !== undefined) this.#checkLeftInSlot(s, addr, Math.min(size, s.tlb + s.size - addr));
      return;
    }
    const s = this.#find(addr);
    const off = addr - s.tlb;
    const len = Math.min(size, s.size - off);
    this.#checkCopyBackTarget(s, addr, len, "dma_sync_*_for_cpu()");
    this.#faulted("swiotlb_sync_single_for_cpu", len, (n) =>
      this.#bounce(addr, s.orig + off, n, DMA_FROM_DEVICE),
    );
    this.#agree(s, addr, len, addr);
    this.#checkCopiedBack(s, addr, len, "dma_sync_*_for_cpu()");
  }

  /** swiotlb_sync_single_for_device(). */
  syncForDevice(addr: number, size: number, dir: DmaDirection): void {
    const s0 = this.#slotAt(addr);
    if (dir === DMA_TO_DEVICE || dir === DMA_BIDIRECTIONAL) {
      const s = this.#find(addr);
      const off = addr - s.tlb;
      const len = Math.min(size, s.size - off);
      this.#faulted("swiotlb_sync_single_for_device", len, (n) => {
        this.#checkCopyInTarget(s, addr, n);
        this.#bounce(addr, s.orig + off, n, DMA_TO_DEVICE);
        if (n === s.size) s.copyEpoch = this.m.shadow.epoch;
      });
    }
    // A hand-over to the device: what the buffer holds now is given to it (for
    // DMA_FROM_DEVICE, to be overwritten), whether or not it is copied in. Agreed after
    // the copy in, which checks the slot against the previous agreement.
    if (s0 !== undefined)
      this.#agree(s0, addr, Math.min(size, s0.tlb + s0.size - addr), s0.orig + (addr - s0.tlb));
  }

  /** The original address a slot address stands for. */
  origOf(addr: number): number {
    const s = this.#find(addr);
    return s.orig + (addr - s.tlb);
  }

  /** Runs a bounce copy of `len` bytes through the fault injector (omit / shrink). */
  #faulted(call: string, len: number, copy: (n: number) => void): void {
    injectFault(this.m.faults, call, { bytes: len }, (a) =>
      copy(a === "shrink" ? Math.floor(len / 2) : len),
    );
  }

  /** The live slot containing `addr`, if any. */
  #slotAt(addr: number): BounceSlot | undefined {
    for (const s of this.#slots.values()) if (addr >= s.tlb && addr < s.tlb + s.size) return s;
    return undefined;
  }

  /**
   * Byte ranges of `[addr, addr+len)` in slot `s` that differ from the buffer as the CPU
   * sees it, split by whether the device wrote them since the last copy in.
   */
  #differences(s: BounceSlot, addr: number, len: number): { stale: number; device: number } {
    const L = this.m.cache.line;
    const slotBytes = new Uint8Array(len);
    const origBytes = new Uint8Array(len);
    this.m.cache.peek(addr, len, slotBytes);
    this.m.cache.peek(s.orig + (addr - s.tlb), len, origBytes);
    const base = this.m.memory.base;
    let stale = 0;
    let device = 0;
    for (let i = 0; i < len; i++) {
      if (slotBytes[i] === origBytes[i]) continue;
      const li = Math.floor((addr + i - base) / L);
      if (this.m.shadow.memEpoch.get(li) > s.copyEpoch) device++;
      else stale++;
    }
    return { stale, device };
  }

  /** A device reads memory: if it is a bounce slot the buffer has moved on from, report the stale read. */
  #deviceRead(master: BusMaster, phys: number, len: number): void {
    if (!this.m.shadow.enabled || this.#slots.size === 0 || !this.isSwiotlbBuffer(phys)) return;
    const s = this.#slotAt(phys);
    if (s === undefined || s.dir === DMA_FROM_DEVICE) return;
    const n = Math.min(len, s.tlb + s.size - phys);
    const { stale } = this.#differences(s, phys, n);
    if (stale === 0) return;
    this.m.violations.report(
      {
        kind: "stale-device-read",
        time: this.m.now,
        agent: master.name,
        phys,
        len: stale,
        message: `${master.name} read swiotlb bounce slot ${hex(s.tlb)} standing for ${hex(s.orig)} (${directionName(s.dir)}), and ${stale} byte(s) of it differ from the buffer: the CPU's data was never copied into the slot, so the device got the slot's old bytes`,
      },
      `call dma_sync_*_for_device() (or map the buffer) after the CPU's last write: for a bounced mapping that is what copies the buffer into the slot (raspberrypi/linux issue 5727: DRM never synced, the HVS scanned out the memset bounce buffer)`,
    );
  }

  /**
   * `agreed` from `from` (the slot or the buffer, as the CPU sees it), over the slot's
   * `[addr, addr+len)`.
   */
  #agree(s: BounceSlot, addr: number, len: number, from: number): void {
    if (!this.m.shadow.enabled || len <= 0) return;
    const off = addr - s.tlb;
    this.m.cache.peek(from, len, s.agreed.subarray(off, off + len));
    s.agreedEpoch = this.m.shadow.epoch;
  }

  /**
   * Before a copy back: buffer bytes that moved on since the buffer was last handed to
   * the device (or last agreed with the slot), which the copy is about to replace with
   * different slot bytes. A CPU write never handed over (no dma_sync_*_for_device or
   * DMA_BUF_IOCTL_SYNC(END) after it: a CPU write after the last DQBUF, lost at unmap),
   * or another device's DMA into a buffer this one keeps mapped bounced (the copy back at
   * unmap of a bounced DRM import puts the bounce slot over the frame): either way a
   * write is lost.
   */
  #checkCopyBackTarget(s: BounceSlot, addr: number, len: number, call: string): void {
    if (!this.m.shadow.enabled) return;
    const L = this.m.cache.line;
    const base = this.m.memory.base;
    const off = addr - s.tlb;
    const orig = s.orig + off;
    const slot = new Uint8Array(len);
    const buf = new Uint8Array(len);
    this.m.cache.peek(addr, len, slot);
    this.m.cache.peek(orig, len, buf);
    const mem = this.m.memory.slice(orig, len);
    let cpu = 0;
    let device = 0;
    let first = -1;
    let writer = "";
    let line = -1;
    let other: string | undefined;
    let stale = false;
    for (let i = 0; i < len; i++) {
      const li = Math.floor((orig + i - base) / L);
      if (li !== line) {
        line = li;
        // Memory written behind the cache since the agreement, by another agent than the
        // CPU: a device's DMA (newer than a line the CPU still caches, if any).
        const e = this.m.shadow.memEpoch.get(li);
        const w = e > s.agreedEpoch ? this.m.shadow.writer(e).agent : undefined;
        other = w !== undefined && w !== this.m.cpu.name ? w : undefined;
        stale = this.m.cache.probe(orig + i).stale;
      }
      const now = stale ? mem[i]! : buf[i]!;
      if (now === s.agreed[off + i] || slot[i] === now) continue;
      if (first < 0) first = i;
      if (other !== undefined) {
        device++;
        writer = other;
      } else cpu++;
    }
    if (cpu + device === 0) return;
    const what =
      device === 0
        ? "the CPU wrote after the buffer was last handed to the device"
        : `${writer} wrote after the slot was filled`;
    this.m.violations.report(
      {
        kind: device === 0 ? "lost-cpu-write" : "lost-device-write",
        time: this.m.now,
        agent: "cpu",
        phys: orig + first,
        len: cpu + device,
        message: `${call} copies ${s.dev}'s swiotlb slot ${hex(s.tlb)} (${directionName(s.dir)}) back over ${cpu + device} byte(s) of ${hex(s.orig)} that ${what}: those writes are lost`,
      },
      device === 0
        ? "hand the buffer to the device after the CPU's last write (dma_sync_*_for_device(), or DMA_BUF_IOCTL_SYNC(END) before VIDIOC_QBUF or close): for a bounced mapping that copies the CPU's data into the slot, so the copy back at dma_sync_*_for_cpu() or dma_unmap_*() brings it back instead of overwriting it"
        : `a buffer another device writes must not stay mapped bounced (DMA_FROM_DEVICE or DMA_BIDIRECTIONAL) for ${s.dev}: the copy back at dma_unmap_*() puts the bounce slot over what ${writer} wrote; allocate the buffer where ${s.dev} reaches it (a CMA heap: raspberrypi/linux issue 5727)`,
    );
  }

  /**
   * Before a copy in at dma_sync_*_for_device: slot bytes the device wrote since the slot
   * and the buffer last agreed (as memory holds them: the device writes behind the CPU's
   * cache), which the copy is about to replace with different buffer bytes. No
   * dma_sync_*_for_cpu() copied them back in between, so they never reach the buffer: the
   * copy in destroys the device's write and the next copy back brings the CPU the old
   * buffer (a CPU read after it gets stale bytes with no stale cache line to show for it).
   */
  #checkCopyInTarget(s: BounceSlot, addr: number, len: number): void {
    if (!this.m.shadow.enabled || len <= 0) return;
    const L = this.m.cache.line;
    const base = this.m.memory.base;
    const off = addr - s.tlb;
    const slot = this.m.memory.slice(addr, len);
    const buf = new Uint8Array(len);
    this.m.cache.peek(s.orig + off, len, buf);
    let lost = 0;
    let first = -1;
    for (let i = 0; i < len; i++) {
      if (slot[i] === s.agreed[off + i] || slot[i] === buf[i]) continue;
      if (this.m.shadow.memEpoch.get(Math.floor((addr + i - base) / L)) <= s.agreedEpoch) continue;
      if (first < 0) first = i;
      lost++;
    }
    if (lost === 0) return;
    this.m.violations.report(
      {
        kind: "lost-device-write",
        time: this.m.now,
        agent: "cpu",
        phys: addr + first,
        len: lost,
        message: `dma_sync_*_for_device() copies ${hex(s.orig)} into ${s.dev}'s swiotlb slot ${hex(s.tlb)} (${directionName(s.dir)}) over ${lost} byte(s) ${s.dev} wrote there that were never copied back: the device's write is lost, and the CPU sees the old buffer`,
      },
      `call dma_sync_*_for_cpu() (DMA_FROM_DEVICE or DMA_BIDIRECTIONAL) after ${s.dev}'s DMA and before handing the buffer back with dma_sync_*_for_device(): for a bounced mapping only that copies the slot back to the buffer (swiotlb_sync_single_for_cpu), and the sync for the device copies the buffer over the slot (swiotlb_sync_single_for_device, kernel/dma/swiotlb.c)`,
    );
  }

  /** After a hand-over to the CPU: device-written slot bytes the buffer did not receive. */
  #checkCopiedBack(s: BounceSlot, addr: number, len: number, call: string): void {
    if (!this.m.shadow.enabled) return;
    const { device } = this.#differences(s, addr, len);
    this.#reportLeftInSlot(
      s,
      addr,
      device,
      `${call} handed ${s.dev}'s bounced buffer ${hex(s.orig)} to the CPU, but ${device} byte(s) ${s.dev} wrote into swiotlb slot ${hex(s.tlb)} were never copied back: the CPU sees the old buffer`,
      `the CPU must get a bounced buffer back through dma_sync_*_for_cpu() or dma_unmap_*() with DMA_FROM_DEVICE or DMA_BIDIRECTIONAL over the whole range the device wrote (swiotlb_sync_single_for_cpu copies the slot back)`,
    );
  }

  /**
   * A hand-over to the CPU that copies nothing (dma_sync_*_for_cpu with DMA_TO_DEVICE):
   * bytes the device wrote into the slot since the last copy in (as memory holds them:
   * the CPU's cached copies of the slot are stale then) that the buffer does not have.
   */
  #checkLeftInSlot(s: BounceSlot, addr: number, len: number): void {
    if (!this.m.shadow.enabled) return;
    const L = this.m.cache.line;
    const base = this.m.memory.base;
    const slot = this.m.memory.slice(addr, len);
    const orig = new Uint8Array(len);
    this.m.cache.peek(s.orig + (addr - s.tlb), len, orig);
    let device = 0;
    for (let i = 0; i < len; i++)
      if (
        slot[i] !== orig[i] &&
        this.m.shadow.memEpoch.get(Math.floor((addr + i - base) / L)) > s.copyEpoch
      )
        device++;
    this.#reportLeftInSlot(
      s,
      addr,
      device,
      `dma_sync_*_for_cpu(DMA_TO_DEVICE) handed ${s.dev}'s bounced buffer ${hex(s.orig)} to the CPU without copying the swiotlb slot back: ${device} byte(s) ${s.dev} wrote into slot ${hex(s.tlb)} never reach the buffer, so the CPU sees the old one`,
      `sync for the CPU with the direction the device used (DMA_FROM_DEVICE or DMA_BIDIRECTIONAL): swiotlb_sync_single_for_cpu copies the slot back only then (kernel/dma/swiotlb.c), and DMA-API debug lets any direction through on a DMA_BIDIRECTIONAL mapping`,
    );
  }

  /** The CPU owns a bounced buffer while `device` bytes the device wrote are still only in the slot. */
  #reportLeftInSlot(
    s: BounceSlot,
    addr: number,
    device: number,
    message: string,
    hint: string,
  ): void {
    if (device === 0) return;
    this.m.violations.report(
      {
        kind: "stale-cpu-read",
        time: this.m.now,
        agent: "cpu",
        phys: s.orig + (addr - s.tlb),
        len: device,
        message,
      },
      hint,
    );
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
