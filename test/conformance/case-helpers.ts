/**
 * What every conformance case file uses: errno assertions and the fds a case opened,
 * closed whatever happens. Only the Uapi contract, so cases run on every backend.
 */

import assert from "node:assert/strict";
import { O_RDWR } from "../../src/include/uapi/fcntl.js";
import { drmGetVersion } from "../../src/uapi/drm.js";
import type { Uapi } from "../../src/uapi/uapi.js";
import { vidiocQuerycap } from "../../src/uapi/v4l2.js";

/** Asserts `fn` fails with errno `code` (KernelError-like: an Error with `.code`). */
export function expectErrno(code: string, fn: () => unknown, what = ""): void {
  let thrown: unknown;
  let value: unknown;
  try {
    value = fn();
  } catch (e) {
    thrown = e;
  }
  if (thrown === undefined) {
    assert.fail(
      `${what ? `${what}: ` : ""}expected ${code}, the call succeeded (${String(value)})`,
    );
  }
  const got =
    typeof thrown === "object" && thrown !== null && "code" in thrown
      ? String((thrown as { code: unknown }).code)
      : String(thrown);
  assert.equal(got, code, `${what ? `${what}: ` : ""}expected ${code}, got ${got}`);
}

/** fds opened by a case, closed at the end whatever happens (in reverse order). */
export class Fds {
  readonly #fds: number[] = [];
  constructor(readonly u: Uapi) {}
  add(fd: number): number {
    this.#fds.push(fd);
    return fd;
  }
  /** Closes `fd` now. */
  close(fd: number): void {
    const i = this.#fds.lastIndexOf(fd);
    if (i >= 0) this.#fds.splice(i, 1);
    this.u.close(fd);
  }
  closeAll(): void {
    while (this.#fds.length > 0) {
      const fd = this.#fds.pop()!;
      try {
        this.u.close(fd);
      } catch {
        // Already closed by the case.
      }
    }
  }
}

export function scoped(body: (u: Uapi, fds: Fds) => void): (u: Uapi) => void {
  return (u) => {
    const fds = new Fds(u);
    try {
      body(u, fds);
    } finally {
      fds.closeAll();
    }
  };
}

/**
 * Opens `path` and returns the fd when VIDIOC_QUERYCAP's driver is `driver`; -1 when the
 * node is missing or belongs to another driver.
 */
export function openV4l2Driver(u: Uapi, path: string, driver: string, flags = O_RDWR): number {
  let fd: number;
  try {
    fd = u.open(path, flags);
  } catch {
    return -1;
  }
  let name = "";
  try {
    name = vidiocQuerycap(u, fd).driver;
  } catch {
    // Not a V4L2 node.
  }
  if (name === driver) return fd;
  u.close(fd);
  return -1;
}

/**
 * open_vgem() of dmabuf-heap.c: the first /dev/dri/card<N> whose DRM_IOCTL_VERSION
 * name is "vgem"; -1 when there is none.
 */
export function openVgem(u: Uapi): number {
  for (let i = 0; i < 16; i++) {
    let fd: number;
    try {
      fd = u.open(`/dev/dri/card${i}`, O_RDWR);
    } catch {
      continue;
    }
    let name = "";
    try {
      name = drmGetVersion(u, fd).name;
    } catch {
      // Not a DRM device after all.
    }
    if (name === "vgem") return fd;
    u.close(fd);
  }
  return -1;
}
