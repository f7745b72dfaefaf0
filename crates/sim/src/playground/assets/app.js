// Keeps the page live by short polling: the same page is fetched again, and each region that
// changed on the server is swapped in. A region holding the field being typed into waits,
// so typing is never lost; the forms outside the regions are never touched.
(function () {
  "use strict";
  var REGIONS = ["sidebar", "posts", "dialog", "requests"];
  var last = {};
  function posts() { return document.getElementById("posts"); }
  function atBottom(el) { return el.scrollHeight - el.scrollTop - el.clientHeight < 40; }
  function toBottom() { var el = posts(); if (el) { el.scrollTop = el.scrollHeight; } }
  REGIONS.forEach(function (id) {
    var el = document.getElementById(id);
    if (el) { last[id] = el.innerHTML; }
  });
  toBottom();
  // The note belongs to the action that caused it: drop it from the address, so a reload
  // (and the polling) shows the page without it.
  var url = new URL(location.href);
  if (url.searchParams.has("note")) {
    url.searchParams.delete("note");
    history.replaceState(null, "", url.pathname + url.search);
  }
  function typingIn(el) {
    var a = document.activeElement;
    return a && el.contains(a) && /^(INPUT|TEXTAREA|SELECT)$/.test(a.tagName);
  }
  function tick() {
    fetch(location.pathname + location.search, { cache: "no-store" })
      .then(function (r) { return r.ok ? r.text() : null; })
      .then(function (text) {
        if (!text) { return; }
        var doc = new DOMParser().parseFromString(text, "text/html");
        REGIONS.forEach(function (id) {
          var fresh = doc.getElementById(id);
          var el = document.getElementById(id);
          if (!fresh || !el || fresh.innerHTML === last[id] || typingIn(el)) { return; }
          var stick = id === "posts" && atBottom(el);
          el.innerHTML = fresh.innerHTML;
          last[id] = fresh.innerHTML;
          if (stick) { toBottom(); }
          if (id === "dialog") {
            var first = el.querySelector("input[type=text], textarea, select");
            if (first) { first.focus(); }
          }
        });
      })
      .catch(function () {})
      .then(function () { setTimeout(tick, 700); });
  }
  setTimeout(tick, 700);
  var open = document.querySelector("#dialog input[type=text], #dialog textarea");
  if (open) { open.focus(); }
})();
