/**
 * The HTML reports in a real browser: Debian's chromium, headless and offline, loads the
 * files from file:// and must render every plot without errors or requests. Skipped when
 * /usr/bin/chromium is not installed (CI installs it).
 */

import assert from "node:assert/strict";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { pathToFileURL } from "node:url";
import { type Browser, chromium, type Page } from "playwright-core";
import { renderRunHtml, renderSweepHtml } from "../../src/report/html.js";
import { runFixture, sweepFixture } from "./fixtures.js";

const CHROMIUM = "/usr/bin/chromium";
const skip = existsSync(CHROMIUM)
  ? false
  : `${CHROMIUM} is not installed (apt-get install chromium)`;

interface Loaded {
  page: Page;
  problems: string[];
}

/** Opens `html` from a file:// URL; collects console errors, page errors and any request. */
async function load(browser: Browser, dir: string, name: string, html: string): Promise<Loaded> {
  const file = join(dir, name);
  writeFileSync(file, html);
  const url = pathToFileURL(file).href;
  const context = await browser.newContext({
    offline: true,
    viewport: { width: 1280, height: 900 },
  });
  const page = await context.newPage();
  const problems: string[] = [];
  page.on("console", (m) => {
    if (m.type() === "error" || m.type() === "warning")
      problems.push(`console ${m.type()}: ${m.text()}`);
  });
  page.on("pageerror", (e) => problems.push(`page error: ${e.message}`));
  page.on("requestfailed", (r) => problems.push(`request failed: ${r.url()}`));
  page.on("request", (r) => {
    if (r.url() !== url) problems.push(`request: ${r.url()}`);
  });
  await page.goto(url, { waitUntil: "load" });
  return { page, problems };
}

/** Width and height of every SVG matching `selector`. */
async function svgSizes(page: Page, selector: string): Promise<{ w: number; h: number }[]> {
  return page.$$eval(selector, (els) =>
    els.map((e) => {
      const r = e.getBoundingClientRect();
      return { w: r.width, h: r.height };
    }),
  );
}

describe("HTML reports in headless chromium", { skip }, () => {
  let browser: Browser;
  let dir: string;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), "dmabuf-report-"));
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ["--no-sandbox"] });
  });

  after(async () => {
    await browser?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it("renders the run report: banner, tables, cost bars and the timeline", async () => {
    const { page, problems } = await load(
      browser,
      dir,
      "run.html",
      await renderRunHtml(runFixture()),
    );
    assert.deepEqual(problems, []);
    const banner = await page.textContent("#verdict");
    assert.match(banner ?? "", /INCOHERENT/);
    const bannerColor = await page.evaluate(
      "getComputedStyle(document.getElementById('verdict')).backgroundColor",
    );
    assert.equal(bannerColor, "rgb(253, 226, 225)", "inline CSS applied");
    for (const s of await svgSizes(page, "svg")) {
      assert.ok(s.w > 100 && s.h > 100, `svg ${s.w}x${s.h}`);
    }
    // Cost plot: stacked bars (vega draws each as a path in a rect mark group).
    const bars = await page.$$eval("#cost-plot svg g.mark-rect path", (els) => els.length);
    assert.ok(bars >= 8 * 3, `${bars} bars`);
    assert.match((await page.textContent("#cost-plot svg")) ?? "", /µs per frame/);
    // Timeline: spans with area, one violation marker, the wrong frame.
    const spans = await page.$$eval(
      "#timeline-plot rect.span",
      (els) => els.filter((e) => e.getBoundingClientRect().width > 0).length,
    );
    assert.ok(spans > 20, `${spans} spans`);
    assert.equal(await page.$$eval("#timeline-plot path.violation", (e) => e.length), 1);
    assert.equal(await page.$$eval("#timeline-plot rect.frame-bad", (e) => e.length), 1);
    const lanes = await page.$$eval("#timeline-plot text.lane-label", (els) =>
      els.map((e) => e.textContent),
    );
    for (const t of ["cpu", "vivid-cap", "simdisplay", "cam0", "fences", "frames"]) {
      assert.ok(lanes.includes(t), `lane ${t}`);
    }
    // The wrong frame's row is highlighted.
    const badRows = await page.$$eval("#frames + table tr.bad", (els) =>
      els.map((e) => e.textContent),
    );
    assert.equal(badRows.length, 1);
    assert.match(badRows[0] ?? "", /MISMATCH/);
    await page.screenshot({ path: "/tmp/dmabuf-run-report.png", fullPage: true });
  });

  it("renders the sweep report: one log-log plot per profile, a plot per other key", async () => {
    const sweep = sweepFixture();
    const { page, problems } = await load(browser, dir, "sweep.html", await renderSweepHtml(sweep));
    assert.deepEqual(problems, []);
    const sizes = await svgSizes(page, ".sweep-plot svg");
    assert.equal(sizes.length, 3);
    for (const s of sizes) assert.ok(s.w > 200 && s.h > 150, `svg ${s.w}x${s.h}`);
    const plots = await page.$$eval(".sweep-plot svg", (els) =>
      els.map((e) => ({
        text: e.textContent ?? "",
        lines: e.querySelectorAll("g.mark-line path").length,
        points: e.querySelectorAll("g.mark-symbol path").length,
      })),
    );
    // Four strategies times two sources, one line each, on the main plots; a point per run.
    assert.equal(plots[0]!.lines, 8);
    assert.ok(plots[0]!.points >= 40);
    assert.match(plots[0]!.text, /arm64: sharing cost per frame vs buffer size/);
    assert.match(plots[0]!.text, /1 MiB/);
    assert.match(plots[0]!.text, /whole-cache wins from 1 MiB/);
    assert.match(plots[1]!.text, /riscv64/);
    assert.match(plots[2]!.text, /source/);
    const bad = await page.$$eval("tr.bad", (els) => els.length);
    assert.equal(bad, 2);
    await page.screenshot({ path: "/tmp/dmabuf-sweep-report.png", fullPage: true });
  });
});
