// muster web UI enhancements. Every page works without this script; it only
// adds confirmations, dimension autocompletion, live task output and
// client-side column sorting of the current page.
"use strict";

// ---- Confirmations: <form data-confirm="question"> ----
document.addEventListener("submit", (ev) => {
  const q = ev.target.getAttribute && ev.target.getAttribute("data-confirm");
  if (q && !window.confirm(q)) ev.preventDefault();
});

// ---- Autocomplete: <input data-suggest='["key:value", ...]'> ----
function setupSuggest(input) {
  let all;
  try { all = JSON.parse(input.getAttribute("data-suggest") || "[]"); } catch (e) { return; }
  const list = document.createElement("ul");
  list.className = "suggest";
  list.hidden = true;
  input.parentNode.appendChild(list);
  let sel = -1;
  const lastToken = () => { const v = input.value; const i = v.lastIndexOf(" "); return v.slice(i + 1); };
  const choose = (s) => {
    const v = input.value; const i = v.lastIndexOf(" ");
    input.value = v.slice(0, i + 1) + s + " ";
    list.hidden = true;
    input.focus();
  };
  const show = () => {
    const t = lastToken().toLowerCase();
    list.innerHTML = "";
    sel = -1;
    if (!t) { list.hidden = true; return; }
    const matches = all.filter((s) => s.toLowerCase().startsWith(t) || s.toLowerCase().includes(t)).slice(0, 30);
    for (const m of matches) {
      const li = document.createElement("li");
      li.textContent = m;
      li.addEventListener("mousedown", (e) => { e.preventDefault(); choose(m); });
      list.appendChild(li);
    }
    list.style.left = input.offsetLeft + "px";
    list.style.top = (input.offsetTop + input.offsetHeight) + "px";
    list.hidden = matches.length === 0;
  };
  input.addEventListener("input", show);
  input.addEventListener("blur", () => { list.hidden = true; });
  input.addEventListener("keydown", (e) => {
    const items = list.querySelectorAll("li");
    if (list.hidden || items.length === 0) return;
    if (e.key === "ArrowDown" || e.key === "ArrowUp") {
      e.preventDefault();
      sel = (sel + (e.key === "ArrowDown" ? 1 : items.length - 1)) % items.length;
      items.forEach((li, i) => li.classList.toggle("sel", i === sel));
    } else if ((e.key === "Enter" || e.key === "Tab") && sel >= 0) {
      e.preventDefault();
      choose(items[sel].textContent);
    } else if (e.key === "Escape") {
      list.hidden = true;
    }
  });
}

// ---- ANSI SGR → spans (mirror of crates/muster-server/src/ui/ansi.rs) ----
class Ansi {
  constructor(sgr) { this.reset(); this.carry = ""; if (sgr) this.apply(sgr); }
  reset() { this.b = false; this.d = false; this.i = false; this.u = false; this.fg = null; this.bg = null; }
  apply(params) {
    const n = params.split(";").map((s) => parseInt(s, 10) || 0);
    for (let k = 0; k < n.length; k++) {
      const c = n[k];
      if (c === 0) this.reset();
      else if (c === 1) this.b = true; else if (c === 2) this.d = true;
      else if (c === 3) this.i = true; else if (c === 4) this.u = true;
      else if (c === 22) { this.b = false; this.d = false; }
      else if (c === 23) this.i = false; else if (c === 24) this.u = false;
      else if (c >= 30 && c <= 37) this.fg = c - 30; else if (c >= 90 && c <= 97) this.fg = c - 82;
      else if (c === 39) this.fg = null;
      else if (c >= 40 && c <= 47) this.bg = c - 40; else if (c >= 100 && c <= 107) this.bg = c - 92;
      else if (c === 49) this.bg = null;
      else if (c === 38 || c === 48) {
        let col = null;
        if (n[k + 1] === 5) { col = Math.min(n[k + 2] || 0, 255); k += 2; }
        else if (n[k + 1] === 2) { col = [n[k + 2] || 0, n[k + 3] || 0, n[k + 4] || 0]; k += 4; }
        if (c === 38) this.fg = col; else this.bg = col;
      }
    }
  }
  plain() { return !this.b && !this.d && !this.i && !this.u && this.fg === null && this.bg === null; }
  static rgb(i) {
    if (Array.isArray(i)) return `rgb(${i[0]},${i[1]},${i[2]})`;
    if (i >= 232) { const v = 8 + (i - 232) * 10; return `rgb(${v},${v},${v})`; }
    i -= 16; const l = (v) => (v === 0 ? 0 : 55 + v * 40);
    return `rgb(${l(Math.floor(i / 36))},${l(Math.floor(i / 6) % 6)},${l(i % 6)})`;
  }
  span(text) {
    if (this.plain()) return document.createTextNode(text);
    const s = document.createElement("span");
    const cls = [];
    if (this.b) cls.push("ab"); if (this.d) cls.push("ad"); if (this.i) cls.push("ai"); if (this.u) cls.push("au");
    for (const [c, p, prop] of [[this.fg, "fg", "color"], [this.bg, "bg", "backgroundColor"]]) {
      if (c === null) continue;
      if (!Array.isArray(c) && c < 16) cls.push(p + c); else s.style[prop] = Ansi.rgb(c);
    }
    if (cls.length) s.className = cls.join(" ");
    s.textContent = text;
    return s;
  }
  // Appends `text` to `el`, keeping an escape sequence cut at the end for later.
  render(text, el) {
    text = this.carry + text;
    this.carry = "";
    let run = "";
    let i = 0;
    const flush = () => { if (run) { el.appendChild(this.span(run)); run = ""; } };
    while (i < text.length) {
      const e = text.indexOf("\x1b", i);
      if (e < 0) { run += text.slice(i); break; }
      run += text.slice(i, e);
      if (e + 1 >= text.length) { this.carry = text.slice(e); break; }
      const kind = text[e + 1];
      if (kind === "]") { // OSC: up to BEL or ESC \\, dropped
        const bel = text.indexOf("\x07", e + 2), st = text.indexOf("\x1b", e + 2);
        if (bel >= 0 && (st < 0 || bel < st)) { i = bel + 1; continue; }
        if (st >= 0 && st + 1 < text.length) { i = st + 2; continue; }
        this.carry = text.slice(e); break;
      }
      if ("()*+".includes(kind)) { // charset designation: three bytes
        if (e + 2 >= text.length) { this.carry = text.slice(e); break; }
        i = e + 3; continue;
      }
      if (kind !== "[") { i = e + 2; continue; }
      let j = e + 2;
      while (j < text.length && !(text.charCodeAt(j) >= 0x40 && text.charCodeAt(j) <= 0x7e)) j++;
      if (j >= text.length) { this.carry = text.slice(e); break; }
      if (text[j] === "m") { flush(); this.apply(text.slice(e + 2, j)); }
      i = j + 1;
    }
    flush();
  }
}

// ---- Live output: <pre id="output" data-live="true" data-offset=N> ----
function followOutput(pre) {
  const id = pre.dataset.task;
  let offset = parseInt(pre.dataset.offset, 10) || 0;
  let state = pre.dataset.state;
  const ansi = new Ansi(pre.dataset.ansi || "");
  const decoder = new TextDecoder("utf-8");
  const active = new Set(["PENDING", "RUNNING"]);
  const tick = async () => {
    let next = 1000;
    try {
      const resp = await fetch(`/task/raw?id=${encodeURIComponent(id)}&offset=${offset}`, { cache: "no-store" });
      if (resp.ok) {
        const buf = new Uint8Array(await resp.arrayBuffer());
        const newState = resp.headers.get("x-muster-task-state") || state;
        if (buf.length > 0) {
          const atBottom = pre.scrollHeight - pre.scrollTop - pre.clientHeight < 40;
          offset += buf.length;
          pre.dataset.offset = String(offset);
          ansi.render(decoder.decode(buf, { stream: true }), pre);
          if (atBottom) pre.scrollTop = pre.scrollHeight;
          if (buf.length >= 256 * 1024) next = 0; // more is waiting
        }
        if (newState !== state) {
          state = newState;
          pre.dataset.state = state;
          if (!active.has(state)) {
            // Finished: reload once to show the final result and buttons.
            window.location.reload();
            return;
          }
          const badge = document.querySelector("#task-state .badge");
          if (badge) { badge.textContent = state; badge.dataset.state = state; badge.className = "badge " + state.toLowerCase(); }
        }
      }
    } catch (e) { next = 3000; }
    setTimeout(tick, next);
  };
  setTimeout(tick, 500);
}

// ---- Sortable tables: click a header to sort the rows on this page ----
function setupSort(table) {
  const ths = table.querySelectorAll("thead th");
  ths.forEach((th, col) => th.addEventListener("click", () => {
    const asc = !th.classList.contains("asc");
    ths.forEach((h) => h.classList.remove("asc", "desc"));
    th.classList.add(asc ? "asc" : "desc");
    const body = table.tBodies[0];
    const rows = Array.from(body.rows).filter((r) => r.cells.length > 1);
    const key = (r) => { const c = r.cells[col]; return (c && (c.dataset.sort || c.textContent.trim())) || ""; };
    rows.sort((a, b) => {
      const x = key(a), y = key(b);
      const nx = parseFloat(x), ny = parseFloat(y);
      const cmp = (!isNaN(nx) && !isNaN(ny) && String(nx) === x && String(ny) === y) ? nx - ny : x.localeCompare(y, undefined, { numeric: true });
      return asc ? cmp : -cmp;
    });
    rows.forEach((r) => body.appendChild(r));
  }));
}

document.addEventListener("DOMContentLoaded", () => {
  document.querySelectorAll("input[data-suggest]").forEach(setupSuggest);
  document.querySelectorAll("table.sortable").forEach(setupSort);
  const pre = document.getElementById("output");
  if (pre && pre.dataset.live === "true") followOutput(pre);
});
