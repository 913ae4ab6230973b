/** One container: its tags, each with the image it points to. */
import { downloadIcon } from '@jupyterlab/ui-components';
import * as React from 'react';

import { formatBytes, formatDate, imageRef, shortDigest } from '../format';
import type { RegistryModel } from '../model';
import type { IContainer, IImage } from '../types';
import { Empty, IconButton, Loading } from './common';

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
        <h3 className="jp-SregistryHeading-title">
          {collection}/{c.name}
        </h3>
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
        <table className="jp-SregistryTable" aria-label={`Tags of ${c.name}`}>
          <thead>
            <tr>
              <th scope="col">Tag</th>
              <th scope="col">Arch</th>
              <th scope="col">Size</th>
              <th scope="col">Digest</th>
              <th scope="col">
                <span className="jp-SregistryVisuallyHidden">Pull</span>
              </th>
            </tr>
          </thead>
          <tbody>
            {c.tags.map(t => (
              <tr key={`${t.name}/${t.arch}`}>
                <td>
                  <button
                    type="button"
                    className="jp-SregistryLink"
                    aria-label={`Show image ${c.name}:${t.name}`}
                    onClick={() => open(t.name)}
                  >
                    {t.name}
                  </button>
                </td>
                <td>{t.arch}</td>
                <td>{formatBytes(images.get(t.digest)?.size)}</td>
                <td className="jp-SregistryMono" title={t.digest}>
                  {shortDigest(t.digest)}
                </td>
                <td>
                  <IconButton
                    icon={downloadIcon}
                    label={`Pull ${collection}/${c.name}:${t.name} into the file browser`}
                    onClick={() =>
                      props.onPull(imageRef(collection, c.name, t.name))
                    }
                  />
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </div>
  );
}
