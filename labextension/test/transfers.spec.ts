import { describe, expect, it } from 'vitest';

import { isFinal, progressOf, TransferTracker } from '../src/transfers';
import type { ITransfer } from '../src/types';
import { EVENTS } from './fake-api';

const [queued, quarter, threeQuarters, done] = EVENTS;

function other(id: string): ITransfer {
  return { ...queued, id };
}

describe('TransferTracker', () => {
  it('takes progress in order and announces the end once', () => {
    const tracker = new TransferTracker();
    const ended: ITransfer[] = [];
    tracker.finished.connect((_, t) => ended.push(t));
    for (const event of EVENTS) {
      expect(tracker.update(event)).toBe(true);
    }
    expect(tracker.get('t1')).toEqual(done);
    expect(tracker.update(done)).toBe(false);
    expect(ended).toEqual([done]);
  });

  it('ignores late, repeated and backward updates', () => {
    const tracker = new TransferTracker();
    tracker.update(threeQuarters);
    expect(tracker.update(quarter)).toBe(false);
    expect(tracker.update(queued)).toBe(false);
    expect(tracker.get('t1')?.bytes_done).toBe(786432);
    tracker.update(done);
    expect(tracker.update(threeQuarters)).toBe(false);
    expect(tracker.get('t1')?.state).toBe('done');
  });

  it('lists newest first and clears only what has ended', () => {
    const tracker = new TransferTracker();
    tracker.update(other('a'));
    tracker.update(other('b'));
    tracker.update({ ...other('a'), state: 'failed', error: 'disk full' });
    expect(tracker.items.map(t => t.id)).toEqual(['b', 'a']);
    expect(tracker.hasFinished).toBe(true);
    tracker.clearFinished();
    expect(tracker.items.map(t => t.id)).toEqual(['b']);
    expect(tracker.hasFinished).toBe(false);
  });

  it('loads the server’s list without announcing old outcomes', () => {
    const tracker = new TransferTracker();
    const ended: ITransfer[] = [];
    tracker.finished.connect((_, t) => ended.push(t));
    tracker.load([
      { ...done, id: 'new' },
      { ...done, id: 'old' }
    ]);
    expect(tracker.items.map(t => t.id)).toEqual(['new', 'old']);
    expect(ended).toEqual([]);
  });
});

describe('progressOf', () => {
  it('is a fraction when the size is known, null before', () => {
    expect(progressOf(queued)).toBeNull();
    expect(progressOf(quarter)).toBe(0.25);
    expect(progressOf(done)).toBe(1);
    expect(progressOf({ ...quarter, bytes_done: 5e6 })).toBe(1);
  });

  it('knows the final states', () => {
    expect(
      ['queued', 'running', 'done', 'failed', 'cancelled'].map(s =>
        isFinal(s as ITransfer['state'])
      )
    ).toEqual([false, false, true, true, true]);
  });
});
