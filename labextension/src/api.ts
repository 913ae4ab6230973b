/**
 * The calls the panel makes, as an interface so that the model can be tested
 * against recorded answers and the browser build can talk to the server.
 */
import type {
  CollectionSort,
  FigureName,
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
  MemberRole,
  ICollection
} from './types';

export interface ICollectionQuery {
  q?: string;
  sort?: CollectionSort;
  page?: number;
  per_page?: number;
}

export interface IRegistryApi {
  whoami(): Promise<IWhoAmI>;
  collections(query: ICollectionQuery): Promise<ICollectionPage>;
  collection(name: string): Promise<ICollectionDetail>;
  container(collection: string, name: string): Promise<IContainer>;
  image(collection: string, container: string, ref: string): Promise<IImage>;
  pushable(): Promise<IItems<ICollection>>;

  startTransfer(request: IPushRequest | IPullRequest): Promise<ITransfer>;
  transfers(): Promise<IItems<ITransfer>>;
  transfer(id: string): Promise<ITransfer>;
  /**
   * Follow a transfer's progress: `onEvent` gets every update until the
   * stream ends; the promise settles when it does.
   */
  followTransfer(
    id: string,
    onEvent: (transfer: ITransfer) => void,
    signal?: AbortSignal
  ): Promise<void>;
  cancelTransfer(id: string): Promise<void>;

  teammates(): Promise<IItems<ITeammate>>;
  members(collection: string): Promise<IItems<IMember>>;
  addMember(
    collection: string,
    user: string,
    role: MemberRole
  ): Promise<IMember>;
  removeMember(collection: string, user: string): Promise<void>;
  share(ref: string, days: number): Promise<IShareLink>;

  figure(name: FigureName): Promise<IPlotlyFigure>;
}
