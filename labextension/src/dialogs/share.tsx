/**
 * Sharing a collection with team-mates (owner or contributor), and making an
 * expiring download link for one image. Both dialogs call the registry as
 * the person acts and show its answers, refusals included, in place.
 */
import { Clipboard, Dialog, showDialog } from '@jupyterlab/apputils';
import { copyIcon, deleteIcon, ReactWidget } from '@jupyterlab/ui-components';
import * as React from 'react';

import type { IRegistryApi } from '../api';
import { asRegistryError } from '../errors';
import { formatDate } from '../format';
import type { IMember, IShareLink, ITeammate, MemberRole } from '../types';
import { IconButton, TextButton } from '../views/common';

function Members(props: {
  api: IRegistryApi;
  collection: string;
}): React.ReactElement {
  const { api, collection } = props;
  const [members, setMembers] = React.useState<IMember[] | null>(null);
  const [teammates, setTeammates] = React.useState<ITeammate[]>([]);
  const [user, setUser] = React.useState('');
  const [role, setRole] = React.useState<MemberRole>('contributor');
  const [error, setError] = React.useState<string | null>(null);
  const [busy, setBusy] = React.useState(false);

  // Bumped after every change, to load the members again.
  const [version, setVersion] = React.useState(0);

  React.useEffect(() => {
    let live = true;
    Promise.all([api.members(collection), api.teammates()]).then(
      ([m, t]) => {
        if (live) {
          setMembers(m.items);
          setTeammates(t.items);
        }
      },
      e => {
        if (live) {
          setError(asRegistryError(e).message);
        }
      }
    );
    return () => {
      live = false;
    };
  }, [api, collection, version]);

  const act = async (action: () => Promise<unknown>) => {
    setBusy(true);
    setError(null);
    try {
      await action();
    } catch (e) {
      setError(asRegistryError(e).message);
    } finally {
      setBusy(false);
      setVersion(v => v + 1);
    }
  };

  const memberNames = new Set((members ?? []).map(m => m.user));
  const candidates = teammates.filter(t => !memberNames.has(t.name));

  return (
    <div className="jp-SregistryShare">
      <h4 className="jp-SregistrySubheading">People with access</h4>
      {members === null && !error && <p>Loading…</p>}
      {members && members.length === 0 && (
        <p className="jp-SregistryMuted">Nobody has been added yet.</p>
      )}
      {members && members.length > 0 && (
        <ul className="jp-SregistryMembers" aria-label="Members">
          {members.map(m => (
            <li key={m.user} className="jp-SregistryMembers-item">
              <span className="jp-SregistryMembers-name">{m.user}</span>
              <span className="jp-SregistryBadge">{m.role}</span>
              <IconButton
                icon={deleteIcon}
                label={`Remove ${m.user}`}
                disabled={busy}
                onClick={() =>
                  void act(() => api.removeMember(collection, m.user))
                }
              />
            </li>
          ))}
        </ul>
      )}
      <h4 className="jp-SregistrySubheading">Add a team-mate</h4>
      <div className="jp-SregistryShare-add">
        <select
          className="jp-mod-styled"
          aria-label="Team-mate"
          value={user}
          onChange={e => setUser(e.target.value)}
        >
          <option value="">
            {candidates.length ? 'Choose a team-mate…' : 'No team-mates to add'}
          </option>
          {candidates.map(t => (
            <option key={t.name} value={t.name}>
              {t.name}
            </option>
          ))}
        </select>
        <select
          className="jp-mod-styled"
          aria-label="Role"
          value={role}
          onChange={e => setRole(e.target.value as MemberRole)}
        >
          <option value="contributor">contributor (may push)</option>
          <option value="owner">owner (may also share and delete)</option>
        </select>
        <TextButton
          accent
          label="Add"
          disabled={!user || busy}
          onClick={() =>
            void act(async () => {
              await api.addMember(collection, user, role);
              setUser('');
            })
          }
        />
      </div>
      {error && (
        <p className="jp-SregistryField-problem" role="alert">
          {error}
        </p>
      )}
    </div>
  );
}

class MembersBody extends ReactWidget {
  constructor(
    private readonly api: IRegistryApi,
    private readonly collection: string
  ) {
    super();
    this.addClass('jp-SregistryDialog');
  }

  render(): React.ReactElement {
    return <Members api={this.api} collection={this.collection} />;
  }
}

export async function showMembersDialog(
  api: IRegistryApi,
  collection: string
): Promise<void> {
  await showDialog({
    title: `Share ${collection}`,
    body: new MembersBody(api, collection),
    buttons: [Dialog.okButton({ label: 'Close' })]
  });
}

const MAX_DAYS = 365;

function ShareLink(props: {
  api: IRegistryApi;
  imageRef: string;
  onCopied: () => void;
}): React.ReactElement {
  const [days, setDays] = React.useState(7);
  const [link, setLink] = React.useState<IShareLink | null>(null);
  const [error, setError] = React.useState<string | null>(null);
  const [busy, setBusy] = React.useState(false);
  const validDays = Number.isInteger(days) && days >= 1 && days <= MAX_DAYS;

  const create = async () => {
    setBusy(true);
    setError(null);
    try {
      setLink(await props.api.share(props.imageRef, days));
    } catch (e) {
      setError(asRegistryError(e).message);
    } finally {
      setBusy(false);
    }
  };

  return (
    <div className="jp-SregistryShare">
      <p>
        Anyone with the link can download <code>{props.imageRef}</code> until it
        expires, without an account.
      </p>
      <div className="jp-SregistryShare-add">
        <label htmlFor="sregistry-share-days">Valid for</label>
        <input
          id="sregistry-share-days"
          className="jp-mod-styled jp-SregistryShare-days"
          type="number"
          min={1}
          max={MAX_DAYS}
          value={Number.isNaN(days) ? '' : days}
          onChange={e => setDays(e.target.valueAsNumber)}
        />
        <span>days</span>
        <TextButton
          accent
          label="Make link"
          disabled={!validDays || busy}
          onClick={() => void create()}
        />
      </div>
      {!validDays && (
        <p className="jp-SregistryField-problem" role="alert">
          Between 1 and {MAX_DAYS} days.
        </p>
      )}
      {link && (
        <div className="jp-SregistryShare-link">
          <input
            className="jp-mod-styled jp-SregistryMono"
            readOnly
            aria-label="Share link"
            value={link.url}
            onFocus={e => e.target.select()}
          />
          <IconButton
            icon={copyIcon}
            label="Copy the link"
            onClick={() => {
              Clipboard.copyToSystem(link.url);
              props.onCopied();
            }}
          />
          <span className="jp-SregistryMuted">
            expires {formatDate(link.expires_at)}
          </span>
        </div>
      )}
      {error && (
        <p className="jp-SregistryField-problem" role="alert">
          {error}
        </p>
      )}
    </div>
  );
}

class ShareLinkBody extends ReactWidget {
  constructor(
    private readonly api: IRegistryApi,
    private readonly imageRef: string,
    private readonly onCopied: () => void
  ) {
    super();
    this.addClass('jp-SregistryDialog');
  }

  render(): React.ReactElement {
    return (
      <ShareLink
        api={this.api}
        imageRef={this.imageRef}
        onCopied={this.onCopied}
      />
    );
  }
}

export async function showShareLinkDialog(
  api: IRegistryApi,
  imageRef: string,
  onCopied: () => void
): Promise<void> {
  await showDialog({
    title: 'Share link',
    body: new ShareLinkBody(api, imageRef, onCopied),
    buttons: [Dialog.okButton({ label: 'Close' })]
  });
}
