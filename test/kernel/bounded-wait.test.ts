/**
 * Bounded waiting: a blocking call either completes, times out, or ends with a
 * SimulationError("would-block-forever") when nothing scheduled can satisfy it, even
 * while the display's vblank keeps the event queue busy.
 */

import assert from "node:assert/strict";
import { test } from "node:test";
import { DRM_FORMAT_XRGB8888, DRM_MODE_PAGE_FLIP_EVENT } from "../../src/include/uapi/drm-mode.js";
import { O_RDWR, POLLIN } from "../../src/include/uapi/fcntl.js";
import { VirtualClock } from "../../src/machine/clock.js";
import { SimulationError } from "../../src/machine/outcome.js";
import {
  drmCrcOpen,
  drmCrcRead,
  drmModeAddFB2,
  drmModeCreateDumb,
  drmModeGetConnector,
  drmModeGetResources,
  drmModePageFlip,
  drmModeSetCrtc,
  drmReadEvents,
} from "../../src/uapi/drm.js";
import { SimUapi } from "../../src/uapi/sim.js";
import { boot } from "../drivers/gpu/helpers.js";

function blocked(kind: string): (e: unknown) => boolean {
  return (e) => e instanceof SimulationError && e.kind === kind;
}

/** One process shows a framebuffer with the CRC file open; returns it and a second process. */
function showWithCrc() {
  const b = boot();
  const { u, disp } = b;
  const fd = u.open("/dev/dri/card2", O_RDWR);
  const res = drmModeGetResources(u, fd);
  const conn = drmModeGetConnector(u, fd, res.connectors[0]!);
  const fbOf = () => {
    const d = drmModeCreateDumb(u, fd, { width: 64, height: 48, bpp: 32 });
    return drmModeAddFB2(u, fd, {
      width: 64,
      height: 48,
      pixelFormat: DRM_FORMAT_XRGB8888,
      handles: [d.handle],
      pitches: [d.pitch],
      offsets: [0],
    });
  };
  const fb = fbOf();
  drmModeSetCrtc(u, fd, {
    crtcId: res.crtcs[0]!,
    fbId: fb,
    x: 0,
    y: 0,
    connectors: [conn.connectorId],
    mode: conn.modes[0]!,
  });
  const crc = drmCrcOpen(u, disp.minor, 0, "auto");
  const other = new SimUapi(b.k, "waiter");
  const ofd = other.open("/dev/dri/card2", O_RDWR);
  return { ...b, fd, res, crc, fbOf, other, ofd };
}

test("poll(-1) on a card fd no event can reach ends while vblanks keep ticking", () => {
  const { other, ofd, k, u, crc } = showWithCrc();
  const start = k.machine.clock.now;
  assert.throws(
    () => other.poll([{ fd: ofd, events: POLLIN }], -1),
    blocked("would-block-forever"),
  );
  // The CRC ring filled (128 entries) before the wait was declared hopeless: bounded, not at once.
  const waited = k.machine.clock.now - start;
  assert.ok(waited > 100 * 16e6 && waited < 200 * 17e6, `waited ${waited} ns`);
  // The CRC file the ticks were filling is readable: its waiters are never cut off.
  assert.ok(drmCrcRead(u, crc).length > 0);
});

test("read(2) on a DRM fd ends the same way; a pending flip's event still arrives", () => {
  const { other, ofd, u, fd, res, fbOf } = showWithCrc();
  assert.throws(() => other.read(ofd, 4096), blocked("would-block-forever"));
  drmModePageFlip(u, fd, res.crtcs[0]!, fbOf(), DRM_MODE_PAGE_FLIP_EVENT, 7n);
  const ev = drmReadEvents(u, fd);
  assert.equal(ev.length, 1);
});

test("a poll with a timeout times out as Linux would, whatever ticks", () => {
  const { other, ofd, k } = showWithCrc();
  const t0 = k.machine.clock.now;
  assert.deepEqual(other.poll([{ fd: ofd, events: POLLIN }], 50), [0]);
  assert.equal(k.machine.clock.now - t0, 50e6);
});

test("clock: a periodic tick with no progress ends a wait; one that makes progress does not", () => {
  const c = new VirtualClock();
  let counter = 0;
  let makes = 3;
  const tick = (): void => {
    c.schedule(
      c.now + 10,
      "tick",
      () => {
        counter++;
        if (makes > 0) {
          makes--;
          c.noteProgress();
        }
        c.after(5, "child", () => {});
        tick();
      },
      { periodic: true },
    );
  };
  tick();
  assert.equal(
    c.runUntilCondition(() => false),
    false,
  );
  // Three progressing ticks, then one idle tick and its child: no more.
  assert.ok(counter >= 4 && counter <= 5, `counter ${counter}`);
  // A one-shot event far ahead keeps the wait alive until it fires.
  let flag = false;
  c.after(1e6, "work", () => {
    flag = true;
  });
  assert.equal(
    c.runUntilCondition(() => flag),
    true,
  );
});

test("clock: budgets of virtual time and events end the run with a named outcome", () => {
  const c = new VirtualClock();
  c.budget = { virtualNs: 1000, events: 1e9 };
  c.after(2000, "late", () => {});
  assert.throws(() => c.runUntilIdle(), blocked("virtual-time-budget"));
  const d = new VirtualClock();
  d.budget = { virtualNs: Number.POSITIVE_INFINITY, events: 10 };
  const loop = (): void => {
    d.after(1, "loop", loop);
  };
  loop();
  assert.throws(() => d.runUntilIdle(), blocked("host-work-budget"));
});
