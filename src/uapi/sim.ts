/**
 * The simulated-kernel backend of the userspace interface: a process of a simulated
 * Kernel, its system calls delegated one to one.
 */

import type { Kernel } from "../kernel/kernel.js";
import type { Process } from "../kernel/process.js";
import type { Mapping, PollRequest, Uapi, UserBuffer } from "./uapi.js";

export class SimUapi implements Uapi {
  readonly backend = "sim";
  readonly process: Process;

  constructor(
    readonly kernel: Kernel,
    comm = "app",
  ) {
    this.process = kernel.spawn(comm);
  }

  open(path: string, flags: number): number {
    return this.process.open(path, flags);
  }
  close(fd: number): void {
    this.process.close(fd);
  }
  dup(fd: number): number {
    return this.process.dup(fd);
  }
  ioctl(fd: number, cmd: number, arg: number): number {
    return this.process.ioctl(fd, cmd, arg);
  }
  mmap(length: number, prot: number, flags: number, fd: number, offset: number): Mapping {
    return this.process.mmap(length, prot, flags, fd, offset);
  }
  /** munmap(2): unmapping a range with nothing mapped (twice, say) returns 0, as Linux. */
  munmap(map: Mapping): void {
    const m = this.process.mappings.find((x) => x.addr === map.addr);
    if (m !== undefined) this.process.munmap(m);
  }
  lseek(fd: number, offset: number, whence: number): number {
    return this.process.lseek(fd, offset, whence);
  }
  poll(fds: readonly PollRequest[], timeoutMs: number): number[] {
    return this.process.poll(fds, timeoutMs);
  }
  memfdCreate(name: string, flags: number): number {
    return this.process.memfdCreate(name, flags);
  }
  ftruncate(fd: number, length: number): void {
    this.process.ftruncate(fd, length);
  }
  pwrite(fd: number, data: Uint8Array, offset: number): number {
    return this.process.pwrite(fd, data, offset);
  }
  read(fd: number, len: number): Uint8Array {
    return this.process.read(fd, len);
  }
  write(fd: number, data: Uint8Array): number {
    return this.process.write(fd, data);
  }
  fcntl(fd: number, cmd: number, arg = 0): number {
    return this.process.fcntl(fd, cmd, arg);
  }
  readdir(path: string): string[] {
    return this.kernel.listDevnodes(path);
  }
  alloc(len: number): UserBuffer {
    return this.process.memory.alloc(len);
  }
  free(buf: UserBuffer): void {
    this.process.memory.free(buf.addr);
  }
  /** Passes an fd to another simulated process (SCM_RIGHTS). */
  sendFd(fd: number, to: SimUapi): number {
    return this.process.sendFd(fd, to.process);
  }
  /** exit(2). */
  exit(): void {
    this.process.exit();
  }
}
