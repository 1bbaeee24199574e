/**
 * The fd table's split allocation (fs/file.c: get_unused_fd_flags, fd_install,
 * put_unused_fd): a reserved fd is taken but not open, install() never hands it out,
 * and giving it back or installing it leaves the table as one-step installs would.
 */

import assert from "node:assert/strict";
import { test } from "node:test";
import fc from "fast-check";
import { KernelError } from "../../src/errno.js";
import { O_RDONLY } from "../../src/include/uapi/fcntl.js";
import { FdTable } from "../../src/vfs/fdtable.js";
import { File } from "../../src/vfs/file.js";

const ops = { name: "test" };
const file = () => new File(ops, undefined, O_RDONLY, "test");
const errno = (code: string) => (e: unknown) => e instanceof KernelError && e.code === code;

test("a reserved fd is neither open nor free: EBADF for lookup and close, skipped by install", () => {
  const t = new FdTable(4);
  assert.equal(t.install(file()), 0);
  const r = t.getUnusedFd(true);
  assert.equal(r, 1);
  assert.equal(t.has(r), false);
  assert.throws(() => t.lookup(r), errno("EBADF"));
  assert.throws(() => t.close(r), errno("EBADF"));
  assert.deepEqual(t.fds(), [0]);
  assert.equal(t.install(file()), 2, "install takes the next free fd, not the reserved one");
  const f = file();
  t.fdInstall(r, f);
  assert.equal(t.lookup(r), f);
  assert.equal(t.cloexec(r), true, "the close-on-exec bit set at reservation");
  assert.deepEqual(t.fds(), [0, 1, 2]);
});

test("reserved fds count against the limit (EMFILE), and put_unused_fd frees the number", () => {
  const t = new FdTable(2);
  t.install(file());
  const r = t.getUnusedFd();
  assert.throws(() => t.getUnusedFd(), errno("EMFILE"));
  assert.throws(() => t.install(file()), errno("EMFILE"));
  t.putUnusedFd(r);
  assert.equal(t.install(file()), r);
});

test("fd_install and put_unused_fd only take an fd get_unused_fd_flags reserved", () => {
  const t = new FdTable(4);
  const open = t.install(file());
  assert.throws(() => t.fdInstall(open, file()), /was not reserved/);
  assert.throws(() => t.putUnusedFd(open), /was not reserved/);
  assert.throws(() => t.putUnusedFd(3), /was not reserved/);
  const r = t.getUnusedFd();
  t.fdInstall(r, file());
  assert.throws(() => t.fdInstall(r, file()), /was not reserved/);
});

test("property: any mix of reserve/install/put/close behaves like a table of taken numbers", () => {
  type Op =
    | { kind: "install" }
    | { kind: "reserve" }
    | { kind: "fdInstall"; pick: number }
    | { kind: "put"; pick: number }
    | { kind: "close"; pick: number };
  const op: fc.Arbitrary<Op> = fc.oneof(
    fc.constant({ kind: "install" as const }),
    fc.constant({ kind: "reserve" as const }),
    fc.record({ kind: fc.constant("fdInstall" as const), pick: fc.nat() }),
    fc.record({ kind: fc.constant("put" as const), pick: fc.nat() }),
    fc.record({ kind: fc.constant("close" as const), pick: fc.nat() }),
  );
  fc.assert(
    fc.property(fc.array(op, { maxLength: 60 }), (seq) => {
      const limit = 6;
      const t = new FdTable(limit);
      const open = new Map<number, File>();
      const reserved = new Set<number>();
      const lowestFree = (): number => {
        for (let i = 0; ; i++) if (!open.has(i) && !reserved.has(i)) return i;
      };
      const pickFrom = (s: Iterable<number>, n: number): number | undefined => {
        const a = [...s].sort((x, y) => x - y);
        return a.length === 0 ? undefined : a[n % a.length];
      };
      for (const o of seq) {
        if (o.kind === "install" || o.kind === "reserve") {
          const want = lowestFree();
          if (want >= limit) {
            assert.throws(
              () => (o.kind === "install" ? t.install(file()) : t.getUnusedFd()),
              errno("EMFILE"),
            );
            continue;
          }
          if (o.kind === "install") {
            const f = file();
            assert.equal(t.install(f), want);
            open.set(want, f);
          } else {
            assert.equal(t.getUnusedFd(), want);
            reserved.add(want);
          }
        } else if (o.kind === "fdInstall" || o.kind === "put") {
          const fd = pickFrom(reserved, o.pick);
          if (fd === undefined) continue;
          reserved.delete(fd);
          if (o.kind === "put") t.putUnusedFd(fd);
          else {
            const f = file();
            t.fdInstall(fd, f);
            open.set(fd, f);
          }
        } else {
          const fd = pickFrom(open.keys(), o.pick);
          if (fd === undefined) continue;
          const f = open.get(fd)!;
          open.delete(fd);
          t.close(fd);
          assert.equal(f.released, true);
        }
        assert.deepEqual(
          t.fds(),
          [...open.keys()].sort((x, y) => x - y),
        );
        for (const fd of reserved) assert.equal(t.has(fd), false);
      }
    }),
  );
});
