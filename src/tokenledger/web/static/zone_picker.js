// The time zone picker of Reporting > User Usage: a combobox over the server's
// <select> (zones grouped by region, with their offset now), with the browser's zone
// and recent choices first, filtered as one types. Without JavaScript the <select> stays.
(function () {
  "use strict";

  var RECENT_ZONES_KEY = "tokenledger.recentZones";

  function recentZones() {
    try {
      var stored = JSON.parse(localStorage.getItem(RECENT_ZONES_KEY) || "[]");
      return Array.isArray(stored) ? stored.filter(function (v) { return typeof v === "string"; }) : [];
    } catch (ignored) { return []; }
  }
  function rememberRecent(zone) {
    var recent = [zone].concat(recentZones().filter(function (v) { return v !== zone; })).slice(0, 5);
    try { localStorage.setItem(RECENT_ZONES_KEY, JSON.stringify(recent)); } catch (ignored) { /* private mode */ }
  }
  function fold(text) {
    return text.normalize("NFD").replace(/[\u0300-\u036f]/g, "").toLowerCase().replace(/_/g, " ");
  }

  // Replaces ``select`` (optgroups of options with data-place and data-offset) with the
  // combobox; ``options.onChoose(zone)`` runs when a person picks another zone.
  function build(select, options) {
    var zones = {}; // name -> {place, offset, region}
    var groups = [];
    Array.prototype.forEach.call(select.querySelectorAll("optgroup"), function (group) {
      var names = [];
      Array.prototype.forEach.call(group.querySelectorAll("option"), function (option) {
        zones[option.value] = { place: option.dataset.place, offset: option.dataset.offset, region: group.label };
        names.push(option.value);
      });
      groups.push({ label: group.label, names: names });
    });

    var wrapper = document.createElement("div");
    wrapper.className = "zone-picker";
    var input = document.createElement("input");
    input.id = "usage-tz-input";
    input.className = "select zone-input";
    input.type = "text";
    input.setAttribute("role", "combobox");
    input.setAttribute("aria-autocomplete", "list");
    input.setAttribute("aria-expanded", "false");
    input.setAttribute("aria-controls", "usage-tz-list");
    input.setAttribute("autocomplete", "off");
    input.setAttribute("spellcheck", "false");
    input.title = select.title;
    var list = document.createElement("div");
    list.id = "usage-tz-list";
    list.className = "zone-list";
    list.setAttribute("role", "listbox");
    list.setAttribute("aria-label", "Time zones");
    list.hidden = true;
    var hidden = document.createElement("input");
    hidden.type = "hidden";
    hidden.name = "tz";
    hidden.value = select.value;
    wrapper.append(input, list, hidden);
    select.closest(".toolbar-tz").querySelector("label").setAttribute("for", "usage-tz-input");
    select.replaceWith(wrapper);

    var optionCount = 0;
    function option(name) {
      var zone = zones[name];
      var item = document.createElement("div");
      item.id = "tz-option-" + (optionCount += 1);
      item.className = "zone-option";
      item.setAttribute("role", "option");
      item.setAttribute("aria-selected", "false");
      item.dataset.value = name;
      item.dataset.search = fold(name + " " + zone.place + " " + zone.offset);
      var place = document.createElement("span");
      place.textContent = zone.place;
      var offset = document.createElement("span");
      offset.className = "zone-offset";
      offset.textContent = zone.offset;
      item.append(place, offset);
      return item;
    }
    function group(label, names, extraClass) {
      if (!names.length) return;
      var box = document.createElement("div");
      box.setAttribute("role", "group");
      box.className = "zone-group" + (extraClass ? " " + extraClass : "");
      var heading = document.createElement("div");
      heading.className = "zone-group-label";
      heading.id = "tz-group-" + label.replace(/\W+/g, "-").toLowerCase();
      heading.textContent = label;
      heading.setAttribute("role", "presentation");
      box.setAttribute("aria-labelledby", heading.id);
      box.appendChild(heading);
      names.forEach(function (name) { box.appendChild(option(name)); });
      list.appendChild(box);
    }
    function render() {
      list.textContent = "";
      optionCount = 0;
      var suggested = [];
      [options.browserZone].concat(recentZones()).forEach(function (name) {
        if (zones[name] && suggested.indexOf(name) < 0) suggested.push(name);
      });
      group("Suggested", suggested, "zone-group-suggested");
      groups.forEach(function (g) { group(g.label, g.names); });
    }
    function label(name) {
      var zone = zones[name];
      return zone ? zone.place + " (" + zone.offset + ")" : name;
    }
    function visibleOptions() {
      return Array.prototype.filter.call(list.querySelectorAll(".zone-option"), function (item) { return !item.hidden; });
    }
    function setActive(item) {
      list.querySelectorAll(".zone-option.is-active").forEach(function (o) { o.classList.remove("is-active"); });
      if (!item) { input.removeAttribute("aria-activedescendant"); return; }
      item.classList.add("is-active");
      input.setAttribute("aria-activedescendant", item.id);
      item.scrollIntoView({ block: "nearest" });
    }
    function filter(text) {
      var words = fold(text).split(/\s+/).filter(Boolean);
      list.querySelectorAll(".zone-group").forEach(function (box) {
        var any = false;
        box.querySelectorAll(".zone-option").forEach(function (item) {
          var match = words.every(function (word) { return item.dataset.search.indexOf(word) >= 0; });
          item.hidden = !match;
          any = any || match;
        });
        box.hidden = !any;
      });
      setActive(visibleOptions()[0] || null);
    }
    function open() {
      if (!list.hidden) return;
      render();
      list.querySelectorAll('.zone-option[data-value="' + CSS.escape(hidden.value) + '"]').forEach(function (item) {
        item.setAttribute("aria-selected", "true");
      });
      list.hidden = false;
      input.setAttribute("aria-expanded", "true");
      filter("");
      var chosen = list.querySelector('.zone-group:not(.zone-group-suggested) [aria-selected="true"]');
      if (chosen) setActive(chosen);
    }
    function close() {
      list.hidden = true;
      input.setAttribute("aria-expanded", "false");
      input.removeAttribute("aria-activedescendant");
      input.value = label(hidden.value);
    }
    function choose(name) {
      close();
      if (name === hidden.value) return;
      hidden.value = name;
      input.value = label(name);
      rememberRecent(name);
      options.onChoose(name);
    }
    function move(step) {
      var items = visibleOptions();
      if (!items.length) return;
      var active = list.querySelector(".zone-option.is-active");
      var index = items.indexOf(active);
      index = index < 0 ? 0 : Math.min(items.length - 1, Math.max(0, index + step));
      setActive(items[index]);
    }

    input.addEventListener("focus", function () { input.select(); });
    input.addEventListener("click", open);
    input.addEventListener("input", function () { open(); filter(input.value); });
    input.addEventListener("keydown", function (event) {
      switch (event.key) {
        case "ArrowDown": event.preventDefault(); if (list.hidden) open(); else move(1); break;
        case "ArrowUp": event.preventDefault(); if (list.hidden) open(); else move(-1); break;
        case "PageDown": if (!list.hidden) { event.preventDefault(); move(10); } break;
        case "PageUp": if (!list.hidden) { event.preventDefault(); move(-10); } break;
        case "Enter": {
          event.preventDefault();
          var active = list.querySelector(".zone-option.is-active");
          if (!list.hidden && active) choose(active.dataset.value);
          break;
        }
        case "Escape":
          if (!list.hidden) { event.preventDefault(); event.stopPropagation(); close(); }
          break;
      }
    });
    input.addEventListener("blur", function () { setTimeout(function () { if (document.activeElement !== input) close(); }, 0); });
    list.addEventListener("mousedown", function (event) { event.preventDefault(); }); // keep the focus in the input
    list.addEventListener("click", function (event) {
      var item = event.target.closest(".zone-option");
      if (item) choose(item.dataset.value);
    });

    var picker = {
      has: function (name) { return name in zones; },
      set: function (name) { hidden.value = name; if (list.hidden) input.value = label(name); },
    };
    picker.set(hidden.value);
    return picker;
  }

  window.TokenLedgerZonePicker = { build: build };
})();
