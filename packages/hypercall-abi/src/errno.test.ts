import { Errno, HypervisorError, InvariantError } from '@pagevisor/types';
import { describe, expect, it } from 'vitest';
import { errorFromRc, errorResponse, NO_MESSAGE } from './index.js';

describe('errorFromRc', () => {
  it('maps -errno to a HypervisorError of that errno, op and message', () => {
    for (const [name, value] of Object.entries(Errno)) {
      const e = errorFromRc(-value, 'populate_physmap', 'why');
      expect(e).toBeInstanceOf(HypervisorError);
      expect([e.errno, e.errnoName, e.op, e.detail]).toEqual([value, name, 'populate_physmap', 'why']);
    }
  });

  it('says when the hypervisor gave no message', () => {
    expect(errorFromRc(-Errno.ENOMEM, 'read_page').detail).toBe(NO_MESSAGE);
    expect(errorFromRc(-Errno.ENOMEM, 'read_page', '').detail).toBe(NO_MESSAGE);
  });

  it('turns an errno it does not know into EIO, keeping the value', () => {
    const e = errorFromRc(-200, 'write_page', 'odd');
    expect([e.errnoName, e.detail]).toEqual(['EIO', 'unknown errno 200: odd']);
  });

  it('refuses a non-negative or non-integer rc as a bug', () => {
    expect(() => errorFromRc(0, 'x')).toThrow(InvariantError);
    expect(() => errorFromRc(-1.5, 'x')).toThrow(InvariantError);
  });
});

describe('errorResponse', () => {
  it('carries -errno and the detail, prefixed by a different op', () => {
    const e = new HypervisorError('ESRCH', 'populate_physmap', 'no domain 9');
    expect(errorResponse(e, 'populate_physmap')).toEqual({ rc: -3, message: 'no domain 9' });
    expect(errorResponse(e, 'read_page')).toEqual({ rc: -3, message: 'populate_physmap: no domain 9' });
    expect(errorResponse(e)).toEqual({ rc: -3, message: 'populate_physmap: no domain 9' });
  });
});
