/** One container: its tags, each with the image it points to. */
import { downloadIcon } from '@jupyterlab/ui-components';
import * as React from 'react';

import { formatBytes, formatDate, imageRef, shortDigest } from '../format';
import type { RegistryModel } from '../model';
import type { IContainer, IImage } from '../types';
import { Empty, IconButton, Loading, ViewHeading } from './common';

export function ContainerView(props: {
  model: RegistryModel;
  collection: string;
  name: string;
  onPull: (ref: string) => void;
}): React.ReactElement {
  const { model, collection, name } = props;
  const c: IContainer | null =
    model.container?.collection === collection && model.container.name === name
      ? model.container
      : null;
  if (!c) {
    return model.loading ? <Loading /> : <Empty>Nothing to show.</Empty>;
  }
  const images = new Map<string, IImage>(
    (c.images ?? []).map(i => [i.digest, i])
  );
  const open = (ref: string) =>
    void model.open({ kind: 'image', collection, container: name, ref });
  return (
    <div className="jp-SregistryContainer">
      <header className="jp-SregistryHeading">
        <ViewHeading>
          {collection}/{c.name}
        </ViewHeading>
        {c.description && (
          <p className="jp-SregistryHeading-description">{c.description}</p>
        )}
        <p className="jp-SregistryHeading-meta">
          {c.tags.length} tag{c.tags.length === 1 ? '' : 's'} · updated{' '}
          {formatDate(c.updated)}
        </p>
      </header>
      {c.tags.length === 0 ? (
        <Empty>No tags: every image here is reachable by digest only.</Empty>
      ) : (
        <ul className="jp-SregistryList" aria-label={`Tags of ${c.name}`}>
          {c.tags.map(t => (
            <li
              className="jp-SregistryList-item jp-SregistryTagRow"
              key={`${t.name}/${t.arch}`}
            >
              <button
                type="button"
                className="jp-SregistryList-button"
                aria-label={`Show image ${c.name}:${t.name}`}
                onClick={() => open(t.name)}
              >
                <span className="jp-SregistryList-main">
                  <span className="jp-SregistryTag">{t.name}</span>
                  <span className="jp-SregistryList-meta">
                    {t.arch} · {formatBytes(images.get(t.digest)?.size)}
                  </span>
                </span>
                <span
                  className="jp-SregistryMono jp-SregistryDigest"
                  title={t.digest}
                >
                  {shortDigest(t.digest)}
                </span>
              </button>
              <IconButton
                icon={downloadIcon}
                label={`Pull ${collection}/${c.name}:${t.name} into the file browser`}
                onClick={() =>
                  props.onPull(imageRef(collection, c.name, t.name))
                }
              />
            </li>
          ))}
        </ul>
      )}
    </div>
  );
}
