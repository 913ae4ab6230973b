/**
 * The push dialog: which workspace file, into which collection and container,
 * under which tags. Collections the person may push to are offered first; a
 * new name creates a collection the person then owns.
 */
import { Dialog, showDialog } from '@jupyterlab/apputils';
import { ReactWidget } from '@jupyterlab/ui-components';
import * as React from 'react';

import type { ICollection } from '../types';
import { validatePush, type IPushForm, type PushProblems } from './validate';

class PushBody extends ReactWidget {
  form: IPushForm;

  constructor(
    initial: IPushForm,
    private readonly collections: ICollection[],
    private readonly files: string[],
    private readonly problems: PushProblems
  ) {
    super();
    this.form = { ...initial };
    this.addClass('jp-SregistryDialog');
  }

  getValue(): IPushForm {
    return this.form;
  }

  render(): React.ReactElement {
    return (
      <PushFields
        initial={this.form}
        collections={this.collections}
        files={this.files}
        problems={this.problems}
        onChange={form => (this.form = form)}
      />
    );
  }
}

/** The select's value for "make a new collection" (not a valid name). */
const NEW = ' new';

function Field(props: {
  id: string;
  label: string;
  problem?: string;
  hint?: string;
  children: React.ReactElement;
}): React.ReactElement {
  return (
    <div className="jp-SregistryField">
      <label htmlFor={props.id}>{props.label}</label>
      {props.children}
      {props.hint && !props.problem && (
        <span className="jp-SregistryField-hint">{props.hint}</span>
      )}
      {props.problem && (
        <span className="jp-SregistryField-problem" role="alert">
          {props.problem}
        </span>
      )}
    </div>
  );
}

function PushFields(props: {
  initial: IPushForm;
  collections: ICollection[];
  files: string[];
  problems: PushProblems;
  onChange: (form: IPushForm) => void;
}): React.ReactElement {
  const [form, setForm] = React.useState(props.initial);
  const [creating, setCreating] = React.useState(
    !props.collections.some(c => c.name === props.initial.collection)
  );
  const set = (patch: Partial<IPushForm>) => {
    const next = { ...form, ...patch };
    setForm(next);
    props.onChange(next);
  };
  const { problems } = props;
  return (
    <div className="jp-SregistryPushForm">
      <Field id="sregistry-push-path" label="File" problem={problems.path}>
        <input
          id="sregistry-push-path"
          className="jp-mod-styled"
          list="sregistry-push-files"
          value={form.path}
          onChange={e => set({ path: e.target.value })}
        />
      </Field>
      <datalist id="sregistry-push-files">
        {props.files.map(f => (
          <option key={f} value={f} />
        ))}
      </datalist>
      <Field
        id="sregistry-push-collection"
        label="Collection"
        problem={creating ? undefined : problems.collection}
        hint={
          creating
            ? 'A new collection is made, with you as its owner.'
            : 'Collections you may push to.'
        }
      >
        <select
          id="sregistry-push-collection"
          className="jp-mod-styled"
          value={creating ? NEW : form.collection}
          onChange={e => {
            const value = e.target.value;
            setCreating(value === NEW);
            set({ collection: value === NEW ? '' : value });
          }}
        >
          {props.collections.map(c => (
            <option key={c.name} value={c.name}>
              {c.name}
              {c.private ? ' (private)' : ''}
            </option>
          ))}
          <option value={NEW}>New collection…</option>
        </select>
      </Field>
      {creating && (
        <Field
          id="sregistry-push-new-collection"
          label="New collection name"
          problem={problems.collection}
        >
          <input
            id="sregistry-push-new-collection"
            className="jp-mod-styled"
            value={form.collection}
            autoComplete="off"
            onChange={e => set({ collection: e.target.value })}
          />
        </Field>
      )}
      <Field
        id="sregistry-push-container"
        label="Container"
        problem={problems.container}
      >
        <input
          id="sregistry-push-container"
          className="jp-mod-styled"
          value={form.container}
          onChange={e => set({ container: e.target.value })}
        />
      </Field>
      <Field
        id="sregistry-push-tags"
        label="Tags"
        problem={problems.tags}
        hint="Separated by spaces or commas; the first one names the push."
      >
        <input
          id="sregistry-push-tags"
          className="jp-mod-styled"
          value={form.tags}
          onChange={e => set({ tags: e.target.value })}
        />
      </Field>
    </div>
  );
}

/**
 * Ask for what to push; re-asks with the problems shown until the form is
 * valid or the person cancels (null).
 */
export async function askPush(
  initial: IPushForm,
  collections: ICollection[],
  files: string[]
): Promise<IPushForm | null> {
  let form = initial;
  let problems: PushProblems = {};
  for (;;) {
    const body = new PushBody(form, collections, files, problems);
    const result = await showDialog({
      title: 'Push to the registry',
      body,
      buttons: [
        Dialog.cancelButton(),
        Dialog.okButton({ label: 'Push', ariaLabel: 'Push the image' })
      ],
      focusNodeSelector: '#sregistry-push-collection'
    });
    if (!result.button.accept || !result.value) {
      return null;
    }
    form = result.value;
    problems = validatePush(form);
    if (Object.keys(problems).length === 0) {
      return form;
    }
  }
}
