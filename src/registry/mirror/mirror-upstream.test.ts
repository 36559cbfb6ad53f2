import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { bypassesProxy } from './mirror-upstream.js';

describe('no_proxy', () => {
  const spec = { host: 'registry.example.com', port: 443 };
  it('names hosts, domain suffixes, host:port and *', () => {
    assert.equal(bypassesProxy(spec, undefined), false);
    assert.equal(bypassesProxy(spec, ''), false);
    assert.equal(bypassesProxy(spec, 'registry.example.com'), true);
    assert.equal(bypassesProxy(spec, 'other.org, example.com'), true);
    assert.equal(bypassesProxy(spec, '.example.com'), true);
    assert.equal(bypassesProxy(spec, '*.example.com'), true);
    assert.equal(bypassesProxy(spec, 'ample.com'), false);
    assert.equal(bypassesProxy(spec, 'registry.example.com:443'), true);
    assert.equal(bypassesProxy(spec, 'registry.example.com:5000'), false);
    assert.equal(bypassesProxy(spec, '*'), true);
    assert.equal(bypassesProxy({ host: '127.0.0.1', port: 5000 }, 'localhost,127.0.0.1'), true);
  });
});
