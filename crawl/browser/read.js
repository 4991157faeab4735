// read.js: reads a rendered page. Evaluated in an isolated world (the
// page's scripts cannot have replaced the built-ins used here), as
// "(<this function>)(limits)". Returns one JSON object; every part is
// bounded by the limits, and the flags say what was cut.
(function (lim) {
  "use strict";
  var d = document;
  var root = d.documentElement;
  var out = {
    url: String(location.href),
    title: "",
    lang: "",
    canonical: "",
    meta: [],
    links: [],
    text: "",
    html: "",
    elements: 0,
    textTruncated: false,
    htmlTruncated: false,
    linksTruncated: false,
    metaTruncated: false,
    textBounded: false,
  };
  if (!root) return out;
  out.title = String(d.title || "").trim();

  function cut(s, max) {
    return s.length > max ? s.slice(0, max) : s;
  }
  function collapse(s) {
    return s.replace(/\s+/g, " ").trim();
  }

  out.lang = String(root.getAttribute("lang") || root.getAttribute("xml:lang") || "").trim();

  // Head elements: meta tags, canonical, content-language. Only the
  // children of <head> and the first elements of <body> are looked at by
  // browsers for these, but scripts may put them anywhere: a bounded scan
  // of the document's meta and link elements.
  var metas = d.getElementsByTagName("meta");
  for (var i = 0; i < metas.length; i++) {
    if (out.meta.length >= lim.maxMeta) { out.metaTruncated = true; break; }
    var m = metas[i];
    var name = m.getAttribute("name") || m.getAttribute("property") || m.getAttribute("itemprop");
    var content = m.getAttribute("content");
    if (!name && m.getAttribute("http-equiv")) name = "http-equiv:" + m.getAttribute("http-equiv");
    if (!name && m.hasAttribute("charset")) { name = "charset"; content = m.getAttribute("charset"); }
    if (!name || content === null) continue;
    name = cut(String(name).trim(), 256);
    content = cut(String(content), 8192);
    out.meta.push([name, content]);
    if (!out.lang && name.toLowerCase() === "http-equiv:content-language") out.lang = content.trim();
  }
  var linkEls = d.getElementsByTagName("link");
  for (var j = 0; j < linkEls.length && j < 10000; j++) {
    var l = linkEls[j];
    var rel = " " + String(l.getAttribute("rel") || "").toLowerCase().replace(/\s+/g, " ") + " ";
    if (rel.indexOf(" canonical ") >= 0 && l.hasAttribute("href")) { out.canonical = String(l.href); break; }
  }

  // Links in document order: <a href>, <area href>, <iframe src>,
  // <frame src>; absolute (resolved by the browser, <base> honoured),
  // http(s) only, one entry per URL (the first anchor text wins). The walk
  // stops after lim.maxNodes elements or lim.maxLinks links.
  var seen = Object.create(null);
  var walker = d.createTreeWalker(root, NodeFilter.SHOW_ELEMENT);
  var n = 0;
  for (var el = root; el; el = walker.nextNode()) {
    n++;
    if (n > lim.maxNodes) { out.linksTruncated = true; break; }
    var tag = el.localName;
    var href = null, text = "";
    if ((tag === "a" || tag === "area") && el.hasAttribute("href")) {
      href = el.href;
      if (typeof href !== "string") href = String(el.getAttribute("href"));
      text = tag === "area" ? String(el.getAttribute("alt") || "") : String(el.textContent || "");
    } else if ((tag === "iframe" || tag === "frame") && el.hasAttribute("src")) {
      href = String(el.src);
    } else {
      continue;
    }
    if (!/^https?:/i.test(href)) continue;
    if (seen[href]) continue;
    if (out.links.length >= lim.maxLinks) { out.linksTruncated = true; break; }
    seen[href] = true;
    var relAttr = String(el.getAttribute("rel") || "").toLowerCase();
    out.links.push({
      url: href,
      text: cut(collapse(cut(text, lim.linkText * 4)), lim.linkText),
      tag: tag,
      nofollow: /(^|\s)nofollow(\s|$)/.test(relAttr),
    });
  }
  out.elements = n;

  // Visible text: innerText (layout-aware: hidden elements are left out,
  // blocks end lines) unless the document is too large for a layout-bound
  // read; then a bounded walk of the text nodes that skips script, style,
  // template, noscript and elements hidden by the hidden attribute.
  var body = d.body || root;
  var counted = d.getElementsByTagName("*").length;
  var big = counted > lim.maxNodes;
  if (!big) {
    var tc = body.textContent || "";
    big = tc.length > lim.maxText * 4;
  }
  if (!big) {
    var it = String(body.innerText || "");
    out.textTruncated = it.length > lim.maxText;
    out.text = cut(it, lim.maxText);
  } else {
    out.textBounded = true;
    var parts = [], size = 0;
    var skip = { script: 1, style: 1, template: 1, noscript: 1, head: 1, title: 1 };
    var tw = d.createTreeWalker(body, NodeFilter.SHOW_TEXT, {
      acceptNode: function (t) {
        for (var p = t.parentElement; p && p !== body; p = p.parentElement) {
          if (skip[p.localName] || p.hidden) return NodeFilter.FILTER_REJECT;
        }
        return NodeFilter.FILTER_ACCEPT;
      },
    });
    var visited = 0;
    for (var t = tw.nextNode(); t; t = tw.nextNode()) {
      if (++visited > lim.maxNodes) { out.textTruncated = true; break; }
      var s = collapse(cut(String(t.data), lim.maxText));
      if (!s) continue;
      if (size + s.length + 1 > lim.maxText) {
        parts.push(s.slice(0, Math.max(0, lim.maxText - size)));
        out.textTruncated = true;
        break;
      }
      parts.push(s);
      size += s.length + 1;
    }
    out.text = parts.join(" ");
  }

  // outerHTML with the doctype. A document larger than the limit is cut
  // (the serialisation itself is done by the browser in one step).
  var dt = d.doctype ? "<!DOCTYPE " + d.doctype.name + ">\n" : "";
  var html = dt + root.outerHTML;
  out.htmlTruncated = html.length > lim.maxHTML;
  out.html = cut(html, lim.maxHTML);
  return out;
})
