import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { renderRunHtml, renderSweepHtml } from "../../src/report/html.js";
import { escapeXml, SPAN_BUDGET, timelineSvg } from "../../src/report/plots.js";
import { wholeCacheCrossover } from "../../src/report/sharing-cost.js";
import { runFixture, sweepFixture } from "./fixtures.js";

/** Every attribute of every tag, values unescaped of their quotes. */
function attributes(html: string): { tag: string; name: string; value: string }[] {
  const out: { tag: string; name: string; value: string }[] = [];
  for (const tag of html.matchAll(
    /<([a-zA-Z][\w:-]*)((?:\s+[^\s=>/]+(?:\s*=\s*(?:"[^"]*"|'[^']*'|[^\s>]+))?)*)\s*\/?>/g,
  )) {
    for (const a of tag[2]!.matchAll(/([^\s=>/]+)(?:\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s>]+)))?/g)) {
      out.push({ tag: tag[1]!, name: a[1]!.toLowerCase(), value: a[2] ?? a[3] ?? a[4] ?? "" });
    }
  }
  return out;
}

/** No request of any kind: no script, no external link, no URL in src/href/url(). */
function assertSelfContained(html: string): void {
  assert.doesNotMatch(html, /<script/i, "a <script> element");
  assert.doesNotMatch(html, /<link\b/i, "a <link> element");
  assert.doesNotMatch(html, /<iframe|<object|<embed|<img/i);
  const attrs = attributes(html);
  assert.ok(attrs.length > 100, "the attribute scanner found the attributes");
  for (const a of attrs) {
    if (a.name === "src" || a.name === "href" || a.name === "xlink:href" || a.name === "action") {
      assert.match(a.value, /^(#|data:)/, `<${a.tag} ${a.name}="${a.value}">`);
    }
    assert.doesNotMatch(a.name, /^on/, `event handler ${a.name} on <${a.tag}>`);
    assert.doesNotMatch(a.value, /url\(\s*["']?(https?:)?\/\//i);
  }
  assert.doesNotMatch(html, /url\(\s*["']?(https?:)?\/\//i, "an external url()");
  assert.doesNotMatch(html, /@import/i);
  assert.match(html, /Content-Security-Policy" content="default-src 'none'/);
}

describe("HTML run report", () => {
  it("is one self-contained file with inline SVG plots", async () => {
    const html = await renderRunHtml(runFixture());
    assertSelfContained(html);
    assert.match(html, /^<!DOCTYPE html>/);
    assert.ok((html.match(/<svg/g) ?? []).length >= 2, "cost plot and timeline");
    assert.match(html, /<svg[^>]*class="timeline"/);
    assert.match(html, /µs per frame/);
  });

  it("shows the verdict, the violation with its hint and the CRC mismatch", async () => {
    const html = await renderRunHtml(runFixture());
    assert.match(html, /class="banner incoherent"/);
    assert.match(html, /INCOHERENT/);
    assert.match(html, /stale-cpu-read/);
    assert.match(html, /DMA_BUF_IOCTL_SYNC\(DMA_BUF_SYNC_START \| DMA_BUF_SYNC_READ\)/);
    const bad = html.match(/<tr class="bad"><td class="num">5<\/td>.*?<\/tr>/);
    assert.ok(bad, "frame 5 row highlighted");
    assert.match(bad[0], /MISMATCH/);
    assert.equal((html.match(/MISMATCH/g) ?? []).length, 1);
    const good = await renderRunHtml(runFixture({ badFrame: -1 }));
    assert.match(good, /class="banner coherent"/);
    assert.doesNotMatch(good, /MISMATCH/);
    assert.match(good, /The checker found nothing/);
  });

  it("escapes every text it embeds", async () => {
    const evil = `<script>alert("x")</script> & <img src=http://evil/>`;
    const html = await renderRunHtml(runFixture({ message: evil }));
    assertSelfContained(html);
    assert.ok(html.includes(escapeXml(evil)));
  });

  it("draws the timeline with lanes, spans, frame marks and violation markers", () => {
    const svg = timelineSvg(runFixture());
    for (const track of ["cpu", "vivid-cap", "simdisplay", "cam0", "cam3", "fences", "frames"]) {
      assert.match(svg, new RegExp(`>${track}</text>`), track);
    }
    assert.ok((svg.match(/class="span"/g) ?? []).length > 10);
    assert.equal((svg.match(/class="violation"/g) ?? []).length, 1);
    assert.equal((svg.match(/class="frame-bad"/g) ?? []).length, 1);
    assert.ok((svg.match(/class="frame-ok"/g) ?? []).length >= 1);
    assert.match(svg, /fill="#edc948"/, "vivid-cap ownership colour");
  });

  it("stays bounded for long runs", async () => {
    const r = runFixture({ frames: 3000 });
    assert.ok(r.trace.length > 35_000);
    const svg = timelineSvg(r);
    assert.ok(svg.length < 400_000, `timeline ${svg.length} bytes`);
    assert.ok((svg.match(/class="span"/g) ?? []).length <= SPAN_BUDGET);
    // The one wrong frame and the violation are still drawn.
    assert.equal((svg.match(/class="frame-bad"/g) ?? []).length, 1);
    assert.equal((svg.match(/class="violation"/g) ?? []).length, 1);
    const html = await renderRunHtml(r);
    // Frame table rows dominate; the plots stay small.
    assert.ok(html.length < 1_500_000, `html ${html.length} bytes`);
    assert.match(html, /mean of 25/);
  });

  it("renders a run without trace or frames", async () => {
    const html = await renderRunHtml(runFixture({ trace: false }));
    assertSelfContained(html);
    assert.match(html, /No trace was recorded/);
    const empty = await renderRunHtml(runFixture({ frames: 0, badFrame: -1 }));
    assert.match(empty, /No frame was displayed/);
  });
});

describe("HTML sweep report", () => {
  it("plots cost vs buffer size per profile, a plot per other key, and the table", async () => {
    const sweep = sweepFixture();
    const html = await renderSweepHtml(sweep);
    assertSelfContained(html);
    // arm64, riscv64, and "source".
    assert.equal((html.match(/<div class="plot sweep-plot">/g) ?? []).length, 3);
    assert.match(html, /arm64: sharing cost per frame vs buffer size/);
    assert.match(html, /riscv64: sharing cost per frame vs buffer size/);
    assert.match(html, /cost per frame vs source/);
    assert.match(html, /buffer size/);
    assert.equal((html.match(/<tr/g) ?? []).length >= sweep.rows.length, true);
    // Incoherent and failed runs are marked.
    assert.match(html, /SOME RUNS INCOHERENT/);
    assert.equal((html.match(/<tr class="bad">/g) ?? []).length, 2);
    assert.match(html, /ENOMEM: dma_alloc_coherent: &lt;no CMA&gt; &amp; no memory/);
  });

  it("takes the varied keys as `dmabuf sweep --vary` names them (scenario paths)", async () => {
    const sweep = sweepFixture();
    const rename: Record<string, string> = {
      profile: "machine.profile",
      strategy: "pipeline.strategy",
      bufferBytes: "buffers.bufferBytes",
      source: "buffers.source",
    };
    const dotted = {
      ...sweep,
      keys: sweep.keys.map((k) => rename[k]!),
      rows: sweep.rows.map((r) => ({
        ...r,
        params: Object.fromEntries(Object.entries(r.params).map(([k, v]) => [rename[k]!, v])),
      })),
    };
    const html = await renderSweepHtml(dotted);
    // Two profiles plus buffers.source: no plot for the main plot's own axes.
    assert.equal((html.match(/<div class="plot sweep-plot">/g) ?? []).length, 3);
    assert.match(html, /sharing cost per frame vs buffers.source/);
    assert.doesNotMatch(html, /cost per frame vs (machine.profile|pipeline.strategy)/);
    assert.match(html, /<th>buffers.source<\/th>/);
    assert.doesNotMatch(html, /<th>machine.profile<\/th>/);
  });

  it("finds where whole-cache flushing starts to win", async () => {
    const sweep = sweepFixture();
    assert.equal(wholeCacheCrossover(sweep.rows, "arm64")?.bytes, 1048576);
    assert.equal(wholeCacheCrossover(sweep.rows, "riscv64")?.bytes, 4194304);
    const html = await renderSweepHtml(sweep);
    assert.match(html, /arm64: whole-cache cheaper than per-line \(streaming\) from 1 MiB/);
    assert.match(html, /riscv64: whole-cache cheaper than per-line \(streaming\) from 4 MiB/);
    assert.match(html, /whole-cache wins from 1 MiB/, "rule label in the plot");
    const noWhole = { ...sweep, rows: sweep.rows.filter((r) => r.strategy !== "whole-cache") };
    assert.equal(wholeCacheCrossover(noWhole.rows, "arm64"), undefined);
  });

  it("escapes titles, parameters and strategy names, also inside the plots", async () => {
    const sweep = sweepFixture(`<script>alert(1)</script>`);
    const rows = sweep.rows.map((r) =>
      r.strategy === "streaming"
        ? { ...r, strategy: "<b>streaming</b>", params: { ...r.params, source: "<i>x</i>" } }
        : r,
    );
    const html = await renderSweepHtml({ ...sweep, rows });
    assertSelfContained(html);
    assert.match(html, /&lt;script&gt;alert\(1\)&lt;\/script&gt;/);
    assert.doesNotMatch(html, /<b>streaming<\/b>|<i>x<\/i>/);
    assert.match(html, /&lt;b&gt;streaming&lt;\/b&gt;/);
  });
});
