// Reporting > User Usage: calendar, presets, time zone, locale formatting and chart.
// The server renders everything; this file only adds behaviour (CSP: no inline JS).
(function () {
  "use strict";

  var form = document.getElementById("usage-filters");
  var results = document.getElementById("usage-results");
  if (!form || !results) return;

  var locale = navigator.language || "en-US";
  var numberFormat = new Intl.NumberFormat(locale);
  var compactFormat = new Intl.NumberFormat(locale, { notation: "compact", maximumFractionDigits: 1 });
  var chart = null;
  var heat = null; // {"YYYY-MM-DD": level 1-4}
  var heatKey = null;

  function state() {
    return document.getElementById("usage-state").dataset;
  }

  // -- Plain dates (YYYY-MM-DD) without time zone surprises -------------------------
  function parseDay(text) {
    var parts = text.split("-").map(Number);
    return new Date(Date.UTC(parts[0], parts[1] - 1, parts[2]));
  }
  function formatDay(date) {
    return date.toISOString().slice(0, 10);
  }
  function addDays(text, days) {
    var date = parseDay(text);
    date.setUTCDate(date.getUTCDate() + days);
    return formatDay(date);
  }
  function monthStart(text, monthsBack) {
    var date = parseDay(text);
    return formatDay(new Date(Date.UTC(date.getUTCFullYear(), date.getUTCMonth() - monthsBack, 1)));
  }
  function monthEnd(text, monthsBack) {
    var date = parseDay(text);
    return formatDay(new Date(Date.UTC(date.getUTCFullYear(), date.getUTCMonth() - monthsBack + 1, 0)));
  }

  function presetRange(name, today) {
    switch (name) {
      case "today": return [today, today];
      case "yesterday": return [addDays(today, -1), addDays(today, -1)];
      case "last7": return [addDays(today, -6), today];
      case "last30": return [addDays(today, -29), today];
      case "this-month": return [monthStart(today, 0), today];
      case "last-month": return [monthStart(today, 1), monthEnd(today, 1)];
    }
    return null;
  }

  // -- Applying a new view --------------------------------------------------------
  function setField(name, value) {
    var input = document.getElementById("usage-filters").querySelector('input[type="hidden"][name="' + name + '"]');
    if (input) input.value = value;
  }
  function applyRange(start, end) {
    setField("start", start);
    setField("end", end);
    closePopover(true);
    htmx.trigger(document.getElementById("usage-filters"), "change");
  }

  function rememberZone(zone) {
    document.cookie = "tl_tz=" + encodeURIComponent(zone) + "; path=/; max-age=31536000; SameSite=Lax";
  }

  // -- Locale formatting of server-rendered numbers and times ---------------------
  function formatNumbers(root) {
    root.querySelectorAll("[data-num]").forEach(function (element) {
      var value = Number(element.dataset.num);
      if (!Number.isFinite(value)) return;
      var compact = element.hasAttribute("data-compact") && Math.abs(value) >= 100000;
      element.textContent = compact ? compactFormat.format(value) : numberFormat.format(value);
      if (compact) element.title = numberFormat.format(value);
    });
    var zone = state().tz;
    var timeFormat = new Intl.DateTimeFormat(locale, {
      month: "short", day: "numeric", hour: "2-digit", minute: "2-digit", timeZone: zone,
    });
    root.querySelectorAll("time[data-time]").forEach(function (element) {
      var micros = Number(element.dataset.time);
      var date = new Date(micros / 1000);
      element.dateTime = date.toISOString();
      element.textContent = timeFormat.format(date);
    });
  }

  // -- Chart ----------------------------------------------------------------------
  function cssVar(name) {
    return getComputedStyle(document.documentElement).getPropertyValue(name).trim();
  }

  function renderChart() {
    var canvas = document.getElementById("usage-chart");
    if (!canvas || typeof Chart === "undefined") return;
    var url = canvas.dataset.seriesUrl;
    var box = canvas.parentElement;
    box.classList.add("is-loading");
    fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (response) {
        if (!response.ok) throw new Error("HTTP " + response.status);
        return response.json();
      })
      .then(function (series) {
        if (!document.body.contains(canvas)) return;
        var hourly = series.interval === "hour";
        var labelFormat = new Intl.DateTimeFormat(locale, hourly
          ? { hour: "2-digit", minute: "2-digit", timeZone: series.tz }
          : { month: "short", day: "numeric", timeZone: series.tz });
        var labels = series.points.map(function (point) { return labelFormat.format(new Date(point.start)); });
        if (chart) chart.destroy();
        chart = new Chart(canvas, {
          type: "bar",
          data: {
            labels: labels,
            datasets: [
              { label: "Input tokens", data: series.points.map(function (p) { return p.input_tokens; }),
                backgroundColor: cssVar("--heat-4"), stack: "tokens", borderRadius: 3 },
              { label: "Output tokens", data: series.points.map(function (p) { return p.output_tokens; }),
                backgroundColor: cssVar("--heat-2"), stack: "tokens", borderRadius: 3 },
            ],
          },
          options: {
            responsive: true,
            maintainAspectRatio: false,
            animation: false,
            interaction: { mode: "index", intersect: false },
            plugins: {
              legend: { position: "bottom", labels: { color: cssVar("--text-muted"), boxWidth: 12 } },
              tooltip: {
                callbacks: {
                  label: function (item) { return item.dataset.label + ": " + numberFormat.format(item.raw); },
                  footer: function (items) {
                    var total = items.reduce(function (sum, item) { return sum + item.raw; }, 0);
                    return "Total: " + numberFormat.format(total);
                  },
                },
              },
            },
            scales: {
              x: { stacked: true, grid: { display: false }, ticks: { color: cssVar("--text-muted"), maxRotation: 0, autoSkipPadding: 12 } },
              y: { stacked: true, beginAtZero: true, grid: { color: cssVar("--border") },
                   ticks: { color: cssVar("--text-muted"), callback: function (value) { return compactFormat.format(value); } } },
            },
          },
        });
        canvas.dataset.points = String(series.points.length);
        canvas.dataset.total = String(series.points.reduce(function (sum, p) { return sum + p.total_tokens; }, 0));
      })
      .catch(function () {
        box.classList.add("has-error");
      })
      .finally(function () {
        box.classList.remove("is-loading");
      });
  }

  // -- Calendar popover and heat map ------------------------------------------------
  // Listeners are delegated to the document: htmx history restores replace the page's
  // elements, and delegation keeps working without binding anything twice.
  function el(id) { return document.getElementById(id); }

  // The calendar keeps its month pages aligned to where it was first shown, so a
  // fresh one is built at each opening, first shown at the month before the range's
  // end (past days are what one picks), then focused on the end day itself.
  function buildCalendar() {
    var current = state();
    var old = el("range-calendar");
    var months = window.matchMedia("(max-width: 640px)").matches ? 1 : 2;
    var calendar = document.createElement("calendar-range");
    calendar.id = "range-calendar";
    calendar.setAttribute("months", String(months));
    calendar.setAttribute("value", current.start + "/" + current.end);
    calendar.setAttribute("max", current.today);
    calendar.setAttribute("today", current.today);
    calendar.setAttribute("first-day-of-week", "1");
    calendar.setAttribute("locale", locale);
    calendar.setAttribute("focused-date", months > 1 ? monthStart(current.end, 1) : current.end);
    while (old.firstChild) calendar.appendChild(old.firstChild);
    old.replaceWith(calendar);
    applyHeat();
    Promise.resolve(calendar.mounted).then(function () {
      setTimeout(function () {
        calendar.focusedDate = current.end;
        if (popoverOpen() && typeof calendar.focus === "function") calendar.focus();
      }, 30);
    });
    el("range-popover").querySelectorAll("[data-preset]").forEach(function (preset) {
      var range = presetRange(preset.dataset.preset, current.today);
      var active = range && range[0] === current.start && range[1] === current.end;
      preset.setAttribute("aria-pressed", active ? "true" : "false");
    });
  }

  function applyHeat() {
    var calendar = el("range-calendar");
    if (!heat || !calendar) return;
    calendar.getDayParts = function (date) {
      var level = heat[formatDay(date)];
      return level ? "heat heat-" + level : "";
    };
    calendar.dataset.heatDays = String(Object.keys(heat).length);
  }

  function loadHeat() {
    var current = state();
    var key = current.tz + "|" + current.today;
    if (heatKey === key) { applyHeat(); return; }
    heatKey = key;
    var params = new URLSearchParams({
      start: addDays(current.today, -400), end: current.today, tz: current.tz, interval: "day",
    });
    fetch("/api/v1/reports/usage-series?" + params, { credentials: "same-origin" })
      .then(function (response) { return response.ok ? response.json() : null; })
      .then(function (series) {
        if (!series) return;
        var values = series.points.map(function (p) { return p.total_tokens; }).filter(function (v) { return v > 0; });
        values.sort(function (a, b) { return a - b; });
        function quantile(q) { return values.length ? values[Math.floor(q * (values.length - 1))] : 0; }
        var cuts = [quantile(0.25), quantile(0.5), quantile(0.75)];
        heat = {};
        series.points.forEach(function (point) {
          var value = point.total_tokens;
          if (!value) return;
          heat[point.start.slice(0, 10)] = value <= cuts[0] ? 1 : value <= cuts[1] ? 2 : value <= cuts[2] ? 3 : 4;
        });
        applyHeat();
      })
      .catch(function () { heatKey = null; });
  }

  function popoverOpen() {
    var popover = el("range-popover");
    return popover && !popover.hidden;
  }
  function openPopover() {
    el("range-popover").hidden = false;
    buildCalendar();
    loadHeat();
    el("range-button").setAttribute("aria-expanded", "true");
  }
  function closePopover(returnFocus) {
    if (!popoverOpen()) return;
    el("range-popover").hidden = true;
    el("range-button").setAttribute("aria-expanded", "false");
    if (returnFocus) el("range-button").focus();
  }

  document.addEventListener("click", function (event) {
    var target = event.target;
    if (target.closest("#range-button")) {
      if (popoverOpen()) closePopover(true); else openPopover();
      return;
    }
    var preset = target.closest("#range-popover [data-preset]");
    if (preset) {
      var range = presetRange(preset.dataset.preset, state().today);
      if (range) applyRange(range[0], range[1]);
      return;
    }
    if (popoverOpen() && !target.closest("#range-popover")) closePopover(false);
  });
  document.addEventListener("keydown", function (event) {
    if (event.key === "Escape" && popoverOpen()) {
      event.preventDefault();
      closePopover(true);
    }
  });
  // Capture phase: the calendar's "change" event does not bubble.
  document.addEventListener("change", function (event) {
    var target = event.target;
    if (target.id === "range-calendar") {
      var parts = (target.value || "").split("/");
      if (parts.length === 2 && parts[0] && parts[1]) applyRange(parts[0], parts[1]);
    } else if (target.id === "usage-tz") {
      rememberZone(target.value);
    }
  }, true);

  // -- Time zone ----------------------------------------------------------------------
  function adoptBrowserZone() {
    var current = state();
    if (current.tzExplicit === "true") return;
    var browserZone = Intl.DateTimeFormat().resolvedOptions().timeZone;
    if (!browserZone) return;
    rememberZone(browserZone);
    var select = el("usage-tz");
    if (browserZone === current.tz || !select) return;
    var known = Array.prototype.some.call(select.options, function (o) { return o.value === browserZone; });
    if (!known) return;
    select.value = browserZone;
    // Dates the URL did not name default to today in the browser's zone: drop the
    // server's defaults so it computes them again. Replace (not push) the history entry.
    if (!new URLSearchParams(location.search).has("start")) {
      setField("start", "");
      setField("end", "");
    }
    var query = new URLSearchParams(new FormData(form)).toString();
    htmx.ajax("GET", "/reporting/user-usage?" + query, { target: "#usage-results", source: form })
      .then(function () {
        history.replaceState(history.state, "", "/reporting/user-usage?" + new URLSearchParams(new FormData(form)));
      });
  }

  // -- Loading state and refresh after each swap --------------------------------------
  function refresh() {
    results = el("usage-results");
    form = el("usage-filters");
    formatNumbers(results);
    renderChart();
    var search = el("usage-search");
    if (search && search.value !== state().q && document.activeElement !== search) {
      search.value = state().q;
    }
    var select = el("usage-tz");
    if (select) select.value = state().tz;
  }
  document.body.addEventListener("htmx:beforeRequest", function (event) {
    if (event.detail.target && event.detail.target.id === "usage-results") {
      event.detail.target.setAttribute("aria-busy", "true");
    }
  });
  document.body.addEventListener("htmx:afterRequest", function () {
    var current = el("usage-results");
    if (current) current.removeAttribute("aria-busy");
  });
  document.body.addEventListener("htmx:afterSettle", function (event) {
    if (event.detail.target && event.detail.target.id === "usage-results") refresh();
  });
  document.body.addEventListener("htmx:historyRestore", function () {
    if (el("usage-results")) refresh();
  });

  formatNumbers(results);
  renderChart();
  adoptBrowserZone();
})();
