/**
 * An IRegistryApi that answers from the JSON fixtures, records every call, and
 * lets a test hold an answer back to reorder responses.
 */
import type { ICollectionQuery, IRegistryApi } from '../src/api';
import { errorFromResponse } from '../src/errors';
import type {
  ICollection,
  ICollectionDetail,
  ICollectionPage,
  IContainer,
  IImage,
  IItems,
  IMember,
  IPlotlyFigure,
  IShareLink,
  ITeammate,
  ITransfer,
  IWhoAmI
} from '../src/types';
import collectionLab from './fixtures/collection-lab.json';
import page1 from './fixtures/collections-page1.json';
import page2 from './fixtures/collections-page2.json';
import containerLabTools from './fixtures/container-lab-tools.json';
import transferEvents from './fixtures/transfer-events.json';
import whoami from './fixtures/whoami.json';

export const EVENTS = transferEvents as ITransfer[];

export class Deferred<T> {
  resolve!: (value: T) => void;
  reject!: (error: unknown) => void;
  readonly promise = new Promise<T>((resolve, reject) => {
    this.resolve = resolve;
    this.reject = reject;
  });
}

export class FakeApi implements IRegistryApi {
  calls: { method: string; args: unknown[] }[] = [];
  /** When set, `collections` waits for the test to settle these in turn. */
  held: Deferred<ICollectionPage>[] | null = null;
  /** Answers `followTransfer` streams, per transfer id. */
  streams = new Map<string, ITransfer[]>();
  /** What `transfer(id)` answers, in turn, per id (the last one repeats). */
  polls = new Map<string, ITransfer[]>();
  failures = new Map<string, { status: number; body: unknown }>();

  private record(method: string, ...args: unknown[]): void {
    this.calls.push({ method, args });
    const failure = this.failures.get(method);
    if (failure) {
      throw errorFromResponse(failure.status, failure.body);
    }
  }

  called(method: string): unknown[][] {
    return this.calls.filter(c => c.method === method).map(c => c.args);
  }

  async whoami(): Promise<IWhoAmI> {
    this.record('whoami');
    return whoami as IWhoAmI;
  }

  async collections(query: ICollectionQuery): Promise<ICollectionPage> {
    this.record('collections', query);
    if (this.held) {
      const deferred = new Deferred<ICollectionPage>();
      this.held.push(deferred);
      return deferred.promise;
    }
    return (query.page === 2 ? page2 : page1) as ICollectionPage;
  }

  async collection(name: string): Promise<ICollectionDetail> {
    this.record('collection', name);
    if (name !== 'lab') {
      throw errorFromResponse(404, {
        message: `no collection '${name}'`,
        code: 'not_found'
      });
    }
    return collectionLab as ICollectionDetail;
  }

  async container(collection: string, name: string): Promise<IContainer> {
    this.record('container', collection, name);
    return containerLabTools as IContainer;
  }

  async image(
    collection: string,
    container: string,
    ref: string
  ): Promise<IImage> {
    this.record('image', collection, container, ref);
    return (containerLabTools.images as IImage[])[0];
  }

  async pushable(): Promise<IItems<ICollection>> {
    this.record('pushable');
    return { items: [page1.items[1] as ICollection] };
  }

  async startTransfer(
    request: Parameters<IRegistryApi['startTransfer']>[0]
  ): Promise<ITransfer> {
    this.record('startTransfer', request);
    return EVENTS[0];
  }

  async transfers(): Promise<IItems<ITransfer>> {
    this.record('transfers');
    return { items: [] };
  }

  async transfer(id: string): Promise<ITransfer> {
    this.record('transfer', id);
    const answers = this.polls.get(id) ?? [];
    if (answers.length === 0) {
      throw errorFromResponse(404, { message: `no transfer ${id}` });
    }
    return answers.length > 1 ? answers.shift()! : answers[0];
  }

  async followTransfer(
    id: string,
    onEvent: (transfer: ITransfer) => void
  ): Promise<void> {
    this.record('followTransfer', id);
    for (const event of this.streams.get(id) ?? []) {
      await Promise.resolve();
      onEvent(event);
    }
  }

  async cancelTransfer(id: string): Promise<void> {
    this.record('cancelTransfer', id);
  }

  async teammates(): Promise<IItems<ITeammate>> {
    this.record('teammates');
    return { items: [{ name: 'bob' }] };
  }

  async members(collection: string): Promise<IItems<IMember>> {
    this.record('members', collection);
    return { items: [] };
  }

  async addMember(
    collection: string,
    user: string,
    role: IMember['role']
  ): Promise<IMember> {
    this.record('addMember', collection, user, role);
    return { user, role };
  }

  async removeMember(collection: string, user: string): Promise<void> {
    this.record('removeMember', collection, user);
  }

  async share(ref: string, days: number): Promise<IShareLink> {
    this.record('share', ref, days);
    return { url: 'http://x/s/abc', expires_at: '2026-12-01T00:00:00Z' };
  }

  async figure(): Promise<IPlotlyFigure> {
    this.record('figure');
    return { data: [], layout: {} };
  }
}
