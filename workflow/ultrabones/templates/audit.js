// ultrabones audit pages: sort by any column, filter by status and reason, and show
// a thumbnail's full-resolution overlay. Plain DOM, no dependencies, works offline.
// The address holds the state (#status=..&reason=..&sort=..&order=desc; a ?query is
// read too), so a filtered view can be linked, and tested with a headless browser.
(function () {
  "use strict";
  var table = document.querySelector("table.audit");
  var body = table.tBodies[0];
  var heads = Array.prototype.slice.call(table.tHead.rows[0].cells);
  var filters = Array.prototype.slice.call(document.querySelectorAll("[data-filter]"));

  function readState() {
    var state = new URLSearchParams(location.search);
    new URLSearchParams(location.hash.slice(1)).forEach(function (v, k) {
      state.set(k, v);
    });
    return state;
  }

  function writeState() {
    var state = new URLSearchParams();
    filters.forEach(function (f) {
      if (f.value) state.set(f.dataset.filter, f.value);
    });
    heads.forEach(function (th) {
      var order = th.getAttribute("aria-sort");
      if (order) {
        state.set("sort", th.dataset.key);
        if (order === "descending") state.set("order", "desc");
      }
    });
    history.replaceState(null, "", "#" + state.toString());
  }

  function cellValue(row, col, numeric) {
    var v = row.cells[col].getAttribute("data-v");
    if (v === null) v = row.cells[col].textContent;
    if (!numeric) return v;
    return v === "" ? NaN : parseFloat(v);
  }

  function compare(col, numeric, sign) {
    return function (a, b) {
      var x = cellValue(a, col, numeric), y = cellValue(b, col, numeric);
      if (!numeric) return sign * x.localeCompare(y);
      if (isNaN(x) || isNaN(y)) return isNaN(x) - isNaN(y); // blanks last
      return sign * (x - y);
    };
  }

  function sortBy(th, descending) {
    var col = heads.indexOf(th);
    var rows = Array.prototype.slice.call(body.rows);
    rows.sort(compare(col, th.dataset.kind === "num", descending ? -1 : 1));
    heads.forEach(function (h) { h.removeAttribute("aria-sort"); });
    th.setAttribute("aria-sort", descending ? "descending" : "ascending");
    var fragment = document.createDocumentFragment();
    rows.forEach(function (r) { fragment.appendChild(r); });
    body.appendChild(fragment);
  }

  function applyFilters() {
    var shown = 0;
    Array.prototype.forEach.call(body.rows, function (row) {
      var keep = filters.every(function (f) {
        return !f.value || row.dataset[f.dataset.filter] === f.value;
      });
      row.hidden = !keep;
      shown += keep ? 1 : 0;
    });
    var out = document.getElementById("shown");
    if (out) out.textContent = String(shown);
  }

  heads.forEach(function (th) {
    if (!th.dataset.key) return;
    th.addEventListener("click", function () {
      sortBy(th, th.getAttribute("aria-sort") === "ascending");
      writeState();
    });
  });
  filters.forEach(function (f) {
    f.addEventListener("change", function () { applyFilters(); writeState(); });
  });

  // Thumbnails get their src when near the view: a thousand-frame page then fetches
  // a screenful of images, where headless Chromium fetches every loading="lazy" one.
  var thumbs = Array.prototype.slice.call(document.querySelectorAll("img[data-src]"));
  function show(img) { img.src = img.dataset.src; }
  if ("IntersectionObserver" in window) {
    var observer = new IntersectionObserver(function (entries) {
      entries.forEach(function (e) {
        if (e.isIntersecting) { show(e.target); observer.unobserve(e.target); }
      });
    }, { rootMargin: "600px" });
    thumbs.forEach(function (img) { observer.observe(img); });
  } else {
    thumbs.forEach(show);
  }

  var viewer = document.getElementById("viewer");
  if (viewer) {
    body.addEventListener("click", function (event) {
      var link = event.target.closest("a.full");
      if (!link) return;
      event.preventDefault();
      viewer.firstElementChild.src = link.href; // loaded only now: lazily
      viewer.hidden = false;
    });
    viewer.addEventListener("click", function () { viewer.hidden = true; });
    document.addEventListener("keydown", function (event) {
      if (event.key === "Escape") viewer.hidden = true;
    });
  }

  var state = readState();
  filters.forEach(function (f) { f.value = state.get(f.dataset.filter) || ""; });
  var th = heads.filter(function (h) { return h.dataset.key === state.get("sort"); })[0];
  if (th) sortBy(th, state.get("order") === "desc");
  applyFilters();
})();
