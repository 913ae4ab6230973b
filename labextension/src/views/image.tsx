/** One image: what the registry knows about it, and what its SIF says. */
import { copyIcon, downloadIcon, linkIcon } from '@jupyterlab/ui-components';
import * as React from 'react';

import { formatBytes, formatDate, imageRef, pullCommand } from '../format';
import type { RegistryModel } from '../model';
import type { IImage } from '../types';
import {
  Empty,
  Fact,
  IconButton,
  Loading,
  TextButton,
  ViewHeading
} from './common';

export interface IImageActions {
  onPull: (ref: string) => void;
  onShareLink: (ref: string) => void;
  onCopy: (text: string, what: string) => void;
}

function Labels(props: {
  labels: Record<string, unknown>;
}): React.ReactElement {
  const entries = Object.entries(props.labels);
  if (entries.length === 0) {
    return <span className="jp-SregistryMuted">none</span>;
  }
  return (
    <dl className="jp-SregistryFacts jp-mod-labels" aria-label="Labels">
      {entries.map(([key, value]) => (
        <Fact key={key} term={key}>
          <span className="jp-SregistryMono">
            {typeof value === 'string' ? value : JSON.stringify(value)}
          </span>
        </Fact>
      ))}
    </dl>
  );
}

export function ImageView(
  props: {
    model: RegistryModel;
    collection: string;
    container: string;
    ref_: string;
  } & IImageActions
): React.ReactElement {
  const { model, collection, container, ref_ } = props;
  const image: IImage | null =
    model.image &&
    model.image.collection === collection &&
    model.image.container === container &&
    (model.image.digest === ref_ || model.image.tags.includes(ref_))
      ? model.image
      : null;
  if (!image) {
    return model.loading ? <Loading /> : <Empty>Nothing to show.</Empty>;
  }
  const ref = imageRef(collection, container, ref_);
  const sif = image.sif;
  return (
    <div className="jp-SregistryImage">
      <header className="jp-SregistryHeading">
        <ViewHeading>
          {container}:{ref_}
        </ViewHeading>
        <p className="jp-SregistryHeading-meta">in {collection}</p>
        {image.description && (
          <p className="jp-SregistryHeading-description">{image.description}</p>
        )}
        <div className="jp-SregistryActions">
          <TextButton
            accent
            icon={downloadIcon}
            label="Pull"
            title="Pull into the file browser's folder"
            onClick={() => props.onPull(ref)}
          />
          <TextButton
            icon={linkIcon}
            label="Share link…"
            title="Make an expiring download link"
            onClick={() => props.onShareLink(ref)}
          />
        </div>
      </header>
      <dl className="jp-SregistryFacts">
        <Fact term="Digest">
          <span className="jp-SregistryCopyable">
            <code className="jp-SregistryMono jp-SregistryDigest">
              {image.digest}
            </code>
            <IconButton
              icon={copyIcon}
              label="Copy the digest"
              onClick={() => props.onCopy(image.digest, 'Digest')}
            />
          </span>
        </Fact>
        <Fact term="Size">{formatBytes(image.size)}</Fact>
        <Fact term="Architecture">{image.arch}</Fact>
        <Fact term="Signed">
          {image.signed ? (
            <span className="jp-SregistryBadge jp-mod-signed">✓ signed</span>
          ) : (
            <span className="jp-SregistryMuted">not signed</span>
          )}
        </Fact>
        <Fact term="Tags">
          {image.tags.length ? (
            <span className="jp-SregistryTags">
              {image.tags.map(t => (
                <span className="jp-SregistryTag" key={t}>
                  {t}
                </span>
              ))}
            </span>
          ) : (
            <span className="jp-SregistryMuted">none</span>
          )}
        </Fact>
        <Fact term="Pushed">{formatDate(image.uploaded)}</Fact>
        <Fact term="Downloads">{image.downloads}</Fact>
        <Fact term="Pull command">
          <span className="jp-SregistryCopyable">
            <code className="jp-SregistryMono">{pullCommand(ref)}</code>
            <IconButton
              icon={copyIcon}
              label="Copy the pull command"
              onClick={() => props.onCopy(pullCommand(ref), 'Pull command')}
            />
          </span>
        </Fact>
      </dl>
      {sif ? (
        <>
          <h4 className="jp-SregistrySubheading">Labels</h4>
          <Labels labels={sif.labels ?? {}} />
          <h4 className="jp-SregistrySubheading">Definition file</h4>
          {sif.deffile ? (
            <pre className="jp-SregistryMono jp-SregistryDeffile" tabIndex={0}>
              {sif.deffile}
            </pre>
          ) : (
            <span className="jp-SregistryMuted">
              The image carries no definition file.
            </span>
          )}
          {sif.partitions.length > 0 && (
            <>
              <h4 className="jp-SregistrySubheading">Partitions</h4>
              <ul className="jp-SregistryPartitions" aria-label="Partitions">
                {sif.partitions.map(p => (
                  <li key={p.id}>
                    <span className="jp-SregistryPartitions-name">
                      {p.parttype}
                    </span>
                    <span className="jp-SregistryMuted">
                      {' '}
                      {[p.fstype, p.arch, formatBytes(p.size)].join(' · ')}
                    </span>
                  </li>
                ))}
              </ul>
            </>
          )}
        </>
      ) : (
        <Empty>This file is not a SIF image, so there is no metadata.</Empty>
      )}
    </div>
  );
}
