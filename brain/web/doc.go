// Package web is the brain's fleet view: server-rendered pages
// (html/template, assets embedded, no JavaScript build step) showing every
// host's class usage, what it lends to offline work, its water level, its
// interference signals, its kills in the last hour and its colocation
// safety state (brain/safety); jobs with their replicas and why each
// placement landed where it did; hosts down or draining.
//
// Pages aggregate (counts by state and safety, fleet totals), paginate and
// search on the server, so a fleet of 10,000 hosts costs one page of rows
// in the browser. A small script follows the brain's event stream
// (/v1/events) and re-renders the page's live part on each change, without
// a reload.
package web
