// WaddleBot OBS overlay: follows /overlay/<key>/events and shows each item at its time.
// The server's clock decides when items start and end; `now` in every event corrects ours.
(() => {
  "use strict";
  const body = document.body;
  const wanted = new Set(body.dataset.sources.split(" "));
  const timers = new Map(); // item id -> timeouts
  const shown = new Map(); // item id -> element
  let skew = 0; // server clock minus ours, in ms
  let stream = null;

  const serverNow = () => Date.now() + skew;

  function text(tag, className, value) {
    const el = document.createElement(tag);
    if (className) el.className = className;
    el.textContent = value;
    return el;
  }

  // Builds the element for one item. Text is set as text; general HTML was sanitised by the
  // server (and the page's content policy runs no inline script).
  function render(entry) {
    const item = entry.item;
    const el = document.createElement("div");
    el.className = "item " + entry.source;
    el.dataset.id = entry.id;
    switch (item.source) {
      case "ticker":
        el.append(text("span", "ticker-text", item.text));
        break;
      case "media": {
        if (item.media_type === "clip" || item.media_type === "youtube") {
          // An embedded player (Twitch clips need the page's host as `parent`).
          const frame = document.createElement("iframe");
          const src = new URL(item.url);
          if (item.media_type === "clip") {
            src.searchParams.set("parent", location.hostname);
            src.searchParams.set("autoplay", "true");
          }
          frame.src = src.toString();
          frame.allow = "autoplay; encrypted-media";
          frame.width = "800";
          frame.height = "450";
          el.append(frame);
          break;
        }
        const tag = item.media_type === "video" ? "video" : item.media_type === "audio" ? "audio" : "img";
        const media = document.createElement(tag);
        media.src = item.url;
        if (tag !== "img") { media.autoplay = true; }
        else { media.alt = ""; }
        el.append(media);
        break;
      }
      case "general":
        el.innerHTML = item.content;
        break;
      case "alert":
        el.classList.add("alert-" + item.kind);
        el.append(text("div", "alert-title", item.title));
        if (item.text) el.append(text("div", "alert-text", item.text));
        break;
      case "caption":
        el.append(text("span", "caption-user", item.username + ": "));
        el.append(text("span", "caption-text", item.translated || item.text));
        break;
      case "now_playing": {
        if (item.image_url) {
          const art = document.createElement("img");
          art.src = item.image_url;
          art.alt = "";
          el.append(art);
        }
        const words = document.createElement("div");
        words.append(text("div", "track", item.title));
        if (item.artist) words.append(text("div", "artist", item.artist));
        el.append(words);
        break;
      }
      default:
        return null;
    }
    return el;
  }

  function hide(id) {
    const el = shown.get(id);
    if (el) el.remove();
    shown.delete(id);
    (timers.get(id) || []).forEach(clearTimeout);
    timers.delete(id);
  }

  function clearAll() {
    [...timers.keys(), ...shown.keys()].forEach(hide);
  }

  function schedule(entry) {
    if (!wanted.has(entry.source) || timers.has(entry.id)) return;
    const now = serverNow();
    if (entry.ends_at_ms && entry.ends_at_ms <= now) return;
    const container = document.getElementById(entry.source);
    const appear = () => {
      if (entry.source === "general" || entry.source === "now-playing") {
        [...shown.entries()]
          .filter(([, el]) => el.parentElement === container)
          .forEach(([id]) => hide(id));
      }
      const el = render(entry);
      if (!el) return;
      container.append(el);
      shown.set(entry.id, el);
    };
    const pending = [setTimeout(appear, Math.max(0, entry.starts_at_ms - now))];
    if (entry.ends_at_ms) pending.push(setTimeout(() => hide(entry.id), entry.ends_at_ms - now));
    timers.set(entry.id, pending);
  }

  function connect() {
    stream = new EventSource(body.dataset.events);
    stream.addEventListener("state", (e) => {
      const data = JSON.parse(e.data);
      skew = data.now - Date.now();
      clearAll();
      data.items.forEach(schedule);
      body.dataset.connected = "true";
    });
    stream.addEventListener("show", (e) => {
      const data = JSON.parse(e.data);
      skew = data.now - Date.now();
      schedule(data.item);
    });
    stream.addEventListener("revoked", () => {
      stream.close();
      clearAll();
      body.dataset.connected = "revoked";
    });
    stream.onerror = () => {
      body.dataset.connected = "false";
      // The browser retries a dropped stream by itself; one the server refused is closed, so
      // try again later (the server may be restarting).
      if (stream.readyState === EventSource.CLOSED) setTimeout(connect, 5000);
    };
  }

  connect();
})();
