// clip.js: IDOL's CSSCLIPPING on the rendered DOM. Evaluated in an
// isolated world after read.js, as "(<this function>)(args)". It changes
// the live DOM (the tab navigates away or closes afterwards).
//
// select: a selector list (the ClipPageUsingCssSelect selectors joined by
// ","), or "" for the whole body; unselect: likewise for
// ClipPageUsingCssUnselect. The kept elements are the outermost elements
// matching select, in document order; the unselected elements are removed
// first, with their descendants.
(function (a) {
  "use strict";
  var d = document;
  var out = { text: "", html: "", matched: 0, removed: 0, textTruncated: false, htmlTruncated: false, error: "" };
  function check(sel, key) {
    try { d.createDocumentFragment().querySelector(sel); return true; }
    catch (e) { out.error = key + ": invalid CSS selector " + JSON.stringify(sel); return false; }
  }
  if (a.select && !check(a.select, "ClipPageUsingCssSelect")) return out;
  if (a.unselect && !check(a.unselect, "ClipPageUsingCssUnselect")) return out;
  var roots = [];
  if (a.select) {
    var all = d.querySelectorAll(a.select);
    for (var i = 0; i < all.length; i++) {
      var el = all[i];
      var p = el.parentElement;
      if (p && p.closest(a.select)) continue; // inside a kept element already
      roots.push(el);
    }
  } else {
    roots.push(d.body || d.documentElement);
  }
  out.matched = roots.length;
  if (a.unselect) {
    var gone = d.querySelectorAll(a.unselect);
    out.removed = gone.length;
    for (var k = 0; k < gone.length; k++) gone[k].remove();
  }
  var texts = [], htmls = [], tsize = 0, hsize = 0;
  for (var r = 0; r < roots.length; r++) {
    var root = roots[r];
    if (!root || !root.isConnected) continue;
    if (tsize < a.maxText) {
      var t = String(root.innerText || "").trim();
      if (t) { texts.push(t); tsize += t.length + 1; }
    } else {
      out.textTruncated = true;
    }
    if (hsize < a.maxHTML) {
      var h = root.outerHTML;
      htmls.push(h);
      hsize += h.length + 1;
    } else {
      out.htmlTruncated = true;
    }
  }
  var text = texts.join("\n"), html = htmls.join("\n");
  if (text.length > a.maxText) { text = text.slice(0, a.maxText); out.textTruncated = true; }
  if (html.length > a.maxHTML) { html = html.slice(0, a.maxHTML); out.htmlTruncated = true; }
  out.text = text;
  out.html = html;
  return out;
})
