/**
 * `IRegistryApi` over the Jupyter server: every request goes to the server
 * extension under `<baseUrl>/sregistry/api/`, through
 * `ServerConnection.makeRequest`, which adds the token and the XSRF header.
 * Nothing leaves the Jupyter server's origin.
 */
import { URLExt } from '@jupyterlab/coreutils';
import { ServerConnection } from '@jupyterlab/services';

import type { ICollectionQuery, IRegistryApi } from './api';
import { errorFromResponse, NO_RESPONSE, RegistryError } from './errors';
import { EventStreamParser } from './sse';
import type {
  FigureName,
  ICollection,
  ICollectionDetail,
  ICollectionPage,
  IContainer,
  IImage,
  IItems,
  IMember,
  IPlotlyFigure,
  IPullRequest,
  IPushRequest,
  IShareLink,
  ITeammate,
  ITransfer,
  IWhoAmI,
  MemberRole
} from './types';

const PREFIX = 'sregistry/api';

function segment(value: string): string {
  return encodeURIComponent(value);
}

export class ServerRegistryApi implements IRegistryApi {
  constructor(private readonly settings: ServerConnection.ISettings) {}

  whoami(): Promise<IWhoAmI> {
    return this.json('whoami');
  }

  collections(query: ICollectionQuery): Promise<ICollectionPage> {
    const params: Record<string, string> = {};
    for (const [key, value] of Object.entries(query)) {
      if (value !== undefined && value !== '') {
        params[key] = String(value);
      }
    }
    return this.json('collections', 'GET', undefined, params);
  }

  collection(name: string): Promise<ICollectionDetail> {
    return this.json(`collections/${segment(name)}`);
  }

  container(collection: string, name: string): Promise<IContainer> {
    return this.json(
      `collections/${segment(collection)}/containers/${segment(name)}`
    );
  }

  image(collection: string, container: string, ref: string): Promise<IImage> {
    return this.json(
      `collections/${segment(collection)}/containers/${segment(container)}/images/${segment(ref)}`
    );
  }

  pushable(): Promise<IItems<ICollection>> {
    return this.json('pushable');
  }

  startTransfer(request: IPushRequest | IPullRequest): Promise<ITransfer> {
    return this.json('transfers', 'POST', request);
  }

  transfers(): Promise<IItems<ITransfer>> {
    return this.json('transfers');
  }

  transfer(id: string): Promise<ITransfer> {
    return this.json(`transfers/${segment(id)}`);
  }

  async followTransfer(
    id: string,
    onEvent: (transfer: ITransfer) => void,
    signal?: AbortSignal
  ): Promise<void> {
    const response = await this.send(
      `transfers/${segment(id)}/events`,
      { headers: { Accept: 'text/event-stream' }, signal },
      signal
    );
    if (!response.ok) {
      throw errorFromResponse(response.status, await readBody(response));
    }
    if (!response.body) {
      throw new RegistryError('The progress stream is empty.', NO_RESPONSE);
    }
    const reader = response.body.getReader();
    const decoder = new TextDecoder();
    const parser = new EventStreamParser();
    for (;;) {
      const { done, value } = await reader.read();
      if (done) {
        break;
      }
      for (const data of parser.feed(decoder.decode(value, { stream: true }))) {
        onEvent(JSON.parse(data) as ITransfer);
      }
    }
  }

  async cancelTransfer(id: string): Promise<void> {
    await this.json(`transfers/${segment(id)}`, 'DELETE');
  }

  teammates(): Promise<IItems<ITeammate>> {
    return this.json('teammates');
  }

  members(collection: string): Promise<IItems<IMember>> {
    return this.json(`collections/${segment(collection)}/members`);
  }

  addMember(
    collection: string,
    user: string,
    role: MemberRole
  ): Promise<IMember> {
    return this.json(`collections/${segment(collection)}/members`, 'POST', {
      user,
      role
    });
  }

  async removeMember(collection: string, user: string): Promise<void> {
    await this.json(
      `collections/${segment(collection)}/members/${segment(user)}`,
      'DELETE'
    );
  }

  share(ref: string, days: number): Promise<IShareLink> {
    return this.json('shares', 'POST', { ref, days });
  }

  figure(name: FigureName): Promise<IPlotlyFigure> {
    return this.json(`figures/${segment(name)}`);
  }

  private async json<T>(
    path: string,
    method = 'GET',
    body?: unknown,
    params: Record<string, string> = {}
  ): Promise<T> {
    const init: RequestInit = { method };
    if (body !== undefined) {
      init.body = JSON.stringify(body);
      init.headers = { 'Content-Type': 'application/json' };
    }
    const response = await this.send(path, init, undefined, params);
    const data = await readBody(response);
    if (!response.ok) {
      throw errorFromResponse(response.status, data);
    }
    return data as T;
  }

  private async send(
    path: string,
    init: RequestInit,
    signal?: AbortSignal,
    params: Record<string, string> = {}
  ): Promise<Response> {
    const url =
      URLExt.join(this.settings.baseUrl, PREFIX, path) +
      URLExt.objectToQueryString(params);
    try {
      return await ServerConnection.makeRequest(url, init, this.settings);
    } catch {
      if (signal?.aborted) {
        throw new RegistryError('Cancelled.', NO_RESPONSE, 'cancelled');
      }
      throw new RegistryError(
        'The Jupyter server cannot be reached.',
        NO_RESPONSE
      );
    }
  }
}

/** The body parsed as JSON when it is JSON, else its text (or null when empty). */
async function readBody(response: Response): Promise<unknown> {
  const text = await response.text();
  if (!text) {
    return null;
  }
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}
