// report.js: the HTML report's script: draws the thread timeline, RSS tracks and flame graphs from the page's JSON data block; the rest of the page is HTML already.
(function () {
  'use strict';
  var data = JSON.parse(document.getElementById('data').textContent);
  var dpr = window.devicePixelRatio || 1;
  var NSTATES = data.states.length;

  // Control characters from the target show as their Control Pictures, as the HTML around does.
  function vis(s) {
    return String(s).replace(/[\u0000-\u001f\u007f]/g, function (c) {
      var n = c.charCodeAt(0);
      return String.fromCharCode(n === 0x7f ? 0x2421 : 0x2400 + n);
    });
  }

  // The colours are the legend's (report.css): one place says what a state looks like.
  var colour = [];
  for (var k = 0; k < NSTATES; k++) {
    var sw = document.querySelector('.legend .s' + k);
    var c = sw ? getComputedStyle(sw).backgroundColor : '';
    colour.push(c && c !== 'rgba(0, 0, 0, 0)' && c !== 'transparent' ? c : '#e6e8ec');
  }

  function fit(cv) {
    var w = Math.max(1, cv.clientWidth), h = Math.max(1, cv.clientHeight);
    if (cv.width !== Math.round(w * dpr) || cv.height !== Math.round(h * dpr)) {
      cv.width = Math.round(w * dpr);
      cv.height = Math.round(h * dpr);
    }
    var g = cv.getContext('2d');
    g.setTransform(dpr, 0, 0, dpr, 0, 0);
    g.clearRect(0, 0, w, h);
    return { g: g, w: w, h: h };
  }

  var wall = data.wall > 0 ? data.wall : 1;
  var tick = data.tick_ns / 1e9; // seconds per lane tick

  function niceStep(span, px) {
    var raw = span / Math.max(1, px / 90), p = Math.pow(10, Math.floor(Math.log10(raw)));
    var m = raw / p;
    return (m < 1.5 ? 1 : m < 3.5 ? 2 : m < 7.5 ? 5 : 10) * p;
  }

  function drawAxis() {
    var cv = document.getElementById('axis');
    if (!cv) return;
    var f = fit(cv), step = niceStep(wall, f.w);
    f.g.fillStyle = '#5d6678';
    f.g.strokeStyle = '#c4c9d4';
    f.g.font = '10.5px system-ui, sans-serif';
    f.g.textBaseline = 'top';
    for (var t = 0; t <= wall + 1e-9; t += step) {
      var x = Math.round(t / wall * (f.w - 1)) + 0.5;
      f.g.beginPath();
      f.g.moveTo(x, f.h - 6);
      f.g.lineTo(x, f.h);
      f.g.stroke();
      var label = (step < 1 ? t.toFixed(step < 0.1 ? 2 : 1) : t.toFixed(0)) + ' s';
      var tw = f.g.measureText(label).width;
      f.g.fillText(label, Math.min(Math.max(0, x - tw / 2), f.w - tw), 2);
    }
  }

  function drawStages() {
    var cv = document.getElementById('stagecv');
    if (!cv) return;
    var n = data.stages.length;
    cv.parentNode.style.height = Math.max(15, n * 14 + 2) + 'px';
    var f = fit(cv);
    f.g.font = '10.5px system-ui, sans-serif';
    f.g.textBaseline = 'middle';
    data.stages.forEach(function (s, i) {
      var x0 = s.t0 / wall * f.w, x1 = Math.max(x0 + 2, s.t1 / wall * f.w), y = i * 14 + 1;
      f.g.fillStyle = i % 2 ? '#9db7e8' : '#b9cdf1';
      f.g.fillRect(x0, y, x1 - x0, 12);
      f.g.fillStyle = '#1d2330';
      f.g.save();
      f.g.beginPath();
      f.g.rect(x0, y, Math.max(x1 - x0, 120), 12);
      f.g.clip();
      f.g.fillText(vis(s.name), x0 + 3, y + 6.5);
      f.g.restore();
    });
  }

  var lanes = data.lanes;
  function drawLane(row) {
    var L = lanes[+row.getAttribute('data-lane')];
    var cv = row.querySelector('canvas');
    if (!L || !cv) return;
    var f = fit(cv), s = L.s, t = 0, scale = f.w / (wall / tick);
    for (var i = 0; i + 2 < s.length; i += 3) {
      t += s[i];
      var x0 = t * scale, x1 = (t + s[i + 1]) * scale;
      t += s[i + 1];
      f.g.fillStyle = colour[s[i + 2]] || colour[NSTATES - 1];
      f.g.fillRect(x0, 2, Math.max(0.6, x1 - x0), f.h - 4);
    }
  }

  function laneStateAt(L, sec) {
    var s = L.s, t = 0, at = sec / tick;
    for (var i = 0; i + 2 < s.length; i += 3) {
      t += s[i];
      if (at >= t && at < t + s[i + 1]) return data.states[s[i + 2]];
      t += s[i + 1];
    }
    return 'not alive';
  }

  function fmtBytes(b) {
    var u = ['B', 'kB', 'MB', 'GB', 'TB'], i = 0;
    while (b >= 1000 && i < 4) { b /= 1000; i++; }
    return b.toFixed(i ? 1 : 0) + ' ' + u[i];
  }

  function buildRss() {
    var box = document.getElementById('rss');
    if (!box) return [];
    var rows = [];
    data.rss.forEach(function (tr) {
      var row = document.createElement('div'), lbl = document.createElement('span'), cv = document.createElement('canvas');
      var peak = Math.max.apply(null, tr.v.concat([0]));
      row.className = 'row rssrow';
      lbl.className = 'lbl';
      lbl.textContent = 'RSS ' + vis(tr.label) + ', peak ' + fmtBytes(peak);
      if (tr.mem) {
        // PSS and USS are drawn on RSS's scale: they cannot exceed it.
        lbl.textContent += '; PSS (dashed) peak ' + fmtBytes(Math.max.apply(null, tr.mem.pss.concat([0]))) +
          ', USS (dotted) peak ' + fmtBytes(Math.max.apply(null, tr.mem.uss.concat([0])));
      }
      cv.className = 'cv';
      row.appendChild(lbl);
      row.appendChild(cv);
      box.appendChild(row);
      rows.push({ cv: cv, tr: tr, peak: peak });
    });
    return rows;
  }
  var rssRows = buildRss();

  function drawRss(r) {
    var f = fit(r.cv), tr = r.tr, peak = r.peak || 1;
    f.g.beginPath();
    f.g.moveTo(tr.t[0] / wall * f.w, f.h);
    for (var i = 0; i < tr.t.length; i++) f.g.lineTo(tr.t[i] / wall * f.w, f.h - 2 - tr.v[i] / peak * (f.h - 6));
    f.g.lineTo(tr.t[tr.t.length - 1] / wall * f.w, f.h);
    f.g.closePath();
    f.g.fillStyle = 'rgba(59,111,216,0.18)';
    f.g.fill();
    f.g.strokeStyle = '#3b6fd8';
    f.g.stroke();
    if (tr.mem) {
      [[tr.mem.pss, [6, 3]], [tr.mem.uss, [2, 3]]].forEach(function (line) {
        f.g.beginPath();
        for (var k = 0; k < tr.mem.t.length; k++) {
          var x = tr.mem.t[k] / wall * f.w, y = f.h - 2 - line[0][k] / peak * (f.h - 6);
          if (k) f.g.lineTo(x, y); else f.g.moveTo(x, y);
        }
        f.g.setLineDash(line[1]);
        f.g.strokeStyle = '#1d3f8a';
        f.g.stroke();
      });
      f.g.setLineDash([]);
    }
  }

  var laneRows = Array.prototype.slice.call(document.querySelectorAll('#tl .lane'));
  function drawTimeline() {
    drawAxis();
    drawStages();
    laneRows.forEach(drawLane);
    rssRows.forEach(drawRss);
  }

  var hover = document.getElementById('hover');
  document.getElementById('tl').addEventListener('mousemove', function (e) {
    var cv = e.target;
    if (!cv || cv.tagName !== 'CANVAS') return;
    var rect = cv.getBoundingClientRect(), sec = (e.clientX - rect.left) / rect.width * wall;
    var row = cv.parentNode, text = sec.toFixed(3) + ' s';
    if (row.classList.contains('lane')) {
      var L = lanes[+row.getAttribute('data-lane')];
      text += ': ' + vis(row.querySelector('.tname').textContent) + ' (tid ' + L.tid + ', pid ' + L.pid + ') ' +
        (L.approx ? 'shares by state, order not known' : laneStateAt(L, sec));
    } else if (cv.id === 'stagecv') {
      var hit = data.stages.filter(function (s) { return sec >= s.t0 && sec <= s.t1; }).map(function (s) { return vis(s.name); });
      text += ': ' + (hit.length ? hit.join(', ') : 'no stage');
    }
    hover.textContent = text;
  });

  // Flame graphs: the data's preorder [depth, name, value] rebuilt as a tree, drawn root first (top).
  var ROW = 17;
  function buildTree(fl) {
    var root = { name: 'all', v: fl.total, kids: [], depth: -1 }, stack = [root], n = fl.nodes, maxd = 0;
    for (var i = 0; i + 2 < n.length; i += 3) {
      var d = n[i], node = { name: fl.names[n[i + 1]], v: n[i + 2], kids: [], depth: d };
      stack.length = d + 1;
      stack[d].kids.push(node);
      node.parent = stack[d];
      stack.push(node);
      if (d + 1 > maxd) maxd = d + 1;
    }
    root.maxd = maxd;
    return root;
  }

  function hue(name) {
    var h = 0;
    for (var i = 0; i < name.length; i++) h = (h * 31 + name.charCodeAt(i)) | 0;
    var j = Math.abs(h) % 40;
    var st = /^\[(\w+)\]$/.exec(name);
    if (st && data.states.indexOf(st[1]) >= 0) return colour[data.states.indexOf(st[1])];
    if (/\.py:\d+\)$/.test(name)) return 'hsl(' + (45 + j / 2) + ',75%,' + (60 + j / 4) + '%)';
    return 'hsl(' + (j / 2) + ',72%,' + (58 + j / 5) + '%)';
  }

  var query = '';
  function matches(name) { return query && name.toLowerCase().indexOf(query) >= 0; }

  function Flame(box, fl) {
    this.box = box;
    this.cv = box.querySelector('canvas');
    this.fl = fl;
    this.root = buildTree(fl);
    this.zoom = this.root;
    this.boxes = [];
    var self = this;
    if (!fl.total) {
      var p = document.createElement('p');
      p.className = 'none';
      p.textContent = 'no stacks recorded (the sampler did not run, or saw nothing in this kind)';
      box.replaceChild(p, this.cv);
      this.cv = null;
      return;
    }
    this.cv.style.height = ((this.root.maxd + 1) * ROW + 2) + 'px';
    this.cv.addEventListener('click', function (e) {
      var b = self.at(e);
      self.zoom = !b || b.node === self.zoom ? (self.zoom.parent || self.root) : b.node;
      if (!b) self.zoom = self.root;
      self.draw();
    });
    this.cv.addEventListener('mousemove', function (e) {
      var b = self.at(e), out = document.getElementById('fhover');
      if (!b) { out.textContent = ''; return; }
      out.textContent = vis(b.node.name) + ': ' + b.node.v + ' ' + fl.unit + ', ' +
        (100 * b.node.v / fl.total).toFixed(2) + '% of all';
    });
  }
  Flame.prototype.at = function (e) {
    var r = this.cv.getBoundingClientRect(), x = e.clientX - r.left, y = e.clientY - r.top;
    for (var i = this.boxes.length - 1; i >= 0; i--) {
      var b = this.boxes[i];
      if (x >= b.x && x < b.x + b.w && y >= b.y && y < b.y + ROW) return b;
    }
    return null;
  };
  Flame.prototype.draw = function () {
    if (!this.cv) return 0;
    var f = fit(this.cv), g = f.g, z = this.zoom, self = this, found = 0;
    this.boxes = [];
    g.font = '11px system-ui, sans-serif';
    g.textBaseline = 'middle';
    function box(node, x, w, y, dim) {
      var hit = matches(node.name);
      g.fillStyle = hit ? '#e0309a' : node === self.root ? '#d9dde6' : hue(node.name);
      g.globalAlpha = dim ? 0.45 : 1;
      g.fillRect(x, y, Math.max(0.5, w - 0.5), ROW - 1);
      g.globalAlpha = 1;
      self.boxes.push({ node: node, x: x, w: w, y: y });
      if (w > 28) {
        var label = node === self.root ? 'all (' + node.v + ' ' + self.fl.unit + ')' : vis(node.name);
        g.save();
        g.beginPath();
        g.rect(x, y, w - 2, ROW);
        g.clip();
        g.fillStyle = hit ? '#fff' : '#1d2330';
        g.fillText(label, x + 3, y + ROW / 2);
        g.restore();
      }
      return hit;
    }
    // The zoomed frame's ancestors span the width, dimmed; its subtree scales to the width.
    var chain = [];
    for (var a = z; a; a = a.parent) chain.unshift(a);
    chain.forEach(function (n) { box(n, 0, f.w, (n.depth + 1) * ROW, n !== z); });
    var scale = f.w / (z.v || 1);
    // A match counts once, with what it called: a matched frame under a matched frame adds nothing.
    function walk(node, x0, inMatch) {
      var x = x0;
      node.kids.forEach(function (k) {
        var w = k.v * scale;
        if (w >= 0.3) {
          var hit = box(k, x, w, (k.depth + 1) * ROW, false);
          if (hit && !inMatch) found += k.v;
          walk(k, x, inMatch || hit);
        }
        x += w;
      });
    }
    walk(z, 0, matches(z.name));
    return found;
  };

  var flames = [];
  [['oncpu', data.oncpu], ['offcpu', data.offcpu]].forEach(function (p) {
    var el = document.getElementById(p[0]);
    if (el && p[1]) flames.push(new Flame(el, p[1]));
  });
  function drawFlames() {
    var parts = [];
    flames.forEach(function (fl) {
      var got = fl.draw();
      if (query && fl.fl.total) parts.push((100 * got / fl.fl.total).toFixed(1) + '% of ' + (fl.box.id === 'oncpu' ? 'on-CPU' : 'off-CPU'));
    });
    document.getElementById('matched').textContent = query ? 'matched: ' + (parts.join(', ') || 'nothing') : '';
  }
  document.getElementById('search').addEventListener('input', function (e) {
    query = e.target.value.trim().toLowerCase();
    drawFlames();
  });

  // The sweep's curve (data.sweep, the report's `sweep`): speedup over worker count, the counts swept as points,
  // the fitted curves and ideal scaling between them, the recommended count as a vertical line. Speedups are
  // relative to the first count, so the models take n / first count.
  function swatch(cls, dflt) {
    var sw = document.querySelector('.sweeplegend .' + cls);
    var c = sw ? getComputedStyle(sw).backgroundColor : '';
    return c && c !== 'rgba(0, 0, 0, 0)' && c !== 'transparent' ? c : dflt;
  }
  function drawSweep() {
    var S = data.sweep, cv = document.getElementById('sweepcv');
    if (!S || !cv || !S.points.length) return;
    var f = fit(cv), g = f.g, n0 = S.points[0].workers, rec = S.recommended;
    var pts = S.points.filter(function (p) { return p.speedup !== null; });
    var xmax = Math.max.apply(null, S.points.map(function (p) { return p.workers; }));
    // A recommended count far past the sweep would squash the measured curve: it is marked at the edge instead.
    var recN = rec && rec.workers ? rec.workers : 0, recOut = recN > 2 * xmax;
    if (recN && !recOut) xmax = Math.max(xmax, recN);
    xmax *= 1.05;
    function amdahl(n) { var s = S.amdahl.serial_fraction; return 1 / (s + (1 - s) / n); }
    function usl(n) { return n / (1 + S.usl.sigma * (n - 1) + S.usl.kappa * n * (n - 1)); }
    var haveA = S.amdahl && S.amdahl.serial_fraction !== null, haveU = S.usl && S.usl.sigma !== null && S.usl.kappa !== null;
    var ymax = 1;
    pts.forEach(function (p) { ymax = Math.max(ymax, p.speedup); });
    for (var k = 0; k <= 100; k++) {
      var n = (1 + (xmax / n0 - 1) * k / 100);
      if (haveA) ymax = Math.max(ymax, amdahl(n));
      if (haveU) ymax = Math.max(ymax, usl(n));
    }
    ymax *= 1.12;
    var L = 44, R = 12, T = 10, B = 30, W = f.w - L - R, H = f.h - T - B;
    function X(w) { return L + w / xmax * W; }
    function Y(s) { return T + H - s / ymax * H; }
    g.font = '10.5px system-ui, sans-serif';
    g.strokeStyle = '#c4c9d4';
    g.fillStyle = '#5d6678';
    g.lineWidth = 1;
    g.beginPath();
    g.moveTo(L, T);
    g.lineTo(L, T + H);
    g.lineTo(L + W, T + H);
    g.stroke();
    var xs = Math.max(1, niceStep(xmax, W)), ys = niceStep(ymax, H * 1.6);
    g.textBaseline = 'top';
    g.textAlign = 'center';
    for (var x = 0; x <= xmax; x += xs) g.fillText(String(Math.round(x)), X(x), T + H + 4);
    g.fillText('workers', L + W / 2, T + H + 16);
    g.textBaseline = 'middle';
    g.textAlign = 'right';
    for (var y = 0; y <= ymax; y += ys) {
      g.fillText(y.toFixed(ys < 1 ? 1 : 0), L - 5, Y(y));
      g.strokeStyle = '#eef0f4';
      g.beginPath();
      g.moveTo(L + 1, Y(y) + 0.5);
      g.lineTo(L + W, Y(y) + 0.5);
      g.stroke();
    }
    g.save();
    g.translate(10, T + H / 2);
    g.rotate(-Math.PI / 2);
    g.textAlign = 'center';
    g.fillText('speedup', 0, 0);
    g.restore();
    g.save();
    g.beginPath();
    g.rect(L, T, W, H);
    g.clip();
    function curve(fn, colour, dash) {
      g.strokeStyle = colour;
      g.lineWidth = 1.6;
      g.setLineDash(dash);
      g.beginPath();
      for (var k = 0; k <= 200; k++) {
        var w = n0 + (xmax - n0) * k / 200, s = fn(w / n0);
        if (k) g.lineTo(X(w), Y(s)); else g.moveTo(X(w), Y(s));
      }
      g.stroke();
      g.setLineDash([]);
    }
    curve(function (n) { return n; }, swatch('k-ideal', '#9aa3b2'), [5, 4]);
    if (haveA) curve(amdahl, swatch('k-amdahl', '#3b6fd8'), []);
    if (haveU) curve(usl, swatch('k-usl', '#d7301f'), []);
    var rc = swatch('k-rec', '#2ca25f');
    if (recN) {
      var rx = recOut ? L + W - 2 : X(recN);
      g.strokeStyle = rc;
      g.setLineDash([3, 3]);
      g.beginPath();
      g.moveTo(rx + 0.5, T);
      g.lineTo(rx + 0.5, T + H);
      g.stroke();
      g.setLineDash([]);
    }
    g.fillStyle = swatch('k-meas', '#1d2330');
    pts.forEach(function (p) {
      g.beginPath();
      g.arc(X(p.workers), Y(p.speedup), 4, 0, 2 * Math.PI);
      g.fill();
    });
    g.restore();
    if (recN) {
      g.fillStyle = rc;
      g.textBaseline = 'top';
      var label = 'recommended ' + recN + (recOut ? ' \u2192' : '') + (rec.measured ? ' (measured)' : ' (not measured)');
      // Right of its line, or left of it when the plot ends first: never across the line.
      var left = recOut || X(recN) + 5 + g.measureText(label).width > L + W;
      g.textAlign = left ? 'right' : 'left';
      g.fillText(label, recOut ? L + W - 5 : left ? X(recN) - 5 : X(recN) + 5, T + 2);
    }
    cv.setAttribute('data-points', String(pts.length));
  }

  function drawAll() {
    drawTimeline();
    drawFlames();
    drawSweep();
  }
  var pending = 0;
  window.addEventListener('resize', function () {
    if (!pending) pending = requestAnimationFrame(function () { pending = 0; drawAll(); });
  });
  drawAll();
  document.documentElement.setAttribute('data-drawn', '1');
})();
