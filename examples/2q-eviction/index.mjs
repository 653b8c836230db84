// @ts-check
/**
 * 2q: the 2Q replacement policy (Johnson & Shasha, VLDB 1994) as a pagevisor eviction policy.
 *
 * - A1in, a FIFO of frames inserted and not accessed since: the probation queue. A frame that is
 *   touched while in A1in moves to Am (see the README for why this takes the simplified 2Q's rule
 *   rather than the full version's "ignore hits in A1in").
 * - Am, an LRU of frames touched at least once after their insert: `touch` moves a frame to its
 *   most recent end.
 * - A1out, a ghost FIFO of frames that left A1in (holding no page the policy tracks): a frame
 *   inserted again while its ghost is remembered goes straight to Am. At most
 *   `ghostFraction * frames` ghosts; the oldest is forgotten first. Off by default (0): see below.
 *
 * `victim()` names the oldest frame of A1in while A1in holds more than `a1inFraction` of the
 * tracked frames (or Am is empty), else the least recent frame of Am. It changes nothing: asking
 * again names the same frame until something is inserted, removed or touched.
 *
 * State in typed arrays indexed by mfn: a queue byte and two Int32 links per frame (9 bytes a
 * frame; one pair of links serves all three lists, since a frame is in one list at most). insert,
 * remove, touch and victim are O(1) and allocate nothing.
 *
 * The policy sees frames, not pages: the hypervisor tells it which frame holds an evictable page.
 * So A1out remembers frames, and a "ghost hit" is a frame that left A1in coming back with some
 * page, most often an unrelated one (the allocators reuse the frames freed last), not the evicted
 * page coming back. Measured on the example's scenario, every ghost capacity tried made 2Q worse
 * (see the README), so `ghostFraction` defaults to 0; the queue is there to experiment with.
 */
import { definePlugin, INVALID_MFN, InvariantError, PluginError } from '@pagevisor/types';

/** @typedef {import('@pagevisor/types').EvictionPolicy} EvictionPolicy */
/** @typedef {import('@pagevisor/types').Mfn} Mfn */
/** @typedef {{ readonly a1inFraction: number, readonly ghostFraction: number }} TwoQOptions */

/**
 * Defaults of the options: A1in up to a quarter of the tracked frames (the paper's Kin), no ghosts
 * (the paper's Kout is half the buffer, 0.5; frame-keyed ghosts only hurt here, see the README).
 */
export const TWO_Q_DEFAULTS = Object.freeze({ a1inFraction: 0.25, ghostFraction: 0 });

/** Where a frame is. */
export const Queue = Object.freeze({ none: 0, a1in: 1, am: 2, a1out: 3 });
const QUEUE_NAMES = /** @type {const} */ (['none', 'a1in', 'am', 'a1out']);
const NONE = -1;

/**
 * Checks the plugin's options: `a1inFraction` in (0, 1) and `ghostFraction` in [0, 1], both
 * numbers, defaults {@link TWO_Q_DEFAULTS}; any other name is refused. Throws a PluginError naming
 * every wrong field.
 * @param {Readonly<Record<string, unknown>>} options
 * @returns {TwoQOptions}
 */
export function checkOptions(options) {
  /** @type {{ path: string, message: string }[]} */
  const issues = [];
  const known = Object.keys(TWO_Q_DEFAULTS);
  for (const key of Object.keys(options)) {
    if (!known.includes(key)) issues.push({ path: key, message: `unknown option; known: ${known.join(', ')}` });
  }
  const a1inFraction = options['a1inFraction'] ?? TWO_Q_DEFAULTS.a1inFraction;
  const ghostFraction = options['ghostFraction'] ?? TWO_Q_DEFAULTS.ghostFraction;
  if (typeof a1inFraction !== 'number' || !(a1inFraction > 0 && a1inFraction < 1)) {
    issues.push({ path: 'a1inFraction', message: `must be a number in (0, 1), got ${JSON.stringify(a1inFraction)}` });
  }
  if (typeof ghostFraction !== 'number' || !(ghostFraction >= 0 && ghostFraction <= 1)) {
    issues.push({ path: 'ghostFraction', message: `must be a number in [0, 1], got ${JSON.stringify(ghostFraction)}` });
  }
  if (issues.length > 0) throw new PluginError('2q', 'options refused', issues);
  return { a1inFraction: /** @type {number} */ (a1inFraction), ghostFraction: /** @type {number} */ (ghostFraction) };
}

/**
 * The policy, for frames `[0, frames)`.
 * @implements {EvictionPolicy}
 */
export class TwoQPolicy {
  /** @readonly */ name = '2q';

  /** @param {{ frames: number } & Partial<TwoQOptions>} opts */
  constructor(opts) {
    const { frames, ...rest } = opts;
    if (!Number.isInteger(frames) || frames < 1 || frames > 0x7fffffff) {
      throw new PluginError('2q', `frames must be an integer in [1, 2^31), got ${frames}`);
    }
    const { a1inFraction, ghostFraction } = checkOptions(rest);
    /** Frames the policy was sized for. @readonly */
    this.frames = frames;
    /** @readonly */
    this.a1inFraction = a1inFraction;
    /** Most ghosts remembered in A1out. @readonly */
    this.ghostCapacity = Math.floor(ghostFraction * frames);
    /** Queue of each frame ({@link Queue}). */
    this.queue = new Uint8Array(frames);
    /** Link towards the newer end of the frame's list, NONE at the newest. */
    this.newer = new Int32Array(frames).fill(NONE);
    /** Link towards the older end (the victim end), NONE at the oldest. */
    this.older = new Int32Array(frames).fill(NONE);
    /** Newest and oldest frame of each queue, and its length (index: {@link Queue}). */
    this.newest = new Int32Array(4).fill(NONE);
    this.oldest = new Int32Array(4).fill(NONE);
    this.length = new Int32Array(4);
    this.counters = { inserts: 0, ghostHits: 0, promotions: 0, ghostsForgotten: 0 };
  }

  /** Frames tracked (in A1in or Am; ghosts are not tracked). */
  get size() {
    return this.length[Queue.a1in] + this.length[Queue.am];
  }

  /**
   * Frame `mfn` now holds an evictable page: the newest of A1in, or of Am when A1out remembers it.
   * InvariantError when already tracked or out of range.
   * @param {Mfn} mfn
   */
  insert(mfn) {
    this.#check('insert', mfn);
    const q = this.queue[mfn];
    if (q === Queue.a1in || q === Queue.am) throw new InvariantError(`2q.insert: mfn ${mfn} already tracked (${QUEUE_NAMES[q]})`);
    this.counters.inserts++;
    if (q === Queue.a1out) {
      this.#unlink(mfn);
      this.#push(Queue.am, mfn);
      this.counters.ghostHits++;
    } else {
      this.#push(Queue.a1in, mfn);
    }
  }

  /**
   * Frame `mfn` no longer holds an evictable page. Leaving A1in it becomes a ghost in A1out (the
   * oldest ghost is forgotten beyond `ghostCapacity`); leaving Am it is forgotten. No-op for an
   * untracked frame (the hypervisor may remove frames it never inserted).
   * @param {Mfn} mfn
   */
  remove(mfn) {
    this.#check('remove', mfn);
    const q = this.queue[mfn];
    if (q === Queue.a1in) {
      this.#unlink(mfn);
      if (this.ghostCapacity > 0) {
        this.#push(Queue.a1out, mfn);
        if (this.length[Queue.a1out] > this.ghostCapacity) {
          this.#unlink(this.oldest[Queue.a1out]);
          this.counters.ghostsForgotten++;
        }
      }
    } else if (q === Queue.am) {
      this.#unlink(mfn);
    }
  }

  /**
   * Frame `mfn` was accessed: from A1in it moves to Am (promoted), in Am it becomes the most
   * recent. No-op for a frame not tracked.
   * @param {Mfn} mfn
   */
  touch(mfn) {
    this.#check('touch', mfn);
    const q = this.queue[mfn];
    if (q === Queue.a1in) {
      this.#unlink(mfn);
      this.#push(Queue.am, mfn);
      this.counters.promotions++;
    } else if (q === Queue.am && this.newest[Queue.am] !== mfn) {
      this.#unlink(mfn);
      this.#push(Queue.am, mfn);
    }
  }

  /**
   * The frame to evict next (it stays tracked until removed): A1in's oldest while A1in holds more
   * than `a1inFraction` of the tracked frames or Am is empty, else Am's least recent; INVALID_MFN
   * when nothing is tracked.
   * @returns {Mfn}
   */
  victim() {
    const a1in = this.length[Queue.a1in];
    const am = this.length[Queue.am];
    if (a1in + am === 0) return INVALID_MFN;
    const fromA1in = a1in > 0 && (am === 0 || a1in > this.a1inFraction * (a1in + am));
    return /** @type {Mfn} */ (this.oldest[fromA1in ? Queue.a1in : Queue.am]);
  }

  /** Forgets every frame, ghosts included. */
  reset() {
    this.queue.fill(0);
    this.newer.fill(NONE);
    this.older.fill(NONE);
    this.newest.fill(NONE);
    this.oldest.fill(NONE);
    this.length.fill(0);
  }

  /** Whether `mfn` is tracked (in A1in or Am). @param {Mfn} mfn */
  has(mfn) {
    this.#check('has', mfn);
    const q = this.queue[mfn];
    return q === Queue.a1in || q === Queue.am;
  }

  /** The queue `mfn` is in: 'a1in', 'am', 'a1out' (a ghost) or 'none'. @param {Mfn} mfn */
  queueOf(mfn) {
    this.#check('queueOf', mfn);
    return QUEUE_NAMES[this.queue[mfn]];
  }

  /** Queue lengths and counters (inserts, ghostHits, promotions, ghostsForgotten). */
  stats() {
    return { a1in: this.length[Queue.a1in], am: this.length[Queue.am], a1out: this.length[Queue.a1out], ...this.counters };
  }

  /** Bytes of the per-frame arrays. */
  metadataBytes() {
    return this.queue.byteLength + this.newer.byteLength + this.older.byteLength;
  }

  /**
   * Broken invariants, in words (empty when sound): every list well linked with its length, each
   * frame on the list its queue byte names, A1out within its capacity. O(frames).
   * @returns {string[]}
   */
  audit() {
    /** @type {string[]} */
    const problems = [];
    const onList = new Uint8Array(this.frames);
    for (const q of [Queue.a1in, Queue.am, Queue.a1out]) {
      let n = 0;
      let prev = NONE;
      for (let m = this.newest[q]; m !== NONE; prev = m, m = this.older[m]) {
        if (++n > this.frames) {
          problems.push(`${QUEUE_NAMES[q]} loops`);
          break;
        }
        if (this.queue[m] !== q) problems.push(`mfn ${m} is on ${QUEUE_NAMES[q]} but marked ${QUEUE_NAMES[this.queue[m]]}`);
        if (this.newer[m] !== prev) problems.push(`mfn ${m}: broken link on ${QUEUE_NAMES[q]}`);
        onList[m] = 1;
      }
      if (prev !== this.oldest[q]) problems.push(`${QUEUE_NAMES[q]} ends at ${prev}, oldest says ${this.oldest[q]}`);
      if (n !== this.length[q]) problems.push(`${QUEUE_NAMES[q]} holds ${n} frames, length says ${this.length[q]}`);
    }
    for (let m = 0; m < this.frames; m++) {
      if (this.queue[m] !== Queue.none && onList[m] === 0) problems.push(`mfn ${m} is marked ${QUEUE_NAMES[this.queue[m]]} but on no list`);
    }
    if (this.length[Queue.a1out] > this.ghostCapacity) problems.push(`a1out holds ${this.length[Queue.a1out]} ghosts, capacity ${this.ghostCapacity}`);
    return problems.map((p) => `2q: ${p}`);
  }

  /** Makes `mfn` the newest of queue `q`. @param {number} q @param {number} mfn */
  #push(q, mfn) {
    const first = this.newest[q];
    this.queue[mfn] = q;
    this.newer[mfn] = NONE;
    this.older[mfn] = first;
    if (first !== NONE) this.newer[first] = mfn;
    else this.oldest[q] = mfn;
    this.newest[q] = mfn;
    this.length[q]++;
  }

  /** Takes `mfn` off its queue. @param {number} mfn */
  #unlink(mfn) {
    const q = this.queue[mfn];
    const newer = this.newer[mfn];
    const older = this.older[mfn];
    if (newer !== NONE) this.older[newer] = older;
    else this.newest[q] = older;
    if (older !== NONE) this.newer[older] = newer;
    else this.oldest[q] = newer;
    this.newer[mfn] = NONE;
    this.older[mfn] = NONE;
    this.queue[mfn] = Queue.none;
    this.length[q]--;
  }

  /** An mfn outside the table (INVALID_MFN included) is a caller bug. @param {string} op @param {number} mfn */
  #check(op, mfn) {
    if (!(Number.isInteger(mfn) && mfn >= 0 && mfn < this.frames)) throw new InvariantError(`2q.${op}: mfn ${mfn} outside [0, ${this.frames})`);
  }
}

/** The plugin: `"swap": { "policy": { "plugin": "./index.mjs", "a1inFraction": 0.25, "ghostFraction": 0.5 } }`. */
export default definePlugin({
  kind: 'eviction-policy',
  name: '2q',
  options: checkOptions,
  create: (options, context) => new TwoQPolicy({ frames: context.frames, ...options }),
});
