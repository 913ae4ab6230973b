/**
 * Checks of what a person types before it is sent, with the registry's own
 * grammar, so that obvious slips are caught in the dialog. The registry checks
 * again and its word is final.
 */

export interface IPushForm {
  path: string;
  collection: string;
  container: string;
  /** As typed: names separated by spaces or commas. */
  tags: string;
}

export type PushProblems = Partial<Record<keyof IPushForm, string>>;

const NAME_RE = /^[a-z0-9]+(?:[._-][a-z0-9]+)*$/;
const TAG_RE = /^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$/;
const NAME_MAX = 128;

export function nameProblem(value: string, what: string): string | undefined {
  if (!value) {
    return `Give a ${what} name.`;
  }
  if (value.length > NAME_MAX || !NAME_RE.test(value)) {
    return `Use lower-case letters and digits, separated by single '.', '_' or '-'.`;
  }
  return undefined;
}

export function splitTags(text: string): string[] {
  return text
    .split(/[\s,]+/)
    .map(t => t.trim())
    .filter(Boolean);
}

export function tagProblem(tags: string[]): string | undefined {
  if (tags.length === 0) {
    return 'Give at least one tag, for example latest.';
  }
  const bad = tags.find(t => !TAG_RE.test(t) || t.startsWith('sha256.'));
  return bad === undefined
    ? undefined
    : `'${bad}' is not a tag: 1-128 letters, digits, '_', '.' and '-', not starting with '.' or '-'.`;
}

export function validatePush(form: IPushForm): PushProblems {
  const problems: PushProblems = {};
  if (!form.path.trim()) {
    problems.path = 'Choose a .sif file from the workspace.';
  }
  const collection = nameProblem(form.collection.trim(), 'collection');
  if (collection) {
    problems.collection = collection;
  }
  const container = nameProblem(form.container.trim(), 'container');
  if (container) {
    problems.container = container;
  }
  const tags = tagProblem(splitTags(form.tags));
  if (tags) {
    problems.tags = tags;
  }
  return problems;
}

/** A container name guessed from a file name: `My Tools_v2.sif` -> `my-tools-v2`. */
export function containerFromPath(path: string): string {
  const base = path.split('/').pop() ?? '';
  return base
    .replace(/\.sif$/i, '')
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^-+|-+$/g, '');
}
