// muster web UI enhancements. Every page works without this script; it only
// adds confirmations, dimension autocompletion, the task log viewer (live
// output, load more, search, line links) and column sorting.
"use strict";

// ---- Confirmations: <form data-confirm="question"> ----
document.addEventListener("submit", (ev) => {
  const q = ev.target.getAttribute && ev.target.getAttribute("data-confirm");
  if (q && !window.confirm(q)) ev.preventDefault();
});

// ---- Autocomplete: <input data-suggest='["key:value", ...]'> or
// <input data-suggest-url="/botlist/suggest"> (asks the server as you type) ----
function setupSuggest(input) {
  let all = null;
  const url = input.getAttribute("data-suggest-url");
  if (!url) {
    try { all = JSON.parse(input.getAttribute("data-suggest") || "[]"); } catch (e) { return; }
  }
  const list = document.createElement("ul");
  list.className = "suggest";
  list.id = input.id + "-suggest";
  list.setAttribute("role", "listbox");
  list.hidden = true;
  input.setAttribute("role", "combobox");
  input.setAttribute("aria-autocomplete", "list");
  input.setAttribute("aria-controls", list.id);
  input.setAttribute("aria-expanded", "false");
  input.parentNode.appendChild(list);
  let sel = -1;
  let asked = 0;
  const lastToken = () => { const v = input.value; const i = v.lastIndexOf(" "); return v.slice(i + 1); };
  const hide = () => { list.hidden = true; input.setAttribute("aria-expanded", "false"); };
  const choose = (s) => {
    const v = input.value; const i = v.lastIndexOf(" ");
    input.value = v.slice(0, i + 1) + s + " ";
    hide();
    input.focus();
  };
  const render = (matches) => {
    list.innerHTML = "";
    sel = -1;
    matches.forEach((m, i) => {
      const li = document.createElement("li");
      li.textContent = m;
      li.id = list.id + "-" + i;
      li.setAttribute("role", "option");
      li.addEventListener("mousedown", (e) => { e.preventDefault(); choose(m); });
      list.appendChild(li);
    });
    list.style.left = input.offsetLeft + "px";
    list.style.top = (input.offsetTop + input.offsetHeight) + "px";
    list.hidden = matches.length === 0;
    input.setAttribute("aria-expanded", String(!list.hidden));
  };
  let timer = null;
  const show = () => {
    const t = lastToken().toLowerCase();
    if (!t) { hide(); return; }
    if (all) {
      render(all.filter((s) => s.toLowerCase().startsWith(t) || s.toLowerCase().includes(t)).slice(0, 30));
      return;
    }
    clearTimeout(timer);
    timer = setTimeout(async () => {
      const n = ++asked;
      try {
        const r = await fetch(url + "?" + new URLSearchParams({ q: t }));
        const v = await r.json();
        if (n === asked) render(v);
      } catch (e) { /* no suggestions */ }
    }, 120);
  };
  input.addEventListener("input", show);
  input.addEventListener("blur", hide);
  input.addEventListener("keydown", (e) => {
    const items = list.querySelectorAll("li");
    if (list.hidden || items.length === 0) return;
    if (e.key === "ArrowDown" || e.key === "ArrowUp") {
      e.preventDefault();
      sel = (sel + (e.key === "ArrowDown" ? 1 : items.length - 1)) % items.length;
      items.forEach((li, i) => li.classList.toggle("sel", i === sel));
      input.setAttribute("aria-activedescendant", items[sel].id);
    } else if ((e.key === "Enter" || e.key === "Tab") && sel >= 0) {
      e.preventDefault();
      choose(items[sel].textContent);
    } else if (e.key === "Escape") {
      hide();
    }
  });
}

// ---- Log viewer: <div id="output" class="log"> (see crates/muster-server/src/ui/log.rs) ----
// The page has the head and the tail of the output as numbered lines in
// `.seg` blocks (data-from/to: bytes, data-line/next: line numbers), with a
// `.gap` between blocks that are not adjacent. Everything else is fetched in
// slices from /task/log; search asks /task/log/search for line numbers.
function setupLog(log) {
  const id = log.dataset.task;
  const active = new Set(["PENDING", "RUNNING"]);
  const follow = document.getElementById("follow");
  const partial = document.getElementById("partial");
  let state = log.dataset.state;
  let query = "";
  let hits = [];
  let hit = -1;
  const api = (params) => fetch("/task/log?" + new URLSearchParams({ id, ...params }), { cache: "no-store" })
    .then((r) => (r.ok ? r.json() : Promise.reject(new Error("HTTP " + r.status))));
  const frag = (html) => { const t = document.createElement("template"); t.innerHTML = html; return t.content; };
  const segs = () => Array.from(log.querySelectorAll(".seg"));
  const num = (el, k) => parseInt(el.dataset[k], 10);

  // Gaps: one between every two segments that do not touch.
  const regap = () => {
    log.querySelectorAll(".gap").forEach((g) => g.remove());
    const s = segs();
    for (let i = 0; i + 1 < s.length; i++) {
      if (num(s[i], "to") >= num(s[i + 1], "from")) continue;
      const g = document.createElement("div");
      g.className = "gap";
      const n = num(s[i + 1], "line") - num(s[i], "next");
      g.innerHTML = '<button class="more" data-dir="down" type="button">Load more ↓</button>' +
        `<span class="hint">${n} lines not shown</span>` +
        '<button class="more" data-dir="up" type="button">Load more ↑</button>';
      s[i].after(g);
    }
  };
  const newSeg = (r) => {
    const d = document.createElement("div");
    d.className = "seg";
    d.dataset.from = r.from; d.dataset.to = r.to; d.dataset.line = r.line; d.dataset.next = r.next;
    d.appendChild(frag(r.html));
    mark(d);
    return d;
  };

  // "Load more" in a gap: forward from the block above, or backward from the one below.
  log.addEventListener("click", async (ev) => {
    const btn = ev.target.closest && ev.target.closest("button.more");
    if (!btn) return;
    const gap = btn.parentNode;
    const above = gap.previousElementSibling, below = gap.nextElementSibling;
    btn.disabled = true;
    try {
      if (btn.dataset.dir === "down") {
        const r = await api({ from: above.dataset.to, line: above.dataset.next, until: below.dataset.from });
        above.appendChild(frag(r.html));
        mark(above);
        above.dataset.to = r.to; above.dataset.next = r.next;
      } else {
        const r = await api({ before: below.dataset.from, line: below.dataset.line, after: above.dataset.to });
        below.prepend(frag(r.html));
        mark(below);
        below.dataset.from = r.from; below.dataset.line = r.line;
      }
    } catch (e) { btn.disabled = false; return; }
    regap();
  });

  // Show line n: scroll to it, loading its slice first if needed.
  const show = async (n) => {
    let el = document.getElementById("L" + n);
    if (!el) {
      const s = segs();
      let i = s.findIndex((x) => num(x, "line") > n);
      if (i < 0) i = s.length;
      const above = s[i - 1], below = s[i];
      const p = { goto: n, from: above ? above.dataset.to : 0, line: above ? above.dataset.next : 1 };
      if (below) p.until = below.dataset.from;
      const r = await api(p);
      const seg = newSeg(r);
      if (above) above.after(seg); else log.prepend(seg);
      regap();
      el = document.getElementById("L" + n);
    }
    if (!el) return;
    log.querySelectorAll(".l.cur").forEach((x) => x.classList.remove("cur"));
    el.classList.add("cur");
    if (follow) follow.checked = false;
    el.scrollIntoView({ block: "center" });
  };

  // Highlight the query in the lines of `root`.
  const mark = (root) => {
    if (!query) return;
    const q = query.toLowerCase();
    root.querySelectorAll(".l .t").forEach((t) => {
      if (!t.textContent.toLowerCase().includes(q) || t.querySelector("mark")) return;
      t.parentNode.classList.add("hit");
      const walker = document.createTreeWalker(t, NodeFilter.SHOW_TEXT);
      const nodes = [];
      while (walker.nextNode()) nodes.push(walker.currentNode);
      for (const node of nodes) {
        const text = node.nodeValue, low = text.toLowerCase();
        let at = low.indexOf(q);
        if (at < 0) continue;
        const out = document.createDocumentFragment();
        let last = 0;
        while (at >= 0) {
          out.append(text.slice(last, at));
          const m = document.createElement("mark");
          m.textContent = text.slice(at, at + q.length);
          out.append(m);
          last = at + q.length;
          at = low.indexOf(q, last);
        }
        out.append(text.slice(last));
        node.replaceWith(out);
      }
    });
  };
  const unmark = () => {
    log.querySelectorAll("mark").forEach((m) => m.replaceWith(m.textContent));
    log.querySelectorAll(".l.hit").forEach((l) => { l.classList.remove("hit"); l.querySelectorAll(".t").forEach((t) => t.normalize()); });
  };
  const status = document.getElementById("loghits");
  const goHit = (i) => {
    if (!hits.length) return;
    hit = (i + hits.length) % hits.length;
    status.textContent = `${hit + 1} of ${hits.length}${truncated ? "+" : ""}`;
    show(hits[hit]);
  };
  let truncated = false;
  const form = document.getElementById("logsearch");
  if (form) {
    form.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      const q = document.getElementById("logq").value.trim();
      unmark();
      query = q; hits = []; hit = -1;
      if (!q) { status.textContent = ""; return; }
      status.textContent = "Searching…";
      try {
        const r = await fetch("/task/log/search?" + new URLSearchParams({ id, q }), { cache: "no-store" });
        const v = await r.json();
        hits = v.lines || []; truncated = !!v.truncated;
      } catch (e) { status.textContent = "Search failed"; return; }
      mark(log);
      if (!hits.length) { status.textContent = "No matches"; return; }
      goHit(0);
    });
    document.getElementById("lognext").addEventListener("click", () => goHit(hit + 1));
    document.getElementById("logprev").addEventListener("click", () => goHit(hit - 1));
  }

  const toEnd = () => {
    const last = partial && partial.lastElementChild ? partial.lastElementChild
      : Array.from(log.querySelectorAll(".seg .l")).pop();
    if (last) last.scrollIntoView({ block: "end" }); else log.scrollTop = log.scrollHeight;
  };
  // Open at a linked line (#L123), else at the end.
  const m = /^#L(\d+)$/.exec(location.hash);
  if (m) show(parseInt(m[1], 10)); else toEnd();
  window.addEventListener("hashchange", () => {
    const h = /^#L(\d+)$/.exec(location.hash);
    if (h) show(parseInt(h[1], 10));
  });

  // Follow a running task: new lines, its unfinished last line, its state.
  if (log.dataset.live !== "true") return;
  const tick = async () => {
    let next = 1000;
    try {
      const s = segs();
      const last = s[s.length - 1];
      const r = await api({ from: last.dataset.to, line: last.dataset.next, sgr: log.dataset.sgr || "" });
      if (r.html) {
        const empty = document.getElementById("nooutput");
        if (empty) empty.remove();
        last.appendChild(frag(r.html));
        mark(last);
        last.dataset.to = r.to; last.dataset.next = r.next;
        log.dataset.sgr = r.sgr;
        if (r.next - r.line >= 2000) next = 0; // more is waiting
      }
      if (partial) { partial.innerHTML = r.partial; }
      if (follow && follow.checked) toEnd();
      if (r.state !== state) {
        state = r.state;
        log.dataset.state = state;
        if (!active.has(state)) { window.location.reload(); return; }
        const badge = document.querySelector("#task-state .badge");
        if (badge) { badge.textContent = state; badge.dataset.state = state; badge.className = "badge " + state.toLowerCase(); }
        document.title = document.title.replace(/^[A-Z_ ()]+ · /, state + " · ");
      }
    } catch (e) { next = 3000; }
    setTimeout(tick, next);
  };
  setTimeout(tick, 500);
}

// ---- Sortable tables: a header button sorts the rows on this page ----
// (Lists that span pages sort on the server: their headers are links.)
function setupSort(table) {
  const ths = Array.from(table.querySelectorAll("thead th"));
  ths.forEach((th, col) => {
    if (th.querySelector("a, button")) return;
    const btn = document.createElement("button");
    btn.type = "button";
    btn.className = "sort";
    btn.textContent = th.textContent;
    th.textContent = "";
    th.appendChild(btn);
    th.setAttribute("aria-sort", "none");
    btn.addEventListener("click", () => {
      const asc = th.getAttribute("aria-sort") !== "ascending";
      ths.forEach((h) => { if (h.hasAttribute("aria-sort")) h.setAttribute("aria-sort", "none"); });
      th.setAttribute("aria-sort", asc ? "ascending" : "descending");
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
    });
  });
}

document.addEventListener("DOMContentLoaded", () => {
  document.querySelectorAll("input[data-suggest], input[data-suggest-url]").forEach(setupSuggest);
  document.querySelectorAll("table.sortable").forEach(setupSort);
  const log = document.getElementById("output");
  if (log && log.classList.contains("log")) setupLog(log);
});
