/**
 * The file layer under every buffer fd, case by case against Linux 6.12: fcntl's file
 * flags (fs/fcntl.c), pwrite's argument checks (fs/read_write.c), memfd_create's flags
 * and every seal (mm/memfd.c, mm/shmem.c), hugetlb memfds (fs/hugetlbfs/inode.c),
 * MAP_PRIVATE copy-on-write, and /proc/self/fdinfo (fs/proc/fd.c). Each case names the
 * function it follows.
 */

import assert from "node:assert/strict";
import { DMA_BUF_SYNC_READ } from "../../src/include/uapi/dma-buf.js";
import {
  F_ADD_SEALS,
  F_GET_SEALS,
  F_GETFL,
  F_SEAL_EXEC,
  F_SEAL_FUTURE_WRITE,
  F_SEAL_GROW,
  F_SEAL_SEAL,
  F_SEAL_SHRINK,
  F_SEAL_WRITE,
  F_SETFL,
  MAP_PRIVATE,
  MAP_SHARED,
  MFD_ALLOW_SEALING,
  MFD_CLOEXEC,
  MFD_EXEC,
  MFD_HUGE_2MB,
  MFD_HUGETLB,
  MFD_NOEXEC_SEAL,
  O_APPEND,
  O_CLOEXEC,
  O_DIRECT,
  O_LARGEFILE,
  O_NONBLOCK,
  O_RDONLY,
  O_RDWR,
  PROT_READ,
  PROT_WRITE,
  SEEK_CUR,
  SEEK_END,
  SEEK_SET,
} from "../../src/include/uapi/fcntl.js";
import {
  dmaBufExportSyncFile,
  dmaBufSetName,
  dmaHeapAlloc,
  swSyncCreateFence,
} from "../../src/uapi/lib.js";
import type { Uapi } from "../../src/uapi/uapi.js";
import { expectErrno, type Fds, scoped } from "./case-helpers.js";
// Types only: suite.ts imports this module, so a value import back would be a cycle.
import type { ConformanceCase } from "./suite.js";

const PAGE = 4096;
const HPAGE = 2 * 1024 * 1024;
const SYSTEM_HEAP = "/dev/dma_heap/system";
const SW_SYNC_PATH = "/sys/kernel/debug/sync/sw_sync";

function memfd(u: Uapi, fds: Fds, size: number, flags = MFD_ALLOW_SEALING): number {
  const fd = fds.add(u.memfdCreate("conf", flags));
  if (size > 0) u.ftruncate(fd, size);
  return fd;
}

/** The text of /proc/self/fdinfo/<fd>, read through open(2) and read(2) as cat does. */
function fdinfoText(u: Uapi, fd: number): string {
  const f = u.open(`/proc/self/fdinfo/${fd}`, O_RDONLY);
  let text = "";
  try {
    for (;;) {
      const chunk = u.read(f, 4096);
      if (chunk.length === 0) break;
      text += new TextDecoder().decode(chunk);
    }
  } finally {
    u.close(f);
  }
  return text;
}

/** /proc/self/fdinfo/<fd> as its "key:\tvalue" lines. */
function fdinfo(u: Uapi, fd: number): Map<string, string> {
  const text = fdinfoText(u, fd);
  const out = new Map<string, string>();
  for (const line of text.split("\n")) {
    const i = line.indexOf(":");
    if (i > 0) out.set(line.slice(0, i), line.slice(i + 1).trim());
  }
  return out;
}

export const vfsCases: ConformanceCase[] = [
  {
    suite: "vfs",
    name: "fcntl(F_GETFL): open() adds O_LARGEFILE and drops O_CLOEXEC; memfd O_RDWR|O_LARGEFILE; a dma-buf its fd_flags & (O_ACCMODE|O_NONBLOCK) (fs/fcntl.c do_fcntl, fs/open.c build_open_flags, mm/memfd.c memfd_create, dma-buf.c dma_buf_getfile)",
    needs: ["system-heap", "memfd"],
    run: scoped((u, fds) => {
      const heap = fds.add(u.open(SYSTEM_HEAP, O_RDWR | O_CLOEXEC));
      assert.equal(u.fcntl(heap, F_GETFL), O_RDWR | O_LARGEFILE);
      const ro = fds.add(u.open(SYSTEM_HEAP, O_RDONLY));
      assert.equal(u.fcntl(ro, F_GETFL), O_RDONLY | O_LARGEFILE);
      assert.equal(u.fcntl(memfd(u, fds, 0, MFD_CLOEXEC), F_GETFL), O_RDWR | O_LARGEFILE);
      const rw = fds.add(dmaHeapAlloc(u, heap, PAGE, O_RDWR | O_CLOEXEC));
      assert.equal(u.fcntl(rw, F_GETFL), O_RDWR);
      const rdonly = fds.add(dmaHeapAlloc(u, heap, PAGE, O_RDONLY));
      assert.equal(u.fcntl(rdonly, F_GETFL), O_RDONLY);
    }),
  },
  {
    suite: "vfs",
    name: "fcntl(F_GETFL): a sync_file is O_RDONLY (anon_inode_getfile flags 0); the sw_sync timeline O_RDWR|O_LARGEFILE (sync_file.c sync_file_alloc)",
    needs: ["sw_sync"],
    run: scoped((u, fds) => {
      const tl = fds.add(u.open(SW_SYNC_PATH, O_RDWR));
      assert.equal(u.fcntl(tl, F_GETFL), O_RDWR | O_LARGEFILE);
      const fence = fds.add(swSyncCreateFence(u, tl, 1));
      assert.equal(u.fcntl(fence, F_GETFL), O_RDONLY);
    }),
  },
  {
    suite: "vfs",
    name: "fcntl(F_SETFL): only O_APPEND|O_NONBLOCK|O_NOATIME|O_DIRECT change, the access mode stays; O_DIRECT without FMODE_CAN_ODIRECT → EINVAL; unknown command → EINVAL (fs/fcntl.c setfl, SETFL_MASK)",
    needs: ["system-heap", "memfd"],
    run: scoped((u, fds) => {
      const heap = fds.add(u.open(SYSTEM_HEAP, O_RDWR));
      const buf = fds.add(dmaHeapAlloc(u, heap, PAGE));
      assert.equal(u.fcntl(buf, F_SETFL, O_NONBLOCK | O_RDONLY), 0);
      assert.equal(u.fcntl(buf, F_GETFL), O_RDWR | O_NONBLOCK);
      u.fcntl(buf, F_SETFL, 0);
      assert.equal(u.fcntl(buf, F_GETFL), O_RDWR);
      u.fcntl(heap, F_SETFL, O_APPEND);
      assert.equal(u.fcntl(heap, F_GETFL), O_RDWR | O_LARGEFILE | O_APPEND);
      const m = memfd(u, fds, PAGE);
      expectErrno("EINVAL", () => u.fcntl(m, F_SETFL, O_DIRECT), "memfd O_DIRECT");
      expectErrno("EINVAL", () => u.fcntl(buf, F_SETFL, O_DIRECT), "dma-buf O_DIRECT");
      assert.equal(u.fcntl(m, F_GETFL), O_RDWR | O_LARGEFILE, "a refused F_SETFL changes nothing");
      expectErrno("EINVAL", () => u.fcntl(m, 1000, 0), "fcntl command 1000");
    }),
  },
  {
    suite: "vfs",
    name: "pwrite: a negative, fractional or NaN offset → EINVAL before the fd is looked at; a dma-buf or the nonseekable heap device → ESPIPE; a device without write → EINVAL (fs/read_write.c ksys_pwrite64, vfs_write)",
    needs: ["system-heap", "memfd", "udmabuf"],
    run: scoped((u, fds) => {
      const data = new Uint8Array([1, 2, 3]);
      const m = memfd(u, fds, PAGE);
      for (const off of [-1, -PAGE, 0.5, Number.NaN])
        expectErrno("EINVAL", () => u.pwrite(m, data, off), `memfd offset ${off}`);
      const closed = u.memfdCreate("closed", 0);
      u.close(closed);
      expectErrno("EINVAL", () => u.pwrite(closed, data, -1), "closed fd, offset -1");
      expectErrno("EBADF", () => u.pwrite(closed, data, 0), "closed fd, offset 0");
      assert.equal(u.lseek(m, 0, SEEK_END), PAGE, "nothing was written at a bad offset");
      const heap = fds.add(u.open(SYSTEM_HEAP, O_RDWR));
      const buf = fds.add(dmaHeapAlloc(u, heap, PAGE));
      expectErrno("ESPIPE", () => u.pwrite(buf, data, 0), "dma-buf");
      // dma_heap_open() calls nonseekable_open(): no FMODE_PWRITE either.
      expectErrno("ESPIPE", () => u.pwrite(heap, data, 0), "/dev/dma_heap/system");
      const udmabuf = fds.add(u.open("/dev/udmabuf", O_RDWR));
      expectErrno("EINVAL", () => u.pwrite(udmabuf, data, 0), "/dev/udmabuf has no write");
      assert.equal(u.pwrite(m, data, PAGE - 1), 3, "a write across the end grows the memfd");
      assert.equal(u.lseek(m, 0, SEEK_END), PAGE + 2);
    }),
  },
  {
    suite: "memfd",
    name: "memfd_create flags: unknown bits, MFD_EXEC|MFD_NOEXEC_SEAL, a huge page size without MFD_HUGETLB, a name over 249 bytes → EINVAL (mm/memfd.c memfd_create)",
    needs: ["memfd"],
    run: scoped((u, fds) => {
      expectErrno("EINVAL", () => u.memfdCreate("x", 0x40), "flag 0x40");
      expectErrno(
        "EINVAL",
        () => u.memfdCreate("x", MFD_EXEC | MFD_NOEXEC_SEAL),
        "EXEC|NOEXEC_SEAL",
      );
      expectErrno("EINVAL", () => u.memfdCreate("x", MFD_HUGE_2MB), "MFD_HUGE_2MB alone");
      fds.add(u.memfdCreate("n".repeat(249), 0));
      expectErrno("EINVAL", () => u.memfdCreate("n".repeat(250), 0), "250-byte name");
      const exec = fds.add(u.memfdCreate("x", MFD_EXEC));
      assert.equal(
        u.fcntl(exec, F_GET_SEALS),
        F_SEAL_SEAL,
        "MFD_EXEC alone does not allow sealing",
      );
    }),
  },
  {
    suite: "memfd",
    name: "MFD_NOEXEC_SEAL allows sealing and starts with F_SEAL_EXEC; F_SEAL_EXEC on an executable memfd adds SHRINK|GROW|WRITE|FUTURE_WRITE (memfd_create, memfd_add_seals)",
    needs: ["memfd"],
    run: scoped((u, fds) => {
      const noexec = memfd(u, fds, 0, MFD_NOEXEC_SEAL);
      assert.equal(u.fcntl(noexec, F_GET_SEALS), F_SEAL_EXEC);
      u.fcntl(noexec, F_ADD_SEALS, F_SEAL_SHRINK);
      assert.equal(u.fcntl(noexec, F_GET_SEALS), F_SEAL_EXEC | F_SEAL_SHRINK);
      const exec = memfd(u, fds, PAGE);
      u.fcntl(exec, F_ADD_SEALS, F_SEAL_EXEC);
      const wx = F_SEAL_EXEC | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_FUTURE_WRITE;
      assert.equal(u.fcntl(exec, F_GET_SEALS), wx);
      expectErrno(
        "EPERM",
        () => u.pwrite(exec, new Uint8Array([1]), 0),
        "write-sealed by F_SEAL_EXEC",
      );
      // With a shared writable mapping, the implied F_SEAL_WRITE cannot be added.
      const mapped = memfd(u, fds, PAGE);
      const m = u.mmap(PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, mapped, 0);
      try {
        expectErrno(
          "EBUSY",
          () => u.fcntl(mapped, F_ADD_SEALS, F_SEAL_EXEC),
          "F_SEAL_EXEC while mapped",
        );
        assert.equal(u.fcntl(mapped, F_GET_SEALS), 0);
      } finally {
        u.munmap(m);
      }
      expectErrno("EINVAL", () => u.fcntl(mapped, F_ADD_SEALS, 0x40), "unknown seal 0x40");
    }),
  },
  {
    suite: "memfd",
    name: "F_SEAL_FUTURE_WRITE: pwrite and new shared writable mmaps → EPERM; read-only shared and private writable mmaps work; an existing writable mapping keeps writing (memfd_check_seals_mmap, shmem_write_begin)",
    needs: ["memfd"],
    run: scoped((u, fds) => {
      const fd = memfd(u, fds, PAGE);
      const before = u.mmap(PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
      try {
        u.fcntl(fd, F_ADD_SEALS, F_SEAL_FUTURE_WRITE);
        expectErrno("EPERM", () => u.pwrite(fd, new Uint8Array([1]), 0), "pwrite");
        expectErrno("EPERM", () => u.mmap(PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0), "mmap");
        const ro = u.mmap(PAGE, PROT_READ, MAP_SHARED, fd, 0);
        const priv = u.mmap(PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
        before.write(0, new Uint8Array([0x5a]));
        assert.equal(ro.read(0, 1)[0], 0x5a, "the old writable mapping still writes the file");
        assert.equal(priv.read(0, 1)[0], 0x5a);
        u.munmap(ro);
        u.munmap(priv);
      } finally {
        u.munmap(before);
      }
    }),
  },
  {
    suite: "memfd",
    name: "F_SEAL_WRITE: EBUSY while a shared writable mapping exists, not for a private one; once sealed, shared writable mmap → EPERM (mapping_deny_writable, check_write_seal)",
    needs: ["memfd"],
    run: scoped((u, fds) => {
      const fd = memfd(u, fds, PAGE);
      const priv = u.mmap(PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
      const shared = u.mmap(PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
      expectErrno("EBUSY", () => u.fcntl(fd, F_ADD_SEALS, F_SEAL_WRITE), "with a shared mapping");
      u.munmap(shared);
      u.fcntl(fd, F_ADD_SEALS, F_SEAL_WRITE);
      expectErrno("EPERM", () => u.mmap(PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0), "mmap");
      const priv2 = u.mmap(PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
      u.munmap(priv2);
      u.munmap(priv);
    }),
  },
  {
    suite: "memfd",
    name: "F_SEAL_GROW: a pwrite that would grow the memfd → EPERM; across a 2 MiB boundary the chunk before it is written and the short count returned (generic_perform_write chunks of the large-folio size, shmem_write_begin)",
    needs: ["memfd"],
    run: scoped((u, fds) => {
      const size = HPAGE + PAGE;
      const fd = memfd(u, fds, size);
      u.fcntl(fd, F_ADD_SEALS, F_SEAL_GROW);
      const data = new Uint8Array(3 * PAGE).fill(0x77);
      expectErrno("EPERM", () => u.pwrite(fd, data.subarray(0, 2 * PAGE), HPAGE), "one chunk");
      assert.equal(u.pwrite(fd, data, HPAGE - PAGE), PAGE, "across the 2 MiB boundary");
      assert.equal(u.lseek(fd, 0, SEEK_END), size);
      const m = u.mmap(size, PROT_READ, MAP_SHARED, fd, 0);
      assert.deepEqual([...m.read(HPAGE - PAGE - 2, 4)], [0, 0, 0x77, 0x77]);
      assert.deepEqual([...m.read(HPAGE - 1, 2)], [0x77, 0], "nothing past the boundary");
      u.munmap(m);
    }),
  },
  {
    suite: "memfd",
    name: "MAP_PRIVATE of a memfd is copy-on-write: its writes never reach the file, and pages it has not written still show the file's later writes (mm/memory.c do_wp_page)",
    needs: ["memfd"],
    run: scoped((u, fds) => {
      const fd = memfd(u, fds, 2 * PAGE);
      u.pwrite(fd, new Uint8Array([1, 2]), 0);
      const priv = u.mmap(2 * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
      const shared = u.mmap(2 * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
      try {
        assert.deepEqual([...priv.read(0, 2)], [1, 2]);
        priv.write(1, new Uint8Array([9]));
        assert.deepEqual([...priv.read(0, 2)], [1, 9]);
        assert.deepEqual([...shared.read(0, 2)], [1, 2], "the private write stays private");
        shared.write(0, new Uint8Array([7]));
        assert.equal(priv.read(0, 1)[0], 1, "the copied page no longer follows the file");
        shared.write(PAGE, new Uint8Array([8]));
        assert.equal(priv.read(PAGE, 1)[0], 8, "an unwritten page still is the file's");
      } finally {
        u.munmap(priv);
        u.munmap(shared);
      }
    }),
  },
  {
    suite: "memfd",
    name: "MFD_HUGETLB: ftruncate in whole 2 MiB pages (else EINVAL), no pwrite (EINVAL), mmap offsets huge-page aligned (else EINVAL), zeroed pages that keep writes (hugetlbfs_setattr, hugetlbfs_file_mmap)",
    needs: ["memfd", "hugetlb"],
    run: scoped((u, fds) => {
      const fd = fds.add(u.memfdCreate("huge", MFD_HUGETLB | MFD_HUGE_2MB | MFD_ALLOW_SEALING));
      expectErrno("EINVAL", () => u.ftruncate(fd, PAGE), "4 KiB");
      u.ftruncate(fd, 2 * HPAGE);
      assert.equal(u.lseek(fd, 0, SEEK_END), 2 * HPAGE);
      expectErrno("EINVAL", () => u.pwrite(fd, new Uint8Array([1]), 0), "pwrite");
      expectErrno("EINVAL", () => u.mmap(PAGE, PROT_READ, MAP_SHARED, fd, PAGE), "offset 4 KiB");
      const a = u.mmap(2 * HPAGE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
      const b = u.mmap(HPAGE, PROT_READ, MAP_SHARED, fd, HPAGE);
      try {
        assert.deepEqual([...a.read(HPAGE + 100, 2)], [0, 0]);
        a.write(HPAGE + 100, new Uint8Array([0xab, 0xcd]));
        assert.deepEqual([...b.read(100, 2)], [0xab, 0xcd]);
      } finally {
        u.munmap(a);
        u.munmap(b);
      }
      assert.equal(u.fcntl(fd, F_GET_SEALS), 0, "hugetlb memfds take seals too");
    }),
  },
  {
    suite: "procfs",
    name: "/proc/self/fdinfo/N of a dma-buf: flags with O_CLOEXEC, size, count (dup and mmap hold the file), exp_name, name after DMA_BUF_SET_NAME (fs/proc/fd.c seq_show, dma-buf.c dma_buf_show_fdinfo)",
    needs: ["system-heap"],
    run: scoped((u, fds) => {
      const heap = fds.add(u.open(SYSTEM_HEAP, O_RDWR));
      const buf = fds.add(dmaHeapAlloc(u, heap, 4 * PAGE, O_RDWR | O_CLOEXEC));
      let info = fdinfo(u, buf);
      assert.equal(info.get("pos"), "0");
      assert.equal(info.get("flags"), `0${(O_RDWR | O_CLOEXEC).toString(8)}`);
      assert.equal(info.get("size"), String(4 * PAGE));
      assert.equal(info.get("count"), "1");
      assert.equal(info.get("exp_name"), "system");
      assert.equal(info.has("name"), false, "no name line before DMA_BUF_SET_NAME");
      const dup = fds.add(u.dup(buf));
      const m = u.mmap(PAGE, PROT_READ, MAP_SHARED, buf, 0);
      dmaBufSetName(u, buf, "conf-buf");
      info = fdinfo(u, dup);
      assert.equal(info.get("count"), "3");
      assert.equal(info.get("name"), "conf-buf");
      assert.equal(info.get("flags"), `0${O_RDWR.toString(8)}`, "dup() clears close-on-exec");
      u.munmap(m);
      assert.equal(fdinfo(u, buf).get("count"), "2");
    }),
  },
  {
    suite: "procfs",
    name: "/proc/self/fdinfo/N: a memfd shows pos and flags O_RDWR|O_LARGEFILE; a closed fd → ENOENT (fs/proc/fd.c)",
    needs: ["memfd"],
    run: scoped((u, fds) => {
      const fd = memfd(u, fds, PAGE, MFD_CLOEXEC);
      const info = fdinfo(u, fd);
      assert.equal(info.get("pos"), "0");
      assert.equal(info.get("flags"), `0${(O_RDWR | O_LARGEFILE | O_CLOEXEC).toString(8)}`);
      const closed = u.memfdCreate("closed", 0);
      u.close(closed);
      expectErrno("ENOENT", () => u.open(`/proc/self/fdinfo/${closed}`, O_RDONLY));
    }),
  },
  {
    suite: "procfs",
    name: "/proc/self/fdinfo/N: pos, flags, mnt_id, ino first, in that order; dma-bufs share dma_buf_mnt and take consecutive inode numbers (dmabuf_inode), a dup the same; lseek(SEEK_END) on a dma-buf leaves pos 0; a memfd's pos follows lseek on another mount; sync_files share the one anon inode (fs/proc/fd.c seq_show, dma-buf.c dma_buf_getfile and dma_buf_llseek, fs/anon_inodes.c, mm/shmem.c)",
    needs: ["system-heap", "memfd"],
    run: scoped((u, fds) => {
      const heap = fds.add(u.open(SYSTEM_HEAP, O_RDWR));
      const a = fds.add(dmaHeapAlloc(u, heap, 2 * PAGE, O_RDWR));
      const b = fds.add(dmaHeapAlloc(u, heap, PAGE, O_RDWR));
      const keys = fdinfoText(u, a)
        .split("\n")
        .filter((l) => l.includes(":"))
        .map((l) => l.slice(0, l.indexOf(":")));
      assert.deepEqual(keys.slice(0, 5), ["pos", "flags", "mnt_id", "ino", "size"]);
      const ia = fdinfo(u, a);
      const ib = fdinfo(u, b);
      const num = (m: Map<string, string>, k: string): number => {
        const v = m.get(k);
        assert.ok(v !== undefined && /^\d+$/.test(v), `${k}: ${v}`);
        return Number(v);
      };
      assert.equal(num(ib, "mnt_id"), num(ia, "mnt_id"), "both on dma_buf_mnt");
      assert.equal(num(ib, "ino"), num(ia, "ino") + 1, "dmabuf_inode counts exports");
      assert.equal(
        num(fdinfo(u, fds.add(u.dup(a))), "ino"),
        num(ia, "ino"),
        "a dup is the same file",
      );
      assert.equal(u.lseek(a, 0, SEEK_END), 2 * PAGE);
      assert.equal(fdinfo(u, a).get("pos"), "0", "dma_buf_llseek does not move f_pos");

      const m = memfd(u, fds, 4 * PAGE);
      assert.equal(u.lseek(m, 100, SEEK_SET), 100);
      assert.equal(u.lseek(m, 10, SEEK_CUR), 110);
      const im = fdinfo(u, m);
      assert.equal(im.get("pos"), "110");
      assert.notEqual(num(im, "mnt_id"), num(ia, "mnt_id"), "shm_mnt is not dma_buf_mnt");
      const m2 = memfd(u, fds, 0);
      assert.notEqual(num(fdinfo(u, m2), "ino"), num(im, "ino"), "each memfd its own inode");

      const s1 = fds.add(dmaBufExportSyncFile(u, a, DMA_BUF_SYNC_READ));
      const s2 = fds.add(dmaBufExportSyncFile(u, b, DMA_BUF_SYNC_READ));
      const i1 = fdinfo(u, s1);
      const i2 = fdinfo(u, s2);
      assert.equal(num(i1, "ino"), num(i2, "ino"), "sync_files share anon_inode_inode");
      assert.equal(num(i1, "mnt_id"), num(i2, "mnt_id"));
      assert.notEqual(num(i1, "mnt_id"), num(ia, "mnt_id"), "anon_inode_mnt is not dma_buf_mnt");
      assert.notEqual(num(i1, "mnt_id"), num(im, "mnt_id"), "anon_inode_mnt is not shm_mnt");
    }),
  },
];
