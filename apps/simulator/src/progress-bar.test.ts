import { describe, expect, it } from 'vitest';
import { NS_PER_S } from '@pagevisor/types';
import { formatProgress, ProgressBar } from './progress-bar.js';

describe('formatProgress', () => {
  it('shows simulated time, pages and an ETA from the wall time so far', () => {
    expect(formatProgress({ simNs: 15 * NS_PER_S, totalNs: 60 * NS_PER_S, pagesDone: 1234 }, 2000, 8)).toBe(
      '[##------] 15.0/60.0 s simulated  1234 pages  ETA 6 s',
    );
    expect(formatProgress({ simNs: 0, totalNs: 60 * NS_PER_S, pagesDone: 0 }, 10, 4)).toBe(
      '[----] 0.0/60.0 s simulated  0 pages  ETA ?',
    );
    expect(formatProgress({ simNs: 5, totalNs: 0, pagesDone: 9 }, 10, 4)).toMatch(/^\[####\] .* ETA 0 s$/);
  });
});

describe('ProgressBar', () => {
  it('draws in place, at most once per interval, and erases itself', () => {
    let out = '';
    const bar = new ProgressBar({ write: (t: string) => (out += t) }, 4, 60_000);
    bar.clear();
    expect(out).toBe('');
    bar.update({ simNs: 1, totalNs: 2, pagesDone: 3 });
    bar.update({ simNs: 2, totalNs: 2, pagesDone: 4 });
    expect(out.match(/\r\x1b\[K\[/g)).toHaveLength(1);
    expect(out).toContain('3 pages');
    bar.clear();
    expect(out.endsWith('\r\x1b[K')).toBe(true);
  });
});
