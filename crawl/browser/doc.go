// Package browser renders web pages in headless Chromium for the Web
// connector: a library (no actors, no ACI).
package browser
