/** One collection: what it holds and who may change it. */
import { lockIcon, usersIcon } from '@jupyterlab/ui-components';
import * as React from 'react';

import { formatBytes, formatDate } from '../format';
import type { RegistryModel } from '../model';
import type { ICollectionDetail } from '../types';
import { Empty, Loading, TextButton, ViewHeading } from './common';

export function CollectionView(props: {
  model: RegistryModel;
  name: string;
  onShare: (collection: string) => void;
}): React.ReactElement {
  const { model, name } = props;
  const c: ICollectionDetail | null =
    model.collection?.name === name ? model.collection : null;
  if (!c) {
    return model.loading ? <Loading /> : <Empty>Nothing to show.</Empty>;
  }
  return (
    <div className="jp-SregistryCollection">
      <header className="jp-SregistryHeading">
        <ViewHeading>
          {c.name}
          {c.private && (
            <span className="jp-SregistryBadge jp-mod-private" title="Private">
              <lockIcon.react tag="span" className="jp-SregistryBadge-icon" />
              private
            </span>
          )}
        </ViewHeading>
        {c.description && (
          <p className="jp-SregistryHeading-description">{c.description}</p>
        )}
        <p className="jp-SregistryHeading-meta">
          {c.images} image{c.images === 1 ? '' : 's'} · {formatBytes(c.size)} ·
          ★ {c.stars} · owned by {c.owners.join(', ') || '–'} · updated{' '}
          {formatDate(c.updated)}
        </p>
        <div className="jp-SregistryActions">
          <TextButton
            icon={usersIcon}
            label="Share…"
            title="Add team-mates as owners or contributors"
            onClick={() => props.onShare(c.name)}
          />
        </div>
      </header>
      {c.containers_list.length === 0 ? (
        <Empty>This collection has no containers yet.</Empty>
      ) : (
        <ul className="jp-SregistryList" aria-label={`Containers in ${c.name}`}>
          {c.containers_list.map(container => (
            <li className="jp-SregistryList-item" key={container.name}>
              <button
                type="button"
                className="jp-SregistryList-button"
                aria-label={`Open container ${container.name}`}
                onClick={() =>
                  void model.open({
                    kind: 'container',
                    collection: c.name,
                    container: container.name
                  })
                }
              >
                <span className="jp-SregistryList-main">
                  <span className="jp-SregistryList-name">
                    {container.name}
                  </span>
                </span>
                <span className="jp-SregistryTags">
                  {container.tags.map(t => (
                    <span
                      className="jp-SregistryTag"
                      key={`${t.name}/${t.arch}`}
                    >
                      {t.name}
                    </span>
                  ))}
                </span>
                {container.description && (
                  <span className="jp-SregistryList-description">
                    {container.description}
                  </span>
                )}
              </button>
            </li>
          ))}
        </ul>
      )}
    </div>
  );
}
