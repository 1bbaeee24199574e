/**
 * The registered call sites of src/, read from the source with the TypeScript compiler:
 * every call outside the model's own layers (machine, DMA API, kernel, VFS, uAPI) that
 * maintains the CPU cache or hands a buffer between the CPU and a device through the
 * fault injector's call points (src/machine/fault-inject.ts):
 *
 * - the DMA API's syncs, maps and unmaps (not those with DMA_ATTR_SKIP_CPU_SYNC, which
 *   maintain nothing), dma_alloc_coherent, and a driver's own `Machine.maintain`;
 * - videobuf2's prepare and finish memops (at QBUF, at buffer_done, at STREAMOFF);
 * - userspace's DMA_BUF_IOCTL_SYNC;
 *
 * and, inside the layers, every fault point a call can reach (the swiotlb bounce copies,
 * the arch syncs, the dma-buf brackets). Each is named as the fault injector names the
 * functions on a call's stack (`FaultSiteStats.via`), so a run's records say which were
 * reached.
 */

import { readdirSync, readFileSync, statSync } from "node:fs";
import { join, relative } from "node:path";
import ts from "typescript";

/** A call point in a driver, stage or program. */
export interface CallPoint {
  /** src-relative file. */
  readonly file: string;
  readonly line: number;
  /** Module (file name without extension), as the stack names it. */
  readonly module: string;
  /** The class whose instances run the enclosing method (a concrete subclass for an abstract class's method). */
  readonly cls?: string;
  /** The enclosing named function or method. */
  readonly fn: string;
  /** The function called ("dmaSyncSgtableForCpu", "finish", "dmaBufSync"). */
  readonly callee: string;
}

/** The model's own layers: their calls are not call sites (the first caller outside them is). */
const LAYERS = /^(?:machine|dma|vfs|uapi|kernel|include)\/|^dma-buf\/dma-buf\.ts$/;

const DMA_API = new Set([
  "dmaSyncSgtableForCpu",
  "dmaSyncSgtableForDevice",
  "dmaSyncSgForCpu",
  "dmaSyncSgForDevice",
  "dmaSyncSingleForCpu",
  "dmaSyncSingleForDevice",
  "dmaSyncSingleRangeForCpu",
  "dmaSyncSingleRangeForDevice",
  "dmaMapSgtable",
  "dmaMapSg",
  "dmaUnmapSgtable",
  "dmaUnmapSg",
  "dmaMapSingle",
  "dmaUnmapSingle",
  "dmaMapPage",
  "dmaUnmapPage",
  "dmaAllocCoherent",
  "maintain",
  "dmaBufSync",
  "dmaBufSyncIoctl",
]);

/** videobuf2's memop hand-overs, called on a plane's `mem`. */
const MEMOPS = new Set(["prepare", "finish"]);

function walk(dir: string, out: string[]): string[] {
  for (const e of readdirSync(dir)) {
    const p = join(dir, e);
    if (statSync(p).isDirectory()) walk(p, out);
    else if (p.endsWith(".ts") && !p.endsWith(".d.ts")) out.push(p);
  }
  return out;
}

/** Every call point of src/ outside the layers. */
export function callPoints(root: string): CallPoint[] {
  const src = join(root, "src");
  const out: CallPoint[] = [];
  for (const path of walk(src, [])) {
    const file = relative(src, path).replace(/\\/g, "/");
    if (LAYERS.test(file)) continue;
    const text = readFileSync(path, "utf8");
    const sf = ts.createSourceFile(path, text, ts.ScriptTarget.ES2022, true);
    const module = file.split("/").pop()!.replace(/\.ts$/, "");
    // Classes of the file: name -> (abstract, base, own method names).
    const classes = new Map<string, { abstract: boolean; base?: string; methods: Set<string> }>();
    sf.forEachChild(function collect(n) {
      if (ts.isClassDeclaration(n) && n.name !== undefined) {
        const base = n.heritageClauses?.find((h) => h.token === ts.SyntaxKind.ExtendsKeyword)
          ?.types[0]?.expression;
        classes.set(n.name.text, {
          abstract: (ts.getCombinedModifierFlags(n) & ts.ModifierFlags.Abstract) !== 0,
          ...(base !== undefined && ts.isIdentifier(base) ? { base: base.text } : {}),
          methods: new Set(
            n.members
              .filter((m) => ts.isMethodDeclaration(m) && m.name !== undefined)
              .map((m) => m.name!.getText(sf)),
          ),
        });
      }
      n.forEachChild(collect);
    });
    const visit = (n: ts.Node): void => {
      if (ts.isCallExpression(n)) {
        const callee = ts.isPropertyAccessExpression(n.expression)
          ? n.expression.name.text
          : ts.isIdentifier(n.expression)
            ? n.expression.text
            : undefined;
        const receiver = ts.isPropertyAccessExpression(n.expression)
          ? n.expression.expression.getText(sf)
          : "";
        const point =
          callee !== undefined &&
          ((DMA_API.has(callee) &&
            !n.arguments.some((a) => a.getText(sf).includes("DMA_ATTR_SKIP_CPU_SYNC"))) ||
            (MEMOPS.has(callee) && /\.mem\??$/.test(receiver)));
        if (point) {
          const where = enclosing(n, sf);
          if (where !== undefined) {
            // An abstract class's method runs as each concrete subclass that inherits it
            // (SgPlane.prepare is SgMmapBuf's and SgUserptrBuf's): one call point each.
            const c = where.cls === undefined ? undefined : classes.get(where.cls);
            const runAs = c?.abstract
              ? [...classes]
                  .filter(([, k]) => k.base === where.cls && !k.methods.has(where.fn))
                  .map(([name]) => name)
              : [where.cls];
            for (const cls of runAs)
              out.push({
                file,
                line: sf.getLineAndCharacterOfPosition(n.getStart(sf)).line + 1,
                module,
                ...(cls !== undefined ? { cls } : {}),
                fn: where.fn,
                callee,
              });
          }
        }
      }
      n.forEachChild(visit);
    };
    visit(sf);
  }
  return out;
}

/** The named function or method holding `n`, and its class. */
function enclosing(n: ts.Node, sf: ts.SourceFile): { fn: string; cls?: string } | undefined {
  for (let p: ts.Node | undefined = n.parent; p !== undefined; p = p.parent) {
    if (ts.isMethodDeclaration(p) || ts.isGetAccessor(p)) {
      const cls = ts.isClassLike(p.parent) ? p.parent.name?.text : undefined;
      return { fn: p.name.getText(sf), ...(cls !== undefined ? { cls } : {}) };
    }
    if (ts.isFunctionDeclaration(p) && p.name !== undefined) return { fn: p.name.text };
    if (
      (ts.isArrowFunction(p) || ts.isFunctionExpression(p)) &&
      (ts.isVariableDeclaration(p.parent) || ts.isPropertyAssignment(p.parent)) &&
      ts.isIdentifier(p.parent.name)
    )
      return { fn: p.parent.name.text };
  }
  return undefined;
}

/** Whether a stack name from `FaultSiteStats.via` ("videobuf2-dma-sg.SgUserptrBuf.prepare", "graph-run.#map") is the call point's function. */
export function reachedBy(p: CallPoint, via: string): boolean {
  if (!via.startsWith(`${p.module}.`)) return false;
  const name = via.slice(p.module.length + 1);
  const dot = name.lastIndexOf(".");
  const fn = dot < 0 ? name : name.slice(dot + 1);
  const cls = dot < 0 ? undefined : name.slice(0, dot);
  if (fn !== p.fn) return false;
  // V8 names a private method without its class ("#map"), a method by the receiver's class.
  return cls === undefined || p.cls === undefined || p.cls === cls;
}

/**
 * The fault points inside the layers (the names the injector is consulted with): string
 * literals of those shapes in src/dma, src/dma-buf/dma-buf.ts and src/machine/machine.ts.
 */
export function layerFaultPoints(root: string): string[] {
  const files = [...walk(join(root, "src/dma"), []), join(root, "src/dma-buf/dma-buf.ts")];
  const names = new Set<string>();
  const shape =
    /"((?:arch_sync_dma_for_(?:cpu|device))|arch_dma_prep_coherent|swiotlb_(?:tbl_map_single|tbl_unmap_single|sync_single_for_cpu|sync_single_for_device)|dma_sync_(?:single|sg|sgtable)_for_(?:cpu|device)|DMA_BUF_IOCTL_SYNC\((?:START|END)\)|dma_pgprot)"/g;
  for (const f of files) for (const m of readFileSync(f, "utf8").matchAll(shape)) names.add(m[1]!);
  return [...names].sort();
}
