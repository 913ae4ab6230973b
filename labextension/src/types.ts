/**
 * JSON shapes of the server extension's REST API (`<base>/sregistry/api/...`).
 *
 * The panel talks only to the Jupyter server; these interfaces mirror what
 * that extension answers, which for browsing is the registry's native API.
 */

/** A collection as the native API lists it. */
export interface ICollection {
  name: string;
  description: string;
  private: boolean;
  owners: string[];
  containers: number;
  images: number;
  size: number;
  stars: number;
  created: string | null;
  updated: string | null;
}

/** One page of `GET collections`. */
export interface ICollectionPage {
  items: ICollection[];
  page: number;
  per_page: number;
  total: number;
  pages: number;
}

export interface ITag {
  name: string;
  arch: string;
  digest: string;
  frozen: boolean;
  updated: string | null;
}

export interface IPartition {
  id: number;
  name: string;
  fstype: string;
  parttype: string;
  primary: boolean;
  arch: string;
  size: number;
}

/** What a SIF says about itself; null when the bytes were not a SIF. */
export interface ISifMetadata {
  partitions: IPartition[];
  deffile: string | null;
  labels: Record<string, unknown> | null;
}

export interface IImage {
  collection: string;
  container: string;
  digest: string;
  size: number;
  arch: string;
  description: string;
  tags: string[];
  signed: boolean;
  downloads: number;
  uploaded: string | null;
  sif: ISifMetadata | null;
}

export interface IContainer {
  collection: string;
  name: string;
  description: string;
  tags: ITag[];
  created: string | null;
  updated: string | null;
  /** Present on `GET collections/<c>/containers/<n>`. */
  images?: IImage[];
}

/** `GET collections/<c>`: the collection with its containers. */
export interface ICollectionDetail extends ICollection {
  containers_list: IContainer[];
}

export interface IWhoAmI {
  registry_url: string;
  user: { name: string; is_admin: boolean; is_staff: boolean } | null;
  /** Why nobody is signed in, when `user` is null. */
  message: string | null;
}

export type TransferDirection = 'push' | 'pull';
export type TransferState =
  'queued' | 'running' | 'done' | 'failed' | 'cancelled';

export interface ITransfer {
  id: string;
  direction: TransferDirection;
  ref: string;
  path: string;
  state: TransferState;
  bytes_done: number;
  bytes_total: number | null;
  /** Bytes per second. */
  rate: number | null;
  /** Seconds left, when known. */
  eta: number | null;
  error: string | null;
  /** The pushed image, or `{path}` of the pulled file. */
  result: IImage | { path: string } | null;
  started_at: string | null;
  finished_at: string | null;
}

export interface IPushRequest {
  direction: 'push';
  path: string;
  ref: string;
  tags?: string[];
}

export interface IPullRequest {
  direction: 'pull';
  ref: string;
  folder: string;
  filename?: string;
}

export type MemberRole = 'owner' | 'contributor';

export interface IMember {
  user: string;
  role: MemberRole;
}

export interface ITeammate {
  name: string;
}

export interface IShareLink {
  url: string;
  expires_at: string;
}

export type FigureName = 'treemap' | 'storage' | 'activity';

/** A plotly figure as `fig.to_plotly_json()` gives it. */
export interface IPlotlyFigure {
  data: unknown[];
  layout: Record<string, unknown>;
}

export interface IItems<T> {
  items: T[];
}

export type CollectionSort = 'name' | '-updated' | '-size' | '-stars';
