/**
 * A parser for `text/event-stream` bodies read through `fetch`.
 *
 * `EventSource` cannot send the headers Jupyter's `ServerConnection` adds
 * (token, XSRF), so the panel reads the stream itself and feeds the decoded
 * text here, in chunks that may split lines and events anywhere.
 */
export class EventStreamParser {
  private buffer = '';
  private dataLines: string[] = [];

  /** Feed a chunk of text; returns the `data` of every event it completed. */
  feed(chunk: string): string[] {
    this.buffer += chunk;
    const events: string[] = [];
    let newline = this.nextLineEnd();
    while (newline !== null) {
      const [end, length] = newline;
      const line = this.buffer.slice(0, end);
      this.buffer = this.buffer.slice(end + length);
      const event = this.line(line);
      if (event !== null) {
        events.push(event);
      }
      newline = this.nextLineEnd();
    }
    return events;
  }

  /** Position and length of the first complete line ending (\n, \r\n or \r). */
  private nextLineEnd(): [number, number] | null {
    for (let i = 0; i < this.buffer.length; i++) {
      const c = this.buffer[i];
      if (c === '\n') {
        return [i, 1];
      }
      if (c === '\r') {
        // A lone \r at the end of a chunk may be the first half of \r\n.
        if (i + 1 === this.buffer.length) {
          return null;
        }
        return [i, this.buffer[i + 1] === '\n' ? 2 : 1];
      }
    }
    return null;
  }

  private line(line: string): string | null {
    if (line === '') {
      if (this.dataLines.length === 0) {
        return null;
      }
      const data = this.dataLines.join('\n');
      this.dataLines = [];
      return data;
    }
    if (line.startsWith(':')) {
      return null;
    }
    const colon = line.indexOf(':');
    const field = colon === -1 ? line : line.slice(0, colon);
    let value = colon === -1 ? '' : line.slice(colon + 1);
    if (value.startsWith(' ')) {
      value = value.slice(1);
    }
    if (field === 'data') {
      this.dataLines.push(value);
    }
    return null;
  }
}
