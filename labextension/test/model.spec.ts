import { describe, expect, it } from 'vitest';

import { RegistryError } from '../src/errors';
import { RegistryModel } from '../src/model';
import type { ICollectionPage } from '../src/types';
import page1 from './fixtures/collections-page1.json';
import page2 from './fixtures/collections-page2.json';
import forbidden from './fixtures/error-forbidden.json';
import { Deferred, EVENTS, FakeApi } from './fake-api';

function settled(): Promise<void> {
  return new Promise(resolve => setTimeout(resolve, 0));
}

async function started(api = new FakeApi(), pageSize = 2) {
  const model = new RegistryModel(api, { pageSize, pollInterval: 1 });
  await model.start();
  return { api, model };
}

describe('RegistryModel browsing', () => {
  it('starts with who is signed in and the first page', async () => {
    const { api, model } = await started();
    expect(model.signedIn).toBe(true);
    expect(model.whoami?.user?.name).toBe('alice');
    expect(model.collections?.items.map(c => c.name)).toEqual([
      'biocontainers',
      'lab'
    ]);
    expect(api.called('collections')[0][0]).toEqual({
      q: undefined,
      sort: 'name',
      page: 1,
      per_page: 2
    });
    expect(model.loading).toBe(false);
    expect(model.error).toBeNull();
  });

  it('pages forward and back within the pages there are', async () => {
    const { api, model } = await started();
    expect(model.hasPreviousPage).toBe(false);
    expect(model.hasNextPage).toBe(true);
    await model.nextPage();
    expect(model.page).toBe(2);
    expect(model.collections?.items.map(c => c.name)).toEqual(['tools']);
    expect(model.hasNextPage).toBe(false);
    await model.goToPage(99);
    expect(model.page).toBe(2);
    expect(api.called('collections').at(-1)?.[0]).toMatchObject({ page: 2 });
    await model.previousPage();
    expect(model.page).toBe(1);
    await model.goToPage(-3);
    expect(api.called('collections').at(-1)?.[0]).toMatchObject({ page: 1 });
  });

  it('searches from the first page, trimmed, with the chosen sort', async () => {
    const { api, model } = await started();
    await model.nextPage();
    await model.setSort('-stars');
    await model.search('  bio ');
    expect(model.page).toBe(1);
    expect(api.called('collections').at(-1)?.[0]).toEqual({
      q: 'bio',
      sort: '-stars',
      page: 1,
      per_page: 2
    });
  });

  it('keeps the newest search when answers arrive out of order', async () => {
    const { api, model } = await started();
    api.held = [];
    const first = model.search('b');
    const second = model.search('bio');
    const [slow, fast] = api.held as Deferred<ICollectionPage>[];
    fast.resolve(page2 as ICollectionPage);
    await second;
    slow.resolve(page1 as ICollectionPage);
    await first;
    expect(model.query).toBe('bio');
    expect(model.collections?.items.map(c => c.name)).toEqual(['tools']);
    expect(model.loading).toBe(false);
  });

  it('walks collection, container and image, and back up the breadcrumbs', async () => {
    const { api, model } = await started();
    await model.open({ kind: 'collection', collection: 'lab' });
    expect(model.collection?.containers_list.map(c => c.name)).toEqual([
      'tools'
    ]);
    await model.open({
      kind: 'container',
      collection: 'lab',
      container: 'tools'
    });
    expect(model.container?.tags.map(t => t.name)).toEqual(['latest']);
    await model.open({
      kind: 'image',
      collection: 'lab',
      container: 'tools',
      ref: 'latest'
    });
    expect(model.image?.sif?.deffile).toContain('Bootstrap: docker');
    expect(api.called('image')).toEqual([['lab', 'tools', 'latest']]);
    expect(model.breadcrumbs.map(b => b.label)).toEqual([
      'Collections',
      'lab',
      'tools',
      'latest'
    ]);
    await model.back();
    expect(model.location).toEqual({
      kind: 'container',
      collection: 'lab',
      container: 'tools'
    });
  });

  it('shows the registry’s words when something fails, and clears them on the next load', async () => {
    const { model } = await started();
    await model.open({ kind: 'collection', collection: 'gone' });
    expect(model.error).toBeInstanceOf(RegistryError);
    expect(model.error?.status).toBe(404);
    expect(model.error?.message).toBe("no collection 'gone'");
    expect(model.loading).toBe(false);
    await model.open({ kind: 'collections' });
    expect(model.error).toBeNull();
  });

  it('reports a failed start without throwing', async () => {
    const api = new FakeApi();
    api.failures.set('whoami', {
      status: 502,
      body: '<html>Bad gateway</html>'
    });
    const model = new RegistryModel(api);
    await model.start();
    expect(model.error?.message).toBe('The registry cannot be reached.');
    expect(model.collections).toBeNull();
  });

  it('restarts paging when the page size changes', async () => {
    const { api, model } = await started();
    await model.nextPage();
    await model.setPageSize(50);
    expect(model.pageSize).toBe(50);
    expect(api.called('collections').at(-1)?.[0]).toMatchObject({
      page: 1,
      per_page: 50
    });
  });

  it('asks for pushable collections once until refreshed or pushed', async () => {
    const { api, model } = await started();
    expect((await model.loadPushable()).map(c => c.name)).toEqual(['lab']);
    await model.loadPushable();
    expect(api.called('pushable')).toHaveLength(1);
    await model.refresh();
    await model.loadPushable();
    expect(api.called('pushable')).toHaveLength(2);
  });

  it('announces changes to its views', async () => {
    const { model } = await started();
    let changes = 0;
    model.changed.connect(() => changes++);
    await model.nextPage();
    expect(changes).toBeGreaterThanOrEqual(2);
    model.dispose();
    const before = changes;
    await model.previousPage();
    expect(changes).toBe(before);
  });
});

describe('RegistryModel transfers', () => {
  it('sends pulls and pushes in the contract’s shape', async () => {
    const { api, model } = await started();
    await model.pull('lab/tools:latest', 'data');
    await model.push('images/a.sif', 'lab/tools:v1', ['v1.0', 'stable']);
    await model.push('images/b.sif', 'lab/tools:v2');
    expect(api.called('startTransfer').map(a => a[0])).toEqual([
      { direction: 'pull', ref: 'lab/tools:latest', folder: 'data' },
      {
        direction: 'push',
        path: 'images/a.sif',
        ref: 'lab/tools:v1',
        tags: ['v1.0', 'stable']
      },
      { direction: 'push', path: 'images/b.sif', ref: 'lab/tools:v2' }
    ]);
  });

  it('follows the event stream to the end and announces the outcome once', async () => {
    const api = new FakeApi();
    api.streams.set('t1', EVENTS.slice(1));
    const { model } = await started(api);
    const finished: string[] = [];
    model.transfers.finished.connect((_, t) => finished.push(t.state));
    await model.pull('lab/tools:latest', 'data');
    await settled();
    await settled();
    const t = model.transfers.get('t1');
    expect(t?.state).toBe('done');
    expect(t?.bytes_done).toBe(1048576);
    expect(finished).toEqual(['done']);
    expect(api.called('transfer')).toHaveLength(0);
  });

  it('polls when the stream ends before the transfer does', async () => {
    const api = new FakeApi();
    api.streams.set('t1', [EVENTS[1]]);
    api.polls.set('t1', [EVENTS[2], EVENTS[3]]);
    const { model } = await started(api);
    await model.pull('lab/tools:latest', 'data');
    for (
      let i = 0;
      i < 20 && model.transfers.get('t1')?.state !== 'done';
      i++
    ) {
      await new Promise(resolve => setTimeout(resolve, 2));
    }
    expect(model.transfers.get('t1')?.state).toBe('done');
    expect(api.called('transfer').length).toBeGreaterThanOrEqual(2);
  });

  it('gives the transfer endpoint’s refusal to the caller', async () => {
    const { api, model } = await started();
    api.failures.set('startTransfer', { status: 403, body: forbidden });
    const error = await model
      .push('a.sif', 'lab/tools:latest')
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(RegistryError);
    expect((error as RegistryError).message).toBe(
      "you may not push to collection 'lab'"
    );
    expect((error as RegistryError).isForbidden).toBe(true);
    model.showError(error);
    expect(model.error?.code).toBe('forbidden');
    expect(model.transfers.items).toHaveLength(0);
  });

  it('cancels and shows the cancelled state without waiting for the stream', async () => {
    const api = new FakeApi();
    api.streams.set('t1', [EVENTS[1]]);
    const cancelled = { ...EVENTS[1], state: 'cancelled' as const };
    api.polls.set('t1', [EVENTS[1]]);
    const { model } = await started(api);
    await model.pull('lab/tools:latest', 'data');
    await settled();
    api.polls.set('t1', [cancelled]);
    await model.cancel('t1');
    expect(api.called('cancelTransfer')).toEqual([['t1']]);
    expect(model.transfers.get('t1')?.state).toBe('cancelled');
    model.dispose();
  });

  it('resumes watching transfers that were running when the page loaded', async () => {
    const api = new FakeApi();
    api.transfers = async () => ({ items: [EVENTS[1]] });
    api.streams.set('t1', [EVENTS[3]]);
    const finished: string[] = [];
    const model = new RegistryModel(api, { pollInterval: 1 });
    model.transfers.finished.connect((_, t) => finished.push(t.id));
    await model.start();
    await settled();
    await settled();
    expect(api.called('followTransfer')).toEqual([['t1']]);
    expect(model.transfers.get('t1')?.state).toBe('done');
    expect(finished).toEqual(['t1']);
  });
});
