/**
 * A userspace process as the kernel sees it (struct task_struct with its files_struct
 * and mm): an fd table, ordinary memory for ioctl arguments, and the mmaps of device
 * buffers. The methods are the system calls; errors are KernelError with Linux's errno.
 */

import { isDmaBufFile } from "../dma-buf/dma-buf.js";
import { ensure, KernelError } from "../errno.js";
import {
  F_ADD_SEALS,
  F_GET_SEALS,
  F_GETFD,
  F_GETFL,
  F_SETFD,
  F_SETFL,
  FD_CLOEXEC,
  MAP_PRIVATE,
  MAP_SHARED,
  MFD_CLOEXEC,
  O_ACCMODE,
  O_APPEND,
  O_CLOEXEC,
  O_DIRECT,
  O_LARGEFILE,
  O_NOATIME,
  O_NONBLOCK,
  O_RDONLY,
  O_WRONLY,
  POLLERR,
  POLLHUP,
  POLLIN,
  POLLNVAL,
  POLLOUT,
  PROT_READ,
  PROT_WRITE,
} from "../include/uapi/fcntl.js";
import { readBuffer } from "../lib/bytes.js";
import type { CpuMapping } from "../machine/cpu.js";
import type { Machine } from "../machine/machine.js";
import { PAGE_SIZE } from "../machine/memory.js";
import { SimulationError } from "../machine/outcome.js";
import { FdTable } from "../vfs/fdtable.js";
import type { Current, File, Vma } from "../vfs/file.js";
import { memfdCreate, memfdFcntl, shmemTruncate, shmemWrite } from "../vfs/memfd.js";
import { parseFdinfoPath, procFdinfoOpen } from "../vfs/proc-fd.js";
import { UserMemory } from "./user-memory.js";

/** What build_open_flags/do_dentry_open keep out of f_flags: O_CLOEXEC, O_CREAT, O_EXCL, O_NOCTTY, O_TRUNC. */
const OPEN_STRIPPED_FLAGS = O_CLOEXEC | 0o100 | 0o200 | 0o400 | 0o1000;
/** fs/fcntl.c SETFL_MASK: the flags F_SETFL may change. */
const SETFL_MASK = O_APPEND | O_NONBLOCK | O_DIRECT | O_NOATIME;

/** What a process needs from its kernel. */
export interface ProcessHost {
  readonly machine: Machine;
  /** Opens a device node; ENOENT if there is none at `path`. */
  openPath(path: string, flags: number): File;
  /** Called when the process exits. */
  reap(p: Process): void;
}

/** A live mmap of a file. */
export interface UserMapping {
  readonly addr: number;
  readonly length: number;
  readonly prot: number;
  /**
   * Loads `len` bytes at `offset` through the mapping (with its cache attribute): a new
   * array, or the first `len` bytes of `into`.
   */
  read(offset: number, len: number, into?: Uint8Array): Uint8Array;
  /** Stores `data` at `offset`. SIGSEGV without PROT_WRITE. */
  write(offset: number, data: Uint8Array): void;
  /** memset. */
  fill(offset: number, len: number, value: number): void;
}

interface Mmap extends UserMapping {
  readonly vma: Vma;
  /** The CPU mapping and checker region; a copy-on-write fault replaces both. */
  cpu: CpuMapping;
  region: number;
  /** Anonymous pages a private writable mapping copied on write (page index → phys). */
  readonly cowPages: Map<number, number>;
}

/** What userspace should do, appended to the kernel-level hint, for CPU access through a dma-buf mmap. */
const DMA_BUF_MMAP_NOTES = {
  "stale-cpu-read":
    "from userspace: DMA_BUF_IOCTL_SYNC(DMA_BUF_SYNC_START|DMA_BUF_SYNC_READ) before reading the mmap makes the exporter do it",
  "stale-device-read":
    "from userspace: DMA_BUF_IOCTL_SYNC(DMA_BUF_SYNC_END|DMA_BUF_SYNC_WRITE) after writing the mmap makes the exporter do it",
  "cpu-access-device-owned":
    "from userspace: bracket mmap access with DMA_BUF_IOCTL_SYNC START … END",
  "lost-device-write":
    "from userspace: bracket CPU writes with DMA_BUF_IOCTL_SYNC START … END so they reach memory before the device writes",
} as const;

export interface PollFd {
  readonly fd: number;
  readonly events: number;
}

/** The userspace signal a bad access gets (SIGSEGV / SIGBUS): not an errno. */
export class UserFault extends Error {
  constructor(
    readonly signal: "SIGSEGV" | "SIGBUS",
    why: string,
  ) {
    super(`${signal}: ${why}`);
  }
}

export class Process implements Current {
  readonly files = new FdTable();
  readonly memory = new UserMemory();
  readonly #maps = new Map<number, Mmap>();
  #nextMap = 0x7f00_0000_0000;
  #alive = true;

  constructor(
    readonly host: ProcessHost,
    readonly pid: number,
    readonly comm: string,
  ) {}

  get alive(): boolean {
    return this.#alive;
  }

  // Current: user memory access for ioctl arguments.
  copyFromUser(addr: number, len: number): Uint8Array {
    return this.memory.copyFromUser(addr, len);
  }
  copyToUser(addr: number, bytes: Uint8Array): void {
    this.memory.copyToUser(addr, bytes);
  }
  strndupUser(addr: number, max: number): string {
    return this.memory.strndupUser(addr, max);
  }

  #checkAlive(): void {
    if (!this.#alive)
      throw new SimulationError(
        "process-exited",
        `process ${this.pid} (${this.comm}) has exited: a dead task makes no system calls`,
      );
  }

  /** open(2) of a device node. */
  open(path: string, flags: number): number {
    this.#checkAlive();
    const file = this.#openProc(path, flags) ?? this.host.openPath(path, flags);
    // f_flags as do_sys_open leaves them: O_CLOEXEC and the creation flags stripped,
    // O_LARGEFILE forced on 64-bit (force_o_largefile()); pread/pwrite allowed.
    file.flags = (flags & ~OPEN_STRIPPED_FLAGS) | O_LARGEFILE;
    file.positional = !file.nonseekable;
    try {
      return this.files.install(file, (flags & O_CLOEXEC) !== 0);
    } catch (e) {
      file.put();
      throw e;
    }
  }

  /** /proc/self/fdinfo/<fd> and /proc/<own pid>/fdinfo/<fd>; undefined for other paths. */
  #openProc(path: string, flags: number): File | undefined {
    const p = parseFdinfoPath(path);
    if (p === undefined) return undefined;
    if (p.pid !== "self" && p.pid !== this.pid)
      throw new KernelError("ENOENT", `${path}: only the process's own /proc entries are modelled`);
    return procFdinfoOpen(path, flags, this.files.has(p.fd), () => {
      if (!this.files.has(p.fd)) throw new KernelError("ENOENT", `${path}: fd ${p.fd} was closed`);
      return this.fdinfo(p.fd);
    });
  }

  /** close(2). */
  close(fd: number): void {
    this.#checkAlive();
    this.files.close(fd);
  }

  /** dup(2). */
  dup(fd: number): number {
    this.#checkAlive();
    return this.files.dup(fd);
  }

  /** The fd of the ioctl in progress (Current.ioctlFd). */
  ioctlFd: number | undefined = undefined;

  /** ioctl(2): ENOTTY when the file has no ioctl. */
  ioctl(fd: number, cmd: number, arg: number): number {
    this.#checkAlive();
    const file = this.files.fget(fd);
    const outer = this.ioctlFd;
    this.ioctlFd = fd;
    try {
      if (file.ops.unlockedIoctl === undefined) {
        throw new KernelError("ENOTTY", `${file.path} has no ioctls`);
      }
      return file.ops.unlockedIoctl(file, cmd >>> 0, arg, this);
    } finally {
      this.ioctlFd = outer;
      file.put();
    }
  }

  /** lseek(2): ESPIPE for files that cannot seek. */
  lseek(fd: number, offset: number, whence: number): number {
    this.#checkAlive();
    const file = this.files.lookup(fd);
    if (file.ops.llseek === undefined)
      throw new KernelError("ESPIPE", `${file.path} is not seekable`);
    return file.ops.llseek(file, offset, whence);
  }

  /**
   * mmap(2) of a file: the usual checks of do_mmap (length, alignment, MAP_SHARED or
   * MAP_PRIVATE, access mode), then the driver's mmap decides the pages and their
   * cache attribute.
   */
  mmap(length: number, prot: number, flags: number, fd: number, offset: number): UserMapping {
    this.#checkAlive();
    ensure(Number.isInteger(length) && length > 0, "EINVAL", `mmap: length ${length}`);
    ensure(
      offset % PAGE_SIZE === 0 && offset >= 0,
      "EINVAL",
      `mmap: offset ${offset} is not page aligned`,
    );
    const type = flags & (MAP_SHARED | MAP_PRIVATE);
    ensure(
      type === MAP_SHARED || type === MAP_PRIVATE,
      "EINVAL",
      "mmap: need exactly one of MAP_SHARED, MAP_PRIVATE",
    );
    const file = this.files.lookup(fd);
    if (file.ops.mmap === undefined)
      throw new KernelError("ENODEV", `mmap: ${file.path} cannot be mapped`);
    const acc = file.flags & O_ACCMODE;
    if (acc === O_WRONLY) throw new KernelError("EACCES", "mmap: file opened write-only");
    if (type === MAP_SHARED && prot & PROT_WRITE && acc === O_RDONLY) {
      throw new KernelError(
        "EACCES",
        "mmap: MAP_SHARED with PROT_WRITE on a file opened read-only",
      );
    }
    const vma: Vma = {
      length,
      pgoff: offset / PAGE_SIZE,
      prot,
      shared: type === MAP_SHARED,
      ranges: [],
      attr: "cached",
      file: file.get(),
    };
    try {
      file.ops.mmap(file, vma);
    } catch (e) {
      vma.file.put();
      throw e;
    }
    const m = this.host.machine;
    const addr = this.#nextMap;
    this.#nextMap += Math.ceil(length / PAGE_SIZE) * PAGE_SIZE + PAGE_SIZE;
    const label = `${this.comm}[${this.pid}] mmap of ${vma.file.path} fd ${fd}`;
    const mapped = vma.ranges.reduce((n, r) => n + r.len, 0);
    const notes = vma.file.ops.name === "dmabuf" ? DMA_BUF_MMAP_NOTES : {};
    // A dma-buf's fences: the CPU must not touch it before the jobs on it are done.
    const dmabuf = isDmaBufFile(vma.file) ? vma.file.privateData : undefined;
    const bounds = (offset2: number, len: number): void => {
      if (offset2 < 0 || offset2 + len > length) {
        throw new UserFault("SIGSEGV", `access ${offset2}+${len} outside a ${length}-byte mapping`);
      }
      if (offset2 + len > mapped)
        throw new UserFault("SIGBUS", `access ${offset2}+${len} beyond the backing pages`);
    };
    const map: Mmap = {
      addr,
      length,
      prot,
      vma,
      cpu: m.cpu.map(vma.ranges, vma.attr, label),
      region: m.violations.register(label, vma.ranges, {}, notes),
      cowPages: new Map(),
      read: (o, len, into) => {
        bounds(o, len);
        if ((prot & PROT_READ) === 0)
          throw new UserFault("SIGSEGV", "read from a mapping without PROT_READ");
        dmabuf?.checkCpuAccessFences(false, label);
        return m.cpu.read(map.cpu, o, len, readBuffer(into, len));
      },
      write: (o, data) => {
        bounds(o, data.length);
        if ((prot & PROT_WRITE) === 0)
          throw new UserFault("SIGSEGV", "write to a mapping without PROT_WRITE");
        this.#breakCow(map, o, data.length, label, notes);
        dmabuf?.checkCpuAccessFences(true, label);
        m.cpu.write(map.cpu, o, data);
      },
      fill: (o, len, value) => {
        bounds(o, len);
        if ((prot & PROT_WRITE) === 0)
          throw new UserFault("SIGSEGV", "write to a mapping without PROT_WRITE");
        this.#breakCow(map, o, len, label, notes);
        dmabuf?.checkCpuAccessFences(true, label);
        m.cpu.fill(map.cpu, o, len, value);
      },
    };
    this.#maps.set(addr, map);
    return map;
  }

  /**
   * The write fault on a MAP_PRIVATE mapping (do_wp_page -> wp_page_copy): each page of
   * [o, o+len) not yet copied gets an anonymous page holding what the mapping showed, and
   * the mapping points at it from then on, so private writes never reach the file and the
   * file's later writes no longer show in that page.
   */
  #breakCow(
    map: Mmap,
    o: number,
    len: number,
    label: string,
    notes: Parameters<Machine["violations"]["register"]>[3],
  ): void {
    if (map.vma.shared || len <= 0) return;
    const m = this.host.machine;
    const first = Math.floor(o / PAGE_SIZE);
    const last = Math.floor((o + len - 1) / PAGE_SIZE);
    let changed = false;
    for (let p = first; p <= last; p++) {
      if (map.cowPages.has(p)) continue;
      const old = m.cpu.read(map.cpu, p * PAGE_SIZE, PAGE_SIZE);
      const phys = m.pages.alloc(0) * PAGE_SIZE;
      m.cpu.writePhys(phys, old);
      map.cowPages.set(p, phys);
      changed = true;
    }
    if (!changed) return;
    const pages: number[] = [];
    for (const r of map.vma.ranges)
      for (let x = 0; x < r.len; x += PAGE_SIZE) pages.push(r.phys + x);
    const ranges: { phys: number; len: number }[] = [];
    pages.forEach((phys0, i) => {
      const phys = map.cowPages.get(i) ?? phys0;
      const prev = ranges[ranges.length - 1];
      if (prev !== undefined && prev.phys + prev.len === phys) prev.len += PAGE_SIZE;
      else ranges.push({ phys, len: PAGE_SIZE });
    });
    m.cpu.unmap(map.cpu);
    m.violations.unregister(map.region);
    map.cpu = m.cpu.map(ranges, map.vma.attr, label);
    map.region = m.violations.register(label, ranges, {}, notes);
  }

  /**
   * pin_user_pages() for drivers (V4L2 USERPTR): the physical page of every page in
   * [addr, addr+len), which must lie in one mmap of this process; the mapping's file is
   * held until `unpin`, so the pages outlive a munmap. EFAULT otherwise (ordinary
   * malloc memory is host memory in the model: no device can reach it).
   */
  pinUserPages(addr: number, len: number, write: boolean): { pages: number[]; unpin(): void } {
    this.#checkAlive();
    const m = [...this.#maps.values()].find((x) => addr >= x.addr && addr < x.addr + x.length);
    if (m === undefined || len <= 0 || addr + len > m.addr + m.length)
      throw new KernelError(
        "EFAULT",
        `pin_user_pages: 0x${addr.toString(16)}+${len} is not mapped`,
      );
    if (write && (m.prot & PROT_WRITE) === 0)
      throw new KernelError("EFAULT", "pin_user_pages: FOLL_WRITE on a mapping without PROT_WRITE");
    const first = Math.floor((addr - m.addr) / PAGE_SIZE);
    const last = Math.floor((addr + len - 1 - m.addr) / PAGE_SIZE);
    const pages: number[] = [];
    for (let p = first; p <= last; p++) {
      let off = p * PAGE_SIZE;
      let phys = -1;
      for (const r of m.vma.ranges) {
        if (off < r.len) {
          phys = r.phys + off;
          break;
        }
        off -= r.len;
      }
      phys = m.cowPages.get(p) ?? phys;
      if (phys < 0)
        throw new KernelError(
          "EFAULT",
          `pin_user_pages: page ${p} of the mapping has no backing page`,
        );
      pages.push(phys);
    }
    const file = m.vma.file.get();
    let pinned = true;
    return {
      pages,
      unpin: () => {
        if (!pinned) return;
        pinned = false;
        file.put();
      },
    };
  }

  /**
   * munmap(2) of a whole mapping; the mapping's file reference goes with it. A range
   * with nothing mapped is not an error in Linux (do_vmi_munmap finds no VMA, returns 0).
   */
  munmap(map: UserMapping): void {
    const mm = this.#maps.get(map.addr);
    if (mm === undefined) return;
    this.#maps.delete(map.addr);
    this.host.machine.cpu.unmap(mm.cpu);
    this.host.machine.violations.unregister(mm.region);
    mm.vma.close?.();
    mm.vma.file.put();
    for (const phys of mm.cowPages.values()) this.host.machine.pages.free(phys / PAGE_SIZE);
  }

  get mappings(): readonly UserMapping[] {
    return [...this.#maps.values()];
  }

  /**
   * poll(2): readiness of each fd; waits on the virtual clock up to `timeoutMs`
   * (negative: forever) when nothing is ready. POLLNVAL for fds that are not open.
   */
  poll(fds: readonly PollFd[], timeoutMs: number): number[] {
    this.#checkAlive();
    const check = (): number[] =>
      fds.map(({ fd, events }) => {
        if (!this.files.has(fd)) return POLLNVAL;
        const file = this.files.lookup(fd);
        // POLLERR/POLLHUP/POLLNVAL are reported unasked; files without poll are
        // always readable and writable (DEFAULT_POLLMASK).
        return file.ops.poll
          ? file.ops.poll(file, events) & (events | POLLERR | POLLHUP | POLLNVAL)
          : events & (POLLIN | POLLOUT);
      });
    let r = check();
    if (r.some((x) => x !== 0) || timeoutMs === 0) return r;
    const clock = this.host.machine.clock;
    const deadline = timeoutMs < 0 ? Number.POSITIVE_INFINITY : clock.now + timeoutMs * 1e6;
    const ok = clock.runUntilCondition(() => check().some((x) => x !== 0), deadline);
    if (!ok && timeoutMs < 0) {
      throw new SimulationError(
        "would-block-forever",
        `poll by ${this.comm}[${this.pid}] would block forever: nothing scheduled can ever make an fd ready`,
      );
    }
    if (!ok && clock.now < deadline) clock.runUntil(deadline);
    r = check();
    return r;
  }

  /** memfd_create(2). */
  memfdCreate(name: string, flags: number): number {
    this.#checkAlive();
    const file = memfdCreate(this.host.machine, name, flags);
    return this.files.install(file, (flags & MFD_CLOEXEC) !== 0);
  }

  /** ftruncate(2) (memfds only). */
  ftruncate(fd: number, length: number): void {
    const file = this.files.lookup(fd);
    if (file.ops.name !== "memfd")
      throw new KernelError("EINVAL", `ftruncate: ${file.path} is not a regular file`);
    shmemTruncate(file, length);
  }

  /** read(2): EBADF without read access, EINVAL when the file has no read. */
  read(fd: number, len: number): Uint8Array {
    const file = this.files.lookup(fd);
    if ((file.flags & O_ACCMODE) === O_WRONLY)
      throw new KernelError("EBADF", `read: fd ${fd} is not open for reading`);
    if (file.ops.read === undefined)
      throw new KernelError("EINVAL", `read: ${file.path} does not support read`);
    return file.ops.read(file, len, this);
  }

  /** write(2): EBADF without write access, EINVAL when the file has no write. */
  write(fd: number, data: Uint8Array): number {
    const file = this.files.lookup(fd);
    if ((file.flags & O_ACCMODE) === O_RDONLY)
      throw new KernelError("EBADF", `write: fd ${fd} is not open for writing`);
    if (file.ops.write === undefined)
      throw new KernelError("EINVAL", `write: ${file.path} does not support write`);
    return file.ops.write(file, data, this);
  }

  /**
   * pwrite(2) (ksys_pwrite64, vfs_write): a negative offset is EINVAL before the fd is
   * looked at (and so is one that is not an integer, which no loff_t can be); a file
   * without FMODE_PWRITE (dma-buf, sync_file) is ESPIPE; one not open for writing EBADF;
   * one without a write method EINVAL. Only memfds have one here.
   */
  pwrite(fd: number, data: Uint8Array, offset: number): number {
    ensure(
      Number.isSafeInteger(offset) && offset >= 0,
      "EINVAL",
      `pwrite: offset ${offset} is not a non-negative integer`,
    );
    const file = this.files.lookup(fd);
    if (!file.positional)
      throw new KernelError("ESPIPE", `pwrite: ${file.path} has no file position (FMODE_PWRITE)`);
    if ((file.flags & O_ACCMODE) === O_RDONLY)
      throw new KernelError("EBADF", `pwrite: fd ${fd} is not open for writing`);
    if (file.ops.name !== "memfd")
      throw new KernelError("EINVAL", `pwrite: ${file.path} does not support write`);
    return shmemWrite(file, data, offset);
  }

  /**
   * fcntl(2) (fs/fcntl.c do_fcntl): F_GETFD/F_SETFD, F_GETFL/F_SETFL and the memfd seal
   * commands; any other command is EINVAL.
   */
  fcntl(fd: number, cmd: number, arg = 0): number {
    const file = this.files.lookup(fd);
    if (cmd === F_GETFD) return this.files.cloexec(fd) ? FD_CLOEXEC : 0;
    if (cmd === F_SETFD) {
      this.files.setCloexec(fd, (arg & FD_CLOEXEC) !== 0);
      return 0;
    }
    if (cmd === F_GETFL) return file.flags;
    if (cmd === F_SETFL) {
      // setfl(): O_DIRECT needs FMODE_CAN_ODIRECT, which none of the model's files has;
      // only the SETFL_MASK bits change.
      if ((arg & O_DIRECT) !== 0)
        throw new KernelError("EINVAL", `fcntl(F_SETFL): ${file.path} does not support O_DIRECT`);
      file.flags = (arg & SETFL_MASK) | (file.flags & ~SETFL_MASK);
      return 0;
    }
    if (cmd === F_ADD_SEALS || cmd === F_GET_SEALS) return memfdFcntl(file, cmd, arg);
    throw new KernelError("EINVAL", `fcntl: command ${cmd} is not modelled`);
  }

  /**
   * Passes `fd` to `to` as SCM_RIGHTS over a Unix socket does: the receiver gets a new
   * fd for the same open file.
   */
  sendFd(fd: number, to: Process): number {
    this.#checkAlive();
    const file = this.files.fget(fd);
    try {
      return to.files.install(file, false);
    } catch (e) {
      file.put();
      throw e;
    }
  }

  /** /proc/<pid>/fdinfo/<fd>. */
  fdinfo(fd: number): string {
    const file = this.files.lookup(fd);
    const flags = file.flags | (this.files.cloexec(fd) ? O_CLOEXEC : 0);
    // fs/proc/fd.c seq_show: "pos:\t%lli\nflags:\t0%o\nmnt_id:\t%i\nino:\t%lu\n".
    const head = `pos:\t${file.pos}\nflags:\t0${flags.toString(8)}\nmnt_id:\t${file.mntId}\nino:\t${file.ino}\n`;
    return head + (file.ops.showFdinfo?.(file) ?? "");
  }

  /** exit(2): unmaps everything and closes every fd. */
  exit(): void {
    if (!this.#alive) return;
    for (const m of [...this.#maps.values()]) this.munmap(m);
    this.files.closeAll();
    this.#alive = false;
    this.host.reap(this);
  }
}
