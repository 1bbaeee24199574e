/**
 * A process's ordinary memory, where ioctl argument structs live
 * (arch copy_from_user/copy_to_user). Buffers shared with devices are not here: they
 * are dma-bufs in simulated physical memory, reached through mmap. Addresses are
 * handed out deterministically so the same program gives the same trace.
 */

import { KernelError } from "../errno.js";

interface Block {
  readonly addr: number;
  readonly bytes: Uint8Array;
}

export class UserMemory {
  readonly #blocks: Block[] = [];
  #next = 0x1000_0000;

  /** malloc(): zeroed bytes at a fresh user address. */
  alloc(len: number): { addr: number; bytes: Uint8Array } {
    const b: Block = { addr: this.#next, bytes: new Uint8Array(Math.max(1, len)) };
    this.#next += Math.ceil((len + 1) / 64) * 64 + 64; // a gap, so overruns fault
    this.#blocks.push(b);
    return b;
  }

  /** free(). */
  free(addr: number): void {
    const i = this.#blocks.findIndex((b) => b.addr === addr);
    if (i >= 0) this.#blocks.splice(i, 1);
  }

  #find(addr: number, len: number): { b: Block; off: number } {
    for (const b of this.#blocks) {
      if (addr >= b.addr && addr + len <= b.addr + b.bytes.length) return { b, off: addr - b.addr };
    }
    throw new KernelError("EFAULT", `bad user address 0x${addr.toString(16)} (+${len})`);
  }

  copyFromUser(addr: number, len: number): Uint8Array {
    const { b, off } = this.#find(addr, len);
    return b.bytes.slice(off, off + len);
  }

  copyToUser(addr: number, bytes: Uint8Array): void {
    const { b, off } = this.#find(addr, bytes.length);
    b.bytes.set(bytes, off);
  }

  /** strndup_user(): EINVAL when no NUL within `max` bytes, EFAULT when unmapped. */
  strndupUser(addr: number, max: number): string {
    const { b, off } = this.#find(addr, 1);
    const end = b.bytes.indexOf(0, off);
    if (end < 0 || end - off >= max) {
      if (end < 0 && b.bytes.length - off < max)
        throw new KernelError("EFAULT", "string runs off mapped memory");
      throw new KernelError("EINVAL", `string longer than ${max - 1} bytes`);
    }
    return new TextDecoder().decode(b.bytes.subarray(off, end));
  }
}
