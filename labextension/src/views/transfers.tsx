/** Pushes and pulls, with progress, rate, time left and a cancel button. */
import { closeIcon } from '@jupyterlab/ui-components';
import * as React from 'react';

import { formatBytes, formatEta, formatRate } from '../format';
import type { RegistryModel } from '../model';
import { isFinal, progressOf } from '../transfers';
import type { ITransfer } from '../types';
import { IconButton } from './common';

const STATE_LABELS: Record<ITransfer['state'], string> = {
  queued: 'Waiting',
  running: 'Running',
  done: 'Done',
  failed: 'Failed',
  cancelled: 'Cancelled'
};

function describe(t: ITransfer): string {
  const verb = t.direction === 'push' ? 'Push' : 'Pull';
  return t.direction === 'push'
    ? `${verb} ${t.path} → ${t.ref}`
    : `${verb} ${t.ref} → ${t.path}`;
}

function TransferRow(props: {
  transfer: ITransfer;
  onCancel: () => void;
}): React.ReactElement {
  const t = props.transfer;
  const progress = progressOf(t);
  const percent = progress === null ? null : Math.round(progress * 100);
  const sizes = t.bytes_total
    ? `${formatBytes(t.bytes_done)} of ${formatBytes(t.bytes_total)}`
    : formatBytes(t.bytes_done);
  const details = isFinal(t.state)
    ? t.state === 'done'
      ? formatBytes(t.bytes_total ?? t.bytes_done)
      : ''
    : [
        sizes,
        formatRate(t.rate),
        formatEta(t.eta) && `${formatEta(t.eta)} left`
      ]
        .filter(Boolean)
        .join(' · ');
  return (
    <li
      className={`jp-SregistryTransfer jp-mod-${t.state}`}
      data-transfer-id={t.id}
      aria-label={`${describe(t)}: ${STATE_LABELS[t.state]}`}
    >
      <div className="jp-SregistryTransfer-line">
        <span className="jp-SregistryTransfer-what" title={describe(t)}>
          {describe(t)}
        </span>
        {!isFinal(t.state) && (
          <IconButton
            icon={closeIcon}
            label={`Cancel: ${describe(t)}`}
            onClick={props.onCancel}
          />
        )}
      </div>
      <progress
        className="jp-SregistryTransfer-bar"
        max={100}
        value={percent ?? undefined}
        aria-label={`${describe(t)} progress`}
      />
      <div className="jp-SregistryTransfer-status">
        <span className="jp-SregistryTransfer-state">
          {STATE_LABELS[t.state]}
          {percent !== null && !isFinal(t.state) ? ` ${percent}%` : ''}
        </span>
        {details && <span> · {details}</span>}
      </div>
      {t.error && (
        <div className="jp-SregistryTransfer-error" role="alert">
          {t.error}
        </div>
      )}
    </li>
  );
}

export function TransfersView(props: {
  model: RegistryModel;
  onCancel: (id: string) => void;
}): React.ReactElement | null {
  const { model } = props;
  const items = model.transfers.items;
  if (items.length === 0) {
    return null;
  }
  return (
    <section className="jp-SregistryTransfers" aria-label="Transfers">
      <header className="jp-SregistryTransfers-header">
        <h3>Transfers</h3>
        {model.transfers.hasFinished && (
          <button
            type="button"
            className="jp-Button jp-mod-minimal jp-SregistryLink"
            onClick={() => model.transfers.clearFinished()}
          >
            Clear finished
          </button>
        )}
      </header>
      <ul className="jp-SregistryTransfers-list">
        {items.map(t => (
          <TransferRow
            key={t.id}
            transfer={t}
            onCancel={() => props.onCancel(t.id)}
          />
        ))}
      </ul>
    </section>
  );
}
