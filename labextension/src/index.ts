/**
 * The registry in JupyterLab and Notebook 7: a left-sidebar panel to browse,
 * pull and share; "Push to Registry…" on `.sif` files in the file browser; a
 * tab of plots; commands in the palette; settings in the settings editor.
 *
 * Only `app.shell.add(…, 'left')` is used, never `ILabShell`, so the panel
 * also appears wherever Notebook 7 has a sidebar.
 */
import {
  ILayoutRestorer,
  JupyterFrontEnd,
  JupyterFrontEndPlugin
} from '@jupyterlab/application';
import {
  Clipboard,
  ICommandPalette,
  MainAreaWidget,
  Notification
} from '@jupyterlab/apputils';
import { IDefaultFileBrowser } from '@jupyterlab/filebrowser';
import { IRenderMimeRegistry } from '@jupyterlab/rendermime';
import { ISettingRegistry } from '@jupyterlab/settingregistry';

import { askPush } from './dialogs/push';
import { showMembersDialog, showShareLinkDialog } from './dialogs/share';
import { containerFromPath, splitTags } from './dialogs/validate';
import { asRegistryError } from './errors';
import { imageRef } from './format';
import { registryIcon } from './icons';
import { RegistryModel } from './model';
import { IPanelActions, PANEL_ID, RegistryPanel } from './panel';
import { createPlotsWidget, PlotsView } from './plots';
import { ServerRegistryApi } from './server';
import type { ITransfer } from './types';

const PLUGIN_ID = 'sregistry-jupyter:panel';

export namespace CommandIDs {
  export const openPanel = 'sregistry:open-panel';
  export const refresh = 'sregistry:refresh';
  export const pushFile = 'sregistry:push-file';
  export const openPlots = 'sregistry:open-plots';
  export const pull = 'sregistry:pull';
}

interface ISettings {
  defaultPullFolder: string;
  pageSize: number;
}

const DEFAULTS: ISettings = { defaultPullFolder: '', pageSize: 20 };

/** Where a transfer ended, worded for a notification. */
function outcome(t: ITransfer): string {
  const what =
    t.direction === 'push'
      ? `Push of ${t.path} to ${t.ref}`
      : `Pull of ${t.ref} into ${t.path}`;
  switch (t.state) {
    case 'done':
      return t.direction === 'push'
        ? `Pushed ${t.path} as ${t.ref}.`
        : `Pulled ${t.ref} into ${t.path}.`;
    case 'cancelled':
      return `${what} was cancelled.`;
    default:
      return `${what} failed: ${t.error ?? 'no reason given'}`;
  }
}

function dirname(path: string): string {
  const i = path.lastIndexOf('/');
  return i === -1 ? '' : path.slice(0, i);
}

const plugin: JupyterFrontEndPlugin<void> = {
  id: PLUGIN_ID,
  description: 'The Singularity/Apptainer registry in the left sidebar.',
  autoStart: true,
  optional: [
    IDefaultFileBrowser,
    ISettingRegistry,
    ICommandPalette,
    IRenderMimeRegistry,
    ILayoutRestorer
  ],
  activate: (
    app: JupyterFrontEnd,
    browser: IDefaultFileBrowser | null,
    settingRegistry: ISettingRegistry | null,
    palette: ICommandPalette | null,
    rendermime: IRenderMimeRegistry | null,
    restorer: ILayoutRestorer | null
  ): void => {
    const api = new ServerRegistryApi(app.serviceManager.serverSettings);
    const model = new RegistryModel(api, { pageSize: DEFAULTS.pageSize });
    let settings: ISettings = { ...DEFAULTS };
    let plots: MainAreaWidget<PlotsView> | null = null;

    app.docRegistry.addFileType({
      name: 'sif',
      displayName: 'SIF image',
      extensions: ['.sif'],
      mimeTypes: ['application/vnd.sylabs.sif'],
      fileFormat: 'base64',
      contentType: 'file',
      icon: registryIcon
    });

    const notifyError = (error: unknown) => {
      Notification.error(asRegistryError(error).message, { autoClose: 8000 });
    };

    const pullFolder = () =>
      settings.defaultPullFolder.replace(/^\/+|\/+$/g, '') ||
      browser?.model.path ||
      '';

    const pull = async (ref: string) => {
      try {
        await model.pull(ref, pullFolder());
      } catch (error) {
        notifyError(error);
      }
    };

    /** The `.sif` files in the file browser's folder, for the push dialog. */
    const sifFilesHere = async (): Promise<string[]> => {
      const folder = browser?.model.path ?? '';
      try {
        const listing = await app.serviceManager.contents.get(folder, {
          content: true
        });
        return (listing.content as { path: string; type: string }[])
          .filter(
            i => i.type === 'file' && i.path.toLowerCase().endsWith('.sif')
          )
          .map(i => i.path);
      } catch {
        return [];
      }
    };

    const push = async (path?: string) => {
      if (!model.signedIn) {
        Notification.warning(
          model.whoami?.message ?? 'Sign in to the registry to push.'
        );
        return;
      }
      let collections;
      let files;
      try {
        [collections, files] = await Promise.all([
          model.loadPushable(),
          sifFilesHere()
        ]);
      } catch (error) {
        notifyError(error);
        return;
      }
      const file = path ?? files[0] ?? '';
      const here = model.location;
      const preferred =
        here.kind !== 'collections' &&
        collections.some(c => c.name === here.collection)
          ? here.collection
          : (collections[0]?.name ?? '');
      const form = await askPush(
        {
          path: file,
          collection: preferred,
          container: containerFromPath(file),
          tags: 'latest'
        },
        collections,
        files
      );
      if (!form) {
        return;
      }
      const [tag, ...more] = splitTags(form.tags);
      app.shell.activateById(PANEL_ID);
      try {
        await model.push(
          form.path.trim(),
          imageRef(form.collection.trim(), form.container.trim(), tag),
          more
        );
      } catch (error) {
        model.showError(error);
        notifyError(error);
      }
    };

    const actions: IPanelActions = {
      pull: ref => void pull(ref),
      push: () => void app.commands.execute(CommandIDs.pushFile),
      cancel: id => void model.cancel(id).catch(notifyError),
      share: collection => void showMembersDialog(api, collection),
      shareLink: ref =>
        void showShareLinkDialog(api, ref, () =>
          Notification.success('Link copied.', { autoClose: 3000 })
        ),
      copy: (text, what) => {
        Clipboard.copyToSystem(text);
        Notification.success(`${what} copied.`, { autoClose: 3000 });
      },
      openPlots: () => void app.commands.execute(CommandIDs.openPlots)
    };

    const panel = new RegistryPanel(model, actions);
    app.shell.add(panel, 'left', { rank: 700 });
    restorer?.add(panel, PANEL_ID);

    model.transfers.finished.connect((_, t) => {
      const text = outcome(t);
      if (t.state === 'done') {
        Notification.success(text, { autoClose: 5000 });
      } else if (t.state === 'cancelled') {
        Notification.info(text, { autoClose: 5000 });
      } else {
        Notification.error(text, { autoClose: false });
      }
      if (t.direction === 'pull' && browser) {
        const folder = dirname(t.path);
        if (folder === browser.model.path || t.state === 'done') {
          void browser.model.refresh();
        }
      } else if (t.direction === 'push' && t.state === 'done') {
        void model.refresh();
      }
    });

    app.commands.addCommand(CommandIDs.openPanel, {
      label: 'Open the Registry Panel',
      icon: registryIcon,
      execute: () => app.shell.activateById(PANEL_ID)
    });

    app.commands.addCommand(CommandIDs.refresh, {
      label: 'Refresh the Registry Panel',
      execute: () => model.refresh()
    });

    app.commands.addCommand(CommandIDs.pushFile, {
      label: args =>
        args.isPalette
          ? 'Push the Selected File to the Registry…'
          : 'Push to Registry…',
      caption: 'Push a .sif image from the workspace to the registry',
      icon: args => (args.isPalette ? undefined : registryIcon),
      execute: () => {
        const selected = browser
          ? [...browser.selectedItems()].find(
              i =>
                i.type !== 'directory' && i.path.toLowerCase().endsWith('.sif')
            )
          : undefined;
        return push(selected?.path);
      }
    });

    app.commands.addCommand(CommandIDs.openPlots, {
      label: 'Open the Registry Plots',
      icon: registryIcon,
      isEnabled: () => rendermime !== null,
      execute: () => {
        if (!rendermime) {
          return;
        }
        if (plots && !plots.isDisposed) {
          app.shell.activateById(plots.id);
          void plots.content.refresh();
          return;
        }
        plots = createPlotsWidget(api, rendermime);
        app.shell.add(plots, 'main');
        app.shell.activateById(plots.id);
      }
    });

    app.commands.addCommand(CommandIDs.pull, {
      label: args => `Pull ${String(args.ref ?? 'an image')} from the Registry`,
      execute: args => pull(String(args.ref))
    });

    if (palette) {
      const category = 'Registry';
      for (const command of [
        CommandIDs.openPanel,
        CommandIDs.refresh,
        CommandIDs.pushFile,
        CommandIDs.openPlots
      ]) {
        palette.addItem({ command, category, args: { isPalette: true } });
      }
    }

    const apply = (loaded: ISettingRegistry.ISettings) => {
      settings = { ...DEFAULTS, ...(loaded.composite as Partial<ISettings>) };
      void model.setPageSize(settings.pageSize);
    };

    void (async () => {
      if (settingRegistry) {
        try {
          const loaded = await settingRegistry.load(PLUGIN_ID);
          apply(loaded);
          loaded.changed.connect(apply);
        } catch (error) {
          console.warn(`Settings of ${PLUGIN_ID} could not be loaded`, error);
        }
      }
      await model.start();
    })();
  }
};

export default plugin;
