import { describe, expect, it } from 'vitest';

import {
  containerFromPath,
  splitTags,
  validatePush
} from '../src/dialogs/validate';
import {
  formatBytes,
  formatEta,
  formatRate,
  imageRef,
  pullCommand,
  shortDigest
} from '../src/format';

describe('format', () => {
  it('shows sizes, rates and time left', () => {
    expect(formatBytes(0)).toBe('0 B');
    expect(formatBytes(1536)).toBe('1.5 KB');
    expect(formatBytes(734003200)).toBe('700 MB');
    expect(formatBytes(5 * 1024 ** 3)).toBe('5.0 GB');
    expect(formatBytes(null)).toBe('–');
    expect(formatRate(524288)).toBe('512 KB/s');
    expect(formatRate(null)).toBe('');
    expect(formatEta(1.5)).toBe('2 s');
    expect(formatEta(185)).toBe('3 min 5 s');
    expect(formatEta(7800)).toBe('2 h 10 min');
    expect(formatEta(null)).toBe('');
  });

  it('shortens digests and builds refs and pull commands', () => {
    const digest =
      'sha256.9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08';
    expect(shortDigest(digest)).toBe('sha256.9f86d081884c…');
    expect(shortDigest('latest')).toBe('latest');
    expect(imageRef('lab', 'tools', 'latest')).toBe('lab/tools:latest');
    expect(imageRef('lab', 'tools', digest)).toBe(`lab/tools@${digest}`);
    expect(pullCommand(`lab/tools@${digest}`)).toBe(
      `apptainer pull library://lab/tools:${digest}`
    );
    expect(pullCommand('lab/tools:latest')).toBe(
      'apptainer pull library://lab/tools:latest'
    );
  });
});

describe('push form', () => {
  const valid = {
    path: 'images/a.sif',
    collection: 'lab',
    container: 'tools',
    tags: 'latest, v1 stable'
  };

  it('accepts what the registry accepts', () => {
    expect(validatePush(valid)).toEqual({});
    expect(splitTags(valid.tags)).toEqual(['latest', 'v1', 'stable']);
  });

  it('names every field that would be refused', () => {
    const problems = validatePush({
      path: ' ',
      collection: 'Lab!',
      container: '',
      tags: 'sha256.x -bad'
    });
    expect(Object.keys(problems).sort()).toEqual([
      'collection',
      'container',
      'path',
      'tags'
    ]);
    expect(problems.container).toBe('Give a container name.');
    expect(problems.tags).toContain("'sha256.x'");
    expect(validatePush({ ...valid, tags: '' }).tags).toMatch(
      /at least one tag/
    );
  });

  it('guesses a container name from the file name', () => {
    expect(containerFromPath('data/My Tools_v2.SIF')).toBe('my-tools-v2');
    expect(containerFromPath('alpine.sif')).toBe('alpine');
  });
});
