import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseScenario } from '@pagevisor/workloads';
import { writeHtmlReport } from '../src/html-report.js';
import { runScenario } from '../src/run-scenario.js';
import { ensureApt, INSTALL_TIMEOUT_MS } from './ensure-apt.js';
import { tinySwapScenario } from './tiny-swap.js';

/**
 * Opens a real report in headless Chromium (Debian's, installed by scripts/ensure-apt.sh
 * when missing): the page must parse and lay out with every chart drawn, no label overlapping
 * another, and nothing on the console.
 */

const CHROMIUM = '/usr/bin/chromium';

/** Every chart has data; the scenario's name needs escaping. */
const TINY_SWAP = parseScenario(tinySwapScenario('chromium <img src=x onerror="document.body.dataset.pwned=1"> & co'));

/**
 * Appended to the page for the test only (the report has no script): measures the laid-out SVG
 * and leaves its findings as attributes of <body> for --dump-dom.
 */
const PROBE = `<script>
(() => {
  const charts = [...document.querySelectorAll('svg[data-chart]')];
  const drawn = charts.filter((svg) =>
    [...svg.querySelectorAll('.data path, .data rect')].some((el) => { const b = el.getBBox(); return b.width > 0 && b.height > 0; }));
  const problems = [];
  for (const svg of charts) {
    const box = svg.getBoundingClientRect();
    const texts = [...svg.querySelectorAll('text')].filter((t) => t.textContent.trim() !== '');
    const rects = texts.map((t) => t.getBoundingClientRect());
    rects.forEach((a, i) => {
      const name = svg.dataset.chart + ': "' + texts[i].textContent + '"';
      if (a.width === 0) problems.push(name + ' has no width');
      if (a.left < box.left - 0.5 || a.right > box.right + 0.5 || a.top < box.top - 0.5 || a.bottom > box.bottom + 0.5) problems.push(name + ' sticks out of its chart');
      for (let j = i + 1; j < rects.length; j++) {
        const b = rects[j];
        const w = Math.min(a.right, b.right) - Math.max(a.left, b.left);
        const h = Math.min(a.bottom, b.bottom) - Math.max(a.top, b.top);
        if (w > 0.5 && h > 0.5) problems.push(name + ' overlaps "' + texts[j].textContent + '"');
      }
    });
  }
  document.body.dataset.charts = String(charts.length);
  document.body.dataset.drawn = drawn.map((svg) => svg.dataset.chart).join(' ');
  document.body.dataset.problems = JSON.stringify(problems);
})();
</script>`;

interface Run {
  readonly stdout: string;
  readonly stderr: string;
}

function chromium(url: string, userDataDir: string): Promise<Run> {
  const args = [
    '--headless',
    '--no-sandbox',
    '--disable-gpu',
    '--disable-quic',
    '--no-first-run',
    '--disable-background-networking',
    '--disable-component-update',
    '--disable-sync',
    `--user-data-dir=${userDataDir}`,
    '--enable-logging=stderr',
    '--v=0',
    '--virtual-time-budget=2000',
    '--window-size=1280,1600',
    '--dump-dom',
    url,
  ];
  return new Promise((resolve, reject) => {
    execFile(CHROMIUM, args, { timeout: 120_000, maxBuffer: 64 * 1024 * 1024 }, (error, stdout, stderr) => {
      if (error !== null) reject(new Error(`chromium failed: ${error.message}\n${stderr}`));
      else resolve({ stdout, stderr });
    });
  });
}

let dir: string;
let page: string;
let run: Run;

beforeAll(async () => {
  ensureApt(CHROMIUM, 'chromium');
  dir = await mkdtemp(join(tmpdir(), 'pagevisor-chromium-test-'));
  const file = join(dir, 'report.html');
  await writeHtmlReport(await runScenario(TINY_SWAP), file);
  page = await readFile(file, 'utf8');
  const probed = join(dir, 'probed.html');
  await writeFile(probed, page.replace('</body>', `${PROBE}</body>`));
  run = await chromium(pathToFileURL(probed).href, join(dir, 'profile'));
}, INSTALL_TIMEOUT_MS + 180_000);

afterAll(async () => {
  if (dir !== undefined) await rm(dir, { recursive: true, force: true });
});

describe('the HTML report in headless Chromium', () => {
  it('parses to the five charts, each with drawn paths or bars', () => {
    const charts = [...run.stdout.matchAll(/<svg class="chart" data-chart="([a-z-]+)"[^]*?<\/svg>/g)];
    expect(charts.map((m) => m[1])).toEqual(['frames', 'swap', 'faults', 'swap-rates', 'domains']);
    for (const [svg, id] of charts) {
      const drawn = [...svg.matchAll(/<path d="(M[^"]+)"/g)].length + [...svg.matchAll(/<rect class="bar"[^>]* width="([\d.]+)"/g)].filter((m) => Number(m[1]) > 0).length;
      expect(drawn, id).toBeGreaterThan(0);
    }
  });

  it('lays out every chart with drawn content and no label overlapping another or leaving its chart', () => {
    const body = /<body([^>]*)>/.exec(run.stdout)![1]!;
    const attr = (name: string): string => {
      const m = new RegExp(`data-${name}="([^"]*)"`).exec(body);
      expect(m, `body data-${name}: did the probe run?`).not.toBeNull();
      return m![1]!.replaceAll('&quot;', '"').replaceAll('&amp;', '&');
    };
    expect(attr('charts')).toBe('5');
    expect(attr('drawn')).toBe('frames swap faults swap-rates domains');
    expect(JSON.parse(attr('problems'))).toEqual([]);
  });

  it('shows the scenario name as text: escaped markup creates no element', () => {
    expect(run.stdout).not.toContain('data-pwned');
    expect(run.stdout).not.toMatch(/<img/i);
    expect(run.stdout).toContain('chromium &lt;img src=x onerror="document.body.dataset.pwned=1"&gt; &amp; co');
  });

  it('logs nothing to the console', () => {
    const consoleLines = run.stderr.split('\n').filter((l) => /CONSOLE|Uncaught/.test(l));
    expect(consoleLines).toEqual([]);
  });
});
