import assert from 'node:assert/strict';
import { test } from 'node:test';
import { buildPanelHtml, contentSecurityPolicy, escapeHtml, makeNonce, scriptJson } from '../../src/webview_html';

function cspOf(html: string): string {
  const match = /http-equiv="Content-Security-Policy" content="([^"]*)"/.exec(html);
  assert.ok(match, 'the page declares a CSP');
  return match[1].replace(/&#39;/g, "'");
}

test('CSP: frames only from the Model Explorer origin, scripts only with the nonce', () => {
  const csp = contentSecurityPolicy('abc123', 'http://127.0.0.1:8123');
  assert.match(csp, /default-src 'none'/);
  assert.match(csp, /frame-src http:\/\/127\.0\.0\.1:8123(;|$)/);
  assert.match(csp, /script-src 'nonce-abc123'(;|$)/);
  assert.doesNotMatch(csp, /unsafe-inline|unsafe-eval|\*/);
});

test('CSP without a server yet forbids every frame', () => {
  assert.match(contentSecurityPolicy('n', undefined), /frame-src 'none'/);
});

test('the page loads the graph URL in a full-size iframe, escaped, and every script carries the nonce', () => {
  const url = 'http://127.0.0.1:8123/?data={"a":"b"}&x=<y>';
  const html = buildPanelHtml({ source: 'file:///w/export.py', url }, 'http://127.0.0.1:8123', 'NONCE1');
  assert.match(cspOf(html), /frame-src http:\/\/127\.0\.0\.1:8123/);
  assert.ok(html.includes('src="http://127.0.0.1:8123/?data={&quot;a&quot;:&quot;b&quot;}&amp;x=&lt;y&gt;"'));
  assert.doesNotMatch(html, /id="placeholder"/);
  const scripts = html.match(/<script[^>]*>/g) ?? [];
  assert.ok(scripts.length > 0);
  for (const tag of scripts) {
    assert.equal(tag, '<script nonce="NONCE1">');
  }
  assert.match(html, /#graph \{ flex: 1; width: 100%;/);
});

test('state for the panel serializer is embedded as JSON that cannot close the script', () => {
  const html = buildPanelHtml({ source: 'file:///w/</script><b>.py' }, undefined, 'N');
  assert.equal(html.match(/<\/script>/g)?.length, 1);
  assert.ok(html.includes(scriptJson({ source: 'file:///w/</script><b>.py' })));
  assert.ok(html.includes('id="placeholder"'), 'no graph yet: says what to do');
  assert.match(html, /<iframe id="graph" title="Model Explorer" hidden>/);
});

test('nonces are fresh and alphanumeric', () => {
  const nonces = new Set(Array.from({ length: 50 }, () => makeNonce()));
  assert.equal(nonces.size, 50);
  for (const nonce of nonces) {
    assert.match(nonce, /^[A-Za-z0-9]{16,}$/);
  }
});

test('escapeHtml covers attribute-breaking characters', () => {
  assert.equal(escapeHtml(`<a href="x" title='y'>&`), '&lt;a href=&quot;x&quot; title=&#39;y&#39;&gt;&amp;');
});
