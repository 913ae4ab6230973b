/** The list of collections: search, sort, pages. */
import {
  caretLeftIcon,
  caretRightIcon,
  lockIcon,
  searchIcon
} from '@jupyterlab/ui-components';
import * as React from 'react';

import { formatBytes } from '../format';
import type { RegistryModel } from '../model';
import type { CollectionSort, ICollection } from '../types';
import { Empty, IconButton } from './common';

const SORTS: { value: CollectionSort; label: string }[] = [
  { value: 'name', label: 'Name' },
  { value: '-updated', label: 'Recently updated' },
  { value: '-size', label: 'Largest' },
  { value: '-stars', label: 'Most stars' }
];

const SEARCH_DELAY_MS = 250;

export function SearchBar(props: { model: RegistryModel }): React.ReactElement {
  const { model } = props;
  const [text, setText] = React.useState(model.query);
  const timer = React.useRef<number | undefined>(undefined);

  React.useEffect(() => () => window.clearTimeout(timer.current), []);

  const onChange = (value: string) => {
    setText(value);
    window.clearTimeout(timer.current);
    timer.current = window.setTimeout(
      () => void model.search(value),
      SEARCH_DELAY_MS
    );
  };

  return (
    <div className="jp-SregistrySearch">
      <label className="jp-SregistrySearch-box">
        <searchIcon.react tag="span" className="jp-SregistrySearch-icon" />
        <input
          type="search"
          className="jp-SregistrySearch-input"
          placeholder="Search collections"
          aria-label="Search collections"
          value={text}
          onChange={e => onChange(e.target.value)}
          onKeyDown={e => {
            if (e.key === 'Enter') {
              window.clearTimeout(timer.current);
              void model.search(text);
            }
          }}
        />
      </label>
      <select
        className="jp-SregistrySearch-sort"
        aria-label="Sort collections"
        value={model.sort}
        onChange={e => void model.setSort(e.target.value as CollectionSort)}
      >
        {SORTS.map(s => (
          <option key={s.value} value={s.value}>
            {s.label}
          </option>
        ))}
      </select>
    </div>
  );
}

function CollectionRow(props: {
  collection: ICollection;
  onOpen: () => void;
}): React.ReactElement {
  const c = props.collection;
  const counts = `${c.containers} container${c.containers === 1 ? '' : 's'} · ${formatBytes(c.size)}`;
  return (
    <li className="jp-SregistryList-item">
      <button
        type="button"
        className="jp-SregistryList-button"
        onClick={props.onOpen}
        aria-label={`Open collection ${c.name}${c.private ? ' (private)' : ''}, ${c.stars} stars`}
      >
        <span className="jp-SregistryList-main">
          <span className="jp-SregistryList-name">{c.name}</span>
          {c.private && (
            <span className="jp-SregistryBadge jp-mod-private" title="Private">
              <lockIcon.react tag="span" className="jp-SregistryBadge-icon" />
              private
            </span>
          )}
        </span>
        <span className="jp-SregistryList-meta">
          <span>{counts}</span>
          <span className="jp-SregistryStars" title={`${c.stars} stars`}>
            ★ {c.stars}
          </span>
        </span>
        {c.description && (
          <span className="jp-SregistryList-description">{c.description}</span>
        )}
      </button>
    </li>
  );
}

export function CollectionsView(props: {
  model: RegistryModel;
}): React.ReactElement {
  const { model } = props;
  const page = model.collections;
  return (
    <div className="jp-SregistryCollections">
      <SearchBar model={model} />
      {page && page.items.length === 0 && !model.loading && (
        <Empty>
          {model.query
            ? `No collection matches “${model.query}”.`
            : 'There are no collections you can see yet. Push an image to make one.'}
        </Empty>
      )}
      {page && page.items.length > 0 && (
        <ul className="jp-SregistryList" aria-label="Collections">
          {page.items.map(c => (
            <CollectionRow
              key={c.name}
              collection={c}
              onOpen={() =>
                void model.open({ kind: 'collection', collection: c.name })
              }
            />
          ))}
        </ul>
      )}
      {page && page.pages > 1 && (
        <nav className="jp-SregistryPager" aria-label="Pages of collections">
          <IconButton
            icon={caretLeftIcon}
            label="Previous page"
            disabled={!model.hasPreviousPage || model.loading}
            onClick={() => void model.previousPage()}
          />
          <span className="jp-SregistryPager-label" aria-live="polite">
            Page {page.page} of {page.pages} · {page.total} collections
          </span>
          <IconButton
            icon={caretRightIcon}
            label="Next page"
            disabled={!model.hasNextPage || model.loading}
            onClick={() => void model.nextPage()}
          />
        </nav>
      )}
    </div>
  );
}
