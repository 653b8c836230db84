import { readFileSync } from 'node:fs';
import { Errno, PAGE_SIZE } from '@pagevisor/types';
import { describe, expect, it } from 'vitest';
import { ABI_DOC_COMMAND, opHeading, renderAbiDoc } from './abi-doc.js';
import { renderAbiDoc as exported } from './index.js';
import { FIELD_SIZE, OP_LAYOUTS, REQUEST_HEADER, RESPONSE_HEADER, type OpLayout, type StructLayout } from './layout.js';
import { MEM_FLAGS_KNOWN } from './op-numbers.js';
import { HYPERCALL_OPS } from './request.js';

const doc = renderAbiDoc();
const layouts = Object.values(OP_LAYOUTS) as OpLayout[];

/** The text from `heading` to the next heading of the same or a higher level. */
function section(text: string, heading: string): string {
  const start = text.indexOf(`\n${heading}\n`);
  expect(start, `no section "${heading}"`).toBeGreaterThanOrEqual(0);
  const level = heading.indexOf(' ');
  const rest = text.slice(start + heading.length + 2);
  const next = rest.search(new RegExp(`^#{1,${level}} `, 'm'));
  return next < 0 ? rest : rest.slice(0, next);
}

/** The body rows of the first Markdown table in `text`, cells split on unescaped pipes. */
function tableRows(text: string): string[][] {
  const lines = text.split('\n');
  const start = lines.findIndex((l) => l.startsWith('| '));
  if (start < 0) return [];
  const end = lines.findIndex((l, i) => i > start && !l.startsWith('| '));
  const rows = lines.slice(start + 2, end < 0 ? undefined : end);
  return rows.map((l) => l.slice(2, -2).split(/ (?<!\\)\| /));
}

/** Asserts that `file` (the text of ABI.md) is the generated document. */
function expectUpToDate(file: string): void {
  expect(file, `packages/hypercall-abi/ABI.md is out of date: run \`${ABI_DOC_COMMAND}\` from the repository root`).toBe(doc);
}

describe('ABI.md', () => {
  it('is exactly what renderAbiDoc() gives', () => {
    expectUpToDate(readFileSync(new URL('../ABI.md', import.meta.url), 'utf8'));
  });

  it('when stale, fails telling how to regenerate it', () => {
    const stale = doc.replace('| 8 | 2 | u16 | `domid` |', '| 8 | 4 | u32 | `domid` |');
    expect(stale).not.toBe(doc);
    expect(() => expectUpToDate(stale)).toThrow(`run \`${ABI_DOC_COMMAND}\``);
  });
});

describe('renderAbiDoc', () => {
  it('is exported from the package and deterministic', () => {
    expect(exported).toBe(renderAbiDoc);
    expect(renderAbiDoc()).toBe(doc);
    expect(doc.endsWith('\n')).toBe(true);
    expect(doc).not.toMatch(/\b20\d\d-\d\d-\d\d\b/);
  });

  it('names the regeneration command', () => {
    expect(doc).toContain(ABI_DOC_COMMAND);
    expect(doc).toContain('npm run abi-doc');
  });

  it('documents the headers with their sizes and every field at its offset', () => {
    for (const [title, header] of [
      ['Request header', REQUEST_HEADER],
      ['Response header', RESPONSE_HEADER],
    ] as const) {
      const heading = doc.match(new RegExp(`^### ${title} \\((\\d+) bytes\\)$`, 'm'));
      expect(heading, title).not.toBeNull();
      expect(Number(heading![1])).toBe(header.size);
      const rows = tableRows(section(doc, heading![0]));
      expect(rows.map((r) => [Number(r[0]), Number(r[1]), r[2], r[3]])).toEqual(
        header.fields.map((f) => [f.offset, FIELD_SIZE[f.type], f.type, `\`${f.name}\``]),
      );
      // The table covers the header exactly: the last field ends at its size.
      const last = rows[rows.length - 1]!;
      expect(Number(last[0]) + Number(last[1])).toBe(header.size);
    }
  });

  it('has the Xen differences section', () => {
    const text = section(doc, "## Where this ABI differs from Xen's, and why");
    expect(text).toContain('0x1000');
    expect(text).toContain('0x1001');
    expect(text).toContain('2^53-1');
    expect(text).toContain('(-10)');
  });

  it('has one section per operation, in OP_LAYOUTS order, and every operation covered', () => {
    expect(layouts.map((l) => l.op).sort()).toEqual([...HYPERCALL_OPS].sort());
    const positions = layouts.map((l) => doc.indexOf(`\n${opHeading(l.op)}\n`));
    for (const [i, p] of positions.entries()) expect(p, layouts[i]!.op).toBeGreaterThan(0);
    expect(positions).toEqual([...positions].sort((a, b) => a - b));
  });

  it('lists every operation in the numbers table with its hypercall, hex, subop and selector', () => {
    const rows = tableRows(section(doc, '## Operation numbers'));
    expect(rows).toHaveLength(layouts.length);
    for (const [i, l] of layouts.entries()) {
      const row = rows[i]!;
      expect(row[0]).toContain(`\`${l.op}\``);
      expect(row[1]!.startsWith(`${l.hypercall} (`)).toBe(true);
      expect(row[2]).toBe(`0x${l.hypercall.toString(16)}`);
      expect(row[3]!.split(' ')[0]).toBe(String(l.subop));
      const sel = l.request.fields.find((f) => f.role === 'selector');
      expect(row[4]).toBe(sel ? `\`${sel.name}\` = ${sel.value}` : '');
      expect(row[5], `Xen name of ${l.op}`).not.toBe('');
    }
  });

  it("puts every field of an operation's layouts, with its offset and size, in its section", () => {
    for (const l of layouts) {
      const text = section(doc, opHeading(l.op));
      expect(text).toContain(l.xen);
      expect(text).toContain(l.rc);
      const check = (s: StructLayout, title: string): void => {
        const start = text.indexOf(title);
        expect(start, `${l.op}: ${title}`).toBeGreaterThanOrEqual(0);
        const rows = tableRows(text.slice(start));
        const expected = s.fields.map((f) => [String(f.offset), String(FIELD_SIZE[f.type]), f.type, `\`${f.name}\``]);
        if (s.tail) expected.push([String(s.size), expect.any(String), `${s.tail.element}[]`, `\`${s.tail.name}\``]);
        if (expected.length === 0) {
          expect(text.slice(start).split('\n\n')[1], `${l.op}: ${title}`).toBe('None: 0 bytes.');
        } else {
          expect(rows.slice(0, expected.length).map((r) => r.slice(0, 4)), `${l.op}: ${title}`).toEqual(expected);
        }
      };
      check(l.request, '**Request**');
      check(l.response, '**Response body**');
    }
  });

  it('gives reserved fields as must-be-0, selectors with their constant and value fields with their property', () => {
    for (const l of layouts) {
      const start = doc.indexOf(`\n${opHeading(l.op)}\n`);
      const rows = tableRows(doc.slice(doc.indexOf('**Request**', start)));
      for (const [i, f] of l.request.fields.entries()) {
        const meaning = rows[i]![4]!;
        if (f.role === 'zero') expect(meaning, `${l.op}.${f.name}`).toMatch(/^reserved, must be 0/);
        if (f.role === 'selector') expect(meaning, `${l.op}.${f.name}`).toContain(`always ${f.value}`);
        if (f.role === 'value') expect(meaning, `${l.op}.${f.name}`).toContain(`Request \`${f.prop}\``);
      }
    }
  });

  it('gives the ranges the zod schemas enforce', () => {
    const increase = section(doc, opHeading('increase_reservation'));
    expect(increase).toContain('Request `extentOrder`: integer 0..MAX_ORDER (18).');
    expect(increase).toContain('Request `nrExtents`: integer 0..MAX_EXTENTS (1048576).');
    expect(increase).toContain('domid = request `domid`: integer 0..DOMID_SELF (0x7ff0)');
    // A custom check is shown by what it says when it refuses a probe value.
    const memFlags = increase.split('\n').find((l) => l.includes('`mem_flags`'))!;
    expect(memFlags).toContain('Request `memFlags`: integer 0..2^32-1, refuses e.g. 1: has unknown bits 0x1');
    expect(memFlags).toContain(`0x${MEM_FLAGS_KNOWN.toString(16)}`);
    const decrease = section(doc, opHeading('decrease_reservation'));
    expect(decrease).toContain('`gfns`: array of integer 0..2^53-1, at most MAX_EXTENTS (1048576) items');
    const prep = section(doc, opHeading('paging_prep'));
    expect(prep).toContain(`\`data\`: optional, Uint8Array, must be ${PAGE_SIZE} bytes`);
    expect(prep).toContain('optional: 0 bytes means absent');
  });

  it('lists each errno of an operation with its value, and every errno in the errno table', () => {
    for (const l of layouts) {
      const text = section(doc, opHeading(l.op));
      for (const [name, when] of Object.entries(l.errors ?? {})) {
        expect(text, `${l.op} ${name}`).toContain(`| ${name} | ${Errno[name as keyof typeof Errno]} | ${when.replace(/\|/g, '\\|')} |`);
      }
    }
    const rows = tableRows(section(doc, '## Errno values'));
    expect(rows.map((r) => [r[0], Number(r[1]), Number(r[2])])).toEqual(
      Object.entries(Errno).map(([name, v]) => [name, v, -v]),
    );
    const returnedBy = new Map(rows.map((r) => [r[0]!, r[3]!]));
    for (const name of ['EFAULT', 'ENOSYS', 'EINVAL']) expect(returnedBy.get(name)).toContain('decoding, any op');
    for (const l of layouts) {
      for (const name of Object.keys(l.errors ?? {})) expect(returnedBy.get(name), `${l.op} ${name}`).toContain(`\`${l.op}\``);
    }
  });
});
