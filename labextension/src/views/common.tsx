/** Small pieces shared by the panel's views. */
import { LabIcon } from '@jupyterlab/ui-components';
import * as React from 'react';

import type { RegistryError } from '../errors';

export interface IIconButtonProps {
  icon: LabIcon;
  label: string;
  onClick: () => void;
  disabled?: boolean;
  className?: string;
}

/** A toolbar-style button with an icon; the label is its accessible name and tooltip. */
export function IconButton(props: IIconButtonProps): React.ReactElement {
  return (
    <button
      type="button"
      className={`jp-Button jp-mod-minimal jp-SregistryIconButton ${props.className ?? ''}`}
      aria-label={props.label}
      title={props.label}
      disabled={props.disabled}
      onClick={props.onClick}
    >
      <props.icon.react tag="span" elementPosition="center" />
    </button>
  );
}

export interface ITextButtonProps {
  label: string;
  onClick: () => void;
  icon?: LabIcon;
  accent?: boolean;
  disabled?: boolean;
  title?: string;
}

export function TextButton(props: ITextButtonProps): React.ReactElement {
  return (
    <button
      type="button"
      className={`jp-SregistryTextButton ${props.accent ? 'jp-mod-primary' : ''}`}
      disabled={props.disabled}
      title={props.title}
      onClick={props.onClick}
    >
      {props.icon && (
        <props.icon.react tag="span" className="jp-SregistryTextButton-icon" />
      )}
      {props.label}
    </button>
  );
}

export function ErrorBanner(props: {
  error: RegistryError;
  onDismiss: () => void;
}): React.ReactElement {
  return (
    <div className="jp-SregistryError" role="alert">
      <span className="jp-SregistryError-message">{props.error.message}</span>
      <button
        type="button"
        className="jp-Button jp-mod-minimal jp-SregistryError-dismiss"
        aria-label="Dismiss the error"
        onClick={props.onDismiss}
      >
        ×
      </button>
    </div>
  );
}

export function Loading(props: { label?: string }): React.ReactElement {
  return (
    <div className="jp-SregistryLoading" role="status" aria-live="polite">
      {props.label ?? 'Loading…'}
    </div>
  );
}

export function Empty(props: {
  children: React.ReactNode;
}): React.ReactElement {
  return <div className="jp-SregistryEmpty">{props.children}</div>;
}

/** A definition list row: a term and its value. */
export function Fact(props: {
  term: string;
  children: React.ReactNode;
}): React.ReactElement {
  return (
    <>
      <dt>{props.term}</dt>
      <dd>{props.children}</dd>
    </>
  );
}

/**
 * A view's heading, which takes the keyboard focus when the view opens, so
 * that after Enter on a list item the next Tab continues inside the new view.
 */
export function ViewHeading(props: {
  children: React.ReactNode;
}): React.ReactElement {
  const ref = React.useRef<HTMLHeadingElement>(null);
  React.useEffect(() => {
    ref.current?.focus({ preventScroll: true });
  }, []);
  return (
    <h3 className="jp-SregistryHeading-title" tabIndex={-1} ref={ref}>
      {props.children}
    </h3>
  );
}
