/**
 * The left-sidebar panel: a header with the signed-in person and actions, a
 * breadcrumb trail, the current view, and the transfers in flight.
 */
import {
  fileUploadIcon,
  ReactWidget,
  refreshIcon,
  UseSignal
} from '@jupyterlab/ui-components';
import type { Message } from '@lumino/messaging';
import * as React from 'react';

import { registryIcon } from './icons';
import type { RegistryModel } from './model';
import { CollectionView } from './views/collection';
import { CollectionsView } from './views/collections';
import { ErrorBanner, IconButton } from './views/common';
import { ContainerView } from './views/container';
import { ImageView } from './views/image';
import { TransfersView } from './views/transfers';

/** What the panel asks of the application (dialogs, clipboard, commands). */
export interface IPanelActions {
  pull(ref: string): void;
  push(): void;
  cancel(id: string): void;
  share(collection: string): void;
  shareLink(ref: string): void;
  copy(text: string, what: string): void;
  openPlots(): void;
}

export const PANEL_ID = 'sregistry-panel';

function plotsIcon(): React.ReactElement {
  return (
    <svg
      className="jp-SregistryPlotsGlyph"
      viewBox="0 0 16 16"
      width="16"
      height="16"
      aria-hidden="true"
    >
      <rect x="2" y="8" width="3" height="6" />
      <rect x="6.5" y="4" width="3" height="10" />
      <rect x="11" y="2" width="3" height="12" />
    </svg>
  );
}

function Header(props: {
  model: RegistryModel;
  actions: IPanelActions;
}): React.ReactElement {
  const { model, actions } = props;
  const user = model.whoami?.user;
  return (
    <header className="jp-SregistryPanel-header">
      <div className="jp-SregistryPanel-title">
        <registryIcon.react tag="span" className="jp-SregistryPanel-logo" />
        <h2>Registry</h2>
      </div>
      <div
        className="jp-SregistryPanel-toolbar"
        role="toolbar"
        aria-label="Registry actions"
      >
        <IconButton
          icon={fileUploadIcon}
          label="Push an image to the registry…"
          disabled={!user}
          onClick={actions.push}
        />
        <button
          type="button"
          className="jp-Button jp-mod-minimal jp-SregistryIconButton"
          aria-label="Open the registry's plots"
          title="Open the registry's plots"
          onClick={actions.openPlots}
        >
          {plotsIcon()}
        </button>
        <IconButton
          icon={refreshIcon}
          label="Refresh"
          disabled={model.loading}
          onClick={() => void model.refresh()}
        />
      </div>
      <div
        className="jp-SregistryPanel-user"
        title={model.whoami?.registry_url ?? ''}
      >
        {user ? (
          <>
            Signed in as <strong>{user.name}</strong>
            {user.is_admin ? ' (admin)' : user.is_staff ? ' (staff)' : ''}
          </>
        ) : model.whoami ? (
          <span className="jp-SregistryMuted">
            {model.whoami.message ?? 'Not signed in to the registry.'}
          </span>
        ) : null}
      </div>
    </header>
  );
}

function Breadcrumbs(props: {
  model: RegistryModel;
}): React.ReactElement | null {
  const trail = props.model.breadcrumbs;
  if (trail.length < 2) {
    return null;
  }
  return (
    <nav className="jp-SregistryBreadcrumbs" aria-label="Where you are">
      <ol>
        {trail.map((crumb, i) => (
          <li key={i}>
            {i < trail.length - 1 ? (
              <button
                type="button"
                className="jp-SregistryLink"
                onClick={() => void props.model.open(crumb.location)}
              >
                {crumb.label}
              </button>
            ) : (
              <span aria-current="page">{crumb.label}</span>
            )}
          </li>
        ))}
      </ol>
    </nav>
  );
}

function Body(props: {
  model: RegistryModel;
  actions: IPanelActions;
}): React.ReactElement {
  const { model, actions } = props;
  const here = model.location;
  switch (here.kind) {
    case 'collections':
      return <CollectionsView model={model} />;
    case 'collection':
      return (
        <CollectionView
          model={model}
          name={here.collection}
          onShare={actions.share}
        />
      );
    case 'container':
      return (
        <ContainerView
          model={model}
          collection={here.collection}
          name={here.container}
          onPull={actions.pull}
        />
      );
    case 'image':
      return (
        <ImageView
          model={model}
          collection={here.collection}
          container={here.container}
          ref_={here.ref}
          onPull={actions.pull}
          onShareLink={actions.shareLink}
          onCopy={actions.copy}
        />
      );
  }
}

export function PanelView(props: {
  model: RegistryModel;
  actions: IPanelActions;
}): React.ReactElement {
  const { model, actions } = props;
  return (
    <div className="jp-SregistryPanel-content" aria-busy={model.loading}>
      <Header model={model} actions={actions} />
      <Breadcrumbs model={model} />
      {model.error && (
        <ErrorBanner error={model.error} onDismiss={() => model.clearError()} />
      )}
      <div className="jp-SregistryPanel-body">
        <Body model={model} actions={actions} />
      </div>
      <TransfersView model={model} onCancel={actions.cancel} />
    </div>
  );
}

export class RegistryPanel extends ReactWidget {
  constructor(
    private readonly model: RegistryModel,
    private readonly actions: IPanelActions
  ) {
    super();
    this.id = PANEL_ID;
    this.addClass('jp-SregistryPanel');
    this.title.icon = registryIcon;
    this.title.caption = 'Registry';
    this.node.setAttribute('role', 'region');
    this.node.setAttribute('aria-label', 'Singularity registry');
  }

  /** Activation (from the command or the sidebar tab) puts the keyboard focus inside the panel. */
  protected onActivateRequest(msg: Message): void {
    super.onActivateRequest(msg);
    if (this.isVisible) {
      const target = ['input[type="search"]', '.jp-SregistryHeading-title']
        .map(selector => this.node.querySelector<HTMLElement>(selector))
        .find(node => node !== null);
      target?.focus();
    }
  }

  render(): React.ReactElement {
    return (
      <UseSignal signal={this.model.changed}>
        {() => <PanelView model={this.model} actions={this.actions} />}
      </UseSignal>
    );
  }
}
