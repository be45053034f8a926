// The REST API, as any client sees it: Orthanc's routes, same origin, the browser's own
// credentials (Basic authentication is answered by the browser once for the whole page).

// The server's root as the browser reached it: '' normally, '/prefix' behind a proxy
// that serves Pharos under a path (the page is always at <root>/ui/).
export const ROOT = (() => {
  const path = location.pathname;
  const at = path.lastIndexOf('/ui/');
  return at >= 0 ? path.slice(0, at) : '';
})();

export const url = path => ROOT + path;

/** An answer >= 400, with Orthanc's error JSON when there is one. */
export class ApiError extends Error {
  constructor(status, body, method, path) {
    const details = body && typeof body === 'object'
      ? (body.Details || body.Message || body.OrthancError || '') : String(body || '');
    super(details ? `${details} (HTTP ${status})` : `HTTP ${status} on ${method} ${path}`);
    this.status = status;
    this.body = body;
  }
}

export async function request(method, path, { json, body, headers = {}, signal, as = 'json' } = {}) {
  const init = { method, headers: { ...headers }, signal, credentials: 'same-origin' };
  if (json !== undefined) {
    init.body = JSON.stringify(json);
    init.headers['Content-Type'] = 'application/json';
  } else if (body !== undefined) {
    init.body = body;
  }
  const response = await fetch(url(path), init);
  if (!response.ok) {
    const text = await response.text().catch(() => '');
    let parsed = text;
    try { parsed = JSON.parse(text); } catch { /* not JSON */ }
    throw new ApiError(response.status, parsed, method, path);
  }
  if (as === 'response') return response;
  const text = await response.text();
  if (as === 'text') return text;
  return text ? JSON.parse(text) : null;
}

export const get = (path, options) => request('GET', path, options);
export const post = (path, json, options) => request('POST', path, { ...options, json });
export const put = (path, body, options) => request('PUT', path, { ...options, body });
export const del = (path, options) => request('DELETE', path, options);

/** /tools/find with Orthanc 1.12.5's extended form (OrderBy, Since, ResponseContent). */
export const find = (body, signal) => post('/tools/find', body, { signal });
export const count = (body, signal) => post('/tools/count-resources', body, { signal })
  .then(answer => answer.Count);

/**
 * POST one file to /instances with upload progress (fetch cannot report it).
 * Resolves with Orthanc's answer (an object, or an array for a ZIP); rejects with an
 * ApiError for an answer >= 400, or an Error when the connection failed.
 */
export function uploadFile(file, onProgress) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open('POST', url('/instances'));
    xhr.setRequestHeader('Content-Type', file.isZip ? 'application/zip' : 'application/dicom');
    xhr.upload.onprogress = event => onProgress?.(event.loaded);
    xhr.onload = () => {
      let body = xhr.responseText;
      try { body = JSON.parse(body); } catch { /* not JSON */ }
      if (xhr.status >= 200 && xhr.status < 300) resolve(body);
      else reject(new ApiError(xhr.status, body, 'POST', '/instances'));
    };
    xhr.onerror = () => reject(new Error('the connection to the server failed'));
    xhr.onabort = () => reject(new Error('cancelled'));
    xhr.send(file.file ?? file);
  });
}

/** Answer the first resource of a level's list (studies, series...) for a find body. */
export async function findOne(body) {
  const [first] = await find({ ...body, Limit: 1 });
  return first ?? null;
}

const LEVEL_PATHS = { Patient: 'patients', Study: 'studies', Series: 'series', Instance: 'instances' };
export const levelPath = level => LEVEL_PATHS[level];
