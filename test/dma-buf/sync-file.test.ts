// struct sync_file at the kernel-object level (drivers/dma-buf/sync_file.c): names,
// merge, SYNC_IOC_FILE_INFO rules, poll, SYNC_IOC_SET_DEADLINE.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import {
  DmaFence,
  type DmaFenceOps,
  type FenceEnv,
  fenceEnv,
} from "../../src/dma-buf/dma-fence.js";
import { toDmaFenceArray } from "../../src/dma-buf/dma-fence-array.js";
import { SwSyncTimeline } from "../../src/dma-buf/sw-sync.js";
import { EPOLLIN, SyncFile, strscpy } from "../../src/dma-buf/sync-file.js";
import { KernelError } from "../../src/errno.js";
import { VirtualClock } from "../../src/machine/clock.js";

function newEnv(): FenceEnv {
  return fenceEnv(new VirtualClock());
}

function isErrno(code: string): (e: unknown) => boolean {
  return (e) => e instanceof KernelError && e.code === code;
}

describe("sync_file", () => {
  test("create: holds the fence and a reference; default name from the fence", () => {
    const env = newEnv();
    const tl = new SwSyncTimeline(env, "tl");
    const pt = tl.createFence(3);
    const file = SyncFile.create(pt);
    assert.equal(file.fence, pt);
    assert.equal(pt.refcount, 2);
    assert.equal(file.name, `sw_sync-tl${tl.context}-3`);
    const got = file.getFence();
    assert.equal(got, pt);
    got.put();
    file.release();
    assert.equal(pt.refcount, 1);
  });

  test("strscpy: 31 bytes and the NUL, never half a character", () => {
    assert.equal(strscpy("a".repeat(40)), "a".repeat(31));
    assert.equal(strscpy("short"), "short");
    assert.equal(strscpy(`${"a".repeat(30)}é`), "a".repeat(30), "é needs two bytes");
  });

  test("merge: unwrap-merged fence, the given name", () => {
    const env = newEnv();
    const a = new SwSyncTimeline(env, "a");
    const b = new SwSyncTimeline(env, "b");
    const fa = SyncFile.create(a.createFence(1));
    const fb = SyncFile.create(b.createFence(2));
    const m = SyncFile.merge(env, "x".repeat(50), fa, fb);
    assert.equal(m.name, "x".repeat(31));
    assert.ok(toDmaFenceArray(m.fence));
    assert.equal(m.leafFences().length, 2);
    a.inc(1);
    assert.equal(m.fence.isSignaled(), false);
    b.inc(2);
    assert.equal(m.fence.isSignaled(), true);
  });

  test("FILE_INFO: flags and pad must be zero", () => {
    const env = newEnv();
    const file = SyncFile.create(new SwSyncTimeline(env, "t").createFence(1));
    assert.throws(() => file.info({ flags: 1, numFences: 1 }), isErrno("EINVAL"));
    assert.throws(() => file.info({ pad: 1, numFences: 1 }), isErrno("EINVAL"));
  });

  test("FILE_INFO: num_fences 0 reports only the count", () => {
    const env = newEnv();
    const t1 = new SwSyncTimeline(env, "t1");
    const t2 = new SwSyncTimeline(env, "t2");
    const m = SyncFile.merge(
      env,
      "m",
      SyncFile.create(t1.createFence(1)),
      SyncFile.create(t2.createFence(1)),
    );
    const info = m.info({ numFences: 0 });
    assert.deepEqual(info, { name: "m", status: 0, flags: 0, numFences: 2, fenceInfo: [] });
    assert.throws(() => m.info({ numFences: 1 }), isErrno("EINVAL"));
  });

  test("FILE_INFO: per-fence names, status and timestamps", () => {
    const env = newEnv();
    const t1 = new SwSyncTimeline(env, "timeline-one");
    const t2 = new SwSyncTimeline(env, "timeline-two");
    const m = SyncFile.merge(
      env,
      "merged",
      SyncFile.create(t1.createFence(1)),
      SyncFile.create(t2.createFence(1)),
    );
    env.clock.advance(500);
    t1.inc(1);
    let info = m.info({ numFences: 4 });
    assert.equal(info.numFences, 2);
    assert.equal(info.status, 0);
    assert.deepEqual(info.fenceInfo, [
      { objName: "timeline-one", driverName: "sw_sync", status: 1, flags: 0, timestampNs: 500 },
      { objName: "timeline-two", driverName: "sw_sync", status: 0, flags: 0, timestampNs: 0 },
    ]);
    t2.release();
    info = m.info({ numFences: 2 });
    assert.equal(info.status, -2, "the closed timeline's -ENOENT");
    assert.equal(info.fenceInfo[1]!.status, -2);
    assert.equal(m.info({ numFences: 0 }).status, -2);
  });

  test("poll: EPOLLIN once signalled; the waiter is woken once; first poll enables signalling", () => {
    const env = newEnv();
    let enabled = 0;
    const ops: DmaFenceOps = {
      getDriverName: () => "d",
      getTimelineName: () => "t",
      enableSignaling: () => {
        enabled++;
        return true;
      },
    };
    const f = new DmaFence(ops, env.clock, env.contexts.alloc(1), 1);
    const file = SyncFile.create(f);
    let woken = 0;
    assert.equal(
      file.poll(() => woken++),
      0,
    );
    assert.equal(enabled, 1);
    assert.equal(file.poll(), 0);
    f.signal();
    assert.equal(woken, 1);
    assert.equal(file.poll(), EPOLLIN);
    assert.equal(woken, 1);
  });

  test("poll on an already signalled fence wakes the waiter at once", () => {
    const env = newEnv();
    const tl = new SwSyncTimeline(env, "t");
    tl.inc(1);
    const file = SyncFile.create(tl.createFence(1));
    let woken = 0;
    assert.equal(
      file.poll(() => woken++),
      EPOLLIN,
    );
    assert.equal(woken, 1);
  });

  test("release unhooks poll", () => {
    const env = newEnv();
    const tl = new SwSyncTimeline(env, "t");
    const pt = tl.createFence(1);
    const file = SyncFile.create(pt);
    let woken = 0;
    file.poll(() => woken++);
    file.release();
    tl.inc(1);
    assert.equal(woken, 0);
    assert.throws(() => file.release(), /released twice/);
  });

  test("SET_DEADLINE: pad must be zero; reaches every sync_pt of a merge", () => {
    const env = newEnv();
    const t1 = new SwSyncTimeline(env, "t1");
    const t2 = new SwSyncTimeline(env, "t2");
    const p1 = t1.createFence(1);
    const p2 = t2.createFence(1);
    const m = SyncFile.merge(env, "m", SyncFile.create(p1), SyncFile.create(p2));
    assert.throws(() => m.setDeadline(100, 1), isErrno("EINVAL"));
    m.setDeadline(100);
    assert.equal(t1.getDeadline(p1), 100);
    assert.equal(t2.getDeadline(p2), 100);
  });
});
