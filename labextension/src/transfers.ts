/**
 * What the panel knows about pushes and pulls: one record per transfer, kept
 * up to date from progress events that may arrive late, twice or out of order
 * (the event stream and the fallback polling can overlap).
 */
import { ISignal, Signal } from '@lumino/signaling';

import type { ITransfer, TransferState } from './types';

const FINAL_STATES: ReadonlySet<TransferState> = new Set([
  'done',
  'failed',
  'cancelled'
]);

export function isFinal(state: TransferState): boolean {
  return FINAL_STATES.has(state);
}

/** Fraction done in [0, 1], or null while the size is unknown. */
export function progressOf(transfer: ITransfer): number | null {
  if (transfer.state === 'done') {
    return 1;
  }
  if (!transfer.bytes_total || transfer.bytes_total <= 0) {
    return null;
  }
  return Math.min(1, Math.max(0, transfer.bytes_done / transfer.bytes_total));
}

export class TransferTracker {
  private readonly byId = new Map<string, ITransfer>();
  private readonly _changed = new Signal<this, void>(this);
  private readonly _finished = new Signal<this, ITransfer>(this);

  /** Emitted on every accepted update. */
  get changed(): ISignal<this, void> {
    return this._changed;
  }

  /** Emitted once per transfer, when it reaches done, failed or cancelled. */
  get finished(): ISignal<this, ITransfer> {
    return this._finished;
  }

  /** Newest first, as the server lists them. */
  get items(): ITransfer[] {
    return [...this.byId.values()].reverse();
  }

  get(id: string): ITransfer | undefined {
    return this.byId.get(id);
  }

  get hasFinished(): boolean {
    return this.items.some(t => isFinal(t.state));
  }

  /**
   * Take an update; returns whether it changed anything. Updates that would
   * move a finished transfer back, or a running one backwards, are stale.
   */
  update(transfer: ITransfer): boolean {
    const known = this.byId.get(transfer.id);
    if (known && isStale(known, transfer)) {
      return false;
    }
    // A Map keeps insertion order, so a new transfer goes last (newest).
    this.byId.set(transfer.id, transfer);
    this._changed.emit();
    if (isFinal(transfer.state) && (!known || !isFinal(known.state))) {
      this._finished.emit(transfer);
    }
    return true;
  }

  /** Take the server's list (newest first) without announcing old outcomes. */
  load(transfers: ITransfer[]): void {
    for (const transfer of [...transfers].reverse()) {
      const known = this.byId.get(transfer.id);
      if (!known || !isStale(known, transfer)) {
        this.byId.set(transfer.id, transfer);
      }
    }
    this._changed.emit();
  }

  /** Forget the transfers that have ended. */
  clearFinished(): void {
    for (const [id, transfer] of this.byId) {
      if (isFinal(transfer.state)) {
        this.byId.delete(id);
      }
    }
    this._changed.emit();
  }
}

const ORDER: Record<TransferState, number> = {
  queued: 0,
  running: 1,
  done: 2,
  failed: 2,
  cancelled: 2
};

function isStale(known: ITransfer, update: ITransfer): boolean {
  if (isFinal(known.state)) {
    return true;
  }
  if (ORDER[update.state] < ORDER[known.state]) {
    return true;
  }
  return update.state === known.state && update.bytes_done < known.bytes_done;
}
