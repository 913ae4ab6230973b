/**
 * Errors as people should read them.
 *
 * The server extension passes the registry's own words through
 * (`{"message", "code"}` with the registry's status); those are shown as they
 * are. Only when a body carries no message (a proxy's HTML page, a dropped
 * connection) does the panel word the failure itself.
 */

/** A failed call to the server extension, with what the registry said. */
export class RegistryError extends Error {
  readonly status: number;
  readonly code: string | null;

  constructor(message: string, status: number, code: string | null = null) {
    super(message);
    this.name = 'RegistryError';
    this.status = status;
    this.code = code;
  }

  /** Whether the registry refused for lack of permission. */
  get isForbidden(): boolean {
    return this.status === 403;
  }
}

/** Status 0 stands for "no HTTP answer at all". */
export const NO_RESPONSE = 0;

const FALLBACK_MESSAGES: Record<number, string> = {
  [NO_RESPONSE]: 'The Jupyter server cannot be reached.',
  400: 'The request was not valid.',
  401: 'You are not signed in to the registry.',
  403: 'You may not do that.',
  404: 'Not found: it may have been deleted, or you may not see it.',
  409: 'That conflicts with something that already exists.',
  413: 'The file is larger than the registry accepts.',
  429: 'Too many requests: wait a moment and try again.',
  502: 'The registry cannot be reached.',
  503: 'The registry is not available at the moment.',
  504: 'The registry took too long to answer.'
};

function fallbackMessage(status: number): string {
  if (status in FALLBACK_MESSAGES) {
    return FALLBACK_MESSAGES[status];
  }
  if (status >= 500) {
    return `The server failed (HTTP ${status}).`;
  }
  return `The request failed (HTTP ${status}).`;
}

function textField(body: Record<string, unknown>, name: string): string | null {
  const value = body[name];
  return typeof value === 'string' && value.trim() ? value.trim() : null;
}

/**
 * The error for an answer with a non-2xx `status` and its body, parsed as
 * JSON when it was JSON, else the raw text.
 */
export function errorFromResponse(
  status: number,
  body: unknown
): RegistryError {
  if (body && typeof body === 'object' && !Array.isArray(body)) {
    const fields = body as Record<string, unknown>;
    // jupyter_server's own errors (e.g. a missing XSRF cookie) carry `reason`.
    const message = textField(fields, 'message') ?? textField(fields, 'reason');
    if (message) {
      return new RegistryError(message, status, textField(fields, 'code'));
    }
  }
  return new RegistryError(fallbackMessage(status), status);
}

/** A RegistryError for whatever was thrown, keeping registry errors as they are. */
export function asRegistryError(error: unknown): RegistryError {
  if (error instanceof RegistryError) {
    return error;
  }
  if (error instanceof Error && error.name === 'AbortError') {
    return new RegistryError('Cancelled.', NO_RESPONSE, 'cancelled');
  }
  return new RegistryError(fallbackMessage(NO_RESPONSE), NO_RESPONSE);
}
