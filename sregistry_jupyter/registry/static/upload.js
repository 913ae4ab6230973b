// The upload page: hashes the chosen SIF a slice at a time (sha256.js), then sends it with tus 1.0 to
// /api/v1/uploads in chunks, so that a cut connection, or a closed tab, resumes where it stopped. The
// upload's URL and digest are kept in localStorage under the file's fingerprint (name, size, date,
// target); choosing the same file again for the same target picks the upload up from the server's offset.
"use strict";

const TUS = { "Tus-Resumable": "1.0.0" };
const READ_SLICE = 4 << 20;
const STORE_PREFIX = "sregistry-upload:";
const MAX_FAILURES = 30;

const form = document.getElementById("upload-form");
const chunkSize = Number(form.dataset.chunkSize) || 8 << 20;
const uploadsUrl = form.dataset.uploads;
const xsrf = document.querySelector('meta[name="xsrf-token"]').content;
const ui = {
  file: document.getElementById("upload-file"),
  collection: document.getElementById("upload-collection"),
  container: document.getElementById("upload-container"),
  tags: document.getElementById("upload-tags"),
  description: document.getElementById("upload-description"),
  start: document.getElementById("upload-start"),
  pause: document.getElementById("upload-pause"),
  cancel: document.getElementById("upload-cancel"),
  box: document.getElementById("upload-progress"),
  bar: document.getElementById("upload-bar"),
  phase: document.getElementById("upload-phase"),
  done: document.getElementById("upload-done"),
  speed: document.getElementById("upload-speed"),
  left: document.getElementById("upload-left"),
  status: document.getElementById("upload-status"),
  resumable: document.getElementById("upload-resumable"),
};

let current = null;

function human(bytes) {
  const units = ["B", "kB", "MB", "GB", "TB"];
  let value = bytes;
  let unit = 0;
  while (value >= 1000 && unit < units.length - 1) { value /= 1000; unit += 1; }
  return unit === 0 ? `${value} B` : `${value.toFixed(1)} ${units[unit]}`;
}

function duration(seconds) {
  if (!isFinite(seconds)) return "–";
  if (seconds < 60) return `${Math.ceil(seconds)} s`;
  if (seconds < 3600) return `${Math.floor(seconds / 60)} min ${Math.ceil(seconds % 60)} s`;
  return `${Math.floor(seconds / 3600)} h ${Math.ceil((seconds % 3600) / 60)} min`;
}

function say(words, kind) {
  ui.status.textContent = words;
  ui.status.className = "message" + (kind ? " " + kind : "");
  ui.status.hidden = false;
}

function base64(text) {
  const bytes = new TextEncoder().encode(text);
  let binary = "";
  for (const byte of bytes) binary += String.fromCharCode(byte);
  return btoa(binary);
}

function metadata(values) {
  return Object.entries(values).filter(([, v]) => v).map(([k, v]) => `${k} ${base64(v)}`).join(",");
}

function fingerprint(file, target) {
  return STORE_PREFIX + [target.collection, target.container, file.name, file.size, file.lastModified].join("|");
}

function remembered(key) {
  try { return JSON.parse(localStorage.getItem(key) || "null"); } catch { return null; }
}

class Meter {
  // Speed over the bytes sent in this page (not those a resumed upload had already sent).
  constructor(total, phase) {
    this.total = total;
    this.started = performance.now();
    this.first = null;
    ui.phase.textContent = phase;
    ui.bar.max = total || 1;
  }
  show(done) {
    if (this.first === null) this.first = done;
    ui.bar.value = done;
    ui.done.textContent = `${human(done)} of ${human(this.total)} (${this.total ? Math.floor((100 * done) / this.total) : 100}%)`;
    const seconds = (performance.now() - this.started) / 1000;
    const rate = seconds > 0.2 ? (done - this.first) / seconds : 0;
    ui.speed.textContent = rate > 0 ? `${human(rate)}/s` : "–";
    ui.left.textContent = rate > 0 ? duration((this.total - done) / rate) : "–";
  }
}

async function digestOf(file, job) {
  const meter = new Meter(file.size, "Computing the digest");
  const hash = new Sha256();
  for (let offset = 0; offset < file.size; offset += READ_SLICE) {
    if (job.stopped) throw new Error("stopped");
    const slice = new Uint8Array(await file.slice(offset, offset + READ_SLICE).arrayBuffer());
    hash.update(slice);
    meter.show(Math.min(file.size, offset + slice.length));
  }
  meter.show(file.size);
  return "sha256." + hash.hex();
}

function request(method, url, { headers = {}, body = null, onProgress = null, job = null } = {}) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open(method, url);
    for (const [name, value] of Object.entries({ ...TUS, "X-XSRF-Token": xsrf, ...headers })) {
      xhr.setRequestHeader(name, value);
    }
    if (onProgress) xhr.upload.onprogress = (event) => onProgress(event.loaded);
    xhr.onload = () => resolve(xhr);
    xhr.onerror = () => reject(new Error("the connection was lost"));
    xhr.onabort = () => reject(new Error("stopped"));
    if (job) job.xhr = xhr;
    xhr.send(body);
  });
}

function refusal(xhr) {
  try {
    const body = JSON.parse(xhr.responseText);
    return body.message || body.error || `the registry answered ${xhr.status}`;
  } catch {
    return `the registry answered ${xhr.status}`;
  }
}

async function offsetOf(url) {
  const answer = await request("HEAD", url);
  if (answer.status !== 200 && answer.status !== 204) return null;
  return Number(answer.getResponseHeader("Upload-Offset"));
}

const pause = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

async function send(job, offset) {
  const { file, url } = job;
  const meter = new Meter(file.size, offset > 0 ? "Uploading (resumed)" : "Uploading");
  meter.show(offset);
  let failures = 0;
  while (offset < file.size) {
    if (job.stopped) throw new Error("stopped");
    const end = Math.min(file.size, offset + chunkSize);
    try {
      const answer = await request("PATCH", url, {
        headers: { "Upload-Offset": String(offset), "Content-Type": "application/offset+octet-stream" },
        body: file.slice(offset, end),
        onProgress: (loaded) => meter.show(offset + loaded),
        job,
      });
      if (answer.status === 409 || answer.status >= 500) throw new Error(refusal(answer));
      if (answer.status !== 204 && answer.status !== 200) {
        const error = new Error(refusal(answer));
        error.final = true;
        throw error;
      }
      offset = Number(answer.getResponseHeader("Upload-Offset"));
      failures = 0;
      meter.show(offset);
    } catch (error) {
      if (error.final || job.stopped) throw error;
      failures += 1;
      if (failures > MAX_FAILURES) throw error;
      say(`${error.message}; trying again (attempt ${failures})…`);
      await pause(Math.min(250 * 2 ** failures, 5000));
      try {
        const known = await offsetOf(url);
        if (known === null) throw Object.assign(new Error("the registry no longer has this upload"), { final: true });
        offset = known;
        ui.status.hidden = true;
      } catch (lost) {
        if (lost.final) throw lost;
      }
    }
  }
}

async function finished(url) {
  ui.phase.textContent = "Checking the digest";
  for (let attempt = 0; attempt < 600; attempt++) {
    const answer = await request("GET", url);
    const status = JSON.parse(answer.responseText || "{}");
    if (status.state === "failed") throw Object.assign(new Error(status.error || "the registry refused the upload"), { final: true });
    if (status.image) return status.image;
    await pause(300);
  }
  throw new Error("the registry did not finish recording the upload");
}

async function run(job) {
  const { file, target, key } = job;
  let saved = remembered(key);
  let offset = 0;
  if (saved) {
    const known = await offsetOf(saved.url).catch(() => null);
    if (known === null) {
      localStorage.removeItem(key);
      saved = null;
    } else {
      offset = known;
      say(`Resuming an earlier upload of this file from ${human(offset)}.`);
    }
  }
  if (!saved) {
    const digest = await digestOf(file, job);
    const created = await request("POST", uploadsUrl, {
      headers: {
        "Upload-Length": String(file.size),
        "Upload-Metadata": metadata({
          collection: target.collection,
          container: target.container,
          tags: target.tags.join(","),
          digest,
          filename: file.name,
          description: target.description,
        }),
      },
    });
    if (created.status !== 201) throw Object.assign(new Error(refusal(created)), { final: true });
    saved = { url: new URL(created.getResponseHeader("Location"), location.href).href, digest };
    localStorage.setItem(key, JSON.stringify(saved));
  }
  job.url = saved.url;
  ui.resumable.hidden = false;
  await send(job, offset);
  const image = await finished(job.url);
  localStorage.removeItem(key);
  return image;
}

function setRunning(running) {
  ui.start.disabled = running;
  ui.pause.hidden = !running;
  ui.cancel.hidden = !running;
  for (const input of [ui.file, ui.collection, ui.container, ui.tags, ui.description]) input.disabled = running;
}

async function start(event) {
  event.preventDefault();
  const file = ui.file.files[0];
  if (!file) { say("Choose a SIF file first.", "error"); return; }
  const target = {
    collection: ui.collection.value.trim(),
    container: ui.container.value.trim(),
    tags: ui.tags.value.split(/[\s,]+/).filter(Boolean),
    description: ui.description.value.trim(),
  };
  const job = { file, target, key: fingerprint(file, target), stopped: false };
  current = job;
  ui.box.hidden = false;
  ui.status.hidden = true;
  setRunning(true);
  try {
    const image = await run(job);
    const page = `/collections/${image.collection}/${image.container}`;
    ui.phase.textContent = "Done";
    ui.status.className = "message success";
    ui.status.replaceChildren(
      document.createTextNode(`Uploaded ${image.digest}. `),
      Object.assign(document.createElement("a"), { href: page, textContent: `Open ${image.collection}/${image.container}` }),
    );
    ui.status.hidden = false;
  } catch (error) {
    if (job.stopped && !job.cancelled) {
      say("Paused. Start the upload again (with the same file) to resume it.");
    } else if (!job.cancelled) {
      say(`The upload failed: ${error.message}.`, "error");
    }
  } finally {
    setRunning(false);
    current = null;
  }
}

function stop(cancel) {
  if (!current) return;
  current.stopped = true;
  current.cancelled = cancel;
  if (current.xhr) current.xhr.abort();
  if (cancel) {
    const { url, key } = current;
    localStorage.removeItem(key);
    if (url) request("DELETE", url).catch(() => {});
    say("Cancelled; nothing of this upload is kept.");
  }
}

form.addEventListener("submit", start);
ui.pause.addEventListener("click", () => stop(false));
ui.cancel.addEventListener("click", () => stop(true));
