import assert from "node:assert/strict";
import { describe, test } from "node:test";
import fc from "fast-check";
import {
  cartesianGrid,
  expandRange,
  formatBytes,
  GridError,
  parseGridValue,
  parseNumberOrSize,
  parseVary,
  setPath,
} from "../../src/sweep/grid.js";

const KiB = 1024;
const MiB = 1024 * KiB;

describe("sweep grid: values", () => {
  test("numbers, hex and sizes (binary units, as scenario files: K = KB = KiB)", () => {
    assert.equal(parseNumberOrSize("4096"), 4096);
    assert.equal(parseNumberOrSize("1.5"), 1.5);
    assert.equal(parseNumberOrSize("0x1000"), 4096);
    assert.equal(parseNumberOrSize("64KiB"), 64 * KiB);
    assert.equal(parseNumberOrSize("64K"), 64 * KiB);
    assert.equal(parseNumberOrSize("2 MiB"), 2 * MiB);
    assert.equal(parseNumberOrSize("1G"), 1024 * MiB);
    assert.equal(parseNumberOrSize("1.5M"), 1.5 * MiB);
    assert.equal(parseNumberOrSize("64KB"), 64 * KiB);
    assert.equal(parseNumberOrSize("0x4000_0000"), 1024 * MiB);
    assert.equal(parseNumberOrSize("1.0000001K"), undefined, "not whole bytes");
    assert.equal(parseNumberOrSize("64X"), undefined);
    assert.equal(parseNumberOrSize("streaming"), undefined);
  });

  test("typed by what the text looks like, or by the kind the schema gives", () => {
    assert.equal(parseGridValue("k", "true"), true);
    assert.equal(parseGridValue("k", "false"), false);
    assert.equal(parseGridValue("k", "32MiB"), 32 * MiB);
    assert.equal(parseGridValue("k", "cortex-a9"), "cortex-a9");
    assert.equal(
      parseGridValue("k", "123", "string"),
      "123",
      "a string field keeps digits as text",
    );
    assert.equal(parseGridValue("k", "64K", "number"), 64 * KiB);
    assert.throws(() => parseGridValue("pipeline.frames", "many", "number"), {
      name: "GridError",
      message: /--vary pipeline\.frames: 'many': expected a number/,
    });
    assert.throws(() => parseGridValue("pipeline.cpu.reads", "yes", "boolean"), {
      message: /--vary pipeline\.cpu\.reads: 'yes': expected true or false/,
    });
    assert.throws(() => parseGridValue("k", " "), /empty value/);
  });

  test("formatBytes picks the unit that keeps the figure short", () => {
    assert.equal(formatBytes(64 * KiB), "64 KiB");
    assert.equal(formatBytes(32 * MiB), "32 MiB");
    assert.equal(formatBytes(1536 * KiB), "1.5 MiB");
    assert.equal(formatBytes(100), "100 B");
  });
});

describe("sweep grid: ranges", () => {
  test("geometric, arithmetic and unit steps; the end included when reached", () => {
    assert.deepEqual(
      expandRange("b", "64KiB..1MiB*2"),
      [64, 128, 256, 512, 1024].map((k) => k * KiB),
    );
    assert.deepEqual(expandRange("b", "64KiB..32MiB*2").length, 10);
    assert.deepEqual(expandRange("f", "1..10+3"), [1, 4, 7, 10]);
    assert.deepEqual(expandRange("f", "1..11+3"), [1, 4, 7, 10], "end not reached: not added");
    assert.deepEqual(expandRange("f", "2..5"), [2, 3, 4, 5]);
    assert.deepEqual(expandRange("x", "0.1..0.3+0.1"), [0.1, 0.2, 0.3], "no float drift");
    assert.deepEqual(expandRange("f", "7..7"), [7]);
  });

  test("bad ranges name the key and the text", () => {
    assert.throws(() => expandRange("buffers.bufferBytes", "1MiB..64KiB*2"), {
      name: "GridError",
      message: "--vary buffers.bufferBytes: '1MiB..64KiB*2': range start is above its end",
    });
    assert.throws(() => expandRange("k", "1..8*1"), /factor above 1/);
    assert.throws(() => expandRange("k", "0..8*2"), /start above 0/);
    assert.throws(() => expandRange("k", "1..8+0"), /step must be above 0/);
    assert.throws(() => expandRange("k", "1..8+x"), /step 'x' is not a number/);
    assert.throws(() => expandRange("k", "a..8"), /range start 'a'/);
    assert.throws(() => expandRange("k", "1..1e9"), /more than 100000 values/);
  });
});

describe("sweep grid: --vary", () => {
  test("a list, with ranges among the items", () => {
    assert.deepEqual(parseVary("pipeline.strategy=streaming,whole-cache"), {
      key: "pipeline.strategy",
      values: ["streaming", "whole-cache"],
    });
    assert.deepEqual(parseVary("buffers.bufferBytes=4K,64KiB..256KiB*2").values, [
      4 * KiB,
      64 * KiB,
      128 * KiB,
      256 * KiB,
    ]);
    assert.deepEqual(parseVary(" pipeline.cpu.reads = true , false ").values, [true, false]);
  });

  test("the kind from the schema applies to every item", () => {
    const kindOf = (k: string) => (k === "name" ? ("string" as const) : undefined);
    assert.deepEqual(parseVary("name=1..3,007", kindOf).values, ["1..3", "007"]);
  });

  test("errors name the key and the value", () => {
    assert.throws(() => parseVary("pipeline.strategy"), {
      name: "GridError",
      message: /expected KEY=VALUE/,
    });
    assert.throws(() => parseVary("=1,2"), /expected KEY=VALUE/);
    assert.throws(() => parseVary("pipeline.frames="), /--vary pipeline\.frames: no values/);
    assert.throws(() => parseVary("a..b=1"), /not a dotted field path/);
    assert.throws(
      () => parseVary("pipeline.frames=1,,2"),
      /--vary pipeline\.frames: '': empty value/,
    );
    assert.throws(
      () => parseVary("pipeline.frames=4,4"),
      /--vary pipeline\.frames: '4' is listed twice/,
    );
    assert.throws(() => parseVary("buffers.bufferBytes=64K,64KiB"), /'65536' is listed twice/);
  });
});

describe("sweep grid: cartesian product", () => {
  test("nested loops in argument order: the first key slowest", () => {
    const points = cartesianGrid([
      { key: "a", values: [1, 2] },
      { key: "b", values: ["x", "y", "z"] },
    ]);
    assert.deepEqual(
      points.map((p) => [p.index, p.params["a"], p.params["b"]]),
      [
        [0, 1, "x"],
        [1, 1, "y"],
        [2, 1, "z"],
        [3, 2, "x"],
        [4, 2, "y"],
        [5, 2, "z"],
      ],
    );
    assert.deepEqual(Object.keys(points[0]!.params), ["a", "b"], "params keep the axis order");
    assert.deepEqual(cartesianGrid([]), [{ index: 0, params: {} }], "no axes: one point");
  });

  test("a key twice, an empty axis or a huge grid is refused", () => {
    assert.throws(
      () =>
        cartesianGrid([
          { key: "a", values: [1] },
          { key: "a", values: [2] },
        ]),
      /--vary a: the key is varied twice/,
    );
    assert.throws(() => cartesianGrid([{ key: "a", values: [] }]), /--vary a: no values/);
    const big = Array.from({ length: 400 }, (_, i) => i);
    assert.throws(
      () =>
        cartesianGrid([
          { key: "a", values: big },
          { key: "b", values: big },
        ]),
      /160000 points/,
    );
  });

  test("property: every combination exactly once, index = position", () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 1, max: 4 }), { maxLength: 4 }), (sizes) => {
        const axes = sizes.map((n, i) => ({
          key: `k${i}`,
          values: Array.from({ length: n }, (_, j) => j),
        }));
        const points = cartesianGrid(axes);
        assert.equal(
          points.length,
          sizes.reduce((a, b) => a * b, 1),
        );
        const seen = new Set(points.map((p) => JSON.stringify(p.params)));
        assert.equal(seen.size, points.length);
        for (const [i, p] of points.entries()) assert.equal(p.index, i);
        // Deterministic: the same axes give the same grid.
        assert.deepEqual(cartesianGrid(axes), points);
      }),
    );
  });
});

describe("sweep grid: setPath", () => {
  test("sets nested fields on a copy, creating tables, sharing untouched branches", () => {
    const data = { name: "s", machine: { profile: "arm64" }, pipeline: { frames: 4 } };
    const out = setPath(data, "machine.maintenance.thresholdBytes", 0) as typeof data & {
      machine: { maintenance: { thresholdBytes: number } };
    };
    assert.deepEqual(out, {
      name: "s",
      machine: { profile: "arm64", maintenance: { thresholdBytes: 0 } },
      pipeline: { frames: 4 },
    });
    assert.deepEqual(data.machine, { profile: "arm64" }, "the input is not modified");
    assert.equal(out.pipeline, data.pipeline, "untouched branches are shared");
    assert.deepEqual(setPath({}, "pipeline.strategy", "coherent"), {
      pipeline: { strategy: "coherent" },
    });
    assert.deepEqual(setPath(undefined, "seed", 3), { seed: 3 }, "an empty file is an empty table");
  });

  test("a numeric segment indexes a list", () => {
    const data = { machine: { cache: { levels: [{ sizeBytes: 1 }, { sizeBytes: 2 }] } } };
    assert.deepEqual(setPath(data, "machine.cache.levels.1.sizeBytes", 99), {
      machine: { cache: { levels: [{ sizeBytes: 1 }, { sizeBytes: 99 }] } },
    });
    assert.throws(
      () => setPath(data, "machine.cache.levels.x", 1),
      /'machine\.cache\.levels' is a list; 'x' is not an index/,
    );
    assert.throws(() => setPath(data, "machine.cache.levels.5.ways", 1), /has 2 items, no index 5/);
  });

  test("a path through a value that is not a table is refused, naming the key", () => {
    assert.throws(() => setPath({ machine: "arm64" }, "machine.profile", "x86-64"), {
      name: "GridError",
      message: "--vary machine.profile: 'machine' is a string, not a table of fields",
    });
    assert.throws(() => setPath(7, "a", 1), /'the scenario' is a number/);
    assert.throws(() => setPath({ a: null }, "a.b", 1), /'a' is null/);
  });

  test("prototype keys are not fields", () => {
    assert.throws(() => setPath({}, "__proto__.polluted", 1), GridError);
    assert.throws(() => setPath({}, "a.constructor.prototype", 1), GridError);
    assert.equal(({} as Record<string, unknown>)["polluted"], undefined);
  });
});
