import { describe, expect, it } from 'vitest';

import {
  asRegistryError,
  errorFromResponse,
  RegistryError
} from '../src/errors';
import forbidden from './fixtures/error-forbidden.json';

describe('errorFromResponse', () => {
  it('keeps the registry’s words, status and code', () => {
    const error = errorFromResponse(403, forbidden);
    expect(error.message).toBe("you may not push to collection 'lab'");
    expect(error.status).toBe(403);
    expect(error.code).toBe('forbidden');
    expect(error.isForbidden).toBe(true);
  });

  it('uses jupyter_server’s reason when there is no message', () => {
    const error = errorFromResponse(403, {
      reason: "'_xsrf' argument missing from POST",
      message: ''
    });
    expect(error.message).toBe("'_xsrf' argument missing from POST");
    expect(error.code).toBeNull();
  });

  it('words failures that came without a message', () => {
    expect(
      errorFromResponse(502, '<html><body>Bad Gateway</body></html>').message
    ).toBe('The registry cannot be reached.');
    expect(errorFromResponse(404, null).message).toMatch(/^Not found/);
    expect(errorFromResponse(500, { message: '   ' }).message).toBe(
      'The server failed (HTTP 500).'
    );
    expect(errorFromResponse(418, ['x']).message).toBe(
      'The request failed (HTTP 418).'
    );
  });
});

describe('asRegistryError', () => {
  it('passes registry errors through and wraps anything else', () => {
    const original = new RegistryError('no', 400, 'invalid');
    expect(asRegistryError(original)).toBe(original);
    expect(asRegistryError(new TypeError('Failed to fetch')).message).toBe(
      'The Jupyter server cannot be reached.'
    );
    const aborted = new Error('aborted');
    aborted.name = 'AbortError';
    expect(asRegistryError(aborted).code).toBe('cancelled');
  });
});
