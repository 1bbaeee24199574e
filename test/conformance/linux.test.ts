/**
 * LinuxUapi (src/uapi/linux.ts) on the kernel this process runs on: its own behaviour on
 * memfds (every Linux has them), then the conformance suite (./suite.ts) when the kernel
 * has something to test, /dev/dma_heap or /dev/udmabuf. Most development machines and CI
 * runners have neither; the suite then runs against a real kernel booted in QEMU instead
 * (npm run conformance:kernel).
 */

import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { test } from "node:test";
import {
  F_ADD_SEALS,
  F_SEAL_SHRINK,
  MAP_SHARED,
  MFD_ALLOW_SEALING,
  POLLIN,
  POLLNVAL,
  PROT_READ,
  PROT_WRITE,
} from "../../src/include/uapi/fcntl.js";
import { LinuxUserFault, openLinuxUapi } from "../../src/uapi/linux.js";
import { detectLinuxCapabilities } from "./backends.js";
import {
  conformanceCases,
  DMA_HEAP_DIR,
  expectErrno,
  registerConformance,
  UDMABUF_DEV,
} from "./suite.js";

const onLinux = process.platform === "linux";
const hasDevices = existsSync(DMA_HEAP_DIR) || existsSync(UDMABUF_DEV);

test("LinuxUapi: memfd, mmap through a live view, errno names, guarded accesses", {
  skip: onLinux ? false : `not Linux (${process.platform})`,
}, () => {
  const u = openLinuxUapi();
  const fd = u.memfdCreate("linux-uapi-test", MFD_ALLOW_SEALING);
  try {
    u.ftruncate(fd, 8192);
    u.fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK);
    expectErrno("EPERM", () => u.ftruncate(fd, 4096));
    assert.equal(u.pwrite(fd, new Uint8Array([1, 2, 3]), 4096), 3);
    const m = u.mmap(8192, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    assert.deepEqual([...m.read(4096, 4)], [1, 2, 3, 0]);
    m.fill(0, 16, 0xaa);
    m.write(16, new Uint8Array([7]));
    u.lseek(fd, 0, 0);
    assert.deepEqual([...u.read(fd, 18)], [...new Array(16).fill(0xaa), 7, 0]);
    assert.throws(() => m.read(8190, 4), LinuxUserFault);
    const ro = u.mmap(4096, PROT_READ, MAP_SHARED, fd, 0);
    assert.throws(() => ro.fill(0, 1, 1), LinuxUserFault);
    u.munmap(ro);
    u.munmap(m);
    assert.throws(() => m.read(0, 1), LinuxUserFault, "use after munmap");
    // A user buffer is live memory: poll() writes revents into it through libc.
    assert.deepEqual(u.poll([{ fd, events: POLLIN }], 0), [POLLIN]);
    const d = u.dup(fd);
    u.close(d);
    assert.deepEqual(u.poll([{ fd: d, events: POLLIN }], 0), [POLLNVAL]);
    expectErrno("EBADF", () => u.close(d));
    expectErrno("ENOTTY", () => u.ioctl(fd, 0x40086200, 0));
    expectErrno("ENOENT", () => u.open("/nonexistent/dma_heap", 2));
    const buf = u.alloc(8);
    buf.bytes[0] = 42;
    assert.equal(buf.bytes[0], 42);
    u.free(buf);
    assert.deepEqual(u.dispose(), { mappings: 0, allocations: 0 });
  } finally {
    u.close(fd);
  }
});

if (!onLinux || !hasDevices) {
  const why = !onLinux
    ? `not Linux (${process.platform})`
    : `this kernel has neither ${DMA_HEAP_DIR} nor ${UDMABUF_DEV}; run \`npm run conformance:kernel\` to test a real kernel in QEMU`;
  test(`[linux] conformance suite (${conformanceCases.length} cases)`, { skip: why }, () => {});
} else {
  const { capabilities } = detectLinuxCapabilities(openLinuxUapi());
  registerConformance("linux", openLinuxUapi, { capabilities });
}
