// Follows the brain's event stream and re-renders the page's live part
// (the server renders it: ?partial=1) at most once a second, so the view
// stays current without a reload however busy the fleet is.
(function () {
  "use strict";
  var live = document.getElementById("live");
  var list = document.getElementById("events");
  var badge = document.getElementById("stream");
  var index = Number(list.dataset.index || 0);
  var maxEvents = 100;
  var timer = null, last = 0, source = null;

  function setBadge(state, text) {
    badge.dataset.live = state;
    badge.textContent = "● " + text;
  }

  function refresh() {
    if (timer) return;
    timer = setTimeout(function () {
      timer = null;
      last = Date.now();
      var u = new URL(location.href);
      u.searchParams.set("partial", "1");
      fetch(u, { cache: "no-store" }).then(function (r) {
        if (!r.ok) throw new Error(r.status);
        return r.text();
      }).then(function (html) {
        live.innerHTML = html;
        document.body.dataset.refreshed = String(Number(document.body.dataset.refreshed || 0) + 1);
      }).catch(function () { /* the next event retries */ });
    }, Math.max(0, 1000 - (Date.now() - last)));
  }

  function show(e) {
    var li = document.createElement("li");
    li.className = "ev " + e.topic;
    var t = document.createElement("time");
    t.textContent = new Date(e.time).toLocaleTimeString([], { hour12: false });
    var b = document.createElement("b");
    b.textContent = e.topic + " " + e.type;
    li.append(t, " ", b, (e.host ? " " + e.host : "") + (e.job ? " · " + e.job : ""));
    if (e.reason) {
      var s = document.createElement("small");
      s.textContent = e.reason;
      li.append(document.createElement("br"), s);
    }
    list.prepend(li);
    while (list.children.length > maxEvents) list.lastElementChild.remove();
  }

  function connect() {
    // From the index the page was rendered at: nothing published between
    // the render and this subscription is missed.
    source = new EventSource("/v1/events?index=" + index);
    source.onopen = function () { setBadge("open", "live"); };
    source.onerror = function () { setBadge("reconnecting", "reconnecting"); };
    ["host", "kill", "eviction", "placement"].forEach(function (topic) {
      source.addEventListener(topic, function (m) {
        var e = JSON.parse(m.data);
        index = Math.max(index, e.index);
        show(e);
        refresh();
      });
    });
    // The brain dropped us (we fell behind): catch up and resume.
    source.addEventListener("dropped", function () {
      source.close();
      setBadge("reconnecting", "catching up");
      refresh();
      setTimeout(connect, 1000);
    });
  }

  // Usage, lending and pressure change with every heartbeat, not with
  // events: refresh a visible page now and then too.
  setInterval(function () { if (!document.hidden) refresh(); }, 15000);

  // Newest first: the server renders the kept events oldest first.
  Array.prototype.slice.call(list.children).reverse().forEach(function (li) { list.append(li); });
  connect();
})();
