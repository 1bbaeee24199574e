import assert from "node:assert/strict";
import { describe, test } from "node:test";
import fc from "fast-check";
import { VirtualClock } from "../../src/machine/clock.js";

describe("VirtualClock", () => {
  test("starts idle at time zero", () => {
    const c = new VirtualClock();
    assert.equal(c.now, 0);
    assert.equal(c.pending, 0);
    assert.equal(c.peek(), undefined);
    assert.equal(c.step(), false);
  });

  test("fires by (time, seq): earlier first, ties in scheduling order", () => {
    const c = new VirtualClock();
    const fired: string[] = [];
    const times: number[] = [];
    const rec = (name: string) => () => {
      fired.push(name);
      times.push(c.now);
    };
    c.schedule(30, "c", rec("c"));
    c.schedule(10, "a1", rec("a1"));
    c.schedule(20, "b", rec("b"));
    c.schedule(10, "a2", rec("a2"));
    c.schedule(10, "a3", rec("a3"));
    assert.equal(c.pending, 5);
    assert.equal(c.peek(), 10);
    c.runUntilIdle();
    assert.deepEqual(fired, ["a1", "a2", "a3", "b", "c"]);
    assert.deepEqual(times, [10, 10, 10, 20, 30]);
    assert.equal(c.now, 30);
    assert.equal(c.pending, 0);
  });

  test("property: any schedule fires in stable (time, seq) order", () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 0, max: 50 }), { maxLength: 200 }), (ats) => {
        const c = new VirtualClock();
        const fired: number[] = [];
        ats.forEach((at, i) => {
          c.schedule(at, `e${i}`, () => {
            assert.equal(c.now, at);
            fired.push(i);
          });
        });
        c.runUntilIdle();
        const expected = ats.map((at, i) => ({ at, i })).sort((x, y) => x.at - y.at || x.i - y.i);
        assert.deepEqual(
          fired,
          expected.map((e) => e.i),
        );
      }),
      { numRuns: 100 },
    );
  });

  test("property: cancelling any subset fires exactly the rest, in order", () => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.integer({ min: 0, max: 30 }), fc.boolean()), { maxLength: 100 }),
        (spec) => {
          const c = new VirtualClock();
          const fired: number[] = [];
          const evs = spec.map(([at], i) => c.schedule(at, `e${i}`, () => fired.push(i)));
          spec.forEach(([, cancel], i) => {
            if (cancel) c.cancel(evs[i]!);
          });
          const live = spec
            .map(([at, cancel], i) => ({ at, cancel, i }))
            .filter((e) => !e.cancel)
            .sort((x, y) => x.at - y.at || x.i - y.i);
          assert.equal(c.pending, live.length);
          assert.equal(c.peek(), live[0]?.at);
          c.runUntilIdle();
          assert.deepEqual(
            fired,
            live.map((e) => e.i),
          );
        },
      ),
      { numRuns: 100 },
    );
  });

  test("schedule in the past is clamped to now; non-finite times are rejected", () => {
    const c = new VirtualClock();
    c.advance(100);
    const ev = c.schedule(5, "late", () => {});
    assert.equal(ev.at, 100);
    assert.throws(() => c.schedule(Number.NaN, "x", () => {}), RangeError);
    assert.throws(() => c.schedule(Number.POSITIVE_INFINITY, "x", () => {}), RangeError);
    assert.throws(() => c.after(Number.NaN, "x", () => {}), RangeError);
  });

  test("after() is relative to now; a negative delay means now", () => {
    const c = new VirtualClock();
    c.advance(40);
    assert.equal(c.after(10, "a", () => {}).at, 50);
    assert.equal(c.after(-5, "b", () => {}).at, 40);
    assert.equal(c.after(0, "c", () => {}).label, "c");
  });

  test("cancel: a cancelled event never fires, even at the head", () => {
    const c = new VirtualClock();
    const fired: string[] = [];
    const a = c.schedule(10, "a", () => fired.push("a"));
    c.schedule(20, "b", () => fired.push("b"));
    const d = c.schedule(30, "d", () => fired.push("d"));
    c.cancel(a);
    c.cancel(d);
    assert.equal(c.pending, 1);
    assert.equal(c.peek(), 20);
    c.runUntil(100);
    assert.deepEqual(fired, ["b"]);
    assert.equal(c.now, 100);
    assert.equal(a.cancelled, true);
  });

  test("an event may cancel a later one", () => {
    const c = new VirtualClock();
    const fired: string[] = [];
    const later = c.schedule(20, "later", () => fired.push("later"));
    c.schedule(10, "canceller", () => {
      fired.push("canceller");
      c.cancel(later);
    });
    c.runUntilIdle();
    assert.deepEqual(fired, ["canceller"]);
    assert.equal(c.now, 10);
  });

  test("runUntil fires events at or before t, not after, and leaves the clock at t", () => {
    const c = new VirtualClock();
    const fired: number[] = [];
    for (const t of [5, 10, 11, 20]) c.schedule(t, `e${t}`, () => fired.push(t));
    c.runUntil(10);
    assert.deepEqual(fired, [5, 10]);
    assert.equal(c.now, 10);
    c.runUntil(3); // never goes back
    assert.equal(c.now, 10);
    assert.deepEqual(fired, [5, 10]);
    c.runUntil(15);
    assert.deepEqual(fired, [5, 10, 11]);
    assert.equal(c.now, 15);
    assert.equal(c.pending, 1);
  });

  test("events scheduled while firing are run in the same window, same-time ones last", () => {
    const c = new VirtualClock();
    const fired: string[] = [];
    c.schedule(10, "a", () => {
      fired.push("a");
      c.schedule(10, "a-child", () => fired.push("a-child"));
      c.after(5, "a+5", () => fired.push("a+5"));
      c.after(50, "a+50", () => fired.push("a+50"));
    });
    c.schedule(10, "b", () => fired.push("b"));
    c.runUntil(20);
    assert.deepEqual(fired, ["a", "b", "a-child", "a+5"]);
    assert.equal(c.now, 20);
    assert.equal(c.peek(), 60);
  });

  test("advance(dt) fires due events at their own time, then stands at now + dt", () => {
    const c = new VirtualClock();
    c.advance(7);
    const seen: number[] = [];
    c.after(3, "x", () => seen.push(c.now));
    c.after(9, "y", () => seen.push(c.now));
    c.after(11, "z", () => seen.push(c.now));
    c.advance(10);
    assert.deepEqual(seen, [10, 16]);
    assert.equal(c.now, 17);
    c.advance(0);
    assert.equal(c.now, 17);
    assert.throws(() => c.advance(-1), RangeError);
    assert.throws(() => c.advance(Number.NaN), RangeError);
    assert.equal(c.now, 17);
  });

  test("step fires exactly one event", () => {
    const c = new VirtualClock();
    let n = 0;
    c.schedule(4, "a", () => n++);
    c.schedule(8, "b", () => n++);
    assert.equal(c.step(), true);
    assert.equal(n, 1);
    assert.equal(c.now, 4);
    assert.equal(c.step(), true);
    assert.equal(c.step(), false);
    assert.equal(n, 2);
  });

  describe("runUntilCondition", () => {
    test("already true: fires nothing", () => {
      const c = new VirtualClock();
      let fired = false;
      c.schedule(10, "a", () => {
        fired = true;
      });
      assert.equal(
        c.runUntilCondition(() => true),
        true,
      );
      assert.equal(fired, false);
      assert.equal(c.now, 0);
    });

    test("stops at the event that makes it true", () => {
      const c = new VirtualClock();
      let done = false;
      const fired: number[] = [];
      c.schedule(10, "a", () => fired.push(10));
      c.schedule(20, "b", () => {
        fired.push(20);
        done = true;
      });
      c.schedule(30, "c", () => fired.push(30));
      assert.equal(
        c.runUntilCondition(() => done, 1000),
        true,
      );
      assert.deepEqual(fired, [10, 20]);
      assert.equal(c.now, 20);
      assert.equal(c.pending, 1);
    });

    test("timeout: false, clock at the deadline, later events untouched", () => {
      const c = new VirtualClock();
      const fired: number[] = [];
      c.schedule(10, "a", () => fired.push(10));
      c.schedule(500, "b", () => fired.push(500));
      assert.equal(
        c.runUntilCondition(() => false, 100),
        false,
      );
      assert.deepEqual(fired, [10]);
      assert.equal(c.now, 100);
      assert.equal(c.pending, 1);
    });

    test("an event exactly at the deadline still fires", () => {
      const c = new VirtualClock();
      let done = false;
      c.schedule(100, "a", () => {
        done = true;
      });
      assert.equal(
        c.runUntilCondition(() => done, 100),
        true,
      );
      assert.equal(c.now, 100);
    });

    test("infinite deadline and an idle queue: false, clock where the queue went idle", () => {
      const c = new VirtualClock();
      c.schedule(42, "a", () => {});
      assert.equal(
        c.runUntilCondition(() => false),
        false,
      );
      assert.equal(c.now, 42);
    });

    test("a condition made true by the last event is reported true", () => {
      const c = new VirtualClock();
      let n = 0;
      c.schedule(5, "a", () => n++);
      assert.equal(
        c.runUntilCondition(() => n === 1, 3),
        false,
      );
      assert.equal(c.now, 3);
      assert.equal(
        c.runUntilCondition(() => n === 1, 10),
        true,
      );
      assert.equal(c.now, 5);
    });
  });

  test("runUntilIdle drains chains of events; a self-rescheduling event hits the limit", () => {
    const c = new VirtualClock();
    let n = 0;
    const tick = (): void => {
      n++;
      if (n < 100) c.after(1, "tick", tick);
    };
    c.after(1, "tick", tick);
    c.runUntilIdle();
    assert.equal(n, 100);
    assert.equal(c.now, 100);

    const forever = new VirtualClock();
    const again = (): void => {
      forever.after(1, "again", again);
    };
    forever.after(1, "again", again);
    assert.throws(() => forever.runUntilIdle(50), /still busy after 50 events/);
  });
});
