/**
 * The registry's plots in a main-area tab. The figures come from the server
 * extension as plotly JSON and are drawn by JupyterLab's own renderer for the
 * plotly MIME type (the `jupyterlab-plotly` extension shipped in the `plotly`
 * wheel), so the panel bundles no charting library.
 */
import { MainAreaWidget } from '@jupyterlab/apputils';
import type { IRenderMimeRegistry } from '@jupyterlab/rendermime';
import { Panel, Widget } from '@lumino/widgets';

import type { IRegistryApi } from './api';
import { asRegistryError } from './errors';
import { registryIcon } from './icons';
import type { FigureName } from './types';

export const PLOTLY_MIME = 'application/vnd.plotly.v1+json';

const FIGURES: { name: FigureName; title: string }[] = [
  { name: 'treemap', title: 'What is stored, by collection and container' },
  { name: 'storage', title: 'Storage by collection' },
  { name: 'activity', title: 'Pushes and pulls per day' }
];

function message(text: string, className: string): Widget {
  const node = document.createElement('p');
  node.className = className;
  node.textContent = text;
  return new Widget({ node });
}

/** One figure: a heading and the rendered plot, or why there is none. */
class FigureSection extends Panel {
  constructor(
    private readonly api: IRegistryApi,
    private readonly rendermime: IRenderMimeRegistry,
    private readonly figure: { name: FigureName; title: string }
  ) {
    super();
    this.addClass('jp-SregistryFigure');
    this.node.dataset.figure = figure.name;
    const heading = document.createElement('h3');
    heading.textContent = figure.title;
    this.addWidget(new Widget({ node: heading }));
  }

  async load(): Promise<void> {
    while (this.widgets.length > 1) {
      this.widgets[1].dispose();
    }
    const status = message('Loading…', 'jp-SregistryLoading');
    this.addWidget(status);
    try {
      const data = await this.api.figure(this.figure.name);
      const renderer = this.rendermime.createRenderer(PLOTLY_MIME);
      const model = this.rendermime.createModel({
        data: { [PLOTLY_MIME]: data as never }
      });
      status.dispose();
      this.addWidget(renderer);
      await renderer.renderModel(model);
    } catch (error) {
      status.dispose();
      this.addWidget(
        message(asRegistryError(error).message, 'jp-SregistryError')
      );
    }
  }
}

export class PlotsView extends Panel {
  private readonly sections: FigureSection[];

  constructor(api: IRegistryApi, rendermime: IRenderMimeRegistry) {
    super();
    this.addClass('jp-SregistryPlots');
    const canRender =
      rendermime.preferredMimeType({ [PLOTLY_MIME]: {} }, 'any') ===
      PLOTLY_MIME;
    if (!canRender) {
      this.sections = [];
      this.addWidget(
        message(
          'Plots need the plotly renderer for JupyterLab: install the plotly package in the environment that runs JupyterLab.',
          'jp-SregistryEmpty'
        )
      );
      return;
    }
    this.sections = FIGURES.map(f => new FigureSection(api, rendermime, f));
    for (const section of this.sections) {
      this.addWidget(section);
    }
  }

  async refresh(): Promise<void> {
    await Promise.all(this.sections.map(s => s.load()));
  }
}

export function createPlotsWidget(
  api: IRegistryApi,
  rendermime: IRenderMimeRegistry
): MainAreaWidget<PlotsView> {
  const content = new PlotsView(api, rendermime);
  const widget = new MainAreaWidget({ content });
  widget.id = 'sregistry-plots';
  widget.title.label = 'Registry plots';
  widget.title.icon = registryIcon;
  widget.title.closable = true;
  void content.refresh();
  return widget;
}
