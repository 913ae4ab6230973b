/**
 * The state of the registry panel, apart from any view: where the person is
 * (collections, a collection, a container, an image), what was loaded there,
 * what failed, and the transfers in flight.
 *
 * Answers can come back in any order; each load carries a ticket and only the
 * latest one may change the state, so a slow search never overwrites a newer
 * one.
 */
import { ISignal, Signal } from '@lumino/signaling';

import type { IRegistryApi } from './api';
import { asRegistryError, RegistryError } from './errors';
import { isFinal, TransferTracker } from './transfers';
import type {
  CollectionSort,
  ICollection,
  ICollectionDetail,
  ICollectionPage,
  IContainer,
  IImage,
  ITransfer,
  IWhoAmI
} from './types';

export type Location =
  | { kind: 'collections' }
  | { kind: 'collection'; collection: string }
  | { kind: 'container'; collection: string; container: string }
  | { kind: 'image'; collection: string; container: string; ref: string };

export const HOME: Location = { kind: 'collections' };

export interface IModelOptions {
  /** Collections per page. */
  pageSize?: number;
  /** Milliseconds between polls when the progress stream is unavailable. */
  pollInterval?: number;
}

const DEFAULT_PAGE_SIZE = 20;
const DEFAULT_POLL_INTERVAL = 1000;

export class RegistryModel {
  readonly transfers = new TransferTracker();

  whoami: IWhoAmI | null = null;
  location: Location = HOME;
  query = '';
  sort: CollectionSort = 'name';
  page = 1;
  collections: ICollectionPage | null = null;
  collection: ICollectionDetail | null = null;
  container: IContainer | null = null;
  image: IImage | null = null;
  pushable: ICollection[] | null = null;
  loading = false;
  error: RegistryError | null = null;

  private readonly api: IRegistryApi;
  private readonly _changed = new Signal<this, void>(this);
  private readonly watching = new Map<string, AbortController>();
  private ticket = 0;
  private disposed = false;
  private _pageSize: number;
  private readonly pollInterval: number;

  constructor(api: IRegistryApi, options: IModelOptions = {}) {
    this.api = api;
    this._pageSize = options.pageSize ?? DEFAULT_PAGE_SIZE;
    this.pollInterval = options.pollInterval ?? DEFAULT_POLL_INTERVAL;
    this.transfers.changed.connect(() => this.emit());
  }

  get changed(): ISignal<this, void> {
    return this._changed;
  }

  get pageSize(): number {
    return this._pageSize;
  }

  get signedIn(): boolean {
    return !!this.whoami?.user;
  }

  get hasPreviousPage(): boolean {
    return this.page > 1;
  }

  get hasNextPage(): boolean {
    return !!this.collections && this.page < this.collections.pages;
  }

  /** The trail from the list of collections to where the person is. */
  get breadcrumbs(): { label: string; location: Location }[] {
    const trail: { label: string; location: Location }[] = [
      { label: 'Collections', location: HOME }
    ];
    const here = this.location;
    if (here.kind === 'collections') {
      return trail;
    }
    trail.push({
      label: here.collection,
      location: { kind: 'collection', collection: here.collection }
    });
    if (here.kind === 'container' || here.kind === 'image') {
      trail.push({
        label: here.container,
        location: {
          kind: 'container',
          collection: here.collection,
          container: here.container
        }
      });
    }
    if (here.kind === 'image') {
      trail.push({ label: here.ref, location: here });
    }
    return trail;
  }

  /** Who is signed in, the first page of collections, and known transfers. */
  async start(): Promise<void> {
    const ticket = this.begin();
    try {
      this.whoami = await this.api.whoami();
    } catch (error) {
      this.fail(ticket, error);
      return;
    }
    await Promise.all([this.loadCollections(ticket), this.loadTransfers()]);
  }

  async setPageSize(size: number): Promise<void> {
    if (size === this._pageSize) {
      return;
    }
    this._pageSize = size;
    this.page = 1;
    if (this.location.kind === 'collections') {
      await this.loadCollections(this.begin());
    }
  }

  async search(query: string): Promise<void> {
    this.query = query.trim();
    this.page = 1;
    this.location = HOME;
    await this.loadCollections(this.begin());
  }

  async setSort(sort: CollectionSort): Promise<void> {
    this.sort = sort;
    this.page = 1;
    await this.loadCollections(this.begin());
  }

  async goToPage(page: number): Promise<void> {
    const last = this.collections?.pages ?? 1;
    this.page = Math.min(Math.max(1, Math.floor(page)), Math.max(1, last));
    await this.loadCollections(this.begin());
  }

  nextPage(): Promise<void> {
    return this.goToPage(this.page + 1);
  }

  previousPage(): Promise<void> {
    return this.goToPage(this.page - 1);
  }

  /** Go somewhere and load what is shown there. */
  async open(location: Location): Promise<void> {
    this.location = location;
    const ticket = this.begin();
    try {
      switch (location.kind) {
        case 'collections':
          await this.loadCollections(ticket);
          return;
        case 'collection': {
          const detail = await this.api.collection(location.collection);
          if (this.current(ticket)) {
            this.collection = detail;
          }
          break;
        }
        case 'container': {
          const container = await this.api.container(
            location.collection,
            location.container
          );
          if (this.current(ticket)) {
            this.container = container;
          }
          break;
        }
        case 'image': {
          const image = await this.api.image(
            location.collection,
            location.container,
            location.ref
          );
          if (this.current(ticket)) {
            this.image = image;
          }
          break;
        }
      }
      this.finish(ticket);
    } catch (error) {
      this.fail(ticket, error);
    }
  }

  /** One step up the breadcrumbs. */
  back(): Promise<void> {
    const trail = this.breadcrumbs;
    return this.open(trail[Math.max(0, trail.length - 2)].location);
  }

  /** Load again what is shown, and who is signed in. */
  async refresh(): Promise<void> {
    try {
      this.whoami = await this.api.whoami();
    } catch (error) {
      this.fail(this.begin(), error);
      return;
    }
    this.pushable = null;
    await this.open(this.location);
  }

  /** Collections the person may push to, loaded once per refresh. */
  async loadPushable(): Promise<ICollection[]> {
    if (this.pushable === null) {
      this.pushable = (await this.api.pushable()).items;
    }
    return this.pushable;
  }

  /** Pull `ref` into `folder` (relative to the Jupyter root). */
  pull(ref: string, folder: string, filename?: string): Promise<ITransfer> {
    return this.startTransfer({
      direction: 'pull',
      ref,
      folder,
      ...(filename ? { filename } : {})
    });
  }

  /** Push the workspace file `path` as `ref`, with more `tags` on the same image. */
  push(path: string, ref: string, tags: string[] = []): Promise<ITransfer> {
    this.pushable = null;
    return this.startTransfer({
      direction: 'push',
      path,
      ref,
      ...(tags.length ? { tags } : {})
    });
  }

  async cancel(id: string): Promise<void> {
    await this.api.cancelTransfer(id);
    const known = this.transfers.get(id);
    if (known && !isFinal(known.state)) {
      // The event stream says so too, but the button should not wait for it.
      this.transfers.update(await this.api.transfer(id));
    }
  }

  /** Show a failure that happened outside a load (a refused push, say). */
  showError(error: unknown): void {
    this.error = asRegistryError(error);
    this.emit();
  }

  clearError(): void {
    this.error = null;
    this.emit();
  }

  dispose(): void {
    this.disposed = true;
    for (const controller of this.watching.values()) {
      controller.abort();
    }
    this.watching.clear();
    Signal.clearData(this);
  }

  private async startTransfer(
    request: Parameters<IRegistryApi['startTransfer']>[0]
  ): Promise<ITransfer> {
    const transfer = await this.api.startTransfer(request);
    this.transfers.update(transfer);
    void this.watch(transfer.id);
    return transfer;
  }

  private async loadTransfers(): Promise<void> {
    try {
      const { items } = await this.api.transfers();
      this.transfers.load(items);
      for (const transfer of items) {
        if (!isFinal(transfer.state)) {
          void this.watch(transfer.id);
        }
      }
    } catch {
      // The list is a convenience; browsing works without it.
    }
  }

  /**
   * Follow a transfer to its end: the event stream while it lasts, then
   * polling, so that progress still shows if a proxy cuts the stream.
   */
  private async watch(id: string): Promise<void> {
    if (this.watching.has(id)) {
      return;
    }
    const controller = new AbortController();
    this.watching.set(id, controller);
    const ended = () =>
      this.disposed ||
      controller.signal.aborted ||
      isFinal(this.transfers.get(id)?.state ?? 'queued');
    try {
      try {
        await this.api.followTransfer(
          id,
          t => this.transfers.update(t),
          controller.signal
        );
      } catch {
        // Fall through to polling.
      }
      while (!ended()) {
        try {
          this.transfers.update(await this.api.transfer(id));
        } catch (error) {
          if (asRegistryError(error).status === 404) {
            break;
          }
        }
        if (!ended()) {
          await delay(this.pollInterval);
        }
      }
    } finally {
      this.watching.delete(id);
    }
  }

  private async loadCollections(ticket: number): Promise<void> {
    try {
      const page = await this.api.collections({
        q: this.query || undefined,
        sort: this.sort,
        page: this.page,
        per_page: this._pageSize
      });
      if (this.current(ticket)) {
        this.collections = page;
        this.page = page.page;
      }
      this.finish(ticket);
    } catch (error) {
      this.fail(ticket, error);
    }
  }

  private begin(): number {
    this.loading = true;
    this.error = null;
    this.emit();
    return ++this.ticket;
  }

  private current(ticket: number): boolean {
    return ticket === this.ticket && !this.disposed;
  }

  private finish(ticket: number): void {
    if (this.current(ticket)) {
      this.loading = false;
      this.emit();
    }
  }

  private fail(ticket: number, error: unknown): void {
    if (this.current(ticket)) {
      this.loading = false;
      this.error = asRegistryError(error);
      this.emit();
    }
  }

  private emit(): void {
    if (!this.disposed) {
      this._changed.emit();
    }
  }
}

function delay(ms: number): Promise<void> {
  return new Promise(resolve => setTimeout(resolve, ms));
}
