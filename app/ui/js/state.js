// What the whole page shares: the server's description (read once at start) and events
// between the parts of the page ('labels' when labels change, 'changes' when the archive
// changed: a /changes/stream event or an action of this page).

export const server = {
  system: null,      // GET /system
  plugins: [],       // GET /plugins
  get dicomweb() { return this.plugins.includes('dicom-web'); },
};

export const events = new EventTarget();

export function emit(name, detail = null) {
  events.dispatchEvent(new CustomEvent(name, { detail }));
}

/** Navigate to a client-side route ('#/studies/ID'). */
export function go(route) {
  if (location.hash === route) window.dispatchEvent(new HashChangeEvent('hashchange'));
  else location.hash = route;
}
