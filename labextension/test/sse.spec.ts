import { describe, expect, it } from 'vitest';

import { EventStreamParser } from '../src/sse';

describe('EventStreamParser', () => {
  it('yields each event’s data, whatever the chunking', () => {
    const stream =
      'data: {"a":1}\n\n: keep-alive\n\ndata: {"a":2}\r\n\r\nevent: end\ndata: x\ndata: y\n\n';
    const whole = new EventStreamParser().feed(stream);
    expect(whole).toEqual(['{"a":1}', '{"a":2}', 'x\ny']);
    for (const size of [1, 2, 3, 7]) {
      const parser = new EventStreamParser();
      const events: string[] = [];
      for (let i = 0; i < stream.length; i += size) {
        events.push(...parser.feed(stream.slice(i, i + size)));
      }
      expect(events).toEqual(whole);
    }
  });

  it('holds an unfinished event until its blank line', () => {
    const parser = new EventStreamParser();
    expect(parser.feed('data: partial')).toEqual([]);
    expect(parser.feed('\n')).toEqual([]);
    expect(parser.feed('\n')).toEqual(['partial']);
  });

  it('treats a lone carriage return as a line end', () => {
    const parser = new EventStreamParser();
    // A \r ending a chunk may be half of \r\n, so it waits for the next one.
    expect(parser.feed('data:z\r\r')).toEqual([]);
    expect(parser.feed('data: next')).toEqual(['z']);
  });
});
