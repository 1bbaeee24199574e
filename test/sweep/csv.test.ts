import assert from "node:assert/strict";
import { describe, test } from "node:test";
import fc from "fast-check";
import { COST_CATEGORIES, type CostCategory } from "../../src/machine/cost.js";
import type { SweepReport, SweepRow } from "../../src/report/sweep-types.js";
import { csvField, csvHeader, sweepCsv, sweepJson } from "../../src/sweep/csv.js";

/** A strict RFC 4180 reader, to check what the writer produces. */
function parseCsv(text: string): string[][] {
  const records: string[][] = [];
  let field = "";
  let record: string[] = [];
  let i = 0;
  let quoted = false;
  while (i < text.length) {
    const ch = text[i]!;
    if (quoted) {
      if (ch === '"' && text[i + 1] === '"') {
        field += '"';
        i += 2;
      } else if (ch === '"') {
        quoted = false;
        i++;
      } else {
        field += ch;
        i++;
      }
    } else if (ch === '"') {
      assert.equal(field, "", "a quote only opens a field");
      quoted = true;
      i++;
    } else if (ch === ",") {
      record.push(field);
      field = "";
      i++;
    } else if (ch === "\r" && text[i + 1] === "\n") {
      record.push(field);
      records.push(record);
      record = [];
      field = "";
      i += 2;
    } else {
      assert.ok(ch !== "\r" && ch !== "\n", "bare CR/LF only inside quotes");
      field += ch;
      i++;
    }
  }
  assert.equal(quoted, false);
  assert.equal(field, "");
  assert.equal(record.length, 0, "every record ends with CRLF");
  return records;
}

function perFrame(m: number): Record<CostCategory, number> {
  const out = {} as Record<CostCategory, number>;
  COST_CATEGORIES.forEach((c, i) => {
    out[c] = m * (i + 1);
  });
  return out;
}

function row(params: SweepRow["params"], extra: Partial<SweepRow> = {}): SweepRow {
  return {
    params,
    verdict: "coherent",
    violations: 0,
    framesOk: 4,
    frames: 4,
    bufferBytes: 65536,
    profile: "arm64",
    strategy: "streaming",
    perFrame: perFrame(1.25),
    sharingPerFrameNs: 1.25 * (1 + 2 + 4 + 5),
    totalPerFrameNs: 26.25,
    ...extra,
  };
}

describe("sweep CSV", () => {
  test("fields are quoted only when RFC 4180 needs it; quotes are doubled", () => {
    assert.equal(csvField("plain"), "plain");
    assert.equal(csvField("a,b"), '"a,b"');
    assert.equal(csvField('say "hi"'), '"say ""hi"""');
    assert.equal(csvField("two\nlines"), '"two\nlines"');
    assert.equal(csvField("cr\rhere"), '"cr\rhere"');
    assert.equal(csvField(" spaced "), " spaced ");
    assert.equal(csvField(undefined), "");
    assert.equal(csvField(true), "true");
    assert.equal(csvField(12), "12");
    assert.equal(csvField(0.1 + 0.2), "0.3", "no float noise");
    assert.equal(csvField(1234.56789), "1234.568");
  });

  test("columns: the varied keys, then verdict, counts, cost per category, total, error", () => {
    assert.deepEqual(csvHeader(["machine.profile", "buffers.bufferBytes"]), [
      "machine.profile",
      "buffers.bufferBytes",
      "verdict",
      "violations",
      "frames_ok",
      "frames",
      "cpu-access_ns",
      "cache-maintenance_ns",
      "dma_ns",
      "bounce_ns",
      "iommu_ns",
      "wait_ns",
      "sharing_ns",
      "total_ns",
      "error",
    ]);
  });

  test("a report round-trips through a strict reader, in row order, CRLF-terminated", () => {
    const report: SweepReport = {
      title: "t",
      keys: ["name", "buffers.bufferBytes"],
      rows: [
        row({ name: 'a "quoted", name', "buffers.bufferBytes": 65536 }),
        row(
          { name: "multi\nline", "buffers.bufferBytes": 131072 },
          { verdict: "incoherent", violations: 3, framesOk: 1, error: "boom, it said" },
        ),
      ],
    };
    const text = sweepCsv(report);
    assert.ok(text.endsWith("\r\n"));
    const records = parseCsv(text);
    assert.equal(records.length, 3);
    assert.deepEqual(records[0], csvHeader(report.keys));
    assert.deepEqual(records[1]!.slice(0, 6), [
      'a "quoted", name',
      "65536",
      "coherent",
      "0",
      "4",
      "4",
    ]);
    assert.deepEqual(records[1]!.slice(6, 12), ["1.25", "2.5", "3.75", "5", "6.25", "7.5"]);
    assert.equal(records[1]![12], "15", "sharing: cpu-access + cache-maintenance + bounce + iommu");
    assert.equal(records[1]![13], "26.25");
    assert.equal(records[1]![14], "");
    assert.deepEqual(records[2]!.slice(0, 5), ["multi\nline", "131072", "incoherent", "3", "1"]);
    assert.equal(records[2]![14], "boom, it said");
  });

  test("property: any text in a parameter survives the round trip", () => {
    fc.assert(
      fc.property(
        fc.array(fc.string({ unit: "binary" }), { minLength: 1, maxLength: 5 }),
        (names) => {
          const report: SweepReport = {
            title: "p",
            keys: ["name"],
            rows: names.map((n) => row({ name: n })),
          };
          const records = parseCsv(sweepCsv(report));
          assert.deepEqual(
            records.slice(1).map((r) => r[0]),
            names,
          );
          for (const r of records) assert.equal(r.length, records[0]!.length);
        },
      ),
    );
  });

  test("JSON is the report itself", () => {
    const report: SweepReport = { title: "t", keys: ["a"], rows: [row({ a: 1 })] };
    const text = sweepJson(report);
    assert.ok(text.endsWith("}\n"));
    const { conclusions, ...rest } = JSON.parse(text);
    assert.deepEqual(rest, report);
    assert.ok(Array.isArray(conclusions));
  });
});
