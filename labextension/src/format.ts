/** How numbers, dates and references are shown in the panel. */

const UNITS = ['B', 'KB', 'MB', 'GB', 'TB', 'PB'];

/** Bytes in binary multiples with the usual short names: 1536 -> "1.5 KB". */
export function formatBytes(bytes: number | null | undefined): string {
  if (bytes === null || bytes === undefined || !Number.isFinite(bytes)) {
    return '–';
  }
  let value = Math.max(0, bytes);
  let unit = 0;
  while (value >= 1024 && unit < UNITS.length - 1) {
    value /= 1024;
    unit++;
  }
  const digits = unit === 0 || value >= 100 ? 0 : 1;
  return `${value.toFixed(digits)} ${UNITS[unit]}`;
}

export function formatRate(bytesPerSecond: number | null): string {
  return bytesPerSecond && bytesPerSecond > 0
    ? `${formatBytes(bytesPerSecond)}/s`
    : '';
}

/** Seconds as "45 s", "3 min 5 s" or "2 h 10 min". */
export function formatEta(seconds: number | null): string {
  if (seconds === null || !Number.isFinite(seconds) || seconds < 0) {
    return '';
  }
  const s = Math.round(seconds);
  if (s < 60) {
    return `${s} s`;
  }
  if (s < 3600) {
    return `${Math.floor(s / 60)} min ${s % 60} s`;
  }
  return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
}

/** An ISO timestamp as a short local date and time. */
export function formatDate(iso: string | null): string {
  if (!iso) {
    return '–';
  }
  const date = new Date(iso);
  return Number.isNaN(date.getTime())
    ? iso
    : date.toLocaleString(undefined, {
        dateStyle: 'medium',
        timeStyle: 'short'
      });
}

/** `sha256.` and the first 12 hex digits: enough to tell images apart. */
export function shortDigest(digest: string): string {
  return digest.replace(/^(sha256\.[0-9a-f]{12})[0-9a-f]+$/, '$1…');
}

/**
 * `collection/container:tag`, or `collection/container@sha256.<hex>` for a
 * digest: the reference the server extension's transfers take.
 */
export function imageRef(
  collection: string,
  container: string,
  tagOrDigest: string
): string {
  const separator = tagOrDigest.startsWith('sha256.') ? '@' : ':';
  return `${collection}/${container}${separator}${tagOrDigest}`;
}

/**
 * The command a terminal user, with this registry as their remote, types to
 * pull; the library client writes a digest after a colon.
 */
export function pullCommand(ref: string): string {
  return `apptainer pull library://${ref.replace('@sha256.', ':sha256.')}`;
}
